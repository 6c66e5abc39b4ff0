"""Every sheet of a file as one raw grid of text: a polars frame with ``row_no``
(1-based row of the sheet, or line of the text file) and ``c0``…``c{n-1}``
(text, null when blank), plus the merged ranges when the format has them.

One canonical text form for cells, whatever the file type, so that the row
rules see the same strings from an .xlsx, an .xls, a CSV or a web page.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import Counter
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import polars as pl

from .filetype import (MSG_ENCRYPTED, MSG_TRUNCATED, FileKind, ReadError, detect_encoding, extent_message,
                       too_large)
from .headers import map_header

HEAD_ROWS = 15                   # rows searched for the header
HEAD_BYTES = 1 << 18             # bytes of a text file enough for its head rows
_DELIMITERS = (",", "\t", ";", "|")

Merge = tuple[int, int, int, int]  # first row, first column, last row, last column (0-based, inclusive)


@dataclass
class RawSheet:
    name: str | None
    frame: pl.DataFrame          # row_no + c0..c{n-1}, every row of the sheet
    merges: list[Merge] | None   # None: the format keeps no merge information
    encoding: str | None = None


@dataclass
class Refused:
    """A sheet not read, with the reason for the clerk."""

    name: str | None
    reason: str


# -- cells -----------------------------------------------------------------------

def _excel_scientific(v: float) -> str:
    # What Excel shows of an 18-digit ID stored as a number: 15 significant
    # digits in scientific notation ("4.30224201307268E+17"); idcard.py knows it.
    mantissa, exp = f"{v:.14E}".split("E")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}E{exp}"


def cell_text(v) -> str | None:
    """The canonical text of one spreadsheet cell; None when blank."""
    t = type(v)
    if t is str:
        return v if v and not v.isspace() else None
    if t is float:
        if v.is_integer():
            return _excel_scientific(v) if abs(v) >= 1e15 else str(int(v))
        return repr(v)
    if t is int:
        return _excel_scientific(float(v)) if abs(v) >= 1e15 else str(v)
    if t is bool:
        return "是" if v else "否"
    if t is dt.datetime:
        return v.date().isoformat() if v.time() == dt.time() else v.isoformat(sep=" ")
    if t is dt.date or t is dt.time:
        return v.isoformat()
    if v is None:
        return None
    return str(v) or None


def frame_from_rows(rows: list[list], row_nos=None, first_col: int = 0) -> pl.DataFrame:
    """A raw frame from Python rows of cells (ragged rows are padded with blanks);
    the first cell of each row is column ``first_col``, the columns left of it blank."""
    width = max((len(r) for r in rows), default=0)
    if any(len(r) != width for r in rows):
        rows = [list(r) + [None] * (width - len(r)) for r in rows]
    n = len(rows)
    row_no = pl.Series("row_no", row_nos if row_nos is not None else range(1, n + 1), dtype=pl.Int64)
    names = [f"c{j}" for j in range(first_col + width)]
    if n == 0 or width == 0:
        return pl.DataFrame([row_no, *(pl.Series(c, [None] * n, dtype=pl.String) for c in names)])
    # One series of every cell, cut into rows: cheaper than a series per column.
    cells = pl.Series("v", [cell_text(v) for r in rows for v in r], dtype=pl.String).reshape((n, width))
    frame = cells.arr.to_struct(fields=names[first_col:]).struct.unnest()
    if first_col:
        frame = frame.select(*(pl.lit(None, dtype=pl.String).alias(c) for c in names[:first_col]), pl.all())
    return frame.insert_column(0, row_no)


def _sheet_frame(sheet) -> pl.DataFrame:
    """Every row of a calamine sheet from row 1 and column A (row numbers as in
    the sheet), converted in chunks so that a large sheet never exists as
    Python objects all at once."""
    start, end = sheet.start, sheet.end
    if start is None or end is None:
        return frame_from_rows([])
    parts, chunk = [], []
    first_col = n = 0
    for row in sheet.iter_rows():
        if n == 0:
            # python-calamine 0.9 yields rows from row 1 but cells from the first
            # used column; tell either way from the lengths.
            first_col = end[1] + 1 - len(row)
        chunk.append(row)
        n += 1
        if len(chunk) == _CHUNK_ROWS:
            parts.append(frame_from_rows(chunk, range(n - len(chunk) + 1, n + 1), first_col))
            chunk = []
    if chunk or not parts:
        parts.append(frame_from_rows(chunk, range(n - len(chunk) + 1, n + 1), first_col))
    frame = parts[0] if len(parts) == 1 else pl.concat(parts, how="vertical")
    skipped = end[0] + 1 - n            # rows above the first used one, when not yielded
    if skipped > 0:
        blank = pl.DataFrame({"row_no": pl.Series(range(1, skipped + 1), dtype=pl.Int64),
                              **{c: pl.Series([None] * skipped, dtype=pl.String) for c in frame.columns[1:]}})
        frame = pl.concat([blank, frame.with_columns(pl.col("row_no") + skipped)], how="vertical")
    return frame


_CHUNK_ROWS = 16384


# -- workbooks -------------------------------------------------------------------

def _calamine_error(exc: Exception) -> ReadError:
    text = str(exc)
    if type(exc).__name__ == "PasswordError" or re.search(r"passw|encrypt", text, re.I):
        return ReadError(MSG_ENCRYPTED)
    if re.search(r"zip|eof|end of|invalid|corrupt|unexpected", text, re.I):
        return ReadError(MSG_TRUNCATED)
    return ReadError(f"无法打开表格文件（{text[:120]}）。请确认文件未损坏、未加密，"
                     "在 Excel 中打开后另存为 .xlsx 再重新提交")


def workbook_sheets(path: Path, file_type: str, refused: dict[str, str]) -> list[RawSheet | Refused]:
    """Every sheet of an .xlsx/.xls (as told by its content, whatever its name)."""
    from python_calamine import CalamineWorkbook

    suffix = path.suffix.lower()
    try:
        if (file_type == "xlsx" and suffix in (".xlsx", ".xlsm")) or (file_type == "xls" and suffix == ".xls"):
            wb = CalamineWorkbook.from_path(str(path))
        else:
            # calamine picks its reader by the name; a misnamed file is read by content.
            with path.open("rb") as f:
                wb = CalamineWorkbook.from_filelike(io.BytesIO(f.read()))
    except Exception as exc:  # calamine's own error types
        raise _calamine_error(exc) from None
    out: list[RawSheet | Refused] = []
    with wb:
        kinds = {m.name: str(m.typ) for m in getattr(wb, "sheets_metadata", [])}
        for name in wb.sheet_names:
            if name in refused:
                out.append(Refused(name, refused[name]))
                continue
            if kinds.get(name, "WorkSheet").rsplit(".", 1)[-1] != "WorkSheet":
                out.append(Refused(name, "图表或宏工作表，没有数据"))
                continue
            try:
                sheet = wb.get_sheet_by_name(name)
                end = sheet.end
                if end is not None and too_large(end[0] + 1, end[1] + 1):
                    # An .xls (whose size BIFF bounds) with a stray far cell: not worth a grid this size.
                    out.append(Refused(name, extent_message(end[0] + 1, end[1] + 1)))
                    continue
                frame = _sheet_frame(sheet)
                merges = getattr(sheet, "merged_cell_ranges", None)
            except Exception as exc:
                err = _calamine_error(exc)
                if err.args[0] == MSG_ENCRYPTED:
                    raise err from None
                out.append(Refused(name, "工作表无法读取（文件可能已损坏）。请在 Excel 中打开后另存为新文件再提交"))
                continue
            merges = [(r0, c0, r1, c1) for (r0, c0), (r1, c1) in merges] if merges is not None else None
            out.append(RawSheet(name, frame, merges))
    return out


# -- text: CSV, TSV, Excel's "Unicode 文本" ------------------------------------

def _decode_all(data: bytes, encoding: str | None) -> tuple[bytes, str]:
    """(UTF-8 bytes without BOM, the file's encoding)."""
    if encoding == "utf-16":
        try:
            return data.decode("utf-16").encode("utf-8"), "utf-16"
        except UnicodeDecodeError:
            raise ReadError("文件是 Unicode 文本，但内容不完整或已损坏。请重新导出后提交") from None
    enc = detect_encoding(data)
    if enc == "utf-8-sig":
        return data[3:], enc
    if enc == "gb18030":
        return data.decode("gb18030").encode("utf-8"), enc
    return data, enc


def split_rows(text: str, delimiter: str, limit: int) -> list[list[str]]:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, quotechar='"', doublequote=True, strict=False)
    out = []
    try:
        for row in reader:
            out.append(row)
            if len(out) >= limit:
                break
    except csv.Error:
        pass
    return out


