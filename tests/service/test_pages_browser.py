"""The web pages in a real headless Chromium (Debian's chromium and chromium-driver, driven by selenium) against
the app served by uvicorn on a free port: the calculator's table equals POST /v1/recommend's, an upload lands
on its report with its plots drawn (after the 202s the plot route answers while drawing), a bad field is
marked, a write without the token is refused, every input has a label and every image its alt text, a
phone-width window needs no sideways scrolling.

Without a browser these tests skip, unless ABCSCALE_REQUIRE_BROWSER=1 (make test sets it, and installs the
browser when missing and run as root): then they fail. ABCSCALE_UPDATE_SCREENSHOTS=1 (make screenshots) writes
the three pages' screenshots to docs/screenshots/ for the README.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from abcscale.service.app import create_app
from abcscale.service.config import Settings
from tests.helpers import free_port
from tests.service.conftest import N_BOOT, TOKEN

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
PHONE = (390, 844)  # an iPhone 12-14's CSS viewport


def _browser_or_skip() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if not missing:
        return
    why = f"no browser to drive: {', '.join(missing)} missing (apt-get install chromium chromium-driver)"
    if os.environ.get("ABCSCALE_REQUIRE_BROWSER") == "1":
        pytest.fail(why)
    pytest.skip(why)


class ThreadServer:
    """The app under uvicorn in a thread of this process, on a free loopback port."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def serve_pages(tmp_path_factory, plot_workers) -> Iterator[ThreadServer]:
    """conftest's ``pages_server``: the server of this file's tests and of the other files' browser tests that
    only read (tests/service/test_consistency_s66.py), one a test process."""
    _browser_or_skip()
    # plot_wait_s=0: a first plot request answers 202 at once, so the report's retry is what draws the plots
    s = ThreadServer(Settings(data_dir=tmp_path_factory.mktemp("pages"), api_token=TOKEN, plot_wait_s=0))
    plot_workers.attach(s.app)  # conftest.SharedPlotWorkers: the test process's warm plot workers
    yield s
    s.stop()


@pytest.fixture(scope="module")
def server(pages_server) -> ThreadServer:
    return pages_server


def chromium(*, page_load_timeout: float = 30, logging: bool = False):
    """Headless Chromium through Debian's chromedriver; ``logging``: it records its console and network requests."""
    _browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager must not look for a driver on the network
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(flag)
    if logging:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(page_load_timeout)
    return driver


def pages_chromium() -> Iterator:
    """conftest's ``pages_browser``: one Chromium a test process for this file and test_consistency_s66.py's page
    test (a second one there cost 4.5 CPU-s, its start and its quit, 2026-12-07). Each test loads its own page first
    and gives the window its size back."""
    driver = chromium()
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def browser(pages_browser):
    return pages_browser


def _by(driver, css: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css)


def _all(driver, css: str) -> list:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, css)


def _wait(driver, condition, timeout: float = 20):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def _type(driver, name: str, text: str) -> None:
    box = _by(driver, f"#f-{name}")
    box.clear()
    box.send_keys(text)


