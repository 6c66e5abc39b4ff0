"""Row rules of the facility and service files: activity rooms, hotline terminals
and mailboxes, parent-school attendance, proxy-parent contacts, legal cases.
Same contract as :mod:`registry_rules`: (records, set-aside rows), column-wise.

Rooms and terminals are placed in a village by code, else by names, else —
for a school named with its township (乡镇 + 单位名称) — in its pupils' most
common village, else (rooms) by their coordinates.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import shapely

from .cleaning import parse_float, parse_int
from .gazetteer import Gazetteer
from .registry_rules import resolve_villages
from .rules import Rule, cell, column, dates, duplicate_of, duplicate_rule, id_columns, id_rules, parse_rule, parsed, split, \
    text_expr, yes_no

ROOM_STATUSES = ("在用", "在建", "停用")
ID_LABEL = "儿童身份证号"


def _base(table, **extra) -> pl.DataFrame:
    return table.frame.select("row_no", **extra).with_columns(dup_of=duplicate_of(table))


def _raw(table, key: str) -> pl.Series:
    return column(table, key)


def _place(t: pl.DataFrame, table, gazetteer: Gazetteer, unit_key: str) -> pl.DataFrame:
    """village_code (+ reason/message) by code or names; the unit's own name stands in
    for a missing village name (a committee's name is its village's), and a school
    named with its township is found where its pupils live."""
    names = table.frame.select(code=text_expr(cell(table, "code")), county=text_expr(cell(table, "county")),
                               township=text_expr(cell(table, "township")),
                               village=pl.coalesce(text_expr(cell(table, "village")), text_expr(cell(table, unit_key))))
    t = pl.concat([t, names], how="horizontal")
    t = pl.concat([t, resolve_villages(t, gazetteer, "单位")], how="horizontal")
    schools = [gazetteer.school(c, tw, u) if code is None else code for c, tw, u, code in
               t.select("county", "township", "unit", "village_code").iter_rows()]
    return t.with_columns(village_code=pl.Series(schools, dtype=pl.String))


def rooms(table, gazetteer: Gazetteer, locate) -> tuple[pl.DataFrame, pl.DataFrame]:
    t = _base(table, name=text_expr(cell(table, "room_name")), host=text_expr(cell(table, "host")),
              status=text_expr(cell(table, "room_status")),
              unit=pl.coalesce(text_expr(cell(table, "unit_name")), text_expr(cell(table, "host"))))
    t = pl.concat([t, parsed(_raw(table, "lon"), parse_float, pl.Float64, "lon"),
                   parsed(_raw(table, "lat"), parse_float, pl.Float64, "lat"),
                   dates(_raw(table, "built"), "built"), parsed(_raw(table, "cost"), parse_float, pl.Float64, "cost")],
                  how="horizontal")
    t = _place(t, table, gazetteer, "room_name")
    # Unplaced rooms with coordinates: the village polygon they fall in.
    need = t["village_code"].is_null() & t["lon"].is_not_null() & t["lat"].is_not_null()
    if need.any():
        found = locate(t["lon"].to_numpy(), t["lat"].to_numpy(), need.to_numpy())
        t = t.with_columns(village_code=pl.coalesce(pl.col("village_code"), pl.Series(found, dtype=pl.String)))
    lon, lat = pl.col("lon"), pl.col("lat")
    rules = [
        duplicate_rule(),
        Rule("bad_status", "状态", ~pl.col("status").is_in(ROOM_STATUSES).fill_null(False),
             "状态“" + pl.col("status").fill_null("") + "”应为 在用、在建 或 停用 之一"),
        parse_rule("lon", "经度", "bad_number"), parse_rule("lat", "纬度", "bad_number"),
        Rule("bad_coordinates", "经度", (lon.is_null() != lat.is_null())
             | (lon.is_not_null() & ~((lon >= 73) & (lon <= 136) & (lat >= 3) & (lat <= 54))),
             "经纬度（" + lon.cast(pl.String).fill_null("") + "，" + lat.cast(pl.String).fill_null("")
             + "）不在中国境内。请填写十进制度数，经度在前"),
        Rule(pl.col("village_reason").fill_null("unknown_village"), "区划代码", pl.col("village_code").is_null(),
             pl.col("village_message").fill_null("无法确定活动室所在村（社区）：区划代码、名称和经纬度都对不上。请补填12位区划代码")),
        parse_rule("built", "建成日期"), parse_rule("cost", "投入资金(元)", "bad_number"),
    ]
    ok, aside = split(t, rules)
    pts = [gazetteer.points.get(c, (None, None)) for c in ok["village_code"].to_list()]
    ok = ok.with_columns(lon=pl.coalesce("lon", pl.Series([p[0] for p in pts], dtype=pl.Float64)),
                         lat=pl.coalesce("lat", pl.Series([p[1] for p in pts], dtype=pl.Float64)))
    return ok.select("row_no", "name", "village_code", "host", "lon", "lat", "built", cost_yuan="cost",
                     status="status"), aside


def terminals(table, gazetteer: Gazetteer) -> tuple[pl.DataFrame, pl.DataFrame]:
    t = _base(table, unit=text_expr(cell(table, "unit_name")), unit_kind=text_expr(cell(table, "unit_kind")))
    t = pl.concat([t, parsed(_raw(table, "terminals"), parse_int, pl.Int64, "n"), yes_no(_raw(table, "mailbox"),
                                                                                         "mailbox")], how="horizontal")
    t = _place(t, table, gazetteer, "unit_name")
    rules = [
        duplicate_rule(),
        Rule(pl.col("village_reason").fill_null("unknown_village"), "区划代码", pl.col("village_code").is_null(),
             pl.col("village_message").fill_null("无法确定该单位所在村（社区）。请补填12位区划代码，或核对县、乡镇、村（学校）名称")),
        parse_rule("n", "亲情电话终端数", "bad_number"),
        Rule("missing_value", "亲情电话终端数", pl.col("n").is_null(), "亲情电话终端数为空。没有请填 0"),
        parse_rule("mailbox", "邮政信箱", "bad_yes_no"),
    ]
    ok, aside = split(t, rules)
    return ok.select("row_no", unit_name="unit", unit_kind="unit_kind", village_code="village_code",
                     terminals="n", mailbox="mailbox"), aside


def _with_child(table, hasher, **extra) -> pl.DataFrame:
    return pl.concat([_base(table, **extra), id_columns(_raw(table, "id_number"), hasher)], how="horizontal")


def _dated_child_rows(table, hasher, texts: list[str], date_key: str, out: str, label: str, missing: str,
                      order: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A child's ID, a date that must be there and some text: attendance and contacts alike."""
    t = pl.concat([_with_child(table, hasher, **{k: text_expr(cell(table, k)) for k in texts}),
                   dates(_raw(table, date_key), out)], how="horizontal")
    rules = [duplicate_rule(), *id_rules(ID_LABEL), parse_rule(out, label),
             Rule("missing_value", label, pl.col(out).is_null(), missing)]
    ok, aside = split(t, rules)
    return ok.select("row_no", "child_key", *order), aside


