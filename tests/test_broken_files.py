"""Deliberately broken files, one defect each: exact loaded / set-aside counts.

Each case writes one small file (or two) into a folder next to a copy of the
small city's boundaries and ingests the folder. Village, township and county
names and codes come from the ingested small city; ID numbers are made with
``idcard.make_id`` (area code = the county's 6 digits) and are valid on the
as-of date 2026-06-30 unless the case breaks them on purpose.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from liushou_geo import idcard
from liushou_geo.ingest import ingest
from liushou_geo.store import connect

AS_OF = dt.date(2026, 6, 30)
TODAY = dt.date(2026, 7, 15)          # passed to ingest: the run's "today"
BORN = dt.date(2015, 3, 2)
SERIAL_2015_03_02 = (BORN - dt.date(1899, 12, 30)).days   # 42065

HEADER = ["序号", "姓名", "性别", "身份证号", "出生日期", "县(市、区)", "乡镇(街道)", "村(社区)", "区划代码",
          "就读学校", "就学状态", "临时监护人", "联系卡", "结对帮扶人", "填报单位", "填报日期"]
NAMES = ["张子涵", "李雨桐", "王浩然", "刘欣怡", "陈宇轩", "杨梓萱", "赵一诺", "黄俊杰", "周佳怡", "吴思远",
         "徐子墨", "孙可欣", "胡嘉怡", "朱天佑"]


# -- the small city's units --------------------------------------------------

@dataclass(frozen=True)
class Village:
    code: str
    name: str
    kind: str
    township: str
    county: str
    lon: float
    lat: float

    @property
    def area(self) -> str:
        return self.code[:6]

    @property
    def committee(self) -> str:
        """The committee's full name, as it signs its extract."""
        return self.name[:-1] + "村民委员会" if self.kind == "村" else self.name + "居民委员会"


@dataclass
class City:
    villages: list[Village]
    v: Village         # a 村 whose name is unique in the city
    v2: Village        # another 村, in another township
    c: Village         # a 社区 whose name is unique in the city
    twin: list[Village]  # one name, several townships


@pytest.fixture(scope="module")
def city(small_db) -> City:
    con = connect(small_db[0], read_only=True)
    rows = con.execute("""SELECT v.code, v.name, v.kind, t.name, c.name, v.lon, v.lat FROM units v
                          JOIN units t ON t.code = v.parent_code JOIN units c ON c.code = t.parent_code
                          WHERE v.level = 'village' ORDER BY v.code""").fetchall()
    con.close()
    villages = [Village(*r) for r in rows]
    count = Counter(v.name for v in villages)
    unique = [v for v in villages if count[v.name] == 1 and len(v.name) >= 3]
    v = next(x for x in unique if x.kind == "村" and x.name.endswith("村"))
    v2 = next(x for x in unique if x.kind == "村" and x.name.endswith("村") and x.township != v.township)
    c = next(x for x in unique if x.kind == "居" and x.name.endswith("社区"))
    twin_name = next(n for n, k in count.items() if k > 1)
    twin = [x for x in villages if x.name == twin_name]
    return City(villages, v, v2, c, twin)


def make_id(village: Village, seq: int, born: dt.date = BORN, male: bool = True) -> str:
    return idcard.make_id(village.area, born, seq, male)


def child(village: Village, seq: int, born: dt.date = BORN, male: bool = True, **over) -> dict:
    """One valid registry row (header -> cell) for a child of a village."""
    row = {
        "序号": seq, "姓名": NAMES[seq % len(NAMES)], "性别": "男" if male else "女",
        "身份证号": make_id(village, seq, born, male), "出生日期": born.isoformat(),
        "县(市、区)": village.county, "乡镇(街道)": village.township, "村(社区)": village.name, "区划代码": None,
        "就读学校": f"{village.township}中心小学", "就学状态": "在校", "临时监护人": "张桂英", "联系卡": "是",
        "结对帮扶人": None, "填报单位": village.committee, "填报日期": AS_OF.isoformat(),
    }
    row.update(over)
    return row


def as_lists(header: list[str], rows: list[dict], keys: list[str] | None = None) -> list[list]:
    keys = keys or header
    return [[r.get(k) for k in keys] for r in rows]


# -- writers -----------------------------------------------------------------

def write_xlsx(path: Path, header: list, rows: list[list], above: list[list] = (), below: list[list] = (),
               merge_title: bool = True, sheets: dict[str, tuple] | None = None) -> None:
    """A workbook: rows above the header (a merged title), the header, data, rows below."""
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, (h, data, up, down) in (sheets or {"Sheet1": (header, rows, above, below)}).items():
        ws = wb.create_sheet(name)
        r = 1
        for line in up:
            for j, cell in enumerate(line, 1):
                ws.cell(r, j, cell)
            if merge_title and line and h and len([c for c in line if c is not None]) == 1:
                ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=len(h))
            r += 1
        if h:
            for j, cell in enumerate(h, 1):
                ws.cell(r, j, cell)
            r += 1
        for line in list(data) + list(down):
            for j, cell in enumerate(line, 1):
                if cell is not None:
                    ws.cell(r, j, cell)
            r += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)


def write_csv(path: Path, header: list, rows: list[list], encoding: str = "utf-8", above: list[list] = (),
              below: list[list] = (), delimiter: str = ",") -> None:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    for line in [*above, header, *rows, *below]:
        w.writerow(["" if c is None else c for c in line])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue().encode(encoding))


