"""The Streamlit helpers: the only module of the library that imports streamlit.

Connections are cached per process and every query runs on its own cursor
(a DuckDB connection is not thread-safe; Streamlit runs each session in a
thread). Results are cached per database file version, so a rerun repeats no
work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import html

import polars as pl
import streamlit as st

from . import compliance, metrics, pagemaps, store, targets
from .area import Area
from .auth import ROLES, AuthError, AuthStore, User
from .mapview import MapView, overview_map, target_map
from .settings import SettingsError, load_settings

if TYPE_CHECKING:              # annotations only; pandas is imported where it is used
    import pandas as pd

APP_TITLE = "留守儿童关爱服务地图"


def serve(address: str = "127.0.0.1", port: int = 8501) -> None:
    """Start the dashboard (``liushou-geo serve``, what ``make run`` uses).

    Streamlit treats an app with a ``pages/`` folder as a "version 1"
    multipage app until the first session calls ``st.navigation``: in that
    first session a URL naming a file in ``pages/`` runs that file alone,
    without ``app.py``. Setting the flag before the server starts turns that
    mode off for every session.

    Error details (tracebacks with server paths) go to the server log only,
    and work folders left by checks abandoned before a restart are removed.
    """
    import sys

    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.web import cli as stcli

    from .settings import REPO_ROOT

    store.remove_stale_work(store.db_path())
    PagesManager.uses_pages_directory = False
    sys.argv = ["streamlit", "run", str(REPO_ROOT / "app.py"), "--server.address", address,
                "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
                "--client.showErrorDetails", "none"]
    stcli.main()


def _db_version() -> tuple[str, tuple | None]:
    """The store's path and the identity of the file now under it: a swap (new
    inode) or any write (mtime) makes a new version."""
    p = store.db_path()
    try:
        st_ = p.stat()
    except FileNotFoundError:
        return str(p), None
    return str(p), (st_.st_ino, st_.st_mtime_ns)


# One version at a time: the replaced snapshot is dropped, not closed, so queries
# still running on its cursors finish and its file closes with the last of them.
@st.cache_resource(show_spinner=False, max_entries=1)
def _connection(path: str, version: tuple | None):
    return store.open_snapshot(path)


@st.cache_resource(show_spinner=False)
def settings():
    return load_settings()


def cursor():
    """A cursor on the cached read-only snapshot of the store; a missing, locked or
    unreadable store stops the page with a message (details to the server log)."""
    import logging

    import duckdb

    path, version = _db_version()
    try:
        cur = _connection(path, version).cursor()
        cur.execute("USE store")
        return cur
    except FileNotFoundError:
        logging.getLogger(__name__).error("no store at %s", path)
        st.error("尚未建立数据库，请管理员先导入数据（liushou-geo ingest，或 make run 生成示范数据）。")
    except duckdb.Error as e:
        logging.getLogger(__name__).error("cannot open the store %s: %s", path, e)
        if "lock" in str(e).lower():
            st.error("数据库正在更新，请稍后刷新页面。")
        else:
            st.error("数据库暂时无法读取（可能正在更新或文件已损坏），请稍后刷新页面；如仍出现请联系管理员。"
                     "详情已记入服务器日志。")
    st.stop()


@st.cache_data(show_spinner=False, max_entries=16)
def _metrics(version: tuple, level: str) -> pl.DataFrame:
    return metrics.unit_metrics(cursor(), level, settings())


@st.cache_data(show_spinner=False, max_entries=256)
def _overview(version: tuple, unit_code: str | None) -> dict:
    return metrics.overview(cursor(), settings(), unit_code)


@st.cache_resource(show_spinner=False, max_entries=128)
def _overview_map(version: tuple, county: str | None, township: str | None) -> MapView:
    return overview_map(cursor(), settings(), _metrics(version, "township"), county,
                        _metrics(version, "village"), township)


def unit_metrics(level: str) -> pl.DataFrame:
    """Figures per unit of a level — only units inside the signed-in user's area."""
    df = _metrics(_db_version(), level)
    return df.filter(pl.col("code").str.starts_with(user_prefix()))


def overview_figures(area) -> dict:
    return _overview(_db_version(), area.township or area.county)


def overview_map_view(area) -> MapView:
    return _overview_map(_db_version(), area.county, area.township)


