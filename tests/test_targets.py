"""The seven targets on a hand-built dataset whose expected figures are
written out here, worked by hand from the rows below (not computed by the
code under test).

Four villages (squares of 0.05°): 甲村 and 乙村 in 青山镇 and 丙村 in 白沙乡
(安平县), 东门社区 in 城东街道 (城关区, no children). Eight children, as-of
2026-06-30:

| child | village | age | status | school | complete file? | paired | guardian |
|---|---|---|---|---|---|---|---|
| c1 | 甲村 | 10 | 在校 | 青山小学 3班 | yes | yes | yes |
| c2 | 甲村 | 8 | 在校 | 青山小学, no class | no (class missing) | no | yes |
| c3 | 甲村 | 4 | 学前, no school | — | no (no guardian) | yes | no |
| c4 | 甲村 | 12 | 辍学 | — | yes | no | yes |
| c5 | 乙村 | 7 | 在校 | 青山小学 1班 | yes | yes | yes |
| c6 | 乙村 | 16 | 在校 | 安平一中 | yes | no | yes |
| c7 | 丙村 | 15 | 在校 | 白沙中学 | yes | no | yes |
| c8 | 丙村 | 6 | 未入学 | — | yes | no | yes |

c1 is also in 青山小学's own extract (one child, two sources).
"""

import datetime as dt
import json
import math

import pytest

from liushou_geo import idcard
from liushou_geo.ingest import ingest
from liushou_geo.settings import load_settings
from liushou_geo.store import connect
from liushou_geo.targets import cadence_dates, unit_targets, village_targets, with_rates

AS_OF = dt.date(2026, 6, 30)
V1, V2, V3, V4 = "439921100201", "439921100202", "439921200201", "439902001001"
VILLAGES = {  # code: (name, township, county, lon0)
    V1: ("甲村", "青山镇", "安平县", 112.00),
    V2: ("乙村", "青山镇", "安平县", 112.05),
    V3: ("丙村", "白沙乡", "安平县", 112.20),
    V4: ("东门社区", "城东街道", "城关区", 112.50),
}
# name, village, birth, male, status, school, class, paired, guardian
CHILDREN = {
    "c1": ("张一", V1, dt.date(2016, 3, 1), True, "在校", "青山小学", "3班", True, True),
    "c2": ("张二", V1, dt.date(2018, 3, 1), False, "在校", "青山小学", None, False, True),
    "c3": ("张三", V1, dt.date(2022, 3, 1), True, "学前", None, None, True, False),
    "c4": ("张四", V1, dt.date(2014, 3, 1), False, "辍学", None, None, False, True),
    "c5": ("李五", V2, dt.date(2019, 3, 1), True, "在校", "青山小学", "1班", True, True),
    "c6": ("李六", V2, dt.date(2010, 1, 1), False, "在校", "安平一中", "2班", False, True),
    "c7": ("王七", V3, dt.date(2011, 1, 1), True, "在校", "白沙中学", "1班", False, True),
    "c8": ("王八", V3, dt.date(2020, 1, 1), False, "未入学", None, None, False, True),
}
IDS = {k: idcard.make_id(v[1][:6], v[2], i + 1, v[3]) for i, (k, v) in enumerate(CHILDREN.items())}

HEADER = ("序号,姓名,性别,身份证号,出生日期,县(市、区),乡镇(街道),村(社区),区划代码,就读学校,年级,班级,就学状态,"
          "父亲务工地,母亲务工地,临时监护人,与儿童关系,监护人电话,联系卡,结对帮扶人,填报单位,填报日期")


def _row(n, key, unit):
    name, v, birth, male, status, school, cls, paired, guardian = CHILDREN[key]
    vname, town, county, _ = VILLAGES[v]
    cells = [n, name, "男" if male else "女", IDS[key], birth.isoformat(), county, town, vname, v,
             school or "", "", cls or "", status, "广东省深圳市", "浙江省宁波市",
             "赵奶奶" if guardian else "", "祖母" if guardian else "", "13800000000" if guardian else "",
             "是", "刘老师" if paired else "", unit, AS_OF.isoformat()]
    return ",".join(str(c) for c in cells)


