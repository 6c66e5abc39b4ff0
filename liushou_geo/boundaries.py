"""Boundaries at any level from any common GIS file: reading village, township,
county or city layers (GeoPackage, Shapefile in any DBF encoding, GeoJSON; any
CRS with a definition), finding their code and name columns, merging them into
units of every level (dissolving the levels no layer gives), and preparing
simplified geometry for the browser.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
import shapely.errors

from .boundary_fields import (codes_of, find_code_column, find_name_column, find_parent_name_column,
                              shapefile_encoding, texts_of)
from .codes import LEVELS, PREFIX_LEN, code_of, level_of, normalize_code, prefix

log = logging.getLogger(__name__)

BOUNDARY_SUFFIXES = {".gpkg", ".shp", ".geojson", ".json"}
LEVEL_PREFIX = {lvl: PREFIX_LEN[lvl] for lvl in LEVELS}
# Simplification tolerance in degrees per level (about 100 m for villages);
# the browser never needs more, and the payload shrinks tenfold.
WEB_TOLERANCE = {"city": 0.005, "county": 0.003, "township": 0.002, "village": 0.0008}
WEB_DECIMALS = 5
PLACEHOLDER = {"village": "村", "township": "乡镇", "county": "县区", "city": "城市"}
# Where data for China may lie once in EPSG:4326: outside it, the declared CRS is wrong.
_CHINA_BOX = (73.0, 3.0, 136.0, 54.0)
UNIT_COLUMNS = ["level", "code", "name", "parent_code", "kind", "geometry", "lon", "lat", "area_km2",
                "geom_web", "name_source"]


class BoundaryError(ValueError):
    """A boundary file that cannot be used; the message says how to fix it."""


@dataclass
class BoundaryLayer:
    """One layer of a boundary file, ready for :func:`build_units`.

    ``features``: EPSG:4326 GeoDataFrame with ``code``, ``name`` (None when the
    layer has no name column), ``level`` (from each code), ``township_name``,
    ``county_name`` (None when the layer has no such column), ``geometry``.
    ``set_aside``: rows not used, as dicts ``row_no, column_name, reason, message``.
    ``encoding``: the DBF text encoding used for a Shapefile, else None.
    """
    path: Path
    features: gpd.GeoDataFrame
    set_aside: list[dict] = field(default_factory=list)
    encoding: str | None = None
    code_column: str | None = None
    name_column: str | None = None
    township_name_column: str | None = None
    county_name_column: str | None = None
    layer: str | None = None

    @property
    def level(self) -> str | None:
        """The most common level of the layer's features."""
        levels = self.features["level"].dropna()
        return levels.mode().iloc[0] if len(levels) else None


# -- reading -----------------------------------------------------------------

def read_boundary_file(path, code_col: str | None = None, name_col: str | None = None,
                       layer: str | None = None) -> BoundaryLayer:
    """One polygon layer of a boundary file (``layer``, else the file's first
    polygon layer). Raises :class:`BoundaryError` with a message for the user
    when the file cannot be used; no other exception escapes."""
    path = Path(path)
    try:
        return _read_layer(path, code_col, name_col, layer, _open(path))
    except BoundaryError:
        raise
    except Exception as exc:  # pyogrio, GEOS, PROJ...: the user gets a message, never a traceback
        raise _unreadable(path, exc) from None


def read_boundary_layers(path, code_col: str | None = None, name_col: str | None = None) -> list[BoundaryLayer]:
    """Every polygon layer of a file that carries division codes (a GeoPackage
    may hold villages and townships as two layers). Raises :class:`BoundaryError`
    when none can be used."""
    path = Path(path)
    try:
        opened = _open(path)
        out, first_error = [], None
        for name in opened["layers"]:
            try:
                out.append(_read_layer(path, code_col, name_col, name, opened))
            except BoundaryError as e:
                first_error = first_error or e
        if not out:
            raise first_error
        return out
    except BoundaryError:
        raise
    except Exception as exc:
        raise _unreadable(path, exc) from None


def read_villages(path: Path, code_col: str | None = None, name_col: str | None = None,
                  layer: str | None = None) -> tuple[gpd.GeoDataFrame, list[dict]]:
    """Deprecated: (features, set_aside) of :func:`read_boundary_file`, for callers
    not yet passing :class:`BoundaryLayer` objects to :func:`build_units`."""
    lay = read_boundary_file(path, code_col, name_col, layer)
    return lay.features, lay.set_aside


