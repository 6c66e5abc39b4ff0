"""The map pages' views: activity-room coverage, hotline terminals and
pairing gaps, for the city (townships), a county or a township (villages).

Every map object carries a ``tip`` (its tooltip text, Chinese, plain text):
one deck-level template ``{tip}`` then serves every layer.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import duckdb
import numpy as np
import polars as pl
import pydeck as pdk

from .area import Area, rollup
from .coverage import village_coverage
from .mapview import (OUTLINE, SEQUENTIAL, CompactDeck, MapView, _basemap, class_breaks, class_of, fit_view,
                      legend_labels, map_units)
from .settings import Settings
from .store import query

ROOM_COLORS = {"在用": [33, 102, 172], "在建": [253, 174, 97], "停用": [140, 140, 140]}
PILOT_COLOR = [118, 42, 131]
NO_ROOM_OUTLINE = [215, 48, 39]
# RdBu (ColorBrewer), diverging around the pairing target.
DIVERGING = [[202, 0, 32], [244, 165, 130], [209, 229, 240], [146, 197, 222], [5, 113, 176]]


@dataclass
class PageView:
    map: MapView
    table: pl.DataFrame          # one row per unit in view, Chinese headers
    notes: dict                  # page-specific figures for the cards


def page_figures(unit_metrics: pl.DataFrame, unit_targets: pl.DataFrame) -> pl.DataFrame:
    """The figures the terminal and pairing pages need per unit: the base
    figures (metrics.unit_metrics) joined with the target counts (targets.unit_targets)."""
    return unit_metrics.drop("name", "lon", "lat", "parent_code", "level", "villages").join(
        unit_targets.drop("name", "level", "parent_code", "children", "rooms_active"), on="code", how="left")


def _units_with(con, area: Area, figures: pl.DataFrame) -> pl.DataFrame:
    units = map_units(con, area.level_in_view, area.prefix)
    return units.join(figures, on="code", how="left").fill_null(0)


def _polygons(units: pl.DataFrame, layer_id: str, fill_of, tip_of, line_color=OUTLINE, width=1):
    rows, rings = [], []
    for r in units.iter_rows(named=True):
        parts = json.loads(r["geom_web"]) if r["geom_web"] else []
        rings.append(parts)
        tip = tip_of(r)
        fill = fill_of(r)
        for part in parts:
            rows.append({"code": r["code"], "name": r["name"], "tip": tip, "fill": fill, "polygon": part})
    layer = pdk.Layer("PolygonLayer", id=layer_id, data=rows, get_polygon="polygon", get_fill_color="fill",
                      get_line_color=line_color, line_width_min_pixels=width, stroked=True, filled=True,
                      pickable=True, opacity=0.85, auto_highlight=True)
    return layer, rings


def _outline(units: pl.DataFrame, layer_id: str, color) -> pdk.Layer:
    paths = []
    for r in units.iter_rows(named=True):
        for part in json.loads(r["geom_web"]) if r["geom_web"] else []:
            paths.append({"path": part[0], "code": r["code"], "tip": f"{r['full_name']}\n没有在用的活动室"})
    return pdk.Layer("PathLayer", id=layer_id, data=paths, get_path="path", get_color=color,
                     width_min_pixels=3, pickable=True)


def _deck(layers, rings, settings: Settings) -> CompactDeck:
    return CompactDeck(layers=layers, initial_view_state=fit_view(rings), tooltip={"text": "{tip}"},
                       **_basemap(settings.basemap_style_url, settings.basemap_crs))


def _sequential(units: pl.DataFrame, col: str):
    breaks = class_breaks(units[col].to_list())

    def fill(r):
        c = class_of(r[col], breaks)
        return SEQUENTIAL[c] if c is not None else [220, 220, 220]

    return breaks, fill


# -- activity rooms ------------------------------------------------------------

def rooms_view(con: duckdb.DuckDBPyConnection, settings: Settings, area: Area, radius_km: float,
               village_children: pl.DataFrame) -> PageView:
    """Rooms by status, circles of the radius around rooms in use, children
    outside every circle per unit, townships without a room in use outlined,
    pilot sites ringed."""
    cov = village_coverage(con, radius_km).join(village_children.select("code", "children"), on="code", how="left")
    cov = cov.with_columns(pl.col("children").fill_null(0),
                           outside=pl.when(pl.col("covered")).then(0).otherwise(pl.col("children").fill_null(0)))
    level = area.level_in_view
    per_unit = (cov if level == "village" else rollup(cov, level, ["children", "outside"])).select(
        "code", "children", "outside")
    rooms = query(con, "rooms_in_area", {"within": area.prefix})
    active_by_town = set(rooms.filter(pl.col("status") == "在用")["village_code"].str.slice(0, 9).to_list())
    all_active = query(con, "room_points", {"statuses": ["在用"]})
    active_towns = set(all_active["village_code"].str.slice(0, 9).to_list()) | active_by_town
    units = _units_with(con, area, per_unit)
    breaks, fill = _sequential(units, "outside")
    base, rings = _polygons(
        units, f"{level}s", fill,
        lambda r: f"{r['full_name']}\n留守儿童 {r['children']} 人，其中 {r['outside']} 人在所有活动室 {radius_km:g} 公里范围外")
    layers = [base]
    towns = map_units(con, "township", area.prefix)
    no_room = towns.filter(~pl.col("code").str.slice(0, 9).is_in(list(active_towns)))
    if no_room.height:
        layers.append(_outline(no_room, "no_room_townships", NO_ROOM_OUTLINE))
    active = rooms.filter(pl.col("status") == "在用")
    layers.append(pdk.Layer(
        "ScatterplotLayer", id="coverage", data=[{"position": [round(x, 5), round(y, 5)]}
                                                  for x, y in active.select("lon", "lat").rows()],
        get_position="position", get_radius=radius_km * 1000, radius_units="'meters'",
        get_fill_color=[69, 117, 180, 40], stroked=True, get_line_color=[69, 117, 180, 160],
        line_width_min_pixels=1, pickable=False))
    pilots = set(settings.pilot_villages)
    if pilots:
        pv = map_units(con, "village", area.prefix).filter(pl.col("code").is_in(list(pilots)))
        layers.append(pdk.Layer(
            "ScatterplotLayer", id="pilots",
            data=[{"position": [round(r["lon"], 5), round(r["lat"], 5)], "tip": f"{r['full_name']}\n试点村（社区）"}
                  for r in pv.iter_rows(named=True)],
            get_position="position", get_radius=11, radius_units="'pixels'", filled=False, stroked=True,
            get_line_color=PILOT_COLOR, line_width_min_pixels=3, pickable=True))
    layers.append(pdk.Layer(
        "ScatterplotLayer", id="rooms",
        data=[{"position": [round(r["lon"], 5), round(r["lat"], 5)], "fill": ROOM_COLORS.get(r["status"], [0, 0, 0]),
               "tip": f"{r['name'] or '活动室'}（{r['status']}）\n{r['full_name']}\n依托：{r['host'] or '—'}"}
              for r in rooms.iter_rows(named=True)],
        get_position="position", get_fill_color="fill", get_radius=6, radius_units="'pixels'",
        stroked=True, get_line_color=[255, 255, 255], line_width_min_pixels=1, pickable=True))
    view = MapView(deck=_deck(layers, rings, settings), legend_title=f"活动室 {radius_km:g} 公里范围外的儿童",
                   legend=list(zip(legend_labels(breaks, "人"), SEQUENTIAL[: len(breaks)])),
                   feature_count=units.height, level=level,
                   symbols=[(f"活动室（{s}）", c) for s, c in ROOM_COLORS.items()]
                   + ([("试点村（社区）", PILOT_COLOR)] if pilots else [])
                   + ([("红框：无在用活动室的乡镇", NO_ROOM_OUTLINE)] if no_room.height else []))
    table = units.select(
        pl.col("name").alias("名称"), pl.col("children").alias("留守儿童"),
        pl.col("outside").alias(f"{radius_km:g}公里外儿童"),
        (pl.when(pl.col("children") > 0).then(pl.col("outside") / pl.col("children") * 100)).alias("范围外比例"),
    )
    notes = {"rooms_active": active.height, "rooms_building": rooms.filter(pl.col("status") == "在建").height,
             "rooms_closed": rooms.filter(pl.col("status") == "停用").height,
             "no_room_townships": no_room.select("code", "name", "full_name"),
             "children": int(units["children"].sum()), "outside": int(units["outside"].sum())}
    return PageView(map=view, table=table, notes=notes)


# -- hotline terminals ---------------------------------------------------------

def terminals_view(con: duckdb.DuckDBPyConnection, settings: Settings, area: Area,
                   figures: pl.DataFrame) -> PageView:
    """Terminal shortfall per unit (needed = ceil(children / 60) per village,
    summed), its cost, and mailbox coverage. ``figures``: metrics joined with
    targets for the level in view."""
    units = _units_with(con, area, figures)
    breaks, fill = _sequential(units, "terminal_shortfall")
    cost = settings.terminal_cost_yuan

    def tip(r):
        mail = f"{r['mailbox_num']}/{r['mailbox_den']}" if r["mailbox_den"] else "—"
        return (f"{r['full_name']}\n留守儿童 {r['children']} 人；亲情电话应配 {r['terminals_needed']} 部，"
                f"已装 {r['terminals_installed']} 部，缺口 {r['terminal_shortfall']} 部（约 {r['terminal_shortfall'] * cost:,} 元）"
                f"\n有信箱的学校和村（居）委会：{mail}")

    base, rings = _polygons(units, f"{area.level_in_view}s", fill, tip)
    view = MapView(deck=_deck([base], rings, settings), legend_title="亲情电话缺口",
                   legend=list(zip(legend_labels(breaks, "部"), SEQUENTIAL[: len(breaks)])),
                   feature_count=units.height, level=area.level_in_view)
    table = units.select(
        pl.col("name").alias("名称"), pl.col("children").alias("留守儿童"),
        pl.col("terminals_needed").alias("应配"), pl.col("terminals_installed").alias("已装"),
        pl.col("terminal_shortfall").alias("缺口"), (pl.col("terminal_shortfall") * cost).alias("补齐费用（元）"),
        pl.col("mailbox_num").alias("有信箱单位"), pl.col("mailbox_den").alias("单位数"),
    )
    shortfall = int(units["terminal_shortfall"].sum())
    notes = {"needed": int(units["terminals_needed"].sum()), "installed": int(units["terminals_installed"].sum()),
             "shortfall": shortfall, "cost": shortfall * cost, "budget": settings.terminal_budget_yuan,
             "mailbox_num": int(units["mailbox_num"].sum()), "mailbox_den": int(units["mailbox_den"].sum())}
    return PageView(map=view, table=table, notes=notes)


# -- pairing -------------------------------------------------------------------

def pairing_breaks(target: float) -> list[float]:
    """Upper bounds of five classes centred on the target: two below, three at or above."""
    return [target - 20, target - 10, target, target + 10, 100.0]


def pairing_view(con: duckdb.DuckDBPyConnection, settings: Settings, area: Area,
                 figures: pl.DataFrame) -> PageView:
    """Pairing rate around the target (diverging), children still to pair to
    reach it, and overdue proxy-parent contacts. Aggregates only."""
    target = settings.targets["t4_pairing"]
    units = _units_with(con, area, figures).with_columns(
        to_pair=pl.struct("t4_num", "t4_den").map_elements(
            lambda s: max(0, math.ceil(target / 100 * s["t4_den"] - 1e-9) - s["t4_num"]), return_dtype=pl.Int64))
    bounds = pairing_breaks(target)

    def fill(r):
        if not r["t4_den"]:
            return [220, 220, 220]
        rate = r["t4_num"] / r["t4_den"] * 100
        return DIVERGING[int(np.searchsorted(bounds, rate, side="right")) if rate < 100 else 4]

    def tip(r):
        if not r["t4_den"]:
            return f"{r['full_name']}\n没有留守儿童"
        return (f"{r['full_name']}\n结对帮扶率 {r['t4_num'] / r['t4_den'] * 100:.1f}%（{r['t4_num']}/{r['t4_den']}）"
                f"\n达到 {target:g}% 还需结对 {r['to_pair']} 人\n代理家长联系逾期 {r['contacts_overdue']} 人")

    base, rings = _polygons(units, f"{area.level_in_view}s", fill, tip)
    labels = [f"< {bounds[0]:g}%", f"{bounds[0]:g}–{bounds[1]:g}%", f"{bounds[1]:g}–{target:g}%（未达标）",
              f"{target:g}–{bounds[3]:g}%（达标）", f"≥ {bounds[3]:g}%"]
    view = MapView(deck=_deck([base], rings, settings), legend_title=f"结对帮扶率（目标线 {target:g}%）",
                   legend=list(zip(labels, DIVERGING)), feature_count=units.height, level=area.level_in_view)
    table = units.select(
        pl.col("name").alias("名称"), pl.col("t4_den").alias("留守儿童"), pl.col("t4_num").alias("已结对"),
        (pl.when(pl.col("t4_den") > 0).then(pl.col("t4_num") / pl.col("t4_den") * 100)).alias("结对率"),
        pl.col("to_pair").alias("还需结对"), pl.col("contacts_overdue").alias("联系逾期"),
        pl.col("no_activity_this_quarter").alias("本季度无活动"),
    )
    notes = {"children": int(units["t4_den"].sum()), "paired": int(units["t4_num"].sum()),
             "to_pair": int(units["to_pair"].sum()), "overdue": int(units["contacts_overdue"].sum()),
             "target": target}
    return PageView(map=view, table=table, notes=notes)
