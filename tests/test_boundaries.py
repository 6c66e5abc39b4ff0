"""Boundaries at any level from any source: codes, column finding, Shapefile
encodings, CRSs, merging village/township/county layers, names by source."""

import os
import shutil
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from liushou_geo.boundaries import BoundaryError, build_units, read_boundary_file, read_boundary_layers, read_villages
from liushou_geo.codes import code_of, is_code, level_of, normalize_code, parent_code, prefix

ZHUZHOU = Path("/work/shared/cases/zhuzhou/boundaries")

# Two counties; 月塘街道 and 仙庾镇 in 荷塘区, 界首镇 in 茶陵县; one village each
# for 界首镇 and two for the others. (code, name, township name, county name)
VILLAGES = [
    ("430202001001", "文化路社区居委会", "月塘街道", "荷塘区"),
    ("430202001002", "东湖社区", "月塘街道", "荷塘区"),
    ("430202100201", "仙庾岭村", "仙庾镇", "荷塘区"),
    ("430202100202", "响石村民委员会", "仙庾镇", "荷塘区"),
    ("430224101201", "界首村", "界首镇", "茶陵县"),
]
TOWNSHIPS = {"430202001000": "月塘街道", "430202100000": "仙庾镇", "430224101000": "界首镇"}


def _cell(i: int):
    """A 0.02° square per village, in a row near 株洲 (lon/lat)."""
    x = 113.10 + 0.02 * i
    return shapely.box(x, 27.80, x + 0.02, 27.82)


def _villages(crs=4490, **cols) -> gpd.GeoDataFrame:
    """The villages with columns named as given: code=..., name=..., town=..., county=..."""
    data = {}
    for key, idx in (("code", 0), ("name", 1), ("town", 2), ("county", 3)):
        if key in cols:
            data[cols[key]] = [v[idx] for v in VILLAGES]
    g = gpd.GeoDataFrame(data, geometry=[_cell(i) for i in range(len(VILLAGES))], crs=4326)
    return g.to_crs(crs)


def _townships(crs=4490, extra: bool = False) -> gpd.GeoDataFrame:
    """Township polygons (union of their villages' cells); ``extra`` adds 马江镇
    (430224105000), which has no village in the village layer."""
    rows = [(c, n, shapely.union_all([_cell(i) for i, v in enumerate(VILLAGES) if v[0].startswith(c[:9])]))
            for c, n in TOWNSHIPS.items()]
    if extra:
        rows.append(("430224105000", "马江镇", shapely.box(113.20, 27.80, 113.24, 27.82)))
    g = gpd.GeoDataFrame({"乡镇代码": [r[0] for r in rows], "乡镇名称": [r[1] for r in rows]},
                         geometry=[r[2] for r in rows], crs=4326)
    return g.to_crs(crs)


def _by_code(units, level):
    u = units[units["level"] == level]
    return dict(zip(u["code"], zip(u["name"], u["name_source"])))


# -- codes -------------------------------------------------------------------

def test_code_helpers():
    assert [level_of(c) for c in ("430202001001", "430202001000", "430202000000", "430200000000")] == \
        ["village", "township", "county", "city"]
    assert level_of("430000000000") is None and level_of("43020200100") is None and level_of(None) is None
    assert level_of("000000000001") is None
    assert prefix("430202001001", "township") == "430202001" and code_of("4302") == "430200000000"
    assert parent_code("430202001001") == "430202001000" and parent_code("430202001000") == "430202000000"
    assert parent_code("430202000000") == "430200000000" and parent_code("430200000000") is None
    assert parent_code("441900003000") == "441900000000"        # 东莞: no county digits
    assert is_code("430202001001") and not is_code(430202001001) and not is_code("43020200100a")
    assert normalize_code(430202001001.0) == "430202001001" and normalize_code("４３０２０２００１００１") == "430202001001"
    assert normalize_code("4302020010010000000") == "430202001001" and normalize_code(float("nan")) == ""


