"""The demo city writes the shapes real cities send (issue #12 part 4), and its ground truth
(defects.csv: file, sheet, row) still points at the exact cells.

One small city (seed 7) is generated once for the module; nothing is ingested here.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from collections import Counter

import openpyxl
import pyogrio
import pyproj
import pytest
from python_calamine import CalamineWorkbook

from liushou_geo import idcard
from liushou_geo.demo import build_city, generate
from liushou_geo.demo import names as N

# manifest.json "counts" of seed 7 small as written before the file shapes changed. Only
# registry_files differs now (one township sends one workbook); registry_extracts keeps the old 113.
BEFORE_COUNTS = {"cities": 1, "counties": 2, "townships": 10, "villages": 100, "schools": 32, "children": 3542,
                 "registry_rows": 5954, "defects": 59, "rooms": 13, "terminals": 132, "attendance": 6033,
                 "contacts": 26980, "cases": 6}
BEFORE_REGISTRY_FILES = 113
BEFORE_DEFECT_KINDS = {"id_lowercase_x": 5, "id_fullwidth": 5, "sex_mismatch": 5, "id_spaces": 5,
                       "name_trailing_spaces": 5, "future_date": 5, "id_excel_rounded": 5, "village_no_suffix": 5,
                       "unknown_village": 5, "over_age_limit": 5, "id_check_digit": 5, "duplicate_row": 4}
# sha256 of the sorted "kind|name|ID" lines of every defect row, read from the files written before
# the change (same helper, see _defect_fingerprint): the same defects sit on the same children.
BEFORE_DEFECT_FINGERPRINT = "9040a0be3847137717b1543be74c0594a8b6b8ad626f1e2510d4b503d7b2394a"

ID_HEADERS = {"身份证号", "身份证号码", "公民身份号码"}
VILLAGE_HEADERS = {"村(社区)", "村（社区）", "村（居）"}
SUFFIXES = ("村民委员会", "居民委员会", "村委会", "居委会", "社区", "村")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_shapes")
    manifest = generate(out, scale="small")
    return out, manifest


@pytest.fixture(scope="module")
def truth():
    return build_city(seed=7, scale="small")


@pytest.fixture(scope="module")
def sheets(demo):
    return read_registry(demo[0])


# ------------------------------------------------------------------ reading helpers

def _norm(v) -> str:
    return "".join(str(v).split()) if v is not None else ""


def _fill_vertical_merges(rows: list[list], ranges) -> None:
    """Give every cell of a vertically merged range the top cell's value (as a reader must)."""
    for r in ranges:
        if r.min_col != r.max_col:
            continue
        v = rows[r.min_row - 1][r.min_col - 1]
        for i in range(r.min_row, r.max_row):
            rows[i][r.min_col - 1] = v


def read_registry(out) -> dict:
    """{(relative path, sheet name or ''): rows as lists}, vertically merged cells filled."""
    found = {}
    for p in sorted((out / "registry").rglob("*")):
        rel = p.relative_to(out).as_posix()
        if p.suffix == ".xlsx":
            wb = openpyxl.load_workbook(p)
            for ws in wb.worksheets:
                rows = [list(r) for r in ws.iter_rows(values_only=True)]
                _fill_vertical_merges(rows, ws.merged_cells.ranges)
                found[(rel, ws.title)] = rows
        elif p.suffix == ".xls":
            wb = CalamineWorkbook.from_path(str(p))
            for name in wb.sheet_names:
                found[(rel, name)] = wb.get_sheet_by_name(name).to_python(skip_empty_area=False)
        elif p.suffix == ".txt":
            raw = p.read_bytes()
            assert raw[:2] == b"\xff\xfe"
            found[(rel, "")] = list(csv.reader(raw[2:].decode("utf-16-le").splitlines(), delimiter="\t"))
        elif p.suffix == ".csv":
            with open(p, encoding="gb18030", newline="") as f:
                found[(rel, "")] = list(csv.reader(f))
    return found


