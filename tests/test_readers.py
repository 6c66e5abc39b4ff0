"""One reading path for every table: file types told by content, hostile
workbooks refused before the parser, headers found by scoring (two-row
headers with merged groups flattened), merged cells filled down, data rows
decided by one function for files of every size.

Every file is made here, small, with the exact answer it must give.
"""

import codecs
import datetime as dt
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter
import xlwt

from liushou_geo import idcard
from liushou_geo.filetype import MSG_EMPTY, MSG_ENCRYPTED, MSG_PDF, check_xlsx
from liushou_geo.readers import ReadError, Skipped, Table, data_rows, peek_kind, read_file
from liushou_geo.sheets import cell_text

ZHUZHOU = Path(__file__).resolve().parents[2] / "shared" / "cases" / "zhuzhou"
if not ZHUZHOU.exists():
    ZHUZHOU = Path("/work/shared/cases/zhuzhou")

HEADER = ["序号", "姓名", "性别", "身份证号", "出生日期", "县(市、区)", "乡镇(街道)", "村(社区)", "联系卡", "填报日期"]
CHILD_IDS = ["430224201307268013", "43022420100727979X", "430224201304269707", "430224201308209947"]


def child(i: int, village: str = "米筛坪社区") -> list:
    return [i, f"儿童{i}", "男", CHILD_IDS[i % 4], "2013-07-26", "茶陵县", "下东街道", village, "是", "2026-06-30"]


def write_xlsx(path: Path, sheets: dict[str, list[list]], merges: dict[str, list[tuple]] | None = None) -> Path:
    """Sheets of rows (None = empty cell); merges as (r0, c0, r1, c1, text), 0-based."""
    wb = xlsxwriter.Workbook(str(path))
    for name, rows in sheets.items():
        ws = wb.add_worksheet(name)
        for r, row in enumerate(rows):
            for c, v in enumerate(row):
                if v is not None:
                    ws.write(r, c, v)
        for r0, c0, r1, c1, text in (merges or {}).get(name, []):
            ws.merge_range(r0, c0, r1, c1, text)
    wb.close()
    return path


def write_xls(path: Path, rows: list[list], merges: list[tuple] = ()) -> Path:
    wb = xlwt.Workbook()
    ws = wb.add_sheet("Sheet1")
    merged = {(r0, c0) for r0, c0, *_ in merges}
    for r, row in enumerate(rows):
        for c, v in enumerate(row):
            if v is not None and (r, c) not in merged:
                ws.write(r, c, v)
    for r0, c0, r1, c1, text in merges:
        ws.write_merge(r0, r1, c0, c1, text)
    wb.save(str(path))
    return path


def write_csv(path: Path, rows: list[list], encoding: str = "utf-8", sep: str = ",") -> Path:
    text = "\n".join(sep.join("" if v is None else str(v) for v in row) for row in rows) + "\n"
    path.write_bytes(text.encode(encoding))
    return path


def only_table(result) -> Table:
    assert len(result.tables) == 1, result
    return result.tables[0]


def col(table: Table, key: str) -> list:
    return table.frame[f"c{table.columns[key]}"].to_list()


# -- cell text -------------------------------------------------------------------

def test_cell_text_is_one_canonical_form():
    assert cell_text("  张 三 ") == "  张 三 "            # kept as is: the rules trim
    assert cell_text("") is None and cell_text("  \u3000") is None and cell_text(None) is None
    assert cell_text(3.0) == "3" and cell_text(42065.0) == "42065"   # a date serial stays a number
    assert cell_text(20150302.0) == "20150302"
    assert cell_text(1.5) == "1.5" and cell_text(7) == "7"
    assert cell_text(430224201307268123.0) == "4.30224201307268E+17"
    assert cell_text(4.3e17) == "4.3E+17"
    assert cell_text(True) == "是" and cell_text(False) == "否"
    assert cell_text(dt.datetime(2015, 3, 2)) == "2015-03-02"
    assert cell_text(dt.datetime(2015, 3, 2, 8, 30)) == "2015-03-02 08:30:00"
    assert cell_text(dt.date(2015, 3, 2)) == "2015-03-02"
    for rounded in ("4.30224201307268E+17", "4.3E+17"):
        assert idcard.looks_excel_rounded(rounded)


def test_an_id_excel_stored_as_a_number_reads_as_excel_shows_it(tmp_path):
    rows = [HEADER, child(1), child(2)]
    rows[1][3] = 430224201307268013        # Excel keeps 15 significant digits
    t = only_table(read_file(write_xlsx(tmp_path / "a.xlsx", {"Sheet1": rows})))
    assert col(t, "id_number") == ["4.30224201307268E+17", CHILD_IDS[2]]
    assert col(t, "seq") == ["1", "2"]


