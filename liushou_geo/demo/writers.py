"""Write a DemoCity as the files a city hands over (REGISTRY_FORMAT.md), with defects.

Registry extracts are planned one per reporting unit (:func:`registry_plans`), defects are injected
into the plans, then :func:`arrange` gives each extract a file shape real clerks send (small and city
scales; a random stream of its own, so the rows and defects do not depend on it):

===========================================================  =====================================
``registry/villages/<县区>/<乡镇>/<村>留守儿童信息台帐.xlsx``     one committee (most)
``registry/villages/<县区>/<乡镇>/<村>留守儿童信息台帐.xls``      one committee, legacy BIFF8 (~10 %)
``registry/villages/<县区>/<乡镇>/<村>留守儿童信息台帐.txt``      one committee, Excel "Unicode 文本"
``registry/villages/<县区>/<乡镇>/<乡镇>留守儿童信息台帐.xlsx``   1 (small) or 2 (city) townships: one
                                                             sheet per committee + 填表说明 + 汇总
``registry/schools/<县区>/<学校>留守儿童信息台帐.xlsx``          one school
``registry/城关区留守儿童信息台帐.csv``                          the district's committees, GB18030
===========================================================  =====================================

Two-row headers with merged groups (父亲情况 …) on ~20 % of the workbooks, county / township /
village names in vertically merged cells on ~15 % of the .xlsx. ``defects.csv`` gives the file,
sheet (blank for .csv / .txt) and 1-based row of every defect as written. Boundaries: see
:mod:`.boundaries`.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import boundaries as B
from . import defects as D
from . import sheets as S

HEADERS = ["序号", "姓名", "性别", "身份证号", "出生日期", "县(市、区)", "乡镇(街道)", "村(社区)", "区划代码",
           "就读学校", "年级", "班级", "班主任", "就学状态", "父亲姓名", "父亲务工地", "父亲电话", "母亲姓名",
           "母亲务工地", "母亲电话", "临时监护人", "与儿童关系", "监护人电话", "监护人住址", "性格特点", "兴趣爱好",
           "病史", "联系卡", "亲情号码", "结对帮扶人", "帮扶人单位", "结对日期", "填报单位", "填报日期"]
CSV_DISTRICT = "439902"  # this district sends one GB18030 CSV for all its committees


@dataclass
class FilePlan:
    """One reporting unit's extract (a committee or a school): its rows and where they are written."""

    path: str  # relative to out_dir
    kind: str  # 'village' | 'school' | 'csv'
    title: str
    unit: str
    rows: list = field(default_factory=list)
    defect: list = field(default_factory=list)
    extra: list = field(default_factory=list)
    has_code: bool = True
    county: str = ""
    township: str = ""
    township_code: str = ""
    village: str = ""  # committees only


@dataclass
class RegistryFile:
    """One file written: an extract, or (format 'township') one workbook holding several extracts."""

    path: str
    fmt: str  # 'xlsx' | 'xls' | 'txt' | 'csv' | 'township'
    plans: list
    two_row: bool = False  # two-row header with merged groups
    merged_places: bool = False  # county / township / village names in vertically merged cells


def committee(name: str, kind: str) -> str:
    return name + ("民委员会" if kind == "村" else "居民委员会")


