"""Streamlit download buttons for briefing pictures and packs (issue #7).

A page calls :func:`export_buttons` under its map. Files are rendered only
when a button is clicked (``st.download_button`` with a callable), so a page
rerun costs nothing. Rendering itself is :mod:`liushou_geo.export` (no
streamlit there).
"""

from __future__ import annotations

import datetime as dt
import tempfile
import threading
from pathlib import Path

import streamlit as st

from . import export, ui

MIME = _MIME = {"png": "image/png", "pdf": "application/pdf",
                "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def _kind(kind: str, target: str | None) -> str:
    """The export kind of a page: a map kind, or the chosen target on the 目标达标 page."""
    if kind in export.KINDS:
        return kind
    if target in export.TARGET_KINDS:
        return target
    return "t4"


def _unit(area_county: str | None, area_township: str | None) -> str | None:
    return area_township or area_county or None


def _radius() -> float | None:
    r = st.session_state.get("radius")
    return ui.radius_value(r) if isinstance(r, (int, float)) else None


# The cursor and settings are taken when the button is drawn (inside the script run);
# the file is rendered only when the button is clicked.

def _audited(what: dict):
    """A recorder bound to the signed-in user, usable when the click renders the file."""
    store, user = ui.auth_store(), st.session_state.get("user")
    return lambda: store.record(user.username if user else None, "export", what)


def audited_download(label: str, data, what: dict, file_name: str, mime: str, key: str,
                     help: str | None = None) -> None:
    """A download button whose file is made (or handed over) only on a click,
    and each click written to the audit log as an ``export``.

    ``data`` is bytes or a callable returning bytes; a callable runs outside
    the script run, so it must not touch ``st`` (bind its inputs when drawn).
    Nothing sits in the media store before a click: a page rerun leaves no
    file behind a URL, and no download goes unrecorded."""
    record = _audited(what)

    def make() -> bytes:
        record()
        return data() if callable(data) else data
    st.download_button(label, data=make, file_name=file_name, mime=mime, key=key, on_click="ignore", help=help)


def _map_bytes(kind: str, unit: str | None, fmt: str, size: str, radius: float | None):
    con, settings = ui.cursor(), ui.settings()
    record = _audited({"what": "map", "kind": kind, "unit": unit, "format": fmt, "size": size})

    def make() -> bytes:
        record()
        return export.render_map(con, settings, kind, unit, fmt, size, radius)
    return make


def _pack_bytes(unit: str | None, which: str):
    con, settings = ui.cursor(), ui.settings()
    record = _audited({"what": "pack", "unit": unit, "format": which})

    def make() -> bytes:
        record()
        with tempfile.TemporaryDirectory() as d:
            pack = export.build_pack(con, settings, unit, Path(d))
            return (pack.pdf if which == "pdf" else pack.xlsx).read_bytes()
    return make


@st.cache_resource(show_spinner=False)
def _warm_font() -> threading.Thread:
    """Prepare the export font once per process, in the background: on a fresh
    machine its one-time conversion takes tens of seconds, which no page should
    wait for (a click on a download button waits for it instead)."""
    def run():
        try:
            export.ensure_cjk_font()
        except export.ExportError:
            pass                # said on the page when a button is drawn
    t = threading.Thread(target=run, name="font-warmup", daemon=True)
    t.start()
    return t


def export_buttons(kind: str, area_county: str | None, area_township: str | None, target: str | None) -> None:
    """Download buttons: the map in view as PNG (1920×1080) and PDF (A4), and
    the briefing pack (PDF and Excel) of the city or the county in view."""
    if export.find_cjk_font() is None:
        try:
            export.ensure_cjk_font()          # raises the clear message
        except export.ExportError as e:
            st.info(f"导出不可用：{e}")
            return
    _warm_font()
    k = _kind(kind, target)
    unit = _unit(area_county, area_township)
    radius = _radius() if k == "rooms" else None
    today = dt.date.today().isoformat()
    area = ui.unit_name("township", area_township) if area_township else ui.area_name(area_county)
    title = export.KIND_TITLES.get(k) or next(t.label for t in export.TARGETS_ALL() if t.key == k)
    stem = f"{area}{title}_{today}"
    cols = st.columns(4)
    cols[0].download_button("下载图片（PNG 1080p）", data=_map_bytes(k, unit, "png", "1080p", radius),
                            file_name=f"{stem}.png", mime=_MIME["png"], key=f"export_png_{k}_{unit}",
                            on_click="ignore", help="1920×1080，可直接放入幻灯片")
    cols[1].download_button("下载图片（PDF A4）", data=_map_bytes(k, unit, "pdf", "1080p", radius),
                            file_name=f"{stem}.pdf", mime=_MIME["pdf"], key=f"export_pdf_{k}_{unit}",
                            on_click="ignore", help="A4 横向矢量图，适合打印")
    user = st.session_state.get("user")
    if user is not None and user.township:
        return            # packs are per city or county: a township user's area is smaller
    pack_unit = area_county or None
    pack_area = ui.area_name(area_county)
    cols[2].download_button("下载简报（PDF）", data=_pack_bytes(pack_unit, "pdf"),
                            file_name=f"{pack_area}留守儿童关爱服务简报_{today}.pdf", mime=_MIME["pdf"],
                            key=f"export_pack_pdf_{pack_unit}", on_click="ignore",
                            help="封面、目标达标汇总、各目标地图、未达标乡镇及差距")
    cols[3].download_button("下载简报表格（Excel）", data=_pack_bytes(pack_unit, "xlsx"),
                            file_name=f"{pack_area}留守儿童关爱服务简报_{today}.xlsx", mime=_MIME["xlsx"],
                            key=f"export_pack_xlsx_{pack_unit}", on_click="ignore")
    t = export.small_threshold(ui.settings())
    st.caption(f"导出的图片和简报仅含汇总数字；少于 {t} 人的数字显示为“<{t}”。")
