"""Session 67's operations review, against real servers (``abcscale serve`` in a subprocess, the app under uvicorn
for the browser) and real SQLite files:

* a file copy of a running service's SQLite database (WAL: its fits are in abcscale.db-wal) held no tables, and a
  server started on it said "tables made" and served an empty registry: now a warning at start says what it
  likely is; the README's backups (sqlite3's .backup, Python's backup API) hold every fit;
* ABCSCALE_API_TOKEN / ABCSCALE_READ_TOKEN with a trailing newline (a secret file's) started, then refused every
  write: stripped now; a control character or non-ASCII inside refuses the start, never echoing the token;
* the report's headline law (the free fit) and the law its predictions use (theory's prior) differed, unlabelled;
* /redoc fetched its logo from cdn.redoc.ly; every page asked for a favicon.ico and got a 404;
* a postgres:// URL (as PaaS platforms give) found no SQLAlchemy dialect; a multipart form's covariates as a JSON
  list were read as one column named '["D"'.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from abcscale.service.config import Settings
from tests.fitting.covariate_sweeps import covariate_sweep
from tests.helpers import free_port
from tests.service.conftest import N_BOOT, TOKEN
from tests.service.pg import fresh_database
from tests.service.test_pages_browser import ThreadServer, _browser_or_skip, chromium
from tests.service.test_server import ROOT, Server

TOUR = ROOT / "examples" / "tour-sweep.parquet"
SECRET = "SECRET"  # in every bad token of this file: no output may hold it


def _count(url: str) -> int:
    return httpx.get(f"{url}/v1/fits", timeout=10).json()["count"]


def _stderr(server: Server) -> str:
    assert server.proc.stderr is not None and server.proc.poll() is not None
    return server.proc.stderr.read().decode()


# --- finding 1: backups of a running SQLite database ---------------------------------------------------------

def test_a_copy_of_a_running_databases_main_file_is_said_at_start_and_the_readme_backups_hold_the_fits(
        tmp_path, sweep_rows):
    live_dir, copy_dir = tmp_path / "live", tmp_path / "copy"
    live_dir.mkdir()
    copy_dir.mkdir()
    live_db = live_dir / "abcscale.db"
    live = Server(f"sqlite:///{live_db}")
    try:
        r = httpx.post(f"{live.url}/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT, "name": "kept"}, timeout=60)
        assert r.status_code == 201, r.text
        assert (live_dir / "abcscale.db-wal").stat().st_size > 0  # the fit is in the WAL, not yet in the main file
        shutil.copy(live_db, copy_dir / "abcscale.db")  # the review's "backup"
        # the README's backups, taken while the service runs
        with contextlib.closing(sqlite3.connect(live_db)) as src, \
                contextlib.closing(sqlite3.connect(tmp_path / "python-backup.db")) as dst:
            src.backup(dst)
        if shutil.which("sqlite3"):
            subprocess.run(["sqlite3", str(live_db), f".backup '{tmp_path / 'cli-backup.db'}'"], check=True,
                           timeout=60)
    finally:
        live.stop()
    assert "WARNING" not in _stderr(live)  # a new database is made without a word
    with contextlib.closing(sqlite3.connect(copy_dir / "abcscale.db")) as conn:  # what the review found
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone() == (0,)
    copied = Server(f"sqlite:///{copy_dir / 'abcscale.db'}")
    try:
        assert _count(copied.url) == 0
    finally:
        copied.stop()
    said = " ".join(_stderr(copied).split())
    assert "WARNING" in said, said
    assert str(copy_dir / "abcscale.db") in said and "-wal" in said and "copy" in said and ".backup" in said, said
    again = Server(f"sqlite:///{copy_dir / 'abcscale.db'}")  # now the service's own database: no warning
    again.stop()
    assert "WARNING" not in _stderr(again)
    # sqlite3's .backup holds every row of every table that Python's holds, whose server start below serves them
    # (a server start on each, as before session 79, read the same rows twice: 1.2 CPU-s a start)
    if (tmp_path / "cli-backup.db").exists():
        assert _rows(tmp_path / "cli-backup.db") == _rows(tmp_path / "python-backup.db")
    restored = Server(f"sqlite:///{tmp_path / 'python-backup.db'}")
    try:
        fits = httpx.get(f"{restored.url}/v1/fits", timeout=10).json()
        assert fits["count"] == 1 and fits["data"][0]["name"] == "kept"
        fit_id = fits["data"][0]["id"]
        assert httpx.get(f"{restored.url}/v1/fits/{fit_id}/rows.csv", timeout=10).status_code == 200
    finally:
        restored.stop()
    assert "WARNING" not in _stderr(restored)


def _rows(db: Path) -> dict[str, list[str]]:
    """Each table of the SQLite file ``db`` (its schema first) and its rows, as text in a fixed order."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        tables = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name").fetchall()
        assert tables, db
        return {name: [sql, *sorted(map(repr, conn.execute(f'SELECT * FROM "{name}"')))] for name, sql in tables}


