"""Finding the columns of a boundary layer (code, name, township and county
name) by header or by content, and the text encoding of a Shapefile's DBF.

Real hand-overs name their fields anything (``XZQDM``/``XZQMC``, ``QHDM``/
``QHMC``, ``乡镇代码``/``乡镇名称``...) and carry distractors (``OBJECTID``,
``Shape_Area``, ``XZDM``/``XZMC`` holding a land-use class), so a header match
is only trusted when the column's content fits, and content decides otherwise.
"""

from __future__ import annotations

import codecs
import re
import struct
from pathlib import Path

import pandas as pd

from .codes import PREFIX_LEN, code_of, level_of, normalize_code

CODE_COLUMNS = ["区划代码", "行政区划代码", "统计用区划代码", "code", "XZQDM", "QHDM", "XZQHDM", "ZLDWDM",
                "CJQYDM", "村代码", "社区代码", "乡镇代码", "县区代码", "区县代码", "XZDM", "DM", "adcode"]
_GENERIC_NAMES = ["名称", "name", "XZQMC", "QHMC", "XZQHMC", "ZLDWMC", "CJQYMC", "行政区划名称", "区划名称",
                  "单位名称", "MC"]
TOWNSHIP_NAME_COLUMNS = ["乡镇名称", "乡镇街道名称", "街道名称", "乡镇", "乡镇街道", "所属乡镇", "XZMC", "township"]
COUNTY_NAME_COLUMNS = ["县区名称", "区县名称", "县名称", "县区", "区县", "所属县区", "XMC", "county"]
NAME_COLUMNS = {
    "village": _GENERIC_NAMES + ["村名", "村名称", "村委会名称", "社区名称", "村（社区）名称", "村居名称"],
    "township": _GENERIC_NAMES + TOWNSHIP_NAME_COLUMNS,
    "county": _GENERIC_NAMES + COUNTY_NAME_COLUMNS,
    "city": _GENERIC_NAMES + ["市名称", "城市名称", "地市名称", "city"],
}
# Endings of official names per level (统计用区划代码 spells villages every way).
SUFFIXES = {
    "village": ("村", "社区", "居委会", "村委会", "委员会", "居", "场", "生活区", "小区", "管理区"),
    "township": ("镇", "乡", "街道", "办事处", "管理处", "苏木", "场", "开发区", "管理区", "园区", "管委会", "新区"),
    "county": ("县", "区", "市", "旗", "特区", "林区"),
    "city": ("市", "州", "地区", "盟"),
}
_CJK_RE = re.compile(r"[\u4e00-\u9fff]")


def _pick_all(columns, candidates: list[str]) -> list[str]:
    """Columns matching the candidates (case-insensitive), in candidate order."""
    lower = {str(c).lower(): c for c in columns}
    return [lower[c.lower()] for c in candidates if c.lower() in lower]


def codes_of(series: pd.Series, allow_short: bool = False) -> pd.Series:
    """A column as normalized code strings; 6- and 9-digit county/township
    codes padded to 12 when ``allow_short`` (only for columns named as codes:
    a 6-digit column found by content may be postal codes)."""
    out = series.map(normalize_code)
    if allow_short:
        short = out.str.fullmatch(r"\d{6}|\d{9}")
        out = out.where(~short, out.map(code_of))
    return out


def _code_share(codes: pd.Series) -> float:
    codes = codes[codes != ""]
    return float(codes.map(level_of).notna().mean()) if len(codes) else 0.0


def find_code_column(df: pd.DataFrame) -> tuple[str, bool] | None:
    """(column, allow_short) of the division codes: among the columns named as
    codes holding mostly valid codes (bad ones are set aside later) or unnamed
    columns holding ≥95%, the one with most distinct values (the finest level:
    a village layer may also carry its township's code)."""
    named = _pick_all(df.columns, CODE_COLUMNS)
    best = None
    for col in df.columns:
        if col == "geometry":
            continue
        rank = named.index(col) if col in named else len(CODE_COLUMNS)
        for allow_short in ((False, True) if col in named else (False,)):
            codes = codes_of(df[col], allow_short)
            if _code_share(codes) >= (0.5 if col in named else 0.95):
                key = (codes[codes != ""].nunique(), col in named, -rank)
                if best is None or key > best[0]:
                    best = (key, col, allow_short)
                break
    return (best[1], best[2]) if best else None


