"""The benchmark (issue #9): ingest, every page's server-side time and map
payload, and the room planner, each page beside a baseline computed in the
same run — the same figures done "the obvious way" with pandas + geopandas
(tables read into pandas, groupby, unsimplified geometry to GeoJSON).

Data: the seeded demo at a scale (``small`` for tests, ``city``,
``province``), generated once under ``DATA_DIR/<scale>/demo`` and reused; the
last ingested store is kept as ``DATA_DIR/<scale>/liushou.duckdb``.

Ingest runs in a child process; its peak RSS is the child's own
``getrusage(RUSAGE_SELF).ru_maxrss``. Page times, ``deck.to_json()`` included,
are measured cold (a fresh read-only connection per run, nothing cached) and
warm (one open connection, the per-village target counts already computed, as
the running app caches them per database version).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from . import mapview, metrics, pagemaps, planner, targets
from .area import Area
from .settings import Settings, load_settings
from .store import connect

DEFAULT_DATA_DIR = Path("bench")
PAGES = ("overview", "targets", "rooms", "terminals", "pairing")


# -- machine and data ------------------------------------------------------------

def machine() -> dict:
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    import pydeck

    return {"cpu_count": os.cpu_count(), "memory_gb": round(mem_kb / 1024 / 1024, 1),
            "platform": platform.platform(), "python": platform.python_version(),
            "duckdb": duckdb.__version__, "polars": pl.__version__, "pydeck": pydeck.__version__,
            "load_average_1min": round(os.getloadavg()[0], 2)}


def ensure_demo(scale: str, data_dir: Path, log=print) -> Path:
    """The demo files at a scale (generated once, then reused)."""
    demo = data_dir / scale / "demo"
    if not (demo / "manifest.json").exists():
        log(f"generating the {scale} demo in {demo} …")
        code = ("import sys; from pathlib import Path; from liushou_geo.demo import build_city, write_city; "
                "write_city(build_city(scale=sys.argv[1]), Path(sys.argv[2]))")
        subprocess.run([sys.executable, "-c", code, scale, str(demo)], check=True)
    return demo


def _child_ingest(db: str, demo: str) -> None:
    """Run in the child process: ingest, then print rows, seconds and peak RSS as JSON."""
    import resource

    from .ingest import ingest

    t0 = time.perf_counter()
    con = connect(db)
    report = ingest(con, [Path(demo)], load_settings(), atomic=False)    # as the CLI: a fresh store
    con.close()
    seconds = time.perf_counter() - t0
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rows": report["rows_read"], "rows_loaded": report["rows_loaded"],
                      "children": report["children"], "seconds": seconds, "peak_rss_mb": rss_kb / 1024}))


def run_ingest(demo: Path, db: Path) -> dict:
    """One ingest into a fresh store, in a child process."""
    for p in (db, db.with_name(db.name + ".wal")):
        p.unlink(missing_ok=True)
    out = subprocess.run([sys.executable, "-c", "import sys; from liushou_geo.bench import _child_ingest; "
                          "_child_ingest(sys.argv[1], sys.argv[2])", str(db), str(demo)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_ingest(demo: Path, db: Path, repeat: int, log=print) -> dict:
    runs = []
    for i in range(repeat):
        r = run_ingest(demo, db)
        log(f"  ingest run {i + 1}/{repeat}: {r['seconds']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB")
        runs.append(r)
    secs = statistics.median(r["seconds"] for r in runs)
    rows = runs[-1]["rows"]
    return {"rows": rows, "seconds": round(secs, 2), "rows_per_s": round(rows / secs),
            "peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in runs)),
            "rows_loaded": runs[-1]["rows_loaded"], "children": runs[-1]["children"], "runs": len(runs),
            "seconds_all": [round(r["seconds"], 2) for r in runs]}


# -- our pages (the same library calls the pages make) ----------------------------

def our_page(con, s: Settings, page: str, county: str | None, vt: pl.DataFrame | None = None) -> str:
    """Compute one page's figures and map; returns the deck JSON sent to the browser.

    ``vt``: the per-village target counts, which the app computes once per
    database version and caches (warm); None computes them here (cold)."""
    area = Area(county=county)
    level = area.level_in_view
    if page == "overview":
        m = metrics.unit_metrics(con, "township", s)
        metrics.overview(con, s, county)
        deck = mapview.overview_map(con, s, m, county).deck
    elif page == "targets":
        vt = vt if vt is not None else targets.village_targets(con, s)
        ut = targets.unit_targets(con, s, level, vt)
        deck = mapview.target_map(con, s, ut, "t4", level, area.prefix).deck
    elif page == "rooms":
        deck = pagemaps.rooms_view(con, s, area, s.room_radius_km, metrics.unit_metrics(con, "village", s)).map.deck
    else:
        vt = vt if vt is not None else targets.village_targets(con, s)
        view = pagemaps.terminals_view if page == "terminals" else pagemaps.pairing_view
        deck = view(con, s, area, pagemaps.page_figures(metrics.unit_metrics(con, level, s), targets.unit_targets(con, s, level, vt))).map.deck
    return deck.to_json()


# -- the baseline: pandas + geopandas, the obvious way ----------------------------

def _gdf(con, level: str, prefix: str):
    import geopandas as gpd
    import shapely

    df = con.execute("SELECT code, name, ST_AsWKB(geom) AS wkb FROM units WHERE level = ? AND code LIKE ? || '%'",
                     [level, prefix]).df()
    return gpd.GeoDataFrame(df.drop(columns="wkb"), geometry=shapely.from_wkb([bytes(b) for b in df["wkb"]]),
                            crs="EPSG:4326")


def baseline_page(con, s: Settings, page: str, county: str | None) -> str:
    """The same figures and map the obvious way: whole tables into pandas,
    groupby per unit, unsimplified geometry, GeoDataFrame.to_json()."""
    import geopandas as gpd

    prefix = county[:6] if county else ""
    level, n = ("village", 12) if county else ("township", 9)
    units = _gdf(con, level, prefix)
    units["key"] = units["code"].str[:n]
    kids = con.execute("SELECT * FROM children").df()
    kids["key"] = kids["village_code"].str[:n]
    per = kids.groupby("key").agg(children=("child_key", "size"), paired=("paired", "sum"),
                                  with_guardian=("with_guardian", "sum"))
    if page == "targets":
        rows = con.execute("SELECT * FROM registry_rows").df()
        rows["key"] = rows["village_code"].str[:n]
        per = per.join(rows.groupby("key").agg(rows=("child_key", "size"),
                                                cards=("contact_card", "sum")))
    elif page == "rooms":
        rooms = con.execute("SELECT * FROM rooms WHERE status = '在用'").df()
        vill = con.execute("SELECT code, lon, lat FROM units WHERE level = 'village'").df()
        vk = kids.groupby("village_code").size().rename("n").reset_index().merge(
            vill, left_on="village_code", right_on="code")
        pts = gpd.GeoDataFrame(vk, geometry=gpd.points_from_xy(vk.lon, vk.lat), crs="EPSG:4326").to_crs(3857)
        circles = gpd.GeoDataFrame(geometry=gpd.points_from_xy(rooms.lon, rooms.lat), crs="EPSG:4326").to_crs(3857)
        circles["geometry"] = circles.buffer(s.room_radius_km * 1000 / np.cos(np.radians(30)))
        inside = gpd.sjoin(pts, circles, predicate="within")
        pts["covered"] = pts.index.isin(inside.index)
        pts["key"] = pts["village_code"].str[:n]
        per = per.join(pts[~pts["covered"]].groupby("key")["n"].sum().rename("outside"))
    elif page == "terminals":
        terms = con.execute("SELECT * FROM terminals").df()
        vk = kids.groupby("village_code").size().rename("n").reset_index()
        vk["needed"] = np.ceil(vk["n"] / s.children_per_terminal)
        vk = vk.merge(terms.groupby("village_code")["terminals"].sum().reset_index(), on="village_code", how="left")
        vk["short"] = (vk["needed"] - vk["terminals"].fillna(0)).clip(lower=0)
        vk["key"] = vk["village_code"].str[:n]
        per = per.join(vk.groupby("key")[["needed", "short"]].sum())
    elif page == "pairing":
        per["rate"] = per["paired"] / per["children"] * 100
    out = units.merge(per.reset_index(), on="key", how="left").drop(columns="key")
    return out.to_json()


# -- running ----------------------------------------------------------------------

def _median_ms(fn: Callable[[], str], repeat: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1000)
        size = len(out.encode("utf-8"))
    return statistics.median(times), size


def _cold(db: Path, page_fn, *args) -> str:
    """One page built on a fresh read-only connection (nothing cached)."""
    c = connect(db, read_only=True)
    try:
        return page_fn(c, *args)
    finally:
        c.close()


def pick_county(con) -> str:
    """The county with the most villages (the heaviest village view)."""
    return con.execute("""SELECT left(code, 6) || '000000' FROM units WHERE level = 'village'
                          GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1""").fetchone()[0]


def bench_pages(db: Path, s: Settings, repeat: int, log=print) -> list[dict]:
    con = connect(db, read_only=True)
    county = pick_county(con)
    # Warm: one open connection and the per-village target counts already
    # computed, as in the running app (it caches them per database version).
    warm_vt = targets.village_targets(con, s)
    out = []
    for page in PAGES:
        for where, code in (("city", None), ("county", county)):
            ms, size = _median_ms(lambda: _cold(db, our_page, s, page, code), repeat)
            bms, bsize = _median_ms(lambda: _cold(db, baseline_page, s, page, code), repeat)
            wms, _ = _median_ms(lambda: our_page(con, s, page, code, warm_vt), repeat)
            wbms, _ = _median_ms(lambda: baseline_page(con, s, page, code), repeat)
            row = {"page": f"{page} ({where})", "server_ms_median": round(ms, 1), "payload_bytes": size,
                   "baseline_ms_median": round(bms, 1), "ratio": round(bms / ms, 2) if ms else None,
                   "warm_ms_median": round(wms, 1), "warm_baseline_ms_median": round(wbms, 1),
                   "warm_ratio": round(wbms / wms, 2) if wms else None,
                   "baseline_payload_bytes": bsize, "area": code or "city",
                   "level": "village" if code else "township"}
            log(f"  {row['page']}: {ms:.0f} ms cold, {wms:.0f} ms warm, {size / 1e6:.2f} MB "
                f"(baseline {bms:.0f} / {wbms:.0f} ms, {bsize / 1e6:.1f} MB)")
            out.append(row)
    con.close()
    return out


def bench_planner(db: Path, s: Settings, repeat: int) -> dict:
    times, status = [], None
    for _ in range(repeat):
        con = connect(db, read_only=True)
        t0 = time.perf_counter()
        plan = planner.plan_rooms(con, s, 300_000, 3.0)
        times.append(time.perf_counter() - t0)
        status = plan.status
        con.close()
    return {"seconds": round(statistics.median(times), 3), "status": status, "budget_yuan": 300_000,
            "radius_km": 3.0, "solve_seconds": round(plan.seconds, 3), "new_rooms": len(plan.new_rooms)}


def run_bench(scale: str = "city", repeat: int = 3, data_dir: Path | None = None, ingest_repeat: int | None = None,
              reuse_db: bool = False, log=print) -> dict:
    data_dir = Path(data_dir or DEFAULT_DATA_DIR)
    s = load_settings()
    demo = ensure_demo(scale, data_dir, log)
    db = data_dir / scale / "liushou.duckdb"
    if ingest_repeat is None:
        ingest_repeat = 1 if scale == "province" else repeat
    result = {"machine": machine(), "scale": scale, "repeat": repeat}
    if reuse_db and db.exists():
        log("reusing the ingested store (ingest not measured)")
        result["ingest"] = json.loads((db.with_suffix(".ingest.json")).read_text())
    else:
        log(f"ingest ({scale}) …")
        result["ingest"] = bench_ingest(demo, db, ingest_repeat, log)
        db.with_suffix(".ingest.json").write_text(json.dumps(result["ingest"]))
    log("pages …")
    result["pages"] = bench_pages(db, s, repeat, log)
    log("planner …")
    result["planner"] = bench_planner(db, s, repeat)
    return result


def table(result: dict) -> str:
    m, ing = result["machine"], result["ingest"]
    lines = [f"scale {result['scale']} · {m['cpu_count']} CPUs · {m['memory_gb']} GB · Python {m['python']}",
             f"ingest: {ing['rows']:,} rows in {ing['seconds']:.1f} s ({ing['rows_per_s']:,} rows/s), "
             f"peak RSS {ing['peak_rss_mb']:,} MB",
             "",
             f"{'page':<22}{'cold ms':>9}{'base ms':>9}{'ratio':>7}{'warm ms':>9}{'base ms':>9}{'ratio':>7}"
             f"{'payload KB':>12}"]
    for p in result["pages"]:
        lines.append(f"{p['page']:<22}{p['server_ms_median']:>9.0f}{p['baseline_ms_median']:>9.0f}{p['ratio']:>7.1f}"
                     f"{p['warm_ms_median']:>9.0f}{p['warm_baseline_ms_median']:>9.0f}{p['warm_ratio']:>7.1f}"
                     f"{p['payload_bytes'] / 1024:>12.0f}")
    pl_ = result["planner"]
    lines += ["", f"planner (budget 300000, radius 3 km): {pl_['seconds']:.2f} s, {pl_['status']}"]
    return "\n".join(lines)