def registry_xlsx(path: Path, rows: list[dict], header: list[str] = HEADER, keys: list[str] | None = None,
                  **kw) -> None:
    write_xlsx(path, header, as_lists(header, rows, keys), **kw)


def title(village: Village) -> list:
    return [f"{village.township}{village.name}留守儿童信息台帐"]


# -- expectations --------------------------------------------------------------

def F(read: int, loaded: int, status: str = "loaded", **reasons: int) -> dict:
    assert read == loaded + sum(reasons.values()), "a case's own arithmetic"
    dup = reasons.pop("duplicate_row", 0)     # exact copies are counted once and reported apart
    return {"status": status, "rows_read": read, "rows_loaded": loaded, "rows_set_aside": read - loaded - dup,
            "rows_duplicate": dup, "set_aside_by_reason": reasons}


@dataclass
class Case:
    id: str
    build: Callable          # (folder, city) -> {path: F(...)}
    check: Callable | None = None   # (con, city, hasher, folder) -> None


CASES: list[Case] = []


def case(case_id: str, check: Callable | None = None):
    def register(fn):
        CASES.append(Case(case_id, fn, check))
        return fn
    return register


def loaded_rows(con, path: str) -> list[dict]:
    cur = con.execute("""SELECT r.* FROM registry_rows r JOIN ingested_files f USING (file_id)
                         WHERE f.path = ? ORDER BY r.sheet, r.row_no""", [path])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def set_aside_rows(con, path: str) -> list[tuple]:
    return con.execute("SELECT row_no, column_name, reason, message FROM set_aside WHERE path = ? ORDER BY row_no",
                       [path]).fetchall()


F1 = "虎山村留守儿童信息台帐.xlsx"   # file names are cosmetic; reporting units come from 填报单位


# ============================================================================
# Layout: header position, titles, blank rows, footers
# ============================================================================

def _check_rows(numbers):
    def check(con, city, hasher, folder):
        assert [r["row_no"] for r in loaded_rows(con, F1)] == numbers
    return check


@case("header_on_row1", _check_rows([2, 3, 4]))
def _(d, city):
    registry_xlsx(d / F1, [child(city.v, i) for i in (1, 2, 3)])
    return {F1: F(3, 3)}


@case("merged_title_header_on_row2", _check_rows([3, 4, 5]))
def _(d, city):
    registry_xlsx(d / F1, [child(city.v, i) for i in (1, 2, 3)], above=[title(city.v)])
    return {F1: F(3, 3)}


@case("title_and_subtitle_header_on_row3", _check_rows([4, 5, 6]))
def _(d, city):
    sub = [f"填报单位：{city.v.committee}    填报日期：2026-06-30"]
    registry_xlsx(d / F1, [child(city.v, i) for i in (1, 2, 3)], above=[title(city.v), sub])
    return {F1: F(3, 3)}


@case("title_subtitle_blank_header_on_row4", _check_rows([5, 6, 7]))
def _(d, city):
    sub = [f"填报单位：{city.v.committee}    填报日期：2026-06-30"]
    registry_xlsx(d / F1, [child(city.v, i) for i in (1, 2, 3)], above=[title(city.v), sub, []])
    return {F1: F(3, 3)}


@case("blank_rows_inside_data", _check_rows([3, 5, 6, 9]))
def _(d, city):
    rows = as_lists(HEADER, [child(city.v, i) for i in (1, 2, 3, 4)])
    blank, spaces = [None] * len(HEADER), ["  "] * 3 + [None] * (len(HEADER) - 3)
    write_xlsx(d / F1, HEADER, [rows[0], blank, rows[1], rows[2], spaces, [""] * len(HEADER), rows[3]],
               above=[title(city.v)])
    return {F1: F(4, 4)}


@case("total_signature_and_notes_below", _check_rows([3, 4, 5]))
def _(d, city):
    below = [["合计", "3人"], ["填表人：刘芳    审核人：陈华    联系电话：0739-1758162"], [],
             ["注：本表一式两份，村委会和乡镇各存一份。"], ["说明：", "父母一方外出务工", "另一方无监护能力"]]
    registry_xlsx(d / F1, [child(city.v, i) for i in (1, 2, 3)], above=[title(city.v)], below=below)
    return {F1: F(3, 3)}


@case("spaced_total_row_and_signatures", _check_rows([3, 4, 5]))
def _(d, city):
    below = [["合  计", None, "3人"], [None, "制表：刘芳", None, "审核：陈华"], ["单位（盖章）："]]
    registry_xlsx(d / F1, [child(city.v, i) for i in (1, 2, 3)], above=[title(city.v)], below=below)
    return {F1: F(3, 3)}


@case("note_below_data_without_total_row", _check_rows([3, 4, 5]))
def _(d, city):
    below = [["以上信息经核实无误，如有变动请及时报乡镇妇联。"]]
    registry_xlsx(d / F1, [child(city.v, i) for i in (1, 2, 3)], above=[title(city.v)], below=below)
    return {F1: F(3, 3)}