def _canonical_rows(city) -> pd.DataFrame:
    """One canonical registry row per child (no 填报单位 yet), joined with village names."""
    ch = city.children
    v = pd.DataFrame(city.villages.drop(columns="geometry")).set_index("code")
    vv = v.loc[ch.village_code]
    yes = np.where(ch.contact_card.to_numpy(), "是", "否")
    return pd.DataFrame({
        "姓名": ch.name.to_numpy(), "性别": ch.sex.to_numpy(), "身份证号": ch.id.to_numpy(),
        "出生日期": ch.birth.to_numpy(), "县(市、区)": vv.county_name.to_numpy(),
        "乡镇(街道)": vv.township_name.to_numpy(), "村(社区)": vv.name.to_numpy(),
        "区划代码": ch.village_code.to_numpy(), "就读学校": ch.school_name.to_numpy(),
        "年级": ch.grade.to_numpy(), "班级": ch.class_.to_numpy(), "班主任": ch.head_teacher.to_numpy(),
        "就学状态": ch.status.to_numpy(), "父亲姓名": ch.father_name.to_numpy(),
        "父亲务工地": ch.father_work.to_numpy(), "父亲电话": ch.father_phone.to_numpy(),
        "母亲姓名": ch.mother_name.to_numpy(), "母亲务工地": ch.mother_work.to_numpy(),
        "母亲电话": ch.mother_phone.to_numpy(), "临时监护人": ch.guardian_name.to_numpy(),
        "与儿童关系": ch.guardian_relation.to_numpy(), "监护人电话": ch.guardian_phone.to_numpy(),
        "监护人住址": ch.guardian_address.to_numpy(), "性格特点": ch.personality.to_numpy(),
        "兴趣爱好": ch.hobbies.to_numpy(), "病史": ch.medical.to_numpy(), "联系卡": yes,
        "亲情号码": ch.family_numbers.to_numpy(), "结对帮扶人": ch.helper.to_numpy(),
        "帮扶人单位": ch.helper_unit.to_numpy(),
        "结对日期": np.where(ch.pair_date.isna().to_numpy(), "", ch.pair_date.to_numpy()),
        "_area6": ch.village_code.str[:6].to_numpy(), "_village_kind": vv.kind.to_numpy(),
        "_county": vv.county_name.to_numpy(), "_in_v": ch.in_village_file.to_numpy(),
        "_in_s": ch.in_school_file.to_numpy(), "_vcode": ch.village_code.to_numpy(),
    })


def _records_by(df: pd.DataFrame, key: str) -> dict:
    """{key value: [row dict, ...]} in row order (what groupby(sort=False) + to_dict('records') gave)."""
    cols = list(df.columns)
    lists = [df[c].tolist() for c in cols]
    out: dict = {}
    for vals in zip(*lists):
        rec = dict(zip(cols, vals))
        k = rec[key]
        if k in out:
            out[k].append(rec)
        else:
            out[k] = [rec]
    return out


def registry_plans(city, rng: np.random.Generator) -> list[FilePlan]:
    rows = _canonical_rows(city)
    as_of = city.as_of
    plans: list[FilePlan] = []
    vill = city.villages.sort_values("code")
    by_v = _records_by(rows[rows._in_v], "_vcode")
    csv_plan = None
    for v in vill.itertuples():
        unit = committee(v.name, v.kind)
        recs = by_v.get(v.code, [])
        for r in recs:
            r["填报单位"], r["填报日期"] = unit, as_of
        if v.county_code.startswith(CSV_DISTRICT):
            if csv_plan is None:
                csv_plan = FilePlan(f"registry/{v.county_name}留守儿童信息台帐.csv", "csv", "", v.county_name)
                csv_plan.county = v.county_name
                plans.append(csv_plan)
            keep_code = rng.random() < 0.7
            for r in recs:
                if not keep_code:
                    r["区划代码"] = ""
            csv_plan.rows += recs
            continue
        p = FilePlan(f"registry/villages/{v.county_name}/{v.township_name}/{v.name}留守儿童信息台帐.xlsx",
                     "village", f"{v.township_name}{v.name}留守儿童信息台帐", unit, recs,
                     county=v.county_name, township=v.township_name, township_code=v.township_code,
                     village=v.name)
        p.has_code = rng.random() < 0.7
        plans.append(p)
    by_s = _records_by(rows[rows._in_s], "就读学校")
    county_of = dict(zip(city.villages.code, city.villages.county_name))
    for s in city.schools.sort_values("name").itertuples():
        recs = by_s.get(s.name, [])
        has_code = rng.random() < 0.1
        for r in recs:
            r["填报单位"], r["填报日期"] = s.name, as_of
            base = r["村(社区)"]
            u = rng.random()
            if u < 0.2:
                r["村(社区)"] = base + ("委会" if r["_village_kind"] == "村" else "居委会")
            elif u < 0.35:
                r["村(社区)"] = committee(base, r["_village_kind"])
            if not has_code:
                r["区划代码"] = ""
        county = county_of[s.village_code]
        p = FilePlan(f"registry/schools/{county}/{s.name}留守儿童信息台帐.xlsx", "school",
                     f"{s.name}留守儿童信息台帐", s.name, recs, county=county)
        p.has_code = has_code
        plans.append(p)
    for p in plans:
        p.defect = [""] * len(p.rows)
        p.extra = [False] * len(p.rows)
    return plans