# -- formats, columns, encodings ---------------------------------------------

def test_geojson_village_layer(tmp_path):
    p = tmp_path / "村.geojson"
    _villages(4326, code="区划代码", name="名称").to_file(p, driver="GeoJSON")
    lay = read_boundary_file(p)
    f = lay.features
    assert lay.code_column == "区划代码" and lay.name_column == "名称" and lay.encoding is None
    assert list(f["code"]) == [v[0] for v in VILLAGES] and list(f["name"]) == [v[1] for v in VILLAGES]
    assert set(f["level"]) == {"village"} and f["township_name"].isna().all() and f.crs.to_epsg() == 4326
    units = build_units([lay], "株洲市")
    assert _by_code(units, "township") == {"430202001000": ("乡镇430202001", "placeholder"),
                                           "430202100000": ("乡镇430202100", "placeholder"),
                                           "430224101000": ("乡镇430224101", "placeholder")}
    assert _by_code(units, "city") == {"430200000000": ("株洲市", "settings")}
    v = units[units["level"] == "village"].set_index("code")
    assert v.loc["430202001001", "kind"] == "居" and v.loc["430202100201", "kind"] == "村"
    assert v.loc["430202100201", "parent_code"] == "430202100000"
    assert list(units.columns) == ["level", "code", "name", "parent_code", "kind", "geometry", "lon", "lat",
                                   "area_km2", "geom_web", "name_source"]


def test_gpkg_with_distractors_and_township_names(tmp_path):
    """QHDM/QHMC beside OBJECTID, Shape_Area and XZDM/XZMC holding a land-use
    class; a 乡镇 column naming each village's township."""
    g = _villages(4490, code="QHDM", name="QHMC", town="乡镇")
    g.insert(0, "OBJECTID", range(1, len(g) + 1))
    g["XZDM"] = "0702"
    g["XZMC"] = ["城镇住宅用地", "城镇住宅用地", "农村宅基地", "水田", "农村宅基地"]
    g["Shape_Area"] = [1234567.5] * len(g)
    p = tmp_path / "村界.gpkg"
    g.to_file(p, layer="村界", driver="GPKG")
    lay = read_boundary_file(p)
    assert (lay.code_column, lay.name_column, lay.township_name_column) == ("QHDM", "QHMC", "乡镇")
    assert list(lay.features["township_name"]) == [v[2] for v in VILLAGES]
    units = build_units([lay], "株洲市")
    assert _by_code(units, "township") == {c: (n, "village_layer") for c, n in TOWNSHIPS.items()}


def test_numeric_codes_beside_township_codes(tmp_path):
    """Village codes stored as numbers; XZDM/XZMC give each village's township
    code and name: the finer code column is the layer's, XZMC its township name."""
    g = _villages(4490, name="QHMC")
    g.insert(0, "QHDM", [int(v[0]) for v in VILLAGES])
    g["XZDM"] = [v[0][:9] + "000" for v in VILLAGES]
    g["XZMC"] = [v[2] for v in VILLAGES]
    p = tmp_path / "v.gpkg"
    g.to_file(p, driver="GPKG")
    lay = read_boundary_file(p)
    assert (lay.code_column, lay.name_column, lay.township_name_column) == ("QHDM", "QHMC", "XZMC")
    assert list(lay.features["code"]) == [v[0] for v in VILLAGES]


def test_names_found_by_content(tmp_path):
    """No known header: the village names are the column with village suffixes,
    not XZMC (the township name repeated for every village) nor a land-use class."""
    g = _villages(4326, code="F1", name="F2")
    g["XZMC"] = [v[2] for v in VILLAGES]
    g["DLMC"] = ["水田", "旱地", "水田", "旱地", "林地"]
    g["BSM"] = [str(10_000 + i) for i in range(len(g))]
    p = tmp_path / "v.geojson"
    g.to_file(p, driver="GeoJSON")
    lay = read_boundary_file(p)
    assert (lay.code_column, lay.name_column, lay.township_name_column) == ("F1", "F2", "XZMC")
    assert list(lay.features["name"]) == [v[1] for v in VILLAGES]