def _choose(driver, name: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(_by(driver, f"#f-{name}")).select_by_value(value)


def _table(driver, kind: str = "layer") -> dict[str, dict[str, float]]:
    """What the page's table shows: row -> field -> the number in full precision (``data-value``)."""
    out = {}
    for row in _all(driver, f"tr[data-{kind}]"):
        cells = row.find_elements("css selector", "td[data-field]")
        out[row.get_attribute(f"data-{kind}")] = {c.get_attribute("data-field"): float(c.get_attribute("data-value"))
                                                  for c in cells if c.get_attribute("data-value")}
    return out


def _fill_upload(browser, server, path, name: str) -> None:
    """The registry's upload form with a table, a name, the bootstrap size and the token (not sent yet)."""
    browser.get(f"{server.url}/fits")
    _by(browser, "#f-file").send_keys(str(path))
    _type(browser, "name", name)
    _type(browser, "n_boot", str(N_BOOT))
    _type(browser, "token", TOKEN)


@pytest.fixture(scope="module")
def uploaded(server, browser, sweep, tmp_path_factory) -> str:
    """A sweep uploaded through the registry's form, with the token: the URL the browser landed on."""
    path = tmp_path_factory.mktemp("upload") / "sweep.csv"
    sweep.to_csv(path, index=False)
    _fill_upload(browser, server, path, "browser-upload")
    _by(browser, "#upload-submit").click()
    _wait(browser, lambda d: "/fits/" in d.current_url and _all(d, "section.group"))
    return browser.current_url


def test_upload_with_the_theory_setup_chosen_in_more_options(server, browser, tmp_path):
    """A table without parameterization/optimizer/lr_mode columns: the setup chosen in "More options" gives its
    group theory's exponent and a verdict (the form lacked these fields, session 37)."""
    from abcscale.fitting.synthetic import synthetic_sweep

    path = tmp_path / "bare.csv"
    synthetic_sweep(widths=(64, 128, 256), exponent=0.0, seed=3).to_csv(path, index=False)
    _fill_upload(browser, server, path, "browser-setup")
    _by(browser, "details.more summary").click()
    _choose(browser, "parameterization", "mup")
    _choose(browser, "optimizer", "adam")
    _choose(browser, "lr_mode", "per_layer")
    _by(browser, "#upload-submit").click()
    _wait(browser, lambda d: "/fits/" in d.current_url and _all(d, "section.group"))
    fit = httpx.get(f"{server.url}/v1/fits/{browser.current_url.rsplit('/', 1)[1]}").json()["result"]
    assert fit["groups"][0]["theory_exponent"] == 0.0 and fit["groups"][0]["consistent"] is not None


def test_the_api_docs_render_with_no_network(server, browser):
    """/docs and /redoc loaded their scripts and styles from a CDN: offline (this machine, CI) they rendered blank.
    They come from the fastapi-offline package's copies now, and neither page names another host."""
    browser.get(f"{server.url}/docs")
    _wait(browser, lambda d: _all(d, ".swagger-ui .opblock"))
    assert "abcscale" in _by(browser, ".swagger-ui .info .title").text
    paths = {e.text for e in _all(browser, ".swagger-ui .opblock-summary-path")}
    assert "/v1/fits" in paths and "/v1/recommend" in paths
    for page in ("/docs", "/redoc"):
        html = httpx.get(f"{server.url}{page}").text
        assert "http://" not in html and "https://" not in html, page
    browser.get(f"{server.url}/redoc")
    _wait(browser, lambda d: _all(d, ".redoc-wrap") and "/v1/fits" in _by(d, ".redoc-wrap").text)


def test_calculator_table_equals_the_api(server, browser):
    browser.get(server.url + "/")
    _choose(browser, "parameterization", "ntk")
    _choose(browser, "optimizer", "adamw")
    _type(browser, "base_width", "128")
    _type(browser, "base_lr", "0.002")
    _type(browser, "width", "8192")
    _by(browser, "details.constants summary").click()
    _type(browser, "weight_decay", "0.05")
    _by(browser, "#submit").click()
    _wait(browser, lambda d: "width=8192" in d.current_url and _all(d, "#layers"))
    api = httpx.post(f"{server.url}/v1/recommend", json={
        "parameterization": "ntk", "optimizer": "adamw", "width": 8192,
        "base": {"width": 128, "beta": 0.002, "weight_decay": 0.05}}).json()
    shown = _table(browser)
    assert shown == {s["layer"]: {k: s[k] for k in ("multiplier", "init_std", "lr", "epsilon", "weight_decay")}
                     for s in api["layers"]}
    assert {r: v["lr"] for r, v in _table(browser, "role").items()} == {
        s["role"]: s["lr"] for s in api["groups"]["roles"]}
    assert "torch.optim.AdamW" in _by(browser, "#export-3").get_attribute("textContent")


def test_calculator_from_the_uploaded_fit(server, browser, uploaded):
    fit_id = uploaded.rsplit("/", 1)[1].split("?")[0]
    browser.get(server.url + "/")
    _by(browser, "#src-fit").click()
    assert not _by(browser, "#f-base_lr").is_displayed()  # the theory fields hide
    _choose(browser, "fit_id", fit_id)
    _type(browser, "width", "2048")
    _by(browser, "#submit").click()
    _wait(browser, lambda d: _all(d, "#band"))
    api = httpx.post(f"{server.url}/v1/recommend", json={"fit_id": fit_id, "width": 2048}).json()
    assert float(_by(browser, '#band dd[data-field="safe_lr"]').get_attribute("data-value")) == api["band"]["safe_lr"]
    assert {k: v["lr"] for k, v in _table(browser).items()} == {s["layer"]: s["lr"] for s in api["layers"]}


def test_upload_lands_on_the_report_with_its_plots(server, browser, uploaded):
    browser.get(uploaded)
    assert _by(browser, "h1").text == "browser-upload"
    _wait(browser, lambda d: all(i.get_attribute("data-loaded") == "true" for i in _all(d, "img.plot")), 40)
    assert all(browser.execute_script("return arguments[0].naturalWidth", i) > 100 for i in _all(browser, "img.plot"))
    box = _by(browser, "#width-0")
    box.send_keys("4096")
    box.submit()
    _wait(browser, lambda d: _all(d, "#prediction-0"))
    fit_id = uploaded.rsplit("/", 1)[1]
    api = httpx.post(f"{server.url}/v1/recommend", json={"fit_id": fit_id, "width": 4096}).json()
    assert float(_by(browser, '#prediction-0 dd[data-field="lr"]').get_attribute("data-value")) == api["band"]["lr"]
    assert httpx.get(_by(browser, "#json-link").get_attribute("href")).json()["id"] == fit_id


def test_a_bad_field_shows_its_error(server, browser):
    browser.get(server.url + "/")
    _type(browser, "base_lr", "fast")
    _by(browser, "#submit").click()
    _wait(browser, lambda d: _all(d, "#error-summary"))
    box = _by(browser, "#f-base_lr")
    assert box.get_attribute("aria-invalid") == "true" and box.get_attribute("value") == "fast"
    assert "expected a number" in _by(browser, "#e-base_lr").text
    assert not _all(browser, "#result") and "Traceback" not in browser.page_source


def test_a_write_without_the_token_is_refused(server, browser, sweep, tmp_path):
    path = tmp_path / "sweep.csv"
    sweep.to_csv(path, index=False)
    before = httpx.get(f"{server.url}/v1/fits").json()["count"]
    browser.get(f"{server.url}/fits")
    _by(browser, "#f-file").send_keys(str(path))
    _type(browser, "n_boot", str(N_BOOT))
    _by(browser, "#upload-submit").click()
    _wait(browser, lambda d: _all(d, "#e-token"))
    assert "write token" in _by(browser, "#e-token").text
    assert httpx.get(f"{server.url}/v1/fits").json()["count"] == before


_UNLABELLED = """
return [...document.querySelectorAll('input, select, textarea')]
  .filter(e => e.type !== 'hidden' && e.type !== 'submit' && e.labels.length === 0 && !e.getAttribute('aria-label'))
  .map(e => e.outerHTML);
"""
_NO_ALT = "return [...document.images].filter(i => !(i.getAttribute('alt') || '').trim()).map(i => i.outerHTML);"


def _pages(server, uploaded) -> dict[str, str]:
    return {"calculator": server.url + "/", "fits": server.url + "/fits", "report": uploaded}


def test_labels_alt_text_and_language(server, browser, uploaded):
    for name, url in _pages(server, uploaded).items():
        browser.get(url)
        assert browser.execute_script(_UNLABELLED) == [], name
        assert browser.execute_script(_NO_ALT) == [], name
        assert _by(browser, "html").get_attribute("lang") == "en"
        assert len(_all(browser, "h1")) == 1, name


def test_a_phone_width_window_needs_no_sideways_scrolling(server, browser, uploaded):
    browser.set_window_size(*PHONE)
    try:
        for name, url in _pages(server, uploaded).items():
            browser.get(url)
            width = browser.execute_script("return document.documentElement.clientWidth")
            assert width <= PHONE[0]
            wide = browser.execute_script("return document.documentElement.scrollWidth")
            assert wide <= width, f"{name}: {wide}px of content in a {width}px window"
            assert _by(browser, "h1").is_displayed() and _by(browser, "button[type=submit]").is_displayed()
    finally:
        browser.set_window_size(1280, 1000)


_OUTSIDE = """
const width = document.documentElement.clientWidth;
return [...document.querySelectorAll('#fits th, #fits td')]
  .filter(c => c.getBoundingClientRect().right > width + 0.5 && c.getClientRects().length)
  .map(c => c.textContent.trim().slice(0, 40));
"""


def test_the_registry_on_a_phone_shows_every_column_without_scrolling_its_table(server, browser, uploaded):
    """Four columns in 390 px put the groups (exponent, theory, verdict) off to the right of a scrolled region:
    on a phone each fit is a card whose cells name their column."""
    browser.set_window_size(*PHONE)
    try:
        browser.get(server.url + "/fits")
        assert browser.execute_script(_OUTSIDE) == []
        region = _by(browser, "div.scroll[aria-label='stored fits']")
        assert browser.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth", region)
        groups = _by(browser, "#fits td[data-label=groups]")
        assert groups.is_displayed() and "theory" in groups.text
        label = browser.execute_script("return getComputedStyle(arguments[0], '::before').content", groups)
        assert "groups" in label
    finally:
        browser.set_window_size(1280, 1000)
    browser.get(server.url + "/fits")  # a wide window keeps the table, its header row visible
    assert _by(browser, "#fits thead th").is_displayed()


def test_screenshots_of_the_three_pages(server, browser, uploaded, tmp_path):
    """A PNG of each page; with ABCSCALE_UPDATE_SCREENSHOTS=1 (make screenshots) they replace the README's."""
    shots = {}
    browser.set_window_size(1280, 1500)
    try:
        for name, url in _pages(server, uploaded).items():
            browser.get(url)
            if name == "report":
                _wait(browser, lambda d: all(i.get_attribute("data-loaded") == "true" for i in _all(d, "img.plot")),
                      40)
            shots[name] = tmp_path / f"{name}.png"
            assert browser.save_screenshot(str(shots[name]))
            assert shots[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        browser.set_window_size(1280, 1000)
    if os.environ.get("ABCSCALE_UPDATE_SCREENSHOTS") == "1":
        for name, path in shots.items():
            shutil.copy(path, ROOT / "docs" / "screenshots" / f"{name}.png")
