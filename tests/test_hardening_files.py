"""#17: untrusted uploads cannot take the server down, files stay private and are
cleaned up, pages get messages instead of tracebacks, an ingest while the app
serves breaks nothing, no descriptor is kept on replaced stores, and an
ingest is audited before it takes effect."""

from __future__ import annotations

import gc
import os
import resource
import shutil
import stat
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT
from liushou_geo import store, upload
from liushou_geo.store import connect


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _work_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.startswith((".upload-", ".ingest-")))


def _paths(db: Path) -> set[str]:
    """Files recorded in the store file now at ``db`` (a fresh instance: duckdb.connect
    would hand back a cached instance of a replaced file)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{db}' AS s (READ_ONLY)")
        return {r[0] for r in con.execute("SELECT path FROM s.ingested_files").fetchall()}
    finally:
        con.close()


def _identity(db: Path) -> tuple:
    st = db.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


def _resaved(src: Path, dst: Path, note: str) -> Path:
    shutil.copy(src, dst)
    with zipfile.ZipFile(dst, "a") as z:          # same rows, new bytes: a new file to the ingest
        z.comment = note.encode()
    return dst


@pytest.fixture
def rooms(small_city_dir):
    p = small_city_dir / "facilities" / "活动室.xlsx"
    return [(p.name, p.read_bytes())]


# -- 1. the check runs in a child process with limits ---------------------------------


def test_a_check_whose_reader_crashes_leaves_the_caller_running(live, rooms, settings, monkeypatch):
    """A parser aborting the process (what the A1 + XFD1048576 workbook does to
    python-calamine) kills the child only: the caller gets the message, the store
    and the folder are as before, and the next check works."""
    before = _identity(live)
    monkeypatch.setenv("LIUSHOU_UPLOAD_TEST_ABORT", "1")        # upload.TEST_ABORT_ENV
    with pytest.raises(ValueError) as e:
        upload.check(live, rooms, settings)
    assert str(e.value).startswith("文件导致检查进程异常退出（可能是损坏或恶意构造的文件）")
    assert _identity(live) == before and _work_dirs(live.parent) == []
    monkeypatch.delenv("LIUSHOU_UPLOAD_TEST_ABORT")
    cand = upload.check(live, rooms, settings)           # still serving
    assert cand.report["files_total"] == 1
    upload.discard(cand)


def test_the_memory_limit_binds_the_child_only(live, rooms, settings, monkeypatch):
    limits = resource.getrlimit(resource.RLIMIT_DATA), resource.getrlimit(resource.RLIMIT_AS)
    monkeypatch.setenv("LIUSHOU_UPLOAD_MEMORY_MB", "150")     # less than the ingest needs
    with pytest.raises(ValueError, match="内存上限（0.1 GB|异常退出"):
        upload.check(live, rooms, settings)
    assert (resource.getrlimit(resource.RLIMIT_DATA), resource.getrlimit(resource.RLIMIT_AS)) == limits
    assert _work_dirs(live.parent) == []


def test_a_check_over_its_time_limit_is_stopped(live, rooms, settings, monkeypatch):
    monkeypatch.setenv("LIUSHOU_UPLOAD_TIME_LIMIT", "0.5")
    t0 = time.monotonic()
    with pytest.raises(ValueError, match="秒仍未完成，已中止"):
        upload.check(live, rooms, settings)
    assert time.monotonic() - t0 < 10 and _work_dirs(live.parent) == []


def test_an_upload_over_the_size_limit_is_refused_before_anything_is_read(live, settings, monkeypatch):
    monkeypatch.setenv("LIUSHOU_UPLOAD_MAX_MB", "1")
    monkeypatch.setattr(upload, "_run_child", lambda *a: pytest.fail("the check ran"), raising=False)
    big = [("台帐.csv", b"a," * 600_000)]                 # 1.2 MB
    with pytest.raises(ValueError, match="超过上限 1 MB"):
        upload.check(live, big, settings)
    with pytest.raises(upload.UploadError, match="超过上限"):
        upload.check_size([700_000, 700_000])           # what the page checks on the sizes alone
    assert _work_dirs(live.parent) == []


# -- 9. private files, always cleaned up ----------------------------------------------


def test_check_and_confirm_keep_everything_private(live, rooms, settings):
    os.chmod(live, 0o644)                                 # a store made before this fix
    old_umask = os.umask(0)                               # the files' modes must not rely on the umask
    try:
        cand = upload.check(live, rooms, settings)
        work = cand.db.parent
        assert _mode(work) == 0o700 and _mode(cand.db) == 0o600
        assert not cand.files.exists()                    # raw extracts deleted once read
        assert [p.name for p in work.iterdir()] == [cand.db.name]
        upload.write_private(live.parent / "x.bin", b"1")
        assert _mode(live.parent / "x.bin") == 0o600
        upload.commit(cand, live)
    finally:
        os.umask(old_umask)
    assert _mode(live) == 0o600 and _work_dirs(live.parent) == []


def test_stale_work_folders_are_removed(tmp_path):
    db = tmp_path / "liushou.duckdb"
    old, fresh = tmp_path / ".upload-old", tmp_path / ".upload-fresh"
    killed, other = tmp_path / f"{store.ingest_prefix(db)}x", tmp_path / f"{store.ingest_prefix('other.duckdb')}y"
    for d in (old, fresh, killed, other):
        d.mkdir()
        (d / "copy.duckdb").write_bytes(b"raw")
    hour_ago = time.time() - 2 * 3600
    os.utime(old, (hour_ago, hour_ago))
    with store.writer_lock(db):                           # an ingest is running: its folder stays
        store.remove_stale_work(db)
        assert killed.exists()
    assert not old.exists() and fresh.exists()
    store.remove_stale_work(db)
    assert not killed.exists() and other.exists()         # another store's ingest is not ours


def test_the_server_cleans_up_and_hides_error_details_at_start(live, monkeypatch):
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.web import cli as stcli

    from liushou_geo import ui

    stale = live.parent / ".upload-abandoned"
    stale.mkdir()
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    started = []
    monkeypatch.setenv("LIUSHOU_DB", str(live))
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.setattr(PagesManager, "uses_pages_directory", PagesManager.uses_pages_directory)
    monkeypatch.setattr(stcli, "main", lambda: started.append(list(sys.argv)))
    ui.serve("127.0.0.1", 8599)
    assert started and not stale.exists()
    argv = started[0]
    assert argv[argv.index("--client.showErrorDetails") + 1] == "none"
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["client"]["showErrorDetails"] == "none"


def test_first_admin_note_is_private_from_its_creation(tmp_path, monkeypatch):
    """Created 0600, not created readable and chmod-ed after (a crash in between left it so)."""
    from liushou_geo import cli, settings as settings_module

    monkeypatch.setattr(settings_module, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(os, "chmod", lambda *a, **k: None)       # no later repair can hide the mode
    monkeypatch.setattr(Path, "chmod", lambda *a, **k: None)
    note = tmp_path / "data" / "first-admin.txt"
    note.parent.mkdir()
    old_umask = os.umask(0)
    try:
        assert cli.main(["users", "ensure-admin", "--auth-db", str(tmp_path / "auth.sqlite")]) == 0
    finally:
        os.umask(old_umask)
    assert _mode(note) == 0o600 and "password: " in note.read_text(encoding="utf-8")


def test_cli_ingest_makes_a_private_store_and_leaves_no_copy(small_city_dir, tmp_path):
    from liushou_geo import cli

    db = tmp_path / "d" / "x.duckdb"
    assert cli.main(["ingest", "--db", str(db), str(small_city_dir / "facilities")]) == 1   # no boundaries yet
    assert _mode(db) == 0o600 and sorted(p.name for p in db.parent.iterdir()) == ["x.duckdb", "x.duckdb.lock"]


# -- 10. pages get messages; an ingest while the app serves breaks nothing ----------


def _page(db: Path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    def script():
        from liushou_geo import ui

        cur = ui.cursor()
        import streamlit as st

        st.write(cur.execute("SELECT count(*) FROM units").fetchone()[0])

    monkeypatch.setenv("LIUSHOU_DB", str(db))
    return AppTest.from_function(script, default_timeout=60).run()


def test_a_locked_store_gives_a_message_not_a_traceback(live, monkeypatch):
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('locked', flush=True); time.sleep(60)", str(live)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        at = _page(live, monkeypatch)
    finally:
        holder.kill()
        holder.wait()
    assert not at.exception, [e.value for e in at.exception]
    assert [e.value for e in at.error] == ["数据库正在更新，请稍后刷新页面。"]


def test_a_corrupt_store_gives_a_message_not_a_traceback(tmp_path, monkeypatch):
    bad = tmp_path / "liushou.duckdb"
    bad.write_bytes(os.urandom(64 * 1024))
    at = _page(bad, monkeypatch)
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == 1 and "联系管理员" in at.error[0].value and str(tmp_path) not in at.error[0].value


def test_missing_store_message_names_no_server_path(tmp_path, monkeypatch):
    at = _page(tmp_path / "none.duckdb", monkeypatch)
    assert not at.exception and len(at.error) == 1 and str(tmp_path) not in at.error[0].value


def test_an_ingest_while_the_app_reads_breaks_nothing(live, small_city_dir, tmp_path, monkeypatch):
    """The app's reader keeps its version through a command-line ingest (which
    would have been locked out by it before); the next reader sees the new data."""
    from liushou_geo import ui

    monkeypatch.setenv("LIUSHOU_DB", str(live))
    before = ui.cursor()
    n_before = before.execute("SELECT count(*) FROM ingested_files").fetchone()[0]
    extra = _resaved(small_city_dir / "facilities" / "活动室.xlsx", tmp_path / "活动室_补充.xlsx", "cli")
    done = subprocess.run([sys.executable, "-m", "liushou_geo.cli", "ingest", "--db", str(live), str(extra)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert before.execute("SELECT count(*) FROM ingested_files").fetchone()[0] == n_before
    after = ui.cursor()
    assert after.execute("SELECT count(*) FROM ingested_files").fetchone()[0] == n_before + 1
    assert _work_dirs(live.parent) == []


# -- 11. descriptors of replaced stores; audit before the change takes effect --------


def _store_fds(db: Path) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(os.path.realpath(db)) and not target.endswith(".lock"):
            found.append(target)
    return found


def test_confirmations_leave_no_descriptor_on_replaced_stores(live, settings, monkeypatch):
    """The app reopens the store after each confirmation, sees the new version
    (not a cached instance of the replaced file) and keeps no descriptor on it."""
    from liushou_geo import ui

    monkeypatch.setenv("LIUSHOU_DB", str(live))
    for i in range(3):
        cur = ui.cursor()
        assert cur.execute("SELECT count(*) FROM units").fetchone()[0] > 0
        if i:
            assert cur.execute("SELECT v FROM marker").fetchone()[0] == i      # the latest version
        del cur
        cand = upload.check(live, [], settings)
        con = connect(cand.db)
        con.execute(f"CREATE OR REPLACE TABLE marker AS SELECT {i + 1} AS v")
        con.close()
        upload.commit(cand, live)                       # a confirmation swaps the store
    cur = ui.cursor()
    assert cur.execute("SELECT v FROM marker").fetchone()[0] == 3
    del cur
    gc.collect()
    assert len(_store_fds(live)) <= 1, _store_fds(live)


def test_cli_ingest_is_audited_before_it_takes_effect(live, small_city_dir, tmp_path, monkeypatch):
    """A kill right after the store changed must not lose the audit record: when it
    is written, the live store is still the old one."""
    from liushou_geo import cli

    extra = _resaved(small_city_dir / "facilities" / "活动室.xlsx", tmp_path / "活动室_审计.xlsx", "audit")
    seen = []
    real = cli._audit

    def audit(event, detail):
        seen.append((event, "活动室_审计.xlsx" in _paths(live)))
        real(event, detail)

    monkeypatch.setattr(cli, "_audit", audit)
    assert cli.main(["ingest", "--db", str(live), str(extra)]) == 0
    assert seen == [("ingest", False)]                  # recorded while the old store was live
    assert "活动室_审计.xlsx" in _paths(live)


def test_a_confirmation_is_audited_before_the_swap_and_not_without_it(live, rooms, settings, small_city_dir,
                                                                      tmp_path):
    extra = _resaved(small_city_dir / "facilities" / "活动室.xlsx", tmp_path / "活动室_确认.xlsx", "ok")
    before = _paths(live)
    cand = upload.check(live, [(extra.name, extra.read_bytes())], settings)

    def failing_audit():
        raise OSError("audit log not writable")

    with pytest.raises(OSError):
        upload.commit(cand, live, record=failing_audit)
    assert _paths(live) == before                       # no record, no change
    cand = upload.check(live, [(extra.name, extra.read_bytes())], settings)
    seen = []
    upload.commit(cand, live, record=lambda: seen.append(extra.name in _paths(live)))
    assert seen == [False] and extra.name in _paths(live)


def test_the_auth_store_and_its_wal_are_private_from_creation(tmp_path):
    """Password hashes and the audit log: 0600 even under umask 0, WAL and SHM included."""
    import os
    import stat

    from liushou_geo.auth import AuthStore

    old = os.umask(0)
    try:
        store = AuthStore(tmp_path / "auth.sqlite")
        store.record("tester", "sign_in", {})
    finally:
        os.umask(old)
    for name in ("auth.sqlite", "auth.sqlite-wal", "auth.sqlite-shm"):
        p = tmp_path / name
        assert p.exists() and stat.S_IMODE(p.stat().st_mode) == 0o600, name
    store.close()