def texts_of(series: pd.Series) -> pd.Series:
    """Stripped text values, None for empty cells (full-width spaces too)."""
    def clean(v):
        if v is None or (isinstance(v, float) and v != v):
            return None
        s = str(v).strip().strip("\u3000").strip()
        return s or None
    return series.map(clean).astype(object)


def _texty(values: pd.Series) -> pd.Series | None:
    """The non-empty values of a column that holds names, else None."""
    v = values.dropna()
    if len(v) < 0.5 * max(len(values), 1) or not len(v):
        return None
    if v.str.fullmatch(r"[\d.\-+eE ]+").mean() > 0.2:
        return None
    return v


def _suffix_share(values: pd.Series, level: str) -> float:
    return float(values.str.endswith(SUFFIXES[level]).mean()) if len(values) else 0.0


def _own_name_ok(values: pd.Series) -> bool:
    """A column of the layer's own names: text, mostly distinct — or, in a big
    layer, many distinct names (a province's 30,000 villages repeat 新村, 朝阳社区…)."""
    v = _texty(values)
    if v is None:
        return False
    n = v.nunique()
    return len(v) < 4 or n / len(v) >= 0.3 or (n >= 50 and n / len(v) >= 0.05)


def find_name_column(df: pd.DataFrame, level: str, exclude: set[str]) -> str | None:
    """The column of the units' own names: by header when its content is
    names, else the text column whose values carry the level's suffixes and
    are distinct (so a land-use class or the township name repeated for every
    village is never taken as the village name)."""
    texts = {c: texts_of(df[c]) for c in df.columns if c != "geometry" and c not in exclude}
    for col in _pick_all(texts, NAME_COLUMNS[level]):
        if _own_name_ok(texts[col]):
            return col
    best = None
    for col, values in texts.items():
        v = _texty(values)
        if v is None:
            continue
        distinct = v.nunique() / len(v)
        suffix = _suffix_share(v, level)
        if suffix >= 0.5 and (distinct >= 0.5 or len(v) < 4):
            key = (suffix + distinct, col)
        elif distinct >= 0.9 and v.map(lambda s: bool(_CJK_RE.search(s))).mean() >= 0.8:
            key = (distinct - 1, col)    # names without suffixes: only when nothing better
        else:
            continue
        best = max(best or key, key)
    return best[1] if best else None


def _parent_fit(values: pd.Series, keys: pd.Series) -> tuple[float, float]:
    """(consistency, distinctness) of a column as the name of the parent unit
    identified by ``keys``: one value per parent, different parents different."""
    ok = values.notna()
    if ok.mean() < 0.5:
        return 0.0, 0.0
    counts = pd.DataFrame({"k": keys[ok].values, "v": values[ok].values}).value_counts().reset_index()
    modes = counts.drop_duplicates("k")                   # value_counts sorts by count, highest first
    return float(modes["count"].sum() / ok.sum()), modes["v"].nunique() / len(modes)


def find_parent_name_column(df: pd.DataFrame, codes: pd.Series, parent: str, exclude: set[str]) -> str | None:
    """The column naming each row's township or county (``parent``): constant
    within a parent prefix, different across parents, and named so by its
    header or by its values' suffixes."""
    keys = codes.str[: PREFIX_LEN[parent]]
    n_parents = keys.nunique()
    texts = {c: texts_of(df[c]) for c in df.columns if c != "geometry" and c not in exclude}
    named = _pick_all(texts, TOWNSHIP_NAME_COLUMNS if parent == "township" else COUNTY_NAME_COLUMNS)
    for col in named + [c for c in texts if c not in named]:
        v = _texty(texts[col])
        if v is None:
            continue
        consistency, distinct = _parent_fit(texts[col], keys)
        if consistency < 0.9:
            continue
        # Named so: not one value for all (a province repeats 朝阳街道 across cities,
        # so names need not be distinct); found by content: distinct, with suffixes.
        if col in named and (n_parents < 3 or distinct >= 0.1):
            return col
        if _suffix_share(v, parent) >= 0.6 and (n_parents < 2 or distinct >= 0.5):
            return col
    return None


# -- Shapefile encoding ------------------------------------------------------

