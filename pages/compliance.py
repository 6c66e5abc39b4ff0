"""目标达标: which townships fall short of which target, and why."""

import streamlit as st

from liushou_geo import ui, ui_export

ui.setup_page()
area = ui.area_selector()
target = ui.target_selector()

st.title(f"七项目标达标情况 · {ui.area_title(area)}")
ui.breadcrumbs(area)
ui.as_of_caption()

left, right = st.columns([3, 2])
with left:
    st.subheader("乡镇（街道）× 目标")
    st.caption("点击表头排序；点击一行查看该乡镇各村（社区）。单元格为 比例（分子/分母）。")
    # The key carries the area: a row picked in one view is not replayed in the next
    # (a breadcrumb back up would otherwise bounce into the same township again).
    picked = ui.target_matrix("township", ui.township_scope(area), key=f"township_matrix_{area.prefix or 'city'}")
    if picked and picked != area.township:
        ui.go_to(ui.Area(county=picked[:6] + "000000", township=picked))
with right:
    view = ui.target_map_view(target, area.level_in_view if area.township else "township",
                              area.township[:9] if area.township else (area.county or "")[:6])
    st.pydeck_chart(view.deck, key="target_map", height=480)
    ui.legend(view)

if area.township:
    st.subheader(f"{ui.area_title(area)} · 各村（社区）")
    ui.target_matrix("village", area.township[:9], key="village_matrix")

st.divider()
ui_export.export_buttons("targets", area.county, area.township, target)
