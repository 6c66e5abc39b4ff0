"""12-digit statistical division codes (统计用区划代码).

Layout: 2 province, 2 city, 2 county, 3 township, 3 village digits, e.g.
``430202001001`` = 湖南省 43 / 株洲市 02 / 荷塘区 02 / 月塘街道 001 / 文化路社区 001.
A unit's code is its prefix padded with zeros to 12 digits.
"""

from __future__ import annotations

import math
import re
import unicodedata

PREFIX_LEN = {"province": 2, "city": 4, "county": 6, "township": 9, "village": 12}
# Unit levels, coarse to fine (a province is never a unit of the dashboard).
LEVELS = ("city", "county", "township", "village")
_CODE_RE = re.compile(r"\d{12}")
_DIGITS_RE = re.compile(r"\d+")


def is_code(s) -> bool:
    """True for a string of exactly 12 ASCII digits.

    >>> is_code("430202001001"), is_code("43020200100"), is_code(430202001001)
    (True, False, False)
    """
    return isinstance(s, str) and _CODE_RE.fullmatch(s) is not None


def level_of(code) -> str | None:
    """The level a code names, or None when it is not a unit code.

    >>> [level_of(c) for c in ("430202001001", "430202001000", "430202000000", "430200000000")]
    ['village', 'township', 'county', 'city']
    >>> level_of("430000000000"), level_of("000000000001"), level_of("4302")
    (None, None, None)

    A township of a city without counties (东莞 441900003000) is still a township.
    """
    if not is_code(code) or code[:2] == "00":
        return None
    if code[9:] != "000":
        return "village"
    if code[6:9] != "000":
        return "township"
    if code[4:6] != "00":
        return "county"
    if code[2:4] != "00":
        return "city"
    return None


def prefix(code: str, level: str) -> str:
    """The leading digits that identify the unit of ``level`` containing ``code``.

    >>> prefix("430202001001", "township"), prefix("430202001001", "city")
    ('430202001', '4302')
    """
    return code[: PREFIX_LEN[level]]


def code_of(pfx: str) -> str:
    """A prefix padded with zeros to a 12-digit code.

    >>> code_of("430202001"), code_of("4302")
    ('430202001000', '430200000000')
    """
    return pfx.ljust(12, "0")


def parent_code(code: str) -> str | None:
    """The code of the unit one level up that contains ``code``; None for a city
    or a non-unit code. Skips a county whose digits are 00 (cities without
    counties, e.g. 东莞: township 441900003000 → city 441900000000).

    >>> parent_code("430202001001"), parent_code("430202001000"), parent_code("430202000000")
    ('430202001000', '430202000000', '430200000000')
    >>> parent_code("441900003000"), parent_code("430200000000")
    ('441900000000', None)
    """
    level = level_of(code)
    if level is None or level == "city":
        return None
    for up in reversed(LEVELS[: LEVELS.index(level)]):
        cand = code_of(prefix(code, up))
        if level_of(cand) == up:
            return cand
    return None


def normalize_code(value) -> str:
    """A cell as a code string: numbers without ``.0``, full-width digits made
    ASCII, spaces dropped; a 19-digit land-survey ZLDWDM whose group part is
    zero cut to its 12-digit village code. Empty string for a missing value.
    The result is not checked: use :func:`is_code`.

    >>> normalize_code(430202001001.0), normalize_code(" ４３０２０２００１００１ "), normalize_code(None)
    ('430202001001', '430202001001', '')
    >>> normalize_code("4302020010010000000")
    '430202001001'
    """
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
    s = unicodedata.normalize("NFKC", str(value)).strip().replace(" ", "")
    if s.endswith(".0") and _DIGITS_RE.fullmatch(s[:-2]):
        s = s[:-2]
    if len(s) == 19 and s.isdigit() and s.endswith("0000000"):
        s = s[:12]
    return s