def test_village_name_not_taken_from_a_township_name_column(tmp_path):
    """A layer whose only text column is the township name: no village name column
    (names then come from other sources), the column is the township name."""
    g = _villages(4326, code="XZQDM", town="XZMC")
    p = tmp_path / "v.geojson"
    g.to_file(p, driver="GeoJSON")
    lay = read_boundary_file(p)
    assert lay.name_column is None and lay.township_name_column == "XZMC"
    units = build_units([lay], "株洲市", code_names={"430202001001": "文化路社区居委会"})
    assert _by_code(units, "village")["430202001001"] == ("文化路社区居委会", "code_table")
    assert _by_code(units, "village")["430224101201"] == ("村430224101201", "placeholder")
    assert _by_code(units, "township")["430224101000"] == ("界首镇", "village_layer")


def test_explicit_columns(tmp_path):
    g = _villages(4326, code="甲", name="乙")
    p = tmp_path / "v.geojson"
    g.to_file(p, driver="GeoJSON")
    lay = read_boundary_file(p, code_col="甲", name_col="乙")
    assert list(lay.features["name"]) == [v[1] for v in VILLAGES]
    with pytest.raises(BoundaryError, match="指定的名称列“丙”不存在"):
        read_boundary_file(p, name_col="丙")


def _write_shp(g, path: Path, encoding: str, keep_cpg: bool, ldid: int | None = None):
    g.to_file(path, encoding=encoding)
    if not keep_cpg:
        path.with_suffix(".cpg").unlink()
    if ldid is not None:
        with open(path.with_suffix(".dbf"), "r+b") as f:
            f.seek(29)
            f.write(bytes([ldid]))


@pytest.mark.parametrize("encoding,keep_cpg,ldid,expected", [
    ("GBK", True, None, "GBK"),
    ("UTF-8", True, None, "UTF-8"),
    ("UTF-8", False, None, "UTF-8"),      # content: valid UTF-8
    ("GBK", False, None, "GBK"),          # content: GBK decodes to Chinese
    ("GBK", False, 0x4D, "GBK"),          # header: code page 936
    ("GBK", False, 0x7A, "GBK"),
    ("GBK", False, 0x57, "GBK"),          # "ANSI" driver: content decides
])
def test_shapefile_encodings(tmp_path, encoding, keep_cpg, ldid, expected):
    p = tmp_path / "村级界线.shp"
    _write_shp(_villages(4490, code="XZQDM", name="XZQMC"), p, encoding, keep_cpg, ldid)
    (tmp_path / "村级界线.shp.xml").write_text("<metadata/>", encoding="utf-8")
    lay = read_boundary_file(p)
    assert lay.encoding == expected
    assert list(lay.features["name"]) == [v[1] for v in VILLAGES]


@pytest.mark.parametrize("cpg", ["UTF-8", "1252", "ISO-8859-1", "???"])
def test_shapefile_with_a_wrong_cpg(tmp_path, cpg):
    """A .cpg naming UTF-8, a Latin or an unknown code page over a GBK DBF: the content wins."""
    p = tmp_path / "村.shp"
    _write_shp(_villages(4490, code="XZQDM", name="XZQMC"), p, "GBK", keep_cpg=True)
    p.with_suffix(".cpg").write_text(cpg)
    lay = read_boundary_file(p)
    assert lay.encoding == "GBK" and list(lay.features["name"]) == [v[1] for v in VILLAGES]


def test_gbk_shapefile_township_layer_with_chinese_field_names_without_cpg(tmp_path):
    p = tmp_path / "乡镇.shp"
    _write_shp(_townships(4490), p, "GBK", keep_cpg=False)
    lay = read_boundary_file(p)
    assert (lay.code_column, lay.name_column, lay.encoding) == ("乡镇代码", "乡镇名称", "GBK")
    assert dict(zip(lay.features["code"], lay.features["name"])) == TOWNSHIPS
    assert set(lay.features["level"]) == {"township"} and lay.level == "township"


