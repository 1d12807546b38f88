"""Plots off the request path: drawn by a worker process into a cache folder on disk, never into the database;
a first request waits on its own render (or answers 202 with Retry-After); a table over the caps is not decoded;
a deleted fit's plots go with it."""

from __future__ import annotations

import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from abcscale.fitting import fit_table
from abcscale.schemas.fit import ColumnMapping
from abcscale.service import crud
from abcscale.service.app import create_app
from abcscale.service.config import Settings
from abcscale.service.plots import PLOT_NAMES
from tests.service.conftest import N_BOOT, PLOT_WAIT_S

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def fit(sweep):
    return fit_table(sweep, ColumnMapping(), n_boot=N_BOOT)


@pytest.fixture(scope="module")
def waiting(tmp_path_factory, plot_workers):
    """One app (plot_wait_s=PLOT_WAIT_S, its own cache folder) for the tests that only read plots of fits of their
    own, on the test process's shared plot workers (conftest.SharedPlotWorkers: a fresh worker's first render is
    about 2.5 s of CPU, matplotlib's and the fitter's imports)."""
    root = tmp_path_factory.mktemp("waiting")
    settings = Settings(data_dir=root / "data", plot_dir=root / "cache", plot_wait_s=PLOT_WAIT_S)
    with TestClient(create_app(settings)) as c:
        plot_workers.attach(c.app)
        yield settings, c


