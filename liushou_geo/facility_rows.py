"""Checking rows of the facility and service files: activity rooms, hotline
terminals and mailboxes, parent-school attendance, proxy-parent contacts and
legal cases. Same contract as ``registry_rows``: a record or a RowProblem.
"""

from __future__ import annotations

import re

import shapely

from . import idcard
from .cleaning import CellError, parse_date, parse_float, parse_int, parse_yes_no, text
from .gazetteer import Gazetteer
from .headers import HEADER_LABELS
from .privacy import IdHasher
from .registry_rows import RowProblem, _cell

ROOM_STATUSES = ("在用", "在建", "停用")


def _parse(key: str, parser, cells, columns):
    try:
        return parser(_cell(cells, columns, key))
    except CellError as e:
        raise RowProblem(e.reason, HEADER_LABELS[key], f"{HEADER_LABELS[key]}：{e.message}") from None


def _child_key(cells, columns, hasher: IdHasher) -> str:
    raw = _cell(cells, columns, "id_number")
    if idcard.looks_excel_rounded(raw):
        raise RowProblem("id_excel_rounded", "儿童身份证号",
                         "儿童身份证号被 Excel 存成了数字，后几位已丢失。请把该列设为文本格式后重新录入")
    id_number = idcard.normalise(raw)
    if not id_number:
        raise RowProblem("missing_id", "儿童身份证号", "儿童身份证号为空。请补填")
    if not re.fullmatch(r"\d{17}[\dX]", id_number) or idcard.birth_date(id_number) is None:
        raise RowProblem("id_format", "儿童身份证号",
                         f"儿童身份证号“{idcard.mask(id_number)}”不是有效的18位号码（{len(id_number)}位，或出生日期不对）。请核对后重填")
    if not idcard.is_valid(id_number):
        raise RowProblem("id_check_digit", "儿童身份证号",
                         f"儿童身份证号 {idcard.mask(id_number)} 校验位不对（可能抄错一位）。请核对")
    return hasher(id_number)


def _village(cells, columns, gazetteer: Gazetteer, polygons=None) -> str | None:
    code = text(_cell(cells, columns, "code"))
    if code and code in gazetteer.codes:
        return code
    found = gazetteer.by_names(text(_cell(cells, columns, "county")), text(_cell(cells, columns, "township")),
                               text(_cell(cells, columns, "village")))
    return found


def room(cells, columns, gazetteer: Gazetteer, locate) -> dict:
    status = text(_cell(cells, columns, "room_status"))
    if status not in ROOM_STATUSES:
        raise RowProblem("bad_status", "状态", f"状态“{status or ''}”应为 在用、在建 或 停用 之一")
    lon = _parse("lon", parse_float, cells, columns)
    lat = _parse("lat", parse_float, cells, columns)
    if (lon is None) != (lat is None) or (lon is not None and not (73 <= lon <= 136 and 3 <= lat <= 54)):
        raise RowProblem("bad_coordinates", "经度",
                         f"经纬度（{lon}，{lat}）不在中国境内。请填写十进制度数，经度在前")
    code = _village(cells, columns, gazetteer)
    if code is None and lon is not None:
        code = locate(lon, lat)
    if code is None:
        raise RowProblem("unknown_village", "区划代码",
                         "无法确定活动室所在村（社区）：区划代码、名称和经纬度都对不上。请补填12位区划代码")
    if lon is None:
        lon, lat = gazetteer.points[code]
    return {
        "name": text(_cell(cells, columns, "room_name")),
        "village_code": code,
        "host": text(_cell(cells, columns, "host")),
        "lon": lon, "lat": lat,
        "built": _parse("built", parse_date, cells, columns),
        "cost_yuan": _parse("cost", parse_float, cells, columns),
        "status": status,
    }


def terminal(cells, columns, gazetteer: Gazetteer, locate) -> dict:
    code = _village(cells, columns, gazetteer)
    if code is None:
        raise RowProblem("unknown_village", "区划代码",
                         "无法确定该单位所在村（社区）。请补填12位区划代码或核对县、乡镇、村名称")
    n = _parse("terminals", parse_int, cells, columns)
    if n is None:
        raise RowProblem("missing_value", "亲情电话终端数", "亲情电话终端数为空。没有请填 0")
    return {
        "unit_name": text(_cell(cells, columns, "unit_name")),
        "unit_kind": text(_cell(cells, columns, "unit_kind")),
        "village_code": code,
        "terminals": n,
        "mailbox": _parse("mailbox", parse_yes_no, cells, columns),
    }


def attendance(cells, columns, hasher: IdHasher) -> dict:
    key = _child_key(cells, columns, hasher)
    d = _parse("trained_on", parse_date, cells, columns)
    if d is None:
        raise RowProblem("missing_value", "培训日期", "培训日期为空。请补填")
    return {"child_key": key, "guardian_name": text(_cell(cells, columns, "guardian_name")),
            "attended": d, "topic": text(_cell(cells, columns, "topic"))}


def contact(cells, columns, hasher: IdHasher) -> dict:
    key = _child_key(cells, columns, hasher)
    d = _parse("contact_date", parse_date, cells, columns)
    if d is None:
        raise RowProblem("missing_value", "日期", "帮扶日期为空。请补填")
    mode = text(_cell(cells, columns, "mode"))
    return {"child_key": key, "helper": text(_cell(cells, columns, "helper")), "contacted": d, "mode": mode}


def legal_case(cells, columns, hasher: IdHasher) -> dict:
    key = _child_key(cells, columns, hasher)
    return {
        "case_no": text(_cell(cells, columns, "case_no")),
        "child_key": key,
        "eligible": _parse("eligible", parse_yes_no, cells, columns),
        "aided": _parse("aided", parse_yes_no, cells, columns),
        "filed": _parse("filed", parse_date, cells, columns),
    }


def point_locator(con):
    """A function (lon, lat) -> village code by point-in-polygon, built lazily."""
    cache = {}

    def locate(lon: float, lat: float) -> str | None:
        if "tree" not in cache:
            rows = con.execute("SELECT code, ST_AsWKB(geom) FROM units WHERE level = 'village'").fetchall()
            cache["codes"] = [r[0] for r in rows]
            cache["geoms"] = shapely.from_wkb([bytes(r[1]) for r in rows])
            cache["tree"] = shapely.STRtree(cache["geoms"])
        hits = cache["tree"].query(shapely.Point(lon, lat), predicate="within")
        return cache["codes"][hits[0]] if len(hits) else None

    return locate


