"""Reading spreadsheets and CSV files into raw tables, finding the header row
and telling data rows from titles, totals and notes.

Cells keep the type the file gave them (an ID Excel stored as a number stays a
float, so the checks can recognise it).
"""

from __future__ import annotations

import csv
import io
import itertools
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


# -- large CSV files, read column-wise ------------------------------------------
#
# A province's registry comes as a few CSV files of 200,000 rows each. Reading
# them through the csv module makes every cell a Python object (a 75 MB file
# becomes ~1 GB of lists); polars reads the same file into Arrow columns in a
# fraction of the time and memory. The header is still found the same way, on
# the first rows, and the same rows are dropped as not data (blank, totals,
# notes), with the same row numbers; anything this reader cannot reproduce
# exactly (an unusual CSV dialect, line breaks inside quoted cells) makes it
# return None and the file is read the ordinary way.

BULK_MIN_BYTES = 2_000_000      # CSV files at least this big are read column-wise
_HEAD_BYTES = 1 << 18
# Exactly the characters Python's str.strip() and re's \s treat as whitespace.
PY_WHITESPACE = "".join(chr(i) for i in range(0x110000) if chr(i).isspace())
WS_CLASS = "".join(f"\\x{{{ord(c):X}}}" for c in PY_WHITESPACE)


@dataclass
class FrameTable(Table):
    """A table whose data rows are a polars frame: columns c0, c1, … (text or
    null) and ``row_no`` (1-based, as in the file); ``rows`` stays empty."""

    frame: object = None

    @property
    def n_rows(self) -> int:
        return self.frame.height


def _decoded_utf8(path: Path) -> tuple[bytes, str, str]:
    """(UTF-8 bytes without BOM, detected encoding, the first characters as text)."""
    data = path.read_bytes()
    enc = detect_encoding(data)
    if enc == "gb18030":
        data = data.decode("gb18030").encode("utf-8")
    elif enc == "utf-8-sig":
        data = data[3:]
    head = data[:_HEAD_BYTES].decode("utf-8", errors="ignore")
    return data, enc, head


def peek_csv_kind(path: Path) -> str | None:
    """The kind of a CSV file from its first rows (None when not recognised)."""
    import codecs

    with path.open("rb") as f:
        raw = f.read(_HEAD_BYTES)
    try:   # the head may end inside a character: decode incrementally
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(raw, final=False)
    except UnicodeDecodeError:
        text = raw.decode("gb18030", errors="ignore")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",\t;|")
    except csv.Error:
        dialect = csv.excel
    rows = list(itertools.islice(csv.reader(io.StringIO(text), dialect), _HEADER_SCAN_ROWS))
    found = find_header(rows)
    return found[2] if found else None


def read_csv_frame(path: Path) -> FrameTable | None:
    """A large CSV's data rows as a polars frame, or None to read it row-wise.

    Same header, same data rows, same row numbers as :func:`read_tables`.
    """
    import polars as pl

    data, enc, head = _decoded_utf8(path)
    sample = head[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",\t;|")
    except csv.Error:
        dialect = csv.excel
    if dialect.quotechar != '"' or dialect.escapechar or dialect.skipinitialspace or len(dialect.delimiter) != 1:
        return None
    consumed = [0]

    def lines():
        for line in io.StringIO(head):
            consumed[0] += 1
            yield line

    reader = csv.reader(lines(), dialect)
    rows = []
    for row in reader:
        rows.append(list(row))
        if len(rows) >= _HEADER_SCAN_ROWS:
            break
    found = find_header(rows)
    if found is None:
        return None
    hi, cols, kind = found
    width = len(rows[hi])
    # Lines up to and including the header: re-read the header rows alone to count them.
    consumed[0] = 0
    reader = csv.reader(lines(), dialect)
    for _ in range(hi + 1):
        next(reader)
    skip_lines = consumed[0]
    offset = 0
    for _ in range(skip_lines):
        offset = data.index(b"\n", offset) + 1
    body = data[offset:]
    if b"\r" in body.replace(b"\r\n", b""):
        return None                      # bare CR line ends: the csv module splits differently
    if not dialect.doublequote:
        # The sniffer saw no doubled quote: the csv module then reads "a""b" as a"b", polars as a"b
        # without the last quote. Only empty quoted cells ("") are read alike.
        d = re.escape(dialect.delimiter).encode()
        if re.search(rb'(?<![' + d + rb'\n])""|""(?![' + d + rb'\r\n])', body):
            return None
    n_lines = body.count(b"\n") + (0 if not body or body.endswith(b"\n") else 1)
    try:
        frame = pl.read_csv(io.BytesIO(body), has_header=False, separator=dialect.delimiter, quote_char='"',
                            schema={f"c{i}": pl.String for i in range(width)}, truncate_ragged_lines=True,
                            raise_if_empty=False)
    except Exception:  # polars' parse errors: let the csv module have it
        return None
    if frame.height != n_lines:
        return None                      # quoted line breaks, or lines polars skipped
    frame = frame.with_row_index("row_no", offset=hi + 2).with_columns(pl.col("row_no").cast(pl.Int64))
    frame = _data_rows(frame, cols, width)
    return FrameTable(path=path, sheet=None, kind=kind, columns=cols, header_row=hi + 1, encoding=enc,
                      as_of_hint=_as_of_above(rows[:hi]), frame=frame)


def _data_rows(frame, cols: dict[str, int], width: int):
    """Drop what :func:`read_tables` drops: blank rows, totals/notes and the notes below them."""
    import polars as pl

    cells = [f"c{i}" for i in range(width)]
    filled = [(pl.col(c).str.strip_chars(PY_WHITESPACE).str.len_chars().fill_null(0) > 0) for c in cells]
    n_filled = pl.sum_horizontal(filled)
    marks = "|".join(re.escape(m) for m in _FOOTER_MARKS)
    footer = pl.any_horizontal([
        pl.col(c).str.replace_all(f"[{WS_CLASS}]+", "").str.contains(f"^(?:{marks})").fill_null(False)
        for c in cells[:3]])
    data_columns = {i for key, i in cols.items() if key != "seq"}
    outside = [f for i, f in enumerate(filled) if i not in data_columns]
    note = (n_filled == 1) & (pl.any_horizontal(outside) if outside else pl.lit(False))
    f = frame.with_columns(_blank=n_filled == 0, _footer=footer, _note=note, _n=n_filled)
    f = f.with_columns(_after=(pl.col("_footer") & ~pl.col("_blank")).cast(pl.Int32).cum_sum() > 0)
    # A footer row itself is dropped; rows after it with fewer than 3 cells are notes.
    keep = ~pl.col("_blank") & ~pl.col("_footer") & ~(pl.col("_after") & (pl.col("_n") < 3)) & ~pl.col("_note")
    return f.filter(keep).drop("_blank", "_footer", "_note", "_n", "_after")
