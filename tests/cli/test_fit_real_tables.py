"""`abcscale fit` and `recommend --fit` on what real tables need: the loss stated, unreliable predictions in
bold and refused under --strict, beta named as the base LR with the per-layer LRs beside it."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from abcscale.cli import app
from abcscale.fitting.predict import UNRELIABLE
from abcscale.fitting.synthetic import synthetic_sweep

runner = CliRunner()
MUP = {"parameterization": "mup", "optimizer": "adam", "alignment": "full", "lr_mode": "per_layer"}


@pytest.fixture(scope="module")
def two_widths(tmp_path_factory):
    """Two widths only: any extrapolation from them is unreliable."""
    path = tmp_path_factory.mktemp("t") / "two.csv"
    synthetic_sweep(widths=(64, 128), group=MUP, exponent=0.0, seed=4).to_csv(path, index=False)
    return path


def test_strict_refuses_an_extrapolation_from_two_widths(two_widths):
    args = ["fit", str(two_widths), "--n-boot", "100", "--target-width", "8192"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "from 2 widths" in res.stdout and "loss: final_loss" in res.stdout
    strict = runner.invoke(app, [*args, "--strict"])
    assert strict.exit_code == 1 and "--strict" in strict.stderr and "from 2 widths" in strict.stderr
    # within the fitted widths nothing is extrapolated: --strict passes
    assert runner.invoke(app, ["fit", str(two_widths), "--n-boot", "100", "--target-width", "96",
                               "--strict"]).exit_code == 0


def test_unreliable_warning_is_bold():
    from abcscale.cli.fit import warning_line

    assert warning_line(UNRELIABLE + "from 2 widths").startswith("[bold red]")
    assert "bold" not in warning_line("3 widths swept")


def test_blowup_flag_is_checked(two_widths):
    res = runner.invoke(app, ["fit", str(two_widths), "--blowup", "0.5"])
    assert res.exit_code == 2 and "--blowup" in res.output


def test_fit_states_the_held_out_loss(tmp_path):
    path = tmp_path / "held.csv"
    df = synthetic_sweep(widths=(64, 128, 256), group=MUP, exponent=0.0, seed=5)
    df.assign(eval_loss=df["final_loss"] * 1.01).to_csv(path, index=False)
    res = runner.invoke(app, ["fit", str(path), "--n-boot", "100"])
    assert res.exit_code == 0, res.output
    assert "loss: eval_loss (held-out eval loss" in res.stdout


def test_recommend_from_fit_names_beta_and_gives_layer_lrs(two_widths, tmp_path):
    assert runner.invoke(app, ["fit", str(two_widths), "--n-boot", "100", "--out", str(tmp_path)]).exit_code == 0
    fit = str(tmp_path / "fit.json")
    res = runner.invoke(app, ["recommend", "--fit", fit, "-n", "8192"], env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    assert "fitted swept LR beta at width 8192" in res.stdout and "fitted LR at" not in res.stdout
    assert "per-layer LRs from that beta: embedding" in res.stdout
    band = json.loads(runner.invoke(app, ["recommend", "--fit", fit, "-n", "8192", "--json"]).stdout)["band"]
    assert band["base_lr"] == band["lr"] and set(band["layer_lrs"]) == {"embedding", "hidden", "readout"}
    strict = runner.invoke(app, ["recommend", "--fit", fit, "-n", "8192", "--strict"])
    assert strict.exit_code == 1 and "from 2 widths" in strict.stderr


def test_quick_demo_widens_a_grid_that_identified_nothing():
    from abcscale.cli.demo import WIDEN_OCTAVES, demo_spec, widen
    from abcscale.fitting import fit_table

    spec = demo_spec(True)
    # every optimum above the grid: the fit identifies nothing, the grid grows upward only
    low = synthetic_sweep(widths=(16, 32), group=MUP, exponent=0.0, grid_offset=-5.0, edge_octaves=None, seed=6)
    wider = widen(spec, fit_table(low, n_boot=50))
    assert wider is not None and wider.log2_lr[0] == spec.log2_lr[0]
    assert wider.log2_lr[-1] == spec.log2_lr[-1] + WIDEN_OCTAVES
    # a fitted group: nothing to widen
    ok = synthetic_sweep(widths=(16, 32, 64), group=MUP, exponent=0.0, seed=6)
    assert widen(spec, fit_table(ok, n_boot=50)) is None
