"""年度评估: every target with its figure and verdict, for the user's area and the units inside it."""

import streamlit as st

from liushou_geo import ui

ui.setup_page()
st.title("年度评估")
ui.as_of_caption()
level = st.radio("评估单位", ui.evaluation_levels(), horizontal=True, key="evaluation_level",
                 format_func=lambda v: ui.LEVEL_LABELS[v])
table = ui.evaluation(level)
st.dataframe(table, hide_index=True, width="stretch")
if st.download_button("导出 Excel", data=ui.evaluation_excel(level), key="evaluation_excel",
                      file_name="年度评估.xlsx",
                      mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"):
    ui.audit("export", {"what": "year_end_evaluation", "level": level})