@case("several_sheets_add_up")
def _(d, city):
    h = HEADER
    sheets = {
        "一组": (h, as_lists(h, [child(city.v, 1), child(city.v, 2)]), [title(city.v)], [["合计", "2人"]]),
        "填表说明": (None, [["1. 身份证号请设为文本格式"], ["2. 日期写成 2015-03-02"]], [], []),
        "二组": (h, as_lists(h, [child(city.v, 3), child(city.v, 4), child(city.v, 5)]), [], []),
    }
    write_xlsx(d / F1, None, [], sheets=sheets)
    return {F1: F(5, 5)}


# ============================================================================
# Headers: spellings, order, extra and missing columns
# ============================================================================

def _renamed(d, city, rename: dict[str, str]) -> dict:
    header = [rename.get(h, h) for h in HEADER]
    registry_xlsx(d / F1, [child(city.v, i) for i in (1, 2, 3)], header=header, keys=HEADER,
                  above=[title(city.v)])
    return {F1: F(3, 3)}


def _check_placed(con, city, hasher, folder):
    rows = loaded_rows(con, F1)
    assert rows and all(r["village_code"] == city.v.code for r in rows)
    assert [r["child_key"] for r in rows] == [hasher(make_id(city.v, i)) for i in range(1, len(rows) + 1)]


@case("header_fullwidth_brackets", _check_placed)
def _(d, city):
    return _renamed(d, city, {"县(市、区)": "县（市、区）", "乡镇(街道)": "乡镇（街道）", "村(社区)": "村（社区）"})


@case("header_line_breaks", _check_placed)
def _(d, city):
    return _renamed(d, city, {"身份证号": "身份证\n号码", "出生日期": "出生\n日期", "村(社区)": "村\r\n(社区)",
                              "填报日期": "填报\n日期"})


@case("header_spaces", _check_placed)
def _(d, city):
    return _renamed(d, city, {"姓名": "姓  名", "身份证号": " 身份证号 ", "村(社区)": "村 (社区)",
                              "填报日期": "填报\u3000日期", "性别": "性　别"})


@case("header_synonyms_id_number_village_residents", _check_placed)
def _(d, city):
    return _renamed(d, city, {"身份证号": "身份证号码", "村(社区)": "村（居）", "乡镇(街道)": "乡镇",
                              "县(市、区)": "县区", "姓名": "儿童姓名"})


@case("header_synonyms_citizen_number", _check_placed)
def _(d, city):
    return _renamed(d, city, {"身份证号": "公民身份号码", "村(社区)": "村（居）委会", "出生日期": "出生年月日",
                              "姓名": "学生姓名"})


@case("header_with_hints_and_required_marks", _check_placed)
def _(d, city):
    return _renamed(d, city, {"身份证号": "身份证号（18位）", "姓名": "*姓名", "联系卡": "联系卡(是/否)",
                              "出生日期": "出生日期（年月日）", "村(社区)": "*村（社区）"})


@case("columns_in_another_order", _check_placed)
def _(d, city):
    header = list(reversed(HEADER))
    registry_xlsx(d / F1, [child(city.v, i) for i in (1, 2, 3)], header=header, above=[title(city.v)])
    return {F1: F(3, 3)}


@case("extra_columns", _check_placed)
def _(d, city):
    header = ["序号", "户籍地址", *HEADER[1:], "备注"]
    rows = [child(city.v, i, **{"户籍地址": f"{city.v.name}{i}组", "备注": "父母均外出"}) for i in (1, 2, 3)]
    registry_xlsx(d / F1, rows, header=header, above=[title(city.v)])
    return {F1: F(3, 3)}


def _check_minimal(con, city, hasher, folder):
    rows = loaded_rows(con, F1)
    assert [r["birth"] for r in rows] == [BORN, BORN, dt.date(2016, 12, 31)]      # from the ID
    assert [r["sex"] for r in rows] == ["男", "女", "女"]                           # from the ID
    assert {r["reporting_unit"] for r in rows} == {"虎山村"}                       # from the file name
    assert {r["source_kind"] for r in rows} == {"village"}


@case("missing_optional_columns", _check_minimal)
def _(d, city):
    header = ["姓名", "身份证号", "乡镇(街道)", "村(社区)", "填报日期"]
    rows = [child(city.v, 1), child(city.v, 2, male=False), child(city.v, 3, born=dt.date(2016, 12, 31), male=False)]
    registry_xlsx(d / F1, rows, header=header, above=[title(city.v)])
    return {F1: F(3, 3)}


def _check_one_message(con, city, hasher, folder):
    stored = set_aside_rows(con, F1)
    assert len({(r[2], r[3]) for r in stored}) == 1                   # one message for the whole file


@case("missing_required_village_columns", _check_one_message)
def _(d, city):
    header = ["序号", "姓名", "性别", "身份证号", "出生日期", "县(市、区)", "填报日期"]
    registry_xlsx(d / F1, [child(city.v, i) for i in (1, 2, 3)], header=header, above=[title(city.v)])
    return {F1: F(3, 0, missing_column=3)}


@case("missing_required_id_column", _check_one_message)
def _(d, city):
    header = ["序号", "姓名", "性别", "出生日期", "乡镇(街道)", "村(社区)", "填报日期"]
    registry_xlsx(d / F1, [child(city.v, i) for i in (1, 2, 3)], header=header, above=[title(city.v)])
    return {F1: F(3, 0, missing_column=3)}


