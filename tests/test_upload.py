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
    files = [(p.name, p.read_bytes()) for d in ("boundaries", "facilities") for p in (small_city_dir / d).iterdir()
             if p.suffix.lower() in upload.ALLOWED_SUFFIXES]          # not a shapefile's .shp.xml metadata
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


# -- #17: confirmations that could lose an import, shrinking replacements ----------

import zipfile
from pathlib import Path

from conftest import ROOT, signed_in
from liushou_geo import store


def _resaved(src: Path, dst: Path, note: str) -> tuple[str, bytes]:
    """The same workbook under another name with new bytes (a new file to the ingest)."""
    shutil.copy(src, dst)
    with zipfile.ZipFile(dst, "a") as z:
        z.comment = note.encode()
    return dst.name, dst.read_bytes()


def _paths(db) -> set[str]:
    con = connect(db, read_only=True)
    try:
        return {r[0] for r in con.execute("SELECT path FROM ingested_files").fetchall()}
    finally:
        con.close()


@pytest.fixture
def shrunk(small_city_dir, tmp_path) -> tuple[str, bytes]:
    """The biggest village extract cut to one data row, same 填报单位 and 填报日期."""
    import openpyxl

    files = sorted((small_city_dir / "registry" / "villages").rglob("*.xlsx"))
    src = max(files, key=lambda f: openpyxl.load_workbook(f, read_only=True).active.max_row)
    wb = openpyxl.load_workbook(src)
    ws = wb.active
    header = next(r for r in range(1, 6) if ws.cell(r, 1).value == "序号")
    ws.delete_rows(header + 2, ws.max_row - header - 3)      # one data row, then 合计 and 填表人
    out = tmp_path / src.name.replace("留守儿童", "补报留守儿童")
    wb.save(out)
    return out.name, out.read_bytes()


def test_a_confirmation_on_a_store_changed_since_its_check_is_refused(live, small_city_dir, settings, tmp_path):
    """Two checks of the same store, confirmed in turn: the second would drop the first
    import, so it is refused with a message; checked again, both are in."""
    fac = small_city_dir / "facilities"
    a = upload.check(live, [_resaved(fac / "活动室.xlsx", tmp_path / "活动室_补充.xlsx", "a")], settings)
    b = upload.check(live, [_resaved(fac / "亲情电话与信箱.xlsx", tmp_path / "亲情电话_补充.xlsx", "b")], settings)
    upload.commit(a, live)
    assert "活动室_补充.xlsx" in _paths(live)
    with pytest.raises(ValueError, match="数据库在检查之后已被更新，请重新检查上传的文件"):
        upload.commit(b, live)
    assert "活动室_补充.xlsx" in _paths(live) and "亲情电话_补充.xlsx" not in _paths(live)
    assert not b.db.parent.exists()                       # the refused candidate is gone
    again = upload.check(live, [("亲情电话_补充.xlsx", (tmp_path / "亲情电话_补充.xlsx").read_bytes())], settings)
    upload.commit(again, live)
    assert {"活动室_补充.xlsx", "亲情电话_补充.xlsx"} <= _paths(live)


def test_a_confirmation_waits_for_a_running_writer(live, small_city_dir, settings, monkeypatch):
    monkeypatch.setattr(upload, "LOCK_WAIT_SECONDS", 0.3, raising=False)
    cand = upload.check(live, [("活动室.xlsx", (small_city_dir / "facilities" / "活动室.xlsx").read_bytes())],
                        settings)
    before = store.fingerprint(live)
    with store.writer_lock(live):                         # an ingest holds the store
        with pytest.raises(upload.UploadError, match="数据库正在更新"):
            upload.commit(cand, live)
    assert store.fingerprint(live) == before


def test_two_files_with_one_name_are_refused(live, settings):
    with pytest.raises(ValueError, match="同名文件"):
        upload.check(live, [("a/台帐.csv", b"x"), ("b/台帐.csv", b"y")], settings)


def test_the_report_says_what_each_file_replaced(live, shrunk, settings):
    cand = upload.check(live, [shrunk], settings)
    try:
        (item,) = upload.shrinking(cand.report)
        assert item["path"] == shrunk[0] and item["rows_after"] == 1 and item["rows_before"] > 2
        f = next(f for f in cand.report["files"] if f["path"] == shrunk[0])
        assert upload.replaced_text(f) == f"{item['unit']} {item['as_of']}：{item['rows_before']} → 1 行"
    finally:
        upload.discard(cand)


def test_a_shrinking_replacement_needs_an_explicit_confirmation(live, shrunk, settings, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from liushou_geo.auth import AuthStore

    monkeypatch.setenv("LIUSHOU_DB", str(live))
    monkeypatch.chdir(ROOT)
    cand = upload.check(live, [shrunk], settings)
    rows_before = cand.report["shrinking_replacements"][0]["rows_before"]
    at = signed_in(AppTest.from_file(str(ROOT / "app.py"), default_timeout=60), "admin", None, "u_admin")
    at.session_state["upload_candidate"] = cand
    at = at.switch_page("pages/admin.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("行数不到原来一半" in w.value for w in at.warning)
    shown = [df.value for df in at.dataframe if "替换的台帐（行数 原→新）" in df.value.columns]
    assert shown and f"{rows_before} → 1 行" in " ".join(shown[0]["替换的台帐（行数 原→新）"].dropna())
    assert at.button(key="upload_commit").disabled
    assert at.checkbox(key="upload_confirm_shrinking").label == "我确认用较少的行替换上述台帐"
    at.checkbox(key="upload_confirm_shrinking").check().run()
    assert not at.button(key="upload_commit").disabled
    at.button(key="upload_commit").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("已导入" in s.value for s in at.success)
    assert shrunk[0] in _paths(live)
    event = AuthStore().audit(5, "ingest")[0]
    assert event["username"] == "u_admin" and shrunk[0] in event["detail"]


def test_a_shapefiles_metadata_is_accepted_but_no_other_xml():
    assert upload.safe_name("boundaries/村级界线.shp.xml") == "村级界线.shp.xml"
    assert upload.safe_name("村.tsv") == "村.tsv"
    with pytest.raises(upload.UploadError):
        upload.safe_name("config.xml")
