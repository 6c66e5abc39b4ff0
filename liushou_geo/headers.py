"""Recognising column headers and, from them, what kind of file a table is.

Real headers carry spaces, line breaks, full-width brackets and synonyms
(REGISTRY_FORMAT.md, "How real files deviate"); ``canonical`` folds them all
onto one field key.
"""

from __future__ import annotations

import re
from functools import lru_cache

_FOLD = str.maketrans({"（": "(", "）": ")", "，": ",", "、": ",", "：": ":", "　": "", "／": "/"})

# field key -> header spellings (after folding: no spaces, half-width brackets)
SYNONYMS: dict[str, list[str]] = {
    "seq": ["序号", "编号"],
    "name": ["姓名", "儿童姓名", "学生姓名"],
    "sex": ["性别"],
    "id_number": ["身份证号", "身份证号码", "公民身份号码", "身份证件号码", "儿童身份证号", "证件号码"],
    "birth": ["出生日期", "出生年月", "出生年月日"],
    "county": ["县(市,区)", "县(市区)", "县市区", "县(区)", "县区", "县(市)"],
    "township": ["乡镇(街道)", "乡镇", "乡(镇,街道)", "乡镇街道", "乡(镇)"],
    "village": ["村(社区)", "村(居)", "村居", "村(居)委会", "村社区", "村"],
    "code": ["区划代码", "行政区划代码", "统计用区划代码", "村(社区)代码", "村代码", "代码", "区划编码"],
    "school": ["就读学校", "学校", "学校名称"],
    "grade": ["年级"],
    "class": ["班级"],
    "head_teacher": ["班主任"],
    "status": ["就学状态", "就读状态", "在校情况"],
    "father_name": ["父亲姓名"],
    "father_work": ["父亲务工地", "父亲务工地点", "父亲外出务工地点", "父亲务工地址"],
    "father_phone": ["父亲电话", "父亲联系电话", "父亲手机", "父亲手机号码"],
    "mother_name": ["母亲姓名"],
    "mother_work": ["母亲务工地", "母亲务工地点", "母亲外出务工地点", "母亲务工地址"],
    "mother_phone": ["母亲电话", "母亲联系电话", "母亲手机", "母亲手机号码"],
    "guardian_name": ["临时监护人", "临时监护人姓名", "监护人姓名", "监护人"],
    "guardian_relation": ["与儿童关系", "与儿童的关系", "监护人与儿童关系", "监护人与儿童的关系", "监护人关系"],
    "guardian_phone": ["监护人电话", "监护人联系电话", "监护人手机", "监护人手机号码"],
    "guardian_address": ["监护人住址", "监护人地址", "家庭住址", "监护人家庭住址"],
    "personality": ["性格特点"],
    "hobbies": ["兴趣爱好"],
    "medical": ["病史", "既往病史"],
    "contact_card": ["联系卡", "是否发放联系卡"],
    "family_numbers": ["亲情号码", "亲情电话号码"],
    "helper": ["结对帮扶人", "帮扶人", "代理家长", "帮扶人姓名", "结对帮扶人姓名"],
    "helper_unit": ["帮扶人单位", "帮扶单位", "帮扶人所在单位", "帮扶人工作单位"],
    "pair_date": ["结对日期", "结对时间"],
    "reporting_unit": ["填报单位"],
    "as_of": ["填报日期"],
    # facilities and services
    "room_name": ["名称", "活动室名称"],
    "host": ["依托单位"],
    "lon": ["经度"],
    "lat": ["纬度"],
    "built": ["建成日期"],
    "cost": ["投入资金(元)", "投入资金"],
    "room_status": ["状态"],
    "unit_name": ["单位名称"],
    "unit_kind": ["单位类型"],
    "terminals": ["亲情电话终端数", "终端数"],
    "mailbox": ["邮政信箱", "信箱"],
    "trained_on": ["培训日期"],
    "topic": ["培训主题"],
    "contact_date": ["日期", "帮扶日期"],
    "mode": ["方式", "帮扶方式"],
    "case_no": ["案件编号"],
    "eligible": ["符合援助条件"],
    "aided": ["已提供法律援助"],
    "filed": ["立案日期"],
    # division code table (统计用区划代码); its name column is also spelt 名称
    # or 单位名称, which other kinds own: see columns_for_kind
    "div_name": ["区划名称", "行政区划名称", "区划代码名称"],
    "div_level": ["级别", "层级", "区划级别", "行政级别"],
    "div_parent": ["上级代码", "上级区划代码", "父级代码", "上级编码"],
    "urban_rural": ["城乡分类代码", "城乡分类"],
}
HEADER_LABELS = {key: spellings[0] for key, spellings in SYNONYMS.items()}
_LOOKUP = {spelling: key for key, spellings in SYNONYMS.items() for spelling in spellings}

