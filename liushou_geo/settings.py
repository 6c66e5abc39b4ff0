"""Settings: one TOML file (data/settings.toml), validated on load.

A city edits a copy and passes it with ``--settings FILE`` or the
``LIUSHOU_SETTINGS`` environment variable.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SETTINGS = REPO_ROOT / "data" / "settings.toml"
DEFAULT_DB = REPO_ROOT / "data" / "liushou.duckdb"


class SettingsError(ValueError):
    """A settings file a person must fix; the message says where and how."""


@dataclass(frozen=True)
class Settings:
    city_name: str
    city_code_prefix: str
    age_limit: int
    load_sensitive_free_text: bool
    compulsory_age_min: int
    compulsory_age_max: int
    children_per_terminal: int
    room_cost_yuan: int
    terminal_budget_yuan: int
    room_radius_km: float
    terminal_cost_yuan: int
    parent_school_window_months: int
    winter_holiday: tuple[str, str]
    summer_holiday: tuple[str, str]
    pilot_villages: tuple[str, ...]
    targets: dict[str, float]
    amber_band: float
    session_minutes: int
    max_failed_logins: int
    lockout_minutes: int
    small_count_threshold: int
    basemap_style_url: str
    basemap_crs: str
    source: Path


# (section, key, type, check, explanation for the error message)
_FIELDS = [
    ("city", "name", str, lambda v: bool(v.strip()), "城市名称不能为空"),
    ("city", "code_prefix", str, lambda v: len(v) == 4 and v.isdigit(), "应为4位数字（省2位+市2位）"),
    ("children", "age_limit", int, lambda v: 1 <= v <= 18, "应为1到18之间的整数"),
    ("children", "load_sensitive_free_text", bool, lambda v: True, "应为 true 或 false"),
    ("children", "compulsory_age_min", int, lambda v: 0 <= v <= 18, "应为0到18之间的整数"),
    ("children", "compulsory_age_max", int, lambda v: 0 <= v <= 18, "应为0到18之间的整数"),
    ("facilities", "children_per_terminal", int, lambda v: v > 0, "应为正整数"),
    ("facilities", "room_cost_yuan", int, lambda v: v > 0, "应为正整数（元）"),
    ("facilities", "terminal_budget_yuan", int, lambda v: v >= 0, "应为非负整数（元）"),
    ("facilities", "room_radius_km", float, lambda v: 0 < v <= 100, "应在0到100公里之间"),
    ("facilities", "terminal_cost_yuan", int, lambda v: v >= 0, "应为非负整数（元）"),
    ("services", "parent_school_window_months", int, lambda v: 1 <= v <= 36, "应为1到36之间的整数（月）"),
    ("services", "winter_holiday", str, lambda v: _holiday_ok(v), "应写成 MM-DD/MM-DD，例如 01-15/02-28"),
    ("services", "summer_holiday", str, lambda v: _holiday_ok(v), "应写成 MM-DD/MM-DD，例如 07-01/08-31"),
    ("targets", "amber_band", float, lambda v: 0 <= v <= 100, "应在0到100之间（百分点）"),
    ("access", "session_minutes", int, lambda v: 1 <= v <= 1440, "应为1到1440之间的整数（分钟）"),
    ("access", "max_failed_logins", int, lambda v: 1 <= v <= 100, "应为1到100之间的整数"),
    ("access", "lockout_minutes", int, lambda v: 1 <= v <= 1440, "应为1到1440之间的整数（分钟）"),
    ("access", "small_count_threshold", int, lambda v: 0 <= v <= 100, "应为0到100之间的整数"),
    ("map", "basemap_style_url", str, lambda v: True, "应为字符串"),
    ("map", "basemap_crs", str, lambda v: v in ("wgs84", "gcj02"), "应为 \"wgs84\" 或 \"gcj02\""),
]
def _holiday_ok(v: str) -> bool:
    import re

    m = re.fullmatch(r"(\d{2})-(\d{2})/(\d{2})-(\d{2})", v)
    if not m:
        return False
    try:
        import datetime as dt

        a = dt.date(2001, int(m.group(1)), int(m.group(2)))
        b = dt.date(2001, int(m.group(3)), int(m.group(4)))
    except ValueError:
        return False
    return a <= b


TARGET_KEYS = [
    "t1a_registry_school", "t1b_registry_scattered", "t2_family_education",
    "t3_hotline_mailbox", "t4_pairing", "t5_guardian", "t6_enrolment", "t7_legal_aid",
]


def settings_path(explicit: str | os.PathLike | None = None) -> Path:
    """The settings file in force: explicit path, else $LIUSHOU_SETTINGS, else the shipped one."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("LIUSHOU_SETTINGS")
    return Path(env) if env else DEFAULT_SETTINGS


