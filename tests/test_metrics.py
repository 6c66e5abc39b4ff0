"""Figures per unit reconcile across levels and agree with the ground truth."""

import math
from collections import Counter

import pytest

from liushou_geo.metrics import LEVELS, METRIC_COLUMNS, overview, unit_metrics

SUMMED = ["children", "paired", "with_guardian", "terminals_needed", "terminals_installed",
          "terminal_shortfall", "rooms_active"]


@pytest.fixture
def by_level(small_con, settings):
    return {level: unit_metrics(small_con, level, settings) for level in LEVELS}


def test_levels_sum_to_their_parents(by_level):
    for child, parent, n in (("village", "township", 9), ("township", "county", 6), ("county", "city", 4)):
        c, p = by_level[child], by_level[parent]
        for row in p.iter_rows(named=True):
            kids = c.filter(c["code"].str.starts_with(row["code"][:n]))
            assert kids.height > 0
            for col in SUMMED:
                assert kids[col].sum() == row[col], (parent, row["code"], col)


def test_codes_are_12_digits_and_columns_present(by_level):
    for level, df in by_level.items():
        assert set(METRIC_COLUMNS) <= set(df.columns)
        assert df["code"].str.len_chars().eq(12).all(), level


def test_village_figures_match_truth(by_level, small_truth, settings):
    c = small_truth.children
    children = Counter(c["village_code"])
    paired = Counter(c.loc[c["helper"] != "", "village_code"])
    guardian = Counter(c.loc[c["guardian_name"] != "", "village_code"])
    terminals = small_truth.terminals
    code_col = "区划代码"
    installed = Counter()
    for code, n in zip(terminals[code_col], terminals["亲情电话终端数"]):
        installed[code] += int(n)
    rooms = small_truth.rooms
    active = Counter(rooms.loc[rooms["状态"] == "在用", code_col])
    v = by_level["village"]
    assert v.height == len(small_truth.villages)
    for r in v.iter_rows(named=True):
        k = r["code"]
        assert r["children"] == children[k]
        assert r["paired"] == paired[k]
        assert r["with_guardian"] == guardian[k]
        need = math.ceil(children[k] / settings.children_per_terminal)
        assert r["terminals_needed"] == need
        assert r["terminals_installed"] == installed[k]
        assert r["terminal_shortfall"] == max(0, need - installed[k])
        assert r["rooms_active"] == active[k]


def test_overview_figures(small_con, settings, small_truth):
    fig = overview(small_con, settings)
    assert fig["children"] == len(small_truth.children)
    assert fig["villages"] == len(small_truth.villages)
    rooms = small_truth.rooms
    towns_with_room = {c[:9] for c in rooms.loc[rooms["状态"] == "在用", "区划代码"]}
    towns = {c[:9] for c in small_truth.villages["code"]}
    assert fig["townships"] == len(towns)
    assert fig["townships_without_room"] == len(towns - towns_with_room)


def test_unknown_level_is_refused(small_con, settings):
    with pytest.raises(ValueError):
        unit_metrics(small_con, "province", settings)
