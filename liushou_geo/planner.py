"""Where the next activity rooms (活动室) should go: a maximal covering
location problem (MCLP, Church & ReVelle 1974) solved exactly with HiGHS.

The maths core works on plain arrays (spopt style): a sparse coverage matrix
``A`` (demand points × candidate sites, ``A[i, j] = 1`` when site ``j`` lies
within the radius of demand point ``i``), demand weights ``w``, a mask of the
demand points already covered by locked-in rooms, and the room budget ``k``.
:func:`plan_rooms` is the thin wrapper that builds those arrays from the store
(named SQL ``planner_*.sql``) and turns the answer back into villages.

Model (issue #6)::

    maximise    Σ_i w_i · y_i                         (children newly covered)
    subject to  y_i ≤ Σ_j A_ij · x_j      for every demand point i not yet covered
                Σ_j x_j ≤ k                            (budget: k = ⌊budget / room cost⌋)
                Σ_{j ∈ S_t} x_j ≥ 1       for every township t without a room,
                                           when every township must have one (乡镇全覆盖)
                x_j ∈ {0, 1},  0 ≤ y_i ≤ 1

``y_i`` may be continuous: for integral ``x`` the optimum sets
``y_i = min(1, Σ_j A_ij x_j)``, which is 0 or 1. Demand points already
covered by a locked room add a constant and are left out of the model.

Minimum budget for 乡镇全覆盖: a site lies in exactly one township, so the
sets ``S_t`` are disjoint and every township without a room needs its own new
room — at least ``m`` rooms for ``m`` such townships. ``m`` rooms also
suffice (any one candidate in each), as long as each such township has a
candidate left (it has, unless a planner excluded all its villages). Hence
the minimum budget is exactly ``m × room cost``.

Great-circle neighbours come from a k-d tree on 3-D unit vectors (chord
length is monotone in great-circle distance), as in :mod:`coverage`.
"""

from __future__ import annotations

import math

import contextlib
import heapq
import os
import sys
import time
from dataclasses import dataclass, field

import duckdb
import numpy as np
import polars as pl
import scipy.sparse as sp
from scipy.spatial import cKDTree

from .coverage import chord, nearest_km, unit_vectors
from .settings import Settings
from .store import query

# -- the maths core (plain arrays) ----------------------------------------------


@dataclass
class Solution:
    """An answer of :func:`solve_mclp` or :func:`greedy`.

    ``chosen`` are site indices in order of marginal gain, ``gains`` their
    marginal newly covered weight in that order; ``objective`` is the newly
    covered weight (locked coverage excluded), ``bound`` the solver's upper
    bound on it and ``gap`` the relative gap ``(bound - objective) / bound``.
    """

    status: str                       # optimal | infeasible | time_limit | ...
    chosen: list[int]
    gains: list[float]
    objective: float
    bound: float
    gap: float
    seconds: float
    message: str = ""


def coverage_matrix(demand_lonlat: np.ndarray, site_lonlat: np.ndarray, radius_km: float) -> sp.csr_matrix:
    """Sparse 0/1 matrix (demand × sites): 1 where the great-circle distance is ≤ ``radius_km``.

    Only pairs within the radius are built (k-d tree on unit vectors).

    >>> coverage_matrix(np.array([[112.0, 28.0]]), np.array([[112.0, 28.01], [112.5, 28.0]]), 3.0).toarray()
    array([[1, 0]], dtype=int8)
    """
    demand_lonlat = np.asarray(demand_lonlat, dtype=float).reshape(-1, 2)
    site_lonlat = np.asarray(site_lonlat, dtype=float).reshape(-1, 2)
    n, m = len(demand_lonlat), len(site_lonlat)
    if not n or not m:
        return sp.csr_matrix((n, m), dtype=np.int8)
    tree = cKDTree(unit_vectors(demand_lonlat[:, 0], demand_lonlat[:, 1]))
    hits = tree.query_ball_point(unit_vectors(site_lonlat[:, 0], site_lonlat[:, 1]), chord(radius_km))
    lengths = np.fromiter((len(h) for h in hits), dtype=np.int64, count=m)
    rows = np.concatenate([np.asarray(h, dtype=np.int64) for h in hits]) if lengths.sum() else np.zeros(0, np.int64)
    cols = np.repeat(np.arange(m), lengths)
    A = sp.csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, m))
    A.sum_duplicates()
    A.data[:] = 1
    return A


