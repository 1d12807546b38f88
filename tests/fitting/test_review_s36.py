"""Session 36: a run whose loss is missing (an empty cell, NaN) above its curve's best LR counts as diverged, as a
NaN there usually is; but where the table's own divergence column, which flags most of its NaN runs, marks a few
*not* diverged, the two disagree (an unfinished run exported mid-training), and that is said, with its rows. A
column that flags no NaN (computed as `loss > 10`, false for NaN) says nothing of them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abcscale.fitting import prepare
from tests.fitting.test_review_s35 import _sweep


def _notes(df):
    return [w for w in prepare(df).warnings if "marks not diverged" in w]


@pytest.mark.parametrize("flag, said", [(False, True), ("false", True), ("0", True), ("no", True),
                                        (True, False), ("", False), (None, False)])
def test_a_missing_loss_the_table_says_did_not_diverge_is_said(flag, said):
    df = _sweep()
    df["diverged"] = df["final_loss"].isna()  # the sweep's own divergences, flagged: nothing to say
    assert not _notes(df)
    hole = df.index[(df["width"] == 128) & (df["beta"] == df["beta"].max())][:1]  # above the best
    df["diverged"] = df["diverged"].astype(object)
    df.loc[hole, "diverged"] = flag
    notes = _notes(df)
    assert bool(notes) is said
    if said:
        assert notes[0].startswith("1 run(s) without a loss") and f"row(s) {hole[0]}" in notes[0]


def test_without_a_divergence_column_a_nan_above_the_best_is_a_divergence():
    df = _sweep()
    assert df["final_loss"].isna().any() and not _notes(df)
    hole = df.index[(df["width"] == 128) & (df["beta"] == df["beta"].max())]
    df.loc[hole, "final_loss"] = np.nan
    assert not _notes(df)


def test_a_column_that_flags_no_nan_says_nothing_of_them():
    df = _sweep()
    df["diverged"] = df["final_loss"] > 10  # False for every NaN: the column's false is no statement
    assert df["final_loss"].isna().any() and not _notes(df)


# --- a review of a team's own sweep tables (wandb exports, European CSVs, CI gates) --------------------------

def _steps(df, col, short_rows):
    df = df.copy()
    df[col] = 2000
    df.loc[short_rows, col] = 600
    return df


@pytest.mark.parametrize("col", ["step", "global_step", "trainer/global_step", "_step", "iteration"])
def test_runs_cut_short_are_said_by_their_step_column(col):
    df = _sweep(seeds=1)
    near = df.index[(df["width"] == 256) & df["final_loss"].notna()][:2]
    notes = [w for w in prepare(_steps(df, col, near)).warnings if "stopped at a lower" in w]
    assert len(notes) == 1 and notes[0].startswith(f"2 run(s) stopped at a lower {col} than the other runs of "
                                                    "their curve (e.g. 600 of 2000)")
    assert f"row(s) {near[0]}, {near[1]}" in notes[0]
    even = df.assign(**{col: 2000})
    assert not [w for w in prepare(even).warnings if "stopped at a lower" in w]
    # diverged runs stop early by nature: not said
    div = df.index[df["final_loss"].isna()][:3]
    assert not [w for w in prepare(_steps(df, col, div)).warnings if "stopped at a lower" in w]


def test_a_steps_budget_is_not_a_step_count():
    from abcscale.fitting.table import is_step_name

    assert not is_step_name("steps") and not is_step_name("train_steps")
    assert is_step_name("trainer/global_step") and is_step_name("Step")


def test_a_trackers_bookkeeping_is_not_a_setting():
    """wandb's Runtime (whole seconds, repeating by chance) and, once a row is exported twice, its ids and times
    were said to be settings changing with the seed, with advice that would split every cell."""
    df = _sweep(seeds=2)
    rng = np.random.default_rng(0)
    df["Runtime"] = rng.integers(100, 110, len(df))
    df["run_id"] = [f"run-{i}" for i in range(len(df))]
    df["Created"] = pd.date_range("2024-05-01", periods=len(df), freq="min").astype(str)
    df = pd.concat([df, df.iloc[:2]], ignore_index=True)  # exported twice
    said = " ".join(prepare(df).warnings)
    assert "repeated runs" in said
    assert not any(c in said for c in ("Runtime", "run_id", "Created"))


def test_a_semicolon_csv_with_a_comma_in_a_column_name(tmp_path):
    from abcscale.fitting import read_table

    df = _sweep(seeds=1).head(6)
    path = tmp_path / "eu.csv"
    named = df.rename(columns={"seed": "seed (a,b)"})
    path.write_text(named.to_csv(sep=";", index=False))
    read = read_table(path)
    assert list(read.columns) == list(named.columns)
    assert read["width"].tolist() == df["width"].tolist()


def _one_three_ten(e: float, rng: np.random.Generator, noise: float = 0.003) -> pd.DataFrame:
    """One seed on the 1-3-10 grid teams use (1e-6, 3e-6, ..., 0.3: steps of 1.6-1.7 octaves): loss = 3 + 0.03 d^2
    + noise (relative), d octaves off LR* = 0.01 (w / 64)^e; runs 3 octaves above LR* diverge."""
    rows = []
    for w in (64, 128, 256, 512, 1024):
        star = np.log2(0.01) + e * np.log2(w / 64)
        for lr in (m * 10.0**k for k in range(-6, 0) for m in (1, 3)):
            d = np.log2(lr) - star
            loss = (3 + 0.03 * d * d) * (1 + noise * rng.standard_normal())
            rows.append({"width": w, "beta": lr, "seed": 0, "final_loss": np.nan if d > 3 else loss, **MUP_GLOBAL})
    return pd.DataFrame(rows)


MUP_GLOBAL = {"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"}


def test_one_seed_on_a_1_3_10_grid_pools_its_noise_over_the_widths():
    """A width's window held 4 grid points (1 residual degree of freedom): its noise, estimated from one, gave
    Cauchy-like vertex draws (95% intervals 6.7 octaves wide for optima 2% off), the exponent's interval let a wrong
    theory pass, and the prior pulled predictions 1.9 octaves low (16 of 30 bands covered). The widths' residuals
    are pooled now: a group's noise from all of them. (The exponent's interval still holds theory's -1 here: the
    grid floor, a step / sqrt(12) per width on a 1.66-octave grid, keeps it wide.)"""
    from abcscale.fitting import fit_table

    truth = 0.01 * 64**-0.5
    covered, errors, spans, bands = 0, [], [], []
    for r in range(10):
        g = fit_table(_one_three_ten(-0.5, np.random.default_rng(900 + r)), n_boot=200, seed=r,
                      target_width=4096).groups[0]
        p = g.prediction
        covered += p.ci95[0] <= truth <= p.ci95[1]
        errors.append(np.log2(p.lr / truth))
        bands.append(np.log2(p.ci95[1] / p.ci95[0]))
        spans += [np.log2(o.ci.high / o.ci.low) for o in g.per_width]
    # 37 of 40 replicas (92.5%); the old code 16 of 30, 1.9 octaves low. Since session 50 the prior spans theory's
    # -1 to -0.5 (full to no alignment) and is kept here: 10 of 10 covered by 2.3-octave bands, 0.3 octave low
    # (the floored per-width variances leave the span some pull), where the point prior was dropped for the free
    # fit's 4.1-octave bands
    assert covered >= 8 and abs(np.median(errors)) < 0.45
    assert np.median(bands) < 3.0
    assert np.median(spans) < 2.5  # octaves, was 6.7


def test_noise_that_moves_the_argmin_widens_the_interval_to_cover():
    """At 1% noise on a shallow basin the grid's argmin is itself a draw; the interval's window stayed at the
    observed one, so an optimum an octave away could not enter it (95% intervals covered 78% with one seed).
    The bootstrap draws the argmin too."""
    from abcscale.fitting import fit_table

    hits = n = 0
    for r in range(12):
        df = _sweep(seeds=1, noise=0.01, curvature=0.01, seed=300 + r)
        for o in fit_table(df, n_boot=200, seed=r).groups[0].per_width:
            if o.ci is None:
                continue
            truth = 0.01 * (o.width / 64) ** -1.0
            hits += o.ci.low <= truth <= o.ci.high
            n += 1
    assert n >= 40 and hits / n >= 0.9, (hits, n)


def test_a_code_reviews_edges():
    """A code review of this session's diff: a `best_step` or `warmup_step` column is no progress counter (full runs
    were called cut short); a sweep whose every run diverged (NaN and flagged, as the runner writes it) says so,
    not "no run has a loss"."""
    from abcscale.fitting.table import TableError, is_step_name

    assert not any(is_step_name(c) for c in ("best_step", "warmup_step", "decay_step", "max_step", "steps"))
    df = _sweep(seeds=1)
    df["best_step"] = np.where(df["width"] == 128, 900, 2000)
    assert not [w for w in prepare(df).warnings if "stopped at a lower" in w]
    gone = df.assign(final_loss=np.nan, diverged=True)
    with pytest.raises(TableError, match="all .* runs diverged"):
        prepare(gone)
