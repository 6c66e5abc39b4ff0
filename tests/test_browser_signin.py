"""A sign-in that lasts, in a real browser (issue #15 item 2): Debian's Chromium
driven by Playwright, against `liushou-geo serve` on a free loopback port.

Sign in once; a reload and a deep link opened in a new page of the same
browser context stay signed in (the HttpOnly cookie resumes the sign-in);
sign-out ends the token: a new page shows the form, and putting the old
cookie back does not resume. Screenshots go to tests/artifacts/.

Skips when /usr/bin/chromium is absent, unless LIUSHOU_REQUIRE_BROWSER=1
(set by CI, which installs Chromium): there it never skips.
"""

import hashlib
import subprocess
import time
import urllib.request

import pytest

from conftest import ARTIFACTS, chromium_browser, require_chromium, start_server, stop_server

pytestmark = pytest.mark.browser
require_chromium()

USER, PASSWORD = "lasting", "lasting-sign-in-password"
COUNTY, COUNTY_NAME = "439921000000", "安平县"
COOKIE = "liushou_session"
APP = '[data-testid="stSidebarNav"]'
FORM = 'input[type="password"]'
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


@pytest.fixture(scope="module")
def store():
    from liushou_geo.auth import AuthError, AuthStore

    s = AuthStore()                       # the test session's auth file ($LIUSHOU_AUTH_DB), shared with the server
    try:
        s.add_user(USER, PASSWORD, "city", display_name="持久登录测试")
    except AuthError:
        s.reset_password(USER, PASSWORD)
    yield s
    s.close()


@pytest.fixture(scope="module")
def server(small_db, store):
    proc, url = start_server(small_db[0])
    yield url
    stop_server(proc)


@pytest.fixture(scope="module")
def browser():
    with chromium_browser() as b:
        yield b


def _state(page) -> str:
    """'form' or 'app', once the page has settled."""
    page.wait_for_selector(f"{FORM}, {APP}", timeout=60_000)
    page.wait_for_selector(IDLE, timeout=60_000)
    return "form" if page.locator(FORM).count() else "app"


def _sign_in(page):
    assert _state(page) == "form"
    if page.get_by_text("Page not found").count():
        page.keyboard.press("Escape")
    page.get_by_label("用户名").fill(USER)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_label("密码").press("Enter")
    page.wait_for_selector(APP, timeout=60_000)
    page.wait_for_selector(IDLE, timeout=60_000)


def _cookie(context):
    return next((c for c in context.cookies() if c["name"] == COOKIE), None)


