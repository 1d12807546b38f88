"""Session 63, a second code review of the table heuristics (tests/fitting/test_table_heuristics_s63.py), on a
sweep of known truth (``synthetic_sweep``: 3 widths x 13 LRs x 2 seeds):

4. a real metric of a few values (an accuracy rounded to 0.1, ``top1_acc``, a classifier at 100% or chance) was read
   as a setting, by its count of values alone: advice to group by it, and a rerun no longer named;
8. a numeric per-run ``checkpoint`` id (one per row, or an init checkpoint per seed) was read as a step count: runs
   said "stopped at a lower checkpoint ... cut short";
9. a 2-point ``epoch`` history with no run id, now fitted with both readings said, fails ``--strict`` (and REST
   ``strict``, the same gate): the runs pooled from two epochs make the prediction unreliable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from abcscale.cli import app
from abcscale.fitting import prepare
from abcscale.fitting.synthetic import synthetic_sweep

_POOLED = "averaged as if they were seeds"
_OWN_LRS = "each on its own learning rates"


def _sweep(seed: int = 1) -> pd.DataFrame:
    return synthetic_sweep(widths=(64, 128, 256), seeds=2, step=0.5, half_range=3.0, seed=seed)


def _coarse(d: pd.DataFrame) -> pd.Series:
    """An accuracy of a few values (rounded to 0.1): higher where the loss is lower."""
    return np.clip(np.round(1 - (d["final_loss"] - d["final_loss"].min()) / 4, 1), 0.1, 1.0)


# --- 4. a coarse metric is no setting ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["accuracy", "top1_acc", "val_acc", "test_accuracy"])
def test_a_coarse_metric_is_no_setting(name):
    df = _sweep()
    df[name] = _coarse(df)
    assert df[name].nunique() <= 8
    prep = prepare(df)
    # was: "at one width, accuracy take(s) several values, each on its own learning rates ... group_cols"
    assert not any(name in w for w in prep.warnings), prep.warnings
    assert prep.groups[0].mixed == ()


def test_a_saturated_classifier_is_no_setting():
    df = _sweep()
    df["val_acc"] = np.where(df["diverged"], 0.1, 1.0)  # 100% or chance
    assert not any("val_acc" in w for w in prepare(df).warnings)


def test_a_rerun_beside_a_coarse_metric_is_still_named():
    df = _sweep()
    again = df[(df["width"] == 128) & (df["seed"] == 0)].copy()
    again["final_loss"] += 0.01  # a relaunch of one width's seed 0
    df = pd.concat([df, again], ignore_index=True)
    df["accuracy"] = _coarse(df)
    df.loc[len(df) - len(again):, "accuracy"] = np.clip(df.loc[len(df) - len(again):, "accuracy"] - 0.1, 0.1, 1)
    warnings = prepare(df).warnings
    # was: "rows ... differ in accuracy ... averaged as if they were seeds. Name them as group columns", no rerun
    assert not any(_POOLED in w for w in warnings), warnings
    assert sum(w.startswith("repeated runs (the same settings and seed") for w in warnings) == 1


def test_a_coarse_metric_without_a_seed_column_is_no_setting():
    df = _sweep().drop(columns="seed")
    df["accuracy"] = _coarse(df)
    assert not any("accuracy" in w and (_OWN_LRS in w or _POOLED in w) for w in prepare(df).warnings)


def test_a_measurement_named_setting_the_same_at_every_lr_is_still_one():
    # two configurations, each constant along its curves: a setting, whatever its name (the first review's case)
    a = _sweep()
    df = pd.concat([a.assign(eval_reward=0.0), a.assign(eval_reward=1.0, final_loss=a["final_loss"] - 0.05)],
                   ignore_index=True)
    prep = prepare(df)
    assert any("differ in eval_reward" in w for w in prep.warnings)
    assert prep.groups[0].mixed == ("eval_reward",)


# --- 8. a numeric checkpoint id ------------------------------------------------------------------------------------

def test_a_numeric_checkpoint_id_per_run_is_no_step_count():
    df = _sweep()
    df["checkpoint"] = np.random.default_rng(0).permutation(len(df)) + 100_000
    warnings = prepare(df).warnings
    # was: "59 run(s) stopped at a lower checkpoint ... cut short" and "checkpoint differs between sizes"
    assert not any("checkpoint" in w for w in warnings), warnings


def test_an_init_checkpoint_id_per_seed_is_no_step_count():
    df = _sweep()
    df["ckpt"] = np.where(df["seed"] == 0, 11, 12)
    warnings = prepare(df).warnings
    assert not any("cut short" in w or "stopped at a lower" in w for w in warnings), warnings


def test_a_checkpoint_count_with_a_few_runs_stopped_early_is_still_said():
    df = _sweep()
    df["checkpoint"] = 5000
    df.loc[[2, 3], "checkpoint"] = 3000
    assert any(w.startswith("2 run(s) stopped at a lower checkpoint") for w in prepare(df).warnings)


# --- 9. a 2-point epoch history fails --strict ---------------------------------------------------------------------

def _two_epochs() -> pd.DataFrame:
    a = _sweep()
    lo = np.log2(a["beta"])
    e1 = a.assign(epoch=1, final_loss=a["final_loss"] + 0.3 - 0.05 * (lo - lo.min()))
    return pd.concat([e1, a.assign(epoch=2)], ignore_index=True)


def test_a_two_point_history_makes_the_prediction_unreliable():
    import abcscale
    from abcscale.usecases.fits import unreliable

    fit = abcscale.fit(_two_epochs(), target_width=512, n_boot=20)
    assert fit.groups[0].mixed_columns == ["epoch"]
    # REST `strict` refuses what this lists (service: `if options.strict and (bad := unreliable(fit))`)
    assert any("differ in epoch" in why for _, why in unreliable(fit))


def test_fit_strict_fails_on_a_two_point_history(tmp_path):
    table = tmp_path / "hist.csv"
    _two_epochs().to_csv(table, index=False)
    res = CliRunner().invoke(app, ["fit", str(table), "-q", "--n-boot", "20", "--target-width", "512", "--strict"])
    assert res.exit_code == 1, res.output
    assert any(line.startswith("--strict: unreliable: ") and "differ in epoch" in line
               for line in res.stderr.splitlines()), res.stderr
