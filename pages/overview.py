"""总览: key figures and a map of townships shaded by children."""

import streamlit as st

from liushou_geo import ui, ui_export

ui.setup_page()
area = ui.area_selector()
figures = ui.overview_figures(area)
view = ui.overview_map_view(area)

st.title(f"{ui.APP_TITLE} · {ui.area_title(area)}")
ui.kpi_row(figures)

map_key = ui.map_key("overview_map", area)
event = st.pydeck_chart(view.deck, on_select="rerun", selection_mode="single-object", key=map_key, height=560)
if area.county is None:           # city-wide, a click on a township opens its county
    ui.drill(event, area, map_key, to_county=True)
ui.legend(view)
st.caption("点击地图上的乡镇或在左侧选择县（市、区）可放大查看。地图不加载任何外部底图或字体。")

st.subheader("各乡镇（街道）情况")
ui.township_table(area.county)

st.divider()
ui_export.export_buttons("children", area.county, area.township, None)