def setup_page(roles: tuple[str, ...] | None = None):
    """Every page starts here: settings valid, someone signed in (app.py's gate
    normally did it; a page run on its own stops here), the role allowed."""
    try:
        settings()
    except SettingsError as e:
        st.error(str(e))
        st.stop()
    user = current_user()
    if user is None:
        st.error("请先登录。")
        st.stop()
    if roles and user.role not in roles:
        st.error("您的账号无权查看此页。")
        st.stop()
    return user


# -- sign-in -----------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def _auth_store(path: str) -> AuthStore:
    return AuthStore(path)


def auth_store() -> AuthStore:
    from .auth import auth_path

    return _auth_store(str(auth_path()))


def audit(event: str, detail: dict | None = None) -> None:
    user = st.session_state.get("user")
    auth_store().record(user.username if user else None, event, detail)


def current_user() -> User | None:
    """The signed-in user, or None.

    A session signed in with the form (or resumed) holds ``session_id``: each
    run checks that sign-in in the auth store — it ends on sign-out anywhere,
    an administrator's lock, a password reset, user deletion, ``session_minutes``
    idle or ``auth.SESSION_MAX_HOURS`` — and slides its expiry. A new session
    (reload, new tab, bookmark) resumes from the HttpOnly cookie, which only
    the server reads (``st.context.cookies``: the websocket's handshake)."""
    import datetime as dt

    from . import auth

    now = dt.datetime.now()
    idle = settings().session_minutes
    user, sid = st.session_state.get("user"), st.session_state.get("session_id")
    if user is not None and sid:
        fresh, why = auth_store().check_session(sid, idle)
        if fresh is None:
            audit("session_expired" if why in ("idle", "max_age") else "session_revoked", {"why": why})
            for k in ("user", "session_id", "session_code", "last_seen"):
                st.session_state.pop(k, None)
            st.session_state["expired" if why in ("idle", "max_age") else "revoked"] = True
            st.session_state["_clear_cookie"] = True
            return None
        st.session_state["user"] = fresh          # role and area as the users table says now
        st.session_state["last_seen"] = now
        return fresh
    if user is not None:                          # signed in without a lasting sign-in (tests set the user)
        last = st.session_state.get("last_seen", now)
        if now - last > dt.timedelta(minutes=idle):
            audit("session_expired", {})
            for k in ("user", "last_seen"):
                st.session_state.pop(k, None)
            st.session_state["expired"] = True
            return None
        st.session_state["last_seen"] = now
        return user
    token, ip = st.context.cookies.get(auth.COOKIE_NAME), st.context.ip_address
    if isinstance(token, str) and token and st.session_state.get("_refused_cookie") != token:
        sid, user, why = auth_store().resume_session(token, idle, client=ip if isinstance(ip, str) else None)
        if user is None:
            st.session_state["_refused_cookie"] = token      # asked once per session, not on every rerun
            st.session_state["_clear_cookie"] = True
            return None
        st.session_state.update(user=user, session_id=sid, last_seen=now)
        return user
    return None


def sign_in_form() -> None:
    """Draw the sign-in form and stop the run; a successful sign-in reruns the app.

    The client's address (``st.context.ip_address``; None for this machine)
    keys the rate limit and the lockout, so a lockout holds for that address
    only and nobody can lock ``admin`` out from elsewhere."""
    from . import auth

    st.title(APP_TITLE)
    if st.session_state.pop("expired", False):
        st.info("长时间未操作，已自动退出，请重新登录。")
    if st.session_state.pop("revoked", False):
        st.info("登录已失效（已在别处退出、账号被停用或密码已重置），请重新登录。")
    if st.session_state.pop("_clear_cookie", False):
        st.html(auth.clear_cookie_html(st.get_option("server.baseUrlPath")))
    with st.form("sign_in"):
        username = st.text_input("用户名", key="sign_in_user")
        password = st.text_input("密码", type="password", key="sign_in_password")
        submitted = st.form_submit_button("登录")
    if submitted:
        s = settings()
        store = auth_store()
        ip = st.context.ip_address                 # None on this machine (and a stand-in under AppTest)
        try:
            user = store.authenticate(username.strip(), password, s.max_failed_logins, s.lockout_minutes,
                                      client=ip if isinstance(ip, str) else None)
        except AuthError as e:
            st.error(str(e))
            st.stop()
        import datetime as dt

        sid, code = store.start_session(user, s.session_minutes)
        st.session_state.update(user=user, session_id=sid, session_code=code, last_seen=dt.datetime.now())
        st.rerun()
    st.caption("本系统含未成年人个人信息，仅限授权人员使用。所有登录和查看记录均被留存。")
    st.stop()


