"""18-digit resident ID numbers (GB 11643): normalising, checking, decoding.

The ID carries the birth date (digits 7-14), the sex (digit 17: odd = male)
and an ISO 7064 MOD 11-2 check digit. Clerks' files carry IDs with spaces,
full-width digits, a lowercase ``x``, or as numbers Excel has rounded.
"""

from __future__ import annotations

import datetime as dt
import re

_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
_CHECK_CHARS = "10X98765432"
_FULLWIDTH = str.maketrans("０１２３４５６７８９ＸｘＸ", "0123456789XXX")
_ID_RE = re.compile(r"^\d{17}[\dX]$")
# What Excel leaves of an 18-digit number: 15 significant digits, often shown
# in scientific notation ("4.30102E+17") or with the tail zeroed.
_SCI_RE = re.compile(r"^\d(\.\d+)?E\+?\d+$", re.IGNORECASE)


def check_digit(first17: str) -> str:
    """The MOD 11-2 check character for the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS))
    return _CHECK_CHARS[total % 11]


def normalise(raw: object) -> str:
    """Strip spaces, fold full-width digits and a lowercase x; '' for blank."""
    if raw is None:
        return ""
    if isinstance(raw, float):
        # A float ID is always Excel-damaged; keep a text form for the message.
        return repr(raw)
    text = str(raw).translate(_FULLWIDTH)
    text = re.sub(r"[\s\u3000'’‘]", "", text)
    return text.upper()


def looks_excel_rounded(raw: object) -> bool:
    """True when the cell is an ID that Excel stored as a number (precision lost)."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return True
    text = normalise(raw)
    return bool(_SCI_RE.match(text)) or (text.endswith("000") and len(text) == 18 and text.isdigit()
                                          and not is_valid(text))


def is_valid(id_number: str) -> bool:
    """Format, birth date and check digit all correct (expects a normalised ID)."""
    if not _ID_RE.match(id_number):
        return False
    if birth_date(id_number) is None:
        return False
    return check_digit(id_number[:17]) == id_number[17]


def birth_date(id_number: str) -> dt.date | None:
    """Birth date encoded in the ID, or None if it is not a calendar date."""
    try:
        return dt.date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    except ValueError:
        return None


def sex(id_number: str) -> str:
    """'男' or '女' from the 17th digit."""
    return "男" if int(id_number[16]) % 2 == 1 else "女"


def make_id(area6: str, born: dt.date, sequence: int, male: bool) -> str:
    """Build a valid ID: area code, birth date, 3-digit sequence with the sex parity."""
    seq = sequence % 500 * 2 + (1 if male else 0)
    body = f"{area6}{born:%Y%m%d}{seq:03d}"
    return body + check_digit(body)


def mask(id_number: str) -> str:
    """The displayable form: first 6 and last 4 characters (430224********123X)."""
    if len(id_number) != 18:
        return "*" * len(id_number)
    return id_number[:6] + "*" * 8 + id_number[-4:]


def age_on(born: dt.date, on: dt.date) -> int:
    """Age in whole years on a date."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))