class Table:
    """Header and data rows of one registry sheet (single- or two-row header)."""

    def __init__(self, rows: list[list]):
        self.rows = rows
        h = next(i for i, r in enumerate(rows[:8]) if any(_norm(c) == "序号" for c in r))
        top = rows[h]
        sub = rows[h + 1] if h + 1 < len(rows) else []
        self.two_row = any(_norm(c) == "务工地点" for c in sub)
        labels = []
        for j, c in enumerate(top):
            t = _norm(c)
            if self.two_row and j < len(sub) and _norm(sub[j]) and _norm(sub[j]) != t:
                t = _norm(sub[j])
            labels.append(t)
        self.labels = labels
        self.first_data = h + (2 if self.two_row else 1)
        self.id_col = next(j for j, t in enumerate(labels) if t in ID_HEADERS)
        self.name_col = labels.index("姓名")
        self.sex_col = labels.index("性别")
        self.village_col = next(j for j, t in enumerate(labels) if t in VILLAGE_HEADERS)
        self.code_col = labels.index("区划代码") if "区划代码" in labels else None

    def is_data(self, i: int) -> bool:
        if i < self.first_data or i >= len(self.rows):
            return False
        first = self.rows[i][0] if self.rows[i] else None
        if isinstance(first, (int, float)) and not isinstance(first, bool):
            return True
        return isinstance(first, str) and first.strip().isdigit()

    def data_rows(self):
        return [i for i in range(self.first_data, len(self.rows)) if self.is_data(i)]

    def cell(self, i: int, j: int | None):
        if j is None or j >= len(self.rows[i]):
            return None
        return self.rows[i][j]


def _tables(sheets) -> dict:
    out = {}
    for key, rows in sheets.items():
        if any(_norm(c) == "序号" for r in rows[:8] for c in r):
            out[key] = Table(rows)
    return out


def _id_key(v) -> str:
    """A defect row's ID as a comparable text ('rounded' for an ID Excel turned into a number)."""
    if isinstance(v, float) or (isinstance(v, str) and "E+" in v.upper()):
        return "rounded"
    return idcard.normalise(v)


def _defect_fingerprint(out, sheets) -> str:
    tables = _tables(sheets)
    with open(out / "defects.csv", encoding="utf-8") as f:
        lines = sorted(f"{d['kind']}|{str(t.cell(int(d['row']) - 1, t.name_col)).strip()}|"
                       f"{_id_key(t.cell(int(d['row']) - 1, t.id_col))}"
                       for d in csv.DictReader(f) for t in [tables[(d["file"], d["sheet"])]])
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


# ------------------------------------------------------------------ boundaries

def test_village_shapefile_gbk_without_cpg_in_gauss_kruger(demo, truth):
    out, manifest = demo
    b = out / "boundaries"
    assert not (b / "villages.gpkg").exists()
    shp = b / "村级界线.shp"
    for ext in (".shp", ".shx", ".dbf", ".prj"):
        assert shp.with_suffix(ext).exists(), ext
    assert not shp.with_suffix(".cpg").exists() and not list(b.glob("*.cpg"))
    raw = shp.with_suffix(".dbf").read_bytes()
    assert raw[29] == 0  # no code page in the DBF header either
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("gbk")
    assert all(name in text for name in truth.villages.name)
    info = pyogrio.read_info(shp)
    assert {"QHDM", "QHMC", "XZDM", "XZMC", "OBJECTID", "Shape_Area"} <= set(info["fields"])
    assert info["features"] == len(truth.villages)
    epsg = pyproj.CRS(info["crs"]).to_epsg()
    assert 4513 <= epsg <= 4554
    assert manifest["boundaries"]["villages"]["crs"] == f"EPSG:{epsg}"
    df = pyogrio.read_dataframe(shp, encoding="GBK", read_geometry=True)
    assert sorted(df.QHDM) == sorted(truth.villages.code)
    assert dict(zip(df.QHDM, df.QHMC)) == dict(zip(truth.villages.code, truth.villages.name))
    assert not set(df.XZMC) & set(truth.villages.name)  # a distractor, not the name
    # Projected metres in the zone of the city's longitude; back in degrees the villages are where they were.
    lon = df.geometry.centroid.to_crs(4490).x
    assert ((lon > 111) & (lon < 114)).all()
    assert df.geometry.area.min() > 1e4


