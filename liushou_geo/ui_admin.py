"""Streamlit helpers of the administrators' page: data quality, uploads, audit log, users."""

from __future__ import annotations

import polars as pl
import streamlit as st

from . import quality as _quality
from . import store, targets
from . import upload as _upload
from .ui import LEVEL_LABELS, audit, auth_store, cursor, md, settings


def quality_panel() -> None:
    """Files and rows per county and township, reasons, villages with no extract, the set-aside rows."""
    con = cursor()
    level = st.radio("汇总到", ["county", "township"], horizontal=True, key="quality_level",
                     format_func=lambda v: LEVEL_LABELS[v])
    st.dataframe(_quality.by_unit(con, level).rename({
        "code": "区划代码", "name": "名称", "files": "台帐文件", "rows_read": "读取行", "rows_loaded": "导入行",
        "rows_set_aside": "暂存待改行"}), hide_index=True, width="stretch")
    left, right = st.columns(2)
    with left:
        st.subheader("暂存原因")
        st.dataframe(_quality.reasons(con).select(pl.col("label").alias("原因"), pl.col("rows").alias("行数")),
                     hide_index=True, width="stretch")
    with right:
        missing = _quality.villages_without_extract(con)
        st.subheader(f"未报送台帐或台帐为空的村（社区）：{missing.height} 个")
        st.dataframe(missing.rename({"code": "区划代码", "full_name": "村（社区）"}), hide_index=True, width="stretch")
    rows = _quality.set_aside_rows(con)
    unplaced = _quality.unplaced_files(con)
    if unplaced.height:
        st.warning(f"{unplaced.height} 个台帐文件没有任何一行导入，请优先处理。")
        st.dataframe(unplaced.rename({"path": "文件", "rows_read": "读取行", "rows_set_aside": "暂存行"}),
                     hide_index=True, width="stretch")
    newest, _ = targets.report_dates(con)
    if st.download_button(f"下载全部待改正行（{rows.height} 行，Excel）", key="set_aside_download",
                          data=_quality.set_aside_workbook(rows, f"{settings().city_name}台帐待改正行",
                                                           f"截至 {newest}；请按行号在原文件中改正后重新报送"),
                          file_name="待改正行.xlsx",
                          mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"):
        audit("export", {"what": "set_aside_rows", "rows": rows.height})


def audit_panel() -> None:
    event = st.selectbox("事件", ["", "sign_in", "sign_in_failed", "sign_in_rate_limited", "account_locked",
                                   "account_locked_by_admin", "sign_out", "session_expired", "session_resume",
                                   "session_resume_refused", "session_revoked", "child_list_view",
                                   "child_details_shown", "export", "ingest", "user_added", "user_deleted",
                                   "password_reset", "account_unlocked"],
                         key="audit_event", format_func=lambda e: e or "全部")
    st.dataframe(pl.DataFrame(auth_store().audit(1000, event or None),
                              schema={"at": pl.Utf8, "username": pl.Utf8, "event": pl.Utf8, "detail": pl.Utf8})
                 .rename({"at": "时间", "username": "用户", "event": "事件", "detail": "内容"}),
                 hide_index=True, width="stretch")


def users_panel() -> None:
    st.caption("用户用命令行管理：liushou-geo users add / reset-password / unlock / list。")
    users = auth_store().users()
    st.dataframe(pl.DataFrame(users, schema={k: pl.Utf8 if k != "failed_count" else pl.Int64 for k in
                                             ["username", "role", "area_code", "display_name", "failed_count",
                                              "locked_until", "created_at"]}),
                 hide_index=True, width="stretch")


def upload_panel() -> None:
    """Drop files, see the report, then commit them — or not."""
    st.caption("上传台帐、设施或边界文件。先在数据库副本上检查并显示报告；确认后才替换正式数据库。")
    store.remove_stale_work(store.db_path())         # checks abandoned more than an hour ago
    files = st.file_uploader("选择文件", accept_multiple_files=True, key="upload_files",
                             type=sorted({s.lstrip(".") for s in _upload.ALLOWED_SUFFIXES} | {"xml"}))
    candidate = st.session_state.get("upload_candidate")
    if files and st.button("检查（不导入）", key="upload_check"):
        if candidate:
            _upload.discard(candidate)
            st.session_state.pop("upload_candidate", None)
            candidate = None
        bar = st.progress(0.0, text="正在检查……")
        try:
            _upload.check_size([f.size for f in files])        # before any file is read
            candidate = _upload.check(store.db_path(), [(f.name, f.getvalue()) for f in files], settings(),
                                      progress=lambda d, t, label: bar.progress(min(d / max(t, 1), 1.0),
                                                                                text=f"正在检查 {md(label)}"))
        except _upload.UploadError as e:
            bar.empty()
            st.error(str(e))
            return
        bar.empty()
        st.session_state["upload_candidate"] = candidate
    if not candidate:
        return
    _upload_report(candidate)


def _upload_report(candidate) -> None:
    """The check's report, what each file replaces, and the confirmation."""
    r = candidate.report
    cols = st.columns(5)
    cols[0].metric("读取行", f"{r['rows_read']:,}")
    cols[1].metric("将导入", f"{r['rows_loaded']:,}")
    cols[2].metric("暂存待改", f"{r['rows_set_aside']:,}")
    cols[3].metric("重复行（只计一次）", f"{r['rows_duplicate']:,}")
    cols[4].metric("无法读取的文件", r["files_with_errors"])
    st.dataframe(pl.DataFrame([{**{k: f.get(k) for k in ("path", "kind", "status", "rows_read", "rows_loaded",
                                                         "rows_set_aside", "rows_duplicate", "message")},
                                "replaced": _upload.replaced_text(f)} for f in r["files"]],
                              schema={"path": pl.Utf8, "kind": pl.Utf8, "status": pl.Utf8, "rows_read": pl.Int64,
                                      "rows_loaded": pl.Int64, "rows_set_aside": pl.Int64,
                                      "rows_duplicate": pl.Int64, "message": pl.Utf8, "replaced": pl.Utf8})
                 .rename({"path": "文件", "kind": "类型", "status": "状态", "rows_read": "读取行",
                          "rows_loaded": "导入行", "rows_set_aside": "暂存待改行", "rows_duplicate": "重复行",
                          "message": "说明", "replaced": "替换的台帐（行数 原→新）"}),
                 hide_index=True, width="stretch")
    shrinking = _upload.shrinking(r)
    confirmed = True
    if shrinking:
        # A small file with the same 填报单位 + 填报日期 replaces a whole extract: ask first.
        st.warning(f"{len(shrinking)} 份台帐将被行数不到原来一半的文件替换，请核对是否上传了不完整的文件：")
        st.dataframe(pl.DataFrame(shrinking, schema={"path": pl.Utf8, "unit": pl.Utf8, "as_of": pl.Utf8,
                                                     "rows_before": pl.Int64, "rows_after": pl.Int64})
                     .rename({"path": "文件", "unit": "填报单位", "as_of": "填报日期", "rows_before": "原行数",
                              "rows_after": "新行数"}), hide_index=True, width="stretch")
        confirmed = st.checkbox("我确认用较少的行替换上述台帐", key="upload_confirm_shrinking")
    left, right = st.columns(2)
    # Checked here too: a disabled button is only a hint to the browser.
    if left.button("确认导入", type="primary", key="upload_commit", disabled=not confirmed) and confirmed:
        detail = {"via": "upload", "files": [f["path"] for f in r["files"]], "rows_read": r["rows_read"],
                  "rows_loaded": r["rows_loaded"], "rows_set_aside": r["rows_set_aside"],
                  "shrinking_replacements": len(shrinking)}
        st.session_state.pop("upload_candidate", None)
        st.session_state.pop("upload_confirm_shrinking", None)
        try:
            _upload.commit(candidate, store.db_path(), record=lambda: audit("ingest", detail))
        except _upload.UploadError as e:
            st.error(str(e))
            return
        st.cache_data.clear()
        st.success("已导入。各页面将显示新数据。")
    if right.button("放弃", key="upload_discard"):
        _upload.discard(candidate)
        st.session_state.pop("upload_candidate", None)
        st.rerun()
