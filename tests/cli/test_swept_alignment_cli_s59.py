"""Session 59: the CLI names where a refused alignment came from: `recommend --fit --group alignment=none` names
--group (it said -a, a flag not given), and `check CONFIG --fit` the config (it said --fit)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from abcscale.cli import app
from tests.fitting.test_swept_alignment_s59 import _c, _table

runner = CliRunner()


def _abcscale(*args: str) -> SimpleNamespace:
    """The command in this process (a process each cost 1-2 CPU-s of imports): its exit status and stderr, as a
    subprocess's returncode and stderr."""
    res = runner.invoke(app, list(args))
    return SimpleNamespace(returncode=res.exit_code, stderr=res.stderr)


@pytest.fixture(scope="module")
def fit(tmp_path_factory) -> str:
    """One fit of a table swept with full alignment's exponents, for the tests that refuse an alignment against it
    (read, never written). 30 bootstrap resamples: the refusals read the fitted exponents, not their intervals."""
    tmp = tmp_path_factory.mktemp("fit")
    table = tmp / "t.csv"
    _table(_c("full"), seeds=1).to_csv(table, index=False)
    assert _abcscale("fit", str(table), "--out", str(tmp / "f"), "-q", "--n-boot", "30").returncode == 0
    return str(tmp / "f" / "fit.json")


def test_the_refusal_names_group_and_the_config(tmp_path, fit):
    r = _abcscale("recommend", "--fit", fit, "--width", "1024", "--group", "alignment=none")
    assert r.returncode == 2 and r.stderr.startswith("error: --group alignment: none gives c"), r.stderr
    r = _abcscale("recommend", "--fit", fit, "--width", "1024", "-a", "none")
    assert r.returncode == 2 and r.stderr.startswith("error: -a: none gives c"), r.stderr
    config = tmp_path / "run.yaml"
    config.write_text("parameterization: mup\noptimizer: adam\nalignment: none\nwidth: 1024\nbase_width: 64\n"
                      "beta: 0.01\nlr:\n  hidden: 0.0025\n")
    r = _abcscale("check", str(config), "--fit", fit)
    assert r.returncode == 2 and f"{config}: alignment: none gives c" in r.stderr.replace("\n", ""), r.stderr


def test_check_names_group_where_it_gave_the_alignment(tmp_path, fit):
    config = tmp_path / "run.yaml"  # no alignment in it: --group gave none
    config.write_text("parameterization: mup\noptimizer: adam\nwidth: 1024\nbase_width: 64\nbeta: 0.01\n"
                      "lr:\n  hidden: 0.0025\n")
    r = _abcscale("check", str(config), "--fit", fit, "--group", "alignment=none")
    assert r.returncode == 2 and r.stderr.startswith("error: --group alignment: none gives c"), r.stderr


def test_check_service_names_group_too(tmp_path, request):
    import json

    import httpx

    from tests.usecases.test_check_service import shared_service

    config = tmp_path / "run.yaml"
    config.write_text("parameterization: mup\noptimizer: adam\nwidth: 1024\nbase_width: 64\nbeta: 0.01\n"
                      "lr:\n  hidden: 0.0025\n")
    url = shared_service(request)
    rows = json.loads(_table(_c("full"), seeds=1).to_json(orient="records"))
    posted = httpx.post(f"{url}/v1/fits", json={"rows": rows, "n_boot": 30}, timeout=120)
    assert posted.status_code == 201, posted.text
    r = _abcscale("check", str(config), "--service", url, "--fit-id", posted.json()["id"], "--group",
                  "alignment=none")
    assert r.returncode == 2 and "422: --group alignment: none gives c" in r.stderr.replace("\n", ""), r.stderr
