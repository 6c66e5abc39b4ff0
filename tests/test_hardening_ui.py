"""Issue #17, the dashboard's side: crafted map selections, cache keys from
the client, child lists (no built-in CSV, nothing left on screen after idle
expiry). AppTest where it can tell; Chromium (skipped without it) for what
only a browser shows."""

import json
import os
from pathlib import Path

import pytest
from streamlit.proto.WidgetStates_pb2 import WidgetState

from conftest import chromium_browser, start_server, stop_server

COUNTY = "439921000000"
OTHER_COUNTY = "439902000000"




@pytest.fixture
def town(small_truth):
    return sorted(c for c in small_truth.townships["code"] if c.startswith(COUNTY[:6]))[0]


@pytest.fixture
def runs(monkeypatch):
    """Counts the page runs (each calls ui.area_selector once); the 20th raises,
    so a page rerunning for ever ends the test instead of hanging it."""
    from liushou_geo import ui

    count = {"n": 0}
    real = ui.area_selector

    def counted():
        count["n"] += 1
        if count["n"] >= 20:
            raise RuntimeError("the page keeps rerunning")
        return real()
    monkeypatch.setattr(ui, "area_selector", counted)
    return count


def _click(at, objects: dict, index: int = 0):
    """Run the app as if the browser sent this map selection (what a crafted
    websocket message can send: AppTest cannot click a deck.gl map)."""
    chart = at.get("deck_gl_json_chart")[index]
    states = at._tree.get_widget_states()
    value = {"selection": {"indices": {k: [0] for k in objects}, "objects": objects}}
    states.widgets.append(WidgetState(id=chart.proto.id, string_value=json.dumps(value)))
    return at._run(states)


# -- item 7: a refused map selection neither stays nor reruns ---------------------------

@pytest.mark.parametrize("page,role,area,code", [
    ("pages/rooms.py", "county", COUNTY, OTHER_COUNTY[:6] + "001000"),      # another county's township
    ("pages/pairing.py", "city", None, "439999001000"),                     # no such township
    ("pages/terminals.py", "county", COUNTY, "not-a-code"),
    ("pages/overview.py", "city", None, "439999001000"),                    # the overview opens counties
])
def test_a_refused_map_selection_does_not_rerun_for_ever(make_app, runs, page, role, area, code):
    at = make_app(role, area).switch_page(page).run()
    assert not at.exception
    before_title = at.title[0].value
    runs["n"] = 0
    at = _click(at, {"townships": [{"code": code, "name": "x"}]})
    assert not at.exception, [e.value for e in at.exception]
    assert runs["n"] == 1, f"{runs['n']} runs for one crafted selection"
    assert at.title[0].value == before_title                             # the view did not move
    assert "_go_to" not in at.session_state                             # no refused choice waits anywhere
    # The next run draws a fresh map: the refused selection is not replayed.
    runs["n"] = 0
    at.run()
    assert runs["n"] == 1 and not at.exception


def test_a_malformed_selection_is_refused_quietly(make_app, runs):
    at = make_app("city").switch_page("pages/pairing.py").run()
    runs["n"] = 0
    at = _click(at, {"townships": ["not an object"]})
    assert not at.exception and runs["n"] == 1


def test_a_real_click_still_drills_down(make_app, town, small_truth, runs):
    name = dict(zip(small_truth.townships["code"], small_truth.townships["name"]))[town]
    at = make_app("city").switch_page("pages/pairing.py").run()
    runs["n"] = 0
    at = _click(at, {"townships": [{"code": town}]})
    assert not at.exception, [e.value for e in at.exception]
    assert runs["n"] == 2                                                # the click, then the view it asked for
    assert at.query_params["township"] == town
    assert name in at.title[0].value
    # The overview opens the county of the township clicked.
    at = make_app("city").run()
    at = _click(at, {"townships": [{"code": town}]})
    assert not at.exception and at.query_params["county"] == COUNTY


def test_breadcrumbs_above_the_users_area_are_not_buttons(make_app, town):
    at = make_app("township", town).switch_page("pages/pairing.py").run()
    assert not at.exception
    assert not [b for b in at.button if b.key and b.key.startswith("crumb_")]
    at = make_app("county", COUNTY).switch_page("pages/pairing.py").run()
    assert not [b for b in at.button if b.key and b.key.startswith("crumb_")]     # the county is the top
    at = make_app("city").switch_page("pages/pairing.py")
    at.query_params["county"] = COUNTY
    at.run()
    assert [b.key for b in at.button if b.key and b.key.startswith("crumb_")] == ["crumb_0"]


