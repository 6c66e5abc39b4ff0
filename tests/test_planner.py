"""The room planner (issue #6): the MIP against brute force and hand-solved
cases, the greedy heuristic, the store wrapper and the CLI's JSON contract."""

import itertools
import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from conftest import ROOT

from liushou_geo.coverage import great_circle_km
from liushou_geo.planner import (CustomSite, coverage_matrix, covered_weight, greedy, marginal_order,
                                 plan_rooms, solve_mclp)


def brute_force(A, w, k, covered, site_township=None, needing=()):
    """Best covered weight over every set of at most k sites (None: no feasible set)."""
    m = A.shape[1]
    best = None
    for size in range(0, min(k, m) + 1):
        for combo in itertools.combinations(range(m), size):
            if needing and not set(needing) <= {int(site_township[j]) for j in combo}:
                continue
            v = covered_weight(A, w, covered, combo) - covered_weight(A, w, covered, [])
            best = v if best is None else max(best, v)
    return best


def random_instance(rng, n=14, m=8, density=0.25, towns=3):
    A = sp.csr_matrix((rng.random((n, m)) < density).astype(np.int8))
    w = rng.integers(0, 40, size=n).astype(float)
    covered = rng.random(n) < 0.2
    site_township = rng.integers(0, towns, size=m)
    return A, w, covered, site_township


@pytest.mark.parametrize("seed", range(8))
def test_mip_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    A, w, covered, _ = random_instance(rng)
    for k in (1, 2, 3, 5):
        sol = solve_mclp(A, w, k, covered)
        assert sol.status == "optimal"
        assert sol.objective == pytest.approx(brute_force(A, w, k, covered))
        assert len(sol.chosen) <= k
        # The objective is what the chosen sites really cover.
        assert sol.objective == pytest.approx(covered_weight(A, w, covered, sol.chosen)
                                              - covered_weight(A, w, covered, []))
        assert sol.gap == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_mip_with_township_rule_equals_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    A, w, covered, site_town = random_instance(rng, towns=3)
    needing = sorted(set(int(t) for t in site_town))[:2]
    for k in (2, 3, 4):
        sol = solve_mclp(A, w, k, covered, site_town, needing)
        assert sol.status == "optimal"
        assert set(needing) <= {int(site_town[j]) for j in sol.chosen}      # the rule holds
        assert sol.objective == pytest.approx(brute_force(A, w, k, covered, site_town, needing))
        g = greedy(A, w, k, covered, site_town, needing)
        assert set(needing) <= {int(site_town[j]) for j in g.chosen}        # greedy stays feasible
        assert g.objective <= sol.objective + 1e-9


@pytest.mark.parametrize("seed", range(10))
def test_greedy_never_beats_the_optimum(seed):
    rng = np.random.default_rng(200 + seed)
    A, w, covered, _ = random_instance(rng, n=40, m=12, density=0.15)
    for k in (1, 3, 6):
        g, sol = greedy(A, w, k, covered), solve_mclp(A, w, k, covered)
        assert g.objective <= sol.objective + 1e-9
        assert g.objective == pytest.approx(covered_weight(A, w, covered, g.chosen)
                                            - covered_weight(A, w, covered, []))


# The hand-solved case. Four villages, three candidate sites:
#
#   village  children   covered by
#   d0       4          X, Y
#   d1       4          X, Z
#   d2       3          Y
#   d3       3          Z
#
# k = 1: X covers 8, Y 7, Z 7 → X, 8 children.
# k = 2: X+Y = 11, X+Z = 11, Y+Z = 14 → Y and Z, 14 (every village).
#        Greedy takes X first (8) then adds 3: 11, i.e. 3/14 below the optimum.
# Locked room covering d2: k = 1 → X (8) beats Y (4) and Z (7).
# Township rule, Z alone in township 1 which has no room, k = 1 → Z, 7.
HAND_A = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 1], [0, 1, 0], [0, 0, 1]]))
HAND_W = np.array([4.0, 4.0, 3.0, 3.0])
X, Y, Z = 0, 1, 2


