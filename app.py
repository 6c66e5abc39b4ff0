"""liushou_geo dashboard entry point: `liushou-geo serve` (or `streamlit run app.py`).

This one file is read twice. ``streamlit run`` finds the ``st.App`` below and
serves it (Starlette, uvicorn): the server imports this file as the module
``app`` and gets the dashboard plus two small HTTP routes of
``liushou_geo.auth`` that set and remove the sign-in cookie (HttpOnly,
SameSite=Strict — a Streamlit script cannot set a cookie). Every session then
runs this file as the Streamlit script, as ``__main__``: the dashboard.
"""

import logging

import streamlit as st

from liushou_geo import ui

if __name__ != "__main__":         # imported by the server: the ASGI app and its routes
    from pathlib import Path

    from starlette.middleware import Middleware

    from liushou_geo.auth import http_routes
    from liushou_geo.web import SecurityHeaders

    base = st.get_option("server.baseUrlPath")
    app = st.App(Path(__file__).resolve(), routes=http_routes(base),
                 middleware=[Middleware(SecurityHeaders, base_path=base)])   # headers; no public metrics
else:                              # a Streamlit session (also AppTest)
    st.set_page_config(page_title=ui.APP_TITLE, layout="wide")

    user = ui.current_user()        # resumes a lasting sign-in from the cookie when the session is new
    pages = [
        st.Page("pages/overview.py", title="总览", url_path="home", default=True),
        st.Page("pages/compliance.py", title="目标达标", url_path="targets"),
        st.Page("pages/rooms.py", title="活动室覆盖", url_path="room-coverage"),
        st.Page("pages/terminals.py", title="亲情电话", url_path="hotlines"),
        st.Page("pages/pairing.py", title="结对帮扶", url_path="pairing-gaps"),
        st.Page("pages/evaluation.py", title="年度评估", url_path="year-end"),
        st.Page("pages/planner.py", title="选址规划", url_path="planner"),
    ]
    # Before sign-in every page is declared (the menu is hidden), so a bookmarked
    # link keeps its page through the sign-in form; each page checks the role itself.
    if user is None or user.sees_children:
        pages.append(st.Page("pages/followup.py", title="跟进名单", url_path="follow-up"))
    if user is None or user.role == "admin":
        pages.append(st.Page("pages/admin.py", title="数据与审计", url_path="admin"))
    # Navigation is declared before the sign-in form, so a deep link keeps its page.
    nav = st.navigation(pages, position="sidebar" if user else "hidden")
    if user is None:
        ui.sign_in_form()             # stops the run
    ui.user_box(user)
    try:
        nav.run()
    except Exception:               # Streamlit's own stop/rerun are BaseExceptions and pass through
        # Details (paths, SQL) go to the server log, never to the page (issue #17).
        logging.getLogger("liushou_geo").exception("page %s failed", nav.url_path)
        st.error("页面出错，已记录在服务器日志中。请刷新页面重试；如仍出错，请联系系统管理员。")
