"""What a handed-over file really is, told from its bytes, not its name.

Clerks send PDFs, truncated downloads and web pages saved with an ``.xlsx`` or
``.xls`` name, and legacy workbooks named ``.xlsx``. Each of these gets a
message the clerk can act on instead of a parser's error. Workbooks that
would make the spreadsheet parser allocate without bound (a cell at
XFD1048576 makes python-calamine ask for ~512 GiB and abort the process, see
MACHINE_NOTES) are measured from the zip before the parser sees them.
"""

from __future__ import annotations

import codecs
import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree


class ReadError(ValueError):
    """A file that cannot be read at all; ``args[0]`` is the message for the clerk."""


# Limits for an .xlsx, checked before the parser allocates anything.
MAX_ROWS = 300_000
MAX_COLS = 1_000
MAX_CELLS = 10_000_000           # rows x columns of one sheet's grid: a stray far cell costs seconds and GBs
MAX_UNZIPPED = 600 * 1024 * 1024  # all members together (a 150k-row registry unzips to ~200 MB)
MAX_RATIO = 100                  # compressed:uncompressed, for a member over RATIO_MIN_BYTES
RATIO_MIN_BYTES = 10 * 1024 * 1024

_SAVE_AS = "请在 Excel 中打开后“另存为” Excel 工作簿（.xlsx）或 CSV 文件，再重新提交"
MSG_EMPTY = "文件是空的（0 字节），没有任何内容。请重新导出或重新下载后提交"
MSG_PDF = "这是 PDF 文件，不是表格。请提交 Excel（.xlsx/.xls）或 CSV 文件"
MSG_TRUNCATED = "文件不完整（可能下载中断或复制未完成），无法打开。请重新下载或重新导出后提交"
MSG_ENCRYPTED = ("文件设置了打开密码（已加密），无法读取。请在 Excel 中打开，"
                 "在“文件→信息→保护工作簿→用密码进行加密”中清空密码并保存后重新提交")
MSG_WORD = "这是 Word 文档，不是表格。请提交 Excel（.xlsx/.xls）或 CSV 文件"
MSG_UNKNOWN = "无法识别的文件格式（不是 Excel 表格，也不是 CSV 文本）。" + _SAVE_AS


@dataclass
class FileKind:
    """``type``: xlsx | xls | html | text. For text, the detected encoding."""

    type: str
    encoding: str | None = None


def detect_encoding(data: bytes, final: bool = True) -> str:
    """UTF-16 (with BOM), UTF-8 (with or without BOM), else GB18030 (a superset of GBK).

    ``final=False`` for the head of a file, which may end inside a character.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(data, final=final)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        codecs.getincrementaldecoder("gb18030")().decode(data, final=final)
        return "gb18030"
    except UnicodeDecodeError:
        raise ReadError("文件编码无法识别（不是 UTF-8，也不是 GB18030/GBK）。"
                        "请在 Excel 中另存为“CSV UTF-8（逗号分隔）”后重新提交") from None


_HTML_RE = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|table|head|body|meta)\b", re.I | re.S)
_XML_2003 = b"urn:schemas-microsoft-com:office:spreadsheet"


def identify(path: Path, head: bytes | None = None) -> FileKind:
    """The file's real type from its first bytes; ReadError for what is no table."""
    if head is None:
        with path.open("rb") as f:
            head = f.read(1 << 16)
    if not head:
        raise ReadError(MSG_EMPTY)
    if head.startswith(b"%PDF"):
        raise ReadError(MSG_PDF)
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        # An OOXML workbook with a password is an OLE2 container holding the
        # encrypted package: its directory names the stream in UTF-16.
        streams = _ole_streams(path, ("EncryptedPackage", "WordDocument"))
        if "EncryptedPackage" in streams:
            raise ReadError(MSG_ENCRYPTED)
        if "WordDocument" in streams:
            raise ReadError(MSG_WORD)
        return FileKind("xls")
    if head.startswith(b"PK"):
        return FileKind(_zip_kind(path))
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return FileKind("text", "utf-16")
    text_head = head.lstrip(codecs.BOM_UTF8)
    if _HTML_RE.match(text_head):
        return FileKind("html")
    if text_head.lstrip().startswith(b"<?xml"):
        if _XML_2003 in head:
            raise ReadError("这是 Excel 2003 XML 表格，本系统不能直接读取。" + _SAVE_AS)
        if re.search(rb"<(html|table)\b", head, re.I):
            return FileKind("html")
        raise ReadError(MSG_UNKNOWN)
    if head.startswith((b"\x1f\x8b", b"Rar!", b"7z\xbc\xaf", b"\x89PNG", b"\xff\xd8\xff", b"GIF8")):
        raise ReadError("这是压缩包或图片，不是表格。请解压后提交其中的 Excel（.xlsx/.xls）或 CSV 文件")
    if b"\x00" in head:
        raise ReadError(MSG_UNKNOWN)
    return FileKind("text", detect_encoding(head, final=len(head) < (1 << 16)))


