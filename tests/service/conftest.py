from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_all
from pathlib import Path
from threading import Lock
from typing import Any

import pandas as pd
import pytest
from fastapi import FastAPI

with warnings.catch_warnings():
    # Starlette suggests httpx2 for its TestClient; httpx is what this project ships with.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.service.app import create_app
from abcscale.service.config import Settings
from abcscale.service.db import make_engine
from abcscale.service.plots import PlotRenderer

TOKEN = "s3cret-token-for-tests"
PLOT_WAIT_S = 120  # see the settings fixture
N_BOOT = 100  # the fitter's minimum is 20; 100 keeps each fit well under a second


class _PoolView:
    """One app's share of the shared plot workers, standing in for the pool its PlotRenderer would start: its
    ``shutdown`` (the app's close) cancels and waits for this app's renders only, as the app's own pool would."""

    def __init__(self, shared: SharedPlotWorkers) -> None:
        self._shared, self._futures, self._lock, self._closed = shared, set[Future](), Lock(), False

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            future = self._shared.submit(fn, *args, **kwargs)
            self._futures.add(future)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future) -> None:
        with self._lock:
            self._futures.discard(future)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed, futures = True, list(self._futures)
        if cancel_futures:
            for future in futures:
                future.cancel()
        if wait:
            wait_all(futures)


class SharedPlotWorkers:
    """The plot worker processes of this test process, shared by the apps attached to them.

    Each app's PlotRenderer spawns its own workers on its first render, and a fresh worker's first render imports
    the fitter and matplotlib: about 2.5 s of CPU an app (session 72, 2026-12-07), for a dozen apps of tests that
    only need a plot drawn. Those attach here instead; the tests about the workers themselves (a cold worker's
    render in flight, a pool of one, Ctrl-C, kill -9, the load test) keep each app's own.

    The pool is the one PlotRenderer starts (spawned, its initializer, its task limit). A broken one is replaced,
    as an app does; so is one given as many renders as a worker may run (max_tasks_per_child) less one, so that no
    worker ever exits for its limit: Python 3.11's pool replaces such a worker only when its count of idle workers,
    which can be stale, says none is idle, and queued renders can then wait for ever. An app's own pool, gone with
    the app, never lives that long."""

    def __init__(self, root: Path) -> None:
        self._root, self._lock = root, Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._tasks = self._limit = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future:
        with self._lock:
            pool = self._pool
            if pool is None or getattr(pool, "_broken", False) or self._tasks >= self._limit:
                if pool is not None:
                    pool.shutdown(wait=False)  # its renders in flight still finish
                pool = self._pool = PlotRenderer(Settings(data_dir=self._root))._started()
                self._tasks, self._limit = 0, (getattr(pool, "_max_tasks_per_child", None) or 10**9) - 1
            self._tasks += 1
            return pool.submit(fn, *args, **kwargs)

    def attach(self, app: FastAPI) -> None:
        plots = app.state.plots
        assert getattr(plots, "_pool", "missing") is None, "PlotRenderer's pool is no longer its _pool, or started"
        plots._pool = _PoolView(self)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="session")
def plot_workers(tmp_path_factory) -> Iterator[SharedPlotWorkers]:
    shared = SharedPlotWorkers(tmp_path_factory.mktemp("plot-workers"))
    yield shared
    shared.close()


@pytest.fixture
def settings(tmp_path) -> Settings:
    # plot_wait_s: a first plot GET waits for its render (a fresh worker process: seconds, more on a slow CI
    # machine) rather than answering 202 after the default 10 s
    return Settings(data_dir=tmp_path, database_url=None, api_token=None, plot_wait_s=PLOT_WAIT_S)


@pytest.fixture(scope="session")
def empty_database(tmp_path_factory) -> Path:
    """A database file at the newest schema with no fit, made once per test process: the clients below start on a
    copy of it. Making the tables (alembic's upgrade from nothing) is two thirds of an app's start, about 17 ms of
    CPU of the 26 (session 72, 2026-12-07), for some 450 clients; tests/service/test_migrations.py and the apps the
    tests make themselves still start on no file at all."""
    folder = tmp_path_factory.mktemp("empty-database")
    make_engine(Settings(data_dir=folder, database_url=None)).dispose()
    assert sorted(p.name for p in folder.iterdir()) == ["abcscale.db"]  # no -wal left: the file is whole
    return folder / "abcscale.db"


def _on_a_copy(settings: Settings, empty_database: Path) -> Settings:
    """``settings``, its data folder's database (when it names no other) a copy of the empty one, if not there."""
    if settings.database_url is None and not (target := settings.data_dir / "abcscale.db").exists():
        assert settings.resolved_database_url == f"sqlite:///{target}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(empty_database, target)
    return settings


@pytest.fixture
def client(settings, plot_workers, empty_database):
    with TestClient(create_app(_on_a_copy(settings, empty_database))) as c:
        plot_workers.attach(c.app)
        yield c


@pytest.fixture
def locked(tmp_path, plot_workers, empty_database):
    """A client of an app that needs the bearer token for writes."""
    with TestClient(create_app(_on_a_copy(Settings(data_dir=tmp_path, api_token=TOKEN), empty_database))) as c:
        plot_workers.attach(c.app)
        yield c


@pytest.fixture(scope="session")
def sweep() -> pd.DataFrame:
    """A known-truth sweep: global-LR muP + Adam, LR* = 1e-2 (w/64)^-1 (theory's exponent)."""
    return synthetic_sweep(widths=(64, 128, 256, 512), seeds=2, step=0.5, half_range=2.0,
                           group={"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"})


@pytest.fixture(scope="session")
def sweep_rows(sweep) -> list[dict]:
    return json.loads(sweep.to_json(orient="records"))


@pytest.fixture(scope="module")
def reader(tmp_path_factory, plot_workers, empty_database) -> Iterator[TestClient]:
    """One client for a module's tests that only read (GETs, HEADs and POST /v1/recommend): its stored fit
    (``read_fit``) and what needs no fit. None of them writes, so each sees what a client of its own would; a fit
    is 0.1-0.2 s of CPU, made once a module instead of once a test (session 72, 2026-12-07)."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("reader"), database_url=None, api_token=None,
                        plot_wait_s=PLOT_WAIT_S)  # as the settings fixture
    with TestClient(create_app(_on_a_copy(settings, empty_database))) as c:
        plot_workers.attach(c.app)
        yield c


@pytest.fixture(scope="module")
def read_fit(reader, sweep_rows) -> dict:
    """``stored_fit`` of the module's ``reader``, for the tests that only read it."""
    r = reader.post("/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT, "name": "synthetic"})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def stored_fit(client, sweep_rows) -> dict:
    r = client.post("/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT, "name": "synthetic"})
    assert r.status_code == 201, r.text
    return r.json()


def fit_count(client) -> int:
    return client.get("/v1/fits").json()["count"]


@pytest.fixture(scope="session")
def pages_server(tmp_path_factory, plot_workers):
    """tests/service/test_pages_browser.py's app under uvicorn (its ``server``), shared by the browser tests of
    that file and of the files that import its ``server``: one a test process, not one a module."""
    from tests.service import test_pages_browser

    yield from test_pages_browser.serve_pages(tmp_path_factory, plot_workers)


@pytest.fixture(scope="session")
def pages_browser():
    """tests/service/test_pages_browser.py's headless Chromium (its ``browser``), shared as ``pages_server``."""
    from tests.service import test_pages_browser

    yield from test_pages_browser.pages_chromium()
