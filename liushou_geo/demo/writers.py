"""Write a DemoCity as the files a city hands over (REGISTRY_FORMAT.md), with defects."""

from __future__ import annotations

import csv
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xlsxwriter

from . import defects as D

HEADERS = ["序号", "姓名", "性别", "身份证号", "出生日期", "县(市、区)", "乡镇(街道)", "村(社区)", "区划代码",
           "就读学校", "年级", "班级", "班主任", "就学状态", "父亲姓名", "父亲务工地", "父亲电话", "母亲姓名",
           "母亲务工地", "母亲电话", "临时监护人", "与儿童关系", "监护人电话", "监护人住址", "性格特点", "兴趣爱好",
           "病史", "联系卡", "亲情号码", "结对帮扶人", "帮扶人单位", "结对日期", "填报单位", "填报日期"]
CSV_DISTRICT = "439902"  # this district sends one GB18030 CSV for all its committees


@dataclass
class FilePlan:
    path: str  # relative to out_dir
    kind: str  # 'village' | 'school' | 'csv'
    title: str
    unit: str
    rows: list = field(default_factory=list)
    defect: list = field(default_factory=list)
    extra: list = field(default_factory=list)


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


def registry_plans(city, rng: np.random.Generator) -> list[FilePlan]:
    rows = _canonical_rows(city)
    as_of = city.as_of
    plans: list[FilePlan] = []
    vill = city.villages.sort_values("code")
    vrows = rows[rows._in_v]
    by_v = {k: g for k, g in vrows.groupby("_vcode", sort=False)}
    csv_plan = None
    for v in vill.itertuples():
        recs = by_v.get(v.code)
        unit = committee(v.name, v.kind)
        recs = [] if recs is None else recs.to_dict("records")
        for r in recs:
            r["填报单位"], r["填报日期"] = unit, as_of
        if v.county_code.startswith(CSV_DISTRICT):
            if csv_plan is None:
                csv_plan = FilePlan(f"registry/{v.county_name}留守儿童信息台帐.csv", "csv", "", v.county_name)
                plans.append(csv_plan)
            keep_code = rng.random() < 0.7
            for r in recs:
                if not keep_code:
                    r["区划代码"] = ""
            csv_plan.rows += recs
            continue
        p = FilePlan(f"registry/villages/{v.county_name}/{v.township_name}/{v.name}留守儿童信息台帐.xlsx",
                     "village", f"{v.township_name}{v.name}留守儿童信息台帐", unit, recs)
        p.has_code = rng.random() < 0.7
        plans.append(p)
    srows = rows[rows._in_s]
    by_s = {k: g for k, g in srows.groupby("就读学校", sort=False)}
    for s in city.schools.sort_values("name").itertuples():
        g = by_s.get(s.name)
        recs = [] if g is None else g.to_dict("records")
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
        county = city.villages.set_index("code").county_name[s.village_code]
        p = FilePlan(f"registry/schools/{county}/{s.name}留守儿童信息台帐.xlsx", "school",
                     f"{s.name}留守儿童信息台帐", s.name, recs)
        p.has_code = has_code
        plans.append(p)
    for p in plans:
        p.defect = [""] * len(p.rows)
        p.extra = [False] * len(p.rows)
    return plans


def _fmt_date(d, style: str):
    if d is None or d == "" or (isinstance(d, float) and np.isnan(d)):
        return ""
    if style == "iso":
        return d.isoformat()
    if style == "slash":
        return f"{d.year}/{d.month}/{d.day}"
    if style == "cn":
        return f"{d.year}年{d.month}月{d.day}日"
    if style == "compact":
        return d.strftime("%Y%m%d")
    return d  # 'excel': a real date cell


def _header_variant(rng, kind: str, has_code: bool) -> tuple[list[str], list[str]]:
    """(canonical columns kept, header text written) for one file."""
    cols = list(HEADERS)
    if kind == "village" and rng.random() < 0.1:
        cols.remove("病史")
    if kind == "village" and rng.random() < 0.1:
        cols.remove("班主任")
    if not has_code and rng.random() < 0.5:
        cols.remove("区划代码")
    if rng.random() < 0.15:
        cols.append("备注")
    full = rng.random() < 0.2
    idtxt = str(rng.choice(["身份证号", "身份证号", "身份证号码", "公民身份号码", "身份证\n号码"]))
    vtxt = "村（居）" if rng.random() < 0.1 else ("村（社区）" if full else "村(社区)")
    text = []
    for c in cols:
        t = c
        if c == "身份证号":
            t = idtxt
        elif c == "村(社区)":
            t = vtxt
        elif full:
            t = c.replace("(", "（").replace(")", "）")
        if rng.random() < 0.03:
            t = t[:1] + " " + t[1:]
        text.append(t)
    return cols, text


