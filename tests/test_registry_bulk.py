"""The column-wise path for large tables (registry_bulk) loads and sets aside
exactly what the row path does.

The small demo city with many defects (5 % of rows) has all its registry
extracts written as one large GB18030 CSV (plus hand-made awkward rows: blank
lines, spaced and full-width IDs, an Excel-rounded ID, a duplicate, a note and
a 合计 row) and its parent-school attendance as one CSV. The same folder is
ingested twice, once row by row and once column-wise, and every loaded and
set-aside table is compared.
"""

from __future__ import annotations

import csv
import shutil

import pytest

from liushou_geo import ingest as ingest_mod
from liushou_geo import registry_bulk
from liushou_geo.demo import build_city, write_city
from liushou_geo.demo.writers import HEADERS
from liushou_geo.headers import map_header
from liushou_geo.readers import read_tables
from liushou_geo.store import connect

COMPARED = {
    "registry_rows": "row_no",
    "set_aside": "row_no, reason",
    "attendance": "row_no",
    "children": "child_key",
    "ingested_files": "path",
}


def _cell(v):
    return "" if v is None else str(v)


@pytest.fixture(scope="module")
def big_files(tmp_path_factory):
    """A folder: boundaries, one big registry CSV, one attendance CSV."""
    src = tmp_path_factory.mktemp("bulk_src")
    write_city(build_city(seed=5, scale="small", defect_rate=0.05), src)
    out = tmp_path_factory.mktemp("bulk_in")
    shutil.copytree(src / "boundaries", out / "boundaries")
    keys = map_header(HEADERS)
    index_of = {v: k for k, v in keys.items()}
    rows = []
    for f in sorted((src / "registry").rglob("*")):
        if f.suffix not in (".xlsx", ".csv"):
            continue
        for t in read_tables(f):
            for _, cells in t.rows:
                by_key = {k: cells[i] for k, i in t.columns.items() if i < len(cells)}
                rows.append([_cell(by_key.get(index_of[j])) for j in range(len(HEADERS))])
    for i, r in enumerate(rows):
        r[0] = str(i + 1)
    awkward = [list(rows[3]), list(rows[5]), list(rows[7]), list(rows[9])]
    awkward[0][3] = " ".join(awkward[0][3][i:i + 6] for i in (0, 6, 12))            # spaced ID
    awkward[1][3] = awkward[1][3].translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    awkward[2][3] = "4.30102E+17"                                                  # Excel-rounded
    awkward[3][0] = "x"                                                            # duplicate but for 序号
    rows[20:20] = awkward + [[""] * len(HEADERS)]
    with open(out / "全市留守儿童信息台帐.csv", "w", encoding="gb18030", newline="") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        w.writerow(HEADERS)
        w.writerows(rows)
        w.writerow(["合计", f"{len(rows)}人"] + [""] * (len(HEADERS) - 2))
        w.writerow(["填表人：张三"])
    att = read_tables(next((src / "services").glob("家长学校培训记录.*")))[0]
    with open(out / "家长学校培训记录.csv", "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["监护人姓名", "儿童身份证号", "培训日期", "培训主题"])
        for _, cells in att.rows:
            w.writerow([_cell(cells[att.columns[k]]) for k in ("guardian_name", "id_number", "trained_on", "topic")])
        w.writerow(["李四", "43010220120723290x", "2024-07-01", "网络沉迷预防"])
        w.writerow(["王五", "", "2024-07-01", ""])
    return out, len(rows)


def _ingest(folder, db, settings, monkeypatch, bulk: bool):
    calls = []
    real = registry_bulk.registry, registry_bulk.attendance
    if bulk:
        monkeypatch.setattr(ingest_mod, "BULK_MIN_BYTES", 0)
        monkeypatch.setattr(registry_bulk, "BULK_MIN_ROWS", 0)
        monkeypatch.setattr(registry_bulk, "registry", lambda *a, **k: calls.append("registry") or real[0](*a, **k))
        monkeypatch.setattr(registry_bulk, "attendance",
                            lambda *a, **k: calls.append("attendance") or real[1](*a, **k))
    else:
        monkeypatch.setattr(ingest_mod, "BULK_MIN_BYTES", 10**15)
    con = connect(db)
    report = ingest_mod.ingest(con, [folder], settings)
    monkeypatch.undo()
    return con, report, calls


def test_bulk_path_equals_row_path(big_files, tmp_path, settings, monkeypatch):
    folder, n_rows = big_files
    con_row, rep_row, _ = _ingest(folder, tmp_path / "row.duckdb", settings, monkeypatch, bulk=False)
    con_bulk, rep_bulk, calls = _ingest(folder, tmp_path / "bulk.duckdb", settings, monkeypatch, bulk=True)
    assert sorted(calls) == ["attendance", "registry"]
    assert rep_row["rows_read"] > n_rows
    for key in ("rows_read", "rows_loaded", "rows_set_aside", "set_aside_by_reason", "children"):
        assert rep_bulk[key] == rep_row[key], key
    # The defects of the demo and the awkward rows are all there.
    reasons = rep_row["set_aside_by_reason"]
    for r in ("id_check_digit", "duplicate_row", "id_excel_rounded", "over_age_limit", "sex_mismatch"):
        assert reasons.get(r), r
    for table, order in COMPARED.items():
        cols = "* EXCLUDE (ingested_at)" if table == "ingested_files" else "*"
        q = f"SELECT {cols} FROM {table} ORDER BY {order}, 1"  # fixed names
        a, b = con_row.execute(q).fetchall(), con_bulk.execute(q).fetchall()
        assert len(a) == len(b), table
        assert a == b, table
    con_row.close()
    con_bulk.close()
