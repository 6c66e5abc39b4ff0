"""liushou_geo dashboard entry point: `streamlit run app.py`."""

import streamlit as st

from liushou_geo.ui import APP_TITLE

st.set_page_config(page_title=APP_TITLE, layout="wide")

pages = [
    st.Page("pages/overview.py", title="总览", url_path="home", default=True),
    st.Page("pages/compliance.py", title="目标达标", url_path="targets"),
    st.Page("pages/evaluation.py", title="年度评估", url_path="year-end"),
]
st.navigation(pages).run()