def _ole_streams(path: Path, names: tuple[str, ...]) -> set[str]:
    """Which of these stream names an OLE2 file's directory holds."""
    # Directory entries hold names as UTF-16LE; cell text in BIFF8 never holds
    # these ASCII names in UTF-16 (it stores ASCII compressed), so a byte
    # search is exact enough and costs one pass over a small file.
    patterns = {n: n.encode("utf-16-le") for n in names}
    keep = max(len(p) for p in patterns.values())
    found = set()
    with path.open("rb") as f:
        tail = b""
        while block := f.read(1 << 22):
            window = tail + block
            found |= {n for n, p in patterns.items() if p in window}
            tail = block[-keep:]
    return found


def _zip_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        raise ReadError(MSG_TRUNCATED) from None
    if "xl/workbook.xml" in names or any(n.startswith("xl/worksheets/") for n in names):
        return "xlsx"
    if "xl/workbook.bin" in names:
        raise ReadError("这是 Excel 二进制工作簿（.xlsb），本系统不能直接读取。" + _SAVE_AS)
    if "content.xml" in names and "mimetype" in names:
        raise ReadError("这是 WPS/OpenOffice 的 ODS 表格，本系统不能直接读取。" + _SAVE_AS)
    if "word/document.xml" in names:
        raise ReadError(MSG_WORD)
    raise ReadError("这是一个压缩包，不是 Excel 表格。请解压后提交其中的 Excel（.xlsx/.xls）或 CSV 文件")


# -- hostile .xlsx ---------------------------------------------------------------

@dataclass
class XlsxCheck:
    """Sheets too large to hand to the parser: sheet name -> message for the clerk."""

    refused: dict[str, str] = field(default_factory=dict)
    n_sheets: int = 0            # worksheet parts in the zip


# Only references that can break a limit are matched: three-letter columns
# (>= AAA = 703) or rows of six digits and more; ordinary cells cost a failed
# match at their second character.
_BIG_REF_RE = re.compile(rb'r="(?:([A-Z]{3})(\d+)|([A-Z]{0,2})(\d{6,}))"')
_VALUE_RE = re.compile(rb"<(?:v|is|f)\b")
_CHUNK = 1 << 20
_OVERLAP = 1 << 13


