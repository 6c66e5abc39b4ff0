"""Ingest of the small generated city: nothing lost, counts right, safe to repeat."""

import csv
import shutil

import geopandas as gpd
import pytest

from liushou_geo.ingest import ingest
from liushou_geo.store import connect


def _truth_children(truth, hasher):
    return {hasher(i): v for i, v in zip(truth.children["id"], truth.children["village_code"])}

def test_every_row_read_is_loaded_or_set_aside(small_db, small_con):
    _, report = small_db
    assert report["rows_read"] == report["rows_loaded"] + report["rows_set_aside"] + report["rows_duplicate"]
    assert report["rows_read"] > 0 and report["files_with_errors"] == 0
    for f in report["files"]:
        assert f["rows_read"] == f["rows_loaded"] + f["rows_set_aside"] + f["rows_duplicate"], f["path"]
        assert f["rows_set_aside"] == sum(f["set_aside_by_reason"].values()), f["path"]
    # Duplicates are listed in set_aside too (the clerk sees them), counted apart in the report.
    stored = small_con.execute("SELECT count(*) FROM set_aside").fetchone()[0]
    assert stored == report["rows_set_aside"] + report["rows_duplicate"]
    by_reason = dict(small_con.execute("SELECT reason, count(*) FROM set_aside GROUP BY 1").fetchall())
    assert by_reason == {**report["set_aside_by_reason"], "duplicate_row": report["rows_duplicate"]}

def test_children_equal_the_ground_truth(small_truth, small_con, hasher):
    truth = _truth_children(small_truth, hasher)
    got = dict(small_con.execute("SELECT child_key, village_code FROM children").fetchall())
    assert set(got) == set(truth)
    wrong = [k for k in truth if got[k] != truth[k]]
    assert not wrong, f"{len(wrong)} children placed in the wrong village"

def test_paired_and_guardian_flags_match_truth(small_truth, small_con, hasher):
    c = small_truth.children
    expected = {hasher(i): (bool(h), bool(g)) for i, h, g in zip(c["id"], c["helper"], c["guardian_name"])}
    got = {k: (p, g) for k, p, g in small_con.execute("SELECT child_key, paired, with_guardian FROM children").fetchall()}
    assert got == expected

def test_injected_defects_are_set_aside_with_their_reason(small_city_dir, small_con):
    with open(small_city_dir / "defects.csv", encoding="utf-8") as f:
        defects = list(csv.DictReader(f))
    expected = [d for d in defects if d["expected"] == "set_aside"]
    assert expected, "the small city should carry set-aside defects at this rate"
    rows = small_con.execute(
        "SELECT path, row_no, reason FROM set_aside").fetchall()
    found = {(p, r): reason for p, r, reason in rows}
    for d in expected:
        key = (d["file"], int(d["row"]))
        assert key in found, f"defect {d} was not set aside"
        assert found[key] == d["kind"], f"{d}: set aside as {found[key]}"
    # Every loaded-kind defect was loaded, not set aside.
    for d in defects:
        if d["expected"] == "loaded":
            assert (d["file"], int(d["row"])) not in found, d

def test_messages_name_column_and_fix(small_con):
    rows = small_con.execute("SELECT reason, column_name, message FROM set_aside WHERE reason <> 'duplicate_row'").fetchall()
    assert rows
    for reason, column, message in rows:
        assert column, reason
        assert "请" in message, message   # every message tells the clerk what to do

def test_store_holds_no_raw_id(small_truth, small_db):
    path, _ = small_db
    con = connect(path, read_only=True)
    text_cols = con.execute("""SELECT table_name, column_name FROM information_schema.columns
                               WHERE data_type = 'VARCHAR'""").fetchall()
    ids = set(small_truth.children["id"])
    sample = list(ids)[:200]
    for table, col in text_cols:
        values = {v for (v,) in con.execute(f'SELECT DISTINCT "{col}" FROM "{table}"').fetchall() if v}
        assert not values & ids, f"{table}.{col} holds raw ID numbers"
        assert not any(i in v for v in values for i in sample[:20]), f"{table}.{col} embeds an ID"
    con.close()
    blob = path.read_bytes()
    assert not any(i.encode() in blob for i in sample)