def attendance(table, hasher) -> tuple[pl.DataFrame, pl.DataFrame]:
    return _dated_child_rows(table, hasher, ["guardian_name", "topic"], "trained_on", "attended", "培训日期",
                             "培训日期为空。请补填", ["guardian_name", "attended", "topic"])


def contacts(table, hasher) -> tuple[pl.DataFrame, pl.DataFrame]:
    return _dated_child_rows(table, hasher, ["helper", "mode"], "contact_date", "contacted", "日期",
                             "帮扶日期为空。请补填", ["helper", "contacted", "mode"])


def legal_cases(table, hasher) -> tuple[pl.DataFrame, pl.DataFrame]:
    t = pl.concat([_with_child(table, hasher, case_no=text_expr(cell(table, "case_no"))),
                   yes_no(_raw(table, "eligible"), "eligible"), yes_no(_raw(table, "aided"), "aided"),
                   dates(_raw(table, "filed"), "filed")], how="horizontal")
    rules = [duplicate_rule(), *id_rules(ID_LABEL), parse_rule("eligible", "符合援助条件", "bad_yes_no"),
             parse_rule("aided", "已提供法律援助", "bad_yes_no"), parse_rule("filed", "立案日期")]
    ok, aside = split(t, rules)
    return ok.select("row_no", "case_no", "child_key", "eligible", "aided", "filed"), aside


def point_locator(con):
    """locate(lons, lats, mask) -> village code per point (None outside every
    village), by point-in-polygon; the polygons are loaded on first use."""
    cache = {}

    def locate(lons: np.ndarray, lats: np.ndarray, mask: np.ndarray) -> list:
        if "tree" not in cache:
            rows = con.execute("SELECT code, ST_AsWKB(geom) FROM units WHERE level = 'village'").fetchall()
            cache["codes"] = [r[0] for r in rows]
            cache["tree"] = shapely.STRtree(shapely.from_wkb([bytes(r[1]) for r in rows]))
        out = [None] * len(lons)
        idx = np.flatnonzero(mask)
        if len(idx):
            pts = shapely.points(lons[idx], lats[idx])
            pi, gi = cache["tree"].query(pts, predicate="within")
            for p, g in zip(pi, gi):
                out[idx[p]] = cache["codes"][g]
        return out

    return locate