def _unreadable(path: Path, exc: Exception) -> BoundaryError:
    log.info("boundary file %s unreadable: %r", path, exc)
    # GDAL quotes the full path: show the user only the file name.
    text = str(exc).replace(str(path), path.name).replace(str(path.parent) + "/", "").strip()
    detail = text.splitlines()[0].split("; ")[0][:120] if text else type(exc).__name__
    return BoundaryError(f"{path.name}：无法读取边界文件，文件可能已损坏或不是 GIS 数据。请在 GIS 软件中重新导出为 "
                         f"GeoPackage（.gpkg）或完整的 Shapefile（.shp/.shx/.dbf/.prj）后重新提交。（技术信息：{detail}）")


def _open(path: Path) -> dict:
    """The file's polygon layers and, for a Shapefile, its DBF encoding."""
    if not path.is_file():
        raise BoundaryError(f"{path.name}：文件不存在或不是普通文件，请重新提交。")
    encoding = None
    if path.suffix.lower() == ".shp":
        sib = {p.name.lower() for p in path.parent.iterdir()}
        missing = [s for s in (".shx", ".dbf") if path.with_suffix(s).name.lower() not in sib]
        if missing:
            raise BoundaryError(f"{path.name}：Shapefile 缺少 {'、'.join(missing)} 文件。Shapefile 由同名的 "
                                ".shp、.shx、.dbf、.prj（最好还有 .cpg）多个文件组成，请一起提交。")
        encoding = shapefile_encoding(path)
    layers = pyogrio.list_layers(path)
    polygonal = [str(n) for n, t in layers if t is None or "polygon" in str(t).lower() or t in ("Unknown", "Geometry")]
    if not polygonal:
        kinds = "、".join(sorted({str(t) for _, t in layers})) or "无图层"
        raise BoundaryError(f"{path.name}：文件中没有面图层（现有：{kinds}）。边界文件应为村、乡镇或县区的面状图形。")
    return {"layers": polygonal, "encoding": encoding}


def _read_layer(path: Path, code_col, name_col, layer, opened: dict) -> BoundaryLayer:
    layer = layer or opened["layers"][0]
    label = path.name if len(opened["layers"]) == 1 else f"{path.name}（图层“{layer}”）"
    encoding = opened["encoding"]
    gdf = pyogrio.read_dataframe(path, layer=layer, encoding=encoding)
    if not len(gdf):
        raise BoundaryError(f"{label}：边界文件中没有任何图斑，请检查是否导出了正确的图层。")
    if gdf.crs is None:
        raise BoundaryError(f"{label}：边界文件没有坐标系信息（Shapefile 缺少 .prj？）。请补充 .prj 或转为 GeoPackage 后重新提交。")
    gdf = _to_wgs84(gdf, label)
    cols = [c for c in gdf.columns if c != "geometry"]
    for given, what in ((code_col, "代码"), (name_col, "名称")):
        if given and given not in cols:
            raise BoundaryError(f"{label}：指定的{what}列“{given}”不存在（现有列：{'、'.join(cols)}）。")
    found = (code_col, True) if code_col else find_code_column(gdf)
    if found is None:
        raise BoundaryError(f"{label}：找不到12位区划代码列（可用 --code-column 指定；现有列：{'、'.join(cols)}）")
    code_col = found[0]
    codes = codes_of(gdf[code_col], allow_short=found[1])
    levels = codes.map(level_of)
    level = levels.mode().iloc[0] if levels.notna().any() else "village"
    name_col = name_col or find_name_column(gdf, level, {code_col})
    exclude, parents = {code_col, name_col}, {}
    for parent in ("county", "township"):
        if LEVELS.index(level) > LEVELS.index(parent):
            parents[parent] = find_parent_name_column(gdf, codes, parent, exclude)
            exclude.add(parents[parent])
    names = texts_of(gdf[name_col]) if name_col else pd.Series([None] * len(gdf), dtype=object)
    out = pd.DataFrame({
        "code": codes.values, "name": names.values, "level": levels.values,
        "township_name": texts_of(gdf[parents["township"]]).values if parents.get("township") else None,
        "county_name": texts_of(gdf[parents["county"]]).values if parents.get("county") else None,
    })
    geoms = np.array([_polygonal(g) for g in shapely.make_valid(gdf.geometry.values)], dtype=object)
    keep, set_aside = _screen(out, geoms, code_col)
    features = gpd.GeoDataFrame(out[keep].reset_index(drop=True), geometry=list(geoms[keep]), crs=4326)
    log.info("boundaries %s: %d %s features (code %s, name %s, encoding %s)", label, len(features), level,
             code_col, name_col, encoding)
    return BoundaryLayer(path=path, features=features, set_aside=set_aside, encoding=encoding,
                         code_column=code_col, name_column=name_col, township_name_column=parents.get("township"),
                         county_name_column=parents.get("county"), layer=layer)


