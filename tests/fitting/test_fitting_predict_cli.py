"""Predictions from a fit, `abcscale fit` (incl. --expect-theory) and `abcscale recommend --fit` end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from abcscale import theory
from abcscale.cli import app
from abcscale.fitting import fit_table, prepare, write_plots
from abcscale.fitting.predict import expected_penalty, predict_group
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.schemas.fit import FitResult
from abcscale.schemas.theory import Constants, PerLayer
from abcscale.usecases import recommend_from_fit

runner = CliRunner()
SP_GLOBAL = {"parameterization": "standard", "optimizer": "adam", "alignment": "full", "lr_mode": "global"}
MUP = {"parameterization": "mup", "optimizer": "adam", "alignment": "full", "lr_mode": "per_layer"}


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return pd.concat([
        synthetic_sweep(group=SP_GLOBAL, exponent=-1.0, lr_base=1e-2, seed=1),
        synthetic_sweep(group=MUP, exponent=0.0, lr_base=3e-3, seed=2),
    ], ignore_index=True)


@pytest.fixture(scope="module")
def fit(table) -> FitResult:
    return fit_table(table, n_boot=200)


@pytest.fixture(scope="module")
def csv(table, tmp_path_factory):
    path = tmp_path_factory.mktemp("fit") / "sweep.csv"
    table.to_csv(path, index=False)
    return path


def test_expected_penalty_closed_form():
    # symmetric basin: E[k d^2] = k sd^2 at zero shift
    assert expected_penalty(0.0, 0.3, 0.02, 0.02) == pytest.approx(0.02 * 0.09)
    # no uncertainty: only the shift's own side counts
    assert expected_penalty(-0.5, 0.0, 0.01, 0.04) == pytest.approx(0.01 * 0.25)
    assert expected_penalty(0.5, 0.0, 0.01, 0.04) == pytest.approx(0.04 * 0.25)


def test_band_widens_with_extrapolation(fit):
    g = next(g for g in fit.groups if g.group["parameterization"] == "standard")
    near, far = predict_group(g, 2048), predict_group(g, 1 << 17)
    assert far.ci95[1] / far.ci95[0] > near.ci95[1] / near.ci95[0]
    assert far.extrapolation_factor == 128.0
    assert any("past the largest fitted width" in w for w in far.warnings)
    assert not any("past the largest" in w for w in near.warnings)
    assert far.lr == pytest.approx(1e-2 * (1 << 17) / 64 * (64 / (1 << 17)) ** 2, rel=0.3)


def test_recommend_per_layer_mode_uses_theory_exponents(fit):
    rec = recommend_from_fit(fit, 4096, selector={"parameterization": "mup"},
                             constants=Constants(gamma=PerLayer(embedding=1.0, hidden=0.5, readout=2.0)))
    assert rec.source == "fit" and rec.group["parameterization"] == "mup"
    beta = rec.beta
    assert beta == pytest.approx(3e-3, rel=0.1)
    sol = theory.solve_exponents("mup", "adam", "full")
    gamma = {"embedding": 1.0, "hidden": 0.5, "readout": 2.0}
    for s in rec.layers:
        expect = beta * gamma[s.layer.value] * (4096 / 64) ** -sol.c[s.layer]
        assert s.lr == pytest.approx(expect, rel=1e-9)
    assert rec.band.ci95[0] < rec.band.lr < rec.band.ci95[1]
    assert rec.band.extrapolation_factor == 4.0


def test_recommend_global_mode_uses_the_fitted_lr(fit):
    rec = recommend_from_fit(fit, 4096, selector={"parameterization": "sp", "lr_mode": "global"})
    assert rec.lr_mode.value == "global"
    assert rec.band.lr == pytest.approx(1e-2 * 64 / 4096, rel=0.1)
    for s in rec.layers:  # every layer at the fitted global LR at 4096
        assert s.lr == pytest.approx(rec.band.lr, rel=1e-9)
    # beta is the base width's LR that gives those LRs (session 65: it was the target's, 64x off beside base 64)
    assert rec.beta == pytest.approx(rec.band.lr * (4096 / rec.base_width) ** rec.global_c, rel=1e-12)


def test_selector_errors_list_the_groups(fit):
    with pytest.raises(ValueError, match="2 groups match.*available groups: .*parameterization=mup"):
        recommend_from_fit(fit, 1024)
    with pytest.raises(ValueError, match="no group matches"):
        recommend_from_fit(fit, 1024, selector={"parameterization": "ntk"})
    with pytest.raises(ValueError, match="group key 'depth'.*group columns are"):
        recommend_from_fit(fit, 1024, selector={"depth": "2", "parameterization": "mup"})


def test_unidentified_fit_is_never_extrapolated():
    df = synthetic_sweep(group=MUP, exponent=0.0, grid_offset=3.0, half_range=2.0, edge_octaves=None, seed=3)
    fit = fit_table(df, n_boot=50)
    with pytest.raises(ValueError, match="widen the learning-rate grid"):
        recommend_from_fit(fit, 4096)
    single = fit_table(synthetic_sweep(widths=(128,), group=MUP, exponent=0.0, seed=4), n_boot=50)
    with pytest.raises(ValueError, match="only one width"):
        recommend_from_fit(single, 4096)


def test_hints_stand_in_for_missing_group_columns():
    df = synthetic_sweep(group={"team": "x"}, exponent=0.0, seed=5)
    fit = fit_table(df, n_boot=50)
    with pytest.raises(ValueError, match="parameterization and optimizer") as info:
        recommend_from_fit(fit, 1024)
    assert "--" not in str(info.value)  # the use case's words, not a CLI flag
    # without an lr_mode the fitted LR's width scaling would be applied again in per-layer mode (session 31)
    with pytest.raises(ValueError, match="lr_mode: the fit's table has no lr_mode column"):
        recommend_from_fit(fit, 1024, selector={"parameterization": "mup", "optimizer": "adam"})
    rec = recommend_from_fit(fit, 1024, selector={"parameterization": "mup", "optimizer": "adam",
                                                  "lr_mode": "global"})
    assert rec.parameterization == "mup"
    # global: every layer takes the fitted LR at 1024 (times gamma 1), not that LR scaled again by width
    assert all(math.isclose(s.lr, rec.band.lr, rel_tol=1e-9) for s in rec.layers)


def test_inconsistent_fit_warns_in_the_recommendation():
    df = synthetic_sweep(group=MUP, exponent=-0.5, grid_center_exponent=-0.5, seed=6)
    rec = recommend_from_fit(fit_table(df, n_boot=50), 1024)
    assert any("inconsistent with theory" in w for w in rec.warnings)


def test_plots_are_written(fit, table, tmp_path):
    paths = write_plots(fit, prepare(table), tmp_path / "plots")
    assert set(paths) == {"loss_vs_lr", "lr_vs_width", "loss_vs_width"}
    for p in paths.values():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000


# --- CLI -------------------------------------------------------------------------------------------


def test_fit_json_is_exactly_the_fit_result(csv):
    res = runner.invoke(app, ["fit", str(csv), "--json", "--n-boot", "100", "--target-width", "2048"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    fit = FitResult.model_validate(data)
    assert len(fit.groups) == 2 and all(g.prediction is not None for g in fit.groups)


def test_fit_summary_out_and_plots(csv, tmp_path):
    out, plots = tmp_path / "out", tmp_path / "plots"  # --out is a folder: it gets fit.json
    res = runner.invoke(app, ["fit", str(csv), "--out", str(out), "--plots", str(plots), "--n-boot", "100"])
    assert res.exit_code == 0, res.output
    assert "consistent" in res.stdout and "per width" in res.stdout and "0.01 @ 64" in res.stdout
    assert FitResult.model_validate_json((out / "fit.json").read_text()).groups
    assert (plots / "lr_vs_width.png").exists()


def test_bad_input_exits_2_listing_every_problem(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("width,beta,final_loss\n64,-1,2.0\n,0.01,2.0\n")
    res = runner.invoke(app, ["fit", str(bad)])
    assert res.exit_code == 2
    assert "beta:" in res.output and "width:" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["fit", str(tmp_path / "missing.csv")])
    assert res.exit_code == 2 and "no such file" in res.output
    res = runner.invoke(app, ["fit", str(bad), "--lr-col", "lr"])
    assert res.exit_code == 2 and "lr: missing column" in res.output


def test_bad_flags_exit_2(csv):
    assert runner.invoke(app, ["fit", str(csv), "--n-boot", "3"]).exit_code == 2
    res = runner.invoke(app, ["fit", str(csv), "--alignment", "sideways"])
    assert res.exit_code == 2 and "--alignment" in res.output


def test_expect_theory_passes_on_theory_sweep(tmp_path):
    path = tmp_path / "ok.csv"
    pd.concat([synthetic_sweep(group=SP_GLOBAL, exponent=-1.0, seed=21),
               synthetic_sweep(group=MUP, exponent=0.0, seed=22)]).to_csv(path, index=False)
    res = runner.invoke(app, ["fit", str(path), "--expect-theory", "--n-boot", "100"])
    assert res.exit_code == 0, res.output


def test_expect_theory_fails_on_shifted_exponent(tmp_path):
    path = tmp_path / "shifted.csv"
    # beyond theory's span for a global LR (-1 full alignment to -0.5 none)
    synthetic_sweep(group=SP_GLOBAL, exponent=0.0, grid_center_exponent=-0.25, seed=23).to_csv(path, index=False)
    res = runner.invoke(app, ["fit", str(path), "--expect-theory", "--n-boot", "100"])
    assert res.exit_code == 1
    assert "inconsistent" in res.output and "lr_mode=global" in res.output and "theory -1..-0.5" in res.output


def test_expect_theory_with_alignment(tmp_path):
    # a sweep drawn from the no-alignment exponent passes only when tested against that theory (told no
    # alignment, the fit takes theory's span for a global LR, full to no alignment, and it passes too)
    e_none = theory.theory_exponent("standard", "adam", "none", "global")
    assert not math.isclose(e_none, -1.0)
    path = tmp_path / "none.csv"
    synthetic_sweep(group=SP_GLOBAL, exponent=e_none, seed=24).to_csv(path, index=False)
    assert runner.invoke(app, ["fit", str(path), "--expect-theory", "--n-boot", "100",
                               "--alignment", "none"]).exit_code == 0
    assert runner.invoke(app, ["fit", str(path), "--expect-theory", "--n-boot", "100",
                               "--alignment", "full"]).exit_code == 1
    assert runner.invoke(app, ["fit", str(path), "--expect-theory", "--n-boot", "100"]).exit_code == 0


def test_expect_theory_without_theory_columns_exits_2(tmp_path):
    path = tmp_path / "plain.csv"
    synthetic_sweep(exponent=0.0, seed=25).to_csv(path, index=False)
    res = runner.invoke(app, ["fit", str(path), "--expect-theory", "--n-boot", "100"])
    assert res.exit_code == 2 and "parameterization" in res.output


def test_recommend_from_fit_file_end_to_end(csv, tmp_path):
    assert runner.invoke(app, ["fit", str(csv), "--out", str(tmp_path), "--n-boot", "100"]).exit_code == 0
    out = tmp_path / "fit.json"
    res = runner.invoke(app, ["recommend", "--fit", str(out), "--width", "2048", "--group", "parameterization=mup",
                              "--json"])
    assert res.exit_code == 0, res.output
    rec = json.loads(res.stdout)
    assert rec["source"] == "fit" and rec["group"]["parameterization"] == "mup"
    assert rec["band"]["ci95"][0] < rec["band"]["lr"] < rec["band"]["ci95"][1]
    assert {s["layer"] for s in rec["layers"]} == {"embedding", "hidden", "readout"}
    res = runner.invoke(app, ["recommend", "--fit", str(out), "--width", "2048"])
    assert res.exit_code == 2 and "available groups" in res.output
    res = runner.invoke(app, ["recommend", "--fit", str(out), "--width", "2048", "--group", "parameterization=sp",
                              "--lr-mode", "global"])
    assert res.exit_code == 0, res.output
    assert "source: fit" in res.stdout


def test_fit_and_recommend_print_the_band_at_the_fits_level(csv, tmp_path):
    """The same band line in both commands: the interval at --confidence-level, then the fixed 68% and 95%."""
    res = runner.invoke(app, ["fit", str(csv), "--out", str(tmp_path), "--n-boot", "50", "--confidence-level",
                              "0.5", "--target-width", "2048"])
    assert res.exit_code == 0, res.output
    fitted = [line for line in res.stdout.splitlines() if line.startswith("prediction at width 2048")]
    res = runner.invoke(app, ["recommend", "--fit", str(tmp_path / "fit.json"), "--width", "2048", "--group",
                              "parameterization=mup"])
    assert res.exit_code == 0, res.output
    line = next(line for line in res.stdout.splitlines() if line.startswith("fitted swept LR beta at width 2048"))
    bands = {f.split(": LR* ", 1)[1].split("safe-side")[0] for f in fitted}  # rich wraps after it at 140 columns
    assert len(fitted) == 2 and line.split(": ", 1)[1].split("safe-side")[0] in bands
    assert line.index("50% [") < line.index("68% [") < line.index("95% [")


def test_fit_with_mapping_flags(tmp_path):
    path = tmp_path / "wandb.csv"
    df = synthetic_sweep(exponent=0.0, seed=26).rename(
        columns={"width": "d_model", "beta": "lr", "final_loss": "train/loss", "seed": "run"})
    df.assign(project="p1").to_csv(path, index=False)
    res = runner.invoke(app, ["fit", str(path), "--size-col", "d_model", "--lr-col", "lr", "--loss-col",
                              "train/loss", "--seed-col", "run", "--group-cols", "project", "--json",
                              "--n-boot", "50"])
    assert res.exit_code == 0, res.output
    fit = FitResult.model_validate_json(res.stdout)
    assert fit.groups[0].group == {"project": "p1"} and fit.mapping.size_col == "d_model"
    assert fit.groups[0].exponent.ci.low < 0.0 < fit.groups[0].exponent.ci.high


def test_fit_table_rejects_bad_settings(table):
    with pytest.raises(ValueError, match="n_boot"):
        fit_table(table, n_boot=5)
    with pytest.raises(ValueError, match="confidence_level"):
        fit_table(table, confidence_level=1.5)
    with pytest.raises(ValueError, match="target_width"):
        fit_table(table, target_width=0)


def test_plots_refuse_a_table_that_is_not_the_fits(fit, table):
    other = prepare(table[table["parameterization"] == "mup"])
    with pytest.raises(ValueError, match="not the fit's"):
        write_plots(fit, other, Path("unused"))