@case("no_as_of_date_anywhere")
def _(d, city):
    header = [h for h in HEADER if h != "填报日期"]
    registry_xlsx(d / F1, [child(city.v, i) for i in (1, 2)], header=header)
    return {F1: F(2, 0, missing_as_of=2)}


@case("as_of_blank_on_one_row_uses_the_files")
def _(d, city):
    registry_xlsx(d / F1, [child(city.v, 1), child(city.v, 2, **{"填报日期": None}), child(city.v, 3)])
    return {F1: F(3, 3)}


# ============================================================================
# File formats: CSV encodings, delimiters, old .xls
# ============================================================================

CSV1 = "城关区留守儿童信息台帐.csv"


def _check_csv(con, city, hasher, folder):
    rows = loaded_rows(con, CSV1)
    assert [r["name"] for r in rows] == [NAMES[1], NAMES[2], NAMES[3]]
    assert {r["village_code"] for r in rows} == {city.c.code}


@case("csv_gb18030_with_title_and_total", _check_csv)
def _(d, city):
    write_csv(d / CSV1, HEADER, as_lists(HEADER, [child(city.c, i) for i in (1, 2, 3)]), "gb18030",
              above=[title(city.c) + [""] * (len(HEADER) - 1)], below=[["合计", "3人"] + [""] * (len(HEADER) - 2)])
    return {CSV1: F(3, 3)}


@case("csv_utf8_bom", _check_csv)
def _(d, city):
    write_csv(d / CSV1, HEADER, as_lists(HEADER, [child(city.c, i) for i in (1, 2, 3)]), "utf-8-sig")
    return {CSV1: F(3, 3)}


@case("csv_utf8", _check_csv)
def _(d, city):
    write_csv(d / CSV1, HEADER, as_lists(HEADER, [child(city.c, i) for i in (1, 2, 3)]), "utf-8")
    return {CSV1: F(3, 3)}


@case("tab_separated_txt")
def _(d, city):
    write_csv(d / "台帐.txt", HEADER, as_lists(HEADER, [child(city.c, i) for i in (1, 2, 3)]), "gb18030",
              delimiter="\t")
    return {"台帐.txt": F(3, 3)}


def _check_xls(con, city, hasher, folder):
    rows = loaded_rows(con, "虎山村留守儿童信息台帐.xls")
    assert [r["birth"] for r in rows] == [BORN] * 3
    assert [r["child_key"] for r in rows] == [hasher(make_id(city.v, i)) for i in (1, 2, 3)]


@case("old_xls_workbook", _check_xls)
def _(d, city):
    xlwt = pytest.importorskip("xlwt", reason="xlwt (writes old .xls files) is not installed")
    wb = xlwt.Workbook(encoding="utf-8")
    ws = wb.add_sheet("Sheet1")
    date_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    ws.write_merge(0, 0, 0, len(HEADER) - 1, title(city.v)[0])
    for j, h in enumerate(HEADER):
        ws.write(1, j, h)
    for i, row in enumerate([child(city.v, n) for n in (1, 2, 3)], start=2):
        for j, h in enumerate(HEADER):
            value = row[h]
            if h == "出生日期":
                ws.write(i, j, dt.datetime.combine(BORN, dt.time()), date_style)
            elif value is not None:
                ws.write(i, j, value)
    ws.write(5, 0, "合计")
    wb.save(str(d / "虎山村留守儿童信息台帐.xls"))
    return {"虎山村留守儿童信息台帐.xls": F(3, 3)}


# ============================================================================
# ID numbers
# ============================================================================

def _id_with_x(village: Village) -> tuple[int, str]:
    for seq in range(1, 500):
        n = make_id(village, seq)
        if n.endswith("X"):
            return seq, n
    raise AssertionError("no ID with an X check digit")


def _check_keys(ids: Callable):
    def check(con, city, hasher, folder):
        rows = loaded_rows(con, F1)
        assert [r["child_key"] for r in rows] == [hasher(i) for i in ids(city)]
        assert [r["id_masked"] for r in rows] == [idcard.mask(i) for i in ids(city)]
    return check


@case("id_with_spaces_and_trailing_blanks", _check_keys(lambda c: [make_id(c.v, 1), make_id(c.v, 2), make_id(c.v, 3)]))
def _(d, city):
    a, b, c = (make_id(city.v, i) for i in (1, 2, 3))
    rows = [child(city.v, 1, **{"身份证号": f"{a[:6]} {a[6:14]} {a[14:]}"}),
            child(city.v, 2, **{"身份证号": f"  {b}\u3000 "}),
            child(city.v, 3, **{"身份证号": f"{c[:6]}\u00a0{c[6:]}\t"})]
    registry_xlsx(d / F1, rows)
    return {F1: F(3, 3)}


@case("id_fullwidth_digits", _check_keys(lambda c: [make_id(c.v, 1), make_id(c.v, 2)]))
def _(d, city):
    full = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
    rows = [child(city.v, 1, **{"身份证号": make_id(city.v, 1).translate(full)}),
            child(city.v, 2, **{"身份证号": make_id(city.v, 2)[:9].translate(full) + make_id(city.v, 2)[9:]})]
    registry_xlsx(d / F1, rows)
    return {F1: F(2, 2)}