# kind -> fields whose presence identifies it (all required)
KIND_SIGNATURES: dict[str, set[str]] = {
    "registry": {"name", "id_number"},
    "rooms": {"host", "room_status"},
    "terminals": {"terminals"},
    "attendance": {"id_number", "trained_on"},
    "contacts": {"id_number", "contact_date", "mode"},
    "legal_cases": {"case_no", "eligible"},
}
# Fields a file of that kind cannot do without (reported once per file); each
# entry is a tuple of alternatives, any one of which will do.
REQUIRED: dict[str, list[tuple[str, ...]]] = {
    "registry": [("name",), ("id_number",), ("village", "code")],
    "rooms": [("host",), ("room_status",)],
    "terminals": [("unit_name",), ("terminals",), ("village", "code", "township")],
    "attendance": [("id_number",), ("trained_on",)],
    "contacts": [("id_number",), ("contact_date",), ("mode",)],
    "legal_cases": [("case_no",), ("id_number",), ("eligible",), ("aided",)],
    "division_codes": [("code",), ("div_name",)],
}


def missing_required(kind: str, columns: dict[str, int]) -> list[str]:
    """Header labels of the required fields a table lacks ("村(社区)或区划代码")."""
    return ["或".join(HEADER_LABELS[k] for k in alts) for alts in REQUIRED[kind]
            if not any(k in columns for k in alts)]
KIND_LABELS = {
    "registry": "留守儿童信息台帐",
    "rooms": "活动室",
    "terminals": "亲情电话与信箱",
    "attendance": "家长学校培训记录",
    "contacts": "代理家长帮扶记录",
    "legal_cases": "法律援助案件",
    "boundaries": "行政区划边界",
    "division_codes": "统计用区划代码表",
}


def fold(text: object) -> str:
    """Header text without whitespace, with half-width brackets and commas."""
    return "".join(str(text or "").split()).translate(_FOLD)


_MARKS = "*＊※★"
_HINT_RE = re.compile(r"\([^()]*\)$")


def canonical(header: object) -> str | None:
    """The field key a header names, or None when it names none we know.

    Templates mark required columns (``*姓名``) and add hints in brackets
    (``身份证号（18位）``, ``联系卡（是/否）``); both are ignored when the bare
    header is one we know. A unit in brackets is not a hint: 投入资金(万元) is
    not 投入资金(元). A flattened two-row header ``父亲情况/姓名`` is read as
    its group and sub-label (:func:`group_key`).
    """
    if isinstance(header, str):
        if header.lstrip()[:1] not in _FIRST_CHARS and "/" not in header and "／" not in header:
            return None             # a child's name, an ID, a date: no spelling starts so
        # Header and head-row cells repeat across a city's hundreds of files.
        return _canonical(header)
    return _canonical_uncached(header)


@lru_cache(maxsize=65536)
def _canonical(header: str) -> str | None:
    return _canonical_uncached(header)


def _canonical_uncached(header: object) -> str | None:
    folded = fold(header)
    if folded[:1] not in _FIRST_CHARS and "/" not in folded:
        return None                 # a child's name, an ID, a date: no spelling starts so
    key = _single(folded)
    if key is None and "/" in folded:
        group, _, sub = folded.partition("/")
        if group and sub:
            key = group_key(group, sub)
    return key


# The first character of every spelling, with or without a required-mark.
_FIRST_CHARS = {s[0] for s in _LOOKUP} | set(_MARKS)


