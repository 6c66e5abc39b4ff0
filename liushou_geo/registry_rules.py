"""The registry's row rules (留守儿童信息台帐), for a table of any size.

Each row is loaded into ``registry_rows`` or set aside with the first rule it
breaks: ID (Excel-rounded, missing, format, birth date, check digit), name,
birth date (readable, agreeing with the ID), as-of date (present, not in the
future, after the birth), sex (男/女, agreeing with the ID), age under the
limit, village (by code or names), contact card yes/no, pairing date.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import polars as pl

from .gazetteer import Gazetteer
from .headers import HEADER_LABELS
from .privacy import IdHasher
from .rules import (PY_WHITESPACE, Rule, cell, dates, duplicate_rule, id_columns, id_rules, map_unique,
                    parse_rule, shown_values, split, text_expr, yes_no)
from .settings import Settings

_SCHOOL_RE = re.compile(r"(学校|小学|中学|幼儿园|完小|教学点|学院|学校分校)$")
TEXT_FIELDS = [
    "school", "grade", "class", "head_teacher", "status", "father_name", "father_work", "father_phone",
    "mother_name", "mother_work", "mother_phone", "guardian_name", "guardian_relation", "guardian_phone",
    "guardian_address", "family_numbers", "helper", "helper_unit",
]
SENSITIVE_FIELDS = ["personality", "hobbies", "medical"]
REGISTRY_SCHEMA = {
    "row_no": pl.Int64, "source_kind": pl.String, "reporting_unit": pl.String, "as_of": pl.Date,
    "child_key": pl.String, "id_masked": pl.String, "name": pl.String, "sex": pl.String, "birth": pl.Date,
    "village_code": pl.String, "contact_card": pl.Boolean, "pair_date": pl.Date,
    **{k: pl.String for k in TEXT_FIELDS}, **{k: pl.String for k in SENSITIVE_FIELDS},
}
_RESOLVED = pl.Struct({"code": pl.String, "reason": pl.String, "column": pl.String, "message": pl.String,
                       "candidates": pl.List(pl.String)})
# A table whose placed rows lie (nearly) all in one county or city settles an
# ambiguous name there: a city's file naming 大同镇大同社区 means its own.
_AREA_SHARE = 0.9


@dataclass
class RowContext:
    settings: Settings
    gazetteer: Gazetteer
    hasher: IdHasher
    today: dt.date


@dataclass
class TableContext:
    default_unit: str               # the reporting unit when 填报单位 is blank (from the file name)
    as_of_hint: dt.date | None      # a 填报日期 written above the header, for tables without the column


FIELDS = ["name", "sex", "id_number", "birth", "code", "county", "township", "village", "reporting_unit", "as_of",
          "contact_card", "pair_date", *TEXT_FIELDS, *SENSITIVE_FIELDS]


def source_kind(reporting_unit: str) -> str:
    """'school' for a school's extract, else 'village' (a village or community committee)."""
    return "school" if _SCHOOL_RE.search(reporting_unit or "") else "village"


def normalise(table, number: int, tctx: TableContext) -> pl.DataFrame:
    """One table's rows under the registry's field names, with ``_t`` (its number in
    a batch), ``_sig`` (the row's cells but 序号: identical rows are duplicates)
    and its context; many tables are checked together as one frame."""
    f = table.frame
    seq = table.columns.get("seq")
    cells = [c for c in f.columns if c.startswith("c") and c != f"c{seq}"]
    sig = pl.concat_str([pl.col(c).str.strip_chars(PY_WHITESPACE).fill_null("") for c in cells], separator="\x1f") \
        if cells else pl.lit("")
    return f.select(pl.col("row_no").cast(pl.Int64), pl.lit(number, dtype=pl.Int32).alias("_t"), sig.alias("_sig"),
                    *[cell(table, k).cast(pl.String).alias(k) for k in FIELDS],
                    pl.lit(tctx.default_unit, dtype=pl.String).alias("_default_unit"),
                    pl.lit(tctx.as_of_hint, dtype=pl.Date).alias("_hint"))


