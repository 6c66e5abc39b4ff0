"""The programme's seven targets (DOMAIN.md) per city, county, township and village.

Definitions (each a count over children or units, so every level is the sum
of the villages below it):

- T1a registry complete, enrolled: children with a complete file (REGISTRY_FORMAT
  "file is complete", in any one of their source rows) / children enrolled in a
  school or kindergarten (a row names a school with status 在校 or 学前).
- T1b the same for scattered children (not enrolled).
- T2 family education: children whose parent or guardian attended the parent
  school within ``parent_school_window_months`` before the child's as-of date / children.
- T3 hotline and mailbox: schools and committees with ≥ 1 terminal and a
  mailbox / schools and committees that have left-behind children.
- T4 pairing: paired children / children.
- T5 guardian: children with a temporary guardian / children.
- T6 enrolment: children of compulsory age (``compulsory_age_min``–``max`` on
  the as-of date) attending school (在校) / children of compulsory age.
- T7 legal aid: eligible cases aided / eligible cases; no eligible case gives
  no rate ("not applicable"), never 100 %.
- Room coverage: townships with an active room / townships (乡镇全覆盖, 100 %),
  and children whose village point lies within the radius of an active room.
- Terminals: needed, installed, shortfall and its cost.
- Proxy-parent cadence on the report date (the newest as-of date): paired
  children with no contact in the last month, no activity this quarter, no
  counselling in the last school holiday, no summary last year.

A rate is a percentage; ``status`` is ``met`` (≥ threshold), ``amber``
(within ``amber_band`` points below), ``short`` or ``na`` (no denominator).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import polars as pl

from .boundaries import LEVEL_PREFIX
from .coverage import village_coverage
from .settings import Settings
from .store import query


@dataclass(frozen=True)
class Target:
    key: str          # t1a ... t7, room_townships, room_children
    setting: str | None
    label: str        # Chinese, for pages and exports
    short: str


TARGETS = [
    Target("t1a", "t1a_registry_school", "在校儿童建档率", "在校建档"),
    Target("t1b", "t1b_registry_scattered", "散居儿童建档率", "散居建档"),
    Target("t2", "t2_family_education", "家庭教育培训率", "家长学校"),
    Target("t3", "t3_hotline_mailbox", "亲情电话和信箱配备率", "电话信箱"),
    Target("t4", "t4_pairing", "结对帮扶率", "结对帮扶"),
    Target("t5", "t5_guardian", "临时监护人落实率", "临时监护"),
    Target("t6", "t6_enrolment", "义务教育入学率", "义务教育"),
    Target("t7", "t7_legal_aid", "法律援助率", "法律援助"),
]
ROOM_TARGETS = [
    Target("room_townships", None, "乡镇活动室覆盖率", "乡镇覆盖"),
    Target("room_children", None, "活动室服务半径内儿童比例", "半径覆盖"),
]
ALL_TARGETS = TARGETS + ROOM_TARGETS
TARGET_BY_KEY = {t.key: t for t in ALL_TARGETS}
STATUS_LABELS = {"met": "达标", "amber": "接近", "short": "未达标", "na": "不适用"}


def threshold(settings: Settings, key: str) -> float | None:
    t = TARGET_BY_KEY[key]
    if t.setting:
        return settings.targets[t.setting]
    return 100.0 if key == "room_townships" else None


def cadence_dates(report_date: dt.date, settings: Settings) -> dict:
    """Windows for the proxy-parent cadence, from the report date."""
    month_ago = _add_months(report_date, -1)
    quarter_start = dt.date(report_date.year, 3 * ((report_date.month - 1) // 3) + 1, 1)
    holidays = []
    for year in (report_date.year, report_date.year - 1):
        for start, end in (settings.winter_holiday, settings.summer_holiday):
            s = dt.date(year, int(start[:2]), int(start[3:]))
            e = dt.date(year, int(end[:2]), int(end[3:]))
            if e <= report_date:
                holidays.append((s, e))
    holiday_start, holiday_end = max(holidays)
    return {
        "report_date": report_date, "month_ago": month_ago, "quarter_start": quarter_start,
        "holiday_start": holiday_start, "holiday_end": holiday_end,
        "last_year_start": dt.date(report_date.year - 1, 1, 1), "last_year_end": dt.date(report_date.year - 1, 12, 31),
    }


def _add_months(d: dt.date, n: int) -> dt.date:
    y, m = divmod(d.month - 1 + n, 12)
    year, month = d.year + y, m + 1
    last = [31, 29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    return dt.date(year, month, min(d.day, last[month - 1]))


def report_dates(con: duckdb.DuckDBPyConnection) -> tuple[dt.date | None, dt.date | None]:
    """(newest, oldest) as-of date of the loaded extracts."""
    row = query(con, "report_date").row(0)
    return row[0], row[1]


def _fingerprint(settings: Settings, radius_km: float) -> str:
    """The settings the per-village counts depend on, as one string."""
    return "|".join(str(v) for v in (
        radius_km, settings.compulsory_age_min, settings.compulsory_age_max, settings.parent_school_window_months,
        "/".join(settings.winter_holiday), "/".join(settings.summer_holiday)))


def compute_village_targets(con: duckdb.DuckDBPyConnection, settings: Settings,
                            radius_km: float | None = None) -> pl.DataFrame:
    """Counts per village (see the module docstring), computed from the registry."""
    newest, _ = report_dates(con)
    cover = village_coverage(con, radius_km if radius_km is not None else settings.room_radius_km)
    con.register("room_cover", cover.to_arrow())
    try:
        return query(con, "village_targets", {
            "age_min": settings.compulsory_age_min, "age_max": settings.compulsory_age_max,
            "window_months": settings.parent_school_window_months,
            **cadence_dates(newest or dt.date.today(), settings),
        })
    finally:
        con.unregister("room_cover")


def store_village_targets(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Compute the counts once at ingest, with the settings in force, and keep
    them in the store: at province scale they take seconds, and every page
    needs them (issue #9)."""
    counts = compute_village_targets(con, settings)
    con.register("new_counts", counts.to_arrow())
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("CREATE OR REPLACE TABLE village_target_counts AS SELECT * FROM new_counts")
        con.execute("DELETE FROM village_target_meta")
        con.execute("INSERT INTO village_target_meta VALUES (?)", [_fingerprint(settings, settings.room_radius_km)])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("new_counts")


