"""A table exported twice (session 60's review): seeds copied under new seed ids were caught only where every seed
of a cell agreed, so 2 real seeds plus 2 copies, or a 2-seed table stacked on itself with new ids, fitted as 4 seeds
(exponent interval 2-50x narrower, a basin newly called lopsided); exact duplicate rows were warned of but counted.
Both are now dropped, named. And a fit that fell back to the training loss did not name the table's complete
`val_loss`."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from abcscale.fitting import fit_table
from abcscale.fitting.table import prepare
from abcscale.schemas.api import FitOptions
from abcscale.schemas.fit import ColumnMapping
from abcscale.usecases.fits import fit_sweep

WIDTHS = (64, 128, 256, 512)
LRS = np.array([m * 10.0 ** e for e in range(-5, 0) for m in (1, 3)])  # a 1-3-10 grid, 1e-5 .. 3e-1
N_BOOT = 100


def _sweep(seeds: tuple[int, ...] = (0, 1), noise: float = 0.004, rng_seed: int = 0) -> pd.DataFrame:
    """Known truth: log2 LR* = log2(1e-2) - 1.0 log2(width/64); a quadratic basin in log2 LR; NaN (diverged)
    above 8x LR*."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for s in seeds:
        for w in WIDTHS:
            opt = np.log2(1e-2) - np.log2(w / 64)
            for lr in LRS:
                d = np.log2(lr) - opt
                loss = 2 + 0.04 * d ** 2 + rng.normal(0, noise) if d <= 3 else np.nan
                rows.append({"width": w, "beta": lr, "seed": s, "final_loss": loss})
    return pd.DataFrame(rows)


def _ci(df: pd.DataFrame) -> tuple[float, float]:
    ci = fit_table(df, n_boot=N_BOOT, seed=0).groups[0].exponent.ci
    return ci.low, ci.high


def test_a_table_stacked_on_itself_under_new_seed_ids_fits_as_the_original():
    one = _sweep()
    stacked = pd.concat([one, one.assign(seed=one["seed"] + 10)], ignore_index=True)
    assert _ci(stacked) == pytest.approx(_ci(one), rel=1e-9, abs=1e-9)  # was ~2x narrower, as 4 seeds
    prep = prepare(stacked)
    said = [w for w in prep.warnings if "bit-identical" in w]
    assert len(said) == 1 and "seed 10 copies seed 0" in said[0] and "seed 11 copies seed 1" in said[0]
    assert "dropped" in said[0] and prep.n_left_out == len(one)
    assert {float(s) for g in prep.groups for r in g.widths for s in r.seed} == {0.0, 1.0}  # the first ids kept


def test_two_real_seeds_and_two_copies_fit_as_the_two_seeds():
    real = _sweep(seeds=(0, 1), rng_seed=3)
    copied = pd.concat([real, real.assign(seed=real["seed"] + 2)], ignore_index=True)
    # not every seed of a cell agrees (0 and 1 differ): the old all-seeds check never fired
    assert _ci(copied) == pytest.approx(_ci(real), rel=1e-9, abs=1e-9)
    said = [w for w in prepare(copied).warnings if "bit-identical" in w]
    assert len(said) == 1 and "seed 2 copies seed 0" in said[0] and "seed 3 copies seed 1" in said[0]
    fit = fit_table(copied, n_boot=N_BOOT, seed=0)
    assert fit.provenance.n_rows_used == fit_table(real, n_boot=N_BOOT, seed=0).provenance.n_rows_used


def test_exact_duplicate_rows_are_dropped_and_said():
    df = _sweep()
    twice = pd.concat([df, df.iloc[:30]], ignore_index=True)
    assert _ci(twice) == pytest.approx(_ci(df), rel=1e-9, abs=1e-9)
    said = [w for w in prepare(twice).warnings if w.startswith("repeated runs")]
    assert len(said) == 1 and "dropped" in said[0] and f"30 row(s), e.g. row {len(df)}," in said[0]
    # the same settings and seed with another loss (a rerun that came out otherwise) is kept, warned as before
    rerun = pd.concat([df, df.iloc[[5]].assign(final_loss=df["final_loss"].iloc[5] + 1e-3)], ignore_index=True)
    prep = prepare(rerun)
    kept = [w for w in prep.warnings if w.startswith("repeated runs")]
    assert len(kept) == 1 and "another loss" in kept[0] and "dropped" not in kept[0] and prep.n_left_out == 0