@pytest.fixture(scope="module")
def hand_city(tmp_path_factory):
    root = tmp_path_factory.mktemp("hand_city")
    feats = []
    for code, (name, town, county, x0) in VILLAGES.items():
        ring = [[x0, 28.0], [x0 + 0.05, 28.0], [x0 + 0.05, 28.05], [x0, 28.05], [x0, 28.0]]
        feats.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                      "properties": {"区划代码": code, "名称": name, "乡镇名称": town, "县区名称": county}})
    (root / "villages.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats},
                                                      ensure_ascii=False), encoding="utf-8")
    committee = {V1: "甲村村民委员会", V2: "乙村村民委员会", V3: "丙村村民委员会"}
    lines = [HEADER]
    for n, key in enumerate(CHILDREN, start=1):
        lines.append(_row(n, key, committee[CHILDREN[key][1]]))
    lines.append(_row(9, "c1", "青山小学"))          # c1 again, from the school's extract
    (root / "台帐.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "亲情电话与信箱.csv").write_text("\n".join([
        "单位名称,区划代码,单位类型,亲情电话终端数,邮政信箱",
        f"甲村村民委员会,{V1},村委会,1,是",
        f"乙村村民委员会,{V2},村委会,0,是",
        f"丙村村民委员会,{V3},村委会,2,是",
        f"东门社区居民委员会,{V4},居委会,1,是",
        f"青山小学,{V1},学校,1,是",
        f"白沙中学,{V3},学校,1,否",
    ]) + "\n", encoding="utf-8")
    (root / "活动室.csv").write_text("\n".join([
        "名称,区划代码,依托单位,经度,纬度,状态",
        f"甲村活动室,{V1},甲村村民委员会,112.025,28.025,在用",
        f"丙村活动室,{V3},丙村村民委员会,112.225,28.025,在建",
    ]) + "\n", encoding="utf-8")
    (root / "家长学校培训记录.csv").write_text("\n".join([
        "监护人姓名,儿童身份证号,培训日期,培训主题",
        f"赵奶奶,{IDS['c1']},2026-03-01,安全教育",
        f"赵奶奶,{IDS['c5']},2025-05-01,心理健康",      # before the 12-month window
        f"赵奶奶,{IDS['c7']},2025-07-01,亲子沟通",
    ]) + "\n", encoding="utf-8")
    (root / "代理家长帮扶记录.csv").write_text("\n".join([
        "儿童身份证号,帮扶人,日期,方式",
        f"{IDS['c1']},刘老师,2026-06-15,电话",
        f"{IDS['c1']},刘老师,2026-05-10,活动",
        f"{IDS['c1']},刘老师,2026-02-01,心理辅导",
        f"{IDS['c1']},刘老师,2025-12-20,总结",
        f"{IDS['c3']},刘老师,2026-04-01,电话",
        f"{IDS['c3']},刘老师,2026-03-15,活动",
        f"{IDS['c3']},刘老师,2025-12-01,总结",
    ]) + "\n", encoding="utf-8")
    (root / "法律援助案件.csv").write_text("\n".join([
        "案件编号,儿童身份证号,符合援助条件,已提供法律援助,立案日期",
        f"A1,{IDS['c1']},是,是,2026-01-10",
        f"A2,{IDS['c7']},是,否,2026-02-10",
        f"A3,{IDS['c2']},否,否,2026-03-10",
    ]) + "\n", encoding="utf-8")
    settings = load_settings()
    db = root / "hand.duckdb"
    con = connect(db)
    report = ingest(con, [root], settings)
    con.close()
    assert report["rows_set_aside"] == 0, report
    return db, settings