def choose_delimiter(head: str, prefer_tab: bool = False) -> str:
    """The delimiter under which the head rows carry the best header; else the one
    splitting most rows the same way."""
    best, best_score = None, None
    order = ("\t", ",", ";", "|") if prefer_tab else _DELIMITERS
    for rank, d in enumerate(order):
        rows = split_rows(head, d, HEAD_ROWS)
        fields = max((len(map_header(r)) for r in rows), default=0)
        widths = Counter(len(r) for r in rows if len(r) > 1)
        common = widths.most_common(1)[0][1] if widths else 0
        score = (fields, common, -rank)
        if best_score is None or score > best_score:
            best, best_score = d, score
    return best


def text_head(path: Path, kind: FileKind) -> tuple[str, str]:
    """(the first complete lines of a text file, its delimiter): cheap, for peeking."""
    with path.open("rb") as f:
        raw = f.read(HEAD_BYTES)
    if kind.encoding == "utf-16":
        raw = raw[: len(raw) // 2 * 2]
        text = raw.decode("utf-16", errors="ignore")
    else:
        text = raw.decode(kind.encoding or "utf-8", errors="ignore").lstrip("\ufeff")
    if len(raw) == HEAD_BYTES and "\n" in text:
        text = text[: text.rindex("\n") + 1]        # drop the last, cut line
    return text, choose_delimiter(text[:65536], prefer_tab=kind.encoding == "utf-16")


def text_sheet(path: Path, kind: FileKind) -> RawSheet:
    """A delimited text file, read column-wise by polars whatever its size.

    Row numbers are the lines rows start on. Polars reads from the first row
    as wide as the widest of the head (it takes the column count from its
    first line); the title lines above it come from the csv module. When
    polars cannot account for every line (bare CRs, unbalanced quotes), the
    csv module reads the whole file.
    """
    data, enc = _decode_all(path.read_bytes(), kind.encoding)
    if b"\r" in data and b"\n" not in data:
        data = data.replace(b"\r", b"\n")            # old Mac line ends
    head = data[:HEAD_BYTES].decode("utf-8", errors="ignore")
    if len(data) > HEAD_BYTES and "\n" in head:
        head = head[: head.rindex("\n") + 1]
    delimiter = choose_delimiter(head[:65536], prefer_tab=enc == "utf-16")
    rows, starts = [], []
    reader = csv.reader(io.StringIO(head), delimiter=delimiter, quotechar='"', doublequote=True, strict=False)
    try:
        line = 1
        for row in reader:
            rows.append(row)
            starts.append(line)
            line = reader.line_num + 1
            if len(rows) >= 1000:
                break
    except csv.Error:
        pass
    width = max((len(r) for r in rows), default=1) or 1
    frame = None
    k = next((i for i, r in enumerate(rows) if len(r) == width), None)
    if k is not None and data.count(b"\r") == data.count(b"\r\n"):  # bare CRs split lines differently
        offset = 0
        for _ in range(starts[k] - 1):
            offset = data.index(b"\n", offset) + 1
        frame = _polars_body(data[offset:] if offset else data, delimiter, width, starts[k])
        if frame is not None and k:
            top = frame_from_rows([r + [""] * (width - len(r)) for r in rows[:k]], starts[:k])
            frame = pl.concat([top, frame])
    if frame is None:
        frame = _csv_module_frame(data.decode("utf-8"), delimiter, width)
    return RawSheet(None, frame, None, enc)


def _polars_body(body: bytes, delimiter: str, width: int, first_line: int) -> pl.DataFrame | None:
    """The rows from line ``first_line`` on, or None when polars' rows do not
    account for every line."""
    n_lines = body.count(b"\n") + (1 if body and not body.endswith(b"\n") else 0)
    try:
        frame = pl.read_csv(body, has_header=False, separator=delimiter, quote_char='"',
                            schema={f"c{i}": pl.String for i in range(width)}, truncate_ragged_lines=True,
                            raise_if_empty=False)
    except Exception:  # polars' parse errors: the csv module reads it
        return None
    row_no = pl.int_range(first_line, first_line + frame.height, dtype=pl.Int64)
    if frame.height != n_lines:
        # Line breaks inside quoted cells (an address typed with Alt+Enter): a
        # row starts on its index plus the breaks in the rows above it.
        breaks = frame.select(pl.sum_horizontal(pl.col(c).str.count_matches("\n", literal=True).fill_null(0)
                                                for c in frame.columns).cast(pl.Int64)).to_series()
        if frame.height + breaks.sum() != n_lines:
            return None                  # lines polars read otherwise: the csv module reads them
        row_no = row_no + pl.lit(breaks.cum_sum() - breaks)
    # Blank means null, as for a spreadsheet's empty or spaces-only cell.
    return frame.select(
        row_no.alias("row_no"),
        *[pl.when(pl.col(c).str.strip_chars().str.len_bytes() > 0).then(pl.col(c)).alias(c)
          for c in frame.columns])


def _csv_module_frame(text: str, delimiter: str, width: int) -> pl.DataFrame:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, quotechar='"', doublequote=True, strict=False)
    rows, row_nos = [], []
    start = 1
    for row in reader:
        rows.append(row[:width])
        row_nos.append(start)
        start = reader.line_num + 1
    frame = frame_from_rows(rows, row_nos)
    missing = [pl.lit(None, dtype=pl.String).alias(f"c{j}") for j in range(frame.width - 1, width)]
    return frame.with_columns(missing) if missing else frame


