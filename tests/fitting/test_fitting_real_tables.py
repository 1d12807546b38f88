"""What real tables exposed (issue 14 item 3): rounded grids, unnamed varying columns, finite blow-ups,
one-seed intervals narrower than the grid, the runner's own derived columns, and the default loss."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from abcscale.fitting import fit_table, prepare
from abcscale.fitting.optimum import Cells, fit_optimum, grid_floor_sd
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.schemas.fit import ColumnMapping


def _curve_cells(x: np.ndarray, x_true: float) -> Cells:
    """One width's exact curve (not a quadratic: the window's points matter), 2 seeds of tiny noise."""
    rng = np.random.default_rng(1)
    xs = np.repeat(x, 2)
    d = xs - x_true
    loss = 3.0 * (1 + 0.02 * d**2 + 0.004 * d**4) * (1 + 1e-5 * rng.standard_normal(xs.size))
    return Cells.of_runs(xs, loss, np.tile([0, 1], x.size))


def test_rounded_grid_keeps_its_neighbours_in_the_window():
    # a half-octave grid whose LRs were rounded: the points one nominal octave either side of the argmin sit
    # at 1.0037 and 1.0003 octaves (as 4 significant digits put them on a real table); both belong in the
    # window, as on the exact grid
    exact = np.arange(-3.0, 3.01, 0.5) - 7.0
    rounded = exact + np.where(exact < -7.0, -0.0037, np.where(exact > -7.0, 0.0003, 0.0))
    fits = [fit_optimum(_curve_cells(x, -6.9), 200, np.random.default_rng(0)) for x in (exact, rounded)]
    assert all(f.identified for f in fits)
    assert fits[0].x_opt is not None and fits[1].x_opt is not None
    assert abs(fits[1].x_opt - fits[0].x_opt) < 0.01


def test_rows_differing_in_an_unnamed_column_are_not_pooled_silently():
    base = synthetic_sweep(widths=(64, 128, 256, 512), seeds=1, seed=0)
    df = pd.concat([base.assign(batch_size=32), base.assign(batch_size=256)], ignore_index=True)
    fit = fit_table(df, n_boot=50)
    assert len(fit.warnings) == 1
    # the fitter names the option by its field, for the use case to say in its caller's words
    assert "batch_size" in fit.warnings[0] and "(`group_cols`)" in fit.warnings[0]
    # named as a group column, each batch size is fitted apart and nothing is pooled
    split = fit_table(df, ColumnMapping(group_cols=["batch_size"]), n_boot=50)
    assert not [w for w in split.warnings if "averaged" in w]
    assert [g.group for g in split.groups] == [{"batch_size": 32}, {"batch_size": 256}]
    # a per-run measurement of a foreign table (unique per row) is not a setting
    assert fit_table(base.assign(wallclock=np.arange(len(base)) * 1.5), n_boot=50).warnings == []


def _blown_up() -> pd.DataFrame:
    """Runs more than 1.5 octaves above LR* end at a finite loss 2-4x the best, not flagged diverged."""
    df = synthetic_sweep(widths=(64, 128, 256, 512), seeds=2, edge_octaves=None, seed=3)
    x_true = np.log2(1e-2) - np.log2(df["width"] / 64)
    high = np.log2(df["beta"]) - x_true > 1.5
    df.loc[high, "final_loss"] = 7.0 + np.arange(high.sum()) % 5  # start ~3: these blew up
    return df


def test_finite_blowups_are_marked_diverged():
    df = _blown_up()
    fit = fit_table(df, n_boot=100)
    g = fit.groups[0]
    assert fit.provenance.n_diverged == int((np.log2(df["beta"]) - (np.log2(1e-2) - np.log2(df["width"] / 64))
                                              > 1.5).sum())
    for w in g.per_width:  # the largest stable LR is below the blow-ups, and a stability edge is fitted
        assert w.largest_stable_lr is not None
        assert math.log2(w.largest_stable_lr) - (math.log2(1e-2) - math.log2(w.width / 64)) <= 1.5
    assert g.edge_law is not None
    # the rule is configurable: off, they count as stable runs again
    assert fit_table(df, n_boot=100, blowup=None).provenance.n_diverged == 0
    with pytest.raises(ValueError, match="blowup"):
        fit_table(df, blowup=0.9)


def test_slow_end_of_the_grid_is_never_a_blowup():
    df = synthetic_sweep(widths=(64, 128), seeds=1, edge_octaves=None, curvature=0.3, seed=0)
    assert df["final_loss"].max() > 1.5 * df["final_loss"].min()  # both ends are far above the best
    n_div = prepare(df).n_diverged
    x_true = np.log2(1e-2) - np.log2(df["width"] / 64)
    d = np.log2(df["beta"]) - x_true
    assert 0 < n_div <= int((d > 0).sum())  # only runs above the optimum are marked


def test_one_seed_interval_is_not_narrower_than_the_grid_allows():
    step = 0.5
    df = synthetic_sweep(widths=(64, 128, 256, 512), seeds=1, noise=1e-6, step=step, seed=0)
    fit = fit_table(df, n_boot=400)
    floor = grid_floor_sd(step, replicated=False)
    for w in fit.groups[0].per_width:
        assert w.ci is not None
        width = math.log2(w.ci.high / w.ci.low)
        assert width >= 3.5 * floor, (w.width, width)  # a 95% normal interval is 3.92 sd wide


def _tiny_runner_table(tmp_path) -> pd.DataFrame:
    pytest.importorskip("jax")
    from abcscale.runner.spec import SweepSpec
    from abcscale.runner.sweep import run_sweep

    spec = SweepSpec(model="mlp", widths=[8, 16, 32], depth=1, log2_lr="-7:-1:1", steps=20, batch=4, seq_len=8,
                     data="synthetic", eval_batches=2, batching="vmap", chunk=8, seeds=2,
                     parameterizations=["mup"], optimizers=["adam"])
    run_sweep(spec, tmp_path / "sweep", progress=False)
    return pd.read_parquet(tmp_path / "sweep" / "results.parquet")


def test_the_runners_own_table_fits_without_spurious_warnings(tmp_path):
    df = _tiny_runner_table(tmp_path)
    # muP's effective per-width multipliers vary across widths: derived from the width, not swept
    assert df["multiplier_readout"].nunique() > 1
    fit = fit_table(df, n_boot=100)
    assert fit.warnings == [] and fit.provenance.settings["constant_cols"] == []
    text = " ".join(w for g in fit.groups for w in g.warnings)
    assert "multiplier_" not in text and "averaged" not in text
    # the default loss is the held-out one, as in the sweep's summary; it is stated in the result
    assert fit.mapping.loss_col == "eval_loss" and fit.provenance.settings["loss_col"] == "eval_loss"
    from abcscale.runner.sweep import best_lrs

    best = {b.width: b.log2_lr for b in best_lrs(df)}
    for w in fit.groups[0].per_width:  # the summary's best grid LR is the fit's grid argmin
        assert w.grid_argmin_lr is not None and math.isclose(math.log2(w.grid_argmin_lr), best[w.width])


def test_default_loss_is_eval_loss_where_the_table_has_it():
    df = synthetic_sweep(widths=(64, 128, 256), seeds=2, seed=0)
    held = df.assign(eval_loss=df["final_loss"] * 1.01)
    assert fit_table(held, n_boot=50).mapping.loss_col == "eval_loss"
    assert fit_table(held, ColumnMapping(loss_col="final_loss"), n_boot=50).mapping.loss_col == "final_loss"
    partial = held.assign(eval_loss=np.where(np.arange(len(df)) % 2 == 0, np.nan, held["eval_loss"]))
    assert fit_table(partial, n_boot=50).mapping.loss_col == "final_loss"  # an incomplete eval column
    assert fit_table(df, n_boot=50).mapping.loss_col == "final_loss"