def write_xlsx(plan: FilePlan, out: Path, rng: np.random.Generator, as_of: dt.date) -> list[dict]:
    """Write one unit's workbook; return defect records with spreadsheet row numbers."""
    path = out / plan.path
    path.parent.mkdir(parents=True, exist_ok=True)
    cols, text = _header_variant(rng, plan.kind, getattr(plan, "has_code", True))
    style = str(rng.choice(["iso", "slash", "cn", "compact", "excel"], p=[0.65, 0.1, 0.08, 0.07, 0.1]))
    sheet_name = str(rng.choice(["Sheet1", "台帐", "Sheet1"]))
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False})
    ws = wb.add_worksheet(sheet_name)
    bold = wb.add_format({"bold": True, "align": "center", "font_size": 14})
    datef = wb.add_format({"num_format": "yyyy-mm-dd"})
    r = 0  # 0-based row being written
    ws.merge_range(r, 0, 0, len(cols) - 1, plan.title, bold)
    r += 1
    layout = rng.random()
    if layout < 0.3:
        r += 1  # blank line
    elif layout < 0.55:
        ws.write_string(r, 0, f"填报单位：{plan.unit}    填报日期：{as_of.isoformat()}")
        r += 1
    elif layout < 0.7:
        r += 1
        ws.write_string(r, 0, f"填报单位：{plan.unit}    填报日期：{as_of.isoformat()}")
        r += 1
    ws.write_row(r, 0, text)
    r += 1
    found = []
    n_real = 0
    for i, row in enumerate(plan.rows):
        if rng.random() < 0.004:
            r += 1  # a stray blank row inside the data
        n_real += 1
        for j, c in enumerate(cols):
            if c == "序号":
                ws.write_number(r, j, n_real)
            elif c == "备注":
                if rng.random() < 0.05:
                    ws.write_string(r, j, "已核实")
            elif c == "身份证号" and isinstance(row[c], float):
                ws.write_number(r, j, row[c])
            elif c in ("出生日期", "结对日期", "填报日期"):
                v = _fmt_date(row[c], style)
                if isinstance(v, dt.date):
                    ws.write_datetime(r, j, dt.datetime(v.year, v.month, v.day), datef)
                elif v:
                    ws.write_string(r, j, v)
            else:
                v = row[c]
                if v is not None and v != "":
                    ws.write_string(r, j, str(v))
        if plan.defect[i] in D.EXPECTED:
            found.append(dict(file=plan.path, sheet=sheet_name, row=r + 1, kind=plan.defect[i],
                              expected=D.EXPECTED[plan.defect[i]]))
        r += 1
    ws.write_string(r, 0, "合计")
    ws.write_string(r, 1, f"{n_real}人")
    r += 1
    ws.write_string(r, 0, f"填表人：{rng.choice(['张', '李', '王', '刘'])}{rng.choice(['敏', '芳', '丽', '军'])}    "
                          f"审核人：{rng.choice(['陈', '周', '黄'])}{rng.choice(['红', '华', '平'])}    "
                          f"联系电话：0739-{int(rng.integers(1000000, 9999999))}")
    wb.close()
    return found


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
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    ws = wb.add_worksheet("Sheet1")
    datef = wb.add_format({"num_format": "yyyy-mm-dd"})
    ws.write_row(0, 0, list(df.columns))
    for i, row in enumerate(df.itertuples(index=False), start=1):
        for j, v in enumerate(row):
            if isinstance(v, dt.date):
                ws.write_datetime(i, j, dt.datetime(v.year, v.month, v.day), datef)
            elif isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
                ws.write_number(i, j, float(v))
            elif v is not None and v != "":
                ws.write_string(i, j, str(v))
    wb.close()


def write_boundaries(city, out: Path) -> None:
    v = city.villages
    g = v[["code", "name", "township_code", "township_name", "county_code", "county_name", "city_name",
           "geometry"]].rename(columns={"code": "区划代码", "name": "名称", "township_code": "乡镇代码",
                                        "township_name": "乡镇名称", "county_code": "县区代码",
                                        "county_name": "县区名称", "city_name": "市名称"})
    g = g.set_crs("EPSG:4490", allow_override=True)
    (out / "boundaries").mkdir(parents=True, exist_ok=True)
    g.to_file(out / "boundaries" / "villages.gpkg", layer="villages", driver="GPKG")


def write_defects(records: list[dict], out: Path) -> None:
    with open(out / "defects.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["file", "sheet", "row", "kind", "expected"])
        w.writeheader()
        w.writerows(records)


def write_manifest(manifest: dict, out: Path) -> None:
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
