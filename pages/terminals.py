"""亲情电话: terminals needed (one per 60 children) against installed, the shortfall and its cost."""

import streamlit as st

from liushou_geo import ui, ui_export

ui.setup_page()
area = ui.area_selector()
view = ui.terminals_view(area)

st.title(f"亲情电话与信箱 · {ui.area_title(area)}")
ui.breadcrumbs(area)
n = view.notes
cols = st.columns(5)
cols[0].metric("应配终端", f"{n['needed']:,} 部", help=f"每村按每 {ui.settings().children_per_terminal} 名儿童 1 部计算后汇总")
cols[1].metric("已装终端", f"{n['installed']:,} 部")
cols[2].metric("缺口", f"{n['shortfall']:,} 部")
cols[3].metric("补齐费用", f"{n['cost']:,} 元", help=f"每部 {ui.settings().terminal_cost_yuan:,} 元；年度预算 {n['budget']:,} 元")
cols[4].metric("信箱覆盖", f"{n['mailbox_num']}/{n['mailbox_den']}" if n["mailbox_den"] else "—",
               help="有邮政信箱的学校和村（居）委会 / 全部")
st.caption(f"补齐缺口约占年度预算（{n['budget']:,} 元）的 {n['cost'] / n['budget']:.1%}。" if n["budget"] else "")

left, right = st.columns([3, 2])
with left:
    ui.map_with_drill(view.map, area, key="terminals_map")
with right:
    ui.table(view.table)

st.divider()
ui_export.export_buttons("terminals", area.county, area.township, None)
