"""Shaping target figures for people: the township × target matrix, the
year-end evaluation table, and their Excel export. No streamlit here."""

from __future__ import annotations

import io
import math

import pandas as pd
import polars as pl

from .targets import ALL_TARGETS, STATUS_LABELS, TARGETS

# RdYlBu ends and middle: distinguishable with the common colour-vision deficiencies.
STATUS_COLORS = {"met": (69, 117, 180), "amber": (254, 224, 144), "short": (215, 48, 39),
                 "na": (220, 220, 220), "info": (220, 220, 220)}
STATUS_TEXT_COLORS = {"met": "#ffffff", "amber": "#000000", "short": "#ffffff", "na": "#555555", "info": "#000000"}


def cell_text(rate, num, den) -> str:
    """'62.5%（125/200）', or '—' when there is nothing to measure."""
    if den in (None, 0) or rate is None:
        return "—"
    return f"{rate:.1f}%（{num}/{den}）"


def matrix_targets(level: str):
    """The targets shown for units of a level (township room coverage means nothing for one village)."""
    return [t for t in ALL_TARGETS if not (level == "village" and t.key == "room_townships")]


def matrix(units: pl.DataFrame, name_header: str, level: str = "township") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(values, statuses) indexed alike: one row per unit, one column per target.

    values holds the cell text; statuses the status code of each cell, for colouring.
    """
    values = {name_header: units["name"].to_list()}
    statuses = {name_header: ["" for _ in range(units.height)]}
    for t in matrix_targets(level):
        rows = units.select(f"{t.key}_rate", f"{t.key}_num", f"{t.key}_den", f"{t.key}_status").rows()
        values[t.short] = [cell_text(r, n, d) for r, n, d, _ in rows]
        statuses[t.short] = [s for *_, s in rows]
    return pd.DataFrame(values), pd.DataFrame(statuses)


def styled_matrix(units: pl.DataFrame, name_header: str, level: str = "township"):
    """A pandas Styler: each cell coloured by its status."""
    values, statuses = matrix(units, name_header, level)

    def colour(col: pd.Series):
        st = statuses[col.name]
        return [
            "" if not s else
            f"background-color: rgb{STATUS_COLORS[s]}; color: {STATUS_TEXT_COLORS[s]}"
            for s in st
        ]

    return values.style.apply(colour, axis=0)


def shortfalls(units: pl.DataFrame, thresholds: dict[str, float | None]) -> pl.DataFrame:
    """Every unit × target not met, with how many more the numerator needs
    (ceil(threshold × denominator) − numerator)."""
    out = []
    for t in TARGETS:
        th = thresholds.get(t.key)
        for r in units.iter_rows(named=True):
            if th is None or r[f"{t.key}_status"] not in ("short", "amber"):
                continue
            need = math.ceil(th / 100 * r[f"{t.key}_den"] - 1e-9) - r[f"{t.key}_num"]
            out.append({"code": r["code"], "name": r["name"], "target": t.label, "rate": r[f"{t.key}_rate"],
                        "threshold": th, "num": r[f"{t.key}_num"], "den": r[f"{t.key}_den"], "gap": need})
    schema = {"code": pl.Utf8, "name": pl.Utf8, "target": pl.Utf8, "rate": pl.Float64, "threshold": pl.Float64,
              "num": pl.Int64, "den": pl.Int64, "gap": pl.Int64}
    return pl.DataFrame(out, schema=schema)


def evaluation_table(units: pl.DataFrame, thresholds: dict[str, float | None]) -> pd.DataFrame:
    """The year-end evaluation (年度评估): one row per unit, for every target its
    figure and 达标 / 未达标."""
    data = {"单位": units["name"].to_list(), "留守儿童（人）": units["children"].to_list()}
    for t in ALL_TARGETS:
        th = thresholds.get(t.key)
        head = f"{t.label}" + (f"（目标≥{th:g}%）" if th is not None else "")
        data[head] = [cell_text(r, n, d) for r, n, d in
                      units.select(f"{t.key}_rate", f"{t.key}_num", f"{t.key}_den").rows()]
        if th is not None:
            data[f"{t.short}结论"] = [STATUS_LABELS["met"] if s == "met" else
                                    STATUS_LABELS["na"] if s == "na" else "未达标"
                                    for s in units[f"{t.key}_status"].to_list()]
    return pd.DataFrame(data)


def safe_cell(value):
    """Neutralise text a spreadsheet would run as a formula (=, +, -, @)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def to_excel(sheets: dict[str, pd.DataFrame], title: str, subtitle: str) -> bytes:
    """An .xlsx with one sheet per table: a title row, a subtitle row, the table."""
    import xlsxwriter

    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False})
    bold = wb.add_format({"bold": True, "font_size": 14})
    head = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True, "valign": "vcenter"})
    cell = wb.add_format({"border": 1})
    for name, df in sheets.items():
        ws = wb.add_worksheet(name[:31])
        ws.write_string(0, 0, title, bold)
        ws.write_string(1, 0, subtitle)
        for j, col in enumerate(df.columns):
            ws.write_string(3, j, str(col), head)
            ws.set_column(j, j, max(10, min(28, len(str(col)) * 2)))
        for i, row in enumerate(df.itertuples(index=False), start=4):
            for j, v in enumerate(row):
                v = safe_cell(v)
                if v is None or (isinstance(v, float) and pd.isna(v)):
                    ws.write_blank(i, j, None, cell)
                elif isinstance(v, (int, float)) and not isinstance(v, bool):
                    ws.write_number(i, j, v, cell)
                else:
                    ws.write_string(i, j, str(v), cell)
        ws.freeze_panes(4, 1)
    wb.close()
    return buf.getvalue()