def test_district_csv_in_gb18030_is_loaded(small_city_dir, small_con):
    csvs = list((small_city_dir / "registry").glob("*.csv"))
    assert len(csvs) == 1
    raw = csvs[0].read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    rel = csvs[0].relative_to(small_city_dir).as_posix()
    n = small_con.execute("""SELECT count(*) FROM registry_rows r JOIN ingested_files f USING (file_id)
                             WHERE f.path = ?""", [rel]).fetchone()[0]
    assert n > 0

def test_reingest_is_a_no_op(small_city_dir, small_db, settings, tmp_path):
    path = tmp_path / "again.duckdb"
    shutil.copy(small_db[0], path)
    con = connect(path)
    before = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("registry_rows", "children", "set_aside", "units", "rooms", "contacts")}
    report = ingest(con, [small_city_dir], settings)
    after = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in before}
    con.close()
    assert after == before
    assert report["rows_read"] == 0 and report["files_unchanged"] == report["files_total"]

def test_new_version_of_a_file_replaces_the_old(small_city_dir, settings, tmp_path):
    src = tmp_path / "city"
    shutil.copytree(small_city_dir, src)
    con = connect(tmp_path / "v.duckdb")
    ingest(con, [src], settings)
    rooms_before = con.execute("SELECT count(*) FROM rooms").fetchone()[0]
    # A clerk re-sends the rooms list with one room fewer.
    import openpyxl

    p = src / "facilities" / "活动室.xlsx"
    wb = openpyxl.load_workbook(p)
    ws = wb.active
    ws.delete_rows(ws.max_row)
    wb.save(p)
    report = ingest(con, [src], settings)
    rooms_after = con.execute("SELECT count(*) FROM rooms").fetchone()[0]
    con.close()
    assert rooms_after == rooms_before - 1
    assert report["rows_read"] == rooms_before - 1

def test_bad_files_are_reported_once_and_do_not_stop_the_rest(small_city_dir, settings, tmp_path):
    src = tmp_path / "city"
    shutil.copytree(small_city_dir / "boundaries", src / "boundaries")
    (src / "坏文件.xlsx").write_bytes(b"this is not a workbook")
    # A registry extract without its ID column: reported once for the file.
    import xlsxwriter

    wb = xlsxwriter.Workbook(src / "缺列台帐.xlsx")
    ws = wb.add_worksheet()
    ws.write_row(0, 0, ["序号", "姓名", "性别", "身份证", "村(社区)"])
    ws.write_row(1, 0, [1, "张三", "男", "x", "某村"])
    ws.write_row(2, 0, [2, "李四", "女", "y", "某村"])
    wb.close()
    con = connect(tmp_path / "bad.duckdb")
    report = ingest(con, [src], settings)
    con.close()
    by_path = {f["path"]: f for f in report["files"]}
    # Text named .xlsx: read as text by its content, where no table header is found.
    assert by_path["坏文件.xlsx"]["status"] == "unrecognised"
    assert "表头" in by_path["坏文件.xlsx"]["message"]
    assert by_path["boundaries/村级界线.shp"]["rows_loaded"] > 0

def test_missing_required_column_reported_once_per_file(small_city_dir, settings, tmp_path):
    import xlsxwriter

    src = tmp_path / "city"
    shutil.copytree(small_city_dir / "boundaries", src / "boundaries")
    wb = xlsxwriter.Workbook(src / "缺列台帐.xlsx")
    ws = wb.add_worksheet()
    # No 村(社区) and no 区划代码: the children cannot be placed.
    ws.write_row(0, 0, ["序号", "姓名", "身份证号", "县(市、区)"])
    ws.write_row(1, 0, [1, "张三", "439921201503020351", "安平县"])
    ws.write_row(2, 0, [2, "李四", "439921201503020343", "安平县"])
    wb.close()
    con = connect(tmp_path / "m.duckdb")
    report = ingest(con, [src], settings)
    stored = con.execute("SELECT DISTINCT reason, message FROM set_aside WHERE path = '缺列台帐.xlsx'").fetchall()
    con.close()
    f = next(f for f in report["files"] if f["path"] == "缺列台帐.xlsx")
    assert f["rows_read"] == 2 and f["rows_set_aside"] == 2 and f["rows_loaded"] == 0
    assert f["set_aside_by_reason"] == {"missing_column": 2}
    assert "村(社区)或区划代码" in f["message"]           # one message for the file
    assert len(stored) == 1 and stored[0][0] == "missing_column"