def user_box(user: User) -> None:
    """Who is signed in, in what area, and a sign-out button."""
    area = "全市" if not user.prefix else area_label(user)
    st.sidebar.caption(f"当前用户：{user.display_name or user.username}（{ROLES[user.role]}，{area}）")
    code, sid = st.session_state.get("session_code"), st.session_state.get("session_id")
    if code and sid:
        if auth_store().handover_pending(sid):     # until the browser has its cookie (no script: an image)
            from .auth import handover_html

            with st.sidebar:
                st.html(handover_html(code, st.get_option("server.baseUrlPath")))
        else:
            st.session_state.pop("session_code", None)
    if st.sidebar.button("退出登录", key="sign_out"):
        audit("sign_out", {})
        if sid:
            auth_store().end_session(sid)          # the cookie's token stops working at once, in every tab
        for k in list(st.session_state.keys()):
            del st.session_state[k]
        st.session_state["_clear_cookie"] = True
        from .auth import COOKIE_NAME

        dead = st.context.cookies.get(COOKIE_NAME)
        if isinstance(dead, str) and dead:                  # this tab's handshake still carries the dead token
            st.session_state["_refused_cookie"] = dead
        st.rerun()


def area_label(user: User) -> str:
    code = user.township or user.county
    row = store.query(cursor(), "unit_name", {"code": code})
    return row["name"][0] if row.height else code


def user_prefix() -> str:
    user = st.session_state.get("user")
    return user.prefix if user else "\x00"    # nobody signed in sees nothing


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
    if choice not in options:
        choice = options[0] if options else ""
    st.session_state[key] = choice


def _keep_choice(key: str, param: str, choice: str) -> None:
    st.session_state[f"_remember_{key}"] = choice
    if choice:
        st.query_params[param] = choice
    elif param in st.query_params:
        del st.query_params[param]


def county_selector(key: str = "county") -> str | None:
    """Sidebar county choice, kept in the URL (?county=CODE) so a link reproduces the view."""
    user = st.session_state.get("user")
    all_counties = _metrics(_db_version(), "county").select("code", "name").rows()
    if user is not None and user.county:
        counties = [(c, n) for c, n in all_counties if c == user.county]      # their own county only
    else:
        counties = all_counties
    whole_city = user is not None and not user.county
    options = ([""] if whole_city else []) + [c for c, _ in counties]      # "" is the whole city
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
    names = dict(_metrics(_db_version(), "county").select("code", "name").rows())
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


@st.cache_data(show_spinner=False, max_entries=8)
def _village_targets(version: tuple, radius_km: float) -> pl.DataFrame:
    return targets.village_targets(cursor(), settings(), radius_km)


@st.cache_data(show_spinner=False, max_entries=32)
def _unit_targets(version: tuple, level: str, radius_km: float) -> pl.DataFrame:
    return targets.unit_targets(cursor(), settings(), level, _village_targets(version, radius_km))


@st.cache_resource(show_spinner=False, max_entries=256)
def _target_map(version: tuple, key: str, level: str, within: str, radius_km: float):
    return target_map(cursor(), settings(), _unit_targets(version, level, radius_km), key, level, within)


def unit_targets(level: str, within: str = "") -> pl.DataFrame:
    """Target figures per unit of a level, inside a code prefix."""
    df = _unit_targets(_db_version(), level, settings().room_radius_km)
    df = df.filter(pl.col("code").str.starts_with(user_prefix()))
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


def township_scope(area: Area) -> str:
    """The code prefix whose townships the compliance matrix lists: the county's
    (or the city's); a township user's own township only."""
    return (area.county or "")[:6]


def area_title(area: Area) -> str:
    """The name of the area in view, for page titles."""
    if area.township:
        return md(unit_name("township", area.township))
    return md(area_name(area.county))


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


USER_LEVEL = {"city": "city", "admin": "city", "county": "county", "township": "township"}
LEVEL_LABELS = {"county": "县（市、区）", "township": "乡镇（街道）", "village": "村（社区）"}


