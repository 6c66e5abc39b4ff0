"""Children, schools and the programme's services, generated column-wise with numpy.

One code path for every scale: arrays per attribute, no per-child Python work
except building IDs with :func:`liushou_geo.idcard.make_id` below the
province scale (the province uses the same rule vectorised, checked on a sample).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl

from .. import idcard
from . import names as N
from .geography import sample_points

_SURNAME_P = 1.0 / (np.arange(len(N.SURNAMES)) + 4.0)
_SURNAME_P /= _SURNAME_P.sum()
_SURNAMES = np.array(N.SURNAMES)
_GIVEN = np.array(N.GIVEN_CHARS)


def _cat(*parts) -> np.ndarray:
    """Element-wise string concatenation of arrays / scalars."""
    out = np.asarray(parts[0]).astype(object)
    for p in parts[1:]:
        out = out + np.asarray(p).astype(object)
    return out


def surnames(rng, n) -> np.ndarray:
    return _SURNAMES[rng.choice(len(_SURNAMES), n, p=_SURNAME_P)]


def given_names(rng, n) -> np.ndarray:
    a = _GIVEN[rng.integers(0, len(_GIVEN), n)]
    b = _GIVEN[rng.integers(0, len(_GIVEN), n)]
    return np.where(rng.random(n) < 0.75, _cat(a, b), a).astype(object)


def full_names(rng, n, surname=None) -> np.ndarray:
    s = surnames(rng, n) if surname is None else surname
    return _cat(s, given_names(rng, n))


def phones(rng, n) -> np.ndarray:
    head = np.array(["13", "15", "17", "18", "19", "13", "15", "18"])[rng.integers(0, 8, n)]
    tail = pd.Series(rng.integers(0, 10**9, n)).astype(str).str.zfill(9).to_numpy(dtype=object)
    return _cat(head, tail)


def _dates(days: np.ndarray) -> np.ndarray:
    """datetime64[D] from days since epoch."""
    return days.astype("datetime64[D]")


def _to_pydate(a: np.ndarray) -> np.ndarray:
    return pd.to_datetime(a).date if len(a) else np.array([], dtype=object)


def _age(birth: np.ndarray, as_of: dt.date) -> np.ndarray:
    y = birth.astype("datetime64[Y]").astype(int) + 1970
    md = (birth - birth.astype("datetime64[Y]")).astype(int)  # day of year, proxy via month/day below
    m = birth.astype("datetime64[M]").astype(int) % 12 + 1
    d = (birth - birth.astype("datetime64[M]")).astype(int) + 1
    del md
    before = (m > as_of.month) | ((m == as_of.month) & (d > as_of.day))
    return as_of.year - y - before.astype(int)


def make_ids(area6: np.ndarray, birth: np.ndarray, seq: np.ndarray, male: np.ndarray) -> np.ndarray:
    """IDs as idcard.make_id builds them; per-row below 200k rows, vectorised above."""
    n = len(area6)
    if n <= 200_000:
        bd = _to_pydate(birth)
        return np.array([idcard.make_id(a, b, int(s), bool(m)) for a, b, s, m in zip(area6, bd, seq, male)],
                        dtype=object)
    seqv = seq % 500 * 2 + male.astype(int)
    ymd = pd.Series(birth).dt.strftime("%Y%m%d").to_numpy(dtype=object)
    body = _cat(area6, ymd, pd.Series(seqv).astype(str).str.zfill(3).to_numpy(dtype=object))
    digits = np.frombuffer("".join(body).encode("ascii"), dtype=np.uint8).reshape(n, 17) - 48
    w = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
    chk = np.array(list("10X98765432"))[(digits.astype(np.int64) @ w) % 11]
    ids = _cat(body, chk)
    for i in np.linspace(0, n - 1, 500).astype(int):  # same rule as the shared helper
        b = pd.Timestamp(birth[i]).date()
        assert ids[i] == idcard.make_id(area6[i], b, int(seq[i]), bool(male[i]))
    return ids


def build_schools(rng, villages: pd.DataFrame, townships: pd.DataFrame) -> pd.DataFrame:
    """Per township a 中心小学, a 中心幼儿园 and an 初级中学; per county a 第一中学 (high school)."""
    vg = villages.set_index("code")
    seat = villages.sort_values(["township_code", "kind", "code"], ascending=[True, False, True]) \
        .groupby("township_code").code.first()
    rows = []
    for t in townships.itertuples():
        for kind, suffix in (("小学", "中心小学"), ("幼儿园", "中心幼儿园"), ("初中", "初级中学")):
            rows.append(dict(name=t.name + suffix, kind=kind, village_code=seat[t.code],
                             township_code=t.code, county_code=t.county_code))
    for ccode, grp in townships.groupby("county_code", sort=True):
        t0 = grp.sort_values("code").iloc[0]
        rows.append(dict(name=t0.county_name + "第一中学", kind="高中", village_code=seat[t0.code],
                         township_code=t0.code, county_code=ccode))
    schools = pd.DataFrame(rows)
    pts = np.array([sample_points(rng, vg.geometry[v], 1)[0] for v in schools.village_code])
    schools["lon"], schools["lat"] = pts[:, 0].round(6), pts[:, 1].round(6)
    return schools


# --- Column-wise string building for children: numeric draws first, strings via polars (Arrow) ---
# Every random draw below happens in the same order and with the same sizes as the original
# object-array code, so the output is unchanged; only the strings are built without one Python
# object per cell (the province's 1.5 million children would otherwise need ~8 GB).

_NS, _NG = len(N.SURNAMES), len(N.GIVEN_CHARS)
_S_PL = pl.Series(list(N.SURNAMES) + [""], dtype=pl.String)  # last entry: the empty sentinel
_G_PL = pl.Series(list(N.GIVEN_CHARS) + [""], dtype=pl.String)
_PHONE_HEADS = pl.Series(["13", "15", "17", "18", "19", "13", "15", "18"], dtype=pl.String)


def _surname_idx(rng, n) -> np.ndarray:
    """The draw of :func:`surnames`, as indices."""
    return rng.choice(_NS, n, p=_SURNAME_P)


def _given_idx(rng, n) -> tuple[np.ndarray, np.ndarray]:
    """The draws of :func:`given_names`, as indices (second char = sentinel for one-char names)."""
    a = rng.integers(0, _NG, n)
    b = rng.integers(0, _NG, n)
    return a, np.where(rng.random(n) < 0.75, b, _NG)


def _names_pl(s, a, b, keep=None) -> pl.Series:
    if keep is not None:
        s, a, b = np.where(keep, s, _NS), np.where(keep, a, _NG), np.where(keep, b, _NG)
    return _S_PL.gather(s) + _G_PL.gather(a) + _G_PL.gather(b)


def _phone_idx(rng, n) -> tuple[np.ndarray, np.ndarray]:
    """The draws of :func:`phones`."""
    return rng.integers(0, 8, n), rng.integers(0, 10**9, n)


def _phones_pl(head, tail) -> pl.Series:
    return _PHONE_HEADS.gather(head) + pl.Series(tail).cast(pl.String).str.zfill(9)


def _keep_pl(s: pl.Series, keep: np.ndarray) -> pl.Series:
    """s where keep, else ''."""
    return pl.select(pl.when(pl.Series(keep)).then(s).otherwise(pl.lit(""))).to_series()


def _vocab_pl(values) -> pl.Series:
    return pl.Series([str(v) for v in values], dtype=pl.String)


def _ids_pl(area: np.ndarray, birth: np.ndarray, seq: np.ndarray, male: np.ndarray) -> pl.Series:
    """IDs by the rule of idcard.make_id, vectorised on integers (checked on a sample)."""
    seqv = (seq % 500 * 2 + male.astype(np.int64)).astype(np.int64)
    y = birth.astype("datetime64[Y]").astype(np.int64) + 1970
    m = birth.astype("datetime64[M]").astype(np.int64) % 12 + 1
    d = (birth - birth.astype("datetime64[M]")).astype(np.int64) + 1
    ymd = y * 10000 + m * 100 + d
    w = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
    total = np.zeros(len(area), dtype=np.int64)
    for k, (val, width) in enumerate(((area.astype(np.int64), 6), (ymd, 8), (seqv, 3))):
        off = (0, 6, 14)[k]
        for j in range(width):
            total += (val // 10 ** (width - 1 - j) % 10) * w[off + j]
    chk = pl.Series(list("10X98765432"), dtype=pl.String).gather(total % 11)
    ids = (pl.Series(area).cast(pl.String).str.zfill(6) + pl.Series(ymd).cast(pl.String).str.zfill(8)
           + pl.Series(seqv).cast(pl.String).str.zfill(3) + chk)
    n = len(area)
    if n:
        for i in np.unique(np.linspace(0, n - 1, min(n, 500)).astype(int)):  # same rule as the shared helper
            b = pd.Timestamp(birth[i]).date()
            assert ids[int(i)] == idcard.make_id(f"{int(area[i]):06d}", b, int(seq[i]), bool(male[i]))
    return ids


def _obj_to_pl(a: np.ndarray) -> pl.Series:
    """A low-cardinality numpy string/object array as a polars String Series."""
    codes, uniques = pd.factorize(a)
    return _vocab_pl(list(uniques)).gather(codes)


def build_children(rng, villages: pd.DataFrame, schools: pd.DataFrame, as_of: dt.date,
                   scale: str) -> pd.DataFrame | pl.DataFrame:
    """One row per child. Below the province a pandas DataFrame (with ``_age`` and ``_birth64``);
    at the province a polars DataFrame (Arrow strings, dates as Date, no helper columns)."""
    big = scale == "province"
    nv = len(villages)
    urban = villages.urban.to_numpy()
    t_codes, t_inv = np.unique(villages.township_code.to_numpy(), return_inverse=True)
    t_factor = rng.gamma(3.0, 1 / 3.0, len(t_codes))[t_inv]
    rural_mean, urban_mean = {"small": (40.0, 12.0), "city": (46.0, 12.0)}.get(scale, (52.0, 14.0))
    lam = np.where(urban, urban_mean, rural_mean) * t_factor * rng.gamma(5.0, 0.2, nv)
    counts = rng.poisson(lam)
    vidx = np.repeat(np.arange(nv), counts)
    n = len(vidx)

    # Ages 0-17 on the as-of date: born within the 18 years up to it.
    as_of64 = np.datetime64(as_of, "D")
    try:
        eighteen = dt.date(as_of.year - 18, as_of.month, as_of.day)
    except ValueError:  # 29 February
        eighteen = dt.date(as_of.year - 18, 3, 1)
    start = np.datetime64(eighteen, "D") + 1
    span = int((as_of64 - start).astype(int))
    birth = start + rng.integers(0, span + 1, n).astype("timedelta64[D]")
    age = _age(birth, as_of)
    male = rng.random(n) < 0.53

    v_code = [str(c) for c in villages.code]
    v_tc = [str(c) for c in villages.township_code]
    v_cc = [str(c) for c in villages.county_code]
    v_name = [str(c) for c in villages.name]
    v_tname = [str(c) for c in villages.township_name]
    v_cname = [str(c) for c in villages.county_name]
    v_ju = villages.kind.to_numpy() == "居"
    area = np.array([int(c[:6]) for c in v_cc], dtype=np.int64)[vidx]

    # Unique IDs: sequence numbers counted within (area, birth, sex) from a random offset.
    key = pd.DataFrame({"a": area, "b": birth, "m": male})
    grp = key.groupby(["a", "b", "m"], sort=False)
    gid = grp.ngroup().to_numpy()
    seq = grp.cumcount().to_numpy() + rng.integers(0, 400, gid.max() + 1 if n else 0)[gid]
    del key, grp, gid
    ids = _ids_pl(area, birth, seq, male)
    del area, seq

    # Enrolment status by age.
    u = rng.random(n)
    status = np.full(n, "未入学", dtype=object)
    status[(age >= 3) & (age <= 5)] = "学前"
    school_age = (age >= 6) & (age <= 15)
    status[school_age & (u < 0.98)] = "在校"
    status[school_age & (u >= 0.98) & (age >= 10)] = "辍学"
    hs = age >= 16
    status[hs] = np.where(u[hs] < 0.7, "在校", "辍学")
    kg = (status == "学前") & (rng.random(n) < 0.6)

    # School of each child (row in `schools`, -1 for none): township's 小学 / 初中 / 幼儿园, county's 高中.
    s_pos = {(str(t), str(k)): i for i, (t, k) in enumerate(zip(schools.township_code, schools.kind))}
    h_pos = {str(c): i for i, (c, k) in enumerate(zip(schools.county_code, schools.kind)) if k == "高中"}
    level = np.full(n, "", dtype=object)
    enrolled = status == "在校"
    level[enrolled & (age <= 11)] = "小学"
    level[enrolled & (age >= 12) & (age <= 14)] = "初中"
    level[enrolled & (age >= 15)] = "高中"
    level[kg] = "幼儿园"
    sidx = np.full(n, -1, dtype=np.int64)
    for lv in ("小学", "初中", "幼儿园"):
        m = level == lv
        sidx[m] = np.array([s_pos.get((t, lv), -1) for t in v_tc], dtype=np.int64)[vidx[m]]
    m = level == "高中"
    sidx[m] = np.array([h_pos.get(c, -1) for c in v_cc], dtype=np.int64)[vidx[m]]
    has_school = sidx >= 0
    school = _vocab_pl(list(schools.name) + [""]).gather(np.where(has_school, sidx, len(schools)))
    grade_names = {3: "小班", 4: "中班", 5: "大班", 6: "一年级", 7: "二年级", 8: "三年级", 9: "四年级",
                   10: "五年级", 11: "六年级", 12: "七年级", 13: "八年级", 14: "九年级", 15: "高一", 16: "高二",
                   17: "高三"}
    ga = np.array([grade_names.get(a, "") for a in range(18)], dtype=object)
    grade = np.where(has_school, ga[age], "")
    kk = np.where(has_school, rng.integers(1, 5, n), 0)
    klass = pl.Series(["", "1班", "2班", "3班", "4班"], dtype=pl.String).gather(kk)
    # One head teacher per (school name, grade, class), numbered in order of first appearance
    # (schools of namesake townships in different counties share a name, hence the key).
    gcode = pd.factorize(ga)[0]
    ncode = np.append(pd.factorize(schools.name.to_numpy())[0], -1)[sidx]  # sidx -1 -> -1
    combo = ((ncode + 1) * 32 + np.where(has_school, gcode[age], gcode[0])) * 8 + kk
    code_ = pd.factorize(combo)[0]
    del combo
    teachers = full_names(rng, code_.max() + 1)
    head = np.where(has_school, teachers[code_], "")

    sname = _surname_idx(rng, n)
    name = _names_pl(sname, *_given_idx(rng, n))
    msur = _surname_idx(rng, n)
    father = _names_pl(sname, *_given_idx(rng, n))
    mother = _names_pl(msur, *_given_idx(rng, n))
    wp = np.array(N.WORK_PLACES)
    fwork, mwork = wp[rng.integers(0, len(wp), n)], wp[rng.integers(0, len(wp), n)]
    same = rng.random(n) < 0.6  # parents often work in the same place
    mwork = np.where(same, fwork, mwork)
    fphone, mphone = _phones_pl(*_phone_idx(rng, n)), _phones_pl(*_phone_idx(rng, n))

    rel = np.array(N.GUARDIAN_RELATIONS)[rng.integers(0, len(N.GUARDIAN_RELATIONS), n)]
    gsur = np.where(np.isin(rel, ["祖父", "伯父", "叔叔", "哥哥", "姐姐", "姑姑"]), sname,
                    np.where(np.isin(rel, ["外祖父", "舅舅"]), msur, _surname_idx(rng, n)))
    has_g = rng.random(n) < 0.97
    gname = _names_pl(gsur, *_given_idx(rng, n), keep=has_g)
    grel = np.where(has_g, rel, "")
    gphone = _keep_pl(_phones_pl(*_phone_idx(rng, n)), has_g)
    del sname, msur, gsur
    a1, a2 = rng.integers(1, 13, n), rng.integers(1, 60, n)
    vpre = _vocab_pl([c + t + v for c, t, v in zip(v_cname, v_tname, v_name)]).gather(vidx)
    tail = (pl.Series(a1).cast(pl.String) + pl.Series(["组", "栋"], dtype=pl.String).gather(v_ju[vidx].astype(np.int64))
            + pl.Series(a2).cast(pl.String) + "号")
    gaddr = _keep_pl(vpre + tail, has_g)
    del vpre, tail, a1, a2

    pers = np.array(N.PERSONALITY)[rng.integers(0, len(N.PERSONALITY), n)]
    hob = np.array(N.HOBBIES)
    h1, h2 = rng.integers(0, len(hob), n), rng.integers(0, len(hob), n)
    both = (rng.random(n) < 0.4) & (hob[h1] != hob[h2])
    hobbies = _vocab_pl(hob).gather(h1) + _vocab_pl([f"、{h}" for h in hob] + [""]).gather(
        np.where(both, h2, len(hob)))
    medical = np.array(N.MEDICAL)[rng.integers(0, len(N.MEDICAL), n)]
    card = rng.random(n) < 0.95
    seps = pl.Series([";", "；", "、", ","], dtype=pl.String).gather(rng.integers(0, 4, n))
    two = rng.random(n) < 0.6
    first_f = two | (rng.random(n) < 0.5)
    fam = pl.select(
        pl.when(pl.Series(first_f)).then(fphone).otherwise(mphone)
        + pl.when(pl.Series(two)).then(seps + mphone).otherwise(pl.lit(""))).to_series()
    del seps

    # Pairing: a rate per township, some under the 60 % target.
    t_rate = rng.uniform(0.5, 0.8, len(t_codes))[t_inv][vidx]
    paired = rng.random(n) < t_rate
    hsur = _surname_idx(rng, n)
    helper = _names_pl(hsur, *_given_idx(rng, n), keep=paired)
    choice = rng.integers(0, 7, n)
    table = []
    for t, c, v, ju in zip(v_tname, v_cname, v_name, v_ju):
        table += [t + ("办事处" if t.endswith("街道") else "人民政府"), t + "中心小学", c + "妇联", c + "教育局",
                  c + "人民医院", c + "志愿者协会", v + ("居民委员会" if ju else "民委员会")]
    unit = _vocab_pl(table + [""]).gather(np.where(paired, vidx * 7 + choice, 7 * nv))
    del table, choice, hsur
    p_start = np.datetime64("2023-09-01")
    p_span = int((as_of64 - 20 - p_start).astype(int))
    pdays = p_start + rng.integers(0, p_span, n).astype("timedelta64[D]")
    pdays = np.maximum(pdays, birth + 30)

    vc = _vocab_pl(v_code).gather(vidx)
    cols = {
        "id": ids, "name": name, "sex": np.where(male, "男", "女"), "birth": None,
        "village_code": vc, "school_name": school, "grade": grade, "class_": klass, "head_teacher": head,
        "status": status, "father_name": father, "father_work": fwork, "father_phone": fphone,
        "mother_name": mother, "mother_work": mwork, "mother_phone": mphone,
        "guardian_name": gname, "guardian_relation": grel, "guardian_phone": gphone,
        "guardian_address": gaddr, "personality": pers, "hobbies": hobbies, "medical": medical,
        "contact_card": card, "family_numbers": fam, "helper": helper, "helper_unit": unit,
        "pair_date": None,
        "in_village_file": ~(has_school & (rng.random(n) < 0.07)),
        "in_school_file": has_school,
    }
    if big:
        cols["birth"] = pl.Series(birth.astype("datetime64[D]"))
        cols["pair_date"] = pl.Series(np.where(paired, pdays, np.datetime64("NaT", "D")).astype("datetime64[D]"))
        out = {}
        for k in list(cols):
            v = cols.pop(k)  # hand each column over and let the temporaries go
            if isinstance(v, np.ndarray):
                v = pl.Series(v) if v.dtype.kind in "bifM" else _obj_to_pl(v)
            out[k] = v.alias(k)
        return pl.DataFrame(list(out.values()))
    cols["birth"] = _to_pydate(birth)
    cols["pair_date"] = np.where(paired, _to_pydate(pdays), None)
    children = pd.DataFrame({k: v.to_numpy() if isinstance(v, pl.Series) else v for k, v in cols.items()})
    children["_age"] = age
    children["_birth64"] = birth
    return children


def build_rooms(rng, villages: pd.DataFrame, townships: pd.DataFrame, schools: pd.DataFrame,
                as_of: dt.date) -> pd.DataFrame:
    vg = villages.set_index("code")
    rows = []
    for t in townships.itertuples():
        vs = villages[villages.township_code == t.code]
        active = rng.random() < 0.76
        statuses = []
        if active:
            statuses += ["在用"] * (1 + int(rng.random() < 0.3))
            statuses += list(rng.choice(["在建", "停用"], int(rng.integers(0, 2))))
        elif rng.random() < 0.6:
            statuses.append(str(rng.choice(["在建", "停用"])))
        for st in statuses:
            if rng.random() < 0.35:
                s = schools[(schools.township_code == t.code) & (schools.kind != "幼儿园")].sample(
                    1, random_state=int(rng.integers(1 << 31))).iloc[0]
                host, vcode = s["name"], s.village_code
            else:
                v = vs.iloc[int(rng.integers(0, len(vs)))]
                host = v["name"] + ("民委员会" if v.kind == "村" else "居民委员会")
                vcode = v.code
            v = vg.loc[vcode]
            pt = sample_points(rng, v.geometry, 1)[0]
            built = "" if st == "在建" else (
                dt.date(2016, 9, 1) + dt.timedelta(days=int(rng.integers(0, (as_of - dt.date(2016, 9, 1)).days))))
            label = host[:-4] if host.endswith("民委员会") and not host.endswith("居民委员会") else host
            label = label[:-5] if label.endswith("居民委员会") else label
            rows.append({"名称": label + "留守儿童活动室",
                         "区划代码": vcode, "县(市、区)": v.county_name, "乡镇(街道)": v.township_name,
                         "村(社区)": v["name"], "依托单位": host, "经度": round(pt[0], 6), "纬度": round(pt[1], 6),
                         "建成日期": built,
                         "投入资金(元)": int(30000 if rng.random() < 0.8 else rng.choice([20000, 25000, 35000, 50000])),
                         "状态": st})
    return pd.DataFrame(rows)


def _sizes(children, col: str, skip_empty: bool = False) -> pd.Series:
    """Children per value of ``col`` (pandas or polars children)."""
    if isinstance(children, pl.DataFrame):
        c = children.lazy().select(col)
        if skip_empty:
            c = c.filter(pl.col(col) != "")
        c = c.group_by(col).len().collect()
        return pd.Series(c["len"].to_numpy(), index=c[col].to_list())
    if skip_empty:
        children = children[children[col] != ""]
    return children.groupby(col).size()


def build_terminals(rng, villages, schools, children) -> pd.DataFrame:
    per_v = _sizes(children, "village_code")
    per_s = _sizes(children, "school_name", skip_empty=True)
    vg = villages.set_index("code")
    units = []
    for s in schools.itertuples():
        v = vg.loc[s.village_code]
        units.append((s.name, s.village_code, v.county_name, v.township_name, v["name"], "学校",
                      int(per_s.get(s.name, 0))))
    for v in villages.itertuples():
        units.append((v.name + ("民委员会" if v.kind == "村" else "居民委员会"), v.code, v.county_name,
                      v.township_name, v.name, "村委会" if v.kind == "村" else "居委会", int(per_v.get(v.code, 0))))
    df = pd.DataFrame(units, columns=["单位名称", "区划代码", "县(市、区)", "乡镇(街道)", "村(社区)", "单位类型", "_n"])
    need = np.maximum(1, np.ceil(df._n.to_numpy() / 60)).astype(int)
    short = rng.random(len(df)) < 0.3
    have = np.where(short, need - rng.integers(1, need + 1), need + (rng.random(len(df)) < 0.1))
    df["亲情电话终端数"] = np.maximum(have, 0)
    df["邮政信箱"] = np.where(rng.random(len(df)) < 0.9, "是", "否")
    return df.drop(columns="_n")


def build_attendance(rng, children, as_of: dt.date) -> pd.DataFrame:
    n = len(children)
    u = rng.random(n)
    k = np.where(u < 0.8, rng.integers(1, 4, n), np.where(u < 0.9, 1, 0))
    recent = u < 0.8
    idx = np.repeat(np.arange(n), k)
    a64 = np.datetime64(as_of, "D")
    off = np.where(recent[idx], rng.integers(0, 365, len(idx)), rng.integers(366, 730, len(idx)))
    date = a64 - off.astype("timedelta64[D]")
    if isinstance(children, pl.DataFrame):  # province: Arrow strings, no Python object per cell
        g = children["guardian_name"].gather(idx)
        mum = rng.random(len(idx)) < 0.5
        alt = pl.select(pl.when(pl.Series(mum)).then(children["mother_name"].gather(idx))
                        .otherwise(children["father_name"].gather(idx))).to_series()
        use_g = (g != "").to_numpy() & (rng.random(len(idx)) < 0.75)
        who = pl.select(pl.when(pl.Series(use_g)).then(g).otherwise(alt)).to_series()
        df = pl.DataFrame([who.alias("监护人姓名"), children["id"].gather(idx).alias("儿童身份证号"),
                           pl.Series("培训日期", date),
                           _vocab_pl(N.TRAINING_TOPICS).gather(
                               rng.integers(0, len(N.TRAINING_TOPICS), len(idx))).alias("培训主题")])
        return df.sort(["培训日期", "儿童身份证号"], maintain_order=True)
    g = children.guardian_name.to_numpy()[idx]
    alt = np.where(rng.random(len(idx)) < 0.5, children.mother_name.to_numpy()[idx],
                   children.father_name.to_numpy()[idx])
    who = np.where((g != "") & (rng.random(len(idx)) < 0.75), g, alt)
    df = pd.DataFrame({"监护人姓名": who, "儿童身份证号": children.id.to_numpy()[idx],
                       "培训日期": _to_pydate(date),
                       "培训主题": np.array(N.TRAINING_TOPICS)[rng.integers(0, len(N.TRAINING_TOPICS), len(idx))]})
    return df.sort_values(["培训日期", "儿童身份证号"], ignore_index=True)


def build_contacts(rng, children, as_of: dt.date) -> pd.DataFrame:
    """Monthly 电话/走访, a quarterly 活动, 心理辅导 each holiday, a year-end 总结; some lapse."""
    p = children[children.helper != ""]
    n = len(p)
    ids, helper = p.id.to_numpy(), p.helper.to_numpy()
    pair = pd.to_datetime(pd.Series(p.pair_date.to_numpy())).to_numpy().astype("datetime64[D]")
    a64 = np.datetime64(as_of, "D")
    first = (np.datetime64(as_of, "M") - 11)
    months = first + np.arange(12)
    diligence = rng.choice([0.97, 0.75, 0.45], n, p=[0.65, 0.25, 0.10])
    lapse = np.where(rng.random(n) < 0.12, rng.integers(3, 12, n), 99)  # stops contacting after month k
    out = []

    def emit(mask2d, day_lo, day_hi, kind_arr):
        ci, mi = np.nonzero(mask2d)
        day = months[mi].astype("datetime64[D]") + rng.integers(day_lo, day_hi, len(ci)).astype("timedelta64[D]")
        ok = (day <= a64) & (day >= pair[ci])
        kinds = kind_arr(len(ci))
        out.append(pd.DataFrame({"儿童身份证号": ids[ci][ok], "帮扶人": helper[ci][ok], "日期": day[ok],
                                 "方式": kinds[ok]}))

    alive = np.arange(12)[None, :] < lapse[:, None]
    monthly = alive & (rng.random((n, 12)) < diligence[:, None])
    emit(monthly, 0, 28, lambda m: np.where(rng.random(m) < 0.65, "电话", "走访"))
    mnum = months.astype(int) % 12 + 1
    quarter_mid = np.isin(mnum, [2, 5, 8, 11])[None, :]
    emit(alive & quarter_mid & (rng.random((n, 12)) < diligence[:, None]), 0, 28,
         lambda m: np.full(m, "活动", dtype=object))
    holiday = np.isin(mnum, [1, 7])[None, :]
    emit(alive & holiday & (rng.random((n, 12)) < diligence[:, None]), 15, 45,
         lambda m: np.full(m, "心理辅导", dtype=object))
    yearend = (mnum == 12)[None, :]
    emit(alive & yearend & (rng.random((n, 12)) < 0.9), 18, 31, lambda m: np.full(m, "总结", dtype=object))
    df = pd.concat(out, ignore_index=True)
    df["日期"] = _to_pydate(df["日期"].to_numpy())
    return df.sort_values(["日期", "儿童身份证号"], ignore_index=True)


def build_cases(rng, children, as_of: dt.date) -> pd.DataFrame:
    n = max(1, int(rng.poisson(len(children) / 1000)))
    pick = rng.choice(len(children), n, replace=False)
    elig = rng.random(n) < 0.8
    given = elig & (rng.random(n) < 0.9)
    a64 = np.datetime64(as_of, "D")
    day = np.sort(a64 - rng.integers(0, 730, n).astype("timedelta64[D]"))
    years = day.astype("datetime64[Y]").astype(int) + 1970
    seqs = pd.Series(years).groupby(years).cumcount().to_numpy() + 1
    return pd.DataFrame({
        "案件编号": [f"示法援〔{y}〕{s:04d}号" for y, s in zip(years, seqs)],
        "儿童身份证号": (children["id"].gather(pick).to_numpy() if isinstance(children, pl.DataFrame)
                   else children.id.to_numpy()[pick]),
        "符合援助条件": np.where(elig, "是", "否"), "已提供法律援助": np.where(given, "是", "否"),
        "立案日期": _to_pydate(day)})
