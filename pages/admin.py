"""数据与审计 (administrators): data quality of the loaded extracts, users and the audit log."""

import streamlit as st

from liushou_geo import ui

ui.setup_page(roles=("admin",))
st.title("数据与审计")
tab_quality, tab_upload, tab_audit, tab_users = st.tabs(["数据质量", "上传台帐", "审计日志", "用户"])
with tab_quality:
    ui.quality_panel()
with tab_upload:
    ui.upload_panel()
with tab_audit:
    ui.audit_panel()
with tab_users:
    ui.users_panel()