def test_dates_and_yes_no_cells_from_xlsx(tmp_path):
    path = tmp_path / "d.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet()
    ws.write_row(0, 0, HEADER)
    ws.write_row(1, 0, child(1))
    ws.write_datetime(1, 4, dt.datetime(2013, 7, 26), wb.add_format({"num_format": "yyyy-mm-dd"}))
    ws.write_number(1, 9, 46203)                        # a serial in a General cell
    ws.write_boolean(1, 8, True)
    wb.close()
    t = only_table(read_file(path))
    assert col(t, "birth") == ["2013-07-26"]
    assert col(t, "as_of") == ["46203"]
    assert col(t, "contact_card") == ["是"]


# -- file types by content -------------------------------------------------------

def test_pdf_with_an_xlsx_name_is_refused_with_a_clear_message(tmp_path):
    p = tmp_path / "台帐.xlsx"
    p.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")
    with pytest.raises(ReadError) as e:
        read_file(p)
    assert e.value.args[0] == MSG_PDF == "这是 PDF 文件，不是表格。请提交 Excel（.xlsx/.xls）或 CSV 文件"


def test_truncated_download_is_refused(tmp_path):
    good = write_xlsx(tmp_path / "good.xlsx", {"Sheet1": [HEADER] + [child(i) for i in range(1, 40)]})
    p = tmp_path / "台帐.xlsx"
    p.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ReadError) as e:
        read_file(p)
    assert e.value.args[0].startswith("文件不完整（可能下载中断")


def test_empty_file_is_refused(tmp_path):
    p = tmp_path / "台帐.csv"
    p.write_bytes(b"")
    with pytest.raises(ReadError) as e:
        read_file(p)
    assert e.value.args[0] == MSG_EMPTY


def test_binary_junk_is_refused(tmp_path):
    p = tmp_path / "台帐.csv"
    p.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ReadError) as e:
        read_file(p)
    assert "无法识别的文件格式" in e.value.args[0]


def test_word_document_is_refused(tmp_path):
    p = tmp_path / "台帐.xlsx"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    with pytest.raises(ReadError) as e:
        read_file(p)
    assert e.value.args[0].startswith("这是 Word 文档")