def _table_as_of(f: pl.DataFrame, as_of_cell: pl.Series) -> pl.Series:
    """Per row, its table's most common readable 填报日期 (ties: the first seen), else
    the date written above the header: for rows that leave the column blank."""
    d = pl.DataFrame({"_t": f["_t"], "d": as_of_cell}).with_row_index("i")
    top = (d.drop_nulls("d").group_by("_t", "d").agg(n=pl.len(), i=pl.col("i").min())
           .sort(["_t", "n", "i"], descending=[False, True, False]).unique("_t", keep="first").select("_t", "d"))
    return (f.select("_t", "_hint").join(top, on="_t", how="left", maintain_order="left")
            .select(pl.coalesce("d", "_hint"))["d"])


def _label(key: str) -> str:
    return HEADER_LABELS.get(key, key)


def resolve_villages(t: pl.DataFrame, gazetteer: Gazetteer, what: str = "村（社区）") -> pl.DataFrame:
    """Columns village_code / village_reason / village_column / village_message from the
    code, county, township and village columns (one lookup per distinct combination)."""
    def one(s):
        r = gazetteer.resolve(s["code"], s["county"], s["township"], s["village"], what)
        return {"code": r.code, "reason": r.reason, "column": r.column, "message": r.message,
                "candidates": list(r.candidates)}

    s = map_unique(t.select(pl.struct("code", "county", "township", "village").alias("s"))["s"], one, _RESOLVED)
    return pl.DataFrame({"village_code": s.struct.field("code"), "village_reason": s.struct.field("reason"),
                         "village_column": s.struct.field("column"), "village_message": s.struct.field("message"),
                         "village_candidates": s.struct.field("candidates")})


def settle_by_area(t: pl.DataFrame) -> pl.DataFrame:
    """Ambiguous names settled by the table's own area: the county (else city) where
    at least 90 % of its placed rows lie, when exactly one candidate is there."""
    amb = t.filter(pl.col("village_reason") == "ambiguous_village")
    if not amb.height:
        return t
    placed = t.filter(pl.col("village_code").is_not_null())
    areas: dict[int, list[str]] = {}
    for n in (6, 4):
        top = (placed.group_by("_t", p=pl.col("village_code").str.slice(0, n)).len()
               .with_columns(share=pl.col("len") / pl.col("len").sum().over("_t"))
               .filter(pl.col("share") >= _AREA_SHARE))
        for table, p in top.select("_t", "p").iter_rows():
            areas.setdefault(table, []).append(p)
    settled = {}
    for table, cands in amb.select("_t", "village_candidates").unique().iter_rows():
        for p in areas.get(table, []):
            keep = [c for c in cands if c.startswith(p)]
            if len(keep) == 1:
                settled[(table, tuple(cands))] = keep[0]
                break
    if not settled:
        return t
    key = pl.struct("_t", "village_candidates")
    fix = map_unique(t.select(key.alias("k"))["k"],
                     lambda k: settled.get((k["_t"], tuple(k["village_candidates"] or ()))), pl.String)
    return t.with_columns(fix.alias("_settled")).with_columns(
        village_code=pl.coalesce("village_code", "_settled"),
        **{c: pl.when(pl.col("_settled").is_null()).then(pl.col(c)) for c in
           ("village_reason", "village_column", "village_message")}).drop("_settled")