def test_a_copy_beside_a_wal_file_is_said_too(tmp_path):
    """The main file empty (size 0, as `touch` makes one) beside a -wal file: the WAL is another database's (or
    the copy's pair went missing), and SQLite drops it; tables made there are said as well."""
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "abcscale.db").touch()
    (folder / "abcscale.db-wal").write_bytes(b"\0" * 64)
    server = Server(f"sqlite:///{folder / 'abcscale.db'}")
    server.stop()
    said = " ".join(_stderr(server).split())
    assert "WARNING" in said and "-wal" in said, said


def test_a_new_empty_file_is_no_copy(tmp_path):
    """`touch abcscale.db` before the first start: a size of 0 and no -wal is a new database, said as before."""
    (tmp_path / "abcscale.db").touch()
    server = Server(f"sqlite:///{tmp_path / 'abcscale.db'}")
    server.stop()
    assert "WARNING" not in _stderr(server)


# --- finding 3: the service's tokens --------------------------------------------------------------------------

def test_tokens_with_surrounding_whitespace_are_stripped_at_start(tmp_path, sweep_rows):
    server = Server(f"sqlite:///{tmp_path / 'svc.db'}",
                    env={"ABCSCALE_API_TOKEN": "s3cret\n", "ABCSCALE_READ_TOKEN": " r3ad\r\n"})
    try:
        r = httpx.post(f"{server.url}/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT},
                       headers={"Authorization": "Bearer s3cret"}, timeout=60)
        assert r.status_code == 201, r.text
        r = httpx.get(f"{server.url}/v1/fits", headers={"Authorization": "Bearer r3ad"}, timeout=10)
        assert r.status_code == 200 and r.json()["count"] == 1, r.text
    finally:
        server.stop()
    assert Settings(api_token="w\n").api_token.get_secret_value() == "w"


