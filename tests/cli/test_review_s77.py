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


_HYDRA = """model: {d_model: 4096}
scaling: {parameterization: mup, base_width: 256, base_lr: 3.0e-3}
hidden_lr: 1.875e-4
optim:
  name: adam
  lr:
    embedding: 7.5e-4
    hidden: ${HIDDEN}
    readout: 7.5e-4
"""
_MAP = ("width=model.d_model,parameterization=scaling.parameterization,base_width=scaling.base_width,"
        "beta=scaling.base_lr,optimizer=optim.name,lr=optim.lr")


@pytest.mark.parametrize(("points_at", "code", "said"), [("hidden_lr", 0, "PASS"),
                                                          ("scaling.base_lr", 1, "lr (hidden) too high")])
def test_a_reference_inside_a_table_mapped_whole_is_read_where_it_points(tmp_path, points_at, code, said):
    """`--map lr=optim.lr` with `hidden: ${hidden_lr}` inside was exit 2 "not a valid number" (a review): the gate
    could neither pass the right value nor fail a wrong one."""
    cfg = tmp_path / "run.yaml"
    cfg.write_text(_HYDRA.replace("HIDDEN", points_at))
    res = CliRunner().invoke(app, ["check", str(cfg), "--map", _MAP])
    assert res.exit_code == code and said in res.output, res.output
