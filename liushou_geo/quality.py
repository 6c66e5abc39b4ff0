"""Data quality for the administrator: what was received, what was set aside
and why, and which villages sent nothing. No streamlit here."""

from __future__ import annotations

import duckdb
import polars as pl

from .store import query

REASON_LABELS = {
    "id_excel_rounded": "身份证号被Excel存成数字", "missing_id": "身份证号为空", "id_format": "身份证号位数或日期不对",
    "id_check_digit": "身份证号校验位错误", "missing_name": "姓名为空", "bad_date": "日期无法识别",
    "birth_mismatch": "出生日期与身份证号不一致", "missing_as_of": "缺填报日期", "future_date": "日期晚于填报日期",
    "bad_sex": "性别填写不规范", "sex_mismatch": "性别与身份证号不一致", "over_age_limit": "超过年龄上限",
    "unknown_village_code": "区划代码不存在", "missing_village": "缺村（社区）", "unknown_village": "村（社区）名称对不上",
    "bad_yes_no": "是/否填写不规范", "duplicate_row": "重复行（只计一次）", "missing_column": "缺必填列",
    "bad_status": "状态填写不规范", "bad_coordinates": "经纬度有误", "bad_number": "数字有误",
    "missing_value": "必填项为空", "bad_code": "区划代码格式错误", "duplicate_code": "区划代码重复",
    "empty_geometry": "图形为空",
}


def by_unit(con: duckdb.DuckDBPyConnection, level: str, within: str = "") -> pl.DataFrame:
    """Registry files, rows read / loaded / set aside per township or county."""
    n = {"county": 6, "township": 9}[level]
    return query(con, "quality_by_unit", {"prefix_len": n, "within": within})


def reasons(con: duckdb.DuckDBPyConnection, within: str = "") -> pl.DataFrame:
    df = query(con, "quality_reasons", {"within": within})
    return df.with_columns(pl.col("reason").replace_strict(REASON_LABELS, default=pl.col("reason")).alias("label"))


def set_aside_rows(con: duckdb.DuckDBPyConnection, within: str = "") -> pl.DataFrame:
    return query(con, "quality_set_aside_rows", {"within": within})


def villages_without_extract(con: duckdb.DuckDBPyConnection, within: str = "") -> pl.DataFrame:
    return query(con, "villages_without_extract", {"within": within})


def unplaced_files(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return query(con, "quality_unplaced_files")


def set_aside_workbook(rows: pl.DataFrame, title: str, subtitle: str) -> bytes:
    """The set-aside rows as an Excel file a clerk can work through."""
    from .compliance import to_excel

    df = rows.select(
        pl.col("path").alias("文件"), pl.col("sheet").alias("工作表"), pl.col("row_no").alias("行号"),
        pl.col("column_name").alias("列"), pl.col("reason").replace_strict(REASON_LABELS, default=pl.col("reason"))
        .alias("问题"), pl.col("message").alias("说明与改正方法"),
    ).to_pandas()
    return to_excel({"待改正行": df}, title, subtitle)