# -- item 11 (a): values from the client cannot grow the caches -------------------------

def test_crafted_radii_share_the_slider_values(make_app, monkeypatch):
    """Issue #17 item 11: 300 radii grew the rooms view cache by 236 MB."""
    from liushou_geo import pagemaps

    made = []
    real = pagemaps.rooms_view

    def counted(con, settings, area, radius_km, *args, **kwargs):
        made.append(radius_km)
        return real(con, settings, area, radius_km, *args, **kwargs)
    monkeypatch.setattr(pagemaps, "rooms_view", counted)
    at = make_app("county", COUNTY).switch_page("pages/rooms.py")
    at.query_params["radius"] = "3.14159"
    at.run()
    assert at.sidebar.slider(key="radius").value == 3.0 and at.query_params["radius"] == "3"
    for i in range(12):
        at.sidebar.slider(key="radius").set_value(4.0 + i * 0.01).run()          # not on the slider's steps
        assert not at.exception
    for bad in (1e9, -5.0, float("nan")):
        at.sidebar.slider(key="radius").set_value(bad).run()
        assert not at.exception
    assert all(r * 2 == int(r * 2) and 0.5 <= r <= 20 for r in made), sorted(set(made))
    assert len(set(made)) <= 5, sorted(set(made))


def test_every_view_cache_is_bounded():
    from liushou_geo import ui, ui_planner

    for f in (ui._metrics, ui._overview, ui._overview_map, ui._village_targets, ui._unit_targets, ui._target_map,
              ui._rooms_view, ui._terminals_view, ui._pairing_view,
              ui_planner._plan, ui_planner._candidates, ui_planner._townships):
        assert f._info.max_entries is not None and f._info.max_entries <= 256, f