def _to_wgs84(gdf: gpd.GeoDataFrame, label: str) -> gpd.GeoDataFrame:
    """The layer in EPSG:4326; a declared CRS the coordinates cannot be in is an error."""
    crs_name = f"{gdf.crs.name}（EPSG:{gdf.crs.to_epsg()}）" if gdf.crs.to_epsg() else gdf.crs.name
    fix = "请在 GIS 软件中为数据定义正确的坐标系（如 CGCS2000 经纬度 EPSG:4490 或高斯-克吕格投影 EPSG:4513–4554）后重新导出。"
    present = gdf.geometry.values[~(gdf.geometry.isna() | gdf.geometry.is_empty).values]
    if not len(present):
        raise BoundaryError(f"{label}：所有图斑的图形都为空，请检查导出的边界数据。")
    bounds = shapely.total_bounds(present)
    if gdf.crs.is_geographic and np.isfinite(bounds).all() and (abs(bounds[[0, 2]]).max() > 180
                                                                  or abs(bounds[[1, 3]]).max() > 90):
        raise BoundaryError(f"{label}：坐标值（如 {bounds[0]:.0f}, {bounds[1]:.0f}）不是经纬度，但文件声明的坐标系是"
                            f"{crs_name}。{fix}")
    out = gdf.to_crs(4326)
    reps = shapely.centroid(out.geometry.values[~(out.geometry.isna() | out.geometry.is_empty).values])
    x, y = np.median(shapely.get_x(reps)), np.median(shapely.get_y(reps))
    x0, y0, x1, y1 = _CHINA_BOX
    if not (np.isfinite(x) and np.isfinite(y) and x0 <= x <= x1 and y0 <= y <= y1):
        raise BoundaryError(f"{label}：按文件声明的坐标系{crs_name}换算后，图形不在中国境内（中心约 {x:.2f}, {y:.2f}），"
                            f"坐标系很可能设置错误。{fix}")
    return out


def _screen(out: pd.DataFrame, geoms, code_col: str) -> tuple[np.ndarray, list[dict]]:
    """Rows kept, and the set-aside records of the others (bad code, a code
    twice in the file, empty geometry)."""
    set_aside = []
    keep = np.ones(len(out), dtype=bool)
    seen: set[str] = set()
    for i, (code, level) in enumerate(zip(out["code"], out["level"])):
        row_no, g = i + 1, geoms[i]
        if not isinstance(level, str):                     # None became NaN in the frame
            what = "不是12位数字" if len(code) != 12 or not code.isdigit() else "不是有效的区划代码"
            set_aside.append(dict(row_no=row_no, column_name=code_col, reason="bad_code",
                                  message=f"第{row_no}个图斑的区划代码“{code}”{what}，请改正后重新提交"))
            keep[i] = False
        elif code in seen:
            set_aside.append(dict(row_no=row_no, column_name=code_col, reason="duplicate_code",
                                  message=f"区划代码 {code} 出现多次，请合并为一个图斑"))
            keep[i] = False
        elif g is None or g.is_empty or g.area == 0:
            set_aside.append(dict(row_no=row_no, column_name="geometry", reason="empty_geometry",
                                  message=f"区划代码 {code} 的图形为空，请检查边界数据"))
            keep[i] = False
        seen.add(code)
    return keep, set_aside