# Shares of the file shapes among the extracts (small and city scales).
XLS_SHARE = 0.10  # committees' extracts in legacy .xls
TWO_ROW_SHARE = 0.20  # workbooks with a two-row header (merged groups)
MERGED_PLACES_SHARE = 0.15  # .xlsx workbooks with place names in vertically merged cells
TOWNSHIP_WORKBOOKS = {"small": 1, "city": 2}  # townships sending one workbook, one sheet per village


def arrange(plans: list[FilePlan], scale: str, rng: np.random.Generator) -> list[RegistryFile]:
    """Decide each extract's file shape, deterministically from ``rng``; the files to write, in order.

    Only paths change: the extracts, their rows and their defects stay as planned.
    - one or two rural townships send one workbook, one sheet per committee (``format 'township'``);
    - one committee sends Excel's "Unicode 文本" export (.txt);
    - about 10 % of the other committees send a legacy .xls;
    - the district's GB18030 CSV stays; the rest are .xlsx, one per committee or school;
    - two-row headers on about 20 % of the workbooks, merged place names on about 15 % of the .xlsx.
    At least one of each shape is written whenever there are extracts to carry it.
    """
    committees = [p for p in plans if p.kind == "village"]
    by_t: dict[str, list[FilePlan]] = {}
    for p in committees:
        by_t.setdefault(p.township_code, []).append(p)
    rural = sorted(t for t, ps in by_t.items() if int(t[4:6]) >= 20 and len(ps) >= 3)
    n_tw = min(TOWNSHIP_WORKBOOKS.get(scale, 0), len(rural))
    towns = {str(t) for t in rng.choice(rural, n_tw, replace=False)} if n_tw else set()
    singles = [p for p in committees if p.township_code not in towns]
    busy = [p for p in singles if len(p.rows) >= 5] or singles
    txt = busy[int(rng.integers(len(busy)))] if busy else None

    files: list[RegistryFile] = []
    done_towns: set[str] = set()
    for p in plans:
        u_fmt, u_two, u_merge = (float(u) for u in rng.random(3))
        if p.kind == "csv":
            files.append(RegistryFile(p.path, "csv", [p]))
            continue
        if p.township_code in towns:
            if p.township_code in done_towns:
                continue
            done_towns.add(p.township_code)
            group = by_t[p.township_code]
            path = f"registry/villages/{p.county}/{p.township}/{p.township}留守儿童信息台帐.xlsx"
            f = RegistryFile(path, "township", group, two_row=u_two < TWO_ROW_SHARE,
                             merged_places=u_merge < MERGED_PLACES_SHARE)
            for q in group:
                q.path = path
            files.append(f)
            continue
        if p is txt:
            p.path = p.path[:-len(".xlsx")] + ".txt"
            files.append(RegistryFile(p.path, "txt", [p]))
            continue
        if p.kind == "village" and u_fmt < XLS_SHARE:
            p.path = p.path[:-len(".xlsx")] + ".xls"
            files.append(RegistryFile(p.path, "xls", [p], two_row=u_two < TWO_ROW_SHARE))
            continue
        files.append(RegistryFile(p.path, "xlsx", [p], two_row=u_two < TWO_ROW_SHARE,
                                  merged_places=u_merge < MERGED_PLACES_SHARE))
    _at_least_one(files, rng)
    return files