def evaluation_levels() -> list[str]:
    """The levels below the user's own: a county user evaluates townships and villages."""
    user = st.session_state["user"]
    return {"city": ["county", "township"], "county": ["township", "village"],
            "township": ["village"]}[USER_LEVEL[user.role]]


def evaluation(level: str) -> pd.DataFrame:
    """Year-end evaluation rows: the user's own unit first (the city, a county or
    a township), then every unit of ``level`` inside it."""
    own = unit_targets(USER_LEVEL[st.session_state["user"].role])
    units = unit_targets(level)
    both = pl.concat([own, units], how="vertical_relaxed")
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


def area_selector() -> Area:
    """Sidebar county and township, kept in the URL (?county=…&township=…).

    A code in the URL that names no unit here is ignored (the view falls
    back to the level above), so a link can never show something else.
    """
    wanted_town = st.query_params.get("township", "")
    if len(wanted_town) == 12 and "county" not in st.query_params:
        st.query_params["county"] = wanted_town[:6] + "000000"   # a township link names its county too
    county = county_selector()
    towns = unit_metrics("township")
    if county:
        towns = towns.filter(pl.col("code").str.starts_with(county[:6]))
    user = st.session_state.get("user")
    fixed = bool(user and user.township)
    options = ([] if fixed else [""]) + (towns["code"].to_list() if county else [])
    names = dict(towns.select("code", "name").rows())
    _initial_choice("township", options, "township")
    township = st.sidebar.selectbox("乡镇（街道）", options, key="township",
                                    format_func=lambda c: names[c] if c else "（全部）", disabled=not county)
    _keep_choice("township", "township", township)
    # A choice go_to() left for this run is spent now, taken or refused: one
    # naming a unit outside the user's area must not wait here for ever.
    st.session_state.pop("_go_to", None)
    return Area(county=county, township=township or None)


def _allowed(area: Area) -> bool:
    """Whether the signed-in user may view ``area`` (the same rule as the selectors)."""
    user = st.session_state.get("user")
    if user is None:
        return False
    if area.county is None:
        return area.township is None and not user.county            # the whole city: city and admin only
    if area.county not in set(_metrics(_db_version(), "county")["code"].to_list()):
        return False
    if user.county and area.county != user.county:
        return False
    if area.township is None:
        return not user.township
    return area.township[:6] == area.county[:6] and area.township in set(unit_metrics("township")["code"].to_list())


def breadcrumbs(area: Area) -> None:
    """示范市 › 安平县 › 青山镇, each ancestor the user may view a button back up."""
    trail = [(settings().city_name, Area())]
    if area.county:
        trail.append((area_name(area.county), Area(county=area.county)))
    if area.township:
        trail.append((unit_name("township", area.township), area))
    cols = st.columns(len(trail) + 6)
    for i, (label, target) in enumerate(trail):
        if i == len(trail) - 1 or not _allowed(target):
            cols[i].markdown(f"**{md(label)}**" if i == len(trail) - 1 else f"{md(label)} ›")
        elif cols[i].button(f"{md(label)} ›", key=f"crumb_{i}"):
            go_to(target)


def go_to(area: Area) -> None:
    """Change the area in view and rerun. The selectors are already drawn in
    this run, so the choice waits in ``_go_to`` until they are drawn again.

    An area the user may not view changes nothing and does not rerun: the
    selectors would refuse it, the page would draw the same view, and a
    selection asking for it again would rerun for ever (issue #17 item 7)."""
    if not _allowed(area):
        return
    st.session_state["_go_to"] = {"county": area.county or "", "township": area.township or ""}
    for key, value in (("county", area.county or ""), ("township", area.township or "")):
        _keep_choice(key, key, value)
    st.rerun()


def map_key(key: str, area: Area) -> str:
    """The state key of a page's map: it carries the area (a selection made at
    one level is not replayed at the next) and a counter bumped when a
    selection is refused (the next run draws a fresh map, without it)."""
    return f"{key}_{area.prefix or 'city'}_{st.session_state.get('_map_reset', 0)}"


def _picked_code(event, layer: str) -> str | None:
    """The code of the first object picked on ``layer``; None for anything malformed."""
    try:
        picked = event.selection.objects.get(layer) if event and event.selection else None
        code = picked[0].get("code") if picked else None
    except (AttributeError, IndexError, KeyError, TypeError):
        return None
    return code if isinstance(code, str) and len(code) == 12 and code.isdigit() else None


