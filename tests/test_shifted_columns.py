"""A file whose data is shifted one column right of its header (a clerk inserted a
cell): IDs land under 性别, phones under dates. Every row is set aside, and no
set-aside message — nor any text the store keeps — repeats an ID or a phone
number (issue #17, item 3).
"""

from __future__ import annotations

import datetime as dt
import re

import xlsxwriter

from liushou_geo import idcard
from liushou_geo.ingest import ingest
from liushou_geo.store import connect

from test_ingest_shapes import FLAT, TODAY, kid, write_boundaries

PHONE = "13812345678"


def test_no_id_or_phone_in_any_message(tmp_path, settings):
    folder = tmp_path / "in"
    write_boundaries(folder)
    rows = [kid("439901001202", s) for s in (1, 2, 3)]
    wb = xlsxwriter.Workbook(str(folder / "错位.xlsx"))
    ws = wb.add_worksheet()
    ws.write_row(0, 0, FLAT + ["监护人电话"])
    for i, r in enumerate(rows, start=1):
        cells = [r[h] for h in FLAT] + [PHONE]
        cells[10] = PHONE                       # 填报单位 holds a phone number
        ws.write_row(i, 0, [i, *cells[1:2], *cells[3:4], *cells[2:3], *cells[4:]])   # ID and sex swapped
    ws.write_row(4, 0, [4, "李四", "男", "43990120150302"] + [r for r in [rows[0][h] for h in FLAT[4:]]])
    ws.write_row(5, 0, [5, "王五", "男", rows[1]["身份证号"], "安平县", "东山镇", "张庄村", "", "学前", "李桂英",
                        "张庄村委会", PHONE])              # a phone as the as-of date
    other = kid("439901001202", 9)
    ws.write_row(6, 0, [6, "赵六", rows[2]["身份证号"], other["身份证号"]] + [other[h] for h in FLAT[4:]])  # an ID as 性别
    wb.close()
    con = connect(tmp_path / "t.duckdb")
    try:
        report = ingest(con, [folder], settings, today=TODAY)
        f = next(f for f in report["files"] if f["path"] == "错位.xlsx")
        assert (f["rows_read"], f["rows_loaded"]) == (6, 0)
        assert f["set_aside_by_reason"] == {"id_format": 4, "bad_date": 1, "bad_sex": 1}
        secrets = {r["身份证号"] for r in rows} | {PHONE, "43990120150302"}
        messages = [m for (m,) in con.execute("SELECT message FROM set_aside").fetchall()]
        assert len(messages) == 6
        for m in messages:
            assert not any(s in m for s in secrets), m
            assert not re.search(r"\d{9,}", m), m
        texts = con.execute("""SELECT table_name, column_name FROM duckdb_columns()
                               WHERE data_type = 'VARCHAR' AND NOT internal""").fetchall()
        for table, col in texts:
            for (v,) in con.execute(f'SELECT DISTINCT "{col}" FROM "{table}" WHERE "{col}" IS NOT NULL').fetchall():
                assert not any(s in v for s in secrets - {PHONE}), (table, col)
    finally:
        con.close()
    assert idcard.is_valid(rows[0]["身份证号"]) and dt.date(2026, 6, 30)