@pytest.fixture
def con(hand_city):
    c = connect(hand_city[0], read_only=True)
    yield c
    c.close()


def _by_code(df):
    return {r["code"]: r for r in df.iter_rows(named=True)}


EXPECTED_CITY = {
    "t1a": (4, 5), "t1b": (2, 3), "t2": (2, 8), "t3": (3, 6), "t4": (3, 8),
    "t5": (7, 8), "t6": (4, 6), "t7": (1, 2), "room_townships": (1, 3), "room_children": (4, 8),
}
EXPECTED_VILLAGES = {
    V1: {"t1a": (1, 2), "t1b": (1, 2), "t2": (1, 4), "t3": (2, 2), "t4": (2, 4), "t5": (3, 4), "t6": (2, 3), "t7": (1, 1)},
    V2: {"t1a": (2, 2), "t1b": (0, 0), "t2": (0, 2), "t3": (0, 2), "t4": (1, 2), "t5": (2, 2), "t6": (1, 1), "t7": (0, 0)},
    V3: {"t1a": (1, 1), "t1b": (1, 1), "t2": (1, 2), "t3": (1, 2), "t4": (0, 2), "t5": (2, 2), "t6": (1, 2), "t7": (0, 1)},
    V4: {"t1a": (0, 0), "t1b": (0, 0), "t2": (0, 0), "t3": (0, 0), "t4": (0, 0), "t5": (0, 0), "t6": (0, 0), "t7": (0, 0)},
}


@pytest.mark.parametrize("key", list(EXPECTED_CITY))
def test_city_numerator_and_denominator(con, hand_city, key):
    city = unit_targets(con, hand_city[1], "city").row(0, named=True)
    assert (city[f"{key}_num"], city[f"{key}_den"]) == EXPECTED_CITY[key]


@pytest.mark.parametrize("code", list(EXPECTED_VILLAGES))
def test_village_figures(con, hand_city, code):
    v = _by_code(unit_targets(con, hand_city[1], "village"))[code]
    for key, (num, den) in EXPECTED_VILLAGES[code].items():
        assert (v[f"{key}_num"], v[f"{key}_den"]) == (num, den), key


def test_rates_and_verdicts(con, hand_city):
    city = unit_targets(con, hand_city[1], "city").row(0, named=True)
    assert city["t4_rate"] == 37.5 and city["t4_met"] is False and city["t4_status"] == "short"
    assert city["t1b_rate"] == pytest.approx(66.67) and city["t1b_met"] is False
    villages = _by_code(unit_targets(con, hand_city[1], "village"))
    assert villages[V2]["t7_rate"] is None and villages[V2]["t7_met"] is None   # no case: not applicable
    assert villages[V2]["t7_status"] == "na"
    assert villages[V1]["t7_rate"] == 100.0 and villages[V1]["t7_met"] is True
    assert villages[V1]["t3_status"] == "met"


def test_room_coverage_by_township_and_radius(con, hand_city):
    counties = _by_code(unit_targets(con, hand_city[1], "county"))
    assert (counties["439921000000"]["room_townships_num"], counties["439921000000"]["room_townships_den"]) == (1, 2)
    assert (counties["439902000000"]["room_townships_num"], counties["439902000000"]["room_townships_den"]) == (0, 1)
    # 乙村's point is 4.9 km from the room in 甲村: outside 3 km, inside 6 km.
    wide = village_targets(con, hand_city[1], radius_km=6.0)
    assert int(wide["room_children_num"].sum()) == 6


def test_proxy_parent_cadence(con, hand_city):
    city = unit_targets(con, hand_city[1], "city").row(0, named=True)
    # paired: c1 (all due contacts made), c3 (last call 04-01, activity last quarter,
    # no holiday counselling, summary done), c5 (nothing at all).
    assert city["contacts_overdue"] == 2
    assert city["no_activity_this_quarter"] == 2
    assert city["no_counselling_last_holiday"] == 2
    assert city["no_summary_last_year"] == 1


