"""数据与审计 (administrators): data quality of the loaded extracts, users and the audit log."""

import streamlit as st

from liushou_geo import ui, ui_admin

ui.setup_page(roles=("admin",))
st.title("数据与审计")
tab_quality, tab_upload, tab_audit, tab_users = st.tabs(["数据质量", "上传台帐", "审计日志", "用户"])
with tab_quality:
    ui_admin.quality_panel()
with tab_upload:
    ui_admin.upload_panel()
with tab_audit:
    ui_admin.audit_panel()
with tab_users:
    ui_admin.users_panel()
