"""Streamlit helpers of the child-level follow-up page (township users only)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl
import streamlit as st

from . import followup as _followup
from . import ui, ui_export
from .auth import User
from .compliance import to_excel
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
    # Checked again right before the rows are read: a session past its idle
    # limit shows no child (the whole app reruns to the sign-in form).
    if ui.current_user() is None:
        st.rerun()
    df = _followup.followup(cursor(), user.prefix)
    audit("child_list_view", {"township": user.township, "children": df.height})
    keys = list(_followup.LISTS)
    return FollowupLists(df, keys, [(_followup.LISTS[k], int(df[k].sum())) for k in keys])


def followup_table(lists: FollowupLists, which: str, show_full: bool) -> pl.DataFrame:
    if show_full:
        audit("child_details_shown", {"list": which, "children": int(lists.frame[which].sum())})
    return _followup.display(lists.frame, which, show_full)


def child_table(df: pl.DataFrame) -> None:
    """Child rows as a static table.

    Not ``st.dataframe``: its toolbar offers "Download as CSV" (full names and
    phones, no audit record, no formula guard), and this Streamlit can only
    switch that off for every table of the app at once. ``st.table`` has no
    toolbar; its cells are Markdown, so every value is escaped (a name stays
    text, and the * of a mask stays a *)."""
    if df.is_empty():
        st.info("名单为空。")
        return
    shown = df.select(pl.all().cast(pl.String).fill_null("").map_elements(ui.md, return_dtype=pl.String))
    st.table(shown, hide_index=True, height=560 if df.height > 12 else "content")


def download(lists: FollowupLists, which: str, table: pl.DataFrame, full: bool) -> None:
    """The list on screen (masked unless shown in full) as Excel: the only way
    out for child rows, audited on each click, formulas neutralised."""
    user = st.session_state.get("user")
    township = ui.area_label(user) if user else ""
    label = _followup.LISTS[which]
    today = dt.date.today().isoformat()
    data = table.to_pandas()
    ui_export.audited_download(
        "下载名单（Excel）",
        lambda: to_excel({label: data}, f"{township}{label}名单",
                         f"含未成年人个人信息，仅限本乡镇工作使用，不得外传；导出日期 {today}"
                         + ("；完整信息" if full else "；姓名和电话已部分隐去")),
        {"what": "followup_list", "list": which, "full": full, "children": table.height,
         "township": user.township if user else None},
        f"跟进名单_{label}_{today}.xlsx", ui_export.MIME["xlsx"], key=f"followup_download_{which}",
        help="导出当前显示的名单；每次下载都记录在审计日志中")


def _idle_expired() -> bool:
    """Whether the session is past its idle limit (or signed out), without
    counting as activity: this check must not move ``last_seen``."""
    if st.session_state.get("user") is None:
        return True
    last = st.session_state.get("last_seen")
    return last is not None and dt.datetime.now() - last > dt.timedelta(minutes=ui.settings().session_minutes)


def expiry_watch() -> None:
    """Rerun the whole app once the session has been idle past its limit, so
    that a child list left open leaves the screen (the app then shows the
    sign-in form). Without this, nothing reruns an idle page and the list
    stays in the browser for as long as the tab is open."""
    every = max(5, min(30, ui.settings().session_minutes * 60 // 4))

    @st.fragment(run_every=every)
    def _watch() -> None:
        if _idle_expired():
            st.rerun(scope="app")
    _watch()
