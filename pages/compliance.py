"""目标达标: which townships fall short of which target, and why."""

import streamlit as st

from liushou_geo import ui

ui.setup_page()
county = ui.county_selector()
target = ui.target_selector()
township = ui.township_param(county)

st.title(f"七项目标达标情况 · {ui.area_name(county)}")
ui.as_of_caption()

within = county[:6] if county else ""
left, right = st.columns([3, 2])
with left:
    st.subheader("乡镇（街道）× 目标")
    st.caption("点击表头排序；点击一行查看该乡镇各村（社区）。单元格为 比例（分子/分母）。")
    picked = ui.target_matrix("township", within, key="township_matrix")
    if picked and picked != township:
        ui.set_township(picked)
        township = picked
with right:
    level, scope = ("village", township[:9]) if township else ("township", within)
    view = ui.target_map_view(target, level, scope)
    st.pydeck_chart(view.deck, key="target_map", height=480)
    ui.legend(view)

if township:
    st.subheader(f"{ui.unit_name('township', township)} · 各村（社区）")
    if st.button("返回乡镇列表", key="back_to_townships"):
        ui.set_township(None)
        st.rerun()
    ui.target_matrix("village", township[:9], key="village_matrix")
