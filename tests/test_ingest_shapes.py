"""The file shapes real hand-overs come in, each through the whole ingest with exact counts.

One tiny county, made here (not by the demo generator): a GBK village
Shapefile without .cpg whose fields are QHDM/QHMC beside distractors, a
township GeoJSON carrying the only township names, a division code table
carrying the only county name. Two villages share a name (李家村) in two
townships. Then one registry file per shape.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import pytest
import xlsxwriter
from shapely.geometry import box

from liushou_geo import idcard
from liushou_geo.ingest import ingest
from liushou_geo.store import connect

AS_OF = dt.date(2026, 6, 30)
TODAY = dt.date(2026, 7, 15)
COUNTY = "439901000000"
TOWNS = {"439901001000": "东山镇", "439901002000": "西河乡"}
# code -> (name, township code); cells 0.01° wide, townships side by side.
VILLAGES = {
    "439901001001": ("李家社区", "439901001000"),
    "439901001201": ("李家村", "439901001000"),
    "439901001202": ("张庄村", "439901001000"),
    "439901002001": ("河口社区", "439901002000"),
    "439901002201": ("李家村", "439901002000"),
    "439901002202": ("王湾村", "439901002000"),
}
GROUPED = ["序号", "姓名", "性别", "身份证号", "乡镇(街道)", "村(社区)", "父亲情况", "", "", "临时监护人情况", "", "",
           "", "填报单位", "填报日期"]
SUB = ["", "", "", "", "", "", "姓名", "务工地点", "联系电话", "姓名", "与儿童关系", "联系电话", "住址", "", ""]
FLAT = ["序号", "姓名", "性别", "身份证号", "县(市、区)", "乡镇(街道)", "村(社区)", "就读学校", "就学状态", "临时监护人",
        "填报单位", "填报日期"]


def kid(village: str, seq: int, **over) -> dict:
    """A valid child of a village (code), as header -> cell."""
    name, town = VILLAGES[village]
    row = {"序号": seq, "姓名": f"张{'一二三四五六七八九十'[seq % 10]}", "性别": "男",
           "身份证号": idcard.make_id("439901", dt.date(2015, 3, 2), seq + int(village[-3:]) * 7, True),
           "县(市、区)": "安平县", "乡镇(街道)": TOWNS[town], "村(社区)": name, "就读学校": "", "就学状态": "学前",
           "临时监护人": "李桂英", "填报单位": name + "委会", "填报日期": AS_OF.isoformat()}
    row.update(over)
    return row


def write_boundaries(folder: Path) -> None:
    b = folder / "boundaries"
    b.mkdir(parents=True)
    cells, towns = [], {}
    for i, (code, (name, town)) in enumerate(sorted(VILLAGES.items())):
        x = 113.0 + 0.01 * (i % 3) + 0.05 * (town == "439901002000")
        geom = box(x, 27.0, x + 0.01, 27.01)
        cells.append({"OBJECTID": i + 1, "QHDM": code, "QHMC": name, "XZDM": "0" * 6, "XZMC": "村庄",
                      "Shape_Area": geom.area, "geometry": geom})
        towns.setdefault(town, []).append(geom)
    gdf = gpd.GeoDataFrame(cells, crs=4490).to_crs(4547)
    gdf.to_file(b / "村级界线.shp", encoding="GBK")
    (b / "村级界线.cpg").unlink(missing_ok=True)
    t = gpd.GeoDataFrame([{"乡镇代码": c, "乡镇名称": TOWNS[c], "geometry": gpd.GeoSeries(g).union_all()}
                          for c, g in towns.items()], crs=4490)
    t.to_file(b / "乡镇界线.geojson", driver="GeoJSON")
    (b / "统计用区划代码.csv").write_text("统计用区划代码,名称\n439900000000,示范市\n439901000000,安平县\n",
                                          encoding="utf-8-sig")


def write_rows(ws, r: int, header: list[str], rows: list[dict]) -> int:
    for row in rows:
        ws.write_row(r, 0, [row.get(h, "") for h in header])
        r += 1
    return r


@pytest.fixture(scope="module")
def handover(tmp_path_factory, settings):
    folder = tmp_path_factory.mktemp("handover")
    write_boundaries(folder)
    reg = folder / "registry"
    reg.mkdir()
    # .xls (BIFF8) with a title row
    import xlwt
    wb = xlwt.Workbook()
    ws = wb.add_sheet("台帐")
    ws.write(0, 0, "东山镇张庄村留守儿童信息台帐")
    for j, h in enumerate(FLAT):
        ws.write(1, j, h)
    for i, row in enumerate([kid("439901001202", s, 就读学校="东山镇中心小学", 就学状态="在校") for s in (1, 2, 3)]):
        for j, h in enumerate(FLAT):
            ws.write(2 + i, j, row[h])
    wb.save(str(reg / "张庄村.xls"))
    # two-row header with merged groups
    wb = xlsxwriter.Workbook(str(reg / "王湾村_分组表头.xlsx"))
    ws = wb.add_worksheet()
    ws.merge_range(0, 0, 0, len(GROUPED) - 1, "西河乡王湾村留守儿童信息台帐")
    for j, h in enumerate(GROUPED):
        if h and not SUB[j]:
            ws.merge_range(1, j, 2, j, h)
    ws.merge_range(1, 6, 1, 8, "父亲情况")
    ws.merge_range(1, 9, 1, 12, "临时监护人情况")
    for j, h in enumerate(SUB):
        if h:
            ws.write(2, j, h)
    for i, s in enumerate((1, 2)):
        k = kid("439901002202", s)
        ws.write_row(3 + i, 0, [k["序号"], k["姓名"], "男", k["身份证号"], "西河乡", "王湾村", f"张父{s}", "广东东莞",
                                "13800000000", "李桂英", "祖母", "13900000000", "本村", "王湾村村委会", "2026-06-30"])
    wb.close()
    # village and township names in vertically merged cells
    wb = xlsxwriter.Workbook(str(reg / "合并单元格.xlsx"))
    ws = wb.add_worksheet()
    ws.write_row(0, 0, FLAT)
    rows = [kid("439901001201", s) for s in (1, 2)] + [kid("439901002202", s) for s in (5, 6)]
    write_rows(ws, 1, FLAT, rows)
    for col in (4, 5, 6):       # county, township, village: only the first row of each block keeps its value
        ws.merge_range(1, col, 2, col, rows[0][FLAT[col]])
        ws.merge_range(3, col, 4, col, rows[2][FLAT[col]])
    wb.close()
    # one workbook per township, a sheet per village, an instructions and a summary sheet
    wb = xlsxwriter.Workbook(str(reg / "西河乡.xlsx"))
    ws = wb.add_worksheet("填表说明")
    ws.write(0, 0, "1. 每个村（社区）一张工作表；2. 身份证号请设为文本格式。")
    for code in ("439901002202", "439901002001"):
        ws = wb.add_worksheet(VILLAGES[code][0])
        ws.write_row(0, 0, FLAT)
        write_rows(ws, 1, FLAT, [kid(code, s) for s in (11, 12)])
    ws = wb.add_worksheet("汇总")
    ws.write_row(0, 0, ["村名", "留守儿童人数"])
    ws.write_row(1, 0, ["王湾村", 2])
    ws.write_row(2, 0, ["合计", 4])
    wb.close()
    # Excel's "Unicode 文本": UTF-16 with BOM, tab-separated
    lines = ["\t".join(FLAT)] + ["\t".join(str(r[h]) for h in FLAT) for r in [kid("439901002001", s) for s in (21, 22)]]
    (reg / "河口社区.txt").write_bytes("\r\n".join(lines).encode("utf-16"))
    # village lookups: a short township name, an ambiguous name, a bare unique name
    wb = xlsxwriter.Workbook(str(reg / "查找.xlsx"))
    ws = wb.add_worksheet()
    ws.write_row(0, 0, FLAT)
    write_rows(ws, 1, FLAT, [kid("439901001201", 31, **{"乡镇(街道)": "东山"}),          # 东山 for 东山镇
                             kid("439901001201", 32, **{"乡镇(街道)": ""}),              # 李家村: two in the county
                             kid("439901001202", 33, **{"乡镇(街道)": "", "村(社区)": "张庄"})])
    wb.close()
    # not tables
    (reg / "会议纪要.xlsx").write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")
    (reg / "下载中断.xlsx").write_bytes((reg / "合并单元格.xlsx").read_bytes()[:900])
    # terminals named by township + school, no code
    fac = folder / "facilities"
    fac.mkdir()
    wb = xlsxwriter.Workbook(str(fac / "亲情电话.xlsx"))
    ws = wb.add_worksheet()
    ws.write_row(0, 0, ["乡镇(街道)", "单位名称", "单位类型", "亲情电话终端数", "邮政信箱"])
    ws.write_row(1, 0, ["东山镇", "东山镇中心小学", "学校", 2, "是"])
    ws.write_row(2, 0, ["西河乡", "王湾村村委会", "村委会", 1, "否"])
    wb.close()
    db = tmp_path_factory.mktemp("db") / "t.duckdb"
    con = connect(db)
    report = ingest(con, [folder], settings, today=TODAY)
    yield con, {f["path"]: f for f in report["files"]}, report
    con.close()


def counts(f: dict) -> tuple:
    return f["status"], f["rows_read"], f["rows_loaded"], f["rows_set_aside"], f["set_aside_by_reason"]


def test_boundaries_from_three_sources(handover):
    con, files, _ = handover
    assert counts(files["boundaries/村级界线.shp"]) == ("loaded", 6, 6, 0, {})
    assert counts(files["boundaries/乡镇界线.geojson"]) == ("loaded", 2, 2, 0, {})
    assert files["boundaries/统计用区划代码.csv"]["kind"] == "division_codes"
    names = dict(con.execute("SELECT code, name FROM units").fetchall())
    assert {k: names[k] for k in (*TOWNS, COUNTY)} == {**TOWNS, COUNTY: "安平县"}
    assert names["439901001202"] == "张庄村"           # GBK without .cpg, read as Chinese
    assert names["439900000000"] == "示范市"


def test_xls(handover):
    assert counts(handover[1]["registry/张庄村.xls"]) == ("loaded", 3, 3, 0, {})


def test_two_row_header(handover):
    con, files, _ = handover
    assert counts(files["registry/王湾村_分组表头.xlsx"]) == ("loaded", 2, 2, 0, {})
    rows = con.execute("""SELECT father_name, father_work, guardian_name, guardian_relation FROM registry_rows r
                          JOIN ingested_files f USING (file_id) WHERE f.path = ? ORDER BY row_no""",
                       ["registry/王湾村_分组表头.xlsx"]).fetchall()
    assert rows == [("张父1", "广东东莞", "李桂英", "祖母"), ("张父2", "广东东莞", "李桂英", "祖母")]


def test_merged_village_cells(handover):
    con, files, _ = handover
    assert counts(files["registry/合并单元格.xlsx"]) == ("loaded", 4, 4, 0, {})
    villages = [r[0] for r in con.execute("""SELECT village_code FROM registry_rows r JOIN ingested_files f
                  USING (file_id) WHERE f.path = ? ORDER BY row_no""", ["registry/合并单元格.xlsx"]).fetchall()]
    assert villages == ["439901001201"] * 2 + ["439901002202"] * 2


def test_sheet_per_village(handover):
    f = handover[1]["registry/西河乡.xlsx"]
    assert counts(f) == ("loaded", 4, 4, 0, {})
    assert f["sheets"] == ["王湾村", "河口社区"]
    assert {s["sheet"] for s in f["skipped_sheets"]} == {"填表说明", "汇总"}


def test_utf16_tab_export(handover):
    assert counts(handover[1]["registry/河口社区.txt"]) == ("loaded", 2, 2, 0, {})


def test_village_lookups(handover):
    con, files, _ = handover
    assert counts(files["registry/查找.xlsx"]) == ("loaded", 3, 2, 1, {"ambiguous_village": 1})
    (message,) = con.execute("SELECT message FROM set_aside WHERE path = 'registry/查找.xlsx'").fetchone()
    assert "东山镇李家村（439901001201）" in message and "西河乡李家村（439901002201）" in message


def test_not_a_table_says_what_it_is(handover):
    files = handover[1]
    assert files["registry/会议纪要.xlsx"]["status"] == "error"
    assert "PDF" in files["registry/会议纪要.xlsx"]["message"]
    assert files["registry/下载中断.xlsx"]["status"] == "error"
    assert "不完整" in files["registry/下载中断.xlsx"]["message"]


def test_terminals_by_township_and_school(handover):
    con, files, _ = handover
    assert counts(files["facilities/亲情电话.xlsx"]) == ("loaded", 2, 2, 0, {})
    got = dict(con.execute("SELECT unit_name, village_code FROM terminals").fetchall())
    # The school sits where its pupils live (张庄村); the committee by its own name.
    assert got == {"东山镇中心小学": "439901001202", "王湾村村委会": "439901002202"}


def test_totals_reconcile(handover):
    _, _, report = handover
    assert report["rows_read"] == report["rows_loaded"] + report["rows_set_aside"] + report["rows_duplicate"]
    assert report["files_with_errors"] == 2


def test_a_failed_boundary_file_is_named_in_every_table_it_stops(tmp_path, settings):
    folder = tmp_path / "in"
    (folder / "boundaries").mkdir(parents=True)
    (folder / "boundaries" / "村级界线.geojson").write_text('{"type": "FeatureCollection", "features": [',
                                                             encoding="utf-8")
    wb = xlsxwriter.Workbook(str(folder / "台帐.xlsx"))
    ws = wb.add_worksheet()
    ws.write_row(0, 0, FLAT)
    write_rows(ws, 1, FLAT, [kid("439901001202", 1)])
    wb.close()
    con = connect(tmp_path / "t.duckdb")
    try:
        files = {f["path"]: f for f in ingest(con, [folder], settings, today=TODAY)["files"]}
    finally:
        con.close()
    assert files["boundaries/村级界线.geojson"]["status"] == "error"
    assert "村级界线.geojson" in files["台帐.xlsx"]["message"]
    assert "还没有村（社区）边界" not in files["台帐.xlsx"]["message"]


def test_a_small_file_replacing_an_extract_is_reported(tmp_path, settings):
    """Same 填报单位 and 填报日期 in a new file: the unit's extract is replaced, and the
    report says so, rows before → after, listing it among the shrinking ones."""
    folder = tmp_path / "in"
    write_boundaries(folder)

    def extract(path: Path, seqs) -> None:
        wb = xlsxwriter.Workbook(str(path))
        ws = wb.add_worksheet()
        ws.write_row(0, 0, FLAT)
        write_rows(ws, 1, FLAT, [kid("439901001202", s) for s in seqs])
        wb.close()

    extract(folder / "张庄村_6月.xlsx", range(1, 18))
    con = connect(tmp_path / "t.duckdb")
    try:
        first = ingest(con, [folder], settings, today=TODAY)
        assert first["shrinking_replacements"] == [] and first["children"] == 17
        second_dir = tmp_path / "again"
        second_dir.mkdir()
        extract(second_dir / "张庄村_补报.xlsx", [40])
        second = ingest(con, [second_dir], settings, today=TODAY)
        f = next(f for f in second["files"] if f["path"] == "张庄村_补报.xlsx")
        assert f["replaced"] == [{"unit": "张庄村委会", "as_of": "2026-06-30", "rows_before": 17, "rows_after": 1}]
        assert second["shrinking_replacements"] == [{"path": "张庄村_补报.xlsx", **f["replaced"][0]}]
        assert second["children"] == 1
    finally:
        con.close()


def test_an_ambiguous_name_is_settled_by_the_files_own_area():
    """Two 大同社区 in two cities; a table whose other rows all lie in city 4302
    means its own — but not when its rows are spread over both."""
    import polars as pl

    from liushou_geo.registry_rules import settle_by_area

    cands = ["430227100001", "430826101001"]
    amb = {"village_code": None, "village_reason": "ambiguous_village", "village_column": "村(社区)",
           "village_message": "“大同社区”对应多个村（社区）", "village_candidates": cands}
    placed = lambda code: {"village_code": code, "village_reason": None, "village_column": None,  # noqa: E731
                           "village_message": None, "village_candidates": []}
    rows = [{"_t": 0, **placed("430227100201")} for _ in range(19)] + [{"_t": 0, **amb}]
    rows += [{"_t": 1, **placed("430227100201")}, {"_t": 1, **placed("430826101201")}, {"_t": 1, **amb}]
    out = settle_by_area(pl.DataFrame(rows, schema_overrides={"village_candidates": pl.List(pl.String)}))
    assert out["village_code"][19] == "430227100001" and out["village_reason"][19] is None
    assert out["village_code"][22] is None and out["village_reason"][22] == "ambiguous_village"


def test_a_big_table_checked_in_slices_gives_the_same_outcome(tmp_path, settings, monkeypatch):
    """Slices of 2 rows: a duplicate of a row in another slice is still found, and the
    file's counts are those of one pass."""
    import liushou_geo.ingest as ingest_module

    folder = tmp_path / "in"
    write_boundaries(folder)
    ids = [kid("439901001202", s)["身份证号"] for s in (1, 2, 3, 4)]
    lines = ["监护人姓名,儿童身份证号,培训日期,培训主题"] + [f"李桂英,{i},2026-03-0{n + 1},家庭教育"
                                                      for n, i in enumerate(ids)]
    lines += [lines[1], "王五,43990120150302,2026-03-01,家庭教育"]          # a copy of row 2; a bad ID
    (folder / "家长学校.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setattr(ingest_module, "SLICE_ROWS", 2)
    con = connect(tmp_path / "t.duckdb")
    try:
        report = ingest(con, [folder], settings, today=TODAY)
        f = next(f for f in report["files"] if f["path"] == "家长学校.csv")
        assert (f["rows_read"], f["rows_loaded"], f["rows_set_aside"], f["rows_duplicate"]) == (6, 4, 1, 1)
        assert f["set_aside_by_reason"] == {"id_format": 1}
        assert con.execute("SELECT count(*) FROM attendance").fetchone()[0] == 4
        (dup,) = con.execute("SELECT message FROM set_aside WHERE reason = 'duplicate_row'").fetchone()
        assert "第2行" in dup
    finally:
        con.close()