def test_known_optimum_by_hand():
    none = np.zeros(4, dtype=bool)
    s1 = solve_mclp(HAND_A, HAND_W, 1, none)
    assert (s1.chosen, s1.objective) == ([X], pytest.approx(8))
    s2 = solve_mclp(HAND_A, HAND_W, 2, none)
    assert sorted(s2.chosen) == [Y, Z] and s2.objective == pytest.approx(14)
    assert s2.gains == [pytest.approx(7), pytest.approx(7)]           # marginal order: Y (tie, lower index) then Z
    g2 = greedy(HAND_A, HAND_W, 2, none)
    assert g2.chosen == [X, Y] and g2.objective == pytest.approx(11)
    assert (s2.objective - g2.objective) / s2.objective == pytest.approx(3 / 14)

    locked = np.array([False, False, True, False])
    assert solve_mclp(HAND_A, HAND_W, 1, locked).objective == pytest.approx(8)

    towns = np.array([0, 0, 1])
    st = solve_mclp(HAND_A, HAND_W, 1, none, towns, [1])
    assert st.chosen == [Z] and st.objective == pytest.approx(7)


def test_township_rule_beyond_the_budget_is_infeasible():
    towns = np.array([0, 1, 2])
    sol = solve_mclp(HAND_A, HAND_W, 2, None, towns, [0, 1, 2])
    assert sol.status == "infeasible" and sol.chosen == []
    assert greedy(HAND_A, HAND_W, 2, None, towns, [0, 1, 2]).status == "infeasible"
    assert solve_mclp(HAND_A, HAND_W, 3, None, towns, [0, 1, 2]).status == "optimal"


def test_marginal_order_sums_to_the_objective():
    order, gains = marginal_order(HAND_A, HAND_W, np.zeros(4, dtype=bool), [Z, X, Y])
    assert order == [X, Y, Z] and gains == [8, 3, 3]


def test_coverage_matrix_matches_haversine():
    rng = np.random.default_rng(5)
    dem = np.column_stack([rng.uniform(112, 112.3, 300), rng.uniform(27.5, 27.8, 300)])
    sites = np.column_stack([rng.uniform(112, 112.3, 40), rng.uniform(27.5, 27.8, 40)])
    A = coverage_matrix(dem, sites, 3.0).toarray().astype(bool)
    d = great_circle_km(dem[:, None, 0], dem[:, None, 1], sites[None, :, 0], sites[None, :, 1])
    far_from_edge = np.abs(d - 3.0) > 1e-6
    assert (A == (d <= 3.0))[far_from_edge].all()
    assert A.any() and not A.all()


# -- the wrapper, on the small city -------------------------------------------------


def test_plan_on_the_small_city(small_con, settings):
    from liushou_geo.targets import unit_targets

    plan = plan_rooms(small_con, settings, 5 * settings.room_cost_yuan, settings.room_radius_km)
    assert plan.status == "optimal" and plan.gap == 0
    assert plan.max_new_rooms == 5 and len(plan.new_rooms) <= 5
    # Coverage before the plan is the figure the targets show (room_children).
    city = unit_targets(small_con, settings, "city")
    assert plan.covered_before == city["room_children_num"][0]
    assert plan.children_total == city["room_children_den"][0]
    gains = [r.marginal_children for r in plan.new_rooms]
    assert gains == sorted(gains, reverse=True)
    assert plan.covered_before + sum(gains) == plan.objective_covered_children
    assert plan.greedy_covered_children <= plan.objective_covered_children
    assert plan.greedy_gap >= 0
    assert plan.bound == pytest.approx(plan.objective_covered_children, abs=1)
    # Existing rooms stay: their villages are not candidates, their coverage is kept.
    hosts = set(plan.existing_rooms["village_code"].to_list())
    assert not hosts & {r.village_code for r in plan.new_rooms}
    v = plan.villages
    assert not (v["covered_before"] & ~v["covered_after"]).any()
    assert int(v.filter(v["covered_after"])["children"].sum()) == plan.objective_covered_children
    # Every proposed room lies within the radius of the villages it is credited with.
    assert all(r.marginal_children > 0 for r in plan.new_rooms)


def test_what_if_remove_and_move(small_con, settings):
    plan = plan_rooms(small_con, settings, 4 * settings.room_cost_yuan, 3.0)
    assert plan.new_rooms
    same = plan.what_if()
    assert same.covered_children == plan.objective_covered_children and same.change == 0
    first = plan.new_rooms[0]
    gone = plan.what_if(removals=[first.village_code])
    assert gone.change < 0 and len(gone.new_rooms) == len(plan.new_rooms) - 1
    # A move to another candidate can only lose (the plan is optimal) and moves the room.
    other = next(c for c in plan.candidates["code"] if c not in {r.village_code for r in plan.new_rooms})
    moved = plan.what_if(moves={first.village_code: other})
    assert moved.change <= 0
    assert other in {r.village_code for r in moved.new_rooms}
    with pytest.raises(KeyError):
        plan.what_if(removals=["000000000000"])


