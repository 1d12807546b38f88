"""Session 77's README review: the epsilon note of a microsoft/mup export names the wrapper the export runs
(MuAdamW for adamw, not MuAdam as for adam)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from abcscale.cli import app


@pytest.mark.parametrize(("optimizer", "wrapper"), [("adam", "MuAdam"), ("adamw", "MuAdamW")])
def test_the_epsilon_note_names_the_wrapper_that_runs(optimizer, wrapper):
    args = ["--width", "4096", "--base-width", "256", "--base-lr", "3e-3",
            *(["--weight-decay", "0.1"] if optimizer == "adamw" else [])]
    export = CliRunner().invoke(app, ["mup", "export", "-o", optimizer, *args])
    assert export.exit_code == 0, export.output
    said = " ".join(export.output.split())
    assert f"each group's eps; {wrapper} passes it to the optimizer unscaled" in said, said
    rec = CliRunner().invoke(app, ["recommend", "-p", "mup", "-o", optimizer, "--form", "mup", "-n", "4096",
                                   "--base-width", "256", "--base-lr", "3e-3",
                                   *(["--weight-decay", "0.1"] if optimizer == "adamw" else [])])
    assert rec.exit_code == 0, rec.output
    assert f"({wrapper} passes it on unscaled)" in " ".join(rec.output.split()), rec.output


@pytest.mark.parametrize(("base_lr", "steps"), [("1e-3", "1,000,000"), ("1e-2", "10,000")])
def test_the_adafactor_snippet_says_when_torchs_cap_bites_for_this_spec(base_lr, steps):
    """The comment said "LR 1e-2: 10,000 steps" whatever the spec's LRs (a review): now its own largest LR."""
    res = CliRunner().invoke(app, ["recommend", "-p", "mup", "-o", "adafactor", "-n", "1024", "--base-width", "256",
                                   "--base-lr", base_lr, "--form", "plain", "--format", "torch"])
    assert res.exit_code == 0, res.output
    assert f"(the largest here, {float(base_lr):.3g}: {steps} steps)" in res.output, res.output
