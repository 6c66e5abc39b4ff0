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
    con.close()
    files = {p.stem for p in store.SQL_DIR.glob("*.sql")}
    assert files - ran == set(), f"SQL files no code path runs: {sorted(files - ran)}"
