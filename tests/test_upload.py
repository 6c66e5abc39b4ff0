"""Uploads in the app: checked on a copy, swapped in on confirmation."""

import shutil

import pytest

from liushou_geo import upload
from liushou_geo.store import connect


def _counts(path):
    con = connect(path, read_only=True)
    out = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("units", "registry_rows", "rooms")}
    con.close()
    return out


def test_check_then_commit(small_city_dir, settings, tmp_path):
    db = tmp_path / "live.duckdb"
    con = connect(db)
    con.close()                                          # an empty store
    before = _counts(db)
    files = [(p.name, p.read_bytes()) for p in (small_city_dir / "boundaries").iterdir()]
    files += [(p.name, p.read_bytes()) for p in (small_city_dir / "facilities").iterdir()]
    seen = []
    cand = upload.check(db, files, settings, progress=lambda d, t, label: seen.append((d, t)))
    assert cand.report["rows_loaded"] > 0 and cand.report["files_with_errors"] == 0
    assert _counts(db) == before                        # nothing changed before confirmation
    assert seen and seen[-1][0] == seen[-1][1]           # progress reached the end
    upload.commit(cand, db)
    after = _counts(db)
    assert after["units"] > 0 and after["rooms"] > 0
    assert not cand.files.parent.exists()                # the work folder is gone


def test_discard_leaves_the_store(small_db, settings, small_city_dir, tmp_path):
    db = tmp_path / "live.duckdb"
    shutil.copy(small_db[0], db)
    before = _counts(db)
    cand = upload.check(db, [("活动室.xlsx", (small_city_dir / "facilities" / "活动室.xlsx").read_bytes())], settings)
    upload.discard(cand)
    assert _counts(db) == before and not cand.db.exists()


@pytest.mark.parametrize("name", ["../../etc/passwd", "run.sh", ".hidden.xlsx", "a/b/../../x.py"])
def test_unsafe_names_are_refused(name):
    with pytest.raises(ValueError):
        upload.safe_name(name)


def test_folders_are_dropped_from_names():
    assert upload.safe_name("C:\\\\Users\\\\clerk\\\\台帐.xlsx") == "台帐.xlsx"
    assert upload.safe_name("../x/台帐.csv") == "台帐.csv"