def load_settings(path: str | os.PathLike | None = None) -> Settings:
    """Read and validate a settings file; raise SettingsError with a fixable message."""
    p = settings_path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"找不到设置文件：{p}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"设置文件 {p} 格式错误：{exc}") from None
    values = {}
    for section, key, typ, ok, why in _FIELDS:
        v = raw.get(section, {}).get(key)
        if v is None:
            raise SettingsError(f"设置文件 {p} 缺少 [{section}] {key}")
        if typ is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if not isinstance(v, typ) or (typ is int and isinstance(v, bool)) or not ok(v):
            raise SettingsError(f"设置文件 {p} 中 [{section}] {key} = {v!r} 无效：{why}")
        values[(section, key)] = v
    targets = {}
    for key in TARGET_KEYS:
        v = raw.get("targets", {}).get(key)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 100:
            raise SettingsError(f"设置文件 {p} 中 [targets] {key} = {v!r} 无效：应为0到100之间的百分数")
        targets[key] = float(v)
    pilots = raw.get("programme", {}).get("pilot_villages", [])
    if not isinstance(pilots, list) or not all(isinstance(c, str) and len(c) == 12 and c.isdigit() for c in pilots):
        raise SettingsError(f"设置文件 {p} 中 [programme] pilot_villages 无效：应为12位区划代码的列表")
    if values[("children", "compulsory_age_min")] > values[("children", "compulsory_age_max")]:
        raise SettingsError(f"设置文件 {p} 中 compulsory_age_min 大于 compulsory_age_max")
    return Settings(
        city_name=values[("city", "name")],
        city_code_prefix=values[("city", "code_prefix")],
        age_limit=values[("children", "age_limit")],
        load_sensitive_free_text=values[("children", "load_sensitive_free_text")],
        compulsory_age_min=values[("children", "compulsory_age_min")],
        compulsory_age_max=values[("children", "compulsory_age_max")],
        children_per_terminal=values[("facilities", "children_per_terminal")],
        room_cost_yuan=values[("facilities", "room_cost_yuan")],
        terminal_budget_yuan=values[("facilities", "terminal_budget_yuan")],
        room_radius_km=values[("facilities", "room_radius_km")],
        terminal_cost_yuan=values[("facilities", "terminal_cost_yuan")],
        parent_school_window_months=values[("services", "parent_school_window_months")],
        winter_holiday=tuple(values[("services", "winter_holiday")].split("/")),
        summer_holiday=tuple(values[("services", "summer_holiday")].split("/")),
        pilot_villages=tuple(pilots),
        targets=targets,
        amber_band=values[("targets", "amber_band")],
        session_minutes=values[("access", "session_minutes")],
        max_failed_logins=values[("access", "max_failed_logins")],
        lockout_minutes=values[("access", "lockout_minutes")],
        small_count_threshold=values[("access", "small_count_threshold")],
        basemap_style_url=values[("map", "basemap_style_url")],
        basemap_crs=values[("map", "basemap_crs")],
        source=p,
    )
