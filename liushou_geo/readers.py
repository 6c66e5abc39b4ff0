"""One reading path for every table a clerk hands over.

:func:`read_file` tells the file's type from its bytes (:mod:`filetype`),
turns each sheet into a raw grid of text (:mod:`sheets`), finds the header by
scoring the first rows (one or two rows, merged groups flattened to
``父亲情况/姓名``), fills vertically merged cells down, and keeps only data
rows: titles, notes, blank rows, 合计/填表人 rows and the notes below them are
dropped by one function, :func:`data_rows`, for files of every size.
"""

from __future__ import annotations

import re
from functools import lru_cache
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from .filetype import ReadError, check_xlsx, identify
from .headers import canonical, columns_for_kind, detect_kind, group_key, map_header
from .sheets import (HEAD_ROWS, RawSheet, Refused, frame_from_rows, html_sheets, split_rows, text_head, text_sheet,
                     workbook_sheets)

__all__ = ["ReadError", "ReadResult", "Skipped", "Table", "data_rows", "find_header", "peek_kind", "read_file"]

# First cells of rows that are not data: totals, signatures, notes.
_FOOTER_MARKS = ("合计", "总计", "小计", "填表人", "填报人", "审核人", "审核:", "审核：", "制表", "负责人", "备注",
                 "说明", "注:", "注：", "单位(盖章)", "单位（盖章）", "盖章")


@dataclass
class Table:
    """One sheet (or text file) with its header found and its data rows."""

    path: Path
    sheet: str | None            # sheet name (None for CSV/text)
    kind: str | None
    columns: dict[str, int]      # field key -> column index i (the frame column is f"c{i}")
    header_row: int              # 1-based row number of the LAST header row
    frame: pl.DataFrame          # data rows only: row_no (Int64) + c0..c{n-1} (String, null when blank)
    encoding: str | None = None
    as_of_hint: str | None = None    # a date from a '填报日期：2026年6月30日' line above the header
    labels: list[str] = field(default_factory=list)       # flattened header text per column
    filled_down: list[str] = field(default_factory=list)  # field keys whose merged cells were filled down

    @property
    def n_rows(self) -> int:
        return self.frame.height


@dataclass
class Skipped:
    sheet: str | None
    reason: str                  # for the clerk


@dataclass
class ReadResult:
    file_type: str               # xlsx | xls | csv | text (UTF-16 tab export) | html
    tables: list[Table]
    skipped: list[Skipped]


# -- header ----------------------------------------------------------------------

@dataclass
class Header:
    first: int                   # 0-based index (in the head) of the first header row
    last: int                    # ... of the last header row
    columns: dict[str, int]
    labels: list[str]
    kind: str | None


def _label(text: str | None) -> str:
    return "".join(text.split()) if text else ""


def _two_rows(top: list, sub: list, r: int, merges) -> tuple[dict[str, int], list[str]]:
    """Column map and labels of a header on rows r (groups) and r + 1 (sub-labels)."""
    width = len(top)
    group = list(top)
    spread = [False] * width        # the column's group text comes from a cell spanning columns
    if merges is not None:
        for r0, c0, r1, c1 in merges:
            if r0 == r and c1 > c0 and c0 < width:
                spread[c0] = True
                for c in range(c0 + 1, min(c1, width - 1) + 1):
                    group[c], spread[c] = top[c0], True
    else:
        # No merge information (CSV): a group cell covers the blank cells to
        # its right that carry a sub-label, up to the next filled cell.
        for c in range(1, width):
            if group[c] is None and group[c - 1] is not None and sub[c] is not None:
                group[c], spread[c], spread[c - 1] = group[c - 1], True, True
    columns: dict[str, int] = {}
    labels = []
    for c in range(width):
        g, s = _label(group[c]), _label(sub[c])
        if g and s and g != s and (spread[c] or canonical(g) is None):
            key, label = group_key(g, s), f"{g}/{s}"
        else:
            # A single column merged down both rows, or a title above.
            key, label = (canonical(g), g) if g and (canonical(g) or not s) else (canonical(s), s)
        labels.append(label)
        if key and key not in columns:
            columns[key] = c
    return columns, labels


def find_header(head: list[list], merges=None) -> Header | None:
    """The header among the first rows: the one or two rows mapping most cells to
    known fields (ties: the earlier, then the single row), or None."""
    best, best_score = None, None
    singles = [map_header(cells) for cells in head[:HEAD_ROWS]]
    for i, cells in enumerate(head[:HEAD_ROWS]):
        candidates = [(i, singles[i], None)]
        # Two rows only where one of them names a field: a group row over a
        # row of sub-labels always carries some (序号, 姓名 or the sub 姓名).
        if i > 0 and (singles[i] or singles[i - 1]) and any(cells):
            candidates.append((i - 1, *_two_rows(head[i - 1], cells, i - 1, merges)))
        for first, cols, labels in candidates:
            kind = detect_kind(set(cols))
            if kind is None:
                continue
            score = (len(cols), -i, first)     # more fields; earlier last row; fewer header rows
            if best_score is None or score > best_score:
                best, best_score = Header(first, i, cols, labels or [_label(c) for c in cells], kind), score
    return best


