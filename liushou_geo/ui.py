"""The Streamlit helpers: the only module of the library that imports streamlit.

Connections are cached per process and every query runs on its own cursor
(a DuckDB connection is not thread-safe; Streamlit runs each session in a
thread). Results are cached per database file version, so a rerun repeats no
work.
"""

from __future__ import annotations

import html

import polars as pl
import streamlit as st

from . import metrics, store
from .mapview import MapView, overview_map
from .settings import SettingsError, load_settings

APP_TITLE = "留守儿童关爱服务地图"


def _db_version() -> tuple[str, float]:
    p = store.db_path()
    return str(p), (p.stat().st_mtime if p.exists() else 0.0)


@st.cache_resource(show_spinner=False)
def _connection(path: str, mtime: float):
    return store.connect(path, read_only=True)


@st.cache_resource(show_spinner=False)
def settings():
    return load_settings()


def cursor():
    """A cursor on the cached read-only connection; stops the page with a clear message if there is no store."""
    path, mtime = _db_version()
    try:
        return _connection(path, mtime).cursor()
    except FileNotFoundError as e:
        st.error(str(e))
        st.stop()


@st.cache_data(show_spinner=False)
def _metrics(version: tuple, level: str) -> pl.DataFrame:
    return metrics.unit_metrics(cursor(), level, settings())


@st.cache_data(show_spinner=False)
def _overview(version: tuple, county: str | None) -> dict:
    return metrics.overview(cursor(), settings(), county)


@st.cache_resource(show_spinner=False)
def _overview_map(version: tuple, county: str | None) -> MapView:
    return overview_map(cursor(), settings(), _metrics(version, "township"), county)


def unit_metrics(level: str) -> pl.DataFrame:
    return _metrics(_db_version(), level)


def overview_figures(county: str | None) -> dict:
    return _overview(_db_version(), county)


def overview_map_view(county: str | None) -> MapView:
    return _overview_map(_db_version(), county)


def setup_page() -> None:
    try:
        settings()
    except SettingsError as e:
        st.error(str(e))
        st.stop()


def county_selector(key: str = "county") -> str | None:
    """Sidebar county choice, kept in the URL (?county=CODE) so a link reproduces the view."""
    counties = unit_metrics("county").select("code", "name").rows()
    options = [""] + [c for c, _ in counties]      # "" is the whole city
    names = dict(counties)
    wanted = st.query_params.get("county", "")
    if key not in st.session_state:
        # A code from the URL that names no county here shows the city, nothing of it.
        st.session_state[key] = wanted if wanted in names else ""
    choice = st.sidebar.selectbox(
        "县（市、区）", options, key=key,
        format_func=lambda c: names[c] if c else f"{settings().city_name}（全市）",
    )
    if choice:
        st.query_params["county"] = choice
    elif "county" in st.query_params:
        del st.query_params["county"]
    return choice or None


def go_to_county(code: str, key: str = "county") -> None:
    st.session_state[key] = code
    st.query_params["county"] = code
    st.rerun()


def kpi_row(fig: dict) -> None:
    cols = st.columns(6)
    rate = fig["pairing_rate"]
    cols[0].metric("留守儿童", f"{fig['children']:,} 人")
    cols[1].metric("乡镇（街道）", f"{fig['townships']} 个")
    cols[2].metric("村（社区）", f"{fig['villages']} 个")
    cols[3].metric("结对帮扶率", "—" if rate is None else f"{rate:.1%}",
                   help=f"已结对 {fig['paired']:,} 人；目标 {settings().targets['t4_pairing']:.0f}%")
    cols[4].metric("亲情电话缺口", f"{fig['terminal_shortfall']:,} 部",
                   help=f"每 {settings().children_per_terminal} 名儿童 1 部，按村计算后汇总")
    cols[5].metric("无在用活动室的乡镇", f"{fig['townships_without_room']} 个", help="乡镇全覆盖：每个乡镇至少一个在用活动室")


def legend(view: MapView) -> None:
    """Legend swatches. Labels are built from numbers and fixed words only; escaped anyway."""
    items = "".join(
        f'<span style="display:inline-block;margin-right:14px"><span style="display:inline-block;width:14px;'
        f'height:14px;background:rgb({r},{g},{b});border:1px solid #666;vertical-align:middle;margin-right:4px">'
        f"</span>{html.escape(label)}</span>"
        for label, (r, g, b) in view.legend
    )
    st.markdown(f"**图例：{html.escape(view.legend_title)}**<br>{items}", unsafe_allow_html=True)


def area_name(county: str | None) -> str:
    """The city's name, or the chosen county's."""
    if county is None:
        return settings().city_name
    names = dict(unit_metrics("county").select("code", "name").rows())
    return names.get(county, county)


TABLE_HEADERS = {
    "name": "乡镇（街道）", "children": "留守儿童", "paired": "已结对", "pairing_rate": "结对率",
    "with_guardian": "有临时监护人", "terminals_needed": "应配电话", "terminals_installed": "已装电话",
    "terminal_shortfall": "电话缺口", "rooms_active": "在用活动室",
}


def township_table(county: str | None) -> None:
    """The townships in view with their figures, sortable by any column."""
    df = unit_metrics("township")
    if county:
        df = df.filter(pl.col("code").str.starts_with(county[:6]))
    df = df.with_columns(
        pairing_rate=pl.when(pl.col("children") > 0).then(pl.col("paired") / pl.col("children") * 100)
    ).select(list(TABLE_HEADERS))
    st.dataframe(
        df.rename(TABLE_HEADERS), hide_index=True, width="stretch",
        column_config={"结对率": st.column_config.NumberColumn(format="%.1f%%")},
    )
