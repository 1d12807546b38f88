"""Session 47, a platform engineer's review: `check --fit`/`--fit-id` could not pick a fit's group that differs
by `depth` (or any column the fitter splits on besides the four the config names): exit 2 asking to name it in
the config, which has no key for it. `check --group depth=2` picks it, locally and from a running service, with
the same verdict."""

from __future__ import annotations

import json

import httpx
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from abcscale.cli import app
from abcscale.fitting import fit_table
from abcscale.fitting.predict import predict_group
from abcscale.fitting.synthetic import synthetic_sweep
from tests.usecases.test_check_service import shared_service

runner = CliRunner()
GROUP = {"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"}


@pytest.fixture(scope="module")
def table():
    # depth 2's optimum sits 2x below depth 1's: the two groups give different LRs
    return pd.concat([synthetic_sweep((64, 128, 256), exponent=-1.0, lr_base=lr, base_width=64, seeds=2,
                                      group={**GROUP, "depth": depth}, seed=depth)
                      for depth, lr in ((1, 4e-3), (2, 2e-3))], ignore_index=True)


def _config(tmp_path, lr):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"parameterization": "mup", "optimizer": "adam", "lr_mode": "global",
                                    "width": 1024, "lr": lr}))
    return str(path)


def test_group_picks_a_depth_locally_and_from_a_service(tmp_path, table, request):
    fit = fit_table(table, n_boot=100)
    assert len(fit.groups) == 2
    (tmp_path / "fit.json").write_text(fit.model_dump_json())
    lr2 = next(g for g in fit.groups if g.group["depth"] == 2)
    at = predict_group(lr2, 1024).lr  # depth 2's predicted LR at 1024, which check compares with
    cfg = _config(tmp_path, at)
    both = runner.invoke(app, ["check", cfg, "--fit", str(tmp_path / "fit.json")])
    assert both.exit_code == 2 and "--group key=value" in both.output
    local = runner.invoke(app, ["check", cfg, "--fit", str(tmp_path / "fit.json"), "--group", "depth=2", "--json"])
    assert local.exit_code == 0, local.output
    other = runner.invoke(app, ["check", cfg, "--fit", str(tmp_path / "fit.json"), "--group", "depth=1", "--json"])
    assert other.exit_code == 0  # 2x off is inside the default 2x tolerance ...
    ratios = [json.loads(r.stdout)["checks"][0]["ratio"] for r in (local, other)]
    assert ratios[0] == pytest.approx(1.0, rel=0.01) and ratios[1] == pytest.approx(0.5, rel=0.15)  # ... but read
    assert runner.invoke(app, ["check", cfg, "--group", "depth=2"]).exit_code == 2  # theory has no groups
    url = shared_service(request)
    rows = json.loads(table.to_json(orient="records"))
    posted = httpx.post(f"{url}/v1/fits", json={"rows": rows, "n_boot": 100}, timeout=120)
    assert posted.status_code == 201, posted.text
    fit_id = posted.json()["id"]
    remote = runner.invoke(app, ["check", cfg, "--service", url, "--fit-id", fit_id, "--group", "depth=2", "--json"])
    assert remote.exit_code == 0, remote.output
    # the rows went as JSON (pandas writes 10 significant digits): the same answer within that
    assert [c["recommended"] for c in json.loads(remote.stdout)["checks"]] == pytest.approx(
        [c["recommended"] for c in json.loads(local.stdout)["checks"]], rel=1e-6)
    vague = runner.invoke(app, ["check", cfg, "--service", url, "--fit-id", fit_id])
    assert vague.exit_code == 2 and "body.lr_mode" not in vague.output and "--group" in vague.output


@pytest.mark.parametrize(("extra", "form"), [({}, "abc"), ({"form": "multiplier_free"}, "multiplier_free"),
                                             ({"mup": {"base_width": 256, "lr": 3e-3}}, "mup")])
def test_check_json_form_is_the_forms_name(tmp_path, extra, form):
    """`form` was a sentence ("abc (the recommendation's multipliers)"): a CI script could not compare it."""
    cfg = {"parameterization": "mup", "optimizer": "adam", "width": 1024, "base_width": 256, "beta": 3e-3,
           "lr": 3e-3 / 4} | extra
    if "mup" in cfg:
        cfg = {k: v for k, v in cfg.items() if k not in ("base_width", "beta", "lr")}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = runner.invoke(app, ["check", str(path), "--json"])
    assert res.exit_code in (0, 1), res.output
    report = json.loads(res.stdout)
    assert report["form"] == form and report["form_detail"].startswith(form) and report["form_detail"] != form
