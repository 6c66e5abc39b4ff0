"""Real-browser smoke test: Debian's Chromium driven by Playwright (no browser
download). Starts the dashboard on a free loopback port against the small
city, waits for it to finish running, checks that no request leaves the
machine and saves a screenshot to tests/artifacts/.

Skips when /usr/bin/chromium is absent, unless LIUSHOU_REQUIRE_BROWSER=1
(set by .ci/run, which installs Chromium): in CI it never skips.
"""

import urllib.error
import urllib.request

import pytest

from conftest import ARTIFACTS, chromium_browser, require_chromium, start_server, stop_server

pytestmark = pytest.mark.browser
require_chromium()


USER, PASSWORD = "leader", "browser-test-password"


def _ensure_user():
    from liushou_geo.auth import AuthError, AuthStore

    store = AuthStore()
    try:
        store.add_user(USER, PASSWORD, "city")
    except AuthError:
        pass      # made by an earlier module of this session
    store.close()


def _start(db_path):
    _ensure_user()
    return start_server(db_path)


@pytest.fixture(scope="module")
def server(small_db):
    proc, url = _start(small_db[0])
    yield url
    stop_server(proc)


def _sign_in(page):
    """Fill the sign-in form if it is there (each browser page is a new session)."""
    # "notRunning" also holds before the first run starts: wait for the form or the app itself.
    page.wait_for_selector('input[type="password"], [data-testid="stSidebarNav"]', timeout=60_000)
    for _ in range(3):
        if not page.locator('input[type="password"]').count():
            break
        if page.get_by_text("Page not found").count():
            page.keyboard.press("Escape")                  # a deep link to a page not offered before sign-in
            page.wait_for_timeout(300)
        page.get_by_label("用户名").fill(USER)
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_label("密码").press("Enter")          # submits the form once its values are in
        try:
            page.wait_for_selector('input[type="password"]', state="detached", timeout=15_000)
        except Exception:
            continue
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60_000)
    assert not page.locator('input[type="password"]').count(), "could not sign in"


@pytest.fixture(scope="module")
def browser():
    with chromium_browser() as b:
        yield b


def _load(browser, url, shot_name, expect_map=True):
    """Open a page signed in, wait for its map (if it has one), save a screenshot."""
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(url, wait_until="networkidle")
    _sign_in(page)
    try:
        if expect_map:
            page.locator('[data-testid="stDeckGlJsonChart"] canvas').first.wait_for(timeout=30_000)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / f"failed_{shot_name}"))
        raise
    page.wait_for_timeout(1500)   # let deck.gl draw before the screenshot
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / shot_name))
    return page, requests


def test_security_headers_and_no_public_metrics(server):
    """Every HTTP response carries the frame, content and referrer policies; the
    metrics endpoint is not served (issue #17, item 11)."""
    resp = urllib.request.urlopen(server + "/", timeout=10)
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(server + "/_stcore/metrics", timeout=10)
    assert e.value.code == 404


def test_overview_loads_in_chromium(server, browser):
    page, requests = _load(browser, server, "overview.png")
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text("留守儿童关爱服务地图").first.is_visible()
    outside = [u for u in requests if not u.startswith((server, "data:", "blob:"))]
    assert not outside, f"requests left the machine: {outside}"
    assert (ARTIFACTS / "overview.png").stat().st_size > 20_000
    page.close()


def test_county_view_from_url(server, browser):
    page, requests = _load(browser, f"{server}/?county=439902000000", "overview_county.png")
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text("城关区").first.is_visible()
    assert not [u for u in requests if not u.startswith((server, "data:", "blob:"))]
    page.close()


def test_compliance_page_in_chromium(server, browser):
    page, requests = _load(browser, f"{server}/targets?target=t4", "compliance.png")
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text("七项目标达标情况").first.is_visible()
    assert page.locator('[data-testid="stDataFrame"]').count() >= 1
    assert not [u for u in requests if not u.startswith((server, "data:", "blob:"))]
    page.close()


def test_a_page_file_name_in_the_url_does_not_bypass_the_app(server, browser):
    """/compliance names a file in pages/; it must not run that file without app.py."""
    page, _ = _load(browser, f"{server}/compliance", "bypass.png")
    assert page.get_by_text("总览").first.is_visible()           # app.py's navigation is there
    assert page.get_by_text("留守儿童关爱服务地图").first.is_visible()   # and the default page ran
    page.close()


@pytest.mark.parametrize("path,title", [("room-coverage", "活动室覆盖"), ("hotlines", "亲情电话与信箱"),
                                        ("pairing-gaps", "结对帮扶"), ("year-end", "年度评估"),
                                        ("planner", "选址规划"),
                                        ("room-coverage?county=439921000000", "活动室覆盖")])
def test_every_page_in_chromium(server, browser, path, title):
    shot = path.replace("?", "_").replace("=", "-") + ".png"
    page, requests = _load(browser, f"{server}/{path}", shot, expect_map=not path.startswith("year-end"))
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text(title).first.is_visible()
    assert not [u for u in requests if not u.startswith((server, "data:", "blob:"))]
    page.close()


