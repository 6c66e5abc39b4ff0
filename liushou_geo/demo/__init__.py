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

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the heavy modules load on first use: sheet-rendering worker processes need none
    import geopandas as gpd
    import pandas as pd

__all__ = ["DemoCity", "build_city", "write_city", "generate", "SCALES"]
SCALES = ("small", "city", "province")

VILLAGE_COLUMNS = ["code", "name", "kind", "township_code", "township_name", "county_code", "county_name",
                   "city_code", "city_name", "geometry"]


@dataclass
class DemoCity:
    """Ground truth in memory. ``children`` is what a perfect ingest of the written files loads.

    At province scale ``children`` and ``attendance`` are polars DataFrames (Arrow strings, dates as
    ``Date``, ``pair_date`` null when unpaired): 1.5 million rows as pandas object columns need
    several GB. The other scales keep pandas with Python ``date`` objects.
    """

    seed: int
    scale: str
    as_of: dt.date
    defect_rate: float
    villages: gpd.GeoDataFrame
    townships: gpd.GeoDataFrame
    counties: gpd.GeoDataFrame
    schools: pd.DataFrame
    children: pd.DataFrame  # polars.DataFrame at province scale
    rooms: pd.DataFrame
    terminals: pd.DataFrame
    attendance: pd.DataFrame  # polars.DataFrame at province scale
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
    from . import geography, population

    rng = np.random.default_rng(seed)
    counties, townships, villages = geography.build(rng, scale)
    prng = np.random.default_rng([seed, 1])
    schools = population.build_schools(prng, villages, townships)
    children = population.build_children(prng, villages, schools, as_of, scale)
    if scale != "province":
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
    import pandas as pd

    from . import defects as D
    from . import writers

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    boundaries = writers.write_boundaries(city, out)
    fac, srv = out / "facilities", out / "services"
    shapes = None
    if city.scale == "province":
        n_files, n_rows = _write_province_registry(city, out)
        n_extracts = n_files
        records = []
        for df, path in [(city.rooms, fac / "活动室.csv"), (city.terminals, fac / "亲情电话与信箱.csv"),
                         (city.attendance, srv / "家长学校培训记录.csv"), (city.cases, srv / "法律援助案件.csv")]:
            writers.write_table(df, path)
    else:
        rng = np.random.default_rng([city.seed, 3])
        plans = writers.registry_plans(city, rng)
        taken = set(city.children.id)
        D.inject(rng, plans, city.defect_rate, city.as_of, taken)
        # File shapes come from a stream of their own, so the extracts and defects above stay as they were.
        files = writers.arrange(plans, city.scale, np.random.default_rng([city.seed, 4]))
        tables = [writers.table_job(df, path) for df, path in [
            (city.rooms, fac / "活动室.xlsx"), (city.terminals, fac / "亲情电话与信箱.xlsx"),
            (city.attendance, srv / "家长学校培训记录.xlsx"), (city.cases, srv / "法律援助案件.xlsx")]]
        # Registry and table workbooks are rendered together (in worker processes at city scale).
        records = writers.write_registry(files, out, rng, city.as_of, extra_jobs=tables)
        n_files, n_extracts, n_rows = len(files), len(plans), sum(len(p.rows) for p in plans)
        shapes = writers.shape_counts(files)
    city.defects = records
    writers.write_defects(records, out)
    if city.contacts is not None:
        writers.write_table(city.contacts, srv / "代理家长帮扶记录.csv")
    kinds = pd.Series([r["kind"] for r in records], dtype=object).value_counts().to_dict()
    manifest = {
        "seed": city.seed, "scale": city.scale, "as_of": city.as_of.isoformat(),
        "defect_rate": city.defect_rate if city.scale != "province" else 0.0,
        "counts": {
            "cities": int(city.villages.city_code.nunique()),
            "counties": int(city.villages.county_code.nunique()),
            "townships": int(city.villages.township_code.nunique()),
            "villages": len(city.villages), "schools": len(city.schools), "children": len(city.children),
            "registry_files": n_files, "registry_extracts": n_extracts, "registry_rows": n_rows,
            "defects": len(records),
            "rooms": len(city.rooms), "terminals": len(city.terminals), "attendance": len(city.attendance),
            "contacts": None if city.contacts is None else len(city.contacts), "cases": len(city.cases),
        },
        "defect_kinds": {k: int(v) for k, v in kinds.items()},
        "boundaries": boundaries,
        "registry_shapes": shapes,
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
    """One UTF-8 CSV per city: committee rows then school rows, header on row 1.

    Built and written one city at a time from the polars children table, so only one city's
    registry rows exist at once (the province has ~1.5 million children).
    """
    import pandas as pd
    import polars as pl

    from . import writers

    ch = city.children
    if not isinstance(ch, pl.DataFrame):
        ch = pl.from_pandas(ch)
    v = pd.DataFrame(city.villages.drop(columns="geometry"))
    vil = pl.DataFrame({
        "区划代码": [str(c) for c in v.code], "村(社区)": [str(c) for c in v.name],
        "县(市、区)": [str(c) for c in v.county_name], "乡镇(街道)": [str(c) for c in v.township_name],
        "_committee": [str(n) + ("民委员会" if k == "村" else "居民委员会") for n, k in zip(v.name, v.kind)],
        "_city": [str(c) for c in v.city_name]})
    date_str = [pl.col(c).cast(pl.Date).dt.strftime("%Y-%m-%d") for c in ("birth", "pair_date")]
    base_cols = [
        pl.col("name").alias("姓名"), pl.col("sex").alias("性别"), pl.col("id").alias("身份证号"),
        date_str[0].alias("出生日期"), pl.col("县(市、区)"), pl.col("乡镇(街道)"), pl.col("村(社区)"),
        pl.col("village_code").alias("区划代码"), pl.col("school_name").alias("就读学校"),
        pl.col("grade").alias("年级"), pl.col("class_").alias("班级"), pl.col("head_teacher").alias("班主任"),
        pl.col("status").alias("就学状态"), pl.col("father_name").alias("父亲姓名"),
        pl.col("father_work").alias("父亲务工地"), pl.col("father_phone").alias("父亲电话"),
        pl.col("mother_name").alias("母亲姓名"), pl.col("mother_work").alias("母亲务工地"),
        pl.col("mother_phone").alias("母亲电话"), pl.col("guardian_name").alias("临时监护人"),
        pl.col("guardian_relation").alias("与儿童关系"), pl.col("guardian_phone").alias("监护人电话"),
        pl.col("guardian_address").alias("监护人住址"), pl.col("personality").alias("性格特点"),
        pl.col("hobbies").alias("兴趣爱好"), pl.col("medical").alias("病史"),
        pl.when(pl.col("contact_card")).then(pl.lit("是")).otherwise(pl.lit("否")).alias("联系卡"),
        pl.col("family_numbers").alias("亲情号码"), pl.col("helper").alias("结对帮扶人"),
        pl.col("helper_unit").alias("帮扶人单位"), date_str[1].fill_null("").alias("结对日期"),
        pl.col("_committee"), pl.col("in_village_file").alias("_in_v"), pl.col("in_school_file").alias("_in_s"),
    ]
    as_of = city.as_of.isoformat()
    (out / "registry").mkdir(parents=True, exist_ok=True)
    cities = list(dict.fromkeys(vil["_city"].to_list()))  # order of first appearance
    vcity = dict(zip(vil["区划代码"].to_list(), vil["_city"].to_list()))
    files = rows = 0
    for cname in cities:
        codes = [c for c, n in vcity.items() if n == cname]
        part = (ch.lazy().filter(pl.col("village_code").is_in(codes))
                .join(vil.lazy().drop("_city"), left_on="village_code", right_on="区划代码", how="left",
                      maintain_order="left")
                .select(base_cols).collect())
        if part.height == 0:
            continue
        vrows = part.filter(pl.col("_in_v")).with_columns(pl.col("_committee").alias("填报单位"))
        srows = part.filter(pl.col("_in_s")).with_columns(pl.col("就读学校").alias("填报单位"),
                                                          pl.lit("").alias("区划代码"))
        allrows = pl.concat([vrows, srows]).with_columns(pl.lit(as_of).alias("填报日期"))
        del part, vrows, srows
        allrows.with_row_index("序号", offset=1).select(writers.HEADERS).write_csv(
            out / "registry" / f"{cname}留守儿童信息台帐.csv")
        files += 1
        rows += allrows.height
        del allrows
    return files, rows