_AS_OF_ABOVE = re.compile(r"(?:填报|统计|截止)(?:日期|时间)\s*[:：]?\s*([0-9０-９]{4}\s*[-/.年]\s*[0-9０-９]{1,2}\s*[-/.月]\s*[0-9０-９]{1,2}\s*日?)")


def _as_of_above(rows: list[list]) -> str | None:
    """The date in a '填报日期：…' line above the header, if any."""
    for cells in rows:
        m = _AS_OF_ABOVE.search(" ".join(c for c in cells if c))
        if m:
            return re.sub(r"\s+", "", m.group(1))
    return None


# -- data rows -------------------------------------------------------------------

_MARKS_RE = "^(?:" + "|".join(re.escape(m) for m in _FOOTER_MARKS) + ")"


@lru_cache(maxsize=256)
def _feature_exprs(cells: tuple[str, ...], first_col: int, data_columns: frozenset[int],
                   repeated: tuple[tuple[int, tuple[str, ...]], ...]) -> list[pl.Expr]:
    """Per-row features, in one pass over the cells; built once per header layout
    (a city's files share a few), as building expressions costs more than a
    small sheet's rows."""
    first3 = list(cells[first_col:first_col + 3])
    outside = [c for c in cells if int(c[1:]) not in data_columns]
    again = []
    for i, texts in repeated:
        if texts:
            text = pl.col(f"c{i}").str.strip_chars()
            again.append((text == texts[0] if len(texts) == 1 else text.is_in(list(texts))).fill_null(False))
    false = pl.lit(False)
    return [
        pl.sum_horizontal(pl.col(list(cells)).is_not_null()).alias("n"),
        # "合  计": clerks space out short labels to fill the cell.
        (pl.any_horizontal(pl.col(first3).str.replace_all(r"\s+", "").str.contains(_MARKS_RE).fill_null(False))
         if first3 else false).alias("footer"),
        (pl.any_horizontal(pl.col(outside).is_not_null()) if outside else false).alias("outside"),
        ((pl.sum_horizontal(again) >= 2) if len(again) >= 2 else false).alias("again"),
    ]


def data_rows(frame: pl.DataFrame, columns: dict[str, int], header: list[list] = (), first_col: int = 0
              ) -> pl.DataFrame:
    """The rows below a header that are data: not blank, not a 合计/填表人/note row,
    not a one-cell note (below the totals: not a row of fewer than 3 cells),
    not the header repeated. The one place that decides, for every file."""
    cells = tuple(c for c in frame.columns if c != "row_no")
    if not cells or frame.height == 0:
        return frame
    data_columns = frozenset(i for key, i in columns.items() if key != "seq")
    # The header again (a sheet printed in pages): two of its labels in their columns.
    probe = [i for k, i in columns.items() if k in ("name", "id_number", "sex", "birth")] or \
        sorted(columns.values())[:3]
    repeated = tuple((i, tuple(sorted({row[i].strip() for row in header if i < len(row) and row[i]})))
                     for i in probe)
    feats = frame.select(_feature_exprs(cells, first_col, data_columns, repeated))
    n, footer = feats["n"].to_numpy(), feats["footer"].to_numpy()
    # A footer row itself is dropped; after the first one, rows of fewer than 3 cells are notes.
    after = np.cumsum(footer & (n > 0)) > 0
    note = (n == 1) & feats["outside"].to_numpy()
    keep = (n > 0) & ~footer & ~(after & (n < 3)) & ~note & ~feats["again"].to_numpy()
    return frame.filter(pl.Series(keep, dtype=pl.Boolean))


def _fill_down(data: pl.DataFrame, raw: RawSheet, columns: dict[str, int], last_header: int
               ) -> tuple[pl.DataFrame, list[str]]:
    """Values of vertically merged cells below the header, on every row of their block."""
    if not raw.merges or data.height == 0:
        return data, []
    key_of = {}
    for key, i in columns.items():
        key_of.setdefault(i, key)
    fills: dict[int, dict[int, str]] = {}
    for r0, c0, r1, c1 in raw.merges:
        if r1 > r0 and r0 > last_header and c0 in key_of and key_of[c0] != "seq" and r0 < raw.frame.height:
            value = raw.frame.item(r0, f"c{c0}")
            if value is not None:
                fills.setdefault(c0, {}).update({r + 1: value for r in range(r0 + 1, r1 + 1)})
    filled = []
    exprs = []
    for c, by_row in fills.items():
        col = f"c{c}"
        target = pl.col("row_no").replace_strict(by_row, default=None, return_dtype=pl.String)
        if data.select((pl.col(col).is_null() & target.is_not_null()).any()).item():
            exprs.append(pl.coalesce(pl.col(col), target).alias(col))
            filled.append(key_of[c])
    return (data.with_columns(exprs) if exprs else data), filled