def _at_least_one(files: list[RegistryFile], rng: np.random.Generator) -> None:
    """Make sure each shape occurs (small cities can miss one by chance)."""
    xlsx = [f for f in files if f.fmt == "xlsx"]
    if xlsx and not any(f.two_row for f in xlsx):
        xlsx[int(rng.integers(len(xlsx)))].two_row = True
    schools = [f for f in xlsx if f.plans[0].kind == "school" and len(f.plans[0].rows) > 1]
    if schools and not any(f.merged_places for f in schools):  # a school's file has real blocks
        schools[int(rng.integers(len(schools)))].merged_places = True
    if not any(f.fmt == "xls" for f in files):
        cands = [f for f in xlsx if f.plans[0].kind == "village"]
        if cands:
            f = cands[int(rng.integers(len(cands)))]
            f.fmt, f.merged_places = "xls", False
            f.plans[0].path = f.path = f.path[:-len(".xlsx")] + ".xls"


# Rendering (xlsxwriter / xlwt, pure Python per cell) is nearly all of the generator's time. Above this
# many registry rows it is shared with worker processes (see sheets.render_all); building the sheets
# stays here, in order, because it draws from the shared random stream.
PARALLEL_MIN_ROWS = 20_000


def build_grids(f: RegistryFile, rng: np.random.Generator, as_of: dt.date) -> list:
    """The sheets of one non-CSV registry file, in sheet order (draws from ``rng``)."""
    if f.fmt == "township":
        grids = [S.registry_grid(p, rng, as_of, HEADERS, two_row=f.two_row, merged_places=f.merged_places,
                                 sheet_name=p.village) for p in f.plans]
        township = f.plans[0].township
        return ([S.instructions_grid(township, as_of),
                 S.summary_grid(township, [(p.village, g.n_rows) for p, g in zip(f.plans, grids)])] + grids)
    return [S.registry_grid(f.plans[0], rng, as_of, HEADERS, two_row=f.two_row, merged_places=f.merged_places)]


def _records(f: RegistryFile, grids: list) -> list[dict]:
    """Defect records (file, sheet, 1-based row, kind, expected); no sheet name in a text file."""
    return [dict(file=f.path, sheet="" if f.fmt == "txt" else rec["sheet"], row=rec["row"], kind=rec["kind"],
                 expected=rec["expected"]) for g in grids for rec in g.found]


def write_registry(files: list[RegistryFile], out: Path, rng: np.random.Generator, as_of: dt.date,
                   workers: int | None = None, extra_jobs=()) -> list[dict]:
    """Write every registry file (and ``extra_jobs``, e.g. :func:`table_job`); return the defect
    records in file order.

    ``workers``: processes rendering the sheets (default: ``LIUSHOU_DEMO_WORKERS`` if set, else the
    CPUs available, at most 4, when the registry has at least ``PARALLEL_MIN_ROWS`` rows, else 1).
    The files are the same either way.
    """
    if workers is None:
        n_rows = sum(len(p.rows) for f in files for p in f.plans)
        env = os.environ.get("LIUSHOU_DEMO_WORKERS", "").strip()
        workers = int(env) if env.isdigit() else min(4, _cpus()) if n_rows >= PARALLEL_MIN_ROWS else 1
    records, jobs = registry_jobs(files, out, rng, as_of)
    S.render_all(jobs + list(extra_jobs), workers)
    return records


def registry_jobs(files: list[RegistryFile], out: Path, rng: np.random.Generator,
                  as_of: dt.date) -> tuple[list[dict], list]:
    """Write the CSV, build every other file's sheets (in order: this draws from ``rng``).

    Returns the defect records in file order and the render jobs for :func:`sheets.render_all`.
    """
    records: list[dict] = []
    jobs = []
    for f in files:
        if f.fmt == "csv":
            records += write_csv(f.plans[0], out)
            continue
        grids = build_grids(f, rng, as_of)
        records += _records(f, grids)
        (out / f.path).parent.mkdir(parents=True, exist_ok=True)
        jobs.append((str(out / f.path), f.fmt, grids))
    return records, jobs


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def shape_counts(files: list[RegistryFile]) -> dict:
    """How many files of each shape (for the manifest)."""
    fmt = pd.Series([f.fmt for f in files], dtype=object).value_counts().to_dict()
    return {
        "files_by_format": {k: int(v) for k, v in sorted(fmt.items())},
        "township_workbook_sheets": sum(len(f.plans) for f in files if f.fmt == "township"),
        "two_row_header_files": sum(bool(f.two_row) for f in files),
        "merged_place_files": sum(bool(f.merged_places) for f in files),
    }



