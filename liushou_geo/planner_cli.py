"""``liushou-geo plan-rooms``: where the next activity rooms go (issue #6).

Wired into :mod:`liushou_geo.cli` with ``add_parser(sub)``; ``run(args)``
returns the exit code. JSON goes alone to standard output.
"""

from __future__ import annotations

import argparse
import json
import sys
from .cli_common import add_store_options


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "plan-rooms", help="choose sites for new activity rooms under a budget (maximal covering)",
        description="Choose at most floor(budget / room cost) new activity rooms so that as many children as "
                    "possible live within the radius of a room (exact MIP with HiGHS; the greedy answer and "
                    "its distance to the optimum are reported too). Existing rooms in use are kept.")
    add_store_options(p)
    p.add_argument("--budget", type=int, required=True, metavar="YUAN", help="budget for new rooms, in yuan")
    p.add_argument("--radius-km", type=float, default=None, metavar="R",
                   help="coverage radius in great-circle km (default: room_radius_km from the settings)")
    p.add_argument("--every-township", action="store_true",
                   help="hard constraint: every township ends with at least one room (乡镇全覆盖)")
    p.add_argument("--county", metavar="CODE", help="plan inside one county (12-digit code)")
    p.add_argument("--include-under-construction", action="store_true",
                   help="count rooms under construction (在建) as existing")
    p.add_argument("--exclude", action="append", default=[], metavar="VILLAGE_CODE",
                   help="a village that must not host a new room (repeatable)")
    p.add_argument("--time-limit", type=float, default=120.0, metavar="SECONDS",
                   help="solver time limit; the best plan found and its gap are reported (default 120)")
    p.add_argument("--format", choices=["table", "json"], default="table",
                   help="table for people, json for tools (default table)")
    return p


def run(args) -> int:
    from .planner import plan_rooms
    from .settings import SettingsError, load_settings
    from .store import connect

    try:
        settings = load_settings(args.settings)
        con = connect(args.db, read_only=True)
    except (SettingsError, FileNotFoundError) as e:
        print(f"错误：{e}", file=sys.stderr)
        return 2
    if args.budget < 0:
        print("错误：--budget 不能为负数", file=sys.stderr)
        return 2
    radius = args.radius_km if args.radius_km is not None else settings.room_radius_km
    if not radius > 0:
        print("错误：--radius-km 应大于 0", file=sys.stderr)
        return 2
    try:
        plan = plan_rooms(con, settings, args.budget, radius, every_township=args.every_township,
                          county=args.county, include_under_construction=args.include_under_construction,
                          exclude=args.exclude, time_limit=args.time_limit)
    finally:
        con.close()
    if args.format == "json":
        print(json.dumps(plan.to_json(), ensure_ascii=False, indent=1))
    else:
        print(table(plan))
    if plan.status == "infeasible":
        print(plan.message, file=sys.stderr)
        return 1
    return 0


def table(plan) -> str:
    """The plan for people: a summary, then one line per new room in order of marginal gain."""
    def pct(n):
        return f"{n / plan.children_total:.1%}" if plan.children_total else "—"

    lines = [
        f"状态：{plan.status}；预算 {plan.budget_yuan:,} 元，最多 {plan.max_new_rooms} 个新活动室"
        f"（每个 {plan.room_cost_yuan:,} 元）；服务半径 {plan.radius_km:g} 公里",
        f"儿童 {plan.children_total:,} 人；现有活动室覆盖 {plan.covered_before:,} 人（{pct(plan.covered_before)}）；"
        f"方案覆盖 {plan.objective_covered_children:,} 人（{pct(plan.objective_covered_children)}）",
    ]
    if plan.bound is not None:
        lines.append(f"上界 {plan.bound:,.0f}，差距 {plan.gap:.4%}；求解 {plan.seconds:.2f} 秒")
    if plan.greedy_covered_children is not None:
        gap = "" if plan.greedy_gap is None else f"，比最优少 {plan.greedy_gap:.2%}"
        lines.append(f"贪心算法覆盖 {plan.greedy_covered_children:,} 人{gap}")
    lines.append(f"无活动室的乡镇：{len(plan.townships_without_room_before)} 个 → "
                 f"{len(plan.townships_without_room_after)} 个；乡镇全覆盖最低预算 "
                 + (f"{plan.min_budget_every_township:,} 元" if plan.min_budget_every_township is not None
                    else "无法实现（有乡镇没有可选站点）"))
    if plan.message:
        lines.append(plan.message)
    if plan.new_rooms:
        lines.append("序号  村（社区）代码  新增覆盖  经度  纬度  乡镇  名称")
        for r in plan.new_rooms:
            lines.append(f"{r.rank:>4}  {r.village_code}  {r.marginal_children:>8}  {r.lon:.5f}  {r.lat:.5f}  "
                         f"{r.township_name}  {r.name}")
    return "\n".join(lines)