def test_gauss_kruger_4547(tmp_path):
    g = _villages(4547, code="ZLDWDM", name="ZLDWMC")
    g["ZLDWDM"] = g["ZLDWDM"] + "0000000"          # land-survey 19-digit codes
    p = tmp_path / "村.shp"
    g.to_file(p, encoding="GBK")
    lay = read_boundary_file(p)
    assert list(lay.features["code"]) == [v[0] for v in VILLAGES]
    b = lay.features.total_bounds
    assert b == pytest.approx([113.10, 27.80, 113.20, 27.82], abs=1e-6)
    units = build_units([lay], "株洲市")
    expected = _villages(4326, code="c").to_crs("+proj=aea +lat_1=25 +lat_2=47 +lon_0=105 +datum=WGS84").area / 1e6
    assert units.loc[units["level"] == "village", "area_km2"].sum() == pytest.approx(expected.sum(), rel=1e-4)


# -- layers together ---------------------------------------------------------

def test_township_only_layer(tmp_path):
    p = tmp_path / "乡镇界线.geojson"
    _townships(4490).to_file(p, driver="GeoJSON")
    lay = read_boundary_file(p)
    units = build_units([lay], "株洲市")
    assert set(units["level"]) == {"township", "county", "city"}
    assert _by_code(units, "township") == {c: (n, "layer") for c, n in TOWNSHIPS.items()}
    assert _by_code(units, "county") == {"430202000000": ("县区430202", "placeholder"),
                                         "430224000000": ("县区430224", "placeholder")}
    t = units[units["level"] == "township"].set_index("code")
    assert t.loc["430224101000", "parent_code"] == "430224000000"


def test_village_township_county_layers_merge(tmp_path):
    vp, tp, cp = tmp_path / "村.gpkg", tmp_path / "乡镇.geojson", tmp_path / "县.geojson"
    _villages(4547, code="XZQDM", name="XZQMC").to_file(vp, driver="GPKG")
    _townships(4490, extra=True).to_file(tp, driver="GeoJSON")
    county = gpd.GeoDataFrame({"县区代码": ["430202000000"], "县区名称": ["荷塘区"]},
                              geometry=[shapely.box(113.10, 27.79, 113.18, 27.83)], crs=4326)
    county.to_file(cp, driver="GeoJSON")
    # A second village layer repeating one village under another name: the first wins, nothing reported.
    vp2 = tmp_path / "村2.geojson"
    _villages(4326, code="区划代码", name="名称").iloc[[0]].assign(名称="别名").to_file(vp2, driver="GeoJSON")
    layers = [read_boundary_file(p) for p in (vp, tp, cp, vp2)]
    assert [lay.level for lay in layers] == ["village", "township", "county", "village"]
    assert all(not lay.set_aside for lay in layers)
    units = build_units(layers, "株洲市", code_names={"430200000000": "株洲市（代码表）"},
                        fallback_names={"430224000000": "茶陵县"})
    assert _by_code(units, "village") == {v[0]: (v[1], "layer") for v in VILLAGES}
    assert _by_code(units, "township") == {**{c: (n, "layer") for c, n in TOWNSHIPS.items()},
                                           "430224105000": ("马江镇", "layer")}
    assert _by_code(units, "county") == {"430202000000": ("荷塘区", "layer"),
                                         "430224000000": ("茶陵县", "registry")}
    assert _by_code(units, "city") == {"430200000000": ("株洲市（代码表）", "code_table")}
    u = units.set_index("code")
    # County geometry from its own layer; 茶陵县 dissolved from its townships, 马江镇 included.
    assert u.loc["430202000000", "geometry"].symmetric_difference(shapely.box(113.10, 27.79, 113.18, 27.83)).area < 1e-12
    assert u.loc["430224000000", "geometry"].bounds == pytest.approx((113.18, 27.80, 113.24, 27.82), abs=1e-6)
    assert u.loc["430224105000", "parent_code"] == "430224000000"
    assert u.loc["430202100201", "parent_code"] == "430202100000"


