"""Real-browser smoke test: Debian's Chromium driven by Playwright (no browser
download). Starts the dashboard on a free loopback port against the small
city, waits for it to finish running, checks that no request leaves the
machine and saves a screenshot to tests/artifacts/.

Skips when /usr/bin/chromium is absent, unless LIUSHOU_REQUIRE_BROWSER=1
(set by .ci/run, which installs Chromium): in CI it never skips.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ARTIFACTS, ROOT

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.browser

if not CHROMIUM.exists():
    if os.environ.get("LIUSHOU_REQUIRE_BROWSER") == "1":
        raise RuntimeError("LIUSHOU_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing: apt-get install chromium")
    pytest.skip("Debian chromium not installed (apt-get install chromium fonts-noto-cjk)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(small_db):
    port = _free_port()
    env = dict(os.environ, LIUSHOU_DB=str(small_db[0]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "liushou_geo.cli", "serve", "--port", str(port), "--address", "127.0.0.1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not become healthy: " + proc.stdout.read().decode(errors="replace")[-2000:])
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                  "--disable-background-networking", "--disable-component-update", "--no-first-run"],
        )
        yield b
        b.close()


def _load(browser, url, shot_name):
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(url, wait_until="networkidle")
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60_000)
    page.locator('[data-testid="stDeckGlJsonChart"] canvas').first.wait_for(timeout=30_000)
    page.wait_for_timeout(1500)   # let deck.gl draw before the screenshot
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / shot_name))
    return page, requests


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
