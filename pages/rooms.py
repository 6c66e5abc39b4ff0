"""活动室覆盖: where rooms are, who lives beyond every room's radius, which townships have none."""

import streamlit as st

from liushou_geo import ui, ui_export

ui.setup_page()
area = ui.area_selector()
radius = ui.radius_slider()
view = ui.rooms_view(area, radius)

st.title(f"活动室覆盖 · {ui.area_title(area)}")
ui.breadcrumbs(area)
n = view.notes
cols = st.columns(5)
cols[0].metric("在用活动室", f"{n['rooms_active']} 个")
cols[1].metric("在建 / 停用", f"{n['rooms_building']} / {n['rooms_closed']} 个")
cols[2].metric("无在用活动室的乡镇", f"{n['no_room_townships'].height} 个", help="乡镇全覆盖：每个乡镇至少一个在用活动室")
cols[3].metric(f"{radius:g} 公里外的儿童", f"{n['outside']:,} 人")
cols[4].metric("范围外比例", f"{n['outside'] / n['children']:.1%}" if n["children"] else "—")

left, right = st.columns([3, 2])
with left:
    ui.map_with_drill(view.map, area, key="rooms_map")
with right:
    st.subheader("无在用活动室的乡镇（街道）")
    st.dataframe(n["no_room_townships"].select(ui.pl.col("full_name").alias("乡镇（街道）")),
                 hide_index=True, width="stretch")
    st.subheader("各单位范围外儿童")
    ui.table(view.table, percent_cols=("范围外比例",))

st.divider()
ui_export.export_buttons("rooms", area.county, area.township, None)