def test_city_without_counties():
    """东莞-style codes (county digits 00): townships belong to the city directly."""
    g = gpd.GeoDataFrame({"code": ["441900003001", "441900003201", "441900004001"],
                          "name": ["甲社区", "乙村", "丙社区"]},
                         geometry=[_cell(i) for i in range(3)], crs=4326)
    units = build_units(g, "东莞市")          # a bare GeoDataFrame, as old callers pass
    assert sorted(units["level"].unique()) == ["city", "township", "village"]
    t = units[units["level"] == "township"]
    assert set(t["parent_code"]) == {"441900000000"}
    assert _by_code(units, "city") == {"441900000000": ("东莞市", "settings")}


def test_set_aside_reasons(tmp_path):
    g = _villages(4326, code="区划代码", name="名称")
    g.loc[1, "区划代码"] = "43020200100"
    g.loc[2, "区划代码"] = g.loc[0, "区划代码"]
    g.loc[3, "geometry"] = shapely.Polygon()
    p = tmp_path / "v.gpkg"
    g.to_file(p, driver="GPKG")
    lay = read_boundary_file(p)
    assert [(s["row_no"], s["reason"]) for s in lay.set_aside] == \
        [(2, "bad_code"), (3, "duplicate_code"), (4, "empty_geometry")]
    assert "不是12位数字" in lay.set_aside[0]["message"]
    assert list(lay.features["code"]) == ["430202001001", "430224101201"]


def test_read_villages_wrapper(tmp_path):
    p = tmp_path / "v.geojson"
    _villages(4326, code="区划代码", name="名称", town="乡镇名称", county="县区名称").to_file(p, driver="GeoJSON")
    villages, set_aside = read_villages(p)
    assert set_aside == [] and list(villages["county_name"]) == [v[3] for v in VILLAGES]
    units = build_units(villages, "株洲市")
    assert _by_code(units, "county") == {"430202000000": ("荷塘区", "village_layer"),
                                         "430224000000": ("茶陵县", "village_layer")}


def test_gpkg_with_two_layers(tmp_path):
    p = tmp_path / "边界.gpkg"
    _villages(4490, code="XZQDM", name="XZQMC").to_file(p, layer="村", driver="GPKG")
    _townships(4490).to_file(p, layer="乡镇", driver="GPKG")
    layers = read_boundary_layers(p)
    assert sorted(lay.level for lay in layers) == ["township", "village"]
    assert _by_code(build_units(layers, "株洲市"), "township") == {c: (n, "layer") for c, n in TOWNSHIPS.items()}


# -- unusable files ----------------------------------------------------------

@pytest.mark.parametrize("name", ["坏.shp", "坏.geojson", "坏.gpkg"])
def test_corrupt_file_raises_boundary_error(tmp_path, name):
    p = tmp_path / name
    p.write_bytes(os.urandom(4096))
    if name.endswith(".shp"):
        for s in (".shx", ".dbf"):
            p.with_suffix(s).write_bytes(os.urandom(512))
    with pytest.raises(BoundaryError) as e:
        read_boundary_file(p)
    assert e.value.args[0].startswith(name) and "重新" in e.value.args[0] and str(tmp_path) not in e.value.args[0]