def test_cadence_windows():
    s = load_settings()
    d = cadence_dates(AS_OF, s)
    assert d["month_ago"] == dt.date(2026, 5, 30)
    assert d["quarter_start"] == dt.date(2026, 4, 1)
    assert (d["holiday_start"], d["holiday_end"]) == (dt.date(2026, 1, 15), dt.date(2026, 2, 28))
    assert (d["last_year_start"], d["last_year_end"]) == (dt.date(2025, 1, 1), dt.date(2025, 12, 31))
    autumn = cadence_dates(dt.date(2026, 10, 15), s)
    assert (autumn["holiday_start"], autumn["holiday_end"]) == (dt.date(2026, 7, 1), dt.date(2026, 8, 31))


def test_amber_band():
    import polars as pl

    from liushou_geo.targets import ALL_TARGETS

    s = load_settings()
    cols = {}
    for t in ALL_TARGETS:
        cols[f"{t.key}_num"] = [96, 94, 100, 0]
        cols[f"{t.key}_den"] = [100, 100, 100, 0]
    df = with_rates(pl.DataFrame(cols), s)
    assert df["t5_status"].to_list() == ["amber", "short", "met", "na"]     # threshold 100, band 5
    assert df["t4_status"].to_list() == ["met", "met", "met", "na"]          # threshold 60


def test_levels_are_consistent_on_the_small_city(small_con, settings):
    """Numerators and denominators sum upward: villages -> townships -> counties -> city."""
    v = village_targets(small_con, settings)
    levels = {lvl: unit_targets(small_con, settings, lvl, v) for lvl in ("village", "township", "county", "city")}
    cols = [c for c in levels["city"].columns if c.endswith(("_num", "_den")) and not c.startswith("room_townships")]
    for child, parent, n in (("village", "township", 9), ("township", "county", 6), ("county", "city", 4)):
        c = levels[child]
        for row in levels[parent].iter_rows(named=True):
            part = c.filter(c["code"].str.starts_with(row["code"][:n]))
            for col in cols:
                assert part[col].sum() == row[col], (parent, row["code"], col)
    towns = levels["township"]
    assert levels["city"]["room_townships_den"][0] == towns.height
    assert levels["city"]["room_townships_num"][0] == int((towns["rooms_active"] > 0).sum())


def test_metrics_json_has_target_keys(hand_city):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "liushou_geo.cli", "metrics", "--db", str(hand_city[0]),
                          "--level", "county", "--format", "json"], capture_output=True, text=True, check=True)
    rows = {r["code"]: r for r in json.loads(out.stdout)}
    county = rows["439921000000"]
    for k in ("t1a", "t1b", "t2", "t3", "t4", "t5", "t6", "t7"):
        for suffix in ("_rate", "_num", "_den", "_met"):
            assert f"{k}{suffix}" in county
    assert county["t4_num"] == 3 and county["t4_den"] == 8 and county["t4_rate"] == 37.5
    assert county["children"] == 8 and county["paired"] == 3
    assert county["terminal_shortfall_cost_yuan"] == county["terminal_shortfall"] * load_settings().terminal_cost_yuan
    assert math.isclose(county["t6_rate"], 4 / 6 * 100, abs_tol=0.01)


def test_counts_kept_at_ingest_equal_a_fresh_computation(small_con, settings):
    from dataclasses import replace

    from liushou_geo.store import query
    from liushou_geo.targets import compute_village_targets

    assert query(small_con, "village_target_meta").height == 1
    kept = village_targets(small_con, settings)
    assert kept.equals(compute_village_targets(small_con, settings))
    # Another setting than the one the counts were kept with: computed afresh, and different.
    other = replace(settings, compulsory_age_max=12)
    assert not village_targets(small_con, other)["t6_den"].equals(kept["t6_den"])
