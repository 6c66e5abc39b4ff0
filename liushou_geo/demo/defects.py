"""Registry defects, injected into the per-file row plans before writing.

Loaded kinds rewrite a real row in a way a careful ingest normalises. Set-aside
kinds add EXTRA rows (about children who are not in the ground truth), except
``duplicate_row`` which repeats a real row: the second copy is set aside. So the
truth table is exactly what a perfect ingest loads.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from .. import idcard
from . import names as N

LOADED = ["id_spaces", "id_fullwidth", "id_lowercase_x", "name_trailing_spaces", "village_no_suffix"]
SET_ASIDE = ["id_excel_rounded", "id_check_digit", "over_age_limit", "future_date", "sex_mismatch",
             "unknown_village", "duplicate_row"]
KINDS = LOADED + SET_ASIDE
EXPECTED = {k: "loaded" for k in LOADED} | {k: "set_aside" for k in SET_ASIDE}

_FULLWIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
_SUFFIXES = ("村民委员会", "居民委员会", "村委会", "居委会", "社区", "村")


def strip_suffix(name: str) -> str:
    for s in _SUFFIXES:
        if name.endswith(s) and len(name) > len(s) + 1:
            return name[: -len(s)]
    return name


def _new_id(rng, area6: str, born: dt.date, male: bool, taken: set[str], no_x: bool = False) -> str:
    while True:
        i = idcard.make_id(area6, born, int(rng.integers(0, 500)), male)
        if i not in taken and not (no_x and i.endswith("X")):
            taken.add(i)
            return i


def inject(rng: np.random.Generator, plans: list, rate: float, as_of: dt.date, taken: set[str]) -> None:
    """Mutate ``plans`` (each has .rows: list of dicts, .defect: list of kind-or-'') in place."""
    total = sum(len(p.rows) for p in plans)
    n_def = int(round(total * rate))
    if n_def == 0 or total == 0:
        return
    weights = np.array([len(p.rows) for p in plans], dtype=float)
    weights /= weights.sum()
    for k in range(n_def):
        kind = KINDS[k % len(KINDS)]
        for _attempt in range(50):
            plan = plans[int(rng.choice(len(plans), p=weights))]
            real = [i for i, d in enumerate(plan.defect) if d == "" and not plan.extra[i]]
            if not real:
                continue
            if kind == "id_lowercase_x":
                real = [i for i in real if plan.rows[i]["身份证号"].endswith("X")]
                if not real:
                    continue
            i = real[int(rng.integers(0, len(real)))]
            _apply(rng, plan, i, kind, as_of, taken)
            break


def _apply(rng, plan, i: int, kind: str, as_of: dt.date, taken: set[str]) -> None:
    row = plan.rows[i]
    if kind in LOADED:
        if kind == "id_spaces":
            s = row["身份证号"]
            row["身份证号"] = f"{s[:6]} {s[6:14]} {s[14:]}" if rng.random() < 0.6 else f" {s} "
        elif kind == "id_fullwidth":
            row["身份证号"] = row["身份证号"].translate(_FULLWIDTH)
        elif kind == "id_lowercase_x":
            row["身份证号"] = row["身份证号"][:17] + "x"
        elif kind == "name_trailing_spaces":
            row["姓名"] = row["姓名"] + ("  " if rng.random() < 0.5 else " \u3000")
        elif kind == "village_no_suffix":
            row["村(社区)"] = strip_suffix(row["村(社区)"])
            row["区划代码"] = ""
        plan.defect[i] = kind
        return
    if kind == "duplicate_row":
        at = i + 1 if rng.random() < 0.6 else int(rng.integers(i + 1, len(plan.rows) + 1))
        plan.rows.insert(at, dict(row))
        plan.defect.insert(at, kind)
        plan.extra.insert(at, True)
        plan.defect[i] = "dup_source"  # keep the original untouched by other defects
        return
    # Extra rows: a fictitious child modelled on row i (same unit and area).
    new = dict(row)
    area6 = row["区划代码"][:6] if row["区划代码"] else row["_area6"]
    male = bool(rng.random() < 0.5)
    born = as_of - dt.timedelta(days=int(rng.integers(200, 6000)))
    new["姓名"] = str(rng.choice(N.SURNAMES[:30])) + str(rng.choice(N.GIVEN_CHARS)) + str(rng.choice(N.GIVEN_CHARS))
    if kind == "over_age_limit":
        # 18 or 19 years old on the as-of date.
        born = dt.date(as_of.year - 18, as_of.month, as_of.day) - dt.timedelta(days=int(rng.integers(0, 700)))
    elif kind == "future_date":
        born = as_of + dt.timedelta(days=int(rng.integers(5, 300)))
    ident = _new_id(rng, area6, born, male, taken, no_x=kind == "id_excel_rounded")
    new["性别"] = "男" if male else "女"
    new["出生日期"] = born
    if kind == "id_excel_rounded":
        new["身份证号"] = float(int(ident))
    elif kind == "id_check_digit":
        wrong = [c for c in "0123456789X" if c != ident[17]]
        new["身份证号"] = ident[:17] + str(rng.choice(wrong))
    else:
        new["身份证号"] = ident
    if kind == "sex_mismatch":
        new["性别"] = "女" if male else "男"
    if kind == "unknown_village":
        new["村(社区)"] = str(rng.choice(N.OLD_VILLAGE_NAMES))
        new["区划代码"] = ""
    at = int(rng.integers(0, len(plan.rows) + 1))
    plan.rows.insert(at, new)
    plan.defect.insert(at, kind)
    plan.extra.insert(at, True)