def test_distinct_seeds_sharing_one_cells_loss_are_not_merged():
    df = _sweep(seeds=(0, 1), rng_seed=7)
    at = df.index[(df["seed"] == 1) & (df["width"] == 128) & np.isclose(df["beta"], 3e-3)]
    twin = df.index[(df["seed"] == 0) & (df["width"] == 128) & np.isclose(df["beta"], 3e-3)]
    df.loc[at, "final_loss"] = df.loc[twin, "final_loss"].to_numpy()  # one cell alike, the rest apart
    with_copy = pd.concat([df, df[df["seed"] == 0].assign(seed=5)], ignore_index=True)  # and one real copy
    prep = prepare(with_copy)
    said = [w for w in prep.warnings if "bit-identical" in w]
    assert len(said) == 1 and "seed 5 copies seed 0" in said[0] and "seed 1" not in said[0]
    assert prep.n_left_out == int((df["seed"] == 0).sum())  # seed 1 kept whole
    assert _ci(with_copy) == pytest.approx(_ci(df), rel=1e-9, abs=1e-9)


def test_rows_after_dropped_copies_are_named_as_the_table_counts_them():
    df = _sweep(rng_seed=2)
    stacked = pd.concat([df, df.assign(seed=df["seed"] + 10)], ignore_index=True)
    broken = df[(df["width"] == 256) & np.isclose(df["beta"], 1e-4) & (df["seed"] == 0)].assign(seed=20)
    broken["final_loss"] *= 2  # a run that broke, below its curve's best
    table = pd.concat([stacked, broken], ignore_index=True)
    prep = prepare(table)
    assert prep.n_left_out == len(df)  # the copies dropped: the broken run is row len(df) of what is fitted
    said = [w for w in prep.warnings if "broke" in w]
    assert len(said) == 1 and f"row(s) {len(stacked)})" in said[0]


def test_a_complete_validation_loss_column_is_named_when_the_training_loss_is_fitted():
    df = _sweep()
    df["val_loss"] = df["final_loss"] + 0.02
    said = [w for w in prepare(df).warnings if "val_loss" in w]
    assert len(said) == 1 and "no complete eval_loss column" in said[0] and "`loss_col` val_loss" in said[0]
    cli = fit_sweep(df, FitOptions(n_boot=20), names={"loss_col": "--loss-col"}).warnings
    assert any("--loss-col val_loss" in w for w in cli)
    # another spelling of it; not where the loss is chosen, nor where the column is partial
    assert any("eval/loss" in w for w in prepare(df.rename(columns={"val_loss": "eval/loss"})).warnings)
    assert not any("val_loss" in w for w in prepare(df, ColumnMapping(loss_col="final_loss")).warnings)
    partial = df.assign(val_loss=df["val_loss"].where(df["width"] != 64))
    assert not any("val_loss" in w for w in prepare(partial).warnings)


def test_a_few_rounded_losses_alike_are_no_copy():
    """A code review: a hand-typed table (2 decimals) whose seed 1 was rerun at two cells near the optimum, both
    rounding to seed 0's numbers, lost seed 1 as a copy. A copy needs 3 finite losses alike at least."""
    rows = [{"width": w, "beta": 2.0**x, "seed": 0, "final_loss": round(2 + 0.04 * (x + 9 + np.log2(w / 64)) ** 2, 2)}
            for w in (64, 128, 256) for x in range(-12, -4)]
    df = pd.DataFrame(rows)
    rerun = df[(df["width"] == 128) & df["beta"].isin([2.0**-10, 2.0**-9])].assign(seed=1)
    prep = prepare(pd.concat([df, rerun], ignore_index=True))
    assert prep.n_left_out == 0 and not any("copies seed" in w for w in prep.warnings)


def test_without_a_seed_column_two_divergences_are_not_one_run():
    """A code review: two runs per cell without a seed column, both diverged at the top LRs, were dropped as copies
    (NaN equal to NaN), and the fit counted half the diverged runs."""
    rng = np.random.default_rng(0)
    rows = []
    for w in (64, 128, 256):
        for x in range(-12, -4):
            d = x + 9 + np.log2(w / 64)
            for _ in range(2):
                rows.append({"width": w, "beta": 2.0**x,
                             "final_loss": np.nan if d > 2.5 else 2 + 0.04 * d * d + rng.normal(0, 0.003)})
    df = pd.DataFrame(rows)
    prep = prepare(df)
    assert prep.n_left_out == 0 and prep.n_diverged == int(df["final_loss"].isna().sum())


def test_a_coarse_metric_shared_by_many_seeds_is_quick_and_drops_nothing():
    """A code review: every pair of seeds sharing a loss was a candidate, quadratic in the seeds: 2 widths x 2,000
    seeds of one quantized loss took 4.7 s (minutes at 40k rows). A cell where more than 20 seeds share a loss is a
    coarse metric, not copies."""
    n = 2_500
    df = pd.DataFrame([{"width": w, "beta": b, "seed": s, "final_loss": 2.0}
                       for w in (64, 128) for b in (1e-3, 1e-2) for s in range(n)])
    t0 = time.perf_counter()
    prep = prepare(df)
    assert time.perf_counter() - t0 < 15.0
    assert prep.n_left_out == 0
