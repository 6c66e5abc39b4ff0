"""Cell-level cleaning: text, dates, yes/no, village names.

Each parser returns a value or raises CellError with a Chinese message that
says what is wrong and how to fix it.
"""

from __future__ import annotations

import datetime as dt
import re

_EXCEL_EPOCH = dt.date(1899, 12, 30)
_DATE_PATTERNS = [
    re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"),
    re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"),
    re.compile(r"^(\d{4})\.(\d{1,2})\.(\d{1,2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日?$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
]
_YES = {"是", "有", "已发", "已发放", "y", "yes", "true", "1", "√"}
_NO = {"否", "无", "未发", "未发放", "n", "no", "false", "0", "×", ""}
# Committee suffixes, longest first, so 社区居民委员会 is stripped before 委员会.
_VILLAGE_SUFFIXES = ("社区居民委员会", "社区居委会", "村民委员会", "居民委员会", "村委会", "居委会")


_DIGIT_RUN = re.compile(r"[0-9０-９][0-9０-９\s\-]{5,}[0-9０-９Xx]")


def shown(value: object, limit: int = 20) -> str:
    """A cell as a message may quote it: runs of 9+ digits (an ID or a phone
    number typed into the wrong column) are described, never repeated."""
    s = str(value).strip()
    def hide(m: re.Match) -> str:
        n = sum(c.isdigit() or c in "０１２３４５６７８９" for c in m.group())
        return f"［{n}位数字］" if n >= 9 else m.group()   # dates (8 digits) stay readable

    s = _DIGIT_RUN.sub(hide, s)
    return s if len(s) <= limit else s[:limit] + "…"


class CellError(ValueError):
    """A cell that cannot be used; ``reason`` is the stable code."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def text(cell: object) -> str | None:
    """Trimmed text, or None for a blank cell. Whole floats lose their '.0'."""
    if cell is None:
        return None
    if isinstance(cell, float) and cell.is_integer():
        cell = int(cell)
    if isinstance(cell, (dt.datetime, dt.date)):
        cell = cell.isoformat()[:10]
    s = str(cell).replace("\u3000", " ").strip()
    return s or None


def parse_date(cell: object) -> dt.date | None:
    """A date from any of the forms clerks use, or None when blank."""
    if cell is None:
        return None
    if isinstance(cell, dt.datetime):
        return cell.date()
    if isinstance(cell, dt.date):
        return cell
    if isinstance(cell, (int, float)) and not isinstance(cell, bool):
        n = float(cell)
        if 20000101 <= n <= 21001231 and n.is_integer():
            return parse_date(str(int(n)))
        if 1 <= n < 100000:  # an Excel date serial
            return _EXCEL_EPOCH + dt.timedelta(days=int(n))
        raise CellError("bad_date", f"日期“{shown(cell)}”无法识别")
    s = str(cell).strip().translate(str.maketrans("０１２３４５６７８９", "0123456789"))
    if not s:
        return None
    s = s.split(" ")[0].split("T")[0]
    for pat in _DATE_PATTERNS:
        m = pat.match(s)
        if m:
            try:
                return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            except ValueError:
                break
    if s.isdigit() and 1 <= int(s) < 100000:
        return _EXCEL_EPOCH + dt.timedelta(days=int(s))
    raise CellError("bad_date", f"日期“{shown(s)}”无法识别，请写成 2015-03-02 的格式")


def parse_yes_no(cell: object) -> bool | None:
    """是/否 and its common spellings; None when blank."""
    s = text(cell)
    if s is None:
        return None
    low = s.lower()
    if low in _YES:
        return True
    if low in _NO:
        return False
    raise CellError("bad_yes_no", f"“{shown(s)}”应填“是”或“否”")


def parse_int(cell: object) -> int | None:
    s = text(cell)
    if s is None:
        return None
    try:
        v = float(s)
    except ValueError:
        raise CellError("bad_number", f"“{shown(s)}”应为整数") from None
    if not v.is_integer() or v < 0:
        raise CellError("bad_number", f"“{shown(s)}”应为非负整数")
    return int(v)


def parse_float(cell: object) -> float | None:
    s = text(cell)
    if s is None:
        return None
    try:
        return float(s)
    except ValueError:
        raise CellError("bad_number", f"“{shown(s)}”应为数字") from None


def village_base(name: str) -> str:
    """A village or community name without its committee suffix.

    李家村民委员会 / 李家村委会 / 李家村 -> 李家村; 城东社区居民委员会 -> 城东社区.
    """
    s = re.sub(r"\s+", "", name)
    for suf in _VILLAGE_SUFFIXES:
        if s.endswith(suf):
            s = s[: -len(suf)]
            break
    if s.endswith("委员会"):
        s = s[:-3]
    # 村民委员会 leaves "李家" (the 村 is part of 村民); put it back.
    if name.endswith(("村民委员会", "村委会")) and not s.endswith("村"):
        s += "村"
    if name.endswith(("社区居民委员会", "社区居委会")) and not s.endswith("社区"):
        s += "社区"
    return s


_URBAN_ENDS = ("社区", "居委会", "居民委员会", "居")
_RURAL_ENDS = ("村", "村委会", "村民委员会")


def committee_kind(name: str) -> str | None:
    """'居' for an urban community (社区, 居委会, 居民委员会), '村' for a village
    (村, 村委会, 村民委员会), None when the name carries no such suffix."""
    s = re.sub(r"\s+", "", name or "")
    if s.endswith(_URBAN_ENDS):
        return "居"
    if s.endswith(_RURAL_ENDS):
        return "村"
    return None


def name_key(name: str) -> str:
    """A loose key for matching county/township/village names: no suffix, no spaces."""
    base = village_base(name)
    for suf in ("村", "社区", "居委", "居"):
        if base.endswith(suf) and len(base) > len(suf):
            return base[: -len(suf)]
    return base


def unit_key(name: str) -> str:
    """Loose key for county/township names: 青山镇 and 青山 match, 安平县 and 安平."""
    s = re.sub(r"\s+", "", name)
    for suf in ("街道办事处", "街道办", "街道", "镇", "乡", "县", "区", "市"):
        if s.endswith(suf) and len(s) > len(suf):
            return s[: -len(suf)]
    return s
