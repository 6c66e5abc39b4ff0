"""A seeded demo city (示范市, codes 4399…) with ground truth and the files a city hands over.

>>> city = build_city(seed=7, scale="small")          # doctest: +SKIP
>>> manifest = write_city(city, Path("/tmp/demo"))    # doctest: +SKIP

Scales: ``small`` (1 district + 1 county, ~100 committees; for tests), ``city``
(4 districts + 4 counties, exactly 996 committees, ~40,000 children) and
``province`` (14 cities, ~30,000 committees, ~1.5 million children; CSV only,
no defects and no contact log; for benchmarks).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from . import defects as D
from . import geography, population, writers

__all__ = ["DemoCity", "build_city", "write_city", "generate", "SCALES"]
SCALES = ("small", "city", "province")

VILLAGE_COLUMNS = ["code", "name", "kind", "township_code", "township_name", "county_code", "county_name",
                   "city_code", "city_name", "geometry"]


@dataclass
class DemoCity:
    """Ground truth in memory. ``children`` is what a perfect ingest of the written files loads."""

    seed: int
    scale: str
    as_of: dt.date
    defect_rate: float
    villages: gpd.GeoDataFrame
    townships: gpd.GeoDataFrame
    counties: gpd.GeoDataFrame
    schools: pd.DataFrame
    children: pd.DataFrame
    rooms: pd.DataFrame
    terminals: pd.DataFrame
    attendance: pd.DataFrame
    contacts: pd.DataFrame | None
    cases: pd.DataFrame
    defects: list[dict] = field(default_factory=list)  # filled by write_city (rows are known then)
    _urban: np.ndarray | None = None


def build_city(seed: int = 7, scale: str = "city", defect_rate: float = 0.01,
               as_of: dt.date = date(2026, 6, 30)) -> DemoCity:
    """Build the demo city in memory (no files). Same arguments give identical output."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, not {scale!r}")
    if not 0 <= defect_rate < 0.5:
        raise ValueError("defect_rate must be in [0, 0.5)")
    rng = np.random.default_rng(seed)
    counties, townships, villages = geography.build(rng, scale)
    prng = np.random.default_rng([seed, 1])
    schools = population.build_schools(prng, villages, townships)
    children = population.build_children(prng, villages, schools, as_of, scale)
    children = children.drop(columns=["_age", "_birth64"])
    srng = np.random.default_rng([seed, 2])
    rooms = population.build_rooms(srng, villages, townships, schools, as_of)
    terminals = population.build_terminals(srng, villages, schools, children)
    attendance = population.build_attendance(srng, children, as_of)
    contacts = None if scale == "province" else population.build_contacts(srng, children, as_of)
    cases = population.build_cases(srng, children, as_of)
    urban = villages.urban.to_numpy()
    return DemoCity(seed, scale, as_of, defect_rate, villages[VILLAGE_COLUMNS].copy(), townships, counties,
                    schools[["name", "kind", "village_code", "lon", "lat"]].copy(), children, rooms, terminals,
                    attendance, contacts, cases, [], urban)