@case("id_lowercase_x_and_apostrophe", _check_keys(lambda c: [_id_with_x(c.v)[1], make_id(c.v, 600)]))
def _(d, city):
    seq, with_x = _id_with_x(city.v)
    rows = [child(city.v, seq, **{"身份证号": with_x.lower()}),
            child(city.v, 600, **{"身份证号": "'" + make_id(city.v, 600)})]
    registry_xlsx(d / F1, rows)
    return {F1: F(2, 2)}


@case("id_stored_as_number_excel_rounded")
def _(d, city):
    rows = [child(city.v, 1), child(city.v, 2, **{"身份证号": float(make_id(city.v, 2))}),
            child(city.v, 3, **{"身份证号": int(make_id(city.v, 3)[:17] + "0")})]
    registry_xlsx(d / F1, rows)
    return {F1: F(3, 1, id_excel_rounded=2)}


def _check_rounded_message(con, city, hasher, folder):
    raw = make_id(city.c, 2)
    for row_no, column, reason, message in set_aside_rows(con, CSV1):
        assert column == "身份证号" and "文本" in message and raw not in message


@case("id_rounded_as_text_in_csv", _check_rounded_message)
def _(d, city):
    n = make_id(city.c, 2)
    rows = [child(city.c, 1), child(city.c, 2, **{"身份证号": f"{n[0]}.{n[1:6]}E+17"}),
            child(city.c, 3, **{"身份证号": make_id(city.c, 3)[:15] + "000"}),
            child(city.c, 4, **{"身份证号": f"{n[0]}.{n[1:6]}e17"})]
    write_csv(d / CSV1, HEADER, as_lists(HEADER, rows), "gb18030")
    return {CSV1: F(4, 1, id_excel_rounded=3)}


@case("id_wrong_check_digit")
def _(d, city):
    n = make_id(city.v, 2)
    wrong = n[:17] + ("0" if n[17] != "0" else "1")
    swapped = n[:14] + n[15] + n[14] + n[16:]    # two digits swapped in the sequence
    rows = [child(city.v, 1), child(city.v, 2, **{"身份证号": wrong})]
    if not idcard.is_valid(swapped):
        rows.append(child(city.v, 3, **{"身份证号": swapped}))
    registry_xlsx(d / F1, rows)
    return {F1: F(len(rows), 1, id_check_digit=len(rows) - 1)}


@case("id_wrong_length_or_characters")
def _(d, city):
    n = make_id(city.v, 2)
    rows = [child(city.v, 1), child(city.v, 2, **{"身份证号": n[:17]}), child(city.v, 3, **{"身份证号": n + "1"}),
            child(city.v, 4, **{"身份证号": n[:10] + "O" + n[11:]}), child(city.v, 5, **{"身份证号": n[:15]})]
    registry_xlsx(d / F1, rows)
    return {F1: F(5, 1, id_format=4)}


@case("id_with_impossible_birth_date")
def _(d, city):
    body = f"{city.v.area}20150230001"
    registry_xlsx(d / F1, [child(city.v, 1), child(city.v, 2, **{"身份证号": body + idcard.check_digit(body),
                                                                  "出生日期": None})])
    return {F1: F(2, 1, id_format=1)}


@case("id_blank")
def _(d, city):
    rows = [child(city.v, 1), child(city.v, 2, **{"身份证号": None}), child(city.v, 3, **{"身份证号": "  "})]
    registry_xlsx(d / F1, rows)
    return {F1: F(3, 1, missing_id=2)}


# ============================================================================
# Dates, sex, age
# ============================================================================

DATE_FORMS = ["2015-03-02", "2015/3/2", "2015年3月2日", "20150302", 20150302, SERIAL_2015_03_02, BORN,
              dt.datetime(2015, 3, 2), None, "2015.3.2", "２０１５年３月２日", "2015-03-02 00:00:00", " 2015-3-2 "]


def _check_births(con, city, hasher, folder):
    rows = loaded_rows(con, F1)
    assert [r["birth"] for r in rows] == [BORN] * len(DATE_FORMS)
    assert [r["child_key"] for r in rows] == [hasher(make_id(city.v, i)) for i in range(1, len(DATE_FORMS) + 1)]


@case("birth_date_in_every_form", _check_births)
def _(d, city):
    rows = [child(city.v, i, **{"出生日期": form}) for i, form in enumerate(DATE_FORMS, 1)]
    registry_xlsx(d / F1, rows)
    return {F1: F(len(DATE_FORMS), len(DATE_FORMS))}


@case("birth_date_contradicts_id")
def _(d, city):
    rows = [child(city.v, 1), child(city.v, 2, **{"出生日期": "2015-03-12"}),
            child(city.v, 3, **{"出生日期": dt.date(2014, 3, 2)})]
    registry_xlsx(d / F1, rows)
    return {F1: F(3, 1, birth_mismatch=2)}


@case("birth_date_unreadable")
def _(d, city):
    rows = [child(city.v, 1), child(city.v, 2, **{"出生日期": "2015-02-30"}),
            child(city.v, 3, **{"出生日期": "不详"})]
    registry_xlsx(d / F1, rows)
    return {F1: F(3, 1, bad_date=2)}


