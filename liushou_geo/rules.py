"""Row rules, each stated once and evaluated column-wise over a table of any size.

A table from :mod:`readers` is a polars frame of text cells (``c0``, ``c1``, …)
plus ``row_no``. A kind's checks (``registry_rules``, ``facility_rules``)
first derive typed columns from the cells — cell parsers such as
:func:`cleaning.parse_date` run once per *distinct* value, so a million rows
with a few thousand dates cost a few thousand calls — then list their
:class:`Rule` s in order. :func:`split` gives every row the first rule it
breaks: rows breaking none are loaded, the others are set aside with the
rule's reason code, the header label and a Chinese message for the clerk.

Messages never repeat a cell that may be personal (an ID typed into the
性别 column): values are quoted through :func:`cleaning.shown`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from . import idcard
from .cleaning import CellError, parse_date, parse_yes_no, shown

# Exactly the characters Python's str.strip() treats as whitespace.
PY_WHITESPACE = "".join(chr(i) for i in range(0x110000) if chr(i).isspace())
_FULLWIDTH_FROM = list("０１２３４５６７８９Ｘｘ")
_FULLWIDTH_TO = list("0123456789XX")
_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
_CHECK_CHARS = "10X98765432"
SET_ASIDE_SCHEMA = {"row_no": pl.Int64, "column_name": pl.String, "reason": pl.String, "message": pl.String}


@dataclass(frozen=True)
class Rule:
    """One check: rows where ``fails`` is true are set aside with this reason."""

    reason: str | pl.Expr
    column: str | pl.Expr | None     # the header label the clerk should look at
    fails: pl.Expr                   # null counts as passing
    message: str | pl.Expr


def _lit(v) -> pl.Expr:
    return v if isinstance(v, pl.Expr) else pl.lit(v, dtype=pl.String)


def split(t: pl.DataFrame, rules: list[Rule]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows breaking no rule, set-aside rows: row_no, column_name, reason, message).

    The first rule a row breaks decides its reason, as a clerk reads a row
    from left to right and fixes one thing at a time.
    """
    if not rules or t.height == 0:
        return t, pl.DataFrame(schema=SET_ASIDE_SCHEMA)
    chains = {}
    for name, attr in (("_reason", "reason"), ("_column", "column"), ("_message", "message")):
        expr = None
        for r in rules:
            cond = r.fails.fill_null(False)
            value = _lit(getattr(r, attr))
            expr = pl.when(cond).then(value) if expr is None else expr.when(cond).then(value)
        chains[name] = expr.otherwise(pl.lit(None, dtype=pl.String))
    t = t.with_columns(**chains)
    bad = pl.col("_reason").is_not_null()
    keep = ["_t"] if "_t" in t.columns else []      # a batch of tables: which table the row is from
    aside = t.filter(bad).select(*keep, pl.col("row_no").cast(pl.Int64), column_name="_column", reason="_reason",
                                 message="_message")
    return t.filter(~bad).drop("_reason", "_column", "_message"), aside


# -- cells ---------------------------------------------------------------------

def cell(table, key: str) -> pl.Expr:
    """The raw text of a field's column (null when the table has no such column)."""
    i = table.columns.get(key)
    if i is None or f"c{i}" not in table.frame.columns:
        return pl.lit(None, dtype=pl.String)
    return pl.col(f"c{i}")


def column(table, key: str) -> pl.Series:
    """A field's raw cells as a Series of the table's height (nulls when absent)."""
    return table.frame.select("row_no", cell(table, key).alias("v"))["v"]


def text_expr(e: pl.Expr) -> pl.Expr:
    """:func:`cleaning.text` for text cells: U+3000 as a space, trimmed, null when empty."""
    s = e.str.replace_all("\u3000", " ", literal=True).str.strip_chars(PY_WHITESPACE)
    return pl.when(s.str.len_chars() > 0).then(s).otherwise(None)


def map_unique(values: pl.Series, fn: Callable, dtype) -> pl.Series:
    """``fn`` applied once per distinct value."""
    uniq = values.unique(maintain_order=True)
    mapped = pl.Series("out", [fn(v) for v in uniq.to_list()], dtype=dtype)
    lut = pl.DataFrame({"v": uniq, "out": mapped})
    return pl.DataFrame({"v": values}).join(lut, on="v", how="left", nulls_equal=True,
                                            maintain_order="left")["out"]


def _parsed(parser, value_dtype) -> tuple[Callable, pl.DataType]:
    def run(v):
        try:
            return {"v": parser(v), "bad": False, "msg": None}
        except CellError as e:
            return {"v": None, "bad": True, "msg": e.message}
    return run, pl.Struct({"v": value_dtype, "bad": pl.Boolean, "msg": pl.String})


def parsed(values: pl.Series, parser, value_dtype, prefix: str) -> pl.DataFrame:
    """Columns ``{prefix}`` (value), ``{prefix}_bad`` and ``{prefix}_msg`` from a cell parser."""
    fn, dtype = _parsed(parser, value_dtype)
    s = map_unique(values, fn, dtype)
    return pl.DataFrame({prefix: s.struct.field("v"), f"{prefix}_bad": s.struct.field("bad").fill_null(False),
                         f"{prefix}_msg": s.struct.field("msg")})


def dates(values: pl.Series, prefix: str) -> pl.DataFrame:
    return parsed(values, parse_date, pl.Date, prefix)


def yes_no(values: pl.Series, prefix: str) -> pl.DataFrame:
    return parsed(values, parse_yes_no, pl.Boolean, prefix)


def shown_values(values: pl.Series) -> pl.Series:
    """Cells as they may be quoted in a message (long digit runs hidden)."""
    return map_unique(values, lambda v: shown(v) if v is not None else "", pl.String)


