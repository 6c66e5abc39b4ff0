"""The seeded demo-city generator: exact geography at city scale, written files at small scale."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import shapely
from python_calamine import CalamineWorkbook

from liushou_geo import idcard
from liushou_geo.demo import build_city, write_city


@pytest.fixture(scope="module")
def city():
    """The full demo city in memory (no files): the geometry must be exact."""
    return build_city(seed=7, scale="city")


@pytest.fixture(scope="module")
def small_written(tmp_path_factory):
    """A small city written to disk, as the ingest would receive it."""
    out = tmp_path_factory.mktemp("demo_small")
    c = build_city(seed=11, scale="small")
    manifest = write_city(c, out)
    return c, out, manifest


def test_city_has_exactly_996_committees_with_valid_codes(city):
    v = city.villages
    assert len(v) == 996
    assert v.code.str.fullmatch(r"4399\d{8}").all()
    assert v.code.is_unique
    assert (v.code.str[:9] == v.township_code.str[:9]).all()
    assert (v.township_code.str[:6] == v.county_code.str[:6]).all()
    assert v.township_code.str.endswith("000").all() and v.county_code.str.endswith("000000").all()
    num = v.code.str[9:].astype(int)
    assert num[v.kind == "居"].between(1, 199).all()
    assert num[v.kind == "村"].between(200, 399).all()
    counties = sorted(v.county_code.str[:6].unique())
    assert counties == ["439902", "439903", "439904", "439905", "439921", "439922", "439923", "439924"]
    assert 80 <= v.township_code.nunique() <= 100
    # Village base names unique within a township (the ingest resolves by names).
    base = v.name.str.replace("(社区|村)$", "", regex=True)
    assert not base.groupby(v.township_code).apply(lambda s: s.duplicated().any()).any()


def test_city_polygons_form_an_exact_partition(city):
    g = city.villages.geometry.values
    assert shapely.is_valid(g).all()
    assert (shapely.get_type_id(g) == 3).all()  # single Polygons
    tree = shapely.STRtree(g)
    a, b = tree.query(g, predicate="intersects")
    keep = a < b
    overlap = shapely.area(shapely.intersection(g[a[keep]], g[b[keep]]))
    assert overlap.max() < 1e-12
    t = city.townships.set_index("code").geometry
    for code, grp in city.villages.groupby("township_code"):
        union = shapely.union_all(grp.geometry.values)
        assert abs(union.area - t[code].area) / t[code].area < 1e-9
        assert shapely.symmetric_difference(union, t[code]).area / t[code].area < 1e-9
    minx, miny, maxx, maxy = city.villages.total_bounds
    assert 111.5 <= minx and maxx <= 113.5 and 27.0 <= miny and maxy <= 28.6


def test_city_children_counts_and_ids(city):
    ch = city.children
    assert 35_000 <= len(ch) <= 45_000
    assert ch.id.is_unique
    assert all(idcard.is_valid(i) for i in ch.id)
    ages = [idcard.age_on(b, city.as_of) for b in ch.birth]
    assert min(ages) >= 0 and max(ages) <= 17
    assert (ch.sex == [idcard.sex(i) for i in ch.id]).all()
    per_v = ch.groupby("village_code").size().reindex(city.villages.code, fill_value=0)
    urban = city.villages.county_code.str[4:6].astype(int) < 20
    assert per_v[~urban.to_numpy()].mean() > per_v[urban.to_numpy()].mean() * 2
    assert set(ch.village_code) <= set(city.villages.code)
    pair = (ch.helper != "").groupby(ch.village_code.str[:9]).mean()
    assert 0.55 <= (ch.helper != "").mean() <= 0.72 and (pair < 0.6).any()


def test_same_seed_same_city_other_seed_differs(city):
    again = build_city(seed=7, scale="city")
    assert again.villages.geometry.values.tolist() == city.villages.geometry.values.tolist()
    pd.testing.assert_frame_equal(again.children, city.children)
    other = build_city(seed=8, scale="city")
    assert not other.villages.geometry.values[0].equals(city.villages.geometry.values[0])
    assert other.children.id.iloc[:100].tolist() != city.children.id.iloc[:100].tolist()


def _find_header(rows):
    for i, r in enumerate(rows[:6]):
        if any("".join(str(c).split()) == "序号" for c in r):
            return i
    return None


def test_small_files_exist_and_open(small_written):
    """The facility and service files; the boundary and registry shapes are
    checked one by one in test_demo_shapes."""
    c, out, manifest = small_written
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["counts"]["villages"] == len(c.villages)
    for rel in ["boundaries/村级界线.shp", "boundaries/乡镇界线.geojson", "boundaries/统计用区划代码.csv",
                "facilities/活动室.xlsx", "facilities/亲情电话与信箱.xlsx", "services/家长学校培训记录.xlsx",
                "services/代理家长帮扶记录.csv", "services/法律援助案件.xlsx", "defects.csv"]:
        assert (out / rel).exists(), rel
    for rel in ["facilities/活动室.xlsx", "facilities/亲情电话与信箱.xlsx", "services/法律援助案件.xlsx"]:
        rows = CalamineWorkbook.from_path(str(out / rel)).get_sheet_by_index(0).to_python()
        assert len(rows) > 1, rel
    files = [p for p in (out / "registry").rglob("*") if p.is_file()]
    assert len(files) == manifest["counts"]["registry_files"]
    assert (out / "services/代理家长帮扶记录.csv").read_bytes().startswith(b"\xef\xbb\xbf")


def test_district_csv_is_gb18030(small_written):
    c, out, _ = small_written
    [path] = list((out / "registry").glob("*.csv"))
    raw = path.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("gb18030")
    assert text.splitlines()[0].split(",")[:4] == ["序号", "姓名", "性别", "身份证号"]


def test_no_defects_when_rate_zero(tmp_path):
    c = build_city(seed=3, scale="small", defect_rate=0)
    m = write_city(c, tmp_path)
    assert m["counts"]["defects"] == 0
    assert m["counts"]["registry_rows"] == int(c.children.in_village_file.sum() + c.children.in_school_file.sum())


def test_rejects_unknown_scale():
    with pytest.raises(ValueError):
        build_city(scale="planet")
