"""Boundary files as a city's land office hands them over (REGISTRY_FORMAT.md "More real shapes").

Small and city scales write three things under ``boundaries/``:

- ``村级界线.shp`` (+ .shx .dbf .prj and a ``.shp.xml`` metadata file): the villages in a
  CGCS2000 3-degree Gauss-Krüger projection chosen for the city's longitude, the DBF in GBK
  with NO ``.cpg`` and no code page in the DBF header (language driver byte 0). Fields:
  ``OBJECTID``, ``XZDM``/``XZMC`` (a land-use class, not the village), ``QHDM`` (12-digit code),
  ``QHMC`` (village name), ``Shape_Leng``, ``Shape_Area``.
- ``乡镇界线.geojson``: the townships in EPSG:4490 with ``乡镇代码``/``乡镇名称`` (the only place
  township names appear).
- ``统计用区划代码.csv``: the division code table (UTF-8 with BOM; ``统计用区划代码``, ``名称``,
  ``级别`` 市/县/乡/村, ``上级代码``), the only place county names appear. No county layer.

The province scale keeps the single GeoPackage (``villages.gpkg``) it always wrote.
"""

from __future__ import annotations

import csv
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

VILLAGE_SHP = "村级界线.shp"
TOWNSHIP_GEOJSON = "乡镇界线.geojson"
CODE_TABLE = "统计用区划代码.csv"
GEOGRAPHIC_CRS = "EPSG:4490"  # CGCS2000 geographic; the generator's lon/lat are taken as such

# Third national land survey classes, used as the distractor XZDM/XZMC (never the village).
_LAND_CLASS = {"city": ("201", "城市"), "town": ("202", "建制镇"), "village": ("203", "村庄")}


def gk_epsg(lon: float, zone_prefix: bool) -> int:
    """EPSG code of the CGCS2000 3-degree Gauss-Krüger zone whose central meridian is nearest ``lon``.

    With the zone prefix (false easting ``zone * 1e6 + 500 km``): EPSG:4513 (zone 25, 75°E) to
    EPSG:4533 (zone 45, 135°E). Without it: EPSG:4534 (CM 75°E) to EPSG:4554 (CM 135°E).
    """
    zone = int(np.floor(lon / 3.0 + 0.5))
    if not 25 <= zone <= 45:
        raise ValueError(f"longitude {lon} is outside China's 3-degree zones")
    return (4513 if zone_prefix else 4534) + zone - 25


def village_crs(city) -> int:
    """The projection the demo city's land office uses: small scale with zone prefix, city without."""
    v = city.villages
    minx, _, maxx, _ = v.total_bounds
    return gk_epsg((minx + maxx) / 2.0, zone_prefix=city.scale == "small")


def write(city, out: Path) -> dict:
    """Write the three boundary files; return a description for the manifest."""
    b = Path(out) / "boundaries"
    b.mkdir(parents=True, exist_ok=True)
    epsg = village_crs(city)
    shp = _write_village_shapefile(city, b / VILLAGE_SHP, epsg)
    _write_township_geojson(city, b / TOWNSHIP_GEOJSON)
    n_codes = _write_code_table(city, b / CODE_TABLE)
    return {
        "villages": {"path": f"boundaries/{VILLAGE_SHP}", "crs": f"EPSG:{epsg}", "dbf_encoding": "GBK",
                     "cpg": False, "dbf_language_driver": shp["ldid"], "code_field": "QHDM",
                     "name_field": "QHMC", "features": len(city.villages)},
        "townships": {"path": f"boundaries/{TOWNSHIP_GEOJSON}", "crs": GEOGRAPHIC_CRS,
                      "code_field": "乡镇代码", "name_field": "乡镇名称", "features": len(city.townships)},
        "code_table": {"path": f"boundaries/{CODE_TABLE}", "encoding": "utf-8-sig", "rows": n_codes},
    }


