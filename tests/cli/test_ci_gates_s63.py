"""A CI team's review of the four gates (session 63): a group with no law across widths was exit 1 from `fit
--strict` and `predict --strict` but exit 2 (bad input) from `recommend --strict` and `check --strict`, and
`predict --strict --json` left stdout empty; `check --strict` said its unreliable prediction on stdout only."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from abcscale.cli import app
from abcscale.fitting.synthetic import synthetic_sweep

WIDTH = 8192
SETUP = {"optimizer": "adam", "lr_mode": "per_layer"}


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    """A fit whose sp group was swept at one width (no law), and a 2-width fit (unreliable past its widths)."""
    d = tmp_path_factory.mktemp("gates")
    good = synthetic_sweep((64, 128, 256, 512), exponent=0.0, seeds=1, group={"parameterization": "mup", **SETUP})
    one = synthetic_sweep((64,), exponent=0.0, seeds=1, group={"parameterization": "sp", **SETUP})
    two = synthetic_sweep((64, 128), exponent=0.0, seeds=1, group={"parameterization": "mup", **SETUP})
    out = {}
    for name, table in (("mixed", pd.concat([good, one])), ("two", two)):
        (d / f"{name}.csv").write_text(table.to_csv(index=False))
        r = CliRunner().invoke(app, ["fit", str(d / f"{name}.csv"), "--out", str(d / name), "--n-boot", "50", "-q"])
        assert r.exit_code == 0, r.output
        out[name] = str(d / name / "fit.json")
    cfg = d / "run.yaml"
    cfg.write_text(f"parameterization: sp\noptimizer: adam\nlr_mode: per_layer\nwidth: {WIDTH}\n"
                   "lr: {embedding: 0.001, hidden: 0.001, readout: 0.001}\n")
    out["config"] = str(cfg)
    return out


def test_a_group_without_a_law_fails_every_strict_gate_with_exit_1_and_json(fits):
    sp = ["--group", "parameterization=sp"]
    runs = {"predict": ["predict", fits["mixed"], "--size", str(WIDTH), *sp],
            "recommend": ["recommend", "--fit", fits["mixed"], "--width", str(WIDTH), *sp],
            "check": ["check", fits["config"], "--fit", fits["mixed"], *sp]}
    for name, args in runs.items():
        r = CliRunner().invoke(app, [*args, "--strict", "--json"])
        assert r.exit_code == 1, (name, r.output)
        doc = json.loads(r.stdout)  # one JSON document (predict's was empty)
        assert doc["ok"] is False and doc["exit_code"] == 1, (name, doc)
        assert any("--strict: unreliable:" in e and "only one width (64)" in e for e in doc["errors"]), (name, doc)
        plain = CliRunner().invoke(app, args)  # without --strict: no answer to give, bad input (2)
        assert plain.exit_code == 2, (name, plain.output)


def test_check_strict_says_its_unreliable_prediction_on_stderr(fits):
    cfg = fits["config"].replace("run.yaml", "mup.yaml")
    with open(cfg, "w") as f:
        f.write(f"parameterization: mup\noptimizer: adam\nwidth: {WIDTH}\nlr: {{embedding: 0.01, hidden: 0.01, "
                "readout: 0.01}\n")
    r = CliRunner().invoke(app, ["check", cfg, "--fit", fits["two"], "--strict", "--json"])
    assert r.exit_code == 1, r.output
    assert "--strict: unreliable: extrapolating" in r.stderr
