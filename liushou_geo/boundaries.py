"""Village boundaries: reading any common GIS file, finding the code and name
columns, bringing coordinates to EPSG:4326, dissolving townships, counties and
the city, and preparing simplified geometry for the browser.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.errors

BOUNDARY_SUFFIXES = {".gpkg", ".shp", ".geojson", ".json"}
CODE_COLUMNS = ["区划代码", "code", "CODE", "XZQDM", "ZLDWDM", "CJQYDM", "村代码", "行政区划代码", "DM", "adcode"]
NAME_COLUMNS = ["名称", "name", "NAME", "XZQMC", "ZLDWMC", "CJQYMC", "村名", "村名称", "行政区划名称", "MC"]
TOWNSHIP_NAME_COLUMNS = ["乡镇名称", "XZMC", "乡镇", "township", "TOWNSHIP"]
COUNTY_NAME_COLUMNS = ["县区名称", "XMC", "县区", "county", "COUNTY"]
LEVEL_PREFIX = {"city": 4, "county": 6, "township": 9, "village": 12}
# Simplification tolerance in degrees per level (about 100 m for villages);
# the browser never needs more, and the payload shrinks tenfold.
WEB_TOLERANCE = {"city": 0.005, "county": 0.003, "township": 0.002, "village": 0.0008}
WEB_DECIMALS = 5
_CODE_RE = re.compile(r"^\d{12}$")


class BoundaryError(ValueError):
    """A boundary file that cannot be used; the message says how to fix it."""


def _pick(columns: list[str], candidates: list[str]) -> str | None:
    lower = {c.lower(): c for c in columns}
    for cand in candidates:
        if cand in columns:
            return cand
        if cand.lower() in lower:
            return lower[cand.lower()]
    return None


def _code_column_by_content(df: pd.DataFrame) -> str | None:
    """The column whose values are (nearly all) 12-digit codes."""
    for col in df.columns:
        if col == "geometry":
            continue
        values = df[col].dropna().astype(str).str.strip()
        if len(values) and values.str.fullmatch(r"\d{12}").mean() > 0.95:
            return col
    return None


def read_villages(path: Path, code_col: str | None = None, name_col: str | None = None,
                  layer: str | None = None) -> tuple[gpd.GeoDataFrame, list[dict]]:
    """Village polygons in EPSG:4326 with columns code, name, township_name,
    county_name; plus the rows set aside (bad code, empty geometry).

    Reads GeoPackage, Shapefile (its .cpg names the encoding) and GeoJSON in any
    CRS with a definition (EPSG:4490 and CGCS2000 Gauss-Krüger zones included).
    """
    try:
        gdf = gpd.read_file(path, layer=layer, engine="pyogrio")
    except Exception as exc:
        raise BoundaryError(f"{path.name}：无法读取边界文件（{exc}）") from None
    if gdf.crs is None:
        raise BoundaryError(f"{path.name}：边界文件没有坐标系信息（Shapefile 缺少 .prj？）。请补充 .prj 或转为 GeoPackage 后重新提交。")
    cols = [c for c in gdf.columns if c != "geometry"]
    code_col = code_col or _pick(cols, CODE_COLUMNS) or _code_column_by_content(gdf)
    if code_col is None or code_col not in gdf.columns:
        raise BoundaryError(f"{path.name}：找不到12位区划代码列（可用 --code-column 指定；现有列：{'、'.join(cols)}）")
    name_col = name_col or _pick(cols, NAME_COLUMNS)
    if name_col is None or name_col not in gdf.columns:
        raise BoundaryError(f"{path.name}：找不到名称列（可用 --name-column 指定；现有列：{'、'.join(cols)}）")
    town_col = _pick(cols, TOWNSHIP_NAME_COLUMNS)
    county_col = _pick(cols, COUNTY_NAME_COLUMNS)
    gdf = gdf.to_crs(4326)

    out = pd.DataFrame({
        "code": gdf[code_col].astype(str).str.strip().str.replace(r"\.0$", "", regex=True),
        "name": gdf[name_col].astype(str).str.strip(),
        "township_name": gdf[town_col].astype(str).str.strip() if town_col else None,
        "county_name": gdf[county_col].astype(str).str.strip() if county_col else None,
    })
    geoms = shapely.make_valid(gdf.geometry.values)
    set_aside = []
    keep = np.ones(len(out), dtype=bool)
    seen: set[str] = set()
    for i, code in enumerate(out["code"]):
        row_no = i + 1
        if not _CODE_RE.match(code):
            set_aside.append(dict(row_no=row_no, column_name=code_col, reason="bad_code",
                                  message=f"第{row_no}个图斑的区划代码“{code}”不是12位数字，请改正后重新提交"))
            keep[i] = False
        elif code in seen:
            set_aside.append(dict(row_no=row_no, column_name=code_col, reason="duplicate_code",
                                  message=f"区划代码 {code} 出现多次，请合并为一个图斑"))
            keep[i] = False
        elif geoms[i] is None or shapely.is_empty(geoms[i]) or shapely.area(geoms[i]) == 0:
            set_aside.append(dict(row_no=row_no, column_name="geometry", reason="empty_geometry",
                                  message=f"区划代码 {code} 的图形为空，请检查边界数据"))
            keep[i] = False
        seen.add(code)
    # make_valid may return a GeometryCollection; keep its polygonal part.
    geoms = np.array([_polygonal(g) for g in geoms], dtype=object)
    result = gpd.GeoDataFrame(out[keep].reset_index(drop=True), geometry=geoms[keep], crs=4326)
    return result, set_aside


def _polygonal(g):
    if g is None or g.geom_type in ("Polygon", "MultiPolygon"):
        return g
    parts = [p for p in getattr(g, "geoms", []) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else None


def build_units(villages: gpd.GeoDataFrame, city_name: str) -> gpd.GeoDataFrame:
    """All four levels from village polygons: townships, counties and the city
    dissolved by code prefix. Names of dissolved units come from the village
    file's township/county name columns when it has them."""
    v = villages.copy()
    v["level"] = "village"
    v["parent_code"] = v["code"].str[:9] + "000"
    v["kind"] = np.where(v["code"].str[9:12].astype(int) < 200, "居", "村")
    frames = [v[["level", "code", "name", "parent_code", "kind", "geometry"]]]
    for level, parent in (("township", "county"), ("county", "city"), ("city", None)):
        n = LEVEL_PREFIX[level]
        key = v["code"].str[:n]
        name_source = {"township": "township_name", "county": "county_name"}.get(level)
        rows = []
        for prefix, idx in v.groupby(key).groups.items():
            part = v.loc[idx]
            geom = _dissolve(part.geometry.values)
            if level == "city":
                name = city_name
            elif name_source and part[name_source].notna().any():
                name = part[name_source].mode().iloc[0]
            else:
                name = {"township": "乡镇", "county": "县区"}[level] + prefix
            code = prefix.ljust(12, "0")
            parent_code = prefix[: LEVEL_PREFIX[parent]].ljust(12, "0") if parent else None
            rows.append(dict(level=level, code=code, name=name, parent_code=parent_code, kind=None, geometry=geom))
        frames.append(gpd.GeoDataFrame(rows, geometry="geometry", crs=4326))
    units = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=4326)
    reps = shapely.point_on_surface(units.geometry.values)
    units["lon"] = shapely.get_x(reps)
    units["lat"] = shapely.get_y(reps)
    units["area_km2"] = units.to_crs("+proj=aea +lat_1=25 +lat_2=47 +lon_0=105 +datum=WGS84").area / 1e6
    units["geom_web"] = _web_geometry(units)
    return units


