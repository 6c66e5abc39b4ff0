"""Shared fixtures: one small generated city, ingested once per test session.

The ID hashing key is fixed for tests so that expected keys can be computed.
"""

import contextlib
import os
from pathlib import Path

import pytest

import tempfile

os.environ["LIUSHOU_ID_KEY"] = "test-key-not-for-production"
os.environ.pop("LIUSHOU_SETTINGS", None)
# Sign-ins and the audit log of the test session go to a file of its own.
os.environ["LIUSHOU_AUTH_DB"] = os.path.join(tempfile.mkdtemp(prefix="liushou_auth_"), "auth.sqlite")

SMALL_SEED = 11
SMALL_DEFECT_RATE = 0.02
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture(scope="session")
def settings():
    from liushou_geo.settings import load_settings

    return load_settings()


@pytest.fixture(scope="session")
def small_truth():
    """The small city's ground truth, in memory."""
    from liushou_geo.demo import build_city

    return build_city(seed=SMALL_SEED, scale="small", defect_rate=SMALL_DEFECT_RATE)


@pytest.fixture(scope="session")
def small_city_dir(tmp_path_factory, small_truth):
    """The small city's files, as a city would hand them over."""
    from liushou_geo.demo import write_city

    out = tmp_path_factory.mktemp("small_city")
    write_city(small_truth, out)
    return out


@pytest.fixture(scope="session")
def small_db(small_city_dir, tmp_path_factory, settings):
    """(path of the ingested store, ingest report)."""
    from liushou_geo.ingest import ingest
    from liushou_geo.store import connect

    path = tmp_path_factory.mktemp("db") / "small.duckdb"
    con = connect(path)
    report = ingest(con, [small_city_dir], settings)
    con.close()
    return path, report


@pytest.fixture
def small_con(small_db):
    from liushou_geo.store import connect

    con = connect(small_db[0], read_only=True)
    yield con
    con.close()


@pytest.fixture
def hasher():
    from liushou_geo.privacy import IdHasher

    return IdHasher()


def signed_in(at, role="city", area=None, username="tester"):
    """An AppTest whose session is signed in as a user of that role and area."""
    from liushou_geo.auth import User

    at.session_state["user"] = User(username, role, area)
    return at


@pytest.fixture
def app(small_db, monkeypatch):
    """The whole app in AppTest, on the small city, signed in as a city user."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("LIUSHOU_DB", str(small_db[0]))
    monkeypatch.chdir(ROOT)
    return signed_in(AppTest.from_file(str(ROOT / "app.py"), default_timeout=60))


def start_server(db_path, **env) -> tuple:
    """`liushou-geo serve` on a free loopback port against a store, healthy:
    (process, url). Its output goes to a file (an unread pipe would fill and
    block the server); stop it with ``stop_server``."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tempfile.NamedTemporaryFile(prefix="liushou_serve_", suffix=".log", delete=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "liushou_geo.cli", "serve", "--port", str(port), "--address", "127.0.0.1"],
        cwd=ROOT, env=dict(os.environ, LIUSHOU_DB=str(db_path), **env), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    pytest.fail("streamlit did not become healthy: " + Path(log.name).read_text(errors="replace")[-2000:])


CHROMIUM = Path("/usr/bin/chromium")


def require_chromium() -> None:
    """For a browser-test module: skip it (with the reason) where Debian's Chromium is
    absent — but never in CI, which sets LIUSHOU_REQUIRE_BROWSER=1 and installs it."""
    if CHROMIUM.exists():
        return
    if os.environ.get("LIUSHOU_REQUIRE_BROWSER") == "1":
        raise RuntimeError("LIUSHOU_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing: apt-get install chromium")
    pytest.skip("Debian chromium not installed (apt-get install chromium fonts-noto-cjk)", allow_module_level=True)


@contextlib.contextmanager
def chromium_browser():
    """Debian's Chromium under Playwright (no browser download), headless, software
    GL, with no background requests."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                  "--disable-background-networking", "--disable-component-update", "--no-first-run"],
        )
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def live(small_db, tmp_path):
    """A private copy of the small city's store, as a deployment keeps it (data/liushou.duckdb)."""
    import shutil

    db = tmp_path / "data" / "liushou.duckdb"
    db.parent.mkdir()
    shutil.copy(small_db[0], db)
    return db


def stop_server(proc) -> None:
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture
def make_app(small_db, monkeypatch):
    """make(role, area=None): the whole app in AppTest on the small city, signed in
    as a user of that role and area (user name ``u_<role>``)."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("LIUSHOU_DB", str(small_db[0]))
    monkeypatch.chdir(ROOT)

    def make(role, area=None):
        return signed_in(AppTest.from_file(str(ROOT / "app.py"), default_timeout=60), role, area, f"u_{role}")
    return make


def deck_spec(at, index: int = 0) -> dict:
    """The JSON spec of the page's map (AppTest cannot click it, but can read it)."""
    import json

    return json.loads(at.get("deck_gl_json_chart")[index].proto.json)


def layer(spec: dict, layer_id: str) -> dict:
    return next(x for x in spec["layers"] if x["id"] == layer_id)
