"""Session 63: a review fed the fitter teams' real tables (wandb exports and histories, Optuna, Ray Tune, Hydra JSON
lines). Each finding on a table with a known truth (``_sweep``: LR* = 0.01 (w / 64)^-1, NaN past 2.5 octaves above):

1. a wandb ``run.history()`` export (each run at its own random steps) was fitted, every optimum low: refused now;
2. Optuna's PRUNED / FAIL / WAITING trials and Ray Tune's trials ASHA stopped (``training_iteration``) were fitted as
   finished runs: left out, or said cut short;
3. an empty loss cell between LRs at which its curve trained counted as a divergence, unsaid: a failed run's, or one
   another loss column says trained, is left out, named; any other is named;
4. a rerun under the same seed lost its warning beside a tracker's ``Runtime`` or another metric column;
5. a history whose step column is ``epoch``, ``tokens_seen``, ``it``, ... was fitted, not refused;
6. a tracker's version / job-type / GPU-type / commit columns made the prediction unreliable (``--strict`` exit 1);
7. another metric column (``train/loss``, Hydra's ``metrics``) was called a setting "averaged as if seeds";
8. Optuna's ``params_width`` "looks like parameter counts";
9. the JSON refusal told a JSON-lines user a pandas call that fails on it;
10. a width column's empty cells were said only once its text cell was fixed.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from abcscale.fitting import fit_table, prepare
from abcscale.fitting.reading import read_table
from abcscale.fitting.table import TableError, is_step_name
from abcscale.schemas.fit import ColumnMapping
from tests.fitting.test_review_s35 import _sweep


def _star(w: float) -> float:
    """The sweep's true optimum at width ``w`` (``_sweep``'s default exponent -1)."""
    return 0.01 * (w / 64) ** -1.0


def _octaves(w: float, lr: np.ndarray | pd.Series) -> np.ndarray:
    return np.log2(np.asarray(lr, dtype=float) / _star(w))


# --- 1. a history sampled at each run's own steps ------------------------------------------------------------------

def _sampled_history(seed: int = 0, per_run: int = 10) -> pd.DataFrame:
    """Each run at ``per_run`` steps of 0..1000 of its own (wandb's run.history() samples), loss falling to its end."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in _sweep(seeds=2).to_dict("records"):
        for s in np.sort(rng.choice(np.arange(0, 1001, 10), per_run, replace=False)):
            f = s / 1000
            rows.append({**r, "_step": int(s), "final_loss": r["final_loss"] + 3 * (1 - f) ** 2})
    return pd.DataFrame(rows)


def test_a_history_sampled_at_each_runs_own_steps_is_refused():
    df = _sampled_history()
    # no step set is shared by most runs: the shared-grid rule alone let it through (fitted, optima low)
    with pytest.raises(TableError, match=r"_step: the table holds each run at several steps of its own.*history "
                                         r"export.*keep one row per run"):
        prepare(df)


def test_runs_each_at_its_own_budget_and_a_few_cut_short_are_no_history():
    df = _sweep(seeds=2)
    rng = np.random.default_rng(1)
    df["_step"] = rng.integers(9_000, 10_000, len(df))  # a time budget: each run its own count, close together
    assert prepare(df).n_rows == len(df)
    seedless = _sweep(seeds=2).drop(columns="seed")
    seedless["_step"] = 2000
    seedless.loc[seedless.index[:6:2], "_step"] = 500  # three cells' first seed cut short: said, not a history
    assert any("cut short" in w for w in prepare(seedless).warnings)


# --- 2. an HPO tool's early-stopped and failed trials --------------------------------------------------------------

def _optuna(seed: int = 3) -> pd.DataFrame:
    """Optuna's trials_dataframe(): trials 0.9-3 octaves below LR* pruned early, their value an intermediate loss
    (higher the lower the LR, as MedianPruner stops them); a diverged trial FAIL with NaN."""
    rng = np.random.default_rng(seed)
    df = _sweep(seeds=2).rename(columns={"width": "params_width", "beta": "params_lr", "final_loss": "value",
                                         "seed": "user_attrs_seed"})
    d = _octaves(1, df["params_lr"] * df["params_width"])  # octaves off LR* (LR* w is constant)
    df["state"] = "COMPLETE"
    pruned = (d <= -0.9) & (d >= -3) & (rng.random(len(df)) < 0.8)
    df.loc[pruned, "state"] = "PRUNED"
    df.loc[pruned, "value"] = df.loc[pruned, "value"] + 0.6 * -d[pruned]
    df.loc[df["value"].isna(), "state"] = "FAIL"
    df["number"] = np.arange(len(df))
    return df


_OPTUNA = ColumnMapping(size_col="params_width", lr_col="params_lr", loss_col="value", seed_col="user_attrs_seed")


def test_optunas_pruned_trials_are_left_out_named():
    df = _optuna()
    pruned = int((df["state"] == "PRUNED").sum())
    assert pruned > 20
    prep = prepare(df, _OPTUNA)
    assert prep.n_left_out == pruned
    note = next(w for w in prep.warnings if w.startswith("state:"))
    assert f"{pruned} run(s) pruned left out of the fit" in note
    # the FAIL trials (NaN) are the sweep's divergences, as before
    assert prep.n_diverged == int((df["state"] == "FAIL").sum())


def test_optunas_pruned_trials_are_fitted_as_if_dropped_by_hand():
    df = _optuna()
    got = fit_table(df, _OPTUNA, n_boot=30, target_width=4096).groups[0]
    by_hand = fit_table(df[df["state"] != "PRUNED"], _OPTUNA, n_boot=30, target_width=4096).groups[0]
    per = {p.width: p.lr_opt for p in got.per_width}
    assert per == {p.width: p.lr_opt for p in by_hand.per_width} and len(per) == 5
    assert got.prediction is not None and by_hand.prediction is not None
    assert got.prediction.lr == by_hand.prediction.lr
    # and each width's optimum is the truth's, within 0.15 octave
    assert max(abs(float(_octaves(w, lr))) for w, lr in per.items() if lr is not None) < 0.15


@pytest.mark.parametrize("state", ["FAIL", "WAITING", "PAUSED", "Pruned"])
def test_other_unfinished_states_of_hpo_tools_are_left_out(state):
    df = _optuna()
    df["state"] = "COMPLETE"
    rows = df.index[df["value"].notna()][[3, 40, 77]]
    df.loc[rows, "state"] = state
    prep = prepare(df, _OPTUNA)
    assert prep.n_left_out == 3
    assert any(w.startswith("state: 3 run(s)") and state.lower() in w for w in prep.warnings)


def _raytune() -> pd.DataFrame:
    """Ray Tune's ResultGrid.get_dataframe(): most trials below LR* stopped by ASHA at iteration 10 or 30 of 100."""
    rng = np.random.default_rng(9)
    df = _sweep(seeds=2).rename(columns={"width": "config/width", "beta": "config/lr", "seed": "config/seed",
                                         "final_loss": "loss"})
    d = _octaves(1, df["config/lr"] * df["config/width"])
    it = np.full(len(df), 100)
    stopped = df["loss"].notna().to_numpy() & (d < -1) & (rng.random(len(df)) < 0.8)
    it[stopped] = rng.choice([10, 30], int(stopped.sum()))
    df.loc[stopped, "loss"] = df.loc[stopped, "loss"] + 0.6 * -d[stopped] * (100 - it[stopped]) / 90
    return df.assign(training_iteration=it, iterations_since_restore=it, done=it == 100, time_total_s=it * 1.2,
                     time_since_restore=it * 1.2, pid=1000 + np.arange(len(df)), trial_id=[f"{i:05d}" for i in
                                                                                            range(len(df))])


_RAY = ColumnMapping(size_col="config/width", lr_col="config/lr", loss_col="loss", seed_col="config/seed")


def test_ray_tunes_stopped_trials_are_said_cut_short_once_and_dropped_on_request():
    df = _raytune()
    stopped = int((df["training_iteration"] < 100).sum())
    warnings = prepare(df, _RAY).warnings
    short = [w for w in warnings if "cut short" in w and "stopped at a lower" in w]
    # training_iteration is a step count; iterations_since_restore, the same numbers, is not said again
    assert len(short) == 1 and short[0].startswith(f"{stopped} run(s) stopped at a lower training_iteration")
    # Ray's bookkeeping (done, time_total_s, pid) is no setting "averaged as if they were seeds"
    assert not any("averaged as if they were seeds" in w for w in warnings)
    assert prepare(df, _RAY, drop_cut_short=True).n_left_out == stopped


# --- 3. an empty loss cell between LRs at which its curve trained --------------------------------------------------

def _hole(df: pd.DataFrame, width: int = 512, octaves: float = 0.5) -> pd.Index:
    """The rows (both seeds) about ``octaves`` above width's LR*, where runs of its curve train at larger LRs."""
    d = _octaves(width, df["beta"])
    return df.index[(df["width"] == width) & (np.abs(d - octaves) < 0.26)]


def test_a_failed_runs_missing_loss_between_trained_lrs_is_left_out_not_a_divergence():
    df = _sweep(seeds=2).assign(State="finished")
    clean = prepare(df)
    hole = _hole(df)[:1]
    df.loc[hole, ["final_loss", "State"]] = [np.nan, "failed"]
    prep = prepare(df)
    # counted as a divergence, it lowered the width's "max stable" and the stability edge, unsaid (a review)
    assert prep.n_diverged == clean.n_diverged and prep.n_left_out == 1
    note = next(w for w in prep.warnings if w.startswith("State: 1 run(s) failed without a loss"))
    assert f"row(s) {hole[0]}" in note and "not counted as diverged" in note


def test_a_failed_run_at_the_top_of_its_curve_stays_a_divergence():
    # a run whose NaN raised (wandb: failed) where runs diverge: a divergence, as before
    df = _sweep(seeds=2).assign(State="finished")
    df.loc[df["final_loss"].isna(), "State"] = "failed"
    prep = prepare(df)
    assert prep.n_diverged == int(df["final_loss"].isna().sum()) and prep.n_left_out == 0


def test_two_configurations_fitted_as_one_keep_their_divergences():
    # one family diverges where the other trains, half the runs there: no run is between trained LRs of its own
    from tests.fitting.test_review_s35 import _families

    df = _families()
    df.loc[df["final_loss"].isna(), "state"] = "crashed"
    prep = prepare(df)
    assert prep.n_left_out == 0 and prep.n_diverged == int(df["final_loss"].isna().sum())
    assert not any("sit below learning rates" in w for w in prep.warnings)


def test_a_missing_eval_loss_another_loss_says_trained_is_left_out_named():
    df = _sweep(seeds=2).rename(columns={"final_loss": "val/loss"})
    df["train/loss"] = df["val/loss"] - 0.03  # NaN exactly where val/loss diverged
    clean = prepare(df, ColumnMapping(loss_col="val/loss"))
    hole = _hole(df)
    df.loc[hole, "val/loss"] = np.nan  # an eval never logged
    prep = prepare(df, ColumnMapping(loss_col="val/loss"))
    assert prep.n_diverged == clean.n_diverged and prep.n_left_out == len(hole) == 2
    note = next(w for w in prep.warnings if "train/loss says trained" in w)
    assert f"row(s) {hole[0]}, {hole[1]}" in note


def test_a_best_so_far_column_says_nothing_of_a_missing_loss():
    # summary/best_val_loss stays finite where runs diverged: its finite value does not say a run trained
    df = _sweep(seeds=2).rename(columns={"final_loss": "val/loss"})
    df["summary/best_val_loss"] = df["val/loss"].fillna(9.0)
    hole = _hole(df)
    df.loc[hole, "val/loss"] = np.nan
    prep = prepare(df, ColumnMapping(loss_col="val/loss"))
    assert prep.n_left_out == 0 and not any("says trained" in w for w in prep.warnings)


def test_any_other_missing_loss_between_trained_lrs_is_named():
    df = _sweep(seeds=2).assign(State="finished")
    hole = _hole(df)
    df.loc[hole, "final_loss"] = np.nan
    prep = prepare(df)
    note = next(w for w in prep.warnings if "sit below learning rates at which their curve's runs trained" in w)
    assert note.startswith("2 run(s)") and f"row(s) {hole[0]}, {hole[1]}" in note
    # the sweep's own divergences, at the top of each curve, are not named so
    assert not any("sit below learning rates" in w for w in prepare(_sweep(seeds=2)).warnings)


# --- 4. reruns under the same seed beside a tracker's columns ------------------------------------------------------

def _reruns() -> tuple[pd.DataFrame, int]:
    """Width 256's seed-1 runs ran again, with another loss (a sweep relaunched)."""
    df = _sweep(seeds=2)
    again = df[(df["width"] == 256) & (df["seed"] == 1) & df["final_loss"].notna()].copy()
    again["final_loss"] *= 1.001
    return pd.concat([df, again], ignore_index=True), len(again)


@pytest.mark.parametrize("extra", ["Runtime", "train/loss", "Name+copy"])
def test_a_rerun_is_said_whatever_bookkeeping_or_metric_rides_along(extra):
    df, n = _reruns()
    rng = np.random.default_rng(4)
    if extra == "Runtime":
        df["Runtime"] = rng.integers(300, 4000, len(df))  # whole seconds: values repeat by chance
    elif extra == "train/loss":
        df["train/loss"] = df["final_loss"] - 0.03 + rng.normal(0, 0.002, len(df))  # NaN at every divergence
    else:  # a run's name, unique but in one exact copy of a row (an export written twice)
        df["Name"] = [f"run-{i}" for i in range(len(df))]
        df = pd.concat([df, df.iloc[[0]]], ignore_index=True)
    notes = [w for w in prepare(df).warnings if w.startswith("repeated runs (the same settings and seed")]
    assert len(notes) == 1 and f"{n} row(s)" in notes[0]


# --- 5. a history under other names of its step counter ------------------------------------------------------------

def _history(name: str) -> pd.DataFrame:
    """Each run at the same 6 logged points, named ``name``."""
    df = _sweep(seeds=2)
    rows = [{**r, name: k * 100, "final_loss": r["final_loss"] + 0.5 * (5 - k)}
            for r in df.to_dict("records") for k in range(6)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("name", ["epoch", "tokens_seen", "num_tokens", "samples", "it", "update", "checkpoint",
                                  "training_iteration"])
def test_a_history_under_another_counters_name_is_refused(name):
    with pytest.raises(TableError, match=rf"{name}: the table holds each run at several steps.*history export"):
        prepare(_history(name))


def test_a_budget_named_like_progress_is_no_history():
    # one num_tokens per width (a compute-optimal plan): a budget, said as one, not a history
    df = _sweep(seeds=2)
    df["num_tokens"] = df["width"] * 1_000_000
    prep = prepare(df)
    assert any(w.startswith("num_tokens changes with width") for w in prep.warnings)


def test_a_counter_no_rule_knows_gets_the_history_hint():
    df = _history("progress")  # a name no rule knows: fitted, but the pooled warning says what it may be
    note = next(w for w in prepare(df).warnings if "averaged as if they were seeds" in w)
    assert "if progress counts each run's progress" in note and "keep one row per run" in note
    batch = _sweep(seeds=2)
    batch["batch_size"] = np.resize([32, 64, 64, 32], len(batch))  # a setting: no such hint
    note = next(w for w in prepare(batch).warnings if "averaged as if they were seeds" in w)
    assert "counts each run's progress" not in note


# --- 6 and 7. a tracker's bookkeeping and other metrics are no settings --------------------------------------------

@pytest.mark.parametrize("col, values", [("wandb_version", ["0.19.1", "0.19.4"]),
                                         ("Python Version", ["3.11.7", "3.11.9"]), ("Job Type", ["train", "training"]),
                                         ("GPU Type", ["A100", "H100"]), ("Commit", ["a1b2c3d", "e4f5a6b"]),
                                         ("tags.mlflow.source.git.commit", ["a1b2c3d", "e4f5a6b"])])
def test_a_trackers_environment_columns_are_no_configurations(col, values):
    df = _sweep(seeds=2)
    df[col] = np.resize([*values, *values[::-1]], len(df))  # the two seeds of every cell differ, neither seed's own
    prep = prepare(df)
    assert prep.groups[0].mixed == ()  # was: "two or more configurations fitted as one", --strict exit 1
    assert not any("averaged as if they were seeds" in w for w in prep.warnings)


def test_a_configuration_label_is_still_a_setting():
    # wandb's Group may be a team's own label of its configurations: read as a setting, as a batch size is
    df = _sweep(seeds=2)
    df["Group"] = np.resize(["mup-a", "mup-b", "mup-b", "mup-a"], len(df))
    prep = prepare(df)
    assert prep.groups[0].mixed == ("Group",)
    assert any("differ in Group" in w for w in prep.warnings)


def test_other_metric_columns_are_not_called_settings():
    df = _sweep(seeds=2).rename(columns={"final_loss": "val/loss"})
    rng = np.random.default_rng(2)
    df["train/loss"] = (df["val/loss"] - 0.03 + rng.normal(0, 0.002, len(df))).round(3)  # rounded: values repeat
    df["summary/best_val_loss"] = df["val/loss"].fillna(9.0)
    df["metrics"] = [json.dumps({"val_loss": None if np.isnan(x) else round(x, 2)}) for x in df["val/loss"]]
    df = pd.concat([df, df.iloc[[5]]], ignore_index=True)  # one exact copy of a row
    warnings = prepare(df, ColumnMapping(loss_col="val/loss")).warnings
    assert not any("averaged as if they were seeds" in w for w in warnings)


@pytest.mark.parametrize("name, measured", [("train/loss", True), ("summary/best_val_loss", True), ("val_acc", True),
                                            ("metrics", True), ("evalLoss", True), ("loss_type", False),
                                            ("loss_scale", False), ("batch_size", False), ("lr", False),
                                            # a loss's settings (a code review: pooled, their divergences dropped)
                                            ("z_loss", False), ("use_z_loss", False), ("aux_loss_alpha", False)])
def test_measurement_names(name, measured):
    from abcscale.fitting.table import is_measurement_name  # new in session 63

    assert is_measurement_name(name) is measured


def test_tracker_and_step_names():
    from abcscale.fitting.table import is_tracker_column  # new in session 63

    assert all(is_tracker_column(c) for c in ("wandb_version", "Job Type", "GPU Type", "Commit", "done", "pid"))
    assert not any(is_tracker_column(c) for c in ("Group", "GPU Count", "Tags", "batch_size"))
    assert all(is_step_name(c) for c in ("epoch", "training_iteration", "iterations_since_restore", "it"))
    assert not any(is_step_name(c) for c in ("epochs", "num_tokens", "steps", "warmup_step"))


# --- 8. Optuna's params_width --------------------------------------------------------------------------------------

def test_params_width_is_not_said_to_count_parameters():
    df = _sweep(seeds=1).rename(columns={"width": "params_width"})
    assert not any("parameter counts" in w for w in prepare(df, ColumnMapping(size_col="params_width")).warnings)
    # a column named for parameters still is
    df = _sweep(seeds=1).rename(columns={"width": "n_params"})
    assert any("looks like parameter counts" in w for w in prepare(df, ColumnMapping(size_col="n_params")).warnings)


# --- 9. a JSON-lines file ------------------------------------------------------------------------------------------

def test_a_json_lines_file_is_told_lines_true():
    rows = _sweep(seeds=1).head(5).to_dict("records")
    jsonl = "\n".join(json.dumps(r) for r in rows).encode()
    with pytest.raises(TableError, match=r"looks like JSON lines.*pd\.read_json\(path, lines=True\)"):
        read_table(jsonl, name="multirun.jsonl")
    # the advice works on it
    import io
    assert len(pd.read_json(io.BytesIO(jsonl), lines=True)) == 5
    with pytest.raises(TableError, match=r"looks like JSON;.*pd\.read_json\(path\)\.to_csv") as err:
        read_table(json.dumps(rows).encode(), name="rows.json")
    assert "lines=True" not in str(err.value)


# --- 10. a column's problems at once -------------------------------------------------------------------------------

def test_a_width_columns_empty_and_text_cells_are_said_at_once():
    df = _sweep(seeds=1).astype({"width": object})
    df.loc[[3, 50], "width"] = None
    df.loc[100, "width"] = "gpt-small"
    with pytest.raises(TableError) as err:
        prepare(df)
    problems = [p for p in err.value.problems if p.startswith("width:")]
    assert any("not a number in row(s) 100" in p for p in problems)
    assert any("NaN width in row(s) 3, 50" in p for p in problems)