def marginal_order(A: sp.spmatrix, weights: np.ndarray, covered: np.ndarray, chosen) -> tuple[list[int], list[float]]:
    """Order ``chosen`` sites greedily by marginal gain: at each step the site
    adding the most not-yet-covered weight (ties: lower index).

    Lazy evaluation: a site's gain can only shrink as others are added, so a
    stale gain is an upper bound and a recomputed one that still tops the heap wins.
    """
    A = sp.csc_matrix(A)
    covered = np.asarray(covered, dtype=bool).copy()
    w = np.asarray(weights, dtype=float)

    def gain(j):
        rows = A.indices[A.indptr[j]:A.indptr[j + 1]]
        return float(w[rows][~covered[rows]].sum())

    heap = [(-gain(j), j) for j in sorted(set(int(j) for j in chosen))]
    heapq.heapify(heap)
    order, gains = [], []
    while heap:
        _, j = heapq.heappop(heap)
        key = (-gain(j), j)
        if heap and key > heap[0]:
            heapq.heappush(heap, key)
            continue
        covered[A.indices[A.indptr[j]:A.indptr[j + 1]]] = True
        order.append(j)
        gains.append(-key[0])
    return order, gains


def covered_weight(A: sp.spmatrix, weights: np.ndarray, covered: np.ndarray, chosen) -> float:
    """Weight covered by the locked mask plus the sites ``chosen``."""
    return float(np.asarray(weights, dtype=float)[covered_mask(A, covered, chosen)].sum())


def covered_mask(A: sp.spmatrix, covered: np.ndarray, chosen) -> np.ndarray:
    """Demand points covered by the locked mask or any site in ``chosen``."""
    mask = np.asarray(covered, dtype=bool).copy()
    chosen = list(chosen)
    if chosen:
        mask |= np.asarray(sp.csc_matrix(A)[:, chosen].sum(axis=1)).ravel() > 0
    return mask


def _township_check(k: int, site_township, townships_needing) -> str:
    """'' when the township rule can be met with k sites, else why not."""
    needing = set(int(t) for t in townships_needing)
    if not needing:
        return ""
    with_site = set(int(t) for t in np.asarray(site_township)) & needing
    if with_site != needing:
        return f"{len(needing - with_site)} 个无活动室的乡镇没有可选站点"
    if len(needing) > k:
        return f"预算只够 {k} 个新活动室，但有 {len(needing)} 个乡镇没有活动室"
    return ""


def greedy(A: sp.spmatrix, weights: np.ndarray, k: int, covered: np.ndarray | None = None,
           site_township: np.ndarray | None = None, townships_needing=()) -> Solution:
    """The greedy heuristic: repeatedly add the site with the largest marginal
    gain. With the township rule, once the rooms left equal the townships
    still without one, only sites in those townships are eligible (so the
    answer stays feasible). Ties go to the lower site index.
    """
    t0 = time.perf_counter()
    A = sp.csr_matrix(A)
    n, m = A.shape
    w = np.asarray(weights, dtype=float)
    cov = np.zeros(n, dtype=bool) if covered is None else np.asarray(covered, dtype=bool).copy()
    st = np.full(m, -1) if site_township is None else np.asarray(site_township)
    why = _township_check(k, st, townships_needing)
    if why:
        return Solution("infeasible", [], [], 0.0, float("nan"), float("nan"), time.perf_counter() - t0, why)
    need = set(int(t) for t in townships_needing)
    csc = sp.csc_matrix(A)
    gain = np.asarray(csc.T @ (w * ~cov)).ravel()
    available = np.ones(m, dtype=bool)
    chosen, gains = [], []
    for step in range(min(k, m)):
        eligible = available.copy()
        if need and len(need) >= k - step:
            eligible &= np.isin(st, list(need))
        if not eligible.any():
            break
        g = np.where(eligible, gain, -np.inf)
        j = int(np.argmax(g))
        if g[j] <= 0 and not need:
            break                      # nothing left to gain: keep the money
        chosen.append(j)
        gains.append(float(gain[j]))
        available[j] = False
        need.discard(int(st[j]))
        rows = csc.indices[csc.indptr[j]:csc.indptr[j + 1]]
        new = rows[~cov[rows]]
        cov[new] = True
        if len(new):
            gain -= np.asarray(A[new].T @ w[new]).ravel()
    obj = float(sum(gains))
    return Solution("heuristic", chosen, gains, obj, float("nan"), float("nan"), time.perf_counter() - t0)