def _single(folded: str) -> str | None:
    key = _LOOKUP.get(folded)
    if key:
        return key
    bare = folded.strip(_MARKS)
    key = _LOOKUP.get(bare)
    if key:
        return key
    unhinted = _HINT_RE.sub("", bare)
    if unhinted and unhinted != bare:
        key = _LOOKUP.get(unhinted)
        if key and key != "cost":
            return key
    return None


# Groups of a two-row header (``父亲情况`` over ``姓名 | 务工地点 | 联系电话``):
# a word in the group label -> prefixes tried before the sub-label, and the
# field keys a sub-label may take under it. Under a person's group ``姓名``
# is that person's name, never the child's.
_PERSON_GROUPS: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("父亲", ("父亲",), ("father_name", "father_work", "father_phone")),
    ("母亲", ("母亲",), ("mother_name", "mother_work", "mother_phone")),
    ("监护人", ("监护人", "临时监护人", ""),
     ("guardian_name", "guardian_relation", "guardian_phone", "guardian_address")),
    ("帮扶", ("帮扶人", "结对帮扶人", "结对", ""), ("helper", "helper_unit", "pair_date")),
    ("结对", ("帮扶人", "结对帮扶人", "结对", ""), ("helper", "helper_unit", "pair_date")),
    ("代理家长", ("帮扶人", "代理家长", ""), ("helper", "helper_unit", "pair_date")),
]


@lru_cache(maxsize=65536)
def group_key(group: object, sub: object) -> str | None:
    """The field key of a sub-label under a group label of a two-row header.

    ``父亲情况``/``姓名`` -> father_name, ``临时监护人情况``/``住址`` ->
    guardian_address, ``结对帮扶情况``/``单位`` -> helper_unit; under any other
    group (``儿童基本情况``, ``就学情况``) the sub-label keeps its own meaning.
    """
    g, s = fold(group), fold(sub)
    if not s:
        return _single(g)
    for word, prefixes, keys in _PERSON_GROUPS:
        if word in g and not (word == "父亲" and "母亲" in g):
            for p in prefixes:
                key = _single(p + s.strip(_MARKS))
                if key in keys:
                    return key
            return None
    return _single(s)


def map_header(cells: list) -> dict[str, int]:
    """Field key -> column index for one header row (first occurrence wins)."""
    found: dict[str, int] = {}
    for i, cell in enumerate(cells):
        key = canonical(cell)
        if key and key not in found:
            found[key] = i
    return found


# A registry extract that lost its ID column (or its name column) is still a
# registry extract: two of these fields recognise it, and the missing required
# column is then reported for the file instead of the file being unrecognised.
_REGISTRY_CORE = {"name", "id_number", "sex", "birth"}


def detect_kind(fields: set[str]) -> str | None:
    """The file kind whose signature the fields carry; the most specific wins.

    ``division_codes`` is only a candidate from the header (a code and a name
    column, nothing else's signature): the reader confirms it on the codes.
    """
    matches = [k for k, sig in KIND_SIGNATURES.items() if sig <= fields and k != "registry"]
    if matches:
        # attendance/contacts/legal cases carry an ID too; their own columns
        # say what they are, so they win over the registry's generic ones.
        return max(matches, key=lambda k: len(KIND_SIGNATURES[k]))
    if KIND_SIGNATURES["registry"] <= fields or len(fields & _REGISTRY_CORE) >= 2:
        return "registry"
    if "code" in fields and fields & _DIVISION_NAMES and not fields & _NOT_DIVISION:
        return "division_codes"
    return None


# A code table's name column, under each of its spellings.
_DIVISION_NAMES = {"div_name", "room_name", "unit_name"}
# Fields no code table has: a table carrying them is something else.
_NOT_DIVISION = set(SYNONYMS) - {"seq", "code", "county", "township", "village", "div_level", "div_parent",
                                 "urban_rural", *_DIVISION_NAMES}


def columns_for_kind(kind: str | None, columns: dict[str, int]) -> dict[str, int]:
    """The column map under the kind's own keys (a code table's 名称 is ``div_name``)."""
    if kind != "division_codes" or "div_name" in columns:
        return columns
    out = dict(columns)
    for alt in ("room_name", "unit_name"):
        if alt in out:
            out["div_name"] = out.pop(alt)
            break
    return out