def test_shapefile_in_gauss_kruger_with_gbk_names(small_city_dir, settings, tmp_path):
    """Boundaries from a CGCS2000 3-degree Gauss-Krüger zone Shapefile (.cpg = GBK)
    load with the same codes and (nearly) the same geometry."""
    g = gpd.read_file(small_city_dir / "boundaries" / "村级界线.shp", encoding="GBK")
    shp_dir = tmp_path / "shp"
    shp_dir.mkdir()
    g = g.rename(columns={"QHDM": "XZQDM", "QHMC": "XZQMC"})[["XZQDM", "XZQMC", "geometry"]]
    g.to_crs(4545).to_file(shp_dir / "村界.shp", encoding="GBK")   # CGCS2000 / 3-degree GK CM 111E
    assert "GBK" in (shp_dir / "村界.cpg").read_text().upper()
    con = connect(tmp_path / "shp.duckdb")
    report = ingest(con, [shp_dir], settings)
    names = dict(con.execute("SELECT code, name FROM units WHERE level = 'village'").fetchall())
    area = con.execute("SELECT sum(area_km2) FROM units WHERE level = 'village'").fetchone()[0]
    con.close()
    assert report["rows_loaded"] == len(g)
    assert names == dict(zip(g["XZQDM"], g["XZQMC"]))
    expected_area = g.to_crs("+proj=aea +lat_1=25 +lat_2=47 +lon_0=105 +datum=WGS84").area.sum() / 1e6
    assert area == pytest.approx(expected_area, rel=1e-3)

def test_age_limit_is_a_setting(small_city_dir, tmp_path):
    from dataclasses import replace

    from liushou_geo.settings import load_settings

    s16 = replace(load_settings(), age_limit=16)
    con = connect(tmp_path / "a16.duckdb")
    ingest(con, [small_city_dir], s16)
    oldest = con.execute("SELECT max(date_diff('year', birth, as_of)) FROM registry_rows").fetchone()[0]
    over = con.execute("SELECT count(*) FROM set_aside WHERE reason = 'over_age_limit'").fetchone()[0]
    con.close()
    assert oldest <= 16
    assert over > 0

def test_new_extract_from_a_unit_replaces_its_previous_one(small_city_dir, settings, tmp_path):
    """The same committee re-sends its extract (same 填报日期) under another file name."""
    import openpyxl

    src = tmp_path / "city"
    shutil.copytree(small_city_dir, src)
    con = connect(tmp_path / "r.duckdb")
    ingest(con, [src], settings)
    def plain(p):       # one sheet, a one-row header: only the title is merged
        wb = openpyxl.load_workbook(p)
        return len(wb.sheetnames) == 1 and all(r.min_row == 1 for r in wb.active.merged_cells.ranges)

    old = next(p for p in sorted((src / "registry" / "villages").rglob("*.xlsx")) if plain(p))
    rel = old.relative_to(src).as_posix()
    old_loaded = con.execute("""SELECT count(*) FROM registry_rows r JOIN ingested_files f USING (file_id)
                                WHERE f.path = ?""", [rel]).fetchone()[0]
    before = con.execute("SELECT count(*) FROM registry_rows").fetchone()[0]
    wb = openpyxl.load_workbook(old)
    ws = wb.active
    # Drop the first data row: find the header, delete the row below it.
    header = next(r for r in range(1, 6) if ws.cell(r, 2).value and "姓名" in str(ws.cell(r, 2).value))
    ws.delete_rows(header + 1)
    resent = tmp_path / "resent"
    resent.mkdir()
    wb.save(resent / f"{old.stem}（更正）.xlsx")
    report = ingest(con, [resent], settings)
    after = con.execute("SELECT count(*) FROM registry_rows").fetchone()[0]
    con.close()
    new_loaded = report["rows_loaded"]
    assert new_loaded in (old_loaded - 1, old_loaded)     # the dropped row may have been a defect
    assert after == before - old_loaded + new_loaded       # the old extract is gone, not added to