@pytest.fixture(scope="module")
def no_wait(tmp_path_factory, plot_workers):
    """One app with plot_wait_s=0 for the tests of the 202 answers: a first GET of a fit of their own answers 202
    at once however warm the worker is (its render has just been submitted), so they share the warm workers."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("no-wait"), plot_wait_s=0)
    with TestClient(create_app(settings)) as c:
        plot_workers.attach(c.app)
        yield settings, c


def _stored(settings: Settings, fit, sweep) -> str:
    """A fit stored directly (as by an older release, or a POST before a cap was lowered): no render started."""
    with crud.open_session(settings) as session:
        return crud.create_fit(session, fit, sweep)


def test_a_plot_get_writes_nothing_to_the_database(waiting, fit, sweep):
    settings, c = waiting
    fit_id = _stored(settings, fit, sweep)
    for name in PLOT_NAMES:
        r = c.get(f"/v1/fits/{fit_id}/plots/{name}.png")
        assert r.status_code == 200 and r.content.startswith(PNG), name
        assert (settings.plot_dir / fit_id / f"{name}.png").read_bytes() == r.content  # the configured folder
    with crud.open_session(settings) as session:
        assert all(crud.get_plot(session, fit_id=fit_id, name=n) is None for n in PLOT_NAMES)


def test_without_waiting_a_first_request_gets_202_then_the_plot(no_wait, fit, sweep):
    settings, c = no_wait
    fit_id = _stored(settings, fit, sweep)
    url = f"/v1/fits/{fit_id}/plots/lr_vs_width.png"
    first = c.get(url)
    assert first.status_code == 202 and int(first.headers["retry-after"]) >= 1, first.text
    deadline = time.monotonic() + 120
    while (r := c.get(url)).status_code == 202 and time.monotonic() < deadline:
        time.sleep(0.2)  # the render goes on in its worker meanwhile; these requests never start another
    assert r.status_code == 200 and r.content.startswith(PNG)


def test_a_table_over_the_caps_is_not_decoded_and_not_cached(waiting, fit, sweep, plot_workers):
    # stored before ABCSCALE_MAX_ROWS was lowered below its row count, as a decompression bomb from an older release
    uncapped, other = waiting  # a server of the same database and cache with the default caps
    settings = Settings(data_dir=uncapped.data_dir, plot_dir=uncapped.plot_dir, max_rows=len(sweep) - 1,
                        plot_wait_s=PLOT_WAIT_S)
    fit_id = _stored(settings, fit, sweep)
    with TestClient(create_app(settings)) as c:
        plot_workers.attach(c.app)  # the caps go to the worker with each render: a shared worker checks them too
        r = c.get(f"/v1/fits/{fit_id}/plots/loss_vs_lr.png")
        assert r.status_code == 404 and "ABCSCALE_MAX_ROWS" in r.json()["detail"], r.text
    assert not (settings.resolved_plot_dir / fit_id).exists()  # a raised cap may plot it later
    assert other.get(f"/v1/fits/{fit_id}/plots/loss_vs_lr.png").status_code == 200


def test_a_fit_with_nothing_to_draw_says_why_and_stays_cached(waiting, fit, sweep):
    settings, c = waiting
    other = sweep.assign(parameterization="sp")  # not the groups the fit was made from: the plots refuse it
    fit_id = _stored(settings, fit, other)
    r = c.get(f"/v1/fits/{fit_id}/plots/loss_vs_lr.png")
    assert r.status_code == 404 and "not the fit's" in r.json()["detail"], r.text
    assert c.get(f"/v1/fits/{fit_id}/plots/lr_vs_width.png").json() == r.json()
    assert (settings.resolved_plot_dir / fit_id / "unavailable.txt").exists()


def test_deleting_a_fit_deletes_its_plots(client, stored_fit, settings):
    assert client.get(stored_fit["plots"]["loss_vs_lr"]).status_code == 200
    folder = settings.resolved_plot_dir / stored_fit["id"]
    assert folder.is_dir()
    assert client.delete(f"/v1/fits/{stored_fit['id']}").status_code == 204
    assert not folder.exists()
    assert client.get(stored_fit["plots"]["loss_vs_lr"]).status_code == 404


def test_a_waiting_request_holds_no_database_connection(tmp_path, fit, sweep):
    # 24 requests waiting on renders would otherwise take every pooled connection from all other requests.
    # One plot worker of its own (one spawn, about 2.5 s of CPU, not two), not the shared ones: its start is
    # what keeps the four renders in flight for seconds, and they queue on it, so every request waits
    settings = Settings(data_dir=tmp_path, plot_wait_s=PLOT_WAIT_S, plot_workers=1)
    ids = [_stored(settings, fit, sweep) for _ in range(4)]
    with TestClient(create_app(settings)) as c:
        pool, plots = c.app.state.engine.pool, c.app.state.plots
        with ThreadPoolExecutor(4) as threads:
            gets = [threads.submit(c.get, f"/v1/fits/{i}/plots/loss_vs_lr.png") for i in ids]
            # sampled only while all four renders are in flight (a worker's start takes seconds): a request that
            # has handed its render over closes its session at once, so the pool empties within moments, never
            # waiting for the renders (a fixed sleep missed a slow machine's requests still reading their fits)
            held = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not all(g.done() for g in gets):
                if all(plots.pending(i) is not None for i in ids):
                    held.append(pool.checkedout())
                    if held[-5:] == [0] * 5:
                        break
                time.sleep(0.05)
            rendering = all(plots.pending(i) is not None for i in ids)
            assert all(g.result().status_code == 200 for g in gets)
    assert rendering and held[-5:] == [0] * 5, held


def test_a_browser_following_the_png_link_while_it_draws_gets_a_page_that_reloads(no_wait, fit, sweep):
    """The report's "Open the PNG" link answered JSON ({"detail": ...}) while the plot was drawn; a browser gets a
    page saying so that reloads itself, API clients the JSON 202 as before."""
    settings, c = no_wait
    fit_id = _stored(settings, fit, sweep)
    url = f"/v1/fits/{fit_id}/plots/lr_vs_width.png"
    browser = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"}
    page = c.get(url, headers=browser)
    assert page.status_code == 202 and page.headers["content-type"].startswith("text/html"), page.text
    assert '<meta http-equiv="refresh" content="2">' in page.text and "being drawn" in page.text
    assert int(page.headers["retry-after"]) >= 1
    api = c.get(url, headers={"accept": "application/json"})
    assert api.status_code in (200, 202)
    if api.status_code == 202:
        assert api.json() == {"detail": "the plot is being drawn; retry"}
    deadline = time.monotonic() + 120
    while (r := c.get(url, headers=browser)).status_code == 202 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert r.status_code == 200 and r.content.startswith(PNG)  # the reload finds the plot


def test_a_fit_deleted_while_its_plots_are_drawn_leaves_no_plots(tmp_path, fit, sweep):
    """A user review: DELETE during the render answered 204, then the render wrote the folder and the waiting
    request served the deleted fit's plot (200); the folder stayed on disk for good. Its own plot worker, not the
    shared ones: a cold worker's start keeps the render in flight while the delete comes."""
    settings = Settings(data_dir=tmp_path, plot_dir=tmp_path / "cache", plot_wait_s=0, api_token="w" * 16)
    fit_id = _stored(settings, fit, sweep)
    url = f"/v1/fits/{fit_id}/plots/lr_vs_width.png"
    with TestClient(create_app(settings)) as c:
        assert c.get(url).status_code == 202  # the render is in flight
        plots = c.app.state.plots  # type: ignore[attr-defined]
        future = plots.pending(fit_id)
        assert future is not None
        assert c.delete(f"/v1/fits/{fit_id}", headers={"Authorization": "Bearer " + "w" * 16}).status_code == 204
        future.result(timeout=120)
        deadline = time.monotonic() + 10
        while (tmp_path / "cache" / fit_id).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not (tmp_path / "cache" / fit_id).exists()
        assert c.get(url).status_code == 404
        assert plots.cached(fit_id, "lr_vs_width") is None
        assert plots.submit(fit_id, "{}", b"").result(timeout=5) is None  # no new render of a deleted fit
        time.sleep(0.3)
        assert not (tmp_path / "cache" / fit_id).exists()
    # another server process on the same cache (uvicorn --workers) knows it too: the mark is on disk
    from abcscale.service.plots import PlotRenderer

    (tmp_path / "cache" / fit_id).mkdir()
    (tmp_path / "cache" / fit_id / "lr_vs_width.png").write_bytes(PNG)  # as a render elsewhere would leave it
    assert PlotRenderer(settings).cached(fit_id, "lr_vs_width") is None


def test_a_render_that_ends_after_its_fits_delete_removes_what_it_drew(tmp_path, fit, sweep):
    """The worker's side of the mark: its folder renamed into place, it finds the fit deleted and removes it."""
    from abcscale.service.plots import deleted_marker, render

    folder = tmp_path / "cache" / "abc123"
    deleted_marker(folder.parent, folder.name).parent.mkdir(parents=True)
    deleted_marker(folder.parent, folder.name).touch()
    assert render(fit.model_dump_json(), crud._parquet(sweep), str(folder), 10**6, 10**8) is None
    assert not folder.exists() and not [p for p in folder.parent.iterdir() if p.name != ".deleted"]
    deleted_marker(folder.parent, folder.name).unlink()  # not deleted: the plots stay
    render(fit.model_dump_json(), crud._parquet(sweep), str(folder), 10**6, 10**8)
    assert (folder / "lr_vs_width.png").read_bytes().startswith(PNG)
