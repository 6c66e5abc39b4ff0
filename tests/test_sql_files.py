"""Every named SQL file in liushou_geo/sql/ is run by the library in a full pass
(ingest, figures, targets, maps) — none is dead, none is missing."""

from liushou_geo import store
from liushou_geo.ingest import ingest
from liushou_geo.mapview import map_units, overview_map, target_map
from liushou_geo.metrics import metrics_table, overview, unit_metrics


def test_every_sql_file_runs(small_city_dir, settings, tmp_path, monkeypatch):
    ran = set()
    original = store.sql_text.__wrapped__

    def recording(name):
        ran.add(name)
        return original(name)

    monkeypatch.setattr(store, "sql_text", recording)
    con = store.connect(tmp_path / "sql.duckdb")           # schema
    ingest(con, [small_city_dir], settings)                 # build_children
    for level in ("city", "county", "township", "village"):
        metrics_table(con, level, settings)                 # unit_metrics, village_targets, rollup_targets, ...
    overview(con, settings, "439921000000")                 # townships_without_room
    m = unit_metrics(con, "township", settings)
    overview_map(con, settings, m)
    map_units(con, "village", "439921")
    from liushou_geo.targets import unit_targets

    target_map(con, settings, unit_targets(con, settings, "township"), "t4", "township")
    from liushou_geo import followup, pagemaps, quality
    from liushou_geo.area import Area

    pagemaps.rooms_view(con, settings, Area(county="439921000000"), 3.0, unit_metrics(con, "village", settings))
    followup.followup(con, "439921100")
    quality.by_unit(con, "township")
    quality.reasons(con)
    quality.set_aside_rows(con)
    quality.villages_without_extract(con)
    quality.unplaced_files(con)
    store.query(con, "unit_name", {"code": "439921000000"})
    try:
        from liushou_geo import planner
    except ImportError:
        planner = None
    if planner is not None and hasattr(planner, "plan_rooms"):
        planner.plan_rooms(con, settings, budget_yuan=90000, radius_km=3.0)
    con.close()
    files = {p.stem for p in store.SQL_DIR.glob("*.sql")}
    assert files - ran == set(), f"SQL files no code path runs: {sorted(files - ran)}"
