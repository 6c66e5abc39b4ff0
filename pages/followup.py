"""跟进名单 (township staff only): children to follow up, masked unless shown on purpose."""

import streamlit as st

from liushou_geo import ui, ui_followup

user = ui.setup_page(roles=("township",))
# Before any row is drawn: when the idle limit passes, the page leaves the
# screen by itself (the browser would otherwise keep the list until a click).
ui_followup.expiry_watch()
st.title(f"跟进名单 · {ui.md(ui.area_label(user))}")
st.caption("名单含未成年人个人信息：默认隐去部分姓名和电话。显示完整信息和下载名单均会被记录在审计日志中。")
lists = ui_followup.followup_lists(user)
tabs = st.tabs([f"{label}（{n}人）" for label, n in lists.counts])
for tab, which in zip(tabs, lists.keys):
    with tab:
        full = st.toggle("显示完整信息（将被记录）", key=f"show_{which}")
        table = ui_followup.followup_table(lists, which, full)
        ui_followup.child_table(table)
        ui_followup.download(lists, which, table, full)