def test_unusable_files(tmp_path):
    g = _villages(4326, code="XZQDM", name="XZQMC")
    p = tmp_path / "v.shp"
    g.to_file(p, encoding="UTF-8")
    p.with_suffix(".dbf").unlink()
    with pytest.raises(BoundaryError, match="缺少 .dbf"):
        read_boundary_file(p)
    g.to_file(p, encoding="UTF-8")
    p.with_suffix(".prj").unlink()
    with pytest.raises(BoundaryError, match="没有坐标系信息"):
        read_boundary_file(p)
    q = tmp_path / "wrong.geojson"
    g.to_crs(4547).set_crs(4326, allow_override=True).to_file(q, driver="GeoJSON")   # metres labelled lon/lat
    with pytest.raises(BoundaryError, match="不是经纬度"):
        read_boundary_file(q)
    lonlat = tmp_path / "lonlat_as_gk.geojson"
    g.set_crs(4547, allow_override=True).to_file(lonlat, driver="GeoJSON")       # degrees labelled metres
    with pytest.raises(BoundaryError, match="不在中国境内"):
        read_boundary_file(lonlat)
    r = tmp_path / "nocode.geojson"
    g.drop(columns=["XZQDM"]).to_file(r, driver="GeoJSON")
    with pytest.raises(BoundaryError, match="找不到12位区划代码列"):
        read_boundary_file(r)


# -- the real case -----------------------------------------------------------

@pytest.fixture(scope="module")
def zhuzhou_layers():
    if not ZHUZHOU.is_dir():
        pytest.skip("zhuzhou case not available")
    return read_boundary_file(ZHUZHOU / "村级界线.shp"), read_boundary_file(ZHUZHOU / "乡镇界线.geojson")


def test_zhuzhou_case(zhuzhou_layers):
    villages, townships = zhuzhou_layers
    assert villages.encoding == "GBK" and (villages.code_column, villages.name_column) == ("XZQDM", "XZQMC")
    assert (townships.code_column, townships.name_column) == ("乡镇代码", "乡镇名称")
    units = build_units([villages, townships], "株洲市")
    counts = units["level"].value_counts().to_dict()
    assert counts == {"village": 309, "township": 25, "county": 2, "city": 1}
    t = units[units["level"] == "township"].set_index("code")
    assert t.loc["430202001000", "name"] == "月塘街道" and (t["name_source"] == "layer").all()
    assert set(units.loc[units["level"] == "county", "code"]) == {"430202000000", "430224000000"}
    assert units.loc[units["code"] == "430202001001", "name"].item() == "文化路社区居委会"


def test_zhuzhou_shapefile_without_cpg(zhuzhou_layers, tmp_path):
    for p in ZHUZHOU.glob("村级界线.*"):
        if p.suffix.lower() != ".cpg":
            shutil.copy(p, tmp_path / p.name)
    lay = read_boundary_file(tmp_path / "村级界线.shp")
    assert lay.encoding == "GBK"
    assert list(lay.features["name"]) == list(zhuzhou_layers[0].features["name"])


def test_big_layer_with_repeated_names(tmp_path):
    """A province's layer: 600 villages sharing 12 names, townships named 朝阳街道 in
    every county — the named columns still are the name columns (found by header)."""
    rows = []
    for c in range(4):                     # counties 430102..430105
        for t in range(1, 16):             # 15 townships each, 3 names repeated across counties
            for v in range(1, 11):         # 10 villages each
                code = f"4301{c + 2:02d}{t:03d}{v:03d}"
                x, y = 112 + c * 0.5 + t * 0.02, 28 + v * 0.01
                rows.append({"区划代码": code, "名称": ["朝阳社区", "新村", "东风村"][v % 3] if v < 10 else f"特{c}{t}村",
                             "乡镇名称": ["朝阳街道", "城关镇", "新华乡"][t % 3] + ("" if t < 4 else str(t)),
                             "县区名称": ["河西区", "河东区", "城南区", "北山县"][c],
                             "geometry": shapely.box(x, y, x + 0.01, y + 0.01)})
    gpd.GeoDataFrame(rows, crs=4490).to_file(tmp_path / "v.gpkg", driver="GPKG")
    layer = read_boundary_file(tmp_path / "v.gpkg")
    assert (layer.name_column, layer.township_name_column, layer.county_name_column) == ("名称", "乡镇名称", "县区名称")
    units = build_units([layer], "示范市")
    assert _by_code(units, "county")["430102000000"] == ("河西区", "village_layer")
    assert _by_code(units, "township")["430102001000"] == ("城关镇", "village_layer")
