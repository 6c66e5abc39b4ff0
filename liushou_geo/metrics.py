"""Figures per unit (city, county, township, village) from the store.

Definitions (issue #2): a child is a distinct valid ID under the age limit on
its extract's as-of date; ``paired`` / ``with_guardian`` count a child when any
of its source rows names a helper / a guardian; per village
``terminals_needed = ceil(children / children_per_terminal)`` and
``terminal_shortfall = max(0, needed - installed)``, summed upward;
``rooms_active`` counts rooms with status 在用 inside the unit.
"""

from __future__ import annotations

import duckdb
import polars as pl

from .boundaries import LEVEL_PREFIX
from .settings import Settings
from .store import query

LEVELS = tuple(LEVEL_PREFIX)
METRIC_COLUMNS = ["code", "name", "children", "paired", "with_guardian", "terminals_needed",
                  "terminals_installed", "terminal_shortfall", "rooms_active"]


def unit_metrics(con: duckdb.DuckDBPyConnection, level: str, settings: Settings) -> pl.DataFrame:
    """One row per unit of ``level`` with the figures above (plus parent_code, lon, lat, villages)."""
    if level not in LEVEL_PREFIX:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    return query(con, "unit_metrics", {
        "level": level, "prefix_len": LEVEL_PREFIX[level], "per_terminal": settings.children_per_terminal,
    })


def townships_without_room(con: duckdb.DuckDBPyConnection, within: str = "") -> pl.DataFrame:
    """Townships with no room in use, optionally inside a code prefix."""
    return query(con, "townships_without_room", {"within": within})


def overview(con: duckdb.DuckDBPyConnection, settings: Settings, unit_code: str | None = None) -> dict:
    """The overview page's key figures for the city, one county or one township."""
    if unit_code is None:
        level, prefix = "city", ""
    elif unit_code.endswith("000000"):
        level, prefix = "county", unit_code[:6]
    else:
        level, prefix = "township", unit_code[:9]
    m = unit_metrics(con, level, settings)
    if unit_code:
        m = m.filter(pl.col("code") == unit_code)
    row = m.row(0, named=True) if m.height else dict.fromkeys(METRIC_COLUMNS, 0)
    counts = query(con, "unit_counts", {"within": prefix}).row(0, named=True)
    no_room = townships_without_room(con, prefix).height
    children = row["children"] or 0
    return {
        "children": children,
        "townships": counts["townships"],
        "villages": counts["villages"],
        "paired": row["paired"] or 0,
        "pairing_rate": (row["paired"] / children) if children else None,
        "terminal_shortfall": row["terminal_shortfall"] or 0,
        "townships_without_room": no_room,
    }


def metrics_table(con: duckdb.DuckDBPyConnection, level: str, settings: Settings,
                  villages: pl.DataFrame | None = None) -> pl.DataFrame:
    """The ``liushou-geo metrics`` table: the base figures and every target's
    ``_rate``, ``_num``, ``_den``, ``_met`` plus the proxy-parent cadence counts."""
    from .targets import target_columns, unit_targets

    base = unit_metrics(con, level, settings).select(METRIC_COLUMNS)
    tg = unit_targets(con, settings, level, villages)
    extra = ["terminal_shortfall_cost_yuan"]
    return base.join(tg.select(["code", *target_columns()]), on="code", how="left").with_columns(
        (pl.col("terminal_shortfall") * settings.terminal_cost_yuan).alias(extra[0]))
