from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest

with warnings.catch_warnings():
    # Starlette suggests httpx2 for its TestClient; httpx is what this project ships with.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.service.app import create_app
from abcscale.service.config import Settings

TOKEN = "s3cret-token-for-tests"
PLOT_WAIT_S = 120  # see the settings fixture
N_BOOT = 100  # the fitter's minimum is 20; 100 keeps each fit well under a second


@pytest.fixture
def settings(tmp_path) -> Settings:
    # plot_wait_s: a first plot GET waits for its render (a fresh worker process: seconds, more on a slow CI
    # machine) rather than answering 202 after the default 10 s
    return Settings(data_dir=tmp_path, database_url=None, api_token=None, plot_wait_s=PLOT_WAIT_S)


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def locked(tmp_path):
    """A client of an app that needs the bearer token for writes."""
    with TestClient(create_app(Settings(data_dir=tmp_path, api_token=TOKEN))) as c:
        yield c


@pytest.fixture(scope="session")
def sweep() -> pd.DataFrame:
    """A known-truth sweep: global-LR muP + Adam, LR* = 1e-2 (w/64)^-1 (theory's exponent)."""
    return synthetic_sweep(widths=(64, 128, 256, 512), seeds=2, step=0.5, half_range=2.0,
                           group={"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"})


@pytest.fixture(scope="session")
def sweep_rows(sweep) -> list[dict]:
    return json.loads(sweep.to_json(orient="records"))


@pytest.fixture
def stored_fit(client, sweep_rows) -> dict:
    r = client.post("/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT, "name": "synthetic"})
    assert r.status_code == 201, r.text
    return r.json()


def fit_count(client) -> int:
    return client.get("/v1/fits").json()["count"]
