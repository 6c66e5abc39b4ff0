"""Streamlit helpers of the child-level follow-up page (township users only)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import streamlit as st

from . import followup as _followup
from .auth import User
from .ui import audit, cursor


@dataclass
class FollowupLists:
    frame: pl.DataFrame
    keys: list[str]
    counts: list[tuple[str, int]]


def followup_lists(user: User) -> FollowupLists:
    """The township's lists; the area is the user's own, never one from the URL."""
    if not user.sees_children:
        st.error("您的账号无权查看儿童个人信息。")
        st.stop()
    df = _followup.followup(cursor(), user.prefix)
    audit("child_list_view", {"township": user.township, "children": df.height})
    keys = list(_followup.LISTS)
    return FollowupLists(df, keys, [(_followup.LISTS[k], int(df[k].sum())) for k in keys])


def followup_table(lists: FollowupLists, which: str, show_full: bool) -> pl.DataFrame:
    if show_full:
        audit("child_details_shown", {"list": which, "children": int(lists.frame[which].sum())})
    return _followup.display(lists.frame, which, show_full)