def check(f: pl.DataFrame, ctx: RowContext) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(records in REGISTRY_SCHEMA plus ``_t``, set-aside rows plus ``_t``) for a frame of
    :func:`normalise` d tables (one table or many: the same rules, column-wise)."""
    get = lambda key: f[key]  # noqa: E731
    t = f.select(
        "row_no", "_t", name=text_expr(pl.col("name")), sex=text_expr(pl.col("sex")),
        code=text_expr(pl.col("code")), county=text_expr(pl.col("county")),
        township=text_expr(pl.col("township")), village=text_expr(pl.col("village")),
        unit=pl.coalesce(text_expr(pl.col("reporting_unit")), pl.col("_default_unit")),
        **{k: text_expr(pl.col(k)) for k in TEXT_FIELDS},
        **{k: (text_expr(pl.col(k)) if ctx.settings.load_sensitive_free_text else pl.lit(None, pl.String))
           for k in SENSITIVE_FIELDS},
    )
    first = f.select(pl.col("row_no").min().over("_t", "_sig"))["row_no"]
    dup_of = first.zip_with(first != f["row_no"], pl.Series([None] * f.height, dtype=pl.Int64))
    t = pl.concat([
        t.with_columns(source_kind=map_unique(t["unit"], source_kind, pl.String), dup_of=dup_of,
                       sex_shown=shown_values(t["sex"])),
        id_columns(get("id_number"), ctx.hasher),
        dates(get("birth"), "birth_cell"), dates(get("as_of"), "as_of_cell"), dates(get("pair_date"), "pair_date"),
        yes_no(get("contact_card"), "card"),
    ], how="horizontal")
    t = t.with_columns(as_of=pl.coalesce(pl.col("as_of_cell"), _table_as_of(f, t["as_of_cell"])),
                       birth=pl.coalesce("birth_cell", "id_birth"))
    # Month and day come as Int8: widen before month * 100 overflows.
    md = lambda c: pl.col(c).dt.month().cast(pl.Int32) * 100 + pl.col(c).dt.day().cast(pl.Int32)  # noqa: E731
    t = t.with_columns(age=(pl.col("as_of").dt.year().cast(pl.Int32) - pl.col("birth").dt.year().cast(pl.Int32)
                            - (md("as_of") < md("birth")).cast(pl.Int32)))
    t = settle_by_area(pl.concat([t, resolve_villages(t, ctx.gazetteer)], how="horizontal"))

    birth, as_of, limit = _label("birth"), _label("as_of"), ctx.settings.age_limit
    fmt = lambda c: pl.col(c).dt.to_string("%Y-%m-%d")  # noqa: E731
    rules = [
        duplicate_rule(),
        *id_rules(_label("id_number")),
        Rule("missing_name", _label("name"), pl.col("name").is_null(), "姓名为空。请补填儿童姓名"),
        parse_rule("birth_cell", birth),
        Rule("birth_mismatch", birth, pl.col("birth_cell") != pl.col("id_birth"),
             pl.lit(f"{birth} ") + fmt("birth_cell") + " 与身份证号中的 " + fmt("id_birth") + " 不一致。请核对后改正其一"),
        parse_rule("as_of_cell", as_of),
        Rule("missing_as_of", as_of, pl.col("as_of").is_null(), "填报日期为空，无法计算年龄。请补填填报日期"),
        Rule("future_date", as_of, pl.col("as_of") > ctx.today, pl.lit(f"{as_of} ") + fmt("as_of") + " 晚于今天。请改正"),
        Rule("future_date", birth, pl.col("birth") > pl.col("as_of"),
             pl.lit(f"{birth} ") + fmt("birth") + " 晚于填报日期 " + fmt("as_of") + "。请核对出生日期"),
        Rule("bad_sex", _label("sex"), pl.col("sex").is_not_null() & ~pl.col("sex").is_in(["男", "女"]),
             "性别“" + pl.col("sex_shown") + "”应填“男”或“女”"),
        Rule("sex_mismatch", _label("sex"), pl.col("sex").is_not_null() & (pl.col("sex") != pl.col("id_sex")),
             "性别“" + pl.col("sex") + "”与身份证号（" + pl.col("id_sex") + "）不一致。请核对后改正"),
        Rule("over_age_limit", birth, pl.col("age") >= limit,
             "截至填报日期 " + fmt("as_of") + " 已满 " + pl.col("age").cast(pl.String)
             + f" 周岁，超过 {limit} 周岁的统计范围。请从台帐中移出"),
        Rule(pl.col("village_reason"), pl.col("village_column"), pl.col("village_reason").is_not_null(),
             pl.col("village_message")),
        parse_rule("card", _label("contact_card"), "bad_yes_no"),
        parse_rule("pair_date", _label("pair_date")),
    ]
    ok, aside = split(t, rules)
    records = ok.with_columns(reporting_unit="unit", contact_card="card", sex=pl.coalesce("sex", "id_sex"))
    return records.select("_t", *[pl.col(c).cast(d) for c, d in REGISTRY_SCHEMA.items()]), aside