def _refuse_selection(key: str | None) -> None:
    """Forget a refused map selection: no rerun, and the next run draws a fresh map."""
    if key is not None:
        st.session_state.pop(key, None)
    st.session_state["_map_reset"] = st.session_state.get("_map_reset", 0) + 1


def drill(event, area: Area, key: str | None = None, to_county: bool = False) -> None:
    """A click on a township drills into it (``to_county``: into its county);
    a click on a village does nothing.

    A selection that names no township the user may view (only a crafted
    message can) is dropped without a rerun: it used to rerun the page for
    ever, the refused choice leaving the view, and so the selection, as it was."""
    objects = getattr(getattr(event, "selection", None), "objects", None)
    if not isinstance(objects, dict) or not objects.get("townships"):
        return                    # nothing picked, or a village or a room: no drill-down
    code = _picked_code(event, "townships")
    if code is None:
        _refuse_selection(key)
        return
    target = Area(county=code[:6] + "000000") if to_county else Area(county=code[:6] + "000000", township=code)
    if target == area or (not to_county and code == area.township):
        return
    if not _allowed(Area(county=code[:6] + "000000", township=code)) or not _allowed(target):
        _refuse_selection(key)
        return
    go_to(target)


RADIUS_MIN, RADIUS_MAX, RADIUS_STEP = 0.5, 20.0, 0.5


def radius_value(value, default: float | None = None) -> float:
    """A radius snapped to the slider's own values (0.5 … 20 km in 0.5 steps).

    The value keys cached views: a crafted URL or widget message could
    otherwise send endless distinct floats, each cached for ever."""
    import math

    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    if not math.isfinite(x):
        x = settings().room_radius_km if default is None else default
    x = round(x / RADIUS_STEP) * RADIUS_STEP
    return float(min(max(x, RADIUS_MIN), RADIUS_MAX))


def radius_slider(key: str = "radius") -> float:
    """The room coverage radius (km), from the URL (?radius=3) or the setting."""
    if key not in st.session_state:
        st.session_state[key] = radius_value(st.query_params.get("radius", settings().room_radius_km))
    radius = radius_value(st.sidebar.slider("活动室服务半径（公里）", RADIUS_MIN, RADIUS_MAX, step=RADIUS_STEP,
                                            key=key))
    st.query_params["radius"] = f"{radius:g}"
    return radius


def _figures(level: str) -> pl.DataFrame:
    """Base figures joined with the target counts for every unit of a level."""
    return pagemaps.page_figures(unit_metrics(level), unit_targets(level))


@st.cache_resource(show_spinner=False, max_entries=64)
def _rooms_view(version: tuple, area: Area, radius: float):
    return pagemaps.rooms_view(cursor(), settings(), area, radius, unit_metrics("village"))


@st.cache_resource(show_spinner=False, max_entries=128)
def _terminals_view(version: tuple, area: Area):
    return pagemaps.terminals_view(cursor(), settings(), area, _figures(area.level_in_view))


@st.cache_resource(show_spinner=False, max_entries=128)
def _pairing_view(version: tuple, area: Area):
    return pagemaps.pairing_view(cursor(), settings(), area, _figures(area.level_in_view))


def rooms_view(area: Area, radius: float):
    return _rooms_view(_db_version(), area, radius_value(radius))


def terminals_view(area: Area):
    return _terminals_view(_db_version(), area)


def pairing_view(area: Area):
    return _pairing_view(_db_version(), area)


def map_with_drill(view, area: Area, key: str) -> None:
    """The page's map (clicks on a township drill in), its legend and a hint."""
    state_key = map_key(key, area)
    event = st.pydeck_chart(view.deck, on_select="rerun", selection_mode="single-object",
                            key=state_key, height=540)
    drill(event, area, state_key)
    legend(view)
    st.caption("点击乡镇可进入查看各村（社区）；也可在左侧选择。悬停查看数字。地图不加载任何外部底图或字体。")


def table(df: pl.DataFrame, percent_cols: tuple[str, ...] = ()) -> None:
    st.dataframe(df, hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%.1f%%") for c in percent_cols})


def md(text: str) -> str:
    """Text safe inside Streamlit markdown (titles, captions): no link, image or HTML can form."""
    import re

    return re.sub(r"([\\`*_{}\[\]()#+\-.!<>|~])", r"\\\1", str(text))