@case("future_birth_and_as_of_dates")
def _(d, city):
    later = dt.date(2026, 9, 1)
    rows = [child(city.v, 1), child(city.v, 2, born=later),
            child(city.v, 3, **{"出生日期": None, "身份证号": make_id(city.v, 3, born=later)}),
            child(city.v, 4, **{"填报日期": "2026-08-01"})]       # after the run's today
    registry_xlsx(d / F1, rows)
    return {F1: F(4, 1, future_date=3)}


@case("sex_contradicts_id_or_unreadable")
def _(d, city):
    rows = [child(city.v, 1), child(city.v, 2, **{"性别": "女"}), child(city.v, 3, male=False, **{"性别": "男"}),
            child(city.v, 4, **{"性别": "未知"}), child(city.v, 5, **{"性别": None})]
    registry_xlsx(d / F1, rows)
    return {F1: F(5, 2, sex_mismatch=2, bad_sex=1)}


@case("over_the_age_limit")
def _(d, city):
    rows = [child(city.v, 1, born=dt.date(2008, 7, 1)),        # 17 on 2026-06-30
            child(city.v, 2, born=dt.date(2008, 6, 30)),       # 18 that day
            child(city.v, 3, born=dt.date(2005, 1, 9))]
    registry_xlsx(d / F1, rows)
    return {F1: F(3, 1, over_age_limit=2)}


@case("blank_name_and_bad_contact_card")
def _(d, city):
    rows = [child(city.v, 1), child(city.v, 2, **{"姓名": None}), child(city.v, 3, **{"联系卡": "待定"}),
            child(city.v, 4, **{"联系卡": "√"}), child(city.v, 5, **{"联系卡": "否"})]
    registry_xlsx(d / F1, rows)
    return {F1: F(5, 3, missing_name=1, bad_yes_no=1)}


# ============================================================================
# Villages: codes, names, suffixes
# ============================================================================

def _check_codes(expected: Callable):
    def check(con, city, hasher, folder):
        assert [r["village_code"] for r in loaded_rows(con, F1)] == expected(city)
    return check


@case("village_by_code_only", _check_codes(lambda c: [c.v.code, c.v2.code, c.c.code]))
def _(d, city):
    rows = [child(city.v, 1, **{"区划代码": city.v.code, "村(社区)": None, "乡镇(街道)": None}),
            child(city.v2, 2, **{"区划代码": float(city.v2.code), "村(社区)": "旧名村"}),   # a number cell
            child(city.c, 3, **{"区划代码": f" {city.c.code} ", "村(社区)": city.v.name})]   # code wins over names
    registry_xlsx(d / F1, rows)
    return {F1: F(3, 3)}


SUFFIXES = {
    "村委会": lambda v: v.name[:-1] + "村委会",
    "村民委员会": lambda v: v.name[:-1] + "村民委员会",
    "居委会": lambda c: c.name[:-2] + "居委会",
    "社区居委会": lambda c: c.name + "居委会",
    "社区居民委员会": lambda c: c.name + "居民委员会",
    "none": None,
}


SUFFIX_IDS = {"村委会": "cunweihui", "村民委员会": "cunmin_weiyuanhui", "居委会": "juweihui",
              "社区居委会": "shequ_juweihui", "社区居民委员会": "shequ_jumin_weiyuanhui", "none": "none"}


def _suffix_case(suffix: str):
    def build(d, city):
        if suffix == "none":
            rows = [child(city.v, 1, **{"村(社区)": city.v.name[:-1]}),
                    child(city.c, 2, **{"村(社区)": city.c.name[:-2]})]
            codes = [city.v.code, city.c.code]
        else:
            target = city.v if suffix.startswith("村") else city.c
            rows = [child(target, 1, **{"村(社区)": SUFFIXES[suffix](target)})]
            codes = [target.code]
        registry_xlsx(d / F1, rows)
        build.codes = codes
        return {F1: F(len(rows), len(rows))}

    def check(con, city, hasher, folder):
        assert [r["village_code"] for r in loaded_rows(con, F1)] == build.codes

    CASES.append(Case(f"village_name_suffix_{SUFFIX_IDS[suffix]}", build, check))


for _suffix in SUFFIXES:
    _suffix_case(_suffix)


@case("village_names_loosely_written", _check_codes(lambda c: [c.v.code, c.v.code, c.v.code]))
def _(d, city):
    v = city.v
    rows = [child(v, 1, **{"乡镇(街道)": v.township[:-1] if v.township.endswith(("镇", "乡")) else v.township}),
            child(v, 2, **{"县(市、区)": v.county[:-1], "村(社区)": " ".join(v.name)}),
            child(v, 3, **{"县(市、区)": None, "乡镇(街道)": None})]    # the name is unique in the city
    registry_xlsx(d / F1, rows)
    return {F1: F(3, 3)}


@case("same_village_name_in_two_townships", _check_codes(lambda c: [t.code for t in c.twin]))
def _(d, city):
    rows = [child(t, i) for i, t in enumerate(city.twin, 1)]
    registry_xlsx(d / F1, rows)
    return {F1: F(len(rows), len(rows))}


@case("unknown_or_missing_village")
def _(d, city):
    rows = [child(city.v, 1), child(city.v, 2, **{"村(社区)": "不存在村"}),
            child(city.v, 3, **{"村(社区)": None}),
            child(city.v, 4, **{"乡镇(街道)": "不存在镇", "县(市、区)": "不存在县"})]
    registry_xlsx(d / F1, rows)
    return {F1: F(4, 1, unknown_village=2, missing_village=1)}