def write_city(city: DemoCity, out_dir: Path) -> dict:
    """Write boundaries, registries, facilities, services, defects.csv and manifest.json."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    writers.write_boundaries(city, out)
    if city.scale == "province":
        n_files, n_rows = _write_province_registry(city, out)
        records = []
        ext = ".csv"
    else:
        rng = np.random.default_rng([city.seed, 3])
        plans = writers.registry_plans(city, rng)
        taken = set(city.children.id)
        D.inject(rng, plans, city.defect_rate, city.as_of, taken)
        records = []
        for p in plans:
            if p.kind == "csv":
                records += writers.write_csv(p, out)
            else:
                records += writers.write_xlsx(p, out, rng, city.as_of)
        n_files, n_rows = len(plans), sum(len(p.rows) for p in plans)
        ext = ".xlsx"
    city.defects = records
    writers.write_defects(records, out)
    fac, srv = out / "facilities", out / "services"
    writers.write_table(city.rooms, fac / f"活动室{ext}")
    writers.write_table(city.terminals, fac / f"亲情电话与信箱{ext}")
    writers.write_table(city.attendance, srv / f"家长学校培训记录{ext}")
    if city.contacts is not None:
        writers.write_table(city.contacts, srv / "代理家长帮扶记录.csv")
    writers.write_table(city.cases, srv / f"法律援助案件{ext}")
    kinds = pd.Series([r["kind"] for r in records], dtype=object).value_counts().to_dict()
    manifest = {
        "seed": city.seed, "scale": city.scale, "as_of": city.as_of.isoformat(),
        "defect_rate": city.defect_rate if city.scale != "province" else 0.0,
        "counts": {
            "cities": int(city.villages.city_code.nunique()),
            "counties": int(city.villages.county_code.nunique()),
            "townships": int(city.villages.township_code.nunique()),
            "villages": len(city.villages), "schools": len(city.schools), "children": len(city.children),
            "registry_files": n_files, "registry_rows": n_rows, "defects": len(records),
            "rooms": len(city.rooms), "terminals": len(city.terminals), "attendance": len(city.attendance),
            "contacts": None if city.contacts is None else len(city.contacts), "cases": len(city.cases),
        },
        "defect_kinds": {k: int(v) for k, v in kinds.items()},
        "notes": (["province scale: no defects injected, no contact log (services/代理家长帮扶记录.csv "
                   "not written); registry as one UTF-8 CSV per city"] if city.scale == "province" else []),
        "seconds_to_write": round(time.perf_counter() - t0, 2),
    }
    writers.write_manifest(manifest, out)
    return manifest


def generate(out_dir, seed: int = 7, scale: str = "city", defect_rate: float = 0.01) -> dict:
    """Build and write in one go; returns the manifest."""
    return write_city(build_city(seed=seed, scale=scale, defect_rate=defect_rate), Path(out_dir))


def _write_province_registry(city: DemoCity, out: Path) -> tuple[int, int]:
    """One UTF-8 CSV per city: committee rows then school rows, header on row 1 (polars, vectorised)."""
    import polars as pl

    ch = city.children
    v = pd.DataFrame(city.villages.drop(columns="geometry"))
    vv = v.set_index("code").loc[ch.village_code]
    committee = vv.name.to_numpy(dtype=object) + np.where(vv.kind.to_numpy() == "村", "民委员会", "居民委员会")
    base = pl.DataFrame({
        "姓名": ch.name.to_numpy(dtype=object), "性别": ch.sex.to_numpy(dtype=object),
        "身份证号": ch.id.to_numpy(dtype=object), "出生日期": pd.to_datetime(ch.birth).dt.strftime("%Y-%m-%d").to_numpy(dtype=object),
        "县(市、区)": vv.county_name.to_numpy(dtype=object), "乡镇(街道)": vv.township_name.to_numpy(dtype=object),
        "村(社区)": vv.name.to_numpy(dtype=object), "区划代码": ch.village_code.to_numpy(dtype=object),
        "就读学校": ch.school_name.to_numpy(dtype=object), "年级": ch.grade.to_numpy(dtype=object),
        "班级": ch.class_.to_numpy(dtype=object), "班主任": ch.head_teacher.to_numpy(dtype=object),
        "就学状态": ch.status.to_numpy(dtype=object), "父亲姓名": ch.father_name.to_numpy(dtype=object),
        "父亲务工地": ch.father_work.to_numpy(dtype=object), "父亲电话": ch.father_phone.to_numpy(dtype=object),
        "母亲姓名": ch.mother_name.to_numpy(dtype=object), "母亲务工地": ch.mother_work.to_numpy(dtype=object),
        "母亲电话": ch.mother_phone.to_numpy(dtype=object), "临时监护人": ch.guardian_name.to_numpy(dtype=object),
        "与儿童关系": ch.guardian_relation.to_numpy(dtype=object), "监护人电话": ch.guardian_phone.to_numpy(dtype=object),
        "监护人住址": ch.guardian_address.to_numpy(dtype=object), "性格特点": ch.personality.to_numpy(dtype=object),
        "兴趣爱好": ch.hobbies.to_numpy(dtype=object), "病史": ch.medical.to_numpy(dtype=object),
        "联系卡": np.where(ch.contact_card.to_numpy(), "是", "否").astype(object),
        "亲情号码": ch.family_numbers.to_numpy(dtype=object), "结对帮扶人": ch.helper.to_numpy(dtype=object),
        "帮扶人单位": ch.helper_unit.to_numpy(dtype=object),
        "结对日期": pd.to_datetime(ch.pair_date).dt.strftime("%Y-%m-%d").fillna("").to_numpy(dtype=object),
        "_committee": committee, "_city": vv.city_name.to_numpy(dtype=object),
        "_in_v": ch.in_village_file.to_numpy(), "_in_s": ch.in_school_file.to_numpy(),
    })
    as_of = city.as_of.isoformat()
    vrows = base.filter(pl.col("_in_v")).with_columns(pl.col("_committee").alias("填报单位"))
    srows = base.filter(pl.col("_in_s")).with_columns(pl.col("就读学校").alias("填报单位"), pl.lit("").alias("区划代码"))
    allrows = pl.concat([vrows, srows]).with_columns(pl.lit(as_of).alias("填报日期"))
    (out / "registry").mkdir(parents=True, exist_ok=True)
    files = 0
    for (cname,), part in allrows.group_by("_city", maintain_order=True):
        part = part.with_row_index("序号", offset=1).select(writers.HEADERS)
        part.write_csv(out / "registry" / f"{cname}留守儿童信息台帐.csv")
        files += 1
    return files, allrows.height
