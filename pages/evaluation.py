"""年度评估: every target with its figure and verdict, for the user's area and the units inside it."""

import streamlit as st

from liushou_geo import ui, ui_export

ui.setup_page()
st.title("年度评估")
ui.as_of_caption()
level = st.radio("评估单位", ui.evaluation_levels(), horizontal=True, key="evaluation_level",
                 format_func=lambda v: ui.LEVEL_LABELS[v])
table = ui.evaluation(level)
st.dataframe(table, hide_index=True, width="stretch")
# Handed over only on a click, which is audited (a file made on every run sat behind a URL unasked).
ui_export.audited_download("导出 Excel", ui.evaluation_excel(level), {"what": "year_end_evaluation", "level": level},
                           "年度评估.xlsx", ui_export.MIME["xlsx"], key="evaluation_excel")