@case("unknown_village_code", _check_codes(lambda c: [c.v.code, c.v.code]))
def _(d, city):
    rows = [child(city.v, 1),
            child(city.v, 2, **{"区划代码": city.v.code[:9] + "999"}),                  # names still find it
            child(city.v, 3, **{"区划代码": city.v.code[:9] + "999", "村(社区)": "不存在村"}),
            child(city.v, 4, **{"区划代码": "4399", "村(社区)": None})]
    registry_xlsx(d / F1, rows)
    return {F1: F(4, 2, unknown_village_code=2)}


# ============================================================================
# Duplicates and several sources
# ============================================================================

def _check_children(n: int):
    def check(con, city, hasher, folder):
        assert con.execute("SELECT count(*) FROM children").fetchone()[0] == n
    return check


@case("exact_duplicate_row", _check_children(2))
def _(d, city):
    a = child(city.v, 1)
    rows = [a, child(city.v, 2), dict(a, **{"序号": 3})]       # a copy, renumbered
    registry_xlsx(d / F1, rows)
    return {F1: F(3, 2, duplicate_row=1)}


@case("same_child_twice_with_different_details", _check_children(1))
def _(d, city):
    rows = [child(city.v, 1), child(city.v, 1, **{"序号": 2, "临时监护人": "李秀英", "结对帮扶人": "王老师"})]
    registry_xlsx(d / F1, rows)
    return {F1: F(2, 2)}


SCHOOL = "竹园镇中心小学留守儿童信息台帐.xlsx"


def _check_two_sources(con, city, hasher, folder):
    rows = con.execute("SELECT child_key, village_code, sources, in_school_file, in_village_file, paired "
                       "FROM children").fetchall()
    assert rows == [(hasher(make_id(city.v, 1)), city.v.code, 2, True, True, True)]
    assert loaded_rows(con, SCHOOL)[0]["source_kind"] == "school"
    assert loaded_rows(con, F1)[0]["source_kind"] == "village"


@case("same_child_in_school_file_and_village_file", _check_two_sources)
def _(d, city):
    school = f"{city.v.township}中心小学"
    # The school puts the child in another village (its own records are older).
    registry_xlsx(d / SCHOOL, [child(city.v, 1, **{"县(市、区)": city.v2.county, "乡镇(街道)": city.v2.township,
                                                   "村(社区)": city.v2.name, "填报单位": school,
                                                   "结对帮扶人": "王老师"})])
    registry_xlsx(d / F1, [child(city.v, 1)])
    return {SCHOOL: F(1, 1), F1: F(1, 1)}


# ============================================================================
# Files that cannot be read
# ============================================================================

@case("not_a_spreadsheet_with_xlsx_name", _check_children(2))
def _(d, city):
    (d / "坏文件.xlsx").write_bytes(b"PK\x03\x04 this is not really a workbook")
    (d / "网页导出.xls").write_text("<html><body><table><tr><td>姓名</td></tr></table></body></html>",
                                    encoding="utf-8")
    (d / "空文件.xlsx").write_bytes(b"")
    registry_xlsx(d / F1, [child(city.v, 1), child(city.v, 2)])
    return {"坏文件.xlsx": F(0, 0, "error"), "网页导出.xls": F(0, 0, "unrecognised"), "空文件.xlsx": F(0, 0, "error"),
            F1: F(2, 2)}


@case("no_recognisable_header")
def _(d, city):
    write_xlsx(d / "经费统计.xlsx", ["项目", "金额", "备注"], [["活动经费", 3000, None], ["培训费", 1200, None]],
               above=[["2026年经费统计"]])
    write_csv(d / "空表.csv", [], [])
    return {"经费统计.xlsx": F(0, 0, "unrecognised"), "空表.csv": F(0, 0, "unrecognised")}


# ============================================================================
# Facility and service files
# ============================================================================

ROOM_HEADER = ["名称", "区划代码", "县(市、区)", "乡镇(街道)", "村(社区)", "依托单位", "经度", "纬度", "建成日期",
               "投入资金(元)", "状态"]


def _check_rooms(con, city, hasher, folder):
    got = con.execute("SELECT name, village_code, status FROM rooms ORDER BY row_no").fetchall()
    assert got == [("一号活动室", city.v.code, "在用"), ("五号活动室", city.v2.code, "在建")]


@case("rooms_bad_status_and_coordinates", _check_rooms)
def _(d, city):
    v, v2 = city.v, city.v2
    lon, lat = v2.lon, v2.lat          # a point inside the village
    rows = [
        ["一号活动室", v.code, v.county, v.township, v.name, v.committee, None, None, dt.date(2020, 5, 1), 30000, "在用"],
        ["二号活动室", v.code, None, None, None, v.committee, None, None, None, None, "使用中"],
        ["三号活动室", v.code, None, None, None, v.committee, 200.5, 27.8, None, None, "在用"],
        ["四号活动室", v.code, None, None, None, v.committee, 27.8, 112.5, None, None, "停用"],   # swapped
        ["五号活动室", None, None, None, None, v2.committee, lon, lat, None, None, "在建"],       # placed by its point
        ["六号活动室", v.code, None, None, None, v.committee, 112.5, None, None, None, "在用"],
    ]
    write_xlsx(d / "活动室.xlsx", ROOM_HEADER, rows)
    return {"活动室.xlsx": F(6, 2, bad_status=1, bad_coordinates=3)}