# -- web pages saved as .xls -----------------------------------------------------

class _TableParser(HTMLParser):
    """Cells of every top-level <table>, with their colspan/rowspan."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[tuple[str, int, int]]]] = []
        self._depth = 0
        self._cell: list[str] | None = None
        self._span = (1, 1)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._depth += 1
            if self._depth == 1:
                self.tables.append([])
        elif self._depth == 1 and tag == "tr":
            self.tables[-1].append([])
        elif self._depth == 1 and tag in ("td", "th"):
            a = dict(attrs)
            self._cell = []
            self._span = (_int(a.get("colspan")), _int(a.get("rowspan")))
            if not self.tables[-1]:
                self.tables[-1].append([])
        elif self._cell is not None and tag in ("br", "p", "div"):
            self._cell.append("\n")

    def handle_endtag(self, tag):
        if tag == "table":
            self._close_cell()
            self._depth = max(self._depth - 1, 0)
        elif self._depth == 1 and tag in ("td", "th", "tr"):
            self._close_cell()

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def _close_cell(self):
        if self._cell is not None and self._depth == 1:
            text = re.sub(r"[ \t\r\n\xa0]*\n[ \t\r\n\xa0]*", "\n", "".join(self._cell)).strip(" \t\r\n\xa0")
            self.tables[-1][-1].append((text, *self._span))
        self._cell = None


def _int(v) -> int:
    try:
        return max(1, min(int(str(v).strip()), 1000))
    except (TypeError, ValueError):
        return 1


def html_sheets(path: Path) -> list[RawSheet]:
    """Each <table> of a web page (an "xls" exported by a web system) as a sheet."""
    data = path.read_bytes()
    m = re.search(rb"""charset\s*=\s*["']?([A-Za-z0-9_-]+)""", data[:4096])
    enc = m.group(1).decode("ascii").lower() if m else None
    if enc in (None, "gb2312", "gbk", "gb18030"):
        enc = detect_encoding(data)
    try:
        text = data.decode(enc)
    except (LookupError, UnicodeDecodeError):
        text = data.decode(detect_encoding(data))
    parser = _TableParser()
    parser.feed(text)
    parser.close()
    if not parser.tables:
        raise ReadError("这是一个网页文件，其中没有表格。请从系统中导出 Excel（.xlsx/.xls）或 CSV 文件后提交")
    out = []
    for t, cells in enumerate(parser.tables):
        grid: dict[tuple[int, int], str] = {}
        merges: list[Merge] = []
        for r, row in enumerate(cells):
            c = 0
            for text_, colspan, rowspan in row:
                while (r, c) in grid:
                    c += 1
                for dr in range(rowspan):
                    for dc in range(colspan):
                        grid[(r + dr, c + dc)] = ""
                grid[(r, c)] = text_
                if colspan > 1 or rowspan > 1:
                    merges.append((r, c, r + rowspan - 1, c + colspan - 1))
                c += colspan
        n_rows = max((r for r, _ in grid), default=-1) + 1
        n_cols = max((c for _, c in grid), default=-1) + 1
        rows = [[grid.get((r, c), "") for c in range(n_cols)] for r in range(n_rows)]
        name = f"表{t + 1}" if len(parser.tables) > 1 else None
        out.append(RawSheet(name, frame_from_rows(rows), merges, enc))
    return out
