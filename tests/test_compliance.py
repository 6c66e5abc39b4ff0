import io

import openpyxl
import pandas as pd
import polars as pl

from liushou_geo.compliance import cell_text, evaluation_table, shortfalls, to_excel
from liushou_geo.targets import ALL_TARGETS, threshold, unit_targets


def test_cell_text():
    assert cell_text(62.5, 125, 200) == "62.5%（125/200）"
    assert cell_text(None, 0, 0) == "—"


def test_excel_neutralises_formulas_and_keeps_the_table():
    df = pd.DataFrame({"单位": ["=HYPERLINK(\"http://x\")", "@cmd", "安平县"], "人数": [1, 2, 3]})
    data = to_excel({"年度评估": df}, "标题", "数据截至 2026-06-30")
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    assert ws["A1"].value == "标题"
    assert [ws.cell(r, 1).value for r in (5, 6, 7)] == ["'=HYPERLINK(\"http://x\")", "'@cmd", "安平县"]
    assert ws.cell(5, 1).data_type == "s" and ws.cell(7, 2).value == 3


def test_evaluation_and_shortfalls_on_the_small_city(small_con, settings):
    counties = unit_targets(small_con, settings, "county")
    th = {t.key: threshold(settings, t.key) for t in ALL_TARGETS}
    table = evaluation_table(counties, th)
    assert len(table) == counties.height
    assert "结对帮扶率（目标≥60%）" in table.columns and "结对帮扶结论" in table.columns
    gaps = shortfalls(counties, th)
    for r in gaps.iter_rows(named=True):
        # after adding `gap` to the numerator, the threshold is reached, and not before
        assert (r["num"] + r["gap"]) / r["den"] * 100 >= r["threshold"] - 1e-9
        assert (r["num"] + r["gap"] - 1) / r["den"] * 100 < r["threshold"]
    assert isinstance(gaps, pl.DataFrame)
