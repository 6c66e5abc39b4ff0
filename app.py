"""liushou_geo dashboard entry point: `streamlit run app.py`."""

import streamlit as st

from liushou_geo.ui import APP_TITLE

st.set_page_config(page_title=APP_TITLE, layout="wide")

pages = [
    st.Page("pages/overview.py", title="总览", url_path="home", default=True),
    st.Page("pages/compliance.py", title="目标达标", url_path="targets"),
    st.Page("pages/rooms.py", title="活动室覆盖", url_path="room-coverage"),
    st.Page("pages/terminals.py", title="亲情电话", url_path="hotlines"),
    st.Page("pages/pairing.py", title="结对帮扶", url_path="pairing-gaps"),
    st.Page("pages/evaluation.py", title="年度评估", url_path="year-end"),
]
st.navigation(pages).run()