@case("terminals_bad_values")
def _(d, city):
    v = city.v
    header = ["单位名称", "区划代码", "县(市、区)", "乡镇(街道)", "村(社区)", "单位类型", "亲情电话终端数", "邮政信箱"]
    rows = [[v.committee, v.code, None, None, None, "村委会", 2, "是"],
            [v.committee, v.code, None, None, None, "村委会", "两台", "是"],
            [v.committee, v.code, None, None, None, "村委会", None, "否"],
            [v.committee, v.code, None, None, None, "村委会", 1, "不清楚"],
            ["某某小学", None, v.county, v.township, "不存在村", "学校", 1, "是"]]
    write_xlsx(d / "亲情电话与信箱.xlsx", header, rows)
    return {"亲情电话与信箱.xlsx": F(5, 1, bad_number=1, missing_value=1, bad_yes_no=1, unknown_village=1)}


@case("parent_school_attendance_ids")
def _(d, city):
    n = make_id(city.v, 1)
    header = ["监护人姓名", "儿童身份证号", "培训日期", "培训主题"]
    rows = [["张桂英", n, "2026-03-01", "家庭教育"], ["张桂英", float(n[:17] + "1"), "2026-03-01", "安全"],
            ["张桂英", n[:17] + ("0" if n[17] != "0" else "1"), "2026-03-01", "安全"],
            ["张桂英", n[:16], "2026-03-01", "安全"],
            ["张桂英", n, None, "安全"], ["张桂英", None, "2026-04-01", "安全"]]
    write_xlsx(d / "家长学校培训记录.xlsx", header, rows)
    return {"家长学校培训记录.xlsx": F(6, 1, id_excel_rounded=1, id_check_digit=1, id_format=1, missing_value=1,
                                       missing_id=1)}


# ============================================================================
# The test
# ============================================================================

@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_broken_file(case: Case, city, small_city_dir, settings, hasher, tmp_path):
    folder = tmp_path / "in"
    shutil.copytree(small_city_dir / "boundaries", folder / "boundaries")
    expected = case.build(folder, city)
    con = connect(tmp_path / "t.duckdb")
    try:
        report = ingest(con, [folder], settings, today=TODAY)
        files = {f["path"]: f for f in report["files"]}
        got = {p: {k: files[p][k] for k in ("status", "rows_read", "rows_loaded", "rows_set_aside",
                                              "rows_duplicate", "set_aside_by_reason")}
               for p in files if p in expected}
        assert got == expected
        others = {p: f["status"] for p, f in files.items() if p not in expected}
        assert set(others.values()) <= {"loaded", "unchanged"} and all(p.startswith("boundaries/") for p in others)
        # The store agrees with the report.
        for path, exp in expected.items():
            stored = dict(con.execute("SELECT reason, count(*) FROM set_aside WHERE path = ? GROUP BY 1",
                                      [path]).fetchall())
            dup = {"duplicate_row": exp["rows_duplicate"]} if exp["rows_duplicate"] else {}
            assert stored == {**exp["set_aside_by_reason"], **dup}, path
            for (_, _, _, message) in set_aside_rows(con, path):
                assert message
        assert report["files_with_errors"] == sum(e["status"] in ("error", "unrecognised") for e in expected.values())
        if case.check:
            case.check(con, city, hasher, folder)
    finally:
        con.close()


def test_as_of_date_from_the_line_above_the_header(small_city_dir, settings, tmp_path, small_con):
    """No 填报日期 column, but '填报日期：2026-06-30' written above the header: the rows load."""
    import xlsxwriter

    from liushou_geo import idcard
    from liushou_geo.ingest import ingest
    from liushou_geo.store import connect

    code, vname, town, county = small_con.execute(
        """SELECT v.code, v.name, t.name, c.name FROM units v JOIN units t ON t.code = v.parent_code
           JOIN units c ON c.code = t.parent_code WHERE v.level = 'village' ORDER BY v.code LIMIT 1""").fetchone()
    src = tmp_path / "city"
    shutil.copytree(small_city_dir / "boundaries", src / "boundaries")
    wb = xlsxwriter.Workbook(src / "台帐.xlsx")
    ws = wb.add_worksheet()
    ws.write(0, 0, f"{town}{vname}留守儿童信息台帐")
    ws.write(1, 0, "填报单位：某某村民委员会    填报日期：2026-06-30")
    ws.write_row(2, 0, ["序号", "姓名", "性别", "身份证号", "县(市、区)", "乡镇(街道)", "村(社区)"])
    born = __import__("datetime").date(2015, 3, 2)
    ws.write_row(3, 0, [1, "张三", "男", idcard.make_id(code[:6], born, 1, True), county, town, vname])
    wb.close()
    con = connect(tmp_path / "hint.duckdb")
    report = ingest(con, [src], settings)
    as_of = con.execute("SELECT as_of FROM registry_rows").fetchall()
    con.close()
    f = next(f for f in report["files"] if f["path"] == "台帐.xlsx")
    assert (f["rows_loaded"], f["rows_set_aside"]) == (1, 0)
    assert str(as_of[0][0]) == "2026-06-30"
