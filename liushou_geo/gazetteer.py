"""Resolving a row's village from its code or its county/township/village names.

Names vary between files and the boundaries: 李家村 / 李家村委会 / 李家村民委员会,
城东社区 / 城东社区居委会, 东山 for 东山镇. Lookups go from the most to the least
specific key — county + township + village, township + village, county +
village, the village name alone when the row names neither county nor
township — and a key that names several villages is ambiguous: the row is
set aside with the candidates in the message, never guessed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import duckdb

from .cleaning import committee_kind, name_key, unit_key
from .headers import HEADER_LABELS


@dataclass(frozen=True)
class Resolved:
    """A village code, or why there is none (reason code, column label, Chinese message)."""

    code: str | None
    reason: str | None = None
    column: str | None = None
    message: str | None = None
    candidates: tuple[str, ...] = ()     # the villages an ambiguous name may mean


class Gazetteer:
    """Village codes and names as loaded from the boundaries (the ``units`` table)."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        rows = con.execute(
            """SELECT v.code, v.name, t.name, c.name, v.lon, v.lat, t.code
               FROM units v
               JOIN units t ON t.code = v.parent_code
               JOIN units c ON c.code = t.parent_code
               WHERE v.level = 'village'"""
        ).fetchall()
        self.codes = {r[0] for r in rows}
        self.points = {r[0]: (r[4], r[5]) for r in rows}
        self.labels = {r[0]: f"{r[3]}{r[2]}{r[1]}（{r[0]}）" for r in rows}
        # Per level of specificity, the name with its kind of committee first
        # (辉山村 ≠ 辉山社区, but 浣溪社区 = 浣溪居委会), then the bare name
        # (辉山 = 辉山村 = 辉山社区).
        kind = self._kind = {r[0]: committee_kind(r[1]) or ("居" if int(r[0][9:]) < 200 else "村") for r in rows}
        self._keys = [
            lambda c, t, v: (unit_key(c), unit_key(t), name_key(v), committee_kind(v)),
            lambda c, t, v: (unit_key(c), unit_key(t), name_key(v)),
            lambda c, t, v: (unit_key(t), name_key(v), committee_kind(v)),
            lambda c, t, v: (unit_key(t), name_key(v)),
            lambda c, t, v: (unit_key(c), name_key(v), committee_kind(v)),
            lambda c, t, v: (unit_key(c), name_key(v)),
            lambda c, t, v: (name_key(v), committee_kind(v)),
            lambda c, t, v: name_key(v),
        ]
        self._maps: list[dict[object, set[str]]] = []
        for i, make in enumerate(self._keys):
            m: dict = defaultdict(set)
            for code, v, t, c, *_ in rows:
                key = make(c, t, v)
                if i % 2 == 0:      # the unit's own kind, from its suffix or its code
                    key = (*key[:-1], kind[code])
                m[key].add(code)
            self._maps.append(dict(m))
        towns: dict = defaultdict(set)
        for code, _v, t, c, _x, _y, tcode in rows:
            towns[(unit_key(c), unit_key(t))].add(tcode)
            towns[unit_key(t)].add(tcode)
        self._townships = dict(towns)
        self._schools: dict[tuple[str, str], str] = {}

    def __bool__(self) -> bool:
        return bool(self.codes)

    # -- villages ------------------------------------------------------------

    def candidates(self, county: str | None, township: str | None, village: str | None) -> set[str]:
        """The villages the names may mean: the most specific key that finds any."""
        if not village:
            return set()
        tiers = []
        if county and township:
            tiers.append(0)
        if township:
            tiers.append(2)
        if county:
            tiers.append(4)
        if not county and not township:
            tiers.append(6)
        exact = committee_kind(village) is not None
        for tier in tiers:
            for i in ((tier, tier + 1) if exact else (tier + 1,)):
                found = self._maps[i].get(self._keys[i](county or "", township or "", village))
                if found:
                    return found
        return set()

    def by_names(self, county: str | None, township: str | None, village: str | None) -> str | None:
        """The village code for names, or None when not found or ambiguous."""
        found = self.candidates(county, township, village)
        return next(iter(found)) if len(found) == 1 else None

    def resolve(self, code: str | None, county: str | None, township: str | None, village: str | None,
                what: str = "村（社区）") -> Resolved:
        """A row's village: its code when the boundaries know it, else its names."""
        if code and code in self.codes:
            return Resolved(code)
        found = self.candidates(county, township, village)
        if len(found) == 1:
            return Resolved(next(iter(found)))
        if len(found) > 1:
            listed = "、".join(self.labels[c] for c in sorted(found)[:5])
            return Resolved(None, "ambiguous_village", HEADER_LABELS["village"],
                            f"“{village}”对应多个{what}：{listed}。请填写乡镇名称或12位区划代码加以区分",
                            tuple(sorted(found)))
        if code:
            return Resolved(None, "unknown_village_code", HEADER_LABELS["code"],
                            f"区划代码“{code}”不在边界数据的村（社区）中，名称“{village or ''}”也对不上。请核对区划代码")
        if not village:
            return Resolved(None, "missing_village", HEADER_LABELS["village"],
                            "村（社区）为空。请填写儿童所在村（社区）名称或12位区划代码")
        return Resolved(None, "unknown_village", HEADER_LABELS["village"],
                        f"找不到“{county or ''}{township or ''}{village}”。请核对县、乡镇、村名称是否为现用名称，或填写12位区划代码")

    # -- townships and schools -------------------------------------------------

    def townships(self, county: str | None, township: str | None) -> set[str]:
        """Township codes for a township name (with its county when given)."""
        if not township:
            return set()
        if county:
            found = self._townships.get((unit_key(county), unit_key(township)))
            if found:
                return found
        return self._townships.get(unit_key(township), set())

    def add_schools(self, rows: list[tuple[str, str, int]]) -> None:
        """Where schools are: (school name, village code, pupils) from the registry.
        A school sits in its pupils' most common village (per township it serves)."""
        votes: dict[tuple[str, str], Counter] = defaultdict(Counter)
        for school, village, n in rows:
            if school and village:
                votes[(name_key(school), village[:9])][village] += n
        self._schools = {k: c.most_common(1)[0][0] for k, c in votes.items()}

    def school(self, county: str | None, township: str | None, name: str | None) -> str | None:
        """The village of a school named in a township (None when unknown)."""
        if not name:
            return None
        key = name_key(name)
        towns = self.townships(county, township)
        if not towns:      # no township given: the name alone, when one township has it
            towns = {t for (k, t) in self._schools if k == key}
            towns = {t + "000" for t in towns} if len(towns) == 1 else set()
        hits = {self._schools.get((key, t[:9])) for t in towns} - {None}
        return next(iter(hits)) if len(hits) == 1 else None
