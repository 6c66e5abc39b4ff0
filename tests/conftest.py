"""Shared fixtures: one small generated city, ingested once per test session.

The ID hashing key is fixed for tests so that expected keys can be computed.
"""

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


def deck_spec(at, index: int = 0) -> dict:
    """The JSON spec of the page's map (AppTest cannot click it, but can read it)."""
    import json

    return json.loads(at.get("deck_gl_json_chart")[index].proto.json)


def layer(spec: dict, layer_id: str) -> dict:
    return next(x for x in spec["layers"] if x["id"] == layer_id)
