"""Column-wise checks for large tables: the registry and parent-school attendance.

A province hands over its registry as a few CSV files of ~200,000 rows each;
checked one row at a time (:mod:`registry_rows`) every row becomes Python
objects and the ingest took ~7.5 minutes and ~16 GB. Here the same checks run
over whole columns with polars, in two steps:

1. **fast accept**: a row is accepted column-wise only when every check of
   the row path surely passes — a clean 18-digit ID with a valid birth date
   and check digit, a name, parseable dates in order, a sex matching the ID,
   under the age limit, a village found by code or names, a valid yes/no.
   Cells with few distinct values (dates, yes/no, units, village names) go
   through the row path's own parsers once per distinct value, so their
   results are the row path's by construction.
2. **everything else** (a few rows in a hundred in real files) is handed, row
   by row, to the row path's own check (:func:`registry_rows.check_row`,
   :func:`facility_rows.attendance`), which either loads it or sets it aside
   with its reason code and Chinese message.

So loaded rows, set-aside rows, reasons and messages are those of the row
path (``tests/test_registry_bulk.py`` runs both on the same files and
compares the tables).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import polars as pl

from . import facility_rows, idcard
from .cleaning import CellError, parse_date, parse_yes_no
from .privacy import IdHasher
from .readers import PY_WHITESPACE, FrameTable
from .registry_rows import SENSITIVE_FIELDS, TEXT_FIELDS, RowContext, RowProblem, check_row, source_kind

BULK_MIN_ROWS = 20_000           # smaller tables take the row path
BULK_KINDS = ("registry", "attendance")
_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
_CHECK_CHARS = "10X98765432"


def _col(table: FrameTable, key: str) -> pl.Expr:
    i = table.columns.get(key)
    if i is None or f"c{i}" not in table.frame.columns:
        return pl.lit(None, dtype=pl.String)
    return pl.col(f"c{i}")


def text_expr(e: pl.Expr) -> pl.Expr:
    """:func:`cleaning.text` for text cells: \u3000 as a space, trimmed, None when empty."""
    s = e.str.replace_all("\u3000", " ", literal=True).str.strip_chars(PY_WHITESPACE)
    return pl.when(s.str.len_chars() > 0).then(s).otherwise(None)


def map_unique(values: pl.Series, fn: Callable, dtype) -> pl.Series:
    """``fn`` applied once per distinct value (the row path's own parsers)."""
    uniq = values.unique(maintain_order=True)
    mapped = pl.Series("out", [fn(v) for v in uniq.to_list()], dtype=dtype)
    lut = pl.DataFrame({"v": uniq, "out": mapped})
    return (pl.DataFrame({"v": values}).join(lut, on="v", how="left", nulls_equal=True, maintain_order="left")
            ["out"])


def _date_or_error(cell) -> dict:
    try:
        return {"d": parse_date(cell), "bad": False}
    except CellError:
        return {"d": None, "bad": True}


_DATE_STRUCT = pl.Struct({"d": pl.Date, "bad": pl.Boolean})


def parsed_dates(values: pl.Series) -> tuple[pl.Series, pl.Series]:
    """(date or null, unparseable) per cell, by :func:`cleaning.parse_date`."""
    s = map_unique(values, _date_or_error, _DATE_STRUCT)
    return s.struct.field("d"), s.struct.field("bad")


def _yes_no_or_error(cell) -> dict:
    try:
        return {"v": parse_yes_no(cell), "bad": False}
    except CellError:
        return {"v": None, "bad": True}


def clean_id_checks(raw: pl.Expr) -> dict[str, pl.Expr]:
    """For IDs already in clean form (17 digits and a digit or X, nothing else):
    ``ok`` when the check digit is right; plus the ID's sex. The birth date is
    checked separately (once per distinct date)."""
    clean = raw.str.contains(r"^[0-9]{17}[0-9X]$").fill_null(False)
    total = pl.sum_horizontal([raw.str.slice(i, 1).cast(pl.Int32, strict=False) * w
                               for i, w in enumerate(_WEIGHTS)])
    check = (total % 11).replace_strict(list(range(11)), list(_CHECK_CHARS), default=None,
                                        return_dtype=pl.String)
    ok = clean & (check == raw.str.slice(17, 1)).fill_null(False)
    sex = pl.when(raw.str.slice(16, 1).cast(pl.Int32, strict=False) % 2 == 1).then(pl.lit("男")).otherwise(
        pl.lit("女"))
    return {"clean": clean, "ok": ok, "sex": sex}


def _id_birth(ids: pl.Series) -> pl.Series:
    return map_unique(ids.str.slice(6, 8), lambda s: idcard.birth_date("000000" + s) if s else None, pl.Date)


def _hash(ids: pl.Series, hasher: IdHasher) -> pl.Series:
    return map_unique(ids, lambda s: hasher(s) if s else None, pl.String)


def duplicates(table: FrameTable) -> pl.DataFrame:
    """``first`` = the row number of the first identical row (null for the
    first itself), as the row path's signature: every cell but 序号, trimmed."""
    seq = table.columns.get("seq")
    cells = [c for c in table.frame.columns if c.startswith("c") and c != f"c{seq}"]
    sig = [pl.col(c).str.strip_chars(PY_WHITESPACE).fill_null("") for c in cells]
    f = table.frame.select("row_no", *[s.alias(c) for s, c in zip(sig, cells)])
    first = f.select(pl.col("row_no").min().over(cells).alias("first"))["first"]
    return pl.DataFrame({"row_no": table.frame["row_no"],
                         "first": pl.Series(first).zip_with(first != table.frame["row_no"],
                                                            pl.Series([None] * len(first), dtype=pl.Int64))})


def file_as_of(table: FrameTable) -> dt.date | None:
    """:func:`registry_rows.file_as_of`: the most common 填报日期, ties to the first seen."""
    dates, _ = parsed_dates(table.frame.select(_col(table, "as_of").alias("v"))["v"])
    df = pl.DataFrame({"d": dates}).with_row_index("i").drop_nulls("d")
    if not df.height:
        return None
    top = df.group_by("d").agg(n=pl.len(), i=pl.col("i").min()).sort(["n", "i"], descending=[True, False])
    return top["d"][0]


class BulkResult:
    def __init__(self, records: pl.DataFrame, set_aside: list[tuple], reasons: dict[str, int]):
        self.records, self.set_aside, self.reasons = records, set_aside, reasons


def _slow_rows(table: FrameTable, mask: pl.Series, check, file_id: str, rel: str,
               dup_first: pl.Series) -> tuple[list[dict], list[tuple]]:
    """The row path for the rows not fast-accepted (duplicates first)."""
    records, aside = [], []
    sub = table.frame.filter(mask)
    firsts = dup_first.filter(mask).to_list()
    cell_cols = [c for c in table.frame.columns if c.startswith("c")]
    for (row_no, *cells), first in zip(sub.select("row_no", *cell_cols).iter_rows(), firsts):
        if first is not None:
            aside.append((file_id, rel, table.sheet, row_no, None, "duplicate_row",
                          f"与第{first}行完全相同（重复录入），只计一次。请删除重复行"))
            continue
        try:
            rec = check(cells)
        except RowProblem as p:
            aside.append((file_id, rel, table.sheet, row_no, p.column, p.reason, p.message))
            continue
        rec["row_no"] = row_no
        records.append(rec)
    return records, aside


def _finish(fast: pl.DataFrame, slow: list[dict], aside: list[tuple], schema: dict) -> BulkResult:
    slow_df = pl.from_dicts(slow, schema=schema) if slow else pl.DataFrame(schema=schema)
    fast = fast.select([pl.col(c).cast(t) for c, t in schema.items()])
    records = pl.concat([fast, slow_df]).sort("row_no")
    aside.sort(key=lambda r: r[3])
    reasons: dict[str, int] = {}
    for r in aside:
        reasons[r[5]] = reasons.get(r[5], 0) + 1
    return BulkResult(records, aside, reasons)


REGISTRY_SCHEMA = {
    "row_no": pl.Int64, "source_kind": pl.String, "reporting_unit": pl.String, "as_of": pl.Date,
    "child_key": pl.String, "id_masked": pl.String, "name": pl.String, "sex": pl.String, "birth": pl.Date,
    "village_code": pl.String, "contact_card": pl.Boolean, "pair_date": pl.Date,
    **{k: pl.String for k in TEXT_FIELDS}, **{k: pl.String for k in SENSITIVE_FIELDS},
}


def registry(table: FrameTable, ctx: RowContext, file_id: str, rel: str) -> BulkResult:
    """Registry rows: records (``REGISTRY_SCHEMA``) and set-aside rows, as the row path gives them."""
    f = table.frame
    get = lambda key: f.select(_col(table, key).alias("v"))["v"]  # noqa: E731
    as_of_cell, as_of_bad = parsed_dates(get("as_of"))
    birth_cell, birth_bad = parsed_dates(get("birth"))
    pair_date, pair_bad = parsed_dates(get("pair_date"))
    card = map_unique(get("contact_card"), _yes_no_or_error, pl.Struct({"v": pl.Boolean, "bad": pl.Boolean}))

    t = f.select(
        raw_id=_col(table, "id_number"), name=text_expr(_col(table, "name")), sex=text_expr(_col(table, "sex")),
        code=text_expr(_col(table, "code")), county=text_expr(_col(table, "county")),
        township=text_expr(_col(table, "township")), village=text_expr(_col(table, "village")),
        unit=text_expr(_col(table, "reporting_unit")),
        **{k: text_expr(_col(table, k)) for k in TEXT_FIELDS},
        **{k: (text_expr(_col(table, k)) if ctx.settings.load_sensitive_free_text else pl.lit(None, pl.String))
           for k in SENSITIVE_FIELDS},
    )
    ids = clean_id_checks(pl.col("raw_id"))
    t = t.with_columns(id_clean=ids["ok"], id_sex=ids["sex"])
    id_birth = _id_birth(t["raw_id"].zip_with(t["id_clean"], pl.Series([None] * t.height, dtype=pl.String)))

    # Village: by code, else by names (the gazetteer's own lookup, once per distinct combination).
    gz = ctx.gazetteer

    def resolve(v):
        if v["code"] and v["code"] in gz.codes:
            return v["code"]
        return gz.by_names(v["county"], v["township"], v["village"])

    village_code = map_unique(t.select(pl.struct("code", "county", "township", "village").alias("s"))["s"],
                              resolve, pl.String)
    unit = t["unit"].fill_null(ctx.default_unit)
    kind = map_unique(unit, source_kind, pl.String)
    as_of = as_of_cell.fill_null(ctx.file_as_of) if ctx.file_as_of else as_of_cell
    birth = birth_cell.fill_null(id_birth)
    t = t.with_columns(
        as_of=as_of, as_of_bad=as_of_bad, birth=birth, birth_cell=birth_cell, birth_bad=birth_bad,
        id_birth=id_birth, pair_date=pair_date, pair_bad=pair_bad, card=card.struct.field("v"),
        card_bad=card.struct.field("bad"), village_code=village_code, unit=unit, source_kind=kind,
    )
    age = (pl.col("as_of").dt.year() - pl.col("birth").dt.year()
           - ((pl.col("as_of").dt.month() * 100 + pl.col("as_of").dt.day())
              < (pl.col("birth").dt.month() * 100 + pl.col("birth").dt.day())).cast(pl.Int32))
    ok = (pl.col("id_clean") & pl.col("id_birth").is_not_null() & pl.col("name").is_not_null()
          & ~pl.col("birth_bad") & (pl.col("birth_cell").is_null() | (pl.col("birth_cell") == pl.col("id_birth")))
          & ~pl.col("as_of_bad") & pl.col("as_of").is_not_null() & (pl.col("as_of") <= ctx.today)
          & (pl.col("birth") <= pl.col("as_of"))
          & (pl.col("sex").is_null() | (pl.col("sex") == pl.col("id_sex")))
          & (age < ctx.settings.age_limit)
          & pl.col("village_code").is_not_null() & ~pl.col("card_bad") & ~pl.col("pair_bad"))
    dups = duplicates(table)["first"]
    fast_mask = t.select(ok.fill_null(False).alias("ok"))["ok"] & dups.is_null()

    fast = t.with_columns(row_no=f["row_no"]).filter(fast_mask)
    fast = fast.with_columns(
        child_key=_hash(fast["raw_id"], ctx.hasher),
        id_masked=pl.col("raw_id").str.slice(0, 6) + "********" + pl.col("raw_id").str.slice(14, 4),
        reporting_unit=pl.col("unit"), contact_card=pl.col("card"),
        sex=pl.coalesce("sex", "id_sex"),
    )
    slow, aside = _slow_rows(table, ~fast_mask, lambda cells: check_row(cells, table.columns, ctx),
                             file_id, rel, dups)
    return _finish(fast, slow, aside, REGISTRY_SCHEMA)


ATTENDANCE_SCHEMA = {"row_no": pl.Int64, "child_key": pl.String, "guardian_name": pl.String,
                     "attended": pl.Date, "topic": pl.String}


def attendance(table: FrameTable, hasher: IdHasher, file_id: str, rel: str) -> BulkResult:
    """Parent-school attendance rows, as :func:`facility_rows.attendance` gives them."""
    f = table.frame
    attended, bad = parsed_dates(f.select(_col(table, "trained_on").alias("v"))["v"])
    t = f.select("row_no", raw_id=_col(table, "id_number"),
                 guardian_name=text_expr(_col(table, "guardian_name")), topic=text_expr(_col(table, "topic")))
    ids = clean_id_checks(pl.col("raw_id"))
    t = t.with_columns(id_clean=ids["ok"], attended=attended, bad=bad)
    id_birth = _id_birth(t["raw_id"].zip_with(t["id_clean"], pl.Series([None] * t.height, dtype=pl.String)))
    t = t.with_columns(id_birth=id_birth)
    dups = duplicates(table)["first"]
    fast_mask = t.select((pl.col("id_clean") & pl.col("id_birth").is_not_null() & ~pl.col("bad")
                          & pl.col("attended").is_not_null()).fill_null(False).alias("ok"))["ok"] & dups.is_null()
    fast = t.filter(fast_mask)
    fast = fast.with_columns(child_key=_hash(fast["raw_id"], hasher))
    slow, aside = _slow_rows(table, ~fast_mask, lambda cells: facility_rows.attendance(cells, table.columns, hasher),
                             file_id, rel, dups)
    return _finish(fast, slow, aside, ATTENDANCE_SCHEMA)
