"""Checking and cleaning registry rows (留守儿童信息台帐), one row at a time.

Each row is either turned into a record for ``registry_rows`` or set aside
with a reason code and a Chinese message naming the column and the fix.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass

from . import idcard
from .cleaning import CellError, parse_date, parse_yes_no, text
from .gazetteer import Gazetteer
from .headers import HEADER_LABELS
from .privacy import IdHasher
from .settings import Settings

_SCHOOL_RE = re.compile(r"(学校|小学|中学|幼儿园|完小|教学点|学院|学校分校)$")
TEXT_FIELDS = [
    "school", "grade", "class", "head_teacher", "status", "father_name", "father_work", "father_phone",
    "mother_name", "mother_work", "mother_phone", "guardian_name", "guardian_relation", "guardian_phone",
    "guardian_address", "family_numbers", "helper", "helper_unit",
]
SENSITIVE_FIELDS = ["personality", "hobbies", "medical"]


class RowProblem(Exception):
    def __init__(self, reason: str, column: str | None, message: str):
        super().__init__(message)
        self.reason, self.column, self.message = reason, column, message


@dataclass
class RowContext:
    settings: Settings
    gazetteer: Gazetteer
    hasher: IdHasher
    file_as_of: dt.date | None     # the file's most common 填报日期, for rows that leave it blank
    default_unit: str               # the reporting unit when 填报单位 is blank (from the file name)
    today: dt.date


def source_kind(reporting_unit: str) -> str:
    """'school' for a school's extract, else 'village' (a village or community committee)."""
    return "school" if _SCHOOL_RE.search(reporting_unit) else "village"


def file_as_of(rows: list[tuple[int, list]], columns: dict[str, int]) -> dt.date | None:
    """The most common parseable 填报日期 in a file."""
    i = columns.get("as_of")
    if i is None:
        return None
    seen = Counter()
    for _, cells in rows:
        try:
            d = parse_date(cells[i] if i < len(cells) else None)
        except CellError:
            continue
        if d:
            seen[d] += 1
    return seen.most_common(1)[0][0] if seen else None


def _cell(cells: list, columns: dict[str, int], key: str):
    i = columns.get(key)
    return cells[i] if i is not None and i < len(cells) else None


def _label(key: str) -> str:
    return HEADER_LABELS.get(key, key)


def _masked_rounded(raw) -> str:
    """A rounded ID shown without its middle digits (it is still nearly a real ID)."""
    digits = text(raw) or ""
    if isinstance(raw, float):
        digits = f"{raw:.0f}"
    return idcard.mask(digits) if len(digits) == 18 else digits[:6] + "…"


