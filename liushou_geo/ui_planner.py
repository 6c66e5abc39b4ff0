"""Streamlit helpers of the 选址规划 page (issue #6). Besides ui.py, the only
module of the library that imports streamlit.

The solve is cached per database version and inputs (st.cache_data), so a
what-if question or a rerun repeats no solve.
"""

from __future__ import annotations

import dataclasses
import html
import math

import polars as pl
import streamlit as st

from . import planner, ui, ui_export
from .mapview import map_units


MAX_BUDGET = 10**10             # 100 亿元: far beyond any city's rooms


# Bounded caches: budget, radius and exclusions come from the client.
@st.cache_data(show_spinner=False, max_entries=32)
def _plan(version: tuple, budget: int, radius_km: float, every_township: bool, county: str | None,
          include_under_construction: bool, exclude: tuple[str, ...]) -> planner.Plan:
    return planner.plan_rooms(ui.cursor(), ui.settings(), budget, radius_km, every_township=every_township,
                              county=county, include_under_construction=include_under_construction,
                              exclude=exclude)


@st.cache_data(show_spinner=False, max_entries=64)
def _candidates(version: tuple, county: str | None, include_under_construction: bool) -> pl.DataFrame:
    return planner.candidate_sites(ui.cursor(), county, include_under_construction)


@st.cache_data(show_spinner=False, max_entries=64)
def _townships(version: tuple, within: str) -> pl.DataFrame:
    return map_units(ui.cursor(), "township", within)


def inputs(county: str | None) -> dict:
    """The planner's widgets: budget, radius, the two rules, candidate exclusions."""
    s = ui.settings()
    c1, c2, c3 = st.columns([1, 1, 2])
    budget = c1.number_input("预算（元）", min_value=0, value=10 * s.room_cost_yuan, step=s.room_cost_yuan,
                             key="planner_budget", help=f"每个活动室 {s.room_cost_yuan:,} 元")
    radius = c2.number_input("服务半径（公里）", min_value=0.5, max_value=100.0, value=float(s.room_radius_km),
                             step=0.5, key="planner_radius", help="村代表点到活动室的球面距离")
    with c3:
        every = st.toggle("每个乡镇至少一个活动室（乡镇全覆盖）", key="planner_every_township")
        under = st.toggle("在建活动室计为已有", key="planner_under_construction")
    cands = _candidates(ui._db_version(), county, under)
    labels = dict(zip(cands["code"].to_list(),
                      (f"{t} {n}" for t, n in zip(cands["township_name"].to_list(), cands["name"].to_list()))))
    excluded = st.multiselect("不宜建活动室的村（社区）", list(labels), key="planner_exclude",
                              format_func=lambda c: labels.get(c, c),
                              help="从候选站点中排除；已有活动室的村不在候选之列")
    # Snapped to the widgets' own range and steps: the radius keys the cached
    # solve, and a crafted message could otherwise send endless distinct values.
    radius = float(radius)
    radius = min(max(round(radius * 2) / 2, 0.5), 100.0) if math.isfinite(radius) else float(s.room_radius_km)
    try:
        budget = max(0, min(int(budget), MAX_BUDGET))
    except (OverflowError, ValueError):
        budget = 0
    return {"budget": budget, "radius_km": radius, "every_township": bool(every),
            "include_under_construction": bool(under), "exclude": tuple(sorted(c for c in excluded if c in labels))}


def scope(user, county: str | None) -> str | None:
    """The area planned, from the signed-in user, never from the selector alone:
    a township user plans their township, a county user their county; city
    and admin users the chosen county, else the city (None)."""
    if user is None:
        st.error("请先登录。")
        st.stop()
    if user.township:
        return user.township
    if user.county:
        return user.county
    return county or None


def area_title(code: str | None) -> str:
    """The name of the area planned (the city's, a county's or a township's)."""
    if len(planner.scope_prefix(code)) == 9:
        return ui.unit_name("township", code)
    return ui.area_name(code)