def test_township_geojson_and_code_table(demo, truth):
    out, _ = demo
    b = out / "boundaries"
    info = pyogrio.read_info(b / "乡镇界线.geojson")
    assert {"乡镇代码", "乡镇名称"} <= set(info["fields"]) and pyproj.CRS(info["crs"]).to_epsg() == 4490
    t = pyogrio.read_dataframe(b / "乡镇界线.geojson")
    assert dict(zip(t["乡镇代码"], t["乡镇名称"])) == dict(zip(truth.townships.code, truth.townships.name))
    assert not [p for p in b.iterdir() if "县" in p.name]  # no county layer
    raw = (b / "统计用区划代码.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with open(b / "统计用区划代码.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["统计用区划代码", "名称", "级别", "上级代码"]
    codes = Counter(r["统计用区划代码"] for r in rows)
    assert max(codes.values()) == 1
    by_level = {lv: {r["统计用区划代码"]: r["名称"] for r in rows if r["级别"] == lv} for lv in "市县乡村"}
    assert by_level["村"] == dict(zip(truth.villages.code, truth.villages.name))
    assert by_level["乡"] == dict(zip(truth.townships.code, truth.townships.name))
    assert by_level["县"] == dict(zip(truth.counties.code, truth.counties.name))
    assert by_level["市"] == {"439900000000": "示范市"}
    parent = {r["统计用区划代码"]: r["上级代码"] for r in rows}
    assert all(parent[v] == t for v, t in zip(truth.villages.code, truth.villages.township_code))


# ------------------------------------------------------------------ registry shapes

def test_registry_file_shapes(demo):
    out, manifest = demo
    reg = out / "registry"
    xls = list(reg.rglob("*.xls"))
    assert xls and all(p.read_bytes()[:8] == bytes.fromhex("d0cf11e0a1b11ae1") for p in xls)
    txt = list(reg.rglob("*.txt"))
    assert len(txt) == 1 and txt[0].read_bytes()[:2] == b"\xff\xfe"
    lines = txt[0].read_bytes()[2:].decode("utf-16-le").split("\r\n")
    assert any(ln.split("\t")[0] == "序号" for ln in lines[:6])
    [gb] = list(reg.glob("*.csv"))
    with pytest.raises(UnicodeDecodeError):
        gb.read_bytes().decode("utf-8")
    xlsx = list(reg.rglob("*.xlsx"))
    assert len(xlsx) + len(xls) + len(txt) + 1 == manifest["counts"]["registry_files"]


def test_two_row_headers_and_merged_place_cells(demo):
    out, _ = demo
    groups = {"父亲情况", "母亲情况", "临时监护人情况", "结对帮扶情况"}
    two_row = merged_places = 0
    for p in sorted((out / "registry").rglob("*.xlsx")):
        for ws in openpyxl.load_workbook(p).worksheets:
            rows = [list(r) for r in ws.iter_rows(values_only=True)]
            ranges = list(ws.merged_cells.ranges)
            labels = {rows[r.min_row - 1][r.min_col - 1]: r for r in ranges if r.min_row == r.max_row}
            if groups <= set(labels):
                two_row += 1
                h = labels["父亲情况"].min_row  # 1-based header row; the sub-headers below it
                assert [rows[h][c] for c in range(labels["父亲情况"].min_col - 1, labels["父亲情况"].max_col)] \
                    == ["姓名", "务工地点", "联系电话"]
                assert [rows[h][c] for c in range(labels["临时监护人情况"].min_col - 1,
                                                   labels["临时监护人情况"].max_col)] \
                    == ["姓名", "与儿童关系", "联系电话", "住址"]
                vertical = {rows[r.min_row - 1][r.min_col - 1] for r in ranges
                            if r.min_row == h and r.max_row == h + 1}
                assert {"序号", "姓名"} <= {_norm(v) for v in vertical}
            h = next((i for i, r in enumerate(rows[:8]) if any(_norm(c) == "序号" for c in r)), None)
            if h is None:
                continue
            vcol = next(j for j, v in enumerate(rows[h]) if _norm(v) in VILLAGE_HEADERS)
            blocks = [r for r in ranges if r.min_col == r.max_col == vcol + 1 and r.max_row > r.min_row
                      and _norm(rows[r.min_row - 1][vcol]) not in VILLAGE_HEADERS]
            if blocks:
                merged_places += 1
                for r in blocks:  # only the first row of a block carries the name
                    assert rows[r.min_row - 1][vcol] and all(rows[i][vcol] is None for i in range(r.min_row, r.max_row))
    assert two_row >= 1 and merged_places >= 1


def test_township_workbook_one_sheet_per_village(demo, truth):
    out, _ = demo
    books = []
    for p in (out / "registry").rglob("*.xlsx"):
        wb = openpyxl.load_workbook(p, read_only=True)
        if "汇总" in wb.sheetnames:
            books.append((p, wb))
    assert books
    for p, wb in books:
        assert "填表说明" in wb.sheetnames
        villages = [n for n in wb.sheetnames if n not in ("填表说明", "汇总")]
        assert len(villages) >= 3
        township = p.parent.name
        assert set(villages) == set(truth.villages.name[truth.villages.township_name == township])
        for name in ("填表说明", "汇总"):
            rows = list(wb[name].iter_rows(values_only=True))
            assert not any(_norm(c) in ("序号", "身份证号") for r in rows for c in r)
        summary = list(wb["汇总"].iter_rows(values_only=True))
        assert ("村名", "留守儿童人数") in summary and summary[-1][0] == "合计"
        counts = {r[0]: r[1] for r in summary[2:-1]}
        assert set(counts) == set(villages) and summary[-1][1] == sum(counts.values())
        for v in villages:
            t = Table([list(r) for r in wb[v].iter_rows(values_only=True)])
            assert len(t.data_rows()) == counts[v]


# ------------------------------------------------------------------ ground truth

def test_manifest_counts_unchanged(demo):
    _, manifest = demo
    counts = manifest["counts"]
    assert {k: counts[k] for k in BEFORE_COUNTS} == BEFORE_COUNTS
    assert counts["registry_extracts"] == BEFORE_REGISTRY_FILES
    assert counts["registry_files"] < BEFORE_REGISTRY_FILES  # the township workbook holds several extracts
    assert manifest["defect_kinds"] == BEFORE_DEFECT_KINDS
    assert json.loads((demo[0] / "manifest.json").read_text(encoding="utf-8"))["counts"] == counts


def test_every_child_is_written(demo, truth, sheets):
    seen = set()
    for t in _tables(sheets).values():
        for i in t.data_rows():
            seen.add(idcard.normalise(t.cell(i, t.id_col)))
    assert set(truth.children.id) <= seen


def test_defects_point_at_their_rows(demo, truth, sheets):
    out, manifest = demo
    tables = _tables(sheets)
    with open(out / "defects.csv", encoding="utf-8") as f:
        defects = list(csv.DictReader(f))
    assert len(defects) == manifest["counts"]["defects"] == BEFORE_COUNTS["defects"]
    as_of = dt.date.fromisoformat(manifest["as_of"])
    names = set(truth.villages.name)
    fullwidth = set("０１２３４５６７８９Ｘ")
    sheets_used = Counter()
    for d in defects:
        key = (d["file"], d["sheet"])
        assert key in tables, d
        sheets_used[(d["file"].rsplit(".", 1)[-1], bool(d["sheet"]))] += 1
        t, i = tables[key], int(d["row"]) - 1
        assert t.is_data(i), d
        raw_id, kind = t.cell(i, t.id_col), d["kind"]
        ident = idcard.normalise(raw_id)
        if kind == "id_excel_rounded":
            assert isinstance(raw_id, float) or "E+" in str(raw_id), d
            continue
        assert isinstance(raw_id, str), d
        if kind == "id_spaces":
            assert raw_id != raw_id.replace(" ", "") and idcard.is_valid(ident), d
        elif kind == "id_fullwidth":
            assert set(raw_id) & fullwidth and idcard.is_valid(ident), d
        elif kind == "id_lowercase_x":
            assert raw_id.endswith("x") and idcard.is_valid(ident), d
        elif kind == "id_check_digit":
            assert len(ident) == 18 and not idcard.is_valid(ident), d
        elif kind == "name_trailing_spaces":
            name = t.cell(i, t.name_col)
            assert name != name.rstrip(" \u3000") and idcard.is_valid(ident), d
        elif kind == "over_age_limit":
            assert idcard.age_on(idcard.birth_date(ident), as_of) >= 18, d
        elif kind == "future_date":
            assert idcard.birth_date(ident) > as_of, d
        elif kind == "sex_mismatch":
            assert t.cell(i, t.sex_col) != idcard.sex(ident), d
        elif kind == "unknown_village":
            assert t.cell(i, t.village_col) in N.OLD_VILLAGE_NAMES, d
        elif kind == "village_no_suffix":
            v = str(t.cell(i, t.village_col))
            assert not (t.cell(i, t.code_col) or "") and not v.endswith(("委会", "委员会")), d
            assert v in names or any(v + s in names for s in ("村", "社区")), d
        elif kind == "duplicate_row":
            earlier = [j for j in t.data_rows() if j < i and t.cell(j, t.id_col) == raw_id
                       and t.cell(j, t.name_col) == t.cell(i, t.name_col)]
            assert earlier, d
        if kind in ("id_spaces", "id_fullwidth", "id_lowercase_x", "name_trailing_spaces"):
            assert ident in set(truth.children.id), d  # a real child, loaded after normalising
    # Defects land in the new shapes too, with the sheet named where there is one.
    assert all((ext in ("xlsx", "xls")) == has_sheet for (ext, has_sheet) in sheets_used)


def test_same_defects_on_same_children_as_before(demo, sheets):
    assert _defect_fingerprint(demo[0], sheets) == BEFORE_DEFECT_FINGERPRINT