def _write_village_shapefile(city, path: Path, epsg: int) -> dict:
    v = city.villages
    urban = v.county_code.str[4:6].astype(int).to_numpy() < 20  # districts (区) are 02-19
    cls = np.where(v.kind.to_numpy() == "村", "village", np.where(urban, "city", "town"))
    g = gpd.GeoDataFrame(
        {"OBJECTID": np.arange(1, len(v) + 1, dtype=np.int32),
         "XZDM": [_LAND_CLASS[c][0] for c in cls],
         "XZMC": [_LAND_CLASS[c][1] for c in cls],
         "QHDM": v.code.astype(str).to_numpy(),
         "QHMC": v.name.astype(str).to_numpy()},
        geometry=np.asarray(v.geometry.array), crs=GEOGRAPHIC_CRS).to_crs(epsg=epsg)
    g["Shape_Leng"] = g.geometry.length.round(4)
    g["Shape_Area"] = g.geometry.area.round(4)
    g = g[["OBJECTID", "XZDM", "XZMC", "QHDM", "QHMC", "Shape_Leng", "Shape_Area", "geometry"]]
    for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
        path.with_suffix(ext).unlink(missing_ok=True)
    g.to_file(path, driver="ESRI Shapefile", engine="pyogrio", encoding="GBK")
    path.with_suffix(".cpg").unlink(missing_ok=True)
    # GDAL records the code page in the DBF header's language driver byte (0x4D for CP936);
    # many real files have 0 there, so nothing in the hand-over says "GBK".
    dbf = path.with_suffix(".dbf")
    with open(dbf, "r+b") as f:
        f.seek(29)
        f.write(b"\x00")
    path.with_name(path.name + ".xml").write_text(_SHP_XML.format(name=path.stem, epsg=epsg),
                                                   encoding="utf-8")
    return {"ldid": 0}


def _write_township_geojson(city, path: Path) -> None:
    t = city.townships.sort_values("code")
    g = gpd.GeoDataFrame({"乡镇代码": t.code.astype(str).to_numpy(), "乡镇名称": t.name.astype(str).to_numpy()},
                         geometry=np.asarray(t.geometry.array), crs=GEOGRAPHIC_CRS)
    path.unlink(missing_ok=True)
    g.to_file(path, driver="GeoJSON", engine="pyogrio", layer_options={"RFC7946": "NO"})


def _write_code_table(city, path: Path) -> int:
    v = pd.DataFrame(city.villages.drop(columns="geometry"))
    t = pd.DataFrame(city.townships.drop(columns="geometry"))
    c = pd.DataFrame(city.counties.drop(columns="geometry"))
    rows = {}
    for code, name in zip(v.city_code, v.city_name):
        rows[code] = (code, name, "市", "")
    for code, name, parent in zip(c.code, c.name, c.city_code):
        rows[code] = (code, name, "县", parent)
    for code, name, parent in zip(t.code, t.name, t.county_code):
        rows[code] = (code, name, "乡", parent)
    for code, name, parent in zip(v.code, v.name, v.township_code):
        rows[code] = (code, name, "村", parent)
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(["统计用区划代码", "名称", "级别", "上级代码"])
        w.writerows(rows[k] for k in sorted(rows))  # code order is the table's depth-first order
    return len(rows)


_SHP_XML = """<?xml version="1.0" encoding="UTF-8"?>
<metadata xml:lang="zh">
  <Esri>
    <CreaDate>20260630</CreaDate>
    <CreaTime>10021500</CreaTime>
    <ArcGISFormat>1.0</ArcGISFormat>
    <SyncOnce>TRUE</SyncOnce>
    <DataProperties>
      <itemProps>
        <itemName Sync="TRUE">{name}</itemName>
        <imsContentType Sync="TRUE">002</imsContentType>
      </itemProps>
      <coordRef>
        <type Sync="TRUE">Projected</type>
        <geogcsn Sync="TRUE">GCS_China_Geodetic_Coordinate_System_2000</geogcsn>
        <peXml Sync="TRUE">EPSG:{epsg}</peXml>
      </coordRef>
    </DataProperties>
  </Esri>
  <dataIdInfo>
    <idCitation><resTitle Sync="TRUE">{name}</resTitle></idCitation>
    <idAbs>示范市村级行政区划界线（数据来源：示范市自然资源局，仅供留守儿童关爱工作使用）</idAbs>
  </dataIdInfo>
</metadata>
"""
