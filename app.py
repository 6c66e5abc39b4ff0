"""liushou_geo dashboard entry point: `streamlit run app.py`."""

import streamlit as st

from liushou_geo.ui import APP_TITLE

st.set_page_config(page_title=APP_TITLE, layout="wide")

pages = [
    st.Page("pages/overview.py", title="总览", url_path="overview", default=True),
]
st.navigation(pages).run()