def parse_rule(prefix: str, label: str, reason: str = "bad_date") -> Rule:
    """The rule for a cell its parser could not read (bad date, yes/no, number)."""
    return Rule(reason, label, pl.col(f"{prefix}_bad"), pl.lit(f"{label}：") + pl.col(f"{prefix}_msg"))


# -- resident ID numbers -------------------------------------------------------

def id_columns(raw: pl.Series, hasher=None) -> pl.DataFrame:
    """The ID checks of :mod:`idcard`, column-wise: ``id`` (normalised), ``id_rounded``
    (Excel stored it as a number), ``id_shape_ok`` (17 digits and a digit or X),
    ``id_birth``, ``id_check_ok``, ``id_sex``, ``id_masked`` and ``child_key``
    (keyed hash; only where the ID is fully valid)."""
    t = pl.DataFrame({"raw": raw.cast(pl.String)})
    norm = (pl.col("raw").str.replace_many(_FULLWIDTH_FROM, _FULLWIDTH_TO)
            .str.replace_all(r"[\s\u3000'’‘]", "").str.to_uppercase())
    t = t.with_columns(id=norm)
    digits18 = pl.col("id").str.contains(r"^[0-9]{18}$")
    total = pl.sum_horizontal([pl.col("id").str.slice(i, 1).cast(pl.Int32, strict=False) * w
                               for i, w in enumerate(_WEIGHTS)])
    check = (total % 11).replace_strict(list(range(11)), list(_CHECK_CHARS), default=None, return_dtype=pl.String)
    t = t.with_columns(
        id_shape_ok=pl.col("id").str.contains(r"^[0-9]{17}[0-9X]$").fill_null(False),
        id_check_ok=(check == pl.col("id").str.slice(17, 1)).fill_null(False),
    )
    t = t.with_columns(id_rounded=(
        pl.col("id").str.contains(r"^[0-9](\.[0-9]+)?E\+?[0-9]+$")
        | (digits18 & pl.col("id").str.ends_with("000") & ~pl.col("id_check_ok"))).fill_null(False))
    shape_ok = t["id_shape_ok"]
    birth_part = t["id"].str.slice(6, 8).zip_with(shape_ok, pl.Series([None] * t.height, dtype=pl.String))
    t = t.with_columns(id_birth=map_unique(birth_part, lambda s: idcard.birth_date("000000" + s) if s else None,
                                           pl.Date))
    t = t.with_columns(
        id_sex=pl.when(pl.col("id").str.slice(16, 1).cast(pl.Int32, strict=False) % 2 == 1)
        .then(pl.lit("男")).otherwise(pl.lit("女")),
        id_masked=pl.col("id").str.slice(0, 6) + "********" + pl.col("id").str.slice(14, 4),
    )
    valid = (t["id_shape_ok"] & t["id_birth"].is_not_null() & t["id_check_ok"]).fill_null(False)
    if hasher is not None:
        ids = t["id"].zip_with(valid, pl.Series([None] * t.height, dtype=pl.String))
        t = t.with_columns(child_key=map_unique(ids, lambda s: hasher(s) if s else None, pl.String))
    return t.drop("raw")


def id_rules(label: str) -> list[Rule]:
    """What is wrong with an ID, in the order a clerk would fix it."""
    id_, masked = pl.col("id"), pl.col("id_masked")
    length = id_.str.len_chars().cast(pl.String)
    return [
        Rule("id_excel_rounded", label, pl.col("id_rounded"),
             f"{label}被 Excel 存成了数字，后几位已丢失。请把该列设为“文本”格式，重新录入完整的18位号码"),
        Rule("missing_id", label, id_.is_null() | (id_ == ""), f"{label}为空。请补填儿童的18位身份证号"),
        Rule("id_format", label, ~pl.col("id_shape_ok"),
             pl.when(id_.str.len_chars() != 18)
             .then(pl.lit(f"{label}不是18位（现为") + length + pl.lit("位）。请核对后重填"))
             .otherwise(pl.lit(f"{label}含有数字和末位 X 以外的字符。请核对后重填"))),
        Rule("id_format", label, pl.col("id_birth").is_null(),
             pl.lit(f"{label} ") + masked + pl.lit(" 中的出生日期（第7-14位）不是有效日期。请对照户口簿核对")),
        Rule("id_check_digit", label, ~pl.col("id_check_ok"),
             pl.lit(f"{label} ") + masked + pl.lit(" 校验位不对（可能抄错一位）。请对照户口簿核对")),
    ]


# -- duplicates ----------------------------------------------------------------

def duplicate_of(table) -> pl.Series:
    """Per row, the row number of the first identical row in the table (null for
    the first itself): every cell but 序号, trimmed."""
    if "_dup_of" in table.frame.columns:          # a slice of a big table: found over the whole table
        return table.frame["_dup_of"]
    seq = table.columns.get("seq")
    cells = [c for c in table.frame.columns if c.startswith("c") and c != f"c{seq}"]
    if not cells:
        return pl.Series("dup", [None] * table.frame.height, dtype=pl.Int64)
    f = table.frame.select("row_no", *[pl.col(c).str.strip_chars(PY_WHITESPACE).fill_null("") for c in cells])
    first = f.select(pl.col("row_no").min().over(cells))["row_no"]
    return first.zip_with(first != table.frame["row_no"], pl.Series([None] * len(first), dtype=pl.Int64))


def duplicate_rule() -> Rule:
    return Rule("duplicate_row", None, pl.col("dup_of").is_not_null(),
                pl.lit("与第") + pl.col("dup_of").cast(pl.String) + pl.lit("行完全相同（重复录入），只计一次。请删除重复行"))
