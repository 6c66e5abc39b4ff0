"""An ingest killed half-way leaves the previous database readable and unchanged.

The small city is in the store; a second ingest (new boundaries with fewer
villages, and two re-saved copies of every registry extract) runs in a
subprocess and is killed with SIGKILL once it has replaced the boundaries
inside its transaction and read half of the extracts. The kill point is found
from the ingest's own progress lines (``-v``), not from a clock, so the run
cannot have committed before it is killed.

A ``.wal`` file is no sign of a half-way point with DuckDB: the write-ahead
log is written at COMMIT, so a kill after it appears would test the commit's
own durability, not the transaction's atomicity.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import geopandas as gpd

from liushou_geo.ingest import ingest
from liushou_geo.store import connect

ROOT = Path(__file__).resolve().parent.parent
TABLES = ["units", "ingested_files", "set_aside", "registry_rows", "children", "rooms", "terminals",
          "attendance", "contacts", "legal_cases"]
COPIES = 2


def _state(con) -> dict:
    state = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # fixed names
    state["villages"] = con.execute("SELECT count(*) FROM units WHERE level = 'village'").fetchone()[0]
    state["child_keys"] = con.execute("SELECT sum(hash(child_key)) FROM children").fetchone()[0]
    state["files"] = con.execute("SELECT sum(hash(file_id)) FROM ingested_files").fetchone()[0]
    return state


def _modified_city(src: Path, out: Path) -> int:
    """New boundaries (10 villages fewer) and re-saved copies of the extracts; returns the extract count."""
    g = gpd.read_file(src / "boundaries" / "村级界线.shp", encoding="GBK")
    (out / "boundaries").mkdir(parents=True)
    g.iloc[: len(g) - 10].to_file(out / "boundaries" / "村级界线.shp", encoding="GBK")
    extracts = 0
    for i in range(COPIES):
        dst = out / f"第{i + 1}批" / "registry"
        shutil.copytree(src / "registry", dst)
        for p in dst.rglob("*.xlsx"):          # same content, new bytes: a new version of each file
            with zipfile.ZipFile(p, "a") as z:
                z.comment = f"resaved {i}".encode()
            extracts += 1
        for p in dst.rglob("*.csv"):
            with p.open("ab") as f:
                f.write(b"\r\n" * (i + 1))
            extracts += 1
    return extracts


def test_killed_ingest_leaves_the_store_unchanged(small_db, small_city_dir, settings, tmp_path):
    db = tmp_path / "store.duckdb"
    shutil.copy(small_db[0], db)
    con = connect(db, read_only=True)
    before = _state(con)
    con.close()
    assert before["registry_rows"] > 0 and before["villages"] == 100

    mod = tmp_path / "resent"
    extracts = _modified_city(small_city_dir, mod)
    kill_after = extracts // 2

    env = dict(os.environ, LIUSHOU_ID_KEY=os.environ["LIUSHOU_ID_KEY"], PYTHONUNBUFFERED="1")
    env.pop("LIUSHOU_SETTINGS", None)
    proc = subprocess.Popen([sys.executable, "-m", "liushou_geo.cli", "-v", "ingest", "--db", str(db), str(mod)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(180, proc.kill)      # never hang the suite
    watchdog.start()
    seen_boundaries, reads, tail = False, 0, []
    try:
        for line in proc.stderr:
            tail = (tail + [line.rstrip()])[-5:]
            if line.startswith("INFO boundaries"):
                seen_boundaries = True          # units deleted and re-inserted, uncommitted
            elif line.startswith("INFO read ") and seen_boundaries:
                reads += 1
                if reads >= kill_after:
                    proc.send_signal(signal.SIGKILL)
                    break
        proc.wait(timeout=60)
    finally:
        watchdog.cancel()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, f"the ingest was not killed half-way: rc={proc.returncode}, {tail}"
    assert seen_boundaries and reads == kill_after

    con = connect(db, read_only=True)
    after = _state(con)
    con.close()
    assert after == before

    # The store is not only readable but usable: the same ingest, run to the
    # end, goes through and changes what the killed one would have changed.
    con = connect(db)
    report = ingest(con, [mod], settings)
    done = _state(con)
    con.close()
    assert report["files_with_errors"] == 0
    assert done["villages"] == 90 and done["registry_rows"] != before["registry_rows"]