@contextlib.contextmanager
def _stdout_to_stderr():
    """HiGHS prints a banner on standard output when the first solver is made;
    the CLI's standard output must hold JSON alone."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def solve_mclp(A: sp.spmatrix, weights: np.ndarray, k: int, covered: np.ndarray | None = None,
               site_township: np.ndarray | None = None, townships_needing=(),
               time_limit: float = 120.0) -> Solution:
    """Solve the maximal covering model of the module docstring exactly with HiGHS.

    Parameters
    ----------
    A : sparse (n_demand × n_sites), 1 where a site covers a demand point.
    weights : (n_demand,) non-negative demand (children).
    k : the most new sites to open.
    covered : (n_demand,) bool, demand already covered by locked-in rooms.
    site_township : (n_sites,) int, the township index of each site (-1: none).
    townships_needing : township indices that must receive ≥ 1 new site.
    time_limit : seconds; on reaching it the best solution found is returned
        with status ``time_limit`` and its gap.

    Demand points with identical covering sets are merged (weights added) and
    points nobody can cover are dropped: the optimum does not change.

    >>> A = sp.csr_matrix(np.array([[1, 0], [1, 1], [0, 1]]))
    >>> s = solve_mclp(A, np.array([5, 1, 3]), k=1)
    >>> s.status, s.chosen, s.objective
    ('optimal', [0], 6.0)
    """
    import highspy

    t0 = time.perf_counter()
    A = sp.csr_matrix(A)
    n, m = A.shape
    w = np.asarray(weights, dtype=float)
    cov = np.zeros(n, dtype=bool) if covered is None else np.asarray(covered, dtype=bool)
    st = np.full(m, -1) if site_township is None else np.asarray(site_township)
    need = sorted(set(int(t) for t in townships_needing))
    why = _township_check(k, st, need)
    if why:
        return Solution("infeasible", [], [], 0.0, float("nan"), float("nan"), time.perf_counter() - t0, why)
    k = min(int(k), m)
    if k <= 0 or m == 0:
        return Solution("optimal", [], [], 0.0, 0.0, 0.0, time.perf_counter() - t0)

    # Rows of the model: uncovered demand with weight, merged by covering set.
    live = np.flatnonzero(~cov & (w > 0) & (np.diff(A.indptr) > 0))
    groups: dict[bytes, int] = {}
    row_w: list[float] = []
    row_of: list[np.ndarray] = []
    for i in live:
        idx = A.indices[A.indptr[i]:A.indptr[i + 1]]
        key = np.sort(idx).tobytes()
        g = groups.get(key)
        if g is None:
            groups[key] = len(row_w)
            row_w.append(w[i])
            row_of.append(np.sort(idx))
        else:
            row_w[g] += w[i]
    r = len(row_w)

    # Columns: x_0..x_{m-1} (binary), then y_0..y_{r-1} (continuous in [0, 1]).
    # Rows: r coverage rows (y_g - Σ x_j ≤ 0), the budget row, township rows.
    cov_rows = np.repeat(np.arange(r), [len(x) for x in row_of])
    cov_cols = np.concatenate(row_of) if r else np.zeros(0, dtype=np.int64)
    rows = [cov_rows, np.arange(r), np.full(m, r)]
    cols = [cov_cols, m + np.arange(r), np.arange(m)]
    vals = [-np.ones(len(cov_rows)), np.ones(r), np.ones(m)]
    for t_i, t in enumerate(need):
        sites = np.flatnonzero(st == t)
        rows.append(np.full(len(sites), r + 1 + t_i))
        cols.append(sites)
        vals.append(np.ones(len(sites)))
    n_rows = r + 1 + len(need)
    M = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(n_rows, m + r))
    M.sort_indices()

    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = m + r, n_rows
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.col_cost_ = np.concatenate([np.zeros(m), np.asarray(row_w, dtype=float)])
    lp.col_lower_ = np.zeros(m + r)
    lp.col_upper_ = np.ones(m + r)
    lp.row_lower_ = np.concatenate([np.full(r, -np.inf), [-np.inf], np.ones(len(need))])
    lp.row_upper_ = np.concatenate([np.zeros(r), [float(k)], np.full(len(need), np.inf)])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = M.indptr.astype(np.int32)
    lp.a_matrix_.index_ = M.indices.astype(np.int32)
    lp.a_matrix_.value_ = M.data.astype(float)
    lp.integrality_ = [highspy.HighsVarType.kInteger] * m + [highspy.HighsVarType.kContinuous] * r

    with _stdout_to_stderr():
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", 0.0)
    # Children are whole: a gap under one child proves optimality.
    h.setOptionValue("mip_abs_gap", 0.999 if np.all(np.mod(w, 1) == 0) else 1e-6)
    h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("threads", 1)
    h.passModel(lp)
    h.run()
    ms = h.getModelStatus()
    info = h.getInfo()
    status = {highspy.HighsModelStatus.kOptimal: "optimal",
              highspy.HighsModelStatus.kInfeasible: "infeasible",
              highspy.HighsModelStatus.kTimeLimit: "time_limit"}.get(ms, h.modelStatusToString(ms).lower())
    if status == "infeasible" or info.primal_solution_status == 0:
        return Solution(status, [], [], 0.0, float("nan"), float("nan"), time.perf_counter() - t0,
                        h.modelStatusToString(ms))
    x = np.asarray(h.getSolution().col_value[:m])
    chosen = [int(j) for j in np.flatnonzero(x > 0.5)]
    order, gains = marginal_order(A, w, cov, chosen)
    objective = float(sum(gains))             # recomputed from the sites, not the LP's y
    bound = float(info.mip_dual_bound)
    if status == "optimal":
        bound = min(bound, objective + 0.999) if np.all(np.mod(w, 1) == 0) else bound
    gap = 0.0 if bound <= objective or bound == 0 else (bound - objective) / bound
    return Solution(status, order, gains, objective, bound, gap, time.perf_counter() - t0)


# -- the wrapper: villages, rooms and townships from the store --------------------


@dataclass
class NewRoom:
    rank: int                 # 1 = the largest marginal gain
    village_code: str         # a custom site: "custom-1", ...
    name: str
    township_code: str
    township_name: str
    lon: float
    lat: float
    marginal_children: int

    def as_dict(self) -> dict:
        return {"rank": self.rank, "village_code": self.village_code, "name": self.name,
                "township_code": self.township_code, "township_name": self.township_name,
                "lon": self.lon, "lat": self.lat, "marginal_children": self.marginal_children}


@dataclass
class WhatIf:
    """Coverage for a changed set of new rooms (see :meth:`Plan.what_if`)."""

    covered_children: int
    change: int                       # against the plan's objective
    new_rooms: list[NewRoom]
    townships_without_room: list[str]
    covered: np.ndarray               # per village of Plan.villages


@dataclass
class Plan:
    """The answer of :func:`plan_rooms`. Children counts include the ones
    already covered by existing rooms (``covered_before``)."""

    status: str
    objective_covered_children: int
    children_total: int
    covered_before: int
    new_rooms: list[NewRoom]
    gap: float | None
    bound: float | None
    greedy_covered_children: int | None
    greedy_gap: float | None
    greedy_rooms: list[str]
    seconds: float
    seconds_total: float
    budget_yuan: int
    room_cost_yuan: int
    max_new_rooms: int
    radius_km: float
    every_township: bool
    include_under_construction: bool
    county: str | None
    townships_total: int
    townships_without_room_before: list[str]
    townships_without_room_after: list[str]
    min_budget_every_township: int | None
    message: str
    villages: pl.DataFrame            # code, name, township_code, township_name, lon, lat, children, covered_before, covered_after
    existing_rooms: pl.DataFrame      # name, village_code, township_code, lon, lat, status
    candidates: pl.DataFrame          # code, name, township_code, township_name, lon, lat (site index = row)
    _A: sp.csr_matrix = field(repr=False, default=None)
    _chosen: list[int] = field(repr=False, default_factory=list)

    def to_json(self) -> dict:
        def num(v):
            return None if v is None or (isinstance(v, float) and np.isnan(v)) else v

        return {
            "status": self.status,
            "objective_covered_children": self.objective_covered_children,
            "children_total": self.children_total,
            "covered_before": self.covered_before,
            "new_rooms": [r.as_dict() for r in self.new_rooms],
            "gap": num(self.gap),
            "bound": num(self.bound),
            "greedy_covered_children": self.greedy_covered_children,
            "greedy_gap": num(self.greedy_gap),
            "seconds": round(self.seconds, 3),
            "seconds_total": round(self.seconds_total, 3),
            "budget_yuan": self.budget_yuan,
            "room_cost_yuan": self.room_cost_yuan,
            "max_new_rooms": self.max_new_rooms,
            "radius_km": self.radius_km,
            "every_township": self.every_township,
            "include_under_construction": self.include_under_construction,
            "county": self.county,
            "townships_total": self.townships_total,
            "townships_without_room_before": self.townships_without_room_before,
            "townships_without_room_after": self.townships_without_room_after,
            "min_budget_every_township": self.min_budget_every_township,
            "message": self.message,
        }

    def site_index(self, code: str) -> int:
        idx = self.candidates["code"].to_list()
        if code not in idx:
            raise KeyError(f"{code} 不是候选站点")
        return idx.index(code)

    def what_if(self, removals=(), moves: dict | None = None) -> WhatIf:
        """Coverage if the proposed rooms in ``removals`` (village codes) are
        dropped and each ``moves[old_code] = new_code`` goes to another
        candidate site instead."""
        moves = dict(moves or {})
        current = [self.candidates["code"][j] for j in self._chosen]
        for code in list(removals) + list(moves):
            if code not in current:
                raise KeyError(f"{code} 不是方案中的新活动室")
        sites = [c for c in current if c not in set(removals)]
        sites = [moves.get(c, c) for c in sites]
        chosen = list(dict.fromkeys(self.site_index(c) for c in sites))
        w = self.villages["children"].to_numpy().astype(float)
        before = self.villages["covered_before"].to_numpy()
        order, gains = marginal_order(self._A, w, before, chosen)
        mask = covered_mask(self._A, before, chosen)
        covered = int(w[mask].sum())
        rooms = _new_rooms(self.candidates, order, gains)
        return WhatIf(covered, covered - self.objective_covered_children, rooms,
                      _towns_left(self.townships_without_room_before, rooms), mask)


def _new_rooms(cand: pl.DataFrame, order, gains) -> list[NewRoom]:
    out = []
    for rank, (j, g) in enumerate(zip(order, gains), start=1):
        r = cand.row(j, named=True)
        out.append(NewRoom(rank, r["code"], r["name"], r["township_code"], r["township_name"],
                           round(float(r["lon"]), 6), round(float(r["lat"]), 6), int(round(g))))
    return out


def _towns_left(before: list[str], rooms: list[NewRoom]) -> list[str]:
    got = {r.township_code for r in rooms}
    return [t for t in before if t not in got]


def scope_prefix(code: str | None) -> str:
    """The code prefix of a unit (city 4, county 6, township 9 digits); '' for none.

    >>> scope_prefix("439921000000"), scope_prefix("439921101000"), scope_prefix(None)
    ('439921', '439921101', '')
    """
    if not code:
        return ""
    for n in (4, 6, 9):
        if set(code[n:]) <= {"0"}:
            return code[:n]
    return code


@dataclass(frozen=True)
class CustomSite:
    """A point a planner adds as a candidate (not a village committee)."""

    lon: float
    lat: float
    township_code: str
    name: str = "自定义站点"


def plan_rooms(con: duckdb.DuckDBPyConnection, settings: Settings, budget_yuan: int, radius_km: float,
               every_township: bool = False, county: str | None = None,
               include_under_construction: bool = False, exclude=(), custom_sites=(),
               time_limit: float = 120.0) -> Plan:
    """Choose up to ⌊budget / room cost⌋ new rooms maximising the children
    whose village point lies within ``radius_km`` (great circle) of a room.

    Demand: children per village (distinct children by village, as in the
    figures) at the village's representative point, inside ``county`` (a
    12-digit county code; a township's code also works) or the whole city. Candidates: the villages there hosting
    no existing room, minus ``exclude`` (village codes), plus
    ``custom_sites`` (:class:`CustomSite` or ``(lon, lat, township_code)``).
    Existing rooms (在用, and 在建 when ``include_under_construction``) are
    locked in, wherever they are. ``every_township`` adds 乡镇全覆盖 as a hard
    constraint; when the budget cannot reach it the plan's status is
    ``infeasible`` and ``min_budget_every_township`` says what would.
    """
    t_start = time.perf_counter()
    if budget_yuan < 0:
        raise ValueError("budget_yuan must be ≥ 0")
    if not radius_km > 0:
        raise ValueError("radius_km must be > 0")
    cost = int(settings.room_cost_yuan)
    k = int(budget_yuan // cost)
    within = scope_prefix(county)
    statuses = ["在用", "在建"] if include_under_construction else ["在用"]

    villages = query(con, "planner_villages", {"within": within})
    rooms = query(con, "planner_rooms", {"statuses": statuses})
    towns = query(con, "planner_townships", {"within": within, "statuses": statuses})
    town_names = dict(towns.select("code", "name").rows())

    pts = villages.select("lon", "lat").to_numpy().astype(float)
    room_pts = rooms.select("lon", "lat").to_numpy().astype(float)
    before = nearest_km(pts, room_pts) <= radius_km if len(pts) else np.zeros(0, dtype=bool)

    hosts = set(rooms["village_code"].drop_nulls().to_list())
    excluded = set(exclude)
    cand = villages.filter(~pl.col("code").is_in(list(hosts | excluded))).select(
        "code", "name", "township_code", "township_name", "lon", "lat")
    extra = []
    for n, c in enumerate(custom_sites, start=1):
        c = c if isinstance(c, CustomSite) else CustomSite(*c)
        if c.township_code not in town_names:
            raise ValueError(f"自定义站点的乡镇代码 {c.township_code} 不在规划范围内")
        extra.append({"code": f"custom-{n}", "name": c.name, "township_code": c.township_code,
                      "township_name": town_names[c.township_code], "lon": float(c.lon), "lat": float(c.lat)})
    if extra:
        cand = pl.concat([cand, pl.DataFrame(extra, schema=cand.schema)], how="vertical")

    A = coverage_matrix(pts, cand.select("lon", "lat").to_numpy().astype(float), radius_km)
    w = villages["children"].to_numpy().astype(float)
    town_index = {c: i for i, c in enumerate(towns["code"].to_list())}
    site_town = np.array([town_index.get(t, -1) for t in cand["township_code"].to_list()], dtype=np.int64)
    without = towns.filter(~pl.col("has_room"))["code"].to_list()
    needing = [town_index[t] for t in without] if every_township else []
    # One new room per township without one is necessary and sufficient
    # (module docstring), unless a township has no candidate left at all.
    reachable = set(cand["township_code"].to_list())
    min_budget = len(without) * cost if all(t in reachable for t in without) else None

    sol = solve_mclp(A, w, k, before, site_town, needing, time_limit=time_limit)
    g = greedy(A, w, k, before, site_town, needing)

    children_total = int(w.sum())
    covered_before = int(w[before].sum())
    message = sol.message
    if sol.status == "infeasible" and every_township:
        message = (f"预算不足以实现乡镇全覆盖：{len(without)} 个乡镇没有活动室，至少需要 "
                   f"{len(without)} 个新活动室，即 {min_budget:,} 元（每个 {cost:,} 元）。" + (
                       f"（{sol.message}）" if "没有可选站点" in sol.message else ""))
    rooms_new = _new_rooms(cand, sol.chosen, sol.gains)
    after = covered_mask(A, before, sol.chosen)
    opt = covered_before + int(round(sol.objective))
    greedy_total = covered_before + int(round(g.objective)) if g.status != "infeasible" else None
    greedy_gap = None
    if greedy_total is not None and sol.status in ("optimal", "time_limit") and opt > 0:
        greedy_gap = round((opt - greedy_total) / opt, 6)
    return Plan(
        status=sol.status,
        objective_covered_children=opt,
        children_total=children_total,
        covered_before=covered_before,
        new_rooms=rooms_new,
        gap=None if np.isnan(sol.gap) else round(float(sol.gap), 6),
        bound=None if np.isnan(sol.bound) else covered_before + float(sol.bound),
        greedy_covered_children=greedy_total,
        greedy_gap=greedy_gap,
        greedy_rooms=[cand["code"][j] for j in g.chosen],
        seconds=sol.seconds,
        seconds_total=time.perf_counter() - t_start,
        budget_yuan=int(budget_yuan),
        room_cost_yuan=cost,
        max_new_rooms=k,
        radius_km=float(radius_km),
        every_township=every_township,
        include_under_construction=include_under_construction,
        county=county,
        townships_total=towns.height,
        townships_without_room_before=without,
        townships_without_room_after=_towns_left(without, rooms_new),
        min_budget_every_township=min_budget,
        message=message,
        villages=villages.with_columns(covered_before=pl.Series(before, dtype=pl.Boolean),
                                       covered_after=pl.Series(after, dtype=pl.Boolean)),
        existing_rooms=rooms,
        candidates=cand,
        _A=A,
        _chosen=list(sol.chosen),
    )


def candidate_sites(con: duckdb.DuckDBPyConnection, county: str | None = None,
                    include_under_construction: bool = False) -> pl.DataFrame:
    """The villages that may host a new room (code, name, township_code, township_name):
    inside ``county`` or the city, hosting no existing room. For the exclusion picker."""
    statuses = ["在用", "在建"] if include_under_construction else ["在用"]
    villages = query(con, "planner_villages", {"within": scope_prefix(county)})
    hosts = query(con, "planner_rooms", {"statuses": statuses})["village_code"].drop_nulls().to_list()
    return villages.filter(~pl.col("code").is_in(hosts)).select("code", "name", "township_code", "township_name")


# -- for people: table, Excel, map ------------------------------------------------------

ROOM_TABLE_HEADERS = {"rank": "序号", "village_code": "村（社区）代码", "name": "村（社区）",
                      "township_name": "乡镇（街道）", "marginal_children": "新增覆盖儿童",
                      "lon": "经度", "lat": "纬度"}


def rooms_table(rooms: list[NewRoom]) -> pl.DataFrame:
    """The proposed rooms in order of marginal gain, with Chinese headers."""
    cols = list(ROOM_TABLE_HEADERS)
    rows = [{c: r.as_dict()[c] for c in cols} for r in rooms]
    df = pl.DataFrame(rows, schema={"rank": pl.Int64, "village_code": pl.String, "name": pl.String,
                                    "township_name": pl.String, "marginal_children": pl.Int64,
                                    "lon": pl.Float64, "lat": pl.Float64})
    return df.rename(ROOM_TABLE_HEADERS)


STATUS_TEXT = {"optimal": "最优解", "infeasible": "无可行方案", "time_limit": "达到时间上限（给出当前最好方案）"}


def summary_rows(plan: Plan) -> list[tuple[str, str]]:
    """(item, value) lines describing the inputs and the result, in Chinese."""
    def pct(n):
        return f"{n:,} 人（{n / plan.children_total:.1%}）" if plan.children_total else f"{n:,} 人"

    rows = [
        ("规划范围", plan.county or "全市"),
        ("预算", f"{plan.budget_yuan:,} 元（每个活动室 {plan.room_cost_yuan:,} 元，最多 {plan.max_new_rooms} 个）"),
        ("服务半径", f"{plan.radius_km:g} 公里（村代表点到活动室的球面距离）"),
        ("乡镇全覆盖约束", "是" if plan.every_township else "否"),
        ("在建活动室计为已有", "是" if plan.include_under_construction else "否"),
        ("求解状态", STATUS_TEXT.get(plan.status, plan.status)),
        ("留守儿童总数", f"{plan.children_total:,} 人"),
        ("现有活动室覆盖", pct(plan.covered_before)),
        ("方案实施后覆盖", pct(plan.objective_covered_children)),
        ("上界 / 差距", "—" if plan.bound is None else f"{plan.bound:,.0f} / {plan.gap:.4%}"),
        ("贪心算法覆盖", "—" if plan.greedy_covered_children is None else
         pct(plan.greedy_covered_children) + ("" if plan.greedy_gap is None else f"，比最优少 {plan.greedy_gap:.2%}")),
        ("无活动室的乡镇", f"{len(plan.townships_without_room_before)} 个 → {len(plan.townships_without_room_after)} 个"),
        ("乡镇全覆盖最低预算", "无法实现" if plan.min_budget_every_township is None
         else f"{plan.min_budget_every_township:,} 元"),
    ]
    if plan.message:
        rows.append(("说明", plan.message))
    return rows


def plan_excel(plan: Plan, title: str, subtitle: str) -> bytes:
    """The plan as .xlsx: the proposed rooms, then the inputs and results."""
    import pandas as pd

    from .compliance import to_excel

    summary = pd.DataFrame(summary_rows(plan), columns=["项目", "内容"])
    return to_excel({"选址方案": rooms_table(plan.new_rooms).to_pandas(), "参数与结果": summary}, title, subtitle)


# RdYlBu (colour-blind safe): covered by existing rooms, newly covered, not covered.
COLOR_COVERED_BEFORE = [69, 117, 180]
COLOR_COVERED_NEW = [145, 191, 219]
COLOR_UNCOVERED = [215, 48, 39]
COLOR_EXISTING = [30, 30, 30]
COLOR_PROPOSED = [253, 174, 97]


def plan_map(plan: Plan, townships: pl.DataFrame | None = None, rooms: list[NewRoom] | None = None,
             covered: np.ndarray | None = None, basemap_style_url: str = ""):
    """A pydeck map of the plan (or of a what-if variant: ``rooms`` and ``covered``):
    township outlines, villages by coverage, existing rooms, proposed rooms
    numbered by marginal gain with their radius. Returns a mapview.MapView."""
    import json

    import pydeck as pdk

    from .mapview import CompactDeck, MapView, _basemap, fit_view

    rooms = plan.new_rooms if rooms is None else rooms
    covered = plan.villages["covered_after"].to_numpy() if covered is None else covered
    v = plan.villages.with_columns(_cov=pl.Series(covered, dtype=pl.Boolean))
    layers = []
    if townships is not None and townships.height:
        rows = [{"polygon": part} for g in townships["geom_web"].to_list() if g for part in json.loads(g)]
        layers.append(pdk.Layer("PolygonLayer", id="townships", data=rows, get_polygon="polygon",
                                filled=False, stroked=True, get_line_color=[120, 120, 120],
                                line_width_min_pixels=1, pickable=False))

    def village_rows(df, state):
        # The radius is computed here: deck.gl's JSON accessors may not call functions (Math.sqrt).
        return [{"position": [round(r["lon"], 5), round(r["lat"], 5)], "children": r["children"],
                 "r": round(3 + math.sqrt(r["children"]), 2),
                 "tip": f"{r['township_name']} {r['name']}\n留守儿童：{r['children']} 人\n{state}"}
                for r in df.iter_rows(named=True)]

    groups = [("villages-uncovered", v.filter(~pl.col("_cov")), COLOR_UNCOVERED, "未覆盖"),
              ("villages-covered-new", v.filter(pl.col("_cov") & ~pl.col("covered_before")), COLOR_COVERED_NEW,
               "新增覆盖"),
              ("villages-covered", v.filter(pl.col("covered_before")), COLOR_COVERED_BEFORE, "现有活动室已覆盖")]
    for layer_id, df, colour, state in groups:
        layers.append(pdk.Layer("ScatterplotLayer", id=layer_id, data=village_rows(df, state),
                                get_position="position", get_fill_color=colour, get_line_color=[60, 60, 60],
                                get_radius="r", radius_units="'pixels'", stroked=True,
                                line_width_min_pixels=0.5, pickable=True, opacity=0.9))
    proposed = [{"position": [r.lon, r.lat], "label": str(r.rank),
                 "tip": f"新建第 {r.rank} 号：{r.township_name} {r.name}\n新增覆盖：{r.marginal_children} 人"}
                for r in rooms]
    layers.append(pdk.Layer("ScatterplotLayer", id="proposed-radius", data=proposed, get_position="position",
                            get_radius=plan.radius_km * 1000, radius_units="'meters'",
                            get_fill_color=COLOR_PROPOSED + [40], get_line_color=COLOR_PROPOSED,
                            stroked=True, line_width_min_pixels=1, pickable=False))
    existing = [{"position": [round(r["lon"], 5), round(r["lat"], 5)],
                 "tip": f"现有活动室（{r['status']}）：{r['name'] or ''}"}
                for r in plan.existing_rooms.iter_rows(named=True)]
    layers.append(pdk.Layer("ScatterplotLayer", id="existing-rooms", data=existing, get_position="position",
                            get_fill_color=COLOR_EXISTING, get_line_color=[255, 255, 255], get_radius=6,
                            radius_units="'pixels'", stroked=True, line_width_min_pixels=1.5, pickable=True))
    layers.append(pdk.Layer("ScatterplotLayer", id="proposed-rooms", data=proposed, get_position="position",
                            get_fill_color=COLOR_PROPOSED, get_line_color=[0, 0, 0], get_radius=11,
                            radius_units="'pixels'", stroked=True, line_width_min_pixels=1.5, pickable=True))
    layers.append(pdk.Layer("TextLayer", id="proposed-labels", data=proposed, get_position="position",
                            get_text="label", get_size=13, size_units="'pixels'", get_color=[0, 0, 0],
                            character_set="'auto'", font_family="'Noto Sans CJK SC, Microsoft YaHei, sans-serif'",
                            font_weight=700, pickable=False))
    pts = v.select("lon", "lat").to_numpy()
    frame = [[[pts.tolist()]]] if len(pts) else []
    deck = CompactDeck(layers=layers, initial_view_state=fit_view(frame), tooltip={"text": "{tip}"},
                       **_basemap(basemap_style_url))
    legend = [("现有活动室已覆盖的村", COLOR_COVERED_BEFORE), ("方案新增覆盖的村", COLOR_COVERED_NEW),
              ("未覆盖的村", COLOR_UNCOVERED), ("现有活动室", COLOR_EXISTING), ("拟建活动室（按新增覆盖排序编号）", COLOR_PROPOSED)]
    return MapView(deck=deck, legend_title="选址方案", legend=legend, feature_count=v.height, level="village")