def test_every_township_and_its_minimum_budget(small_con, settings):
    cost = settings.room_cost_yuan
    free = plan_rooms(small_con, settings, 0, 3.0)
    need = len(free.townships_without_room_before)
    assert free.min_budget_every_township == need * cost
    if need:
        short = plan_rooms(small_con, settings, need * cost - 1, 3.0, every_township=True)
        assert short.status == "infeasible" and not short.new_rooms
        assert f"{need * cost:,}" in short.message
    # The minimum budget suffices (one site per township without a room).
    exact = plan_rooms(small_con, settings, need * cost, 3.0, every_township=True)
    assert exact.status == "optimal" and exact.townships_without_room_after == []
    assert len({r.township_code for r in exact.new_rooms}) == need


def test_under_construction_rooms_count_as_existing(small_con, settings):
    a = plan_rooms(small_con, settings, 0, 3.0)
    b = plan_rooms(small_con, settings, 0, 3.0, include_under_construction=True)
    assert b.covered_before >= a.covered_before
    assert len(b.townships_without_room_before) <= len(a.townships_without_room_before)
    assert set(b.existing_rooms["status"]) <= {"在用", "在建"}
    assert set(a.existing_rooms["status"]) <= {"在用"}


def test_county_exclusions_and_custom_sites(small_con, settings):
    county = "439921000000"
    plan = plan_rooms(small_con, settings, 3 * settings.room_cost_yuan, 3.0, county=county)
    assert all(r.village_code.startswith(county[:6]) for r in plan.new_rooms)
    assert all(c.startswith(county[:6]) for c in plan.villages["code"])
    banned = [r.village_code for r in plan.new_rooms]
    again = plan_rooms(small_con, settings, 3 * settings.room_cost_yuan, 3.0, county=county, exclude=banned)
    assert not set(banned) & {r.village_code for r in again.new_rooms}
    assert again.objective_covered_children <= plan.objective_covered_children
    # A custom site at the best village's point is as good as that village.
    best = plan.new_rooms[0]
    custom = plan_rooms(small_con, settings, settings.room_cost_yuan, 3.0, county=county,
                        exclude=[best.village_code],
                        custom_sites=[CustomSite(best.lon, best.lat, best.township_code, "新址")])
    one = plan_rooms(small_con, settings, settings.room_cost_yuan, 3.0, county=county)
    assert custom.objective_covered_children == one.objective_covered_children
    assert custom.new_rooms[0].village_code == "custom-1"


# -- the command line ----------------------------------------------------------------

_CLI = """
import argparse, sys
from liushou_geo import planner_cli
p = argparse.ArgumentParser(prog="liushou-geo")
planner_cli.add_parser(p.add_subparsers(dest="command"))
sys.exit(planner_cli.run(p.parse_args(sys.argv[1:])))
"""


def _plan_cli(*args):
    return subprocess.run([sys.executable, "-c", _CLI, "plan-rooms", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_cli_json_contract(small_db, settings):
    out = _plan_cli("--db", str(small_db[0]), "--budget", "90000", "--radius-km", "3", "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)                    # JSON alone on standard output
    for key in ("status", "objective_covered_children", "children_total", "covered_before", "new_rooms", "gap"):
        assert key in data, key
    assert data["status"] == "optimal" and data["gap"] == 0
    assert len(data["new_rooms"]) <= 3
    for room in data["new_rooms"]:
        assert {"village_code", "lon", "lat", "marginal_children", "township_code"} <= set(room)
    assert data["covered_before"] + sum(r["marginal_children"] for r in data["new_rooms"]) \
        == data["objective_covered_children"]
    assert data["greedy_covered_children"] <= data["objective_covered_children"]


def test_cli_every_township_beyond_the_budget(small_db):
    out = _plan_cli("--db", str(small_db[0]), "--budget", "0", "--radius-km", "3", "--every-township",
                    "--format", "json")
    data = json.loads(out.stdout)
    if data["townships_without_room_before"]:
        assert out.returncode == 1 and data["status"] == "infeasible"
        assert data["min_budget_every_township"] == 30000 * len(data["townships_without_room_before"])
        assert "乡镇全覆盖" in out.stderr
    else:
        assert out.returncode == 0


def test_cli_table(small_db):
    out = _plan_cli("--db", str(small_db[0]), "--budget", "60000", "--radius-km", "2.5")
    assert out.returncode == 0 and "方案覆盖" in out.stdout