_CODE12 = r"^\s*\d{12}\s*$"


def _tabulate(path: Path, raw: RawSheet) -> Table | Skipped:
    frame = raw.frame
    head = [list(r[1:]) for r in frame.head(HEAD_ROWS).iter_rows()]
    h = find_header(head, raw.merges)
    if h is None:
        return Skipped(raw.name, _no_header_reason(raw.name, head))
    last_row_no = frame.item(h.last, "row_no")
    body = frame.slice(h.last + 1)
    header_cells = head[h.first:h.last + 1]
    filled_cols = [i for i, c in enumerate(header_cells[-1]) if c] + list(h.columns.values())
    data = data_rows(body, h.columns, header_cells, min(filled_cols))
    data, filled_down = _fill_down(data, raw, h.columns, h.last)
    kind = h.kind
    if kind == "division_codes":
        codes = data.get_column(f"c{h.columns['code']}").drop_nulls()
        if codes.len() == 0 or codes.str.contains(_CODE12).mean() <= 0.5:
            return Skipped(raw.name, "有“代码”“名称”列，但代码大多不是12位统计用区划代码，无法确定这是什么表")
    labels = h.labels + [""] * (frame.width - 1 - len(h.labels))
    return Table(path=path, sheet=raw.name, kind=kind, columns=columns_for_kind(kind, h.columns),
                 header_row=int(last_row_no), frame=data, encoding=raw.encoding,
                 as_of_hint=_as_of_above(head[:h.first]), labels=labels, filled_down=filled_down)


_INSTRUCTIONS = re.compile(r"说明|填表|须知|注意事项|目录|封面|帮助|填报要求")
_SUMMARY = re.compile(r"汇总|统计|合计")
_COUNT_HEADER = re.compile(r"人数|数量|总数|合计|小计|户数|[(（]人[)）]")


def _no_header_reason(name: str | None, head: list[list]) -> str:
    rows = [[c for c in r if c] for r in head]
    rows = [r for r in rows if r]
    if not rows:
        return "空白工作表" if name is not None else "文件没有内容"
    if name and _INSTRUCTIONS.search(name):
        return "没有数据表头（填表说明）"
    if (name and _SUMMARY.search(name)) or any(sum(bool(_COUNT_HEADER.search(c)) for c in r) >= 1
                                               and len(r) >= 3 for r in rows):
        return "汇总表，不含儿童明细"
    if all(len(r) == 1 for r in rows):
        if sum(len(r[0]) > 20 for r in rows) * 2 >= len(rows):
            return "没有数据表头（填表说明）"
        return "只有一列数据，没有表头（不是台帐表格）"
    return "没有数据表头（前 15 行中找不到“姓名”“身份证号”等列名）"


# -- files -----------------------------------------------------------------------

def read_file(path: Path) -> ReadResult:
    """Every table of a file, and every sheet not read with why.

    Raises ReadError (message for the clerk) when the file as a whole cannot
    be read: a PDF, a truncated download, a password, a zip bomb, a sheet
    too large to read and nothing else readable. A file with no table is a
    ReadResult without tables, its sheets skipped with why.
    """
    path = Path(path)
    kind = identify(path)
    if kind.type in ("xlsx", "xls"):
        refused = {}
        if kind.type == "xlsx":
            check = check_xlsx(path)
            refused = check.refused
            if refused and len(refused) >= check.n_sheets:
                # Every sheet refused: the parser never opens the file.
                name, reason = next(iter(refused.items()))
                raise ReadError(f"工作表“{name}”{reason}")
        sheets = workbook_sheets(path, kind.type, refused)
        file_type = kind.type
    elif kind.type == "html":
        sheets, file_type = html_sheets(path), "html"
    else:
        sheet = text_sheet(path, kind)
        sheets, file_type = [sheet], ("text" if sheet.encoding == "utf-16" else "csv")
    tables, skipped = [], []
    for s in sheets:
        if isinstance(s, Refused):
            skipped.append(Skipped(s.name, s.reason))
            continue
        t = _tabulate(path, s)
        (tables if isinstance(t, Table) else skipped).append(t)
        s.frame = None          # the raw grid is no longer needed: free it before the next sheet
    if not tables:
        refused_here = [s for s in sheets if isinstance(s, Refused) and s.reason.startswith("表格范围异常")]
        if refused_here:
            raise ReadError(f"工作表“{refused_here[0].name}”{refused_here[0].reason}")
    return ReadResult(file_type, tables, skipped)


def peek_kind(path: Path) -> str | None:
    """The kind of a (large) CSV/text file from its first rows; None when not
    recognised, or when the file is not text (read it with :func:`read_file`)."""
    path = Path(path)
    try:
        kind = identify(path)
    except ReadError:
        return None
    if kind.type != "text":
        return None
    text, delimiter = text_head(path, kind)
    rows = split_rows(text, delimiter, 200)
    t = _tabulate(path, RawSheet(None, frame_from_rows(rows), None, kind.encoding))
    return t.kind if isinstance(t, Table) else None