def _polygonal(g):
    """The polygonal part (make_valid may return a GeometryCollection; a layer
    may hold stray points or lines)."""
    if g is None or g.geom_type in ("Polygon", "MultiPolygon"):
        return g
    parts = [p for p in getattr(g, "geoms", []) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else None


# -- units of every level ----------------------------------------------------

def build_units(layers, city_name: str, code_names: dict[str, str] | None = None,
                fallback_names: dict[str, str] | None = None) -> gpd.GeoDataFrame:
    """Units of all four levels from any mix of layers.

    Each level's geometry comes from its own layer when given, else it is
    dissolved from the finest units below it. Several layers of one level are
    merged (the first wins for a code given twice). Names, best source first
    (``name_source``): the level's own layer (``layer``); a finer layer's
    township/county name column, most common value per unit (``village_layer``);
    ``code_names`` (a division code table, ``code_table``); for the city the
    ``city_name`` setting (``settings``); ``fallback_names`` (from the registry,
    ``registry``); else a placeholder like ``乡镇430224001`` (``placeholder``).

    ``layers``: BoundaryLayer objects (a bare features GeoDataFrame is accepted
    for old callers).
    """
    if isinstance(layers, gpd.GeoDataFrame):
        layers = [_wrap(layers)]
    own: dict[str, dict[str, tuple]] = {lvl: {} for lvl in LEVELS}
    told: dict[str, dict[str, Counter]] = {"township": defaultdict(Counter), "county": defaultdict(Counter)}
    for lay in layers:
        f = lay.features
        for code, name, level, geom in zip(f["code"], f["name"], f["level"], f.geometry.values):
            if level in own and code not in own[level]:
                own[level][code] = (name, geom)
        for parent in ("township", "county"):
            col = f"{parent}_name"
            if col not in f:
                continue
            for code, level, name in zip(f["code"], f["level"], f[col]):
                pc = code_of(prefix(code, parent))
                if _txt(name) and level in LEVELS and LEVELS.index(level) > LEVELS.index(parent) and level_of(pc) == parent:
                    told[parent][pc][name] += 1
    tables = {"code_table": _code_keys(code_names), "registry": _code_keys(fallback_names)}

    rows, parent_of = [], {}
    pending = [(c, g) for c, (_, g) in own["village"].items()]
    for level in LEVELS[::-1][1:]:                       # township, county, city
        children, orphans = defaultdict(list), []
        for code, geom in pending:
            pc = code_of(prefix(code, level))
            if level_of(pc) == level:
                children[pc].append(geom)
                parent_of[code] = pc
            else:                                          # e.g. no county digits (东莞): straight to the city
                orphans.append((code, geom))
        geoms = {c: g for c, (_, g) in own[level].items()}
        for pc, kids in children.items():
            if pc not in geoms:
                geoms[pc] = _dissolve(np.array(kids, dtype=object))
        pending = orphans + list(geoms.items())
        own[level] = {c: (own[level].get(c, (None, None))[0], g) for c, g in geoms.items()}
    for level in LEVELS[::-1]:
        for code in sorted(own[level]):
            name, geom = own[level][code]
            name, source = _unit_name(level, code, name, told, tables, city_name)
            kind = ("居" if int(code[9:12]) < 200 else "村") if level == "village" else None
            rows.append(dict(level=level, code=code, name=name, parent_code=parent_of.get(code), kind=kind,
                             geometry=geom, name_source=source))
    units = gpd.GeoDataFrame(pd.DataFrame(rows, columns=["level", "code", "name", "parent_code", "kind",
                                                         "geometry", "name_source"]),
                             geometry="geometry", crs=4326)
    reps = shapely.point_on_surface(units.geometry.values)
    units["lon"] = shapely.get_x(reps)
    units["lat"] = shapely.get_y(reps)
    units["area_km2"] = units.to_crs("+proj=aea +lat_1=25 +lat_2=47 +lon_0=105 +datum=WGS84").area / 1e6
    units["geom_web"] = _web_geometry(units)
    return units[UNIT_COLUMNS]


def _unit_name(level, code, own_name, told, tables, city_name) -> tuple[str, str]:
    if _txt(own_name):
        return own_name, "layer"
    if level in told and told[level].get(code):
        return told[level][code].most_common(1)[0][0], "village_layer"
    if code in tables["code_table"]:
        return tables["code_table"][code], "code_table"
    if level == "city" and city_name and city_name.strip():
        return city_name.strip(), "settings"
    if code in tables["registry"]:
        return tables["registry"][code], "registry"
    return PLACEHOLDER[level] + prefix(code, level), "placeholder"


def _txt(v) -> bool:
    """A usable name (pandas turns a missing one into NaN)."""
    return isinstance(v, str) and bool(v.strip())


def _code_keys(names: dict | None) -> dict[str, str]:
    """A code→name table with keys as 12-digit codes (6- and 9-digit prefixes padded)."""
    out = {}
    for k, v in (names or {}).items():
        k = normalize_code(k)
        if k.isdigit() and len(k) in (2, 4, 6, 9):
            k = code_of(k)
        if level_of(k) and _txt(v) and k not in out:
            out[k] = v.strip()
    return out


def _wrap(features: gpd.GeoDataFrame) -> BoundaryLayer:
    f = features.to_crs(4326) if features.crs is not None else features.set_crs(4326)
    f = f.copy()
    f["code"] = f["code"].map(normalize_code)
    if "level" not in f:
        f["level"] = f["code"].map(level_of)
    for col in ("name", "township_name", "county_name"):
        f[col] = texts_of(f[col]) if col in f else None
    return BoundaryLayer(path=Path(""), features=f)


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