def _col_number(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ch - 64
    return n


def check_xlsx(path: Path) -> XlsxCheck:
    """Refuse a zip bomb (ReadError) and list sheets whose extent is absurd.

    A sheet's extent is the largest row and column of a cell holding a value
    (an empty formatted cell, a ``<dimension>`` or an empty ``<row>`` far away
    do not make the parser allocate: measured). Reads each worksheet's XML in
    chunks, never more than its declared size, which is capped in total.
    """
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        raise ReadError(MSG_TRUNCATED) from None
    with z:
        infos = z.infolist()
        total = sum(i.file_size for i in infos)
        bomb = any(i.file_size > RATIO_MIN_BYTES and i.file_size > MAX_RATIO * max(i.compress_size, 1)
                   for i in infos)
        if total > MAX_UNZIPPED or bomb:
            raise ReadError(f"文件解压后异常大（约 {total // (1024 * 1024)} MB），可能已损坏或不是正常的表格。"
                            "请在 Excel 中打开后另存为新文件（删除多余的空行空列）再提交")
        check = XlsxCheck()
        for info in infos:
            if not (info.filename.startswith("xl/worksheets/") and info.filename.endswith(".xml")):
                continue
            try:
                rows, cols = _extent(z, info)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError):
                raise ReadError(MSG_TRUNCATED) from None
            check.n_sheets += 1
            if too_large(rows, cols):
                message = extent_message(rows, cols)
                sheet = _sheet_names(z).get(info.filename)
                if sheet is None:
                    # Without its name the parser could not be kept off this sheet.
                    raise ReadError(message)
                check.refused[sheet] = message
        return check


def too_large(rows: int, cols: int) -> bool:
    return rows > MAX_ROWS or cols > MAX_COLS or rows * cols > MAX_CELLS


def extent_message(rows: int, cols: int) -> str:
    return f"表格范围异常（{rows}行×{cols}列），请删除多余的空行空列后重新提交"


def _extent(z: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[int, int]:
    """(largest row, largest column) among the far-away cells holding a value, else (0, 0)."""
    max_row = max_col = 0
    with z.open(info) as f:
        buf = b""
        eof = False
        while not eof:
            chunk = f.read(_CHUNK)
            eof = not chunk
            buf += chunk
            # Leave the last bytes for the next round unless at the end: a tag
            # or a row's content may run across the chunk boundary.
            limit = len(buf) if eof else max(len(buf) - _OVERLAP, 0)
            for m in _BIG_REF_RE.finditer(buf):
                if m.start() >= limit:
                    break
                if not buf[m.start() - 1:m.start()].isspace():
                    continue                # another attribute ending in r (useFirstPageNumber="…")
                tag = buf[buf.rfind(b"<", 0, m.start()):m.start()]
                close = buf.find(b">", m.end())
                if close < 0 or buf[close - 1:close] == b"/":
                    continue                # <c r=".." s="1"/>: formatted, no value; <row .../>: empty
                letters = m.group(1) or m.group(3)
                row = int(m.group(2) or m.group(4))
                if tag.startswith(b"<c") and tag[2:3].isspace():
                    max_col = max(max_col, _col_number(letters))
                    max_row = max(max_row, row)
                elif tag.startswith(b"<row") and tag[4:5].isspace() and not letters:
                    # Cells without an r attribute take their row from <row r>.
                    end = buf.find(b"</row>", close)
                    if _VALUE_RE.search(buf, close, end if end >= 0 else len(buf)):
                        max_row = max(max_row, row)
                        max_col = max(max_col, 1)
            buf = buf[limit:]
    return max_row, max_col


def _sheet_names(z: zipfile.ZipFile) -> dict[str, str]:
    """Worksheet part name -> the sheet's name, for the clerk's message (best effort)."""
    try:
        if z.getinfo("xl/workbook.xml").file_size > 5_000_000:
            return {}
        wb = ElementTree.fromstring(z.read("xl/workbook.xml"))
        rels = ElementTree.fromstring(z.read("xl/_rels/workbook.xml.rels"))
    except (KeyError, ElementTree.ParseError, zipfile.BadZipFile, OSError, EOFError):
        return {}
    targets = {}
    for r in rels:
        target = r.get("Target", "")
        target = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
        targets[r.get("Id")] = target
    out = {}
    for el in wb.iter():
        if el.tag.endswith("}sheet"):
            rid = next((v for k, v in el.attrib.items() if k.endswith("}id")), None)
            if rid in targets:
                out[targets[rid]] = el.get("name", "")
    return out
