"""Reading spreadsheets and CSV files into raw tables, finding the header row
and telling data rows from titles, totals and notes.

Cells keep the type the file gave them (an ID Excel stored as a number stays a
float, so the checks can recognise it).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from .headers import detect_kind, map_header

SPREADSHEET_SUFFIXES = {".xlsx", ".xlsm", ".xls"}
CSV_SUFFIXES = {".csv", ".txt"}
# First cells of rows that are not data: totals, signatures, notes.
_FOOTER_MARKS = ("合计", "总计", "小计", "填表人", "填报人", "审核人", "审核:", "审核：", "制表", "负责人", "备注",
                 "说明", "注:", "注：", "单位(盖章)", "单位（盖章）", "盖章")
_HEADER_SCAN_ROWS = 12


class ReadError(ValueError):
    """A file that cannot be read at all; the message is for the clerk."""


@dataclass
class Table:
    """One sheet (or CSV) with its header found."""

    path: Path
    sheet: str | None
    kind: str | None
    columns: dict[str, int]          # field key -> column index
    header_row: int                  # 1-based
    rows: list[tuple[int, list]] = field(default_factory=list)  # (1-based row number, cells)
    encoding: str | None = None
    as_of_hint: object = None        # a 填报日期 written above the header ("填报日期：2026-06-30")


def detect_encoding(data: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030 (a superset of GBK and GB2312)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        data.decode("gb18030")
        return "gb18030"
    except UnicodeDecodeError:
        raise ReadError("文件编码无法识别（不是 UTF-8 也不是 GB18030/GBK）。请用 Excel 另存为“CSV UTF-8”后重新提交。") from None


def _csv_sheets(path: Path) -> list[tuple[str | None, list[list], str]]:
    data = path.read_bytes()
    enc = detect_encoding(data)
    text = data.decode(enc)
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",\t;|")
    except csv.Error:
        dialect = csv.excel
    return [(None, [list(r) for r in csv.reader(io.StringIO(text), dialect)], enc)]


def _spreadsheet_sheets(path: Path) -> list[tuple[str | None, list[list], None]]:
    from python_calamine import CalamineWorkbook

    try:
        wb = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises its own error types
        raise ReadError(f"无法打开表格文件（{exc}）。请确认文件未损坏、未加密，并另存为 .xlsx 后重新提交。") from None
    out = []
    for name in wb.sheet_names:
        # skip_empty_area=False keeps row numbers equal to the sheet's own.
        rows = wb.get_sheet_by_name(name).to_python(skip_empty_area=False)
        out.append((name, [list(r) for r in rows], None))
    return out


def is_blank(cells: list) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def is_footer(cells: list) -> bool:
    """A totals, signature or note row below the data."""
    for c in cells[:3]:
        # "合  计": clerks space out short labels to fill the cell.
        if isinstance(c, str) and re.sub(r"\s+", "", c).startswith(_FOOTER_MARKS):
            return True
    return False


def is_note(cells: list, columns: dict[str, int]) -> bool:
    """A one-cell text row outside the data columns (a merged note such as
    "以上信息经核实无误"), not a child's row: its only text stands in the 序号
    column or in a column the header does not name."""
    filled = [i for i, c in enumerate(cells) if not is_blank([c])]
    if len(filled) != 1 or not isinstance(cells[filled[0]], str):
        return False
    data_columns = {i for key, i in columns.items() if key != "seq"}
    return filled[0] not in data_columns


def find_header(rows: list[list]) -> tuple[int, dict[str, int], str | None] | None:
    """(0-based index, column map, kind) of the header row among the first rows."""
    best = None
    for i, cells in enumerate(rows[:_HEADER_SCAN_ROWS]):
        cols = map_header(cells)
        kind = detect_kind(set(cols))
        if kind and (best is None or len(cols) > len(best[1])):
            best = (i, cols, kind)
    return best


_AS_OF_ABOVE = re.compile(r"填报日期\s*[:：]\s*([0-9０-９]{4}[-/.年][0-9０-９]{1,2}[-/.月][0-9０-９]{1,2}日?)")


def _as_of_above(rows: list[list]) -> str | None:
    """The date in a '填报日期：…' line above the header, if any."""
    for cells in rows:
        for c in cells:
            m = _AS_OF_ABOVE.search(str(c or ""))
            if m:
                return m.group(1)
    return None


def read_tables(path: Path) -> list[Table]:
    """Every sheet of a file whose header we recognise, with its data rows.

    Blank rows, and totals/notes rows below the data, are not data and are not
    counted as read. Raises ReadError when the file cannot be opened.
    """
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        sheets = _csv_sheets(path)
    elif suffix in SPREADSHEET_SUFFIXES:
        sheets = _spreadsheet_sheets(path)
    else:
        raise ReadError(f"不支持的文件类型 {suffix}。请提交 .xlsx、.xls 或 .csv 文件。")
    tables = []
    for sheet, rows, enc in sheets:
        found = find_header(rows)
        if found is None:
            continue
        hi, cols, kind = found
        table = Table(path=path, sheet=sheet, kind=kind, columns=cols, header_row=hi + 1, encoding=enc,
                      as_of_hint=_as_of_above(rows[:hi]))
        after_footer = False
        for i in range(hi + 1, len(rows)):
            cells = rows[i]
            if is_blank(cells):
                continue
            if is_footer(cells):
                after_footer = True
                continue
            if after_footer and sum(not is_blank([c]) for c in cells) < 3:
                # A note below the totals (one merged cell), not a child's row.
                continue
            if is_note(cells, cols):
                continue
            table.rows.append((i + 1, cells))
        tables.append(table)
    return tables
