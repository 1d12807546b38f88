"""Session 63, a code review of the table heuristics added earlier the same session (tests/fitting/
test_tables_review_s63.py). Each finding on a sweep of known truth (``synthetic_sweep``: LR* = 0.01 (w / 64)^-1):

1. a setting whose name holds a measurement's word (``z_loss``, ``use_z_loss``, ``aux_loss_alpha``, ``reward_clip``)
   was read as a measurement: two configurations pooled as seeds, unsaid, called reruns, and their divergences
   dropped as copies;
2. a text column named ``update`` or ``checkpoint`` (an update rule, an init checkpoint) was skipped as a step count:
   two configurations averaged as seeds, unsaid;
3. a best-so-far column (``best_val_loss``), finite for a run that diverged after its first eval, made that
   divergence "a loss never logged": left out, and "max stable" moved up;
5. a swept epoch budget (epoch 1 and 3 at every width, LR and seed) was refused as a history, with advice to keep the
   rows where epoch is 3 (throwing a configuration away).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abcscale.fitting import prepare
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.fitting.table import TableError, is_measurement_name

_POOLED = "averaged as if they were seeds"


def _sweep(seed: int = 1) -> pd.DataFrame:
    """3 widths x 13 LRs x 2 seeds, runs diverging past 2 octaves above the optimum (a divergence column)."""
    return synthetic_sweep(widths=(64, 128, 256), seeds=2, step=0.5, half_range=3.0, seed=seed)


def _two_configs(name: str, values: tuple[object, object]) -> pd.DataFrame:
    """One sweep run twice, the same LRs and seeds, under two values of ``name``; the second 0.05 lower."""
    a = _sweep()
    b = a.assign(final_loss=a["final_loss"] - 0.05)
    return pd.concat([a.assign(**{name: values[0]}), b.assign(**{name: values[1]})], ignore_index=True)


# --- 1. a setting named with a measurement's word ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["z_loss", "use_z_loss", "aux_loss_alpha", "softmax_auxiliary_loss", "reward_clip",
                                  "auxiliary_loss_multiplier", "zloss", "grad_acc", "load_balancing_loss_coef"])
def test_a_losss_setting_is_no_measurement_name(name):
    assert is_measurement_name(name) is False


@pytest.mark.parametrize("name", ["train/loss", "val_loss", "eval/z_loss", "valloss", "summary/best_val_loss",
                                  "word_ppl", "metrics", "test_accuracy", "mean_reward", "loss"])
def test_a_trackers_measurement_is_still_one(name):
    assert is_measurement_name(name) is True


@pytest.mark.parametrize("name, values", [("z_loss", (0.0, 1e-4)), ("use_z_loss", (False, True)),
                                          ("aux_loss_alpha", (0.01, 0.1)), ("softmax_auxiliary_loss", (False, True)),
                                          ("reward_clip", (1.0, 5.0))])
def test_two_configurations_of_a_losss_setting_are_said_and_keep_their_divergences(name, values):
    df = _two_configs(name, values)
    prep = prepare(df)
    # was: 16 "copies" dropped (the divergences of both configurations at one seed) and 62 "reruns", no word of name
    assert prep.n_left_out == 0 and prep.n_diverged == int(df["diverged"].sum()) == 32
    assert not any(w.startswith("repeated runs") for w in prep.warnings)
    assert any(f"differ in {name}" in w and _POOLED in w for w in prep.warnings)
    assert prep.groups[0].mixed == (name,)


def test_a_measurement_named_column_of_few_values_is_a_setting_of_the_runs():
    # "eval_reward" reads as a measurement, but 2 values repeated over every cell are a setting's: kept apart
    df = _two_configs("eval_reward", (0.0, 1.0))
    prep = prepare(df)
    assert prep.n_left_out == 0 and prep.n_diverged == 32
    assert any("differ in eval_reward" in w for w in prep.warnings)


def test_a_real_second_loss_is_still_no_setting_and_a_rerun_still_said():
    df = _sweep()
    again = df[(df["width"] == 128) & (df["seed"] == 0)].copy()
    again["final_loss"] += 0.01  # a relaunch of one width's seed 0
    df = pd.concat([df, again], ignore_index=True)
    df["train/loss"] = df["final_loss"] - 0.03 + np.random.default_rng(0).normal(0, 0.003, len(df))
    prep = prepare(df)
    assert not any(_POOLED in w for w in prep.warnings)
    assert sum(w.startswith("repeated runs (the same settings and seed") for w in prep.warnings) == 1


# --- 2. a step's name over text ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, values", [("update", ("adam", "lion")), ("checkpoint", ("ckpt_a", "ckpt_b")),
                                          ("it", ("a", "b")), ("update", (0.9, 0.99))])
def test_a_settings_text_under_a_steps_name_is_said_pooled(name, values):
    prep = prepare(_two_configs(name, values))
    assert any(f"differ in {name}" in w and _POOLED in w for w in prep.warnings)
    assert prep.groups[0].mixed == (name,)


def test_a_text_update_rule_keeps_a_two_step_history_apart_from_two_configurations():
    # the runs of two update rules, each logged at _step 1000 and 2000: two configurations' budgets, not refused
    # as one run's history (the text column is a setting that differs within each "run")
    df = _two_configs("update", ("adam", "lion"))
    df["_step"] = np.where(df["update"] == "adam", 1000, 2000)
    prep = prepare(df)
    assert any("differ in update" in w for w in prep.warnings)


def test_a_numeric_checkpoint_count_is_still_a_step_count():
    df = _sweep()
    df["checkpoint"] = 5000
    df.loc[[2, 3], "checkpoint"] = 3000  # two runs stopped early
    warnings = prepare(df).warnings
    assert any(w.startswith("2 run(s) stopped at a lower checkpoint") for w in warnings)
    assert not any(_POOLED in w for w in warnings)


# --- 3. a best-so-far column beside a loss with divergences as NaN -------------------------------------------------

def _nan_divergences() -> tuple[pd.DataFrame, pd.Series]:
    """No divergence column: NaN is a divergence. Returns the table and each curve's lowest diverged LR's rows (a run
    that diverged late, after its first eval)."""
    df = _sweep().drop(columns="diverged")
    df.loc[df["final_loss"] > 6, "final_loss"] = np.nan
    nan = df["final_loss"].isna()
    first = df[nan].groupby(["width", "seed"])["beta"].transform("min").reindex(df.index)
    late = nan & (df["beta"] == first) & (df["width"] == 64)
    assert nan.sum() == 16 and late.sum() == 2
    return df, late


@pytest.mark.parametrize("name", ["best_val_loss", "summary/min_val_loss", "val_loss_so_far"])
def test_a_best_so_far_loss_keeps_a_late_divergence_a_divergence(name):
    df, late = _nan_divergences()
    best = df["final_loss"] - 0.01
    best[late] = 5.0  # the best it reached before diverging: its first eval's
    df[name] = best
    prep = prepare(df)
    assert prep.n_diverged == 16 and prep.n_left_out == 0  # was 14 and 2
    assert not any("says trained" in w for w in prep.warnings)


def test_another_loss_finite_at_the_top_of_a_curve_names_the_runs_but_keeps_them_diverged():
    # a training loss's last value before a crash: finite where the run diverged at the top of its curve
    df, late = _nan_divergences()
    df["train/loss"] = df["final_loss"] - 0.03
    df.loc[late, "train/loss"] = 5.5
    prep = prepare(df)
    assert prep.n_diverged == 16 and prep.n_left_out == 0  # was 14 and 2: left out as "never logged"
    note = next(w for w in prep.warnings if "train/loss holds a value for" in w)
    rows = ", ".join(str(i) for i in np.flatnonzero(late))
    assert note.startswith("final_loss: 2 run(s)") and f"row(s) {rows}" in note and "count as diverged" in note


def test_a_missing_loss_between_trained_lrs_is_still_left_out():
    df, _ = _nan_divergences()
    df["train/loss"] = df["final_loss"] - 0.03
    hole = df.index[(df["width"] == 128) & df["final_loss"].notna()][8:10]  # between trained LRs of their curve
    df.loc[hole, "final_loss"] = np.nan
    prep = prepare(df)
    assert prep.n_left_out == 2 and prep.n_diverged == 16
    assert any("train/loss says trained" in w for w in prep.warnings)


# --- 5. a budget's 2 values under a step's name --------------------------------------------------------------------

@pytest.mark.parametrize("name, values", [("epoch", (1, 3)), ("checkpoint", (1000, 3000)), ("update", (500, 2000))])
def test_a_swept_budget_under_a_steps_name_is_fitted_with_both_readings_said(name, values):
    df = _two_configs(name, values)
    prep = prepare(df)  # was: TableError, "a history export ... keep the rows where epoch is 3"
    assert prep.n_left_out == 0 and prep.n_diverged == 32
    note = next(w for w in prep.warnings if f"differ in {name}" in w)
    assert "a budget setting swept at every point" in note and "a history export" in note
    assert "group_cols" in note and "covariates" in note
    assert prep.groups[0].mixed == (name,)
    assert not any("cut short" in w for w in prep.warnings)


def test_a_two_point_history_with_one_run_id_per_run_is_still_refused():
    df = _two_configs("epoch", (1, 3))
    df["Name"] = [f"run-{i}" for i in range(len(df) // 2)] * 2  # the same run at both epochs: one run logged twice
    with pytest.raises(TableError, match=r"epoch: the table holds each run at several steps \(2 values: 1, 3\)"):
        prepare(df)
    df["Name"] = [f"run-{i}" for i in range(len(df))]  # two runs per cell: a budget
    assert any("a budget setting swept at every point" in w for w in prepare(df).warnings)


def test_three_epochs_per_run_are_still_a_history():
    a = _sweep()
    df = pd.concat([a.assign(epoch=e, final_loss=a["final_loss"] + 0.1 * (3 - e)) for e in (1, 2, 3)],
                   ignore_index=True)
    with pytest.raises(TableError, match=r"epoch: the table holds each run at several steps \(3 values"):
        prepare(df)