def solve(county: str | None, budget: int, radius_km: float, every_township: bool,
          include_under_construction: bool, exclude: tuple[str, ...]) -> planner.Plan:
    # Solved (and cached) per number of rooms the budget buys, at most one per
    # candidate: any budget between two room counts gives the same plan.
    cost = int(ui.settings().room_cost_yuan)
    sites = _candidates(ui._db_version(), county, include_under_construction).height
    rooms = min(budget // cost, sites)
    with st.spinner("正在求解……"):
        plan = _plan(ui._db_version(), rooms * cost, radius_km, every_township, county, include_under_construction,
                     exclude)
    return dataclasses.replace(plan, budget_yuan=budget, max_new_rooms=budget // cost)


def _pct(n: int, total: int) -> str:
    return f"{n / total:.1%}" if total else "—"


def summary(plan: planner.Plan) -> None:
    """Key figures, the solver's verdict and what the township rule needs."""
    if plan.status == "infeasible":
        st.error(plan.message or "没有可行方案。")
    elif plan.status != "optimal":
        st.warning(f"求解状态：{planner.STATUS_TEXT.get(plan.status, plan.status)}；差距 {plan.gap:.2%}")
    cols = st.columns(5)
    total = plan.children_total
    cols[0].metric("留守儿童", f"{total:,} 人")
    cols[1].metric("现有活动室覆盖", f"{plan.covered_before:,} 人", help=_pct(plan.covered_before, total))
    cols[2].metric("方案实施后覆盖", f"{plan.objective_covered_children:,} 人",
                   delta=f"+{plan.objective_covered_children - plan.covered_before:,} 人",
                   help=_pct(plan.objective_covered_children, total))
    cols[3].metric("新建活动室", f"{len(plan.new_rooms)} 个",
                   help=f"预算最多 {plan.max_new_rooms} 个，每个 {plan.room_cost_yuan:,} 元")
    cols[4].metric("无活动室的乡镇", f"{len(plan.townships_without_room_after)} 个",
                   delta=f"{len(plan.townships_without_room_after) - len(plan.townships_without_room_before)} 个",
                   delta_color="inverse")
    lines = []
    if plan.bound is not None:
        lines.append(f"求解：{planner.STATUS_TEXT.get(plan.status, plan.status)}（HiGHS，{plan.seconds:.2f} 秒），"
                     f"上界 {plan.bound:,.0f} 人，差距 {plan.gap:.2%}。")
    if plan.greedy_covered_children is not None and plan.greedy_gap is not None:
        lines.append(f"贪心算法覆盖 {plan.greedy_covered_children:,} 人，比最优少 {plan.greedy_gap:.2%}。")
    if plan.min_budget_every_township is None:
        lines.append("乡镇全覆盖无法实现：有无活动室的乡镇没有可选站点。")
    elif plan.townships_without_room_before:
        lines.append(f"乡镇全覆盖最低预算：{plan.min_budget_every_township:,} 元"
                     f"（{len(plan.townships_without_room_before)} 个乡镇各建 1 个）。")
    st.caption(" ".join(lines))


def _rooms_shown(plan: planner.Plan, county: str | None) -> pl.DataFrame:
    """Existing rooms for the map: those inside the area planned, and those
    outside it whose radius reaches one of its villages (they count in the
    plan) — these without their name, which would name a unit outside the
    user's area."""
    prefix = planner.scope_prefix(county)
    rooms = plan.existing_rooms
    if not prefix:
        return rooms
    inside = rooms["village_code"].fill_null("").str.starts_with(prefix)
    pts = plan.villages.select("lon", "lat").to_numpy().astype(float)
    room_pts = rooms.select("lon", "lat").to_numpy().astype(float)
    if len(pts) and len(room_pts):
        reach = planner.coverage_matrix(room_pts, pts, plan.radius_km).getnnz(axis=1) > 0
    else:
        reach = [False] * rooms.height
    near = pl.Series(reach, dtype=pl.Boolean) & ~inside
    return pl.concat([rooms.filter(inside),
                      rooms.filter(near).with_columns(name=pl.lit("相邻地区"), village_code=pl.lit(None, pl.String),
                                                      township_code=pl.lit(None, pl.String))],
                     how="vertical_relaxed")


def plan_map(plan: planner.Plan, county: str | None, what: planner.WhatIf | None = None) -> None:
    towns = _townships(ui._db_version(), planner.scope_prefix(county))
    plan = dataclasses.replace(plan, existing_rooms=_rooms_shown(plan, county))
    view = planner.plan_map(plan, towns, rooms=what.new_rooms if what else None,
                            covered=what.covered if what else None,
                            basemap_style_url=ui.settings().basemap_style_url)
    st.pydeck_chart(view.deck, key="planner_map", height=520)
    _legend(view)


def _legend(view) -> None:
    """Round swatches: every mark on this map is a point. Labels are fixed words; escaped anyway."""
    items = "".join(
        f'<span style="display:inline-block;margin-right:14px"><span style="display:inline-block;width:12px;'
        f'height:12px;border-radius:50%;background:rgb({r},{g},{b});border:1px solid #333;vertical-align:middle;'
        f'margin-right:4px"></span>{html.escape(label)}</span>'
        for label, (r, g, b) in view.legend)
    st.markdown(f"**图例：{html.escape(view.legend_title)}**（圆点大小表示留守儿童人数）<br>{items}",
                unsafe_allow_html=True)


def rooms_table(rooms: list[planner.NewRoom]) -> None:
    st.dataframe(planner.rooms_table(rooms), hide_index=True, width="stretch",
                 column_config={"经度": st.column_config.NumberColumn(format="%.5f"),
                                "纬度": st.column_config.NumberColumn(format="%.5f")})


def what_if(plan: planner.Plan) -> planner.WhatIf | None:
    """Remove or move one proposed room and show the change; None when the mode is off."""
    if not plan.new_rooms or not st.toggle("假设分析：移除或移动一个拟建活动室", key="planner_what_if"):
        return None
    rooms = {r.village_code: r for r in plan.new_rooms}
    c1, c2, c3 = st.columns([2, 1, 2])
    code = c1.selectbox("拟建活动室", list(rooms), key="planner_what_if_room",
                        format_func=lambda c: f"{rooms[c].rank}. {rooms[c].township_name} {rooms[c].name}")
    action = c2.radio("操作", ["移除", "移到"], key="planner_what_if_action", horizontal=True)
    if action == "移到":
        cands = plan.candidates.filter(~pl.col("code").is_in(list(rooms)))
        names = dict(zip(cands["code"].to_list(),
                         (f"{t} {n}" for t, n in zip(cands["township_name"].to_list(), cands["name"].to_list()))))
        target = c3.selectbox("移到", list(names), key="planner_what_if_target",
                              format_func=lambda c: names.get(c, c))
        what = plan.what_if(moves={code: target}) if target else plan.what_if()
    else:
        what = plan.what_if(removals=[code])
    cols = st.columns(3)
    cols[0].metric("调整后覆盖", f"{what.covered_children:,} 人", delta=f"{what.change:+,} 人")
    cols[1].metric("新建活动室", f"{len(what.new_rooms)} 个")
    cols[2].metric("无活动室的乡镇", f"{len(what.townships_without_room):} 个",
                   delta=f"{len(what.townships_without_room) - len(plan.townships_without_room_after):+} 个",
                   delta_color="inverse")
    if plan.every_township and what.townships_without_room:
        st.warning("调整后不再满足乡镇全覆盖。")
    return what


def download(plan: planner.Plan, area: str) -> None:
    """The plan as Excel, made on a click (audited), from the plan in view only."""
    s = ui.settings()
    title = f"{area}活动室选址方案"
    subtitle = (f"预算 {plan.budget_yuan:,} 元；服务半径 {plan.radius_km:g} 公里；"
                f"数据来源：各学校、村（居）委会留守儿童信息台帐；{s.city_name}妇联")
    ui_export.audited_download(
        "下载方案（Excel）", lambda: planner.plan_excel(plan, title, subtitle),
        {"what": "room_plan", "unit": plan.county, "budget": plan.budget_yuan, "radius_km": plan.radius_km},
        f"{title}.xlsx", ui_export.MIME["xlsx"], key="planner_download")

