"""The ingest's side of the boundaries: boundary layers and division code tables
kept in the store, and the ``units`` table built from all of them together.

Names of every level come from the best source (``boundaries.build_units``):
that level's own layer, the village layer's columns, a division code table,
then the registry's own 乡镇/县 columns where the rows agree.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import duckdb
import geopandas as gpd
import pandas as pd
import shapely

from .boundaries import BoundaryLayer, build_units
from .codes import is_code, level_of, normalize_code
from .gazetteer import Gazetteer
from .rules import cell, text_expr

# A registry name stands for a unit when at least this share of the rows placed
# there agree on it, and at least this many rows do.
_AGREE_SHARE, _AGREE_ROWS = 0.8, 3


def store_layer(con: duckdb.DuckDBPyConnection, layer: BoundaryLayer, file_id: str, rel: str) -> None:
    """Keep a layer's features (the caller removes an old version of the file first)."""
    f = layer.features
    frame = pd.DataFrame({
        "file_id": file_id, "path": rel, "level": f["level"], "code": f["code"], "name": f["name"],
        "township_name": f["township_name"] if "township_name" in f else None,
        "county_name": f["county_name"] if "county_name" in f else None,
        "wkb": shapely.to_wkb(f.geometry.values),
    })
    con.register("new_features", frame)
    con.execute("""INSERT INTO boundary_features SELECT file_id, path, level, code, name, township_name,
                   county_name, ST_GeomFromWKB(wkb) FROM new_features""")
    con.unregister("new_features")


def store_code_table(con: duckdb.DuckDBPyConnection, table, file_id: str) -> tuple[int, list[tuple]]:
    """Official names from a division code table: (rows loaded, set-aside rows)."""
    t = table.frame.select("row_no", code=text_expr(cell(table, "code")), name=text_expr(cell(table, "div_name")))
    good, aside = [], []
    for row_no, raw, name in t.iter_rows():
        code = normalize_code(raw)
        if not code or not is_code(code) or level_of(code) is None:
            aside.append((row_no, "区划代码", "bad_code", f"区划代码“{code or ''}”不是有效的12位统计用区划代码，请改正"))
        elif not name:
            aside.append((row_no, "名称", "missing_value", "名称为空。请补填该区划的名称"))
        else:
            good.append((code, name, "code_table", file_id))
    if good:
        con.executemany("INSERT INTO division_names VALUES (?, ?, ?, ?)", good)
    return len(good), aside


def rebuild_units(con: duckdb.DuckDBPyConnection, city_name: str) -> int:
    """``units`` anew from every stored layer and name source; returns the village count."""
    rows = con.execute("""SELECT path, level, code, name, township_name, county_name, ST_AsWKB(geom)
                          FROM boundary_features ORDER BY path, code""").fetchall()
    if not rows:
        return 0
    layers = []
    by_path: dict[str, list] = defaultdict(list)
    for r in rows:
        by_path[r[0]].append(r)
    for path, rs in by_path.items():
        gdf = gpd.GeoDataFrame(
            {"code": [r[2] for r in rs], "name": [r[3] for r in rs], "level": [r[1] for r in rs],
             "township_name": [r[4] for r in rs], "county_name": [r[5] for r in rs]},
            geometry=shapely.from_wkb([bytes(r[6]) for r in rs]), crs=4326)
        layers.append(BoundaryLayer(path=Path(path), features=gdf, set_aside=[]))
    names = {"code_table": {}, "registry": {}}
    for code, name, source in con.execute("SELECT code, name, source FROM division_names ORDER BY file_id").fetchall():
        names[source][code] = name
    units = build_units(layers, city_name, code_names=names["code_table"], fallback_names=names["registry"])
    frame = pd.DataFrame({
        "level": units["level"], "code": units["code"], "name": units["name"],
        "parent_code": units["parent_code"], "kind": units["kind"], "lon": units["lon"], "lat": units["lat"],
        "area_km2": units["area_km2"], "wkb": units.geometry.to_wkb(), "geom_web": units["geom_web"],
        "name_source": units["name_source"],
    })
    con.execute("DELETE FROM units")
    con.register("new_units", frame)
    con.execute("""INSERT INTO units SELECT level, code, name, parent_code, kind, lon, lat, area_km2,
                   ST_GeomFromWKB(wkb), geom_web, name_source FROM new_units""")
    con.unregister("new_units")
    return int((units["level"] == "village").sum())


def registry_names(con: duckdb.DuckDBPyConnection, tables: list) -> dict[str, str]:
    """Township and county names the registry's own columns agree on, for units
    no better source names (``name_source = 'placeholder'``)."""
    wanted = {c for (c,) in con.execute("SELECT code FROM units WHERE name_source = 'placeholder'").fetchall()}
    if not wanted or not tables:
        return {}
    gz = Gazetteer(con)
    combos: Counter = Counter()
    for table in tables:
        if "township" not in table.columns and "county" not in table.columns:
            continue
        t = table.frame.select(code=text_expr(cell(table, "code")), county=text_expr(cell(table, "county")),
                               township=text_expr(cell(table, "township")),
                               village=text_expr(cell(table, "village")))
        for code, county, township, village, n in t.group_by(t.columns).len().iter_rows():
            combos[(code, county, township, village)] += n
    votes: dict[str, Counter] = defaultdict(Counter)
    for (code, county, township, village), n in combos.items():
        # The village by its code, else by its name alone (unique in the city):
        # the township and county names are what is being learnt.
        found = gz.resolve(code, None, None, village).code
        if not found:
            continue
        if township:
            votes[found[:9] + "000"][township] += n
        if county:
            votes[found[:6] + "000000"][county] += n
    out = {}
    for code, c in votes.items():
        name, n = c.most_common(1)[0]
        if code in wanted and n >= _AGREE_ROWS and n >= _AGREE_SHARE * sum(c.values()):
            out[code] = name
    return out


def apply_registry_names(con: duckdb.DuckDBPyConnection, names: dict[str, str]) -> None:
    """Name placeholder units from the registry, and keep the names for later rebuilds."""
    for code, name in sorted(names.items()):
        con.execute("UPDATE units SET name = ?, name_source = 'registry' WHERE code = ? AND name_source = 'placeholder'",
                    [name, code])
        con.execute("DELETE FROM division_names WHERE code = ? AND source = 'registry'", [code])
        con.execute("INSERT INTO division_names VALUES (?, ?, 'registry', NULL)", [code, name])