def _dissolve(geoms):
    """Union of a partition; the fast coverage union needs exactly shared
    vertices, which real (and generated) boundary files do not always have."""
    try:
        return shapely.coverage_union_all(geoms)
    except shapely.errors.GEOSException:
        return shapely.union_all(geoms)


def _simplify_level(geoms, tol: float):
    """Simplify a level as one coverage (shared borders stay shared); per
    polygon when the input is not a clean coverage."""
    try:
        return shapely.coverage_simplify(geoms, tol)
    except shapely.errors.GEOSException:
        return shapely.simplify(geoms, tol, preserve_topology=True)


def _web_geometry(units: gpd.GeoDataFrame) -> list[str]:
    """Simplified rings per unit as compact JSON ([[ring, hole...], ...] per part).

    Each level is simplified as one coverage so neighbours keep shared borders
    (simplifying polygons one by one opens slivers between them).
    """
    out = [""] * len(units)
    for level, tol in WEB_TOLERANCE.items():
        idx = np.flatnonzero(units["level"].values == level)
        if not len(idx):
            continue
        simplified = _simplify_level(units.geometry.values[idx], tol)
        for i, g in zip(idx, simplified):
            if g is None or g.is_empty:
                g = units.geometry.values[i]
            out[i] = json.dumps(_rings(g), separators=(",", ":"))
    return out


def _rings(geom) -> list:
    """[[outer, hole, ...], ...] with coordinates rounded for the browser."""
    polys = [geom] if geom.geom_type == "Polygon" else list(getattr(geom, "geoms", []))
    parts = []
    for p in polys:
        if p.geom_type != "Polygon" or p.is_empty:
            continue
        rings = [p.exterior, *p.interiors]
        parts.append([np.round(np.asarray(r.coords)[:, :2], WEB_DECIMALS).tolist() for r in rings])
    return parts
