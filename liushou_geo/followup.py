"""Child-level follow-up lists for township staff: who has no pair, whose
proxy-parent contact is overdue, who has no guardian. Masked by default.

Only a township user's own township is ever queried (the caller passes the
user's code prefix, never one from the URL).
"""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from .store import query
from .targets import _add_months, report_dates

LISTS = {
    "unpaired": "未结对儿童",
    "contact_overdue": "代理家长联系逾期",
    "no_guardian": "无临时监护人",
}


def mask_name(name: str | None) -> str:
    """张*明 / 张* / 欧阳**: the first character (two for a compound surname of 4) and the last stay."""
    if not name:
        return ""
    n = len(name)
    if n == 1:
        return name
    if n == 2:
        return name[0] + "*"
    keep = 2 if n >= 4 else 1
    return name[:keep] + "*" * (n - keep - 1) + name[-1]


def mask_phone(phone: str | None) -> str:
    """138****0000; anything that is not an 11-digit mobile keeps only its last 2 digits."""
    if not phone:
        return ""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) == 11:
        return digits[:3] + "****" + digits[-4:]
    return "*" * max(0, len(digits) - 2) + digits[-2:]


def followup(con: duckdb.DuckDBPyConnection, township_prefix: str) -> pl.DataFrame:
    """Every child of the township on at least one list, unmasked (callers mask)."""
    if len(township_prefix) != 9 or not township_prefix.isdigit():
        raise ValueError("follow-up lists are per township (a 9-digit code prefix)")
    newest, _ = report_dates(con)
    month_ago = _add_months(newest or dt.date.today(), -1)
    return query(con, "followup_children", {"prefix": township_prefix, "month_ago": month_ago})


def display(df: pl.DataFrame, which: str, show_full: bool) -> pl.DataFrame:
    """One list, with Chinese headers; names and phones masked unless ``show_full``.
    The ID is always masked: the store holds no other form of it."""
    part = df.filter(pl.col(which))
    name = (lambda s: s) if show_full else mask_name
    phone = (lambda s: s or "") if show_full else mask_phone
    return pl.DataFrame({
        "村（社区）": part["village"],
        "姓名": [name(x) for x in part["name"]],
        "性别": part["sex"],
        "出生日期": [str(d)[:10] for d in part["birth"]],
        "身份证号": part["id_masked"],
        "临时监护人": [name(x) if x else "（无）" for x in part["guardian_name"]],
        "监护人电话": [phone(x) for x in part["guardian_phone"]],
        "父亲电话": [phone(x) for x in part["father_phone"]],
        "母亲电话": [phone(x) for x in part["mother_phone"]],
        "结对帮扶人": [x or "（未结对）" for x in part["helper"]],
        "最近联系": [str(d)[:10] if d else "—" for d in part["last_contact"]],
    })