def _wait_cookie(context, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        c = _cookie(context)
        if c:
            return c
        time.sleep(0.2)
    raise AssertionError("the browser never got the sign-in cookie")


def _events(store, event, since_id):
    rows = store.db.execute("SELECT id, username, detail FROM audit WHERE event = ? AND id > ?",
                            (event, since_id)).fetchall()
    return rows


def _last_audit_id(store):
    return store.db.execute("SELECT COALESCE(MAX(id), 0) FROM audit").fetchone()[0]


def test_sign_in_lasts_through_reload_and_new_tab_until_sign_out(server, browser, store):
    start = _last_audit_id(store)
    context = browser.new_context(viewport={"width": 1400, "height": 1200})
    requests = []
    context.on("request", lambda r: requests.append(r.url))
    page = context.new_page()
    page.goto(server, wait_until="networkidle")
    _sign_in(page)

    # The cookie: HttpOnly, SameSite=Strict, gone when the browser closes; no script sees it.
    cookie = _wait_cookie(context)
    token = cookie["value"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] == -1, cookie
    assert len(token) >= 40
    assert token not in page.evaluate("document.cookie")
    assert token not in page.content()                          # nor is it anywhere in the page
    # The server keeps only its hash.
    hashes = [h for (h,) in store.db.execute("SELECT token_hash FROM sessions WHERE username = ?", (USER,))]
    assert hashlib.sha256(token.encode()).hexdigest() in hashes
    # Read by another process: opening and closing the file here would drop this
    # process's POSIX locks on it, which SQLite relies on (later: "disk I/O error").
    raw = subprocess.run(["cat", *map(str, store.path.parent.glob(store.path.name + "*"))],
                         capture_output=True, check=True).stdout
    assert token.encode() not in raw

    # F5: a new Streamlit session, resumed from the cookie.
    page.reload(wait_until="networkidle")
    assert _state(page) == "app"
    assert page.get_by_text("持久登录测试").first.is_visible()

    # A deep link in a new page of the same context: signed in, on that view.
    tab = context.new_page()
    tab.goto(f"{server}/pairing-gaps?county={COUNTY}", wait_until="networkidle")
    assert _state(tab) == "app"
    tab.locator('[data-testid="stDeckGlJsonChart"] canvas').first.wait_for(timeout=30_000)
    tab.wait_for_timeout(1500)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / "signin_resumed_deep_link.png"))
    assert f"county={COUNTY}" in tab.url and "/pairing-gaps" in tab.url
    assert tab.get_by_text(f"结对帮扶 · {COUNTY_NAME}").first.is_visible()
    assert tab.locator('[data-testid="stException"]').count() == 0
    resumes = _events(store, "session_resume", start)
    assert len(resumes) >= 2 and all(u == USER for _, u, _ in resumes)     # every resume is audited
    assert not [u for u in requests if not u.startswith((server, "data:", "blob:"))]

    # Sign out in the new tab: the token stops working everywhere.
    tab.get_by_role("button", name="退出登录").click()
    tab.wait_for_selector(FORM, timeout=30_000)
    deadline = time.time() + 15                  # the sign-in form also removes the cookie from the browser
    while _cookie(context) and time.time() < deadline:
        time.sleep(0.2)
    assert _cookie(context) is None
    assert not store.db.execute("SELECT 1 FROM sessions WHERE token_hash = ?",
                                (hashlib.sha256(token.encode()).hexdigest(),)).fetchone()
    fresh = context.new_page()
    fresh.goto(server, wait_until="networkidle")
    assert _state(fresh) == "form"
    # Even with the old cookie put back by hand, nothing resumes.
    context.add_cookies([{"name": COOKIE, "value": token, "url": server, "httpOnly": True, "sameSite": "Strict"}])
    again = context.new_page()
    again.goto(f"{server}/pairing-gaps?county={COUNTY}", wait_until="networkidle")
    assert _state(again) == "form"
    again.screenshot(path=str(ARTIFACTS / "signin_old_token_refused.png"))
    refused = _events(store, "session_resume_refused", start)
    assert any('"unknown"' in d for _, _, d in refused)
    # The first tab, still open, is signed out at its next action.
    page.reload(wait_until="networkidle")
    assert _state(page) == "form"
    context.close()


def test_an_administrators_lock_ends_the_lasting_sign_in(server, browser, store):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{server}/year-end", wait_until="networkidle")
    _sign_in(page)
    _wait_cookie(context)
    page.reload(wait_until="networkidle")
    assert _state(page) == "app"
    store.lock_user(USER, by="test")
    try:
        page.reload(wait_until="networkidle")
        assert _state(page) == "form"
        other = context.new_page()
        other.goto(server, wait_until="networkidle")
        assert _state(other) == "form"
    finally:
        store.unlock(USER, by="test")
    context.close()


def test_the_cookie_route_refuses_other_sites_and_spent_codes(server, store):
    """The hand-over code works once, and not from a request another site starts."""
    import datetime as dt

    from liushou_geo.auth import User

    sid, code = store.start_session(User(USER, "city", None), 30)
    req = urllib.request.Request(f"{server}/liushou/session?code={code}", headers={"Sec-Fetch-Site": "cross-site"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 403
    with urllib.request.urlopen(f"{server}/liushou/session?code={code}", timeout=10) as r:
        set_cookie = r.headers["set-cookie"]
    assert set_cookie.startswith(COOKIE + "=") and "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie
    with pytest.raises(urllib.error.HTTPError) as e:                       # spent
        urllib.request.urlopen(f"{server}/liushou/session?code={code}", timeout=10)
    assert e.value.code == 403
    token = set_cookie.split(";")[0].split("=", 1)[1]
    assert store.check_session(sid, 30, dt.datetime.now())[1] == "ok"
    assert store.resume_session(token, 30)[1].username == USER
    store.end_session(sid)