def village_targets(con: duckdb.DuckDBPyConnection, settings: Settings,
                    radius_km: float | None = None) -> pl.DataFrame:
    """Counts per village: those kept at ingest when they were made with the same
    settings and radius, else computed now."""
    radius = radius_km if radius_km is not None else settings.room_radius_km
    stored = query(con, "village_target_meta")
    if stored.height and stored["fingerprint"][0] == _fingerprint(settings, radius):
        return query(con, "village_target_counts")
    return compute_village_targets(con, settings, radius)


def unit_targets(con: duckdb.DuckDBPyConnection, settings: Settings, level: str,
                 villages: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per unit of ``level``: counts summed from the villages, then
    ``<key>_rate`` (percent), ``<key>_met`` (bool or None) and ``<key>_status``
    for every target, and the terminal shortfall's cost."""
    if level not in LEVEL_PREFIX:
        raise ValueError(f"level must be one of {', '.join(LEVEL_PREFIX)}, not {level!r}")
    v = villages if villages is not None else village_targets(con, settings)
    con.register("village_targets", v.to_arrow())
    try:
        df = query(con, "rollup_targets", {"level": level, "prefix_len": LEVEL_PREFIX[level]})
    finally:
        con.unregister("village_targets")
    return with_rates(df, settings)


def with_rates(df: pl.DataFrame, settings: Settings) -> pl.DataFrame:
    """Add rate, met and status columns for every target to a frame of counts."""
    exprs = []
    for t in ALL_TARGETS:
        num, den = pl.col(f"{t.key}_num"), pl.col(f"{t.key}_den")
        rate = pl.when(den > 0).then((num / den * 100).round(2)).otherwise(None)
        exprs.append(rate.alias(f"{t.key}_rate"))
        th = threshold(settings, t.key)
        if th is None:
            exprs.append(pl.lit(None, dtype=pl.Boolean).alias(f"{t.key}_met"))
            exprs.append(pl.when(den > 0).then(pl.lit("info")).otherwise(pl.lit("na")).alias(f"{t.key}_status"))
            continue
        exprs.append(pl.when(den > 0).then(rate >= th).otherwise(None).alias(f"{t.key}_met"))
        exprs.append(
            pl.when(den == 0).then(pl.lit("na"))
            .when(rate >= th).then(pl.lit("met"))
            .when(rate >= th - settings.amber_band).then(pl.lit("amber"))
            .otherwise(pl.lit("short")).alias(f"{t.key}_status"))
    return df.with_columns(exprs)


def target_columns() -> list[str]:
    """The stable JSON keys the targets add to ``liushou-geo metrics``."""
    cols = []
    for t in ALL_TARGETS:
        cols += [f"{t.key}_rate", f"{t.key}_num", f"{t.key}_den", f"{t.key}_met"]
    return cols + ["contacts_overdue", "no_activity_this_quarter", "no_counselling_last_holiday", "no_summary_last_year"]
