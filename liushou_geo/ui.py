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


def serve(address: str = "127.0.0.1", port: int = 8501) -> None:
    """Start the dashboard (``liushou-geo serve``, what ``make run`` uses).

    Streamlit treats an app with a ``pages/`` folder as a "version 1"
    multipage app until the first session calls ``st.navigation``: in that
    first session a URL naming a file in ``pages/`` runs that file alone,
    without ``app.py``. Setting the flag before the server starts turns that
    mode off for every session.
    """
    import sys

    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.web import cli as stcli

    from .settings import REPO_ROOT

    PagesManager.uses_pages_directory = False
    sys.argv = ["streamlit", "run", str(REPO_ROOT / "app.py"), "--server.address", address,
                "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    stcli.main()


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


def _initial_choice(key: str, options: list[str], param: str) -> None:
    """Initialise a selector from the URL, else from the choice remembered across
    pages (Streamlit forgets a page's widgets, and its URL parameters, when the
    user moves to another page); a code naming no option is ignored."""
    wanted = st.query_params.get(param, "")
    remembered = st.session_state.get(f"_remember_{key}", "")
    current = st.session_state.get(key)
    pending = st.session_state.get("_go_to", {})
    if key in pending and pending[key] in options:
        choice = pending.pop(key)          # a click on the map asked for this unit
    elif current in options:
        choice = current
    else:
        choice = wanted if wanted in options else remembered if remembered in options else ""
    # Assigned every run: a widget first drawn on this page would otherwise
    # start from its first option, whatever the state held.
    st.session_state[key] = choice


def _keep_choice(key: str, param: str, choice: str) -> None:
    st.session_state[f"_remember_{key}"] = choice
    if choice:
        st.query_params[param] = choice
    elif param in st.query_params:
        del st.query_params[param]


def county_selector(key: str = "county") -> str | None:
    """Sidebar county choice, kept in the URL (?county=CODE) so a link reproduces the view."""
    counties = unit_metrics("county").select("code", "name").rows()
    options = [""] + [c for c, _ in counties]      # "" is the whole city
    names = dict(counties)
    _initial_choice(key, options, "county")
    choice = st.sidebar.selectbox(
        "县（市、区）", options, key=key,
        format_func=lambda c: names[c] if c else f"{settings().city_name}（全市）",
    )
    _keep_choice(key, "county", choice)
    return choice or None


def go_to_county(code: str) -> None:
    go_to(Area(county=code))


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
    symbols = "".join(
        f'<span style="display:inline-block;margin-right:14px"><span style="display:inline-block;width:12px;'
        f'height:12px;border-radius:50%;background:rgb({r},{g},{b});border:1px solid #333;vertical-align:middle;'
        f'margin-right:4px"></span>{html.escape(label)}</span>'
        for label, (r, g, b, *_) in view.symbols
    )
    extra = f"<br>{symbols}" if symbols else ""
    st.markdown(f"**图例：{html.escape(view.legend_title)}**<br>{items}{extra}", unsafe_allow_html=True)


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


# -- targets -------------------------------------------------------------------

from . import compliance, targets  # noqa: E402  (kept with the helpers that use them)
from .mapview import target_map  # noqa: E402


@st.cache_data(show_spinner=False)
def _village_targets(version: tuple, radius_km: float) -> pl.DataFrame:
    return targets.village_targets(cursor(), settings(), radius_km)


@st.cache_data(show_spinner=False)
def _unit_targets(version: tuple, level: str, radius_km: float) -> pl.DataFrame:
    return targets.unit_targets(cursor(), settings(), level, _village_targets(version, radius_km))


@st.cache_resource(show_spinner=False)
def _target_map(version: tuple, key: str, level: str, within: str, radius_km: float):
    return target_map(cursor(), settings(), _unit_targets(version, level, radius_km), key, level, within)


def unit_targets(level: str, within: str = "") -> pl.DataFrame:
    """Target figures per unit of a level, inside a code prefix."""
    df = _unit_targets(_db_version(), level, settings().room_radius_km)
    return df.filter(pl.col("code").str.starts_with(within)) if within else df


def target_map_view(key: str, level: str, within: str = ""):
    return _target_map(_db_version(), key, level, within, settings().room_radius_km)


def target_selector(key: str = "target") -> str:
    """Sidebar choice of the target shown on the map, kept in the URL (?target=t4)."""
    keys = [t.key for t in targets.ALL_TARGETS]
    wanted = st.query_params.get("target", "t4")
    if key not in st.session_state:
        st.session_state[key] = wanted if wanted in keys else "t4"
    choice = st.sidebar.selectbox("地图显示的目标", keys, key=key,
                                  format_func=lambda k: targets.TARGET_BY_KEY[k].label)
    st.query_params["target"] = choice
    return choice


def township_param(county: str | None) -> str | None:
    """The township in the URL (?township=CODE), if it lies inside the chosen county."""
    code = st.query_params.get("township")
    towns = set(unit_targets("township", county[:6] if county else "")["code"])
    return code if code in towns else None


def set_township(code: str | None) -> None:
    if code:
        st.query_params["township"] = code
    elif "township" in st.query_params:
        del st.query_params["township"]


def as_of_caption() -> None:
    newest, oldest = targets.report_dates(cursor())
    if newest is None:
        st.warning("尚未导入任何台帐。")
        return
    span = f"{newest}" if newest == oldest else f"{oldest} 至 {newest}"
    st.caption(f"数据截至：{span}（各台帐填报日期）。比例按达标阈值着色：蓝=达标，黄=接近（差距≤"
               f"{settings().amber_band:g}个百分点），红=未达标，灰=不适用。")


def target_matrix(level: str, within: str, key: str) -> str | None:
    """The unit × target matrix, sortable; returns the code of a clicked row."""
    df = unit_targets(level, within)
    header = {"township": "乡镇（街道）", "village": "村（社区）", "county": "县（市、区）"}[level]
    event = st.dataframe(compliance.styled_matrix(df, header, level), hide_index=True, width="stretch",
                         on_select="rerun", selection_mode="single-row", key=key,
                         column_config={t.short: st.column_config.TextColumn(
                             t.short, help=f"{t.label}：比例（分子/分母）") for t in compliance.matrix_targets(level)})
    rows = event.selection.rows if event and event.selection else []
    return df["code"][rows[0]] if rows else None


def evaluation(level: str) -> "pd.DataFrame":
    """Year-end evaluation rows: the city first, then every unit of ``level``."""
    city = unit_targets("city")
    units = unit_targets(level)
    both = pl.concat([city, units], how="vertical_relaxed")
    th = {t.key: targets.threshold(settings(), t.key) for t in targets.ALL_TARGETS}
    return compliance.evaluation_table(both, th)


def evaluation_excel(level: str) -> bytes:
    newest, _ = targets.report_dates(cursor())
    df = evaluation(level)
    return compliance.to_excel({"年度评估": df}, f"{settings().city_name}留守儿童关爱服务年度评估",
                               f"数据截至 {newest}；数据来源：各学校、村（居）委会留守儿童信息台帐")


def unit_name(level: str, code: str) -> str:
    """The name of a unit of a level, by code."""
    df = unit_targets(level).filter(pl.col("code") == code)
    return df["name"][0] if df.height else code


# -- map pages: area, drill-down, cached views -----------------------------------

from . import pagemaps  # noqa: E402
from .area import Area  # noqa: E402


def area_selector() -> Area:
    """Sidebar county and township, kept in the URL (?county=…&township=…).

    A code in the URL that names no unit here is ignored (the view falls
    back to the level above), so a link can never show something else.
    """
    county = county_selector()
    towns = unit_metrics("township")
    if county:
        towns = towns.filter(pl.col("code").str.starts_with(county[:6]))
    options = [""] + (towns["code"].to_list() if county else [])
    names = dict(towns.select("code", "name").rows())
    _initial_choice("township", options, "township")
    township = st.sidebar.selectbox("乡镇（街道）", options, key="township",
                                    format_func=lambda c: names[c] if c else "（全部）", disabled=not county)
    _keep_choice("township", "township", township)
    return Area(county=county, township=township or None)


def breadcrumbs(area: Area) -> None:
    """示范市 › 安平县 › 青山镇, each ancestor a button back up."""
    trail = [(settings().city_name, Area())]
    if area.county:
        trail.append((area_name(area.county), Area(county=area.county)))
    if area.township:
        trail.append((unit_name("township", area.township), area))
    cols = st.columns(len(trail) + 6)
    for i, (label, target) in enumerate(trail):
        if i == len(trail) - 1:
            cols[i].markdown(f"**{html.escape(label)}**")
        elif cols[i].button(f"{label} ›", key=f"crumb_{i}"):
            go_to(target)


def go_to(area: Area) -> None:
    """Change the area in view and rerun. The selectors are already drawn in
    this run, so the choice waits in ``_go_to`` until they are drawn again."""
    st.session_state["_go_to"] = {"county": area.county or "", "township": area.township or ""}
    for key, value in (("county", area.county or ""), ("township", area.township or "")):
        _keep_choice(key, key, value)
    st.rerun()


def drill(event, area: Area) -> None:
    """A click on a township drills into it; a click on a village does nothing."""
    objects = event.selection.objects if event and event.selection else {}
    picked = objects.get("townships")
    if picked and picked[0]["code"] != area.township:
        code = picked[0]["code"]
        go_to(Area(county=code[:6] + "000000", township=code))


def radius_slider(key: str = "radius") -> float:
    """The room coverage radius (km), from the URL (?radius=3) or the setting."""
    default = settings().room_radius_km
    try:
        wanted = float(st.query_params.get("radius", default))
    except ValueError:
        wanted = default
    if key not in st.session_state:
        st.session_state[key] = min(max(wanted, 0.5), 20.0)
    radius = st.sidebar.slider("活动室服务半径（公里）", 0.5, 20.0, step=0.5, key=key)
    st.query_params["radius"] = f"{radius:g}"
    return radius


def _figures(level: str) -> pl.DataFrame:
    """Base figures joined with the target counts for every unit of a level."""
    return unit_metrics(level).drop("name", "lon", "lat", "parent_code", "level", "villages").join(
        unit_targets(level).drop("name", "level", "parent_code", "children", "rooms_active"), on="code", how="left")


@st.cache_resource(show_spinner=False)
def _rooms_view(version: tuple, area: Area, radius: float):
    return pagemaps.rooms_view(cursor(), settings(), area, radius, unit_metrics("village"))


@st.cache_resource(show_spinner=False)
def _terminals_view(version: tuple, area: Area):
    return pagemaps.terminals_view(cursor(), settings(), area, _figures(area.level_in_view))


@st.cache_resource(show_spinner=False)
def _pairing_view(version: tuple, area: Area):
    return pagemaps.pairing_view(cursor(), settings(), area, _figures(area.level_in_view))


def rooms_view(area: Area, radius: float):
    return _rooms_view(_db_version(), area, radius)


def terminals_view(area: Area):
    return _terminals_view(_db_version(), area)


def pairing_view(area: Area):
    return _pairing_view(_db_version(), area)


def map_with_drill(view, area: Area, key: str) -> None:
    """The page's map (clicks on a township drill in), its legend and a hint."""
    # The key carries the area: a selection made at one level is not replayed at the next.
    event = st.pydeck_chart(view.deck, on_select="rerun", selection_mode="single-object",
                            key=f"{key}_{area.prefix or 'city'}", height=540)
    drill(event, area)
    legend(view)
    st.caption("点击乡镇可进入查看各村（社区）；也可在左侧选择。悬停查看数字。地图不加载任何外部底图或字体。")


def table(df: pl.DataFrame, percent_cols: tuple[str, ...] = ()) -> None:
    st.dataframe(df, hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%.1f%%") for c in percent_cols})