def _screen_xy(box, view, lon, lat):
    """Where deck.gl draws (lon, lat): Web Mercator, 512-px world at zoom 0, view centre at the canvas centre."""
    import math

    scale = 512 * 2 ** view["zoom"]

    def world(lo, la):
        x = scale * (lo + 180) / 360
        y = scale * (1 - math.log(math.tan(math.pi / 4 + math.radians(la) / 2)) / math.pi) / 2
        return x, y

    cx, cy = world(view["longitude"], view["latitude"])
    x, y = world(lon, lat)
    return box["x"] + box["width"] / 2 + (x - cx), box["y"] + box["height"] / 2 + (y - cy)


def test_clicking_a_township_drills_down(server, browser, small_db):
    """A real click on a township in the pairing map opens that township's villages."""
    import json

    import duckdb

    from liushou_geo.mapview import fit_view

    con = duckdb.connect(str(small_db[0]), read_only=True)
    # The largest township is the easiest to hit; its point lies inside it.
    code, name, lon, lat = con.execute("""SELECT code, name, lon, lat FROM units WHERE level = 'township'
                                          ORDER BY area_km2 DESC LIMIT 1""").fetchone()
    rings = [json.loads(g) for (g,) in con.execute(
        "SELECT geom_web FROM units WHERE level = 'township' ORDER BY code").fetchall()]
    con.close()
    vs = fit_view(rings)                     # the view the page fits to the townships
    page, _ = _load(browser, f"{server}/pairing-gaps", "pairing_before_click.png")
    box = page.locator('[data-testid="stDeckGlJsonChart"] canvas').first.bounding_box()
    x, y = _screen_xy(box, {"zoom": vs.zoom, "longitude": vs.longitude, "latitude": vs.latitude}, lon, lat)
    page.mouse.move(x, y)
    page.wait_for_timeout(500)
    page.mouse.click(x, y)
    page.wait_for_function(f"() => window.location.search.includes('township={code}')", timeout=30_000)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60_000)
    page.wait_for_timeout(1500)
    page.screenshot(path=str(ARTIFACTS / "pairing_after_click.png"))
    assert page.get_by_text(f"结对帮扶 · {name}").first.is_visible()
    assert page.locator('[data-testid="stException"]').count() == 0
    page.close()


HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def hostile_server(small_city_dir, tmp_path_factory, settings):
    """The small city with a township and a village named like an attack."""
    import shutil

    import geopandas as gpd

    from liushou_geo.ingest import ingest
    from liushou_geo.store import connect

    src = tmp_path_factory.mktemp("hostile")
    shutil.copytree(small_city_dir, src / "city")
    towns_file = src / "city" / "boundaries" / "乡镇界线.geojson"
    towns = gpd.read_file(towns_file)
    town = sorted(towns["乡镇代码"])[0]
    towns.loc[towns["乡镇代码"] == town, "乡镇名称"] = HOSTILE
    towns.to_file(towns_file, driver="GeoJSON")
    shp = src / "city" / "boundaries" / "村级界线.shp"
    g = gpd.read_file(shp, encoding="GBK")
    first = sorted(g.loc[g["QHDM"].str.startswith(town[:9]), "QHDM"])[0]
    g.loc[g["QHDM"] == first, "QHMC"] = HOSTILE + "村"
    g.to_file(shp, encoding="GBK")
    db = src / "hostile.duckdb"
    con = connect(db)
    ingest(con, [src / "city"], settings)
    con.close()
    proc, url = _start(db)
    yield url, town
    stop_server(proc)


def test_hostile_names_stay_text(hostile_server, browser):
    """A unit named <img src=x onerror=alert(1)> shows as text in titles, breadcrumbs,
    tables and tooltips, and no script runs (no dialog opens)."""
    url, town = hostile_server
    dialogs = []
    for path in (f"pairing-gaps?county={town[:6]}000000&township={town}", f"targets?township={town}",
                 f"home?county={town[:6]}000000", f"room-coverage?county={town[:6]}000000&township={town}"):
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(f"{url}/{path}", wait_until="networkidle")
        _sign_in(page)
        page.wait_for_timeout(1500)
        assert page.locator('[data-testid="stException"]').count() == 0, path
        # Hover every part of the map so tooltips with the name are drawn.
        canvas = page.locator('[data-testid="stDeckGlJsonChart"] canvas').first
        if canvas.count():
            box = canvas.bounding_box()
            for fx in (0.3, 0.5, 0.7):
                for fy in (0.3, 0.5, 0.7):
                    page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
                    page.wait_for_timeout(150)
        page.screenshot(path=str(ARTIFACTS / f"hostile_{path.split('?')[0]}.png"))
        assert page.locator("img[src='x']").count() == 0, path
        assert not [u for u in requests if not u.startswith((url, "data:", "blob:"))]
        if path.startswith(("pairing", "targets")):
            assert page.get_by_text(HOSTILE).first.is_visible(), path        # shown, as text
        page.close()
    assert dialogs == []