def _refused_start(tmp_path: Path, env: dict[str, str], db: str | None = None) -> subprocess.CompletedProcess:
    """``abcscale serve --db DB`` with ``env``: it must refuse to start (a server that starts is stopped, and
    fails)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("ABCSCALE_")}
    proc = subprocess.Popen([sys.executable, "-m", "abcscale", "serve", "--port", str(free_port()), "--db",
                             db or f"sqlite:///{tmp_path / 'svc.db'}"], cwd=ROOT, env={**base, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the server started: {out[-500:]} {err[-500:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize(("variable", "token"), [  # each kind once, each variable twice (a server start each)
    ("ABCSCALE_API_TOKEN", "s3c\x01ret-SECRET"), ("ABCSCALE_READ_TOKEN", "s3c\nret-SECRET"),
    ("ABCSCALE_API_TOKEN", "s3cret-SECRET\x7f"), ("ABCSCALE_READ_TOKEN", "s3cret-SECRET-é")])
def test_a_token_with_a_control_character_or_non_ascii_inside_refuses_the_start(tmp_path, variable, token):
    res = _refused_start(tmp_path, {"ABCSCALE_API_TOKEN": "w-token", variable: token})
    assert res.returncode == 2, res
    assert res.stderr.startswith(f"error: {variable}: "), res.stderr
    assert SECRET not in res.stderr + res.stdout
    assert not (tmp_path / "svc.db").exists()  # refused before the database is made


# --- finding 4: the report's two laws -------------------------------------------------------------------------

def _text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", fragment)).split())


def _law_line(section: str, kind: str) -> tuple[str, dict[str, str]] | None:
    m = re.search(rf'<p class="law"([^>]*data-law="{kind}"[^>]*)>(.*?)</p>', section, re.S)
    if m is None:
        return None
    return _text(m.group(2)), dict(re.findall(r'data-([\w-]+)="([^"]*)"', m.group(1)))


@pytest.fixture
def tour_fit(client) -> dict:
    r = client.post("/v1/fits", files={"file": ("tour.parquet", TOUR.read_bytes(), "application/octet-stream")},
                    data={"loss_col": "final_loss", "n_boot": str(N_BOOT)})
    assert r.status_code == 201, r.text
    return r.json()


def test_the_report_labels_the_free_fit_and_shows_the_law_its_predictions_use(client, tour_fit):
    groups = tour_fit["result"]["groups"]
    g, law = groups[0], groups[0]["law"]
    # the review's case: theory's prior moves the prediction's law far from the free fit's
    assert law["method"] == "theory_prior" and abs(law["exponent"] - g["exponent"]["estimate"]) > 0.1
    page = client.get(f"/fits/{tour_fit['id']}?group=0&width=4096")
    assert page.status_code == 200
    section = page.text[page.text.index('id="group-0"'):page.text.index('id="group-1"')]
    free = _law_line(section, "free")
    assert free is not None and free[0].startswith("Free fit of the widths: LR*(w) = "), free
    used = _law_line(section, "predictions")
    assert used is not None, section[:2000]
    words, data = used
    assert words.startswith("Predictions on this page use: LR*(w) = ") and "theory" in words, words
    assert float(data["exponent"]) == law["exponent"]
    assert float(data["constant"]) == pytest.approx(2 ** law["log2_constant"], rel=1e-12)
    assert f"{law['exponent']:+.3f}" in words and f"{2 ** law['log2_constant']:.3g}" in words
    # the prediction box's LR is that law's, not the headline's
    lr = float(re.search(r'id="prediction-0".*?data-field="lr" data-value="([^"]+)"', section, re.S).group(1))
    assert lr == pytest.approx(2 ** law["log2_constant"] * (4096 / law["base_width"]) ** law["exponent"], rel=1e-6)
    # a group whose predictions use the free fit itself says so, with no second law
    free_group = next(i for i, x in enumerate(groups) if x["law"] and x["law"]["method"] == "free")
    page = client.get(f"/fits/{tour_fit['id']}").text
    start = page.index(f'id="group-{free_group}"')
    section = page[start:page.find('<section class="group"', start + 1) if free_group + 1 < len(groups) else None]
    assert _law_line(section, "predictions") is None
    free = _law_line(section, "free")
    assert free is not None and "the law predictions on this page use" in free[0], free


# --- finding 5 and 7c: no request leaves the service; a favicon --------------------------------------------

def test_redoc_loads_its_scripts_from_this_service_and_they_name_no_cdn(client):
    page = client.get("/redoc")
    assert page.status_code == 200
    scripts = re.findall(r'<script src="([^"]+)"', page.text)
    assert scripts and all(s.startswith("/") for s in scripts), scripts
    for src in scripts:
        body = client.get(src)
        assert body.status_code == 200, src
        assert "cdn.redoc.ly" not in body.text, src
        assert "Redoc" in body.text  # the real bundle, only its logo's address replaced


def test_every_page_has_a_favicon(client, stored_fit):
    for path in ("/", "/fits", f"/fits/{stored_fit['id']}", "/no-such-page"):
        page = client.get(path).text
        icon = re.search(r'<link rel="icon"[^>]*href="([^"]+)"', page)
        assert icon is not None, path
        r = client.get(icon.group(1))
        assert r.status_code == 200 and r.headers["content-type"].startswith("image/"), path
    r = client.get("/favicon.ico")  # what a browser asks for on its own (the JSON routes, /healthz)
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/")


def test_the_favicon_is_open_with_closed_reads(tmp_path):
    from fastapi.testclient import TestClient

    from abcscale.service.app import create_app

    with TestClient(create_app(Settings(data_dir=tmp_path, api_token=TOKEN, protect_reads=True))) as c:
        assert c.get("/favicon.ico").status_code == 200
        assert c.get("/fits").status_code == 401


# --- finding 7: postgres:// and form covariates as JSON ------------------------------------------------------

@pytest.mark.parametrize(("given", "used"), [
    ("postgres://u:p@db.example:5432/abc", "postgresql+psycopg://u:***@db.example:5432/abc"),
    ("postgresql://u@db.example/abc?sslmode=require", "postgresql+psycopg://u@db.example/abc?sslmode=require"),
    ("POSTGRES://u@h/abc", "postgresql+psycopg://u@h/abc"),
    ("postgresql+psycopg://u@h/abc", "postgresql+psycopg://u@h/abc"),
    ("postgresql+psycopg2://u@h/abc", "postgresql+psycopg2://u@h/abc"),  # a driver named: kept
])
def test_a_postgres_url_without_a_driver_uses_psycopg(given, used):
    from sqlalchemy.engine import make_url

    resolved = Settings(database_url=given).resolved_database_url
    assert make_url(resolved).render_as_string(hide_password=True) == used


def test_serve_on_a_postgres_url_says_it_cannot_connect_not_that_no_plugin_loads(tmp_path):
    port = free_port()  # nothing listens there
    res = _refused_start(tmp_path, {}, db=f"postgres://u:pw-SECRET@127.0.0.1:{port}/abc")
    assert res.returncode == 2, res
    assert "plugin" not in res.stderr and "cannot open" in res.stderr, res.stderr
    assert SECRET not in res.stderr


def test_a_real_server_on_a_postgres_url(sweep_rows):
    with fresh_database() as url:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        given = parsed.set(drivername="postgres").render_as_string(hide_password=False)
        assert given.startswith("postgres://")
        server = Server(given)
        try:
            r = httpx.post(f"{server.url}/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT}, timeout=60)
            assert r.status_code == 201, r.text
            assert _count(server.url) == 1
        finally:
            server.stop()


@pytest.fixture(scope="module")
def covariate_csv(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("cov") / "t.csv"
    covariate_sweep(seeds=1, size_unit=1e6).to_csv(path, index=False)
    return path.read_bytes()


@pytest.mark.parametrize("covariates", ['["D", "batch_size"]', ' ["D","batch_size"] '])
def test_a_form_takes_covariates_as_a_json_list(client, covariate_csv, covariates):
    r = client.post("/v1/fits", files={"file": ("t.csv", covariate_csv, "text/csv")},
                    data={"n_boot": str(N_BOOT), "size_col": "N", "covariates": covariates,
                          "target_width": "1000000000", "at": '{"D": 1e10}'})
    assert r.status_code == 201, r.text
    (law,) = r.json()["result"]["joint"]
    assert law["names"] == ["N", "D", "batch_size"] and law["prediction"]["at"]["D"] == 1e10


@pytest.mark.parametrize(("field", "value", "said"), [
    ("covariates", '["D", 3]', "a JSON list of column names"),
    ("covariates", '["D", ', "a JSON list of column names"),
    ("at", '{"D": ', "a JSON object"),
])
def test_a_form_field_that_is_broken_json_is_422_at_the_field(client, covariate_csv, field, value, said):
    data = {"n_boot": str(N_BOOT), "size_col": "N", "covariates": "D,batch_size", "target_width": "1000000000",
            field: value}
    r = client.post("/v1/fits", files={"file": ("t.csv", covariate_csv, "text/csv")}, data=data)
    assert r.status_code == 422, r.text
    (err,) = r.json()["detail"]
    assert err["loc"] == ["body", field] and said in err["msg"], err


def test_the_page_upload_takes_covariates_as_a_json_list(client, covariate_csv):
    r = client.post("/fits", files={"file": ("t.csv", covariate_csv, "text/csv")},
                    data={"n_boot": str(N_BOOT), "size_col": "N", "covariates": '["D","batch_size"]'},
                    follow_redirects=False)
    assert r.status_code == 303, _text(r.text)[:1500]


# --- the same in a real browser ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser_server(tmp_path_factory, plot_workers) -> Iterator[ThreadServer]:
    _browser_or_skip()
    s = ThreadServer(Settings(data_dir=tmp_path_factory.mktemp("pages67"), api_token=TOKEN, plot_wait_s=0))
    plot_workers.attach(s.app)  # conftest.SharedPlotWorkers
    yield s
    s.stop()


@pytest.fixture(scope="module")
def logging_browser() -> Iterator:
    """Chromium recording its console and its network requests."""
    driver = chromium(page_load_timeout=60, logging=True)
    yield driver
    driver.quit()


QUIET_S, LATE_S = 0.5, 5.0


def _visit(driver, url: str, ready) -> tuple[list[str], list[str]]:
    """Load ``url``, wait for ``ready``, and a moment for late requests: (console errors, requests elsewhere)."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("browser")
    driver.get_log("performance")
    driver.get(url)
    WebDriverWait(driver, 30, poll_frequency=0.1).until(ready)
    # late requests (a favicon, a font, a script's fetch): until the page is complete and its network has been quiet
    # for QUIET_S (at most LATE_S), not a fixed 1.5 s a page (session 69: 7.5 s of one test worker's wall time)
    entries, quiet_since, deadline = [], time.monotonic(), time.monotonic() + LATE_S
    while time.monotonic() < deadline:
        new = driver.get_log("performance")
        entries += new
        if any(json.loads(e["message"])["message"]["method"].startswith("Network.") for e in new):
            quiet_since = time.monotonic()
        if time.monotonic() - quiet_since >= QUIET_S \
                and driver.execute_script("return document.readyState") == "complete":
            break
        time.sleep(0.05)
    base = url.split("/", 3)[:3]
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    elsewhere = set()
    for entry in entries:
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            asked = message["params"]["request"]["url"]
            if not asked.startswith(("/".join(base), "data:", "blob:")):
                elsewhere.add(asked)
    return errors, sorted(elsewhere)


