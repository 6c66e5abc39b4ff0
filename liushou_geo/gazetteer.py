"""Resolving a row's village from its code or its county/township/village names."""

from __future__ import annotations

from collections import defaultdict

import duckdb

from .cleaning import name_key, unit_key


class Gazetteer:
    """Village codes and names as loaded from the boundaries (the ``units`` table)."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        rows = con.execute(
            """SELECT v.code, v.name, t.name, c.name, v.lon, v.lat
               FROM units v
               JOIN units t ON t.code = v.parent_code
               JOIN units c ON c.code = t.parent_code
               WHERE v.level = 'village'"""
        ).fetchall()
        self.codes = {r[0] for r in rows}
        self.points = {r[0]: (r[4], r[5]) for r in rows}
        # Several lookups, from most to least specific; each key kept only if unique.
        self._maps: list[dict] = []
        for make in (
            lambda c, t, v: (unit_key(c), unit_key(t), name_key(v)),
            lambda c, t, v: (unit_key(t), name_key(v)),
            lambda c, t, v: (unit_key(c), name_key(v)),
            lambda c, t, v: name_key(v),
        ):
            m: dict = defaultdict(set)
            for code, v, t, c, *_ in rows:
                m[make(c, t, v)].add(code)
            self._maps.append({k: next(iter(s)) for k, s in m.items() if len(s) == 1})

    def __bool__(self) -> bool:
        return bool(self.codes)

    def by_names(self, county: str | None, township: str | None, village: str | None) -> str | None:
        """The village code for names, or None when not found or ambiguous."""
        if not village:
            return None
        c, t, v = unit_key(county or ""), unit_key(township or ""), name_key(village)
        keys = []
        if county and township:
            keys.append((0, (c, t, v)))
        if township:
            keys.append((1, (t, v)))
        if county:
            keys.append((2, (c, v)))
        if not county and not township:
            # Neither county nor township given: the name alone, when it is unique in the city.
            keys.append((3, v))
        for i, key in keys:
            code = self._maps[i].get(key)
            if code:
                return code
        return None