def test_planner_inputs_are_snapped(make_app, settings, monkeypatch):
    from liushou_geo import planner

    asked = []
    real = planner.plan_rooms

    def counted(con, s, budget, radius, **kw):
        asked.append((budget, radius))
        return real(con, s, budget, radius, **kw)
    monkeypatch.setattr(planner, "plan_rooms", counted)
    at = make_app("county", COUNTY).switch_page("pages/planner.py").run()
    cost = settings.room_cost_yuan
    for budget in (3 * cost + 1, 3 * cost + 7, 3 * cost + cost // 2):
        at.number_input(key="planner_budget").set_value(budget).run()
        assert not at.exception
    for radius in (3.14159, 3.2, 2.9):
        at.number_input(key="planner_radius").set_value(radius).run()
        assert not at.exception
    assert all(b % cost == 0 and r * 2 == int(r * 2) for b, r in asked), asked
    assert len({a for a in asked if a[0] == 3 * cost}) <= 2, asked      # one solve per room count and radius


# -- item 4: no built-in CSV for child rows; item 11 (d): the list leaves the screen -----

def test_child_rows_are_in_a_table_without_toolbar(make_app, town):
    at = make_app("township", town).switch_page("pages/followup.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.dataframe and at.table                # st.table has no toolbar, so no "Download as CSV"
    buttons = at.get("download_button")
    assert len(buttons) == 3 and all(b.proto.deferred_file_id and not b.proto.url for b in buttons)


def test_followup_download_is_audited_and_neutralised(make_app, town, monkeypatch):
    """The list's own download: made on a click, recorded in the audit log,
    a cell that would run as a formula written as text."""
    import io

    import openpyxl
    import polars as pl
    from streamlit.runtime.media_file_manager import MediaFileManager

    from liushou_geo import followup
    from liushou_geo.auth import AuthStore

    real = followup.followup

    def hostile(con, prefix):
        df = real(con, prefix)
        return df.with_columns(name=pl.when(pl.col("unpaired")).then(pl.lit("=HYPERLINK(\"http://x\",\"a\")"))
                               .otherwise(pl.col("name")))
    monkeypatch.setattr(followup, "followup", hostile)
    made = []
    add_deferred = MediaFileManager.add_deferred
    monkeypatch.setattr(MediaFileManager, "add_deferred",
                        lambda self, f, *a, **k: (made.append(f), add_deferred(self, f, *a, **k))[1])
    at = make_app("township", town).switch_page("pages/followup.py")
    at.session_state["show_unpaired"] = True
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    before = len(AuthStore().audit(200, "export"))
    data = made[0]()                                   # the click
    events = AuthStore().audit(200, "export")
    assert len(events) == before + 1 and "followup_list" in events[0]["detail"]
    ws = openpyxl.load_workbook(io.BytesIO(data)).worksheets[0]
    cells = [c for row in ws.iter_rows() for c in row if isinstance(c.value, str) and "HYPERLINK" in c.value]
    assert cells and all(c.data_type == "s" and not c.value.startswith("=") for c in cells)


def test_idle_expiry_hides_the_list_on_the_next_run(make_app, town):
    import datetime as dt

    at = make_app("township", town).run()              # through app.py, as a browser would
    at.switch_page("pages/followup.py").run()
    assert at.table
    at.session_state["last_seen"] = dt.datetime.now() - dt.timedelta(hours=2)
    at.run()
    assert not at.table and not at.dataframe
    assert any("已自动退出" in i.value for i in at.info)


# -- in Chromium ------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
needs_browser = pytest.mark.skipif(not CHROMIUM.exists() and os.environ.get("LIUSHOU_REQUIRE_BROWSER") != "1",
                                   reason="Debian chromium not installed (apt-get install chromium fonts-noto-cjk)")
TOWN_USER, TOWN_PASSWORD = "town_browser", "browser-test-password"


@pytest.fixture(scope="module")
def short_session_server(small_db, small_truth, tmp_path_factory):
    """The dashboard with a one-minute idle limit and a township user."""
    import re

    from liushou_geo.auth import AuthError, AuthStore
    from liushou_geo.settings import DEFAULT_SETTINGS

    town = sorted(c for c in small_truth.townships["code"] if c.startswith(COUNTY[:6]))[0]
    store = AuthStore()
    try:
        store.add_user(TOWN_USER, TOWN_PASSWORD, "township", town)
    except AuthError:
        pass
    store.close()
    settings = tmp_path_factory.mktemp("short") / "settings.toml"
    text = Path(DEFAULT_SETTINGS).read_text(encoding="utf-8")
    settings.write_text(re.sub(r"(?m)^session_minutes\s*=.*$", "session_minutes = 1", text), encoding="utf-8")
    proc, url = start_server(small_db[0], LIUSHOU_SETTINGS=str(settings))
    yield url
    stop_server(proc)


@pytest.fixture(scope="module")
def chromium():
    with chromium_browser() as b:
        yield b


def _open_followup(chromium, url):
    page = chromium.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(url, wait_until="networkidle")
    page.get_by_label("用户名").fill(TOWN_USER)
    page.get_by_label("密码").fill(TOWN_PASSWORD)
    page.get_by_label("密码").press("Enter")
    page.wait_for_selector('[data-testid="stSidebarNav"]', timeout=60_000)
    page.get_by_role("link", name="跟进名单").click()
    page.wait_for_selector('[data-testid="stTable"], [data-testid="stDataFrame"]', timeout=60_000)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60_000)
    return page


@pytest.mark.browser
@needs_browser
def test_followup_has_no_csv_button_and_leaves_the_screen_when_idle(short_session_server, chromium):
    """Item 4: the child list shows no "Download as CSV" (it was st.dataframe's
    toolbar); item 11: with nobody touching the page, the list leaves the
    screen once the session has been idle past its limit (it used to stay
    until the next click)."""
    from conftest import ARTIFACTS

    page = _open_followup(chromium, short_session_server)
    table = page.locator('[data-testid="stTable"]').first
    assert table.is_visible() and page.locator('[data-testid="stDataFrame"]').count() == 0
    table.hover()
    page.wait_for_timeout(500)
    assert page.locator('[data-testid="stElementToolbar"]').count() == 0
    assert page.get_by_role("button", name="下载名单（Excel）").first.is_visible()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "followup_table.png"))
    # One minute idle, then the watcher's next beat (every 15 s at this limit).
    page.wait_for_selector('input[type="password"]', timeout=110_000)
    assert page.locator('[data-testid="stTable"]').count() == 0
    assert page.get_by_text("已自动退出").first.is_visible()
    page.screenshot(path=str(ARTIFACTS / "followup_after_idle.png"))
    page.close()