# dBASE language-driver IDs (header byte 29) of the CJK code pages.
_LDID_CODEPAGE = {0x4D: "GBK", 0x7A: "GBK", 0x4F: "CP950", 0x78: "CP950", 0x4E: "CP949",
                  0x79: "CP949", 0x13: "CP932", 0x7B: "CP932"}
_CPG_ALIASES = {"65001": "UTF-8", "UTF8": "UTF-8", "936": "GBK", "CP936": "GBK", "ANSI936": "GBK",
                "54936": "GB18030", "20936": "GB2312", "950": "CP950", "ANSI950": "CP950"}
_MULTIBYTE = {"UTF-8", "GBK", "GB18030", "GB2312", "CP950", "BIG5", "CP949", "CP932", "SHIFT_JIS", "EUC_KR", None}
_MAX_DBF_BYTES = 8 << 20


def _dbf_text(dbf: Path) -> tuple[int, bytes]:
    """(language-driver byte, the raw bytes of field names and text values)."""
    with open(dbf, "rb") as f:
        head = f.read(32)
        if len(head) < 32:
            return 0, b""
        n_rec, head_len, rec_len = struct.unpack("<IHH", head[4:12])
        fields, pos = [], 1
        for _ in range(max(0, (head_len - 33) // 32)):
            d = f.read(32)
            if len(d) < 32 or d[0] == 0x0D:
                break
            name, ftype, flen = d[:11].split(b"\0")[0], chr(d[11]), d[16]
            fields.append((name, ftype, pos, flen))
            pos += flen
        f.seek(head_len)
        body = f.read(min(n_rec * rec_len, _MAX_DBF_BYTES)) if rec_len else b""
    parts = [name for name, *_ in fields]
    text_fields = [(p, n) for _, t, p, n in fields if t in "CM"]
    for r in range(0, len(body) - rec_len + 1, rec_len or 1):
        rec = body[r:r + rec_len]
        parts.extend(rec[p:p + n].strip(b" \0") for p, n in text_fields)
    return head[29], b"\n".join(p for p in parts if p)


def _decodes(data: bytes, enc: str) -> bool:
    try:
        data.decode(enc)
        return True
    except (UnicodeDecodeError, LookupError):
        return False


def _guess_encoding(data: bytes) -> str | None:
    """UTF-8 when the bytes are valid UTF-8 (GBK bytes almost never are), else
    the Chinese code page that decodes them into mostly Chinese text."""
    if data.isascii():
        return None
    if _decodes(data, "utf-8"):
        return "UTF-8"
    for enc in ("GBK", "GB18030"):
        if _decodes(data, enc):
            text = "".join(ch for ch in data.decode(enc) if not ch.isascii())
            if text and len(_CJK_RE.findall(text)) / len(text) >= 0.7:
                return enc
    return None


def shapefile_encoding(shp: Path) -> str | None:
    """The encoding to read the DBF's text with, or None to leave it to GDAL
    (ASCII text, or a .cpg naming a code page Python does not know).

    A ``.cpg`` is trusted when it decodes the text; without one (or with a
    wrong one) the header's language driver decides when it names a CJK code
    page, else the content (UTF-8 vs GBK/GB18030).
    """
    sib = {p.name.lower(): p for p in shp.parent.iterdir()}
    dbf = sib.get(shp.with_suffix(".dbf").name.lower())
    cpg = sib.get(shp.with_suffix(".cpg").name.lower())
    if dbf is None:
        return None
    try:
        ldid, data = _dbf_text(dbf)
    except (OSError, struct.error):
        return None
    if cpg is not None:
        key = cpg.read_bytes().decode("ascii", "replace").strip().upper().replace(" ", "").replace("-", "")
        declared = _CPG_ALIASES.get(key, "CP" + key if key.isdigit() else key)
        try:
            declared = codecs.lookup(declared).name.upper()
        except LookupError:                                # unknown to Python: the content decides
            declared = None
        # A Latin code page decodes any bytes: trusted only when no Chinese reading fits.
        latin = declared not in _MULTIBYTE
        if declared and _decodes(data, declared) and not (latin and _guess_encoding(data)):
            return declared
    elif ldid in _LDID_CODEPAGE and _decodes(data, _LDID_CODEPAGE[ldid]):
        return _LDID_CODEPAGE[ldid]
    return _guess_encoding(data)