def write_csv(plan: FilePlan, out: Path, encoding: str = "gb18030") -> list[dict]:
    path = out / plan.path
    path.parent.mkdir(parents=True, exist_ok=True)
    found = []
    with open(path, "w", encoding=encoding, newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(HEADERS)
        for i, row in enumerate(plan.rows):
            vals = []
            for c in HEADERS:
                v = i + 1 if c == "序号" else row[c]
                if isinstance(v, float):
                    v = f"{v:.5E}".replace("E+", "E+")
                elif isinstance(v, dt.date):
                    v = v.isoformat()
                vals.append(v)
            w.writerow(vals)
            if plan.defect[i] in D.EXPECTED:
                found.append(dict(file=plan.path, sheet="", row=i + 2, kind=plan.defect[i],
                                  expected=D.EXPECTED[plan.defect[i]]))
    return found


def write_table(df: pd.DataFrame, path: Path) -> None:
    """A plain table: header on row 1 (.xlsx via xlsxwriter, .csv as UTF-8 with BOM)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not isinstance(df, pd.DataFrame):  # a polars DataFrame (province scale)
        if path.suffix == ".csv":
            df.write_csv(path, include_bom=True)
            return
        df = df.to_pandas()
    if path.suffix == ".csv":
        df.to_csv(path, index=False, encoding="utf-8-sig")
        return
    S.render_file(str(path), "xlsx", [table_grid(df)])


def table_grid(df: pd.DataFrame) -> S.Grid:
    """A plain table as one sheet ``Sheet1``: header on row 1; numbers as numbers, dates as dates.

    Built column by column (no pandas row iteration); blank strings and None stay empty cells.
    """
    header = [str(c) for c in df.columns]
    cols = []
    for c in df.columns:
        vals = df[c].tolist()
        if df[c].dtype.kind in "iuf":
            cols.append([float(v) for v in vals])
            continue
        out = []
        for v in vals:
            if isinstance(v, dt.date):
                out.append(dt.date(v.year, v.month, v.day))
            elif isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
                out.append(float(v))
            elif v is None or v == "":
                out.append(None)
            else:
                out.append(str(v))
        cols.append(out)
    return S.Grid("Sheet1", [header] + [list(r) for r in zip(*cols)])


def table_job(df: pd.DataFrame, path: Path) -> tuple[str, str, list]:
    """A render job for :func:`sheets.render_all` writing ``df`` as :func:`write_table` does (.xlsx)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return (str(path), "xlsx", [table_grid(df)])


def write_boundaries(city, out: Path) -> dict:
    """Small and city scales: the land office's shapes (see :mod:`.boundaries`); province: one GeoPackage."""
    if city.scale != "province":
        return B.write(city, out)
    v = city.villages
    g = v[["code", "name", "township_code", "township_name", "county_code", "county_name", "city_name",
           "geometry"]].rename(columns={"code": "区划代码", "name": "名称", "township_code": "乡镇代码",
                                        "township_name": "乡镇名称", "county_code": "县区代码",
                                        "county_name": "县区名称", "city_name": "市名称"})
    g = g.set_crs("EPSG:4490", allow_override=True)
    (out / "boundaries").mkdir(parents=True, exist_ok=True)
    g.to_file(out / "boundaries" / "villages.gpkg", layer="villages", driver="GPKG")
    return {"villages": {"path": "boundaries/villages.gpkg", "crs": "EPSG:4490", "code_field": "区划代码",
                         "name_field": "名称", "features": len(v)}}


def write_defects(records: list[dict], out: Path) -> None:
    with open(out / "defects.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["file", "sheet", "row", "kind", "expected"])
        w.writeheader()
        w.writerows(records)


def write_manifest(manifest: dict, out: Path) -> None:
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