def test_in_a_browser_no_page_asks_another_host_or_logs_an_error(browser_server, logging_browser):
    from selenium.webdriver.common.by import By

    url = browser_server.url
    r = httpx.post(f"{url}/v1/fits", headers={"Authorization": f"Bearer {TOKEN}"},
                   files={"file": ("tour.parquet", TOUR.read_bytes(), "application/octet-stream")},
                   data={"loss_col": "final_loss", "n_boot": str(N_BOOT)}, timeout=120)
    assert r.status_code == 201, r.text
    fit_id, law = r.json()["id"], r.json()["result"]["groups"][0]["law"]

    def has(css):
        return lambda d: d.find_elements(By.CSS_SELECTOR, css)

    for path, ready in (("/", has("#layers")), ("/fits", has("#upload")), (f"/fits/{fit_id}?group=0&width=4096",
                        has("#prediction-0")), ("/docs", has(".swagger-ui .opblock")),
                        ("/redoc", lambda d: "/v1/fits" in d.find_element(By.TAG_NAME, "body").text)):
        errors, elsewhere = _visit(logging_browser, url + path, ready)
        assert elsewhere == [], (path, elsewhere)
        assert errors == [], (path, errors)
        if path.startswith("/fits/"):
            group = logging_browser.find_element(By.CSS_SELECTOR, "#group-0")
            free = group.find_element(By.CSS_SELECTOR, 'p.law[data-law="free"]').text
            used = group.find_element(By.CSS_SELECTOR, 'p.law[data-law="predictions"]').text
            assert free.startswith("Free fit of the widths: LR*(w)"), free
            assert used.startswith("Predictions on this page use: LR*(w)") and f"{law['exponent']:+.3f}" in used, used
            box = group.find_element(By.CSS_SELECTOR, '#prediction-0 [data-field="lr"]')
            assert float(box.get_attribute("data-value")) == pytest.approx(
                2 ** law["log2_constant"] * (4096 / law["base_width"]) ** law["exponent"], rel=1e-6)