def check_row(cells: list, columns: dict[str, int], ctx: RowContext) -> dict:
    """A clean record for one registry row, or raise RowProblem."""
    get = lambda key: _cell(cells, columns, key)  # noqa: E731

    raw_id = get("id_number")
    if idcard.looks_excel_rounded(raw_id):
        raise RowProblem("id_excel_rounded", _label("id_number"),
                         f"身份证号“{_masked_rounded(raw_id)}”被 Excel 存成了数字，后几位已丢失。请把该列设为“文本”格式，重新录入完整的18位号码")
    id_number = idcard.normalise(raw_id)
    if not id_number:
        raise RowProblem("missing_id", _label("id_number"), "身份证号为空。请补填儿童的18位身份证号")
    if len(id_number) != 18 or not re.fullmatch(r"\d{17}[\dX]", id_number):
        raise RowProblem("id_format", _label("id_number"),
                         f"身份证号“{idcard.mask(id_number)}”不是18位（{len(id_number)}位）。请核对后重填")
    if idcard.birth_date(id_number) is None:
        raise RowProblem("id_format", _label("id_number"),
                         f"身份证号 {idcard.mask(id_number)} 中的出生日期（第7-14位）不是有效日期。请对照户口簿核对")
    if not idcard.is_valid(id_number):
        raise RowProblem("id_check_digit", _label("id_number"),
                         f"身份证号 {idcard.mask(id_number)} 校验位不对（可能抄错一位）。请对照户口簿核对")
    name = text(get("name"))
    if not name:
        raise RowProblem("missing_name", _label("name"), "姓名为空。请补填儿童姓名")

    id_birth = idcard.birth_date(id_number)
    try:
        birth = parse_date(get("birth"))
    except CellError as e:
        raise RowProblem("bad_date", _label("birth"), f"出生日期：{e.message}") from None
    if birth is None:
        birth = id_birth
    elif birth != id_birth:
        raise RowProblem("birth_mismatch", _label("birth"),
                         f"出生日期 {birth} 与身份证号中的 {id_birth} 不一致。请核对后改正其一")
    try:
        as_of = parse_date(get("as_of")) or ctx.file_as_of
    except CellError as e:
        raise RowProblem("bad_date", _label("as_of"), f"填报日期：{e.message}") from None
    if as_of is None:
        raise RowProblem("missing_as_of", _label("as_of"), "填报日期为空，无法计算年龄。请补填填报日期")
    if as_of > ctx.today:
        raise RowProblem("future_date", _label("as_of"), f"填报日期 {as_of} 晚于今天。请改正")
    if birth > as_of:
        raise RowProblem("future_date", _label("birth"), f"出生日期 {birth} 晚于填报日期 {as_of}。请核对出生日期")

    sex = text(get("sex"))
    if sex and sex not in ("男", "女"):
        raise RowProblem("bad_sex", _label("sex"), f"性别“{sex}”应填“男”或“女”")
    if sex and sex != idcard.sex(id_number):
        raise RowProblem("sex_mismatch", _label("sex"),
                         f"性别“{sex}”与身份证号（{idcard.sex(id_number)}）不一致。请核对后改正")
    age = idcard.age_on(birth, as_of)
    if age >= ctx.settings.age_limit:
        raise RowProblem("over_age_limit", _label("birth"),
                         f"截至填报日期 {as_of} 已满 {age} 周岁，超过 {ctx.settings.age_limit} 周岁的统计范围。请从台帐中移出")

    village_code = _resolve_village(get, ctx.gazetteer)
    unit = text(get("reporting_unit")) or ctx.default_unit
    try:
        card = parse_yes_no(get("contact_card"))
    except CellError as e:
        raise RowProblem("bad_yes_no", _label("contact_card"), f"联系卡：{e.message}") from None
    try:
        pair_date = parse_date(get("pair_date"))
    except CellError as e:
        raise RowProblem("bad_date", _label("pair_date"), f"结对日期：{e.message}") from None

    record = {
        "source_kind": source_kind(unit),
        "reporting_unit": unit,
        "as_of": as_of,
        "child_key": ctx.hasher(id_number),
        "id_masked": idcard.mask(id_number),
        "name": name,
        "sex": sex or idcard.sex(id_number),
        "birth": birth,
        "village_code": village_code,
        "contact_card": card,
        "pair_date": pair_date,
    }
    for key in TEXT_FIELDS:
        record[key] = text(get(key))
    for key in SENSITIVE_FIELDS:
        record[key] = text(get(key)) if ctx.settings.load_sensitive_free_text else None
    return record


def _resolve_village(get, gazetteer: Gazetteer) -> str:
    code = text(get("code"))
    if code and code in gazetteer.codes:
        return code
    county, township, village = text(get("county")), text(get("township")), text(get("village"))
    found = gazetteer.by_names(county, township, village)
    if found:
        return found
    if code:
        raise RowProblem("unknown_village_code", _label("code"),
                         f"区划代码“{code}”不在边界数据的村（社区）中，名称“{village or ''}”也对不上。请核对区划代码")
    if not village:
        raise RowProblem("missing_village", _label("village"), "村（社区）为空。请填写儿童所在村（社区）名称或12位区划代码")
    raise RowProblem("unknown_village", _label("village"),
                     f"找不到“{county or ''}{township or ''}{village}”。请核对县、乡镇、村名称是否为现用名称，或填写12位区划代码")