def _cfb(stream_names: list[str]) -> bytes:
    """A minimal OLE2 compound file holding empty streams with these names
    (what Excel writes around an encrypted .xlsx: EncryptionInfo, EncryptedPackage)."""
    free, end, fat_sect = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD
    header = bytearray(512)
    header[0:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    struct.pack_into("<HHHHH", header, 24, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<IIIIIIIII", header, 40, 0, 1, 1, 0, 4096, end, 0, end, 0)
    struct.pack_into("<I", header, 76, 0)               # DIFAT[0]: the FAT is sector 0
    for i in range(1, 109):
        struct.pack_into("<I", header, 76 + 4 * i, free)
    fat = struct.pack("<II", fat_sect, end) + struct.pack("<I", free) * 126

    def entry(name: str, kind: int, child: int = free, right: int = free) -> bytes:
        raw = name.encode("utf-16-le") + b"\x00\x00"
        e = bytearray(128)
        e[: len(raw)] = raw
        struct.pack_into("<HBB", e, 64, len(raw), kind, 1)
        struct.pack_into("<III", e, 68, free, right, child)
        struct.pack_into("<II", e, 116, end, 0)
        return bytes(e)

    entries = [entry("Root Entry", 5, child=1)]
    for i, name in enumerate(stream_names, start=1):
        entries.append(entry(name, 2, right=i + 1 if i < len(stream_names) else free))
    directory = b"".join(entries).ljust(512, b"\x00")
    return bytes(header) + fat + directory


def test_password_protected_workbook_is_refused(tmp_path):
    p = tmp_path / "台帐.xlsx"
    p.write_bytes(_cfb(["EncryptionInfo", "EncryptedPackage"]))
    with pytest.raises(ReadError) as e:
        read_file(p)
    assert e.value.args[0] == MSG_ENCRYPTED
    assert "密码" in MSG_ENCRYPTED


def test_other_formats_get_an_instruction(tmp_path):
    cases = {
        "a.xls": (b'<?xml version="1.0"?>\n<?mso-application progid="Excel.Sheet"?>\n<Workbook xmlns='
                  b'"urn:schemas-microsoft-com:office:spreadsheet"></Workbook>', "这是 Excel 2003 XML 表格"),
        "b.xls": (b"<html><body><p>\xe6\x97\xa0\xe6\x95\xb0\xe6\x8d\xae</p></body></html>", "这是一个网页文件，其中没有表格"),
        "c.xlsx": (None, "这是 WPS/OpenOffice 的 ODS 表格"),
        "d.xlsx": (b"\x1f\x8b\x08\x00" + bytes(20), "这是压缩包或图片"),
    }
    for name, (data, message) in cases.items():
        p = tmp_path / name
        if data is None:
            with zipfile.ZipFile(p, "w") as z:
                z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
                z.writestr("content.xml", "<office:document-content/>")
        else:
            p.write_bytes(data)
        with pytest.raises(ReadError) as e:
            read_file(p)
        assert e.value.args[0].startswith(message), name
        assert "请" in e.value.args[0]                      # says what to do


def test_xls_named_xlsx_and_xlsx_named_xls_read_fine(tmp_path):
    rows = [HEADER, child(1), child(2), child(3)]
    xls = write_xls(tmp_path / "real.xls", rows)
    xlsx = write_xlsx(tmp_path / "real.xlsx", {"Sheet1": rows})
    misnamed_xls = tmp_path / "台帐.xlsx"
    misnamed_xls.write_bytes(xls.read_bytes())
    misnamed_xlsx = tmp_path / "台帐.xls"
    misnamed_xlsx.write_bytes(xlsx.read_bytes())
    a, b = read_file(misnamed_xls), read_file(misnamed_xlsx)
    assert (a.file_type, b.file_type) == ("xls", "xlsx")
    for r in (a, b):
        t = only_table(r)
        assert t.kind == "registry" and t.n_rows == 3 and t.header_row == 1
        assert col(t, "name") == ["儿童1", "儿童2", "儿童3"]
        assert col(t, "seq") == ["1", "2", "3"]


def test_csv_in_utf8_bom_and_gb18030_reads_alike(tmp_path):
    rows = [["某镇留守儿童信息台帐"], [], HEADER, child(1, "乐联村"), child(2, "黄堂村　")]
    frames = {}
    for enc in ("utf-8", "utf-8-sig", "gb18030"):
        r = read_file(write_csv(tmp_path / f"{enc}.csv", rows, enc))
        t = only_table(r)
        assert r.file_type == "csv" and t.encoding == enc and t.sheet is None
        assert t.header_row == 3 and t.n_rows == 2
        frames[enc] = t.frame
    assert frames["utf-8"].equals(frames["gb18030"]) and frames["utf-8"].equals(frames["utf-8-sig"])
    assert frames["gb18030"]["row_no"].to_list() == [4, 5]
    assert frames["gb18030"]["c7"].to_list() == ["乐联村", "黄堂村　"]


def test_excel_unicode_text_export_utf16_tab(tmp_path):
    rows = [HEADER, child(1), child(2)]
    text = "\r\n".join("\t".join(str(v) for v in r) for r in rows) + "\r\n"
    p = tmp_path / "台帐.txt"
    p.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    r = read_file(p)
    t = only_table(r)
    assert r.file_type == "text" and t.encoding == "utf-16"
    assert t.kind == "registry" and t.n_rows == 2
    assert col(t, "id_number") == [CHILD_IDS[1], CHILD_IDS[2]]
    assert col(t, "as_of") == ["2026-06-30", "2026-06-30"]          # no stray \r
    assert peek_kind(p) == "registry"


def test_a_list_of_ids_is_no_table(tmp_path):
    p = tmp_path / "ids.txt"
    p.write_text("\n".join(CHILD_IDS * 10) + "\n", encoding="utf-8")
    r = read_file(p)
    assert r.tables == []
    assert r.skipped == [Skipped(None, "只有一列数据，没有表头（不是台帐表格）")]
    assert peek_kind(p) is None


def test_a_text_file_of_blank_lines_is_no_table(tmp_path):
    p = tmp_path / "a.csv"
    p.write_bytes(b"\r\n\r\n  \r\n")
    assert read_file(p).skipped == [Skipped(None, "文件没有内容")]


def test_web_page_saved_as_xls_is_read(tmp_path):
    html = """<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"></head><body>
    <table border=1>
    <tr><td colspan=6>某镇留守儿童信息台帐</td></tr>
    <tr><td rowspan=2>序号</td><td rowspan=2>姓名</td><td rowspan=2>身份证号</td><td rowspan=2>村(社区)</td>
        <td colspan=2>父亲情况</td></tr>
    <tr><td>姓名</td><td>联系电话</td></tr>
    <tr><td>1</td><td>张三</td><td>430224201307268013</td><td>乐联村</td><td>张父</td><td>13800000000</td></tr>
    <tr><td>2</td><td>李四&amp;五</td><td>43022420100727979X</td><td>乐联村</td><td></td><td></td></tr>
    <tr><td>合计</td><td>2</td><td></td><td></td><td></td><td></td></tr>
    </table></body></html>"""
    p = tmp_path / "台帐.xls"
    p.write_text(html, encoding="utf-8")
    r = read_file(p)
    t = only_table(r)
    assert r.file_type == "html"
    assert t.header_row == 3 and t.n_rows == 2
    assert t.columns == {"seq": 0, "name": 1, "id_number": 2, "village": 3, "father_name": 4, "father_phone": 5}
    assert t.labels[4] == "父亲情况/姓名"
    assert col(t, "name") == ["张三", "李四&五"]
    assert col(t, "father_phone") == ["13800000000", None]


# -- hostile workbooks -----------------------------------------------------------

_CT = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
       'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
       'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/'
       'workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
       '{overrides}</Types>')
_SHEET_CT = ('<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/vnd.openxmlformats-'
             'officedocument.spreadsheetml.worksheet+xml"/>')


def _cells_xml(rows: list[list]) -> str:
    out = []
    for r, row in enumerate(rows, start=1):
        cells = "".join(f'<c r="{chr(65 + c)}{r}" t="inlineStr"><is><t>{v}</t></is></c>'
                        for c, v in enumerate(row) if v is not None)
        out.append(f'<row r="{r}">{cells}</row>')
    return "".join(out)


def hand_made_xlsx(path: Path, sheets: dict[str, str]) -> Path:
    """An .xlsx written by hand: sheet name -> the <sheetData> content."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", _CT.format(overrides="".join(
            _SHEET_CT.format(i=i) for i in range(1, len(sheets) + 1))))
        z.writestr("_rels/.rels", '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
                   'officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        z.writestr("xl/workbook.xml", '<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/'
                   'spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/'
                   'relationships"><sheets>' + "".join(
                       f'<sheet name="{n}" sheetId="{i}" r:id="rId{i}"/>' for i, n in enumerate(sheets, 1))
                   + "</sheets></workbook>")
        z.writestr("xl/_rels/workbook.xml.rels", '<?xml version="1.0"?><Relationships xmlns="http://schemas.'
                   'openxmlformats.org/package/2006/relationships">' + "".join(
                       f'<Relationship Id="rId{i}" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                       f'relationships/worksheet" Target="worksheets/sheet{i}.xml"/>' for i in range(1, len(sheets) + 1))
                   + "</Relationships>")
        for i, data in enumerate(sheets.values(), 1):
            z.writestr(f"xl/worksheets/sheet{i}.xml", '<?xml version="1.0"?><worksheet xmlns="http://schemas.'
                       f'openxmlformats.org/spreadsheetml/2006/main"><dimension ref="A1"/><sheetData>{data}'
                       '</sheetData></worksheet>')
    return path


BOMB_CELL = '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>'


def test_a_cell_at_xfd1048576_is_refused_before_the_parser(tmp_path):
    # calamine would allocate ~512 GiB and abort the process: never hand it this file here.
    p = hand_made_xlsx(tmp_path / "台帐.xlsx", {"Sheet1": _cells_xml([HEADER[:4], ["1", "张三", "男", "x"]])
                                                           + BOMB_CELL})
    assert check_xlsx(p).refused == {"Sheet1": "表格范围异常（1048576行×16384列），请删除多余的空行空列后重新提交"}
    with pytest.raises(ReadError) as e:
        read_file(p)
    assert e.value.args[0] == "工作表“Sheet1”表格范围异常（1048576行×16384列），请删除多余的空行空列后重新提交"


def test_far_cells_without_a_value_are_harmless(tmp_path):
    # Formatted empty cells, a far <row> without cells and a huge <dimension> do not make
    # calamine allocate (measured in a subprocess); such files are read.
    far = ('<row r="200000"><c r="A200000" s="1"/><c r="XFD200000" s="1"/></row>'
           '<row r="1048576" ht="20" customHeight="1"></row>')
    p = hand_made_xlsx(tmp_path / "ok.xlsx", {"Sheet1": _cells_xml([HEADER[:4], ["1", "张三", "男", "x"]]) + far})
    assert check_xlsx(p).refused == {}
    p2 = hand_made_xlsx(tmp_path / "wide.xlsx", {"Sheet1": '<row r="3"><c r="ALM3"><v>1</v></c></row>'})
    assert check_xlsx(p2).refused == {"Sheet1": "表格范围异常（3行×1001列），请删除多余的空行空列后重新提交"}
    p3 = hand_made_xlsx(tmp_path / "rows.xlsx", {"Sheet1": '<row r="300001"><c><v>1</v></c></row>'})
    assert "300001行×1列" in check_xlsx(p3).refused["Sheet1"]


def test_a_bomb_sheet_beside_good_sheets_is_skipped(tmp_path):
    p = hand_made_xlsx(tmp_path / "镇.xlsx", {
        "乐联村": _cells_xml([HEADER[:4], ["1", "张三", "男", CHILD_IDS[0]], ["2", "李四", "女", CHILD_IDS[2]]]),
        "坏表": _cells_xml([["x"]]) + BOMB_CELL,
    })
    # In a child process: if the check ever failed, calamine would abort that process, not the tests.
    code = ("import sys; from pathlib import Path; from liushou_geo.readers import read_file; "
            "r = read_file(Path(sys.argv[1])); "
            "print([(t.sheet, t.n_rows) for t in r.tables], [(s.sheet, s.reason) for s in r.skipped])")
    out = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == ("[('乐联村', 2)] [('坏表', '表格范围异常（1048576行×16384列），"
                                  "请删除多余的空行空列后重新提交')]")


def test_zip_bomb_is_refused(tmp_path):
    p = tmp_path / "台帐.xlsx"
    hand_made_xlsx(p, {"Sheet1": _cells_xml([HEADER[:4]])})
    with zipfile.ZipFile(p, "a", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/sharedStrings.xml", b"<sst>" + b" " * (20 * 1024 * 1024) + b"</sst>")
    with pytest.raises(ReadError) as e:
        read_file(p)
    assert e.value.args[0].startswith("文件解压后异常大")


# -- headers ---------------------------------------------------------------------

def test_header_found_by_scoring_below_titles_and_notes(tmp_path):
    rows = [
        ["某某镇留守儿童信息台帐"],
        [],
        ["填报单位：下东街道米筛坪社区居委会"],
        ["填报日期：2026年6月30日", None, None, "单位：人"],
        ["说明：", "姓名", "身份证号"],               # names two fields: a weaker candidate, not the header
        ["联系人：王五", None, "联系电话：13800000000"],
        HEADER,
        child(1), [], child(2),
        ["合  计", "2人"],
        ["填表人：王五", None, None, "审核人：赵六"],
        ["注：以上信息经核实无误"],
    ]
    for path in (write_xlsx(tmp_path / "a.xlsx", {"Sheet1": rows}), write_csv(tmp_path / "a.csv", rows)):
        t = only_table(read_file(path))
        assert t.header_row == 7, path
        assert t.as_of_hint == "2026年6月30日"
        assert t.frame["row_no"].to_list() == [8, 10]
        assert col(t, "name") == ["儿童1", "儿童2"]
        assert t.labels[:3] == ["序号", "姓名", "性别"]


def test_a_table_placed_away_from_a1(tmp_path):
    rows = [[None] * 3 + r for r in [[], [], ["某村留守儿童信息台帐"], [], HEADER, child(1), child(2), ["合计", 2]]]
    t = only_table(read_file(write_xlsx(tmp_path / "a.xlsx", {"S": [[]] * 2 + rows})))
    assert t.header_row == 7 and t.frame["row_no"].to_list() == [8, 9]
    assert t.columns["seq"] == 3 and col(t, "name") == ["儿童1", "儿童2"]
    assert t.frame.columns[:4] == ["row_no", "c0", "c1", "c2"] and t.frame["c0"].null_count() == 2


def test_columns_in_any_order_with_odd_spellings(tmp_path):
    header = ["身份证号码（18位）", "*姓名", "村（社区）", "性 别", "出生\n日期", "备注"]
    rows = [header, [CHILD_IDS[0], "张三", "乐联村", "男", "2013-07-26", "无"]]
    t = only_table(read_file(write_xlsx(tmp_path / "a.xlsx", {"S": rows})))
    assert t.columns == {"id_number": 0, "name": 1, "village": 2, "sex": 3, "birth": 4}
    assert t.labels == ["身份证号码（18位）", "*姓名", "村（社区）", "性别", "出生日期", "备注"]


TWO_ROW_TOP = ["序号", "儿童基本情况", None, None, None, "就学情况", None, "父亲情况", None, None,
               "母亲情况", None, None, "临时监护人情况", None, None, None, "结对帮扶情况", None, None, "村(社区)"]
TWO_ROW_SUB = [None, "姓名", "性别", "身份证号", "出生日期", "就读学校", "年级", "姓名", "务工地点", "联系电话",
               "姓名", "务工地点", "联系电话", "姓名", "与儿童关系", "联系电话", "住址", "帮扶人", "单位",
               "结对日期", None]
TWO_ROW_MERGES = [(2, 0, 3, 0, "序号"), (2, 1, 2, 4, "儿童基本情况"), (2, 5, 2, 6, "就学情况"),
                  (2, 7, 2, 9, "父亲情况"), (2, 10, 2, 12, "母亲情况"), (2, 13, 2, 16, "临时监护人情况"),
                  (2, 17, 2, 19, "结对帮扶情况"), (2, 20, 3, 20, "村(社区)"), (0, 0, 0, 20, "某镇留守儿童信息台帐")]
TWO_ROW_KEYS = {"seq": 0, "name": 1, "sex": 2, "id_number": 3, "birth": 4, "school": 5, "grade": 6,
                "father_name": 7, "father_work": 8, "father_phone": 9, "mother_name": 10, "mother_work": 11,
                "mother_phone": 12, "guardian_name": 13, "guardian_relation": 14, "guardian_phone": 15,
                "guardian_address": 16, "helper": 17, "helper_unit": 18, "pair_date": 19, "village": 20}


def two_row_child(i: int) -> list:
    return [i, f"儿童{i}", "女", CHILD_IDS[i % 4], "2013-07-26", "下东中学", "三年级", f"父{i}", "广东东莞",
            "13800000000", f"母{i}", "浙江义乌", "13900000000", f"祖母{i}", "祖母", "13700000000", "本村",
            "罗轩", "县妇联", "2025-03-01", "乐联村"]


def two_row_rows() -> list[list]:
    top = [v if (2, c) not in {(r0, c0) for r0, c0, *_ in TWO_ROW_MERGES} else None for c, v in enumerate(TWO_ROW_TOP)]
    return [["某镇留守儿童信息台帐"], [], top, TWO_ROW_SUB, two_row_child(1), two_row_child(2), ["合计", 2]]


def _check_two_row(t: Table):
    assert t.kind == "registry"
    assert t.columns == TWO_ROW_KEYS
    assert t.header_row == 4
    assert t.n_rows == 2 and t.frame["row_no"].to_list() == [5, 6]     # the sub-label row is no child
    assert t.labels[0] == "序号" and t.labels[1] == "儿童基本情况/姓名"
    assert t.labels[7:10] == ["父亲情况/姓名", "父亲情况/务工地点", "父亲情况/联系电话"]
    assert t.labels[17:21] == ["结对帮扶情况/帮扶人", "结对帮扶情况/单位", "结对帮扶情况/结对日期", "村(社区)"]
    assert col(t, "name") == ["儿童1", "儿童2"]
    assert col(t, "father_name") == ["父1", "父2"]
    assert col(t, "guardian_address") == ["本村", "本村"]
    assert col(t, "helper_unit") == ["县妇联", "县妇联"]


def test_two_row_header_with_merged_groups_xlsx(tmp_path):
    p = write_xlsx(tmp_path / "a.xlsx", {"Sheet1": two_row_rows()}, {"Sheet1": TWO_ROW_MERGES})
    _check_two_row(only_table(read_file(p)))


def test_two_row_header_with_merged_groups_xls(tmp_path):
    # calamine gives merged ranges for BIFF8 too.
    p = write_xls(tmp_path / "a.xls", two_row_rows(), TWO_ROW_MERGES)
    _check_two_row(only_table(read_file(p)))


def test_two_row_header_without_merge_information_csv(tmp_path):
    # A CSV keeps no merges: a group label covers the blank cells to its right.
    rows = two_row_rows()
    rows[2] = TWO_ROW_TOP
    t = only_table(read_file(write_csv(tmp_path / "a.csv", rows)))
    _check_two_row(t)


def test_a_title_merged_across_does_not_make_a_two_row_header(tmp_path):
    rows = [["留守儿童及其监护人信息台帐"], HEADER, child(1)]
    t = only_table(read_file(write_xlsx(tmp_path / "a.xlsx", {"S": rows}, {"S": [(0, 0, 0, 9, rows[0][0])]})))
    assert t.header_row == 2 and t.n_rows == 1
    assert t.labels == [("县(市、区)" if h == "县(市、区)" else h) for h in HEADER]


def test_repeated_header_rows_are_not_children(tmp_path):
    rows = [HEADER, child(1), child(2), HEADER, child(3)]
    t = only_table(read_file(write_csv(tmp_path / "a.csv", rows)))
    assert t.frame["row_no"].to_list() == [2, 3, 5]


# -- merged cells and dropped rows -------------------------------------------------

def test_vertically_merged_locations_are_filled_down(tmp_path):
    rows = [["某镇留守儿童信息台帐"], HEADER]
    for i in range(1, 8):
        rows.append(child(i))
    for r in rows[2:]:
        r[5] = r[6] = r[7] = r[9] = None                 # only the merge's first cell carries the value
    rows += [[], ["合计", 7]]
    merges = [(2, 5, 8, 5, "茶陵县"), (2, 6, 8, 6, "下东街道"), (2, 7, 5, 7, "乐联村"), (6, 7, 8, 7, "黄堂村"),
              (2, 9, 8, 9, "2026-06-30"), (0, 0, 0, 9, "某镇留守儿童信息台帐")]
    t = only_table(read_file(write_xlsx(tmp_path / "a.xlsx", {"S": rows}, {"S": merges})))
    assert t.n_rows == 7 and t.frame["row_no"].to_list() == list(range(3, 10))
    assert col(t, "village") == ["乐联村"] * 4 + ["黄堂村"] * 3
    assert col(t, "village")[2] == "乐联村"                # the 3rd row of the first block
    assert col(t, "county") == ["茶陵县"] * 7
    assert sorted(t.filled_down) == ["as_of", "county", "township", "village"]


def test_a_merged_block_running_over_blank_rows_adds_no_rows(tmp_path):
    rows = [HEADER, child(1), child(2), [], [], ["合计", 2]]
    for r in rows[1:3]:
        r[7] = None
    t = only_table(read_file(write_xlsx(tmp_path / "a.xlsx", {"S": rows}, {"S": [(1, 7, 4, 7, "乐联村")]})))
    assert t.n_rows == 2 and col(t, "village") == ["乐联村", "乐联村"]
    assert t.filled_down == ["village"]


def test_no_fill_down_without_merge_information(tmp_path):
    rows = [HEADER, child(1), child(2)]
    rows[2][7] = None
    t = only_table(read_file(write_csv(tmp_path / "a.csv", rows)))
    assert col(t, "village") == ["米筛坪社区", None] and t.filled_down == []


def test_data_rows_is_the_one_rule_for_dropped_rows():
    frame = pl.DataFrame({
        "row_no": [2, 3, 4, 5, 6, 7, 8, 9],
        "c0": ["1", None, "合 计", "2", "说明：本表…", None, "填表人：王五", "3"],
        "c1": ["张三", None, "2", "李四", None, None, None, "王二"],
        "c2": ["男", None, None, "女", None, "以上属实", None, "男"],
        "c3": [None, None, None, "备注", None, None, None, None],
    }, schema_overrides={"c0": pl.String, "c1": pl.String, "c2": pl.String, "c3": pl.String})
    # columns: seq 0, name 1, sex 2; c3 is not a field
    kept = data_rows(frame, {"seq": 0, "name": 1, "sex": 2})
    # blank (3), 合计 (4), one-cell note after it (6, 7), 填表人 (8) dropped; 9 has 3 cells: kept
    assert kept["row_no"].to_list() == [2, 5, 9]


# -- workbooks with many sheets --------------------------------------------------

def test_one_workbook_per_township_one_sheet_per_village(tmp_path):
    sheets = {
        "填表说明": [["填表说明"], ["1. 每村一张表，请勿修改表头。"], ["2. 身份证号请填写18位，末位X大写。"]],
        "乐联村": [["下东街道乐联村留守儿童信息台帐"], HEADER, child(1, "乐联村"), child(2, "乐联村")],
        "黄堂村": [HEADER, child(3, "黄堂村")],
        "齐溪村": [["下东街道齐溪村留守儿童信息台帐"], HEADER],               # no children yet
        "汇总": [["村(社区)", "留守儿童人数", "其中在校"], ["乐联村", 2, 2], ["黄堂村", 1, 1]],
        "Sheet3": [],
    }
    r = read_file(write_xlsx(tmp_path / "下东街道.xlsx", sheets))
    assert [(t.sheet, t.kind, t.n_rows, t.header_row) for t in r.tables] == [
        ("乐联村", "registry", 2, 2), ("黄堂村", "registry", 1, 1), ("齐溪村", "registry", 0, 2)]
    assert r.skipped == [Skipped("填表说明", "没有数据表头（填表说明）"), Skipped("汇总", "汇总表，不含儿童明细"),
                         Skipped("Sheet3", "空白工作表")]
    empty = r.tables[2].frame
    assert empty.height == 0 and empty.columns == ["row_no"] + [f"c{i}" for i in range(10)]
    assert empty.schema["row_no"] == pl.Int64


# -- division codes and facilities ------------------------------------------------

def test_division_code_table(tmp_path):
    rows = [["统计用区划代码", "城乡分类代码", "名称", "级别", "上级代码"],
            ["430224000000", None, "茶陵县", "3", "430200000000"],
            ["430224001000", None, "下东街道", "4", "430224000000"],
            ["430224001001", "111", "米筛坪社区居委会", "5", "430224001000"]]
    t = only_table(read_file(write_csv(tmp_path / "统计用区划代码.csv", rows)))
    assert t.kind == "division_codes"
    assert t.columns == {"code": 0, "urban_rural": 1, "div_name": 2, "div_level": 3, "div_parent": 4}
    assert col(t, "div_name")[2] == "米筛坪社区居委会"
    # The same in Excel with the codes stored as numbers, spelt 区划代码 / 单位名称.
    rows2 = [["区划代码", "单位名称"], [430224001001, "米筛坪社区"], [430224001002, "乐联村"]]
    t2 = only_table(read_file(write_xlsx(tmp_path / "codes.xlsx", {"S": rows2})))
    assert (t2.kind, t2.columns, col(t2, "code")) == ("division_codes", {"code": 0, "div_name": 1},
                                                      ["430224001001", "430224001002"])


def test_codes_that_are_not_division_codes_are_no_code_table(tmp_path):
    rows = [["代码", "名称"], ["A01", "一号"], ["A02", "二号"]]
    r = read_file(write_csv(tmp_path / "x.csv", rows))
    assert r.tables == [] and r.skipped[0].reason.startswith("有“代码”“名称”列，但代码大多不是12位")


def test_terminals_and_rooms_keep_their_kinds(tmp_path):
    terminals = [["乡镇", "单位名称", "区划代码", "单位类型", "亲情电话终端数", "邮政信箱"],
                 ["下东街道", "下东中学", "430224001001", "学校", 3, "是"]]
    rooms = [["名称", "区划代码", "依托单位", "经度", "纬度", "状态"],
             ["乐联村活动室", "430224001002", "乐联村委会", 113.5, 26.8, "在用"]]
    t = only_table(read_file(write_xlsx(tmp_path / "t.xlsx", {"S": terminals})))
    assert t.kind == "terminals" and t.columns["unit_name"] == 1 and col(t, "terminals") == ["3"]
    t = only_table(read_file(write_xlsx(tmp_path / "r.xlsx", {"S": rooms})))
    assert t.kind == "rooms" and t.columns["room_name"] == 0 and col(t, "lon") == ["113.5"]


# -- large text files: the same rows as small ones ----------------------------------

def test_large_csv_reads_the_same_rows_as_a_workbook(tmp_path):
    rows = [["某市留守儿童信息台帐"], ["填报日期：2026年6月30日"], [], HEADER]
    for i in range(1, 30001):
        rows.append(child(i) if i % 1000 else [])
    rows += [["合计", 29970], ["填表人：王五"], ["以上信息经核实无误"]]
    big = write_csv(tmp_path / "big.csv", rows, "gb18030")
    assert big.stat().st_size > 2_000_000
    assert peek_kind(big) == "registry"
    t = only_table(read_file(big))
    assert (t.header_row, t.n_rows, t.as_of_hint) == (4, 29970, "2026年6月30日")
    assert t.frame["row_no"][0] == 5 and t.frame["row_no"][-1] == 30003
    small = only_table(read_file(write_xlsx(tmp_path / "s.xlsx", {"S": rows[:2010] + rows[-3:]})))
    assert small.frame.equals(t.frame.head(small.n_rows))
    assert t.frame.schema == pl.Schema({"row_no": pl.Int64, **{f"c{i}": pl.String for i in range(10)}})


def test_quoted_line_breaks_keep_the_line_a_row_starts_on(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("标题\n" + ",".join(HEADER) + "\n"
                 + ",".join(str(v) for v in child(1)) + "\n"
                 + '2,"儿童\n二",男,' + CHILD_IDS[2] + ",2013-07-26,茶陵县,下东街道,乐联村,是,2026-06-30\n"
                 + ",".join(str(v) for v in child(3)) + "\n", encoding="utf-8")
    t = only_table(read_file(p))
    assert t.frame["row_no"].to_list() == [3, 4, 6]
    assert col(t, "name") == ["儿童1", "儿童\n二", "儿童3"]
    # A bare CR inside a cell: polars would split the line, so the csv module reads the file alike.
    p.write_bytes(p.read_bytes().replace("儿童\n二".encode(), "儿童\r\n二".encode()).replace(
        "儿童3".encode(), '"儿\r童3"'.encode()))
    t2 = only_table(read_file(p))
    assert t2.frame["row_no"].to_list() == [3, 4, 6]
    assert col(t2, "name") == ["儿童1", "儿童\r\n二", "儿\r童3"]


def test_semicolon_and_tab_delimiters(tmp_path):
    for sep in (";", "\t"):
        rows = [HEADER, child(1)]
        rows[1][8] = "13800000000,13900000000"
        t = only_table(read_file(write_csv(tmp_path / "a.csv", rows, sep=sep)))
        assert col(t, "contact_card") == ["13800000000,13900000000"]


def test_peek_kind_on_other_files(tmp_path):
    assert peek_kind(write_xlsx(tmp_path / "a.xlsx", {"S": [HEADER, child(1)]})) is None
    pdf = tmp_path / "a.csv"
    pdf.write_bytes(b"%PDF-1.4")
    assert peek_kind(pdf) is None
    codes = write_csv(tmp_path / "c.csv", [["区划代码", "名称"], ["430224001001", "米筛坪社区"]])
    assert peek_kind(codes) == "division_codes"


# -- a real hand-over ----------------------------------------------------------------

@pytest.mark.skipif(not (ZHUZHOU / "registry").exists(), reason="acceptance case not present")
def test_zhuzhou_registry_files():
    # 283 workbooks and one GB18030 CSV (the case's README counts 284 workbooks).
    files = sorted((ZHUZHOU / "registry").iterdir())
    assert len(files) == 284 and sum(f.suffix == ".csv" for f in files) == 1
    total = 0
    for f in files:
        r = read_file(f)
        t = only_table(r)
        assert t.kind == "registry" and r.skipped == [], f.name
        total += t.n_rows
    assert total == 11291
    ids = read_file(ZHUZHOU / "ids.txt")
    assert ids.tables == [] and len(ids.skipped) == 1
