"""结对帮扶: pairing rate against the 60 % target, children still to pair, overdue contacts."""

import streamlit as st

from liushou_geo import ui, ui_export

ui.setup_page()
area = ui.area_selector()
view = ui.pairing_view(area)

st.title(f"结对帮扶 · {ui.area_title(area)}")
ui.breadcrumbs(area)
n = view.notes
cols = st.columns(4)
cols[0].metric("结对帮扶率", f"{n['paired'] / n['children']:.1%}" if n["children"] else "—",
               help=f"目标 {n['target']:g}%")
cols[1].metric("已结对", f"{n['paired']:,} 人")
cols[2].metric("各单位达标还需结对", f"{n['to_pair']:,} 人", help="各单位分别计算后相加")
cols[3].metric("代理家长联系逾期", f"{n['overdue']:,} 人", help="已结对但一个月内没有联系记录")
st.caption("此页只显示汇总数字；需要跟进的儿童名单由乡镇工作人员在权限范围内查看。")

left, right = st.columns([3, 2])
with left:
    ui.map_with_drill(view.map, area, key="pairing_map")
with right:
    ui.table(view.table, percent_cols=("结对率",))

st.divider()
ui_export.export_buttons("pairing", area.county, area.township, None)
