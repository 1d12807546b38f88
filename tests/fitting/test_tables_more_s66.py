"""Session 66's review of team tables, findings 6 and 9-12: wandb's own export snippet (a dict per run in its config
and summary columns), a best-so-far loss named as the loss, failed runs that died before their config was logged,
the missing-column hints (an LR found inside eval_runtime, a column of zeros, a parameter count written 124M), and a
table of two budgets at every width read as runs cut short. Each was refused without its reason, fitted with
nothing said, or said as another problem."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.fitting.table import UNRELIABLE, TableError, prepare
from abcscale.fitting.table._names import _lr_named
from abcscale.schemas.fit import ColumnMapping


def _warnings(df: pd.DataFrame, **mapping) -> list[str]:
    return list(prepare(df, ColumnMapping(**mapping)).warnings)


def _with(warnings: list[str], text: str) -> list[str]:
    return [w for w in warnings if text in w]


def _refusal(df: pd.DataFrame, **mapping) -> list[str]:
    with pytest.raises(TableError) as err:
        prepare(df, ColumnMapping(**mapping))
    return err.value.problems


# --- 6. wandb's export snippet: a dict per run in config and summary --------------------------------------------


def _wandb_docs_frame() -> pd.DataFrame:
    """``pd.DataFrame({"summary": summary_list, "config": config_list, "name": name_list})`` as wandb's "Export
    data" page builds it: one dict per run in each of config and summary (a diverged run's loss nan)."""
    df = synthetic_sweep(widths=(64, 128, 256), seeds=1)
    summary = [{"_step": 2000, "val/loss": float(x), "_runtime": 300.0} for x in df["final_loss"]]
    config = [{"lr": float(b), "d_model": int(w), "seed": int(s), "optimizer": "adamw"}
              for b, w, s in zip(df["beta"], df["width"], df["seed"], strict=True)]
    return pd.DataFrame({"summary": summary, "config": config, "name": [f"run-{i}" for i in range(len(df))]})


WANDB_NAMES = {"size_col": "config.d_model", "lr_col": "config.lr", "loss_col": "summary.val/loss"}


def test_dict_columns_of_a_csv_say_nested_values_and_the_flattening_recipe():
    text = _wandb_docs_frame().to_csv()  # as the docs write it: each dict as its Python text, the index kept
    df = pd.read_csv(io.StringIO(text))
    assert df["summary"].str.contains("nan").any()  # a diverged run's repr: no JSON, still read
    problems = _refusal(df, **WANDB_NAMES)
    assert len(problems) == 1, problems
    said = problems[0]
    assert said.startswith("config.d_model, config.lr, summary.val/loss: missing columns (the `size_col`, `lr_col`, "
                           "`loss_col` columns); the table's config and summary columns hold nested values"), said
    assert "wandb's export snippet" in said and "d_model, lr, val/loss among their keys" in said
    assert ('pd.json_normalize(df["config"].tolist()).add_prefix("config."), '
            'pd.json_normalize(df["summary"].tolist()).add_prefix("summary.")') in said
    assert "before to_csv writes each dict as its text" in said
    assert said.endswith("columns are: Unnamed: 0, config, name, summary")


def test_dict_cells_as_a_parquet_reads_them_and_the_recipe_works():
    df = _wandb_docs_frame()  # dict cells, as pd.read_parquet gives a struct column
    (said,) = _refusal(df, **WANDB_NAMES)
    assert "hold nested values" in said and "flatten them into columns of their own first (pandas:" in said
    assert "to_csv" not in said
    # the recipe as the message gives it fits
    flat = pd.concat([df.drop(columns=["config", "summary"]),
                      pd.json_normalize(df["config"].tolist()).add_prefix("config."),
                      pd.json_normalize(df["summary"].tolist()).add_prefix("summary.")], axis=1)
    assert prepare(flat, ColumnMapping(**WANDB_NAMES, seed_col="config.seed")).n_rows == len(df)


def test_a_key_no_dict_holds_keeps_the_plain_missing_column():
    df = _wandb_docs_frame()
    problems = _refusal(df, size_col="config.d_modle", lr_col="config.lr", loss_col="summary.val/loss")
    assert problems[0].startswith("config.lr, summary.val/loss: missing columns") and "nested" in problems[0]
    assert problems[1].startswith("config.d_modle: missing column (the `size_col` column)")
    assert "nested" not in problems[1] and problems[1].endswith("columns are: config, name, summary")
    # a bare key in a dict column is said too
    (said,) = _refusal(df, size_col="d_model", lr_col="config.lr", loss_col="summary.val/loss")
    assert said.startswith("d_model, config.lr, summary.val/loss: missing columns")


def test_dict_columns_on_the_cli(tmp_path):
    from typer.testing import CliRunner

    from abcscale.cli import app

    path = tmp_path / "project.csv"
    _wandb_docs_frame().to_csv(path)
    res = CliRunner().invoke(app, ["fit", str(path), "--size-col", "config.d_model", "--lr-col", "config.lr",
                                   "--loss-col", "summary.val/loss"])
    out = " ".join(res.output.split())
    assert res.exit_code == 2, res.output
    assert "(the --size-col, --lr-col, --loss-col columns)" in out and "pd.json_normalize" in out


# --- 9. a best-so-far loss named as the loss ---------------------------------------------------------------------


def _best_so_far_table() -> pd.DataFrame:
    """A table whose best_val_loss keeps a diverged run's finite loss from before it blew up; no divergence column."""
    df = synthetic_sweep(seed=2).drop(columns=["diverged"]).rename(columns={"final_loss": "val_loss"})
    best = df.groupby("width")["val_loss"].transform("min")
    return df.assign(best_val_loss=df["val_loss"].fillna(best + 0.2), train_loss=df["val_loss"] + 0.01,
                     parameterization="mup", optimizer="adam", lr_mode="global")


def test_a_best_so_far_loss_is_said_with_the_final_loss_to_fit():
    df = _best_so_far_table()
    said = _with(_warnings(df, loss_col="best_val_loss"), "best-so-far")
    assert len(said) == 1, said
    assert said[0].startswith("best_val_loss: a best-so-far loss, by its name: a run that diverged keeps the finite "
                              "loss it had before it blew up"), said
    assert '"max stable" and the stability edge read diverged runs as stable' in said[0]
    assert "fit the runs' final loss instead (`loss_col` val_loss; or train_loss)" in said[0]
    assert not said[0].startswith(UNRELIABLE)


def test_a_final_loss_or_a_divergence_column_says_nothing_of_it():
    df = _best_so_far_table()
    assert not _with(_warnings(df, loss_col="val_loss"), "best-so-far")
    flagged = df.assign(diverged=df["val_loss"].isna())
    assert not _with(_warnings(flagged, loss_col="best_val_loss"), "best-so-far")


# --- 10. failed runs without their setup -------------------------------------------------------------------------


def _failed_empty() -> tuple[pd.DataFrame, list[int]]:
    """A wandb runs export whose failed runs died before wandb.config was filled: size, LR, seed, optimizer empty."""
    df = synthetic_sweep(seed=3).drop(columns=["diverged"]).assign(State="finished", optimizer="adam",
                                                                   parameterization="mup", lr_mode="global")
    rows = [7, 40, 101]
    df["State"] = df["State"].astype(object)
    df.loc[rows, "State"] = "failed"
    df.loc[rows, ["width", "beta", "seed", "optimizer", "final_loss"]] = np.nan
    return df, rows


def test_failed_runs_without_their_setup_are_left_out_and_named():
    df, rows = _failed_empty()
    prep = prepare(df)
    (said,) = _with(list(prep.warnings), "without their setup")
    assert said == ("State: 3 run(s) failed without their setup (width, beta, seed, optimizer empty) left out of "
                    "the fit (a run that ended before its config was logged): row(s) 7, 40, 101. To fit them, fill "
                    "those cells in"), said
    assert prep.n_rows == len(df) and prep.n_left_out == 3
    kept = prepare(df.drop(index=rows).reset_index(drop=True))
    assert [w.x.tolist() for g in prep.groups for w in g.widths] == \
        [w.x.tolist() for g in kept.groups for w in g.widths]


def test_later_notes_count_rows_as_given_and_crashed_runs_with_a_loss_stay_said():
    df, _ = _failed_empty()
    row = int(df.index[df["final_loss"].notna()][120])
    df.loc[row, "State"] = "crashed"  # trained, a loss: left out as before, named by its row in the table given
    (said,) = _with(_warnings(df), "crashed")
    assert said.startswith("State: 1 run(s) crashed left out of the fit") and f"row(s) {row}." in said, said


def test_empty_setup_cells_at_runs_not_marked_failed_stay_an_error():
    df, rows = _failed_empty()
    df.loc[rows, "State"] = "finished"
    problems = _refusal(df)
    assert any(p.startswith("width: NaN width in row(s) 7, 40, 101") for p in problems), problems
    # a failed run whose setup is filled in is no such run: a NaN there stays a divergence, as before
    df, rows = _failed_empty()
    df.loc[rows, ["width", "beta", "seed", "optimizer"]] = [[64, 0.01, 0, "adam"]] * 3
    assert not _with(_warnings(df), "without their setup")


# --- 11. the missing-column hints --------------------------------------------------------------------------------


def test_the_lr_hint_reads_name_words_not_letters_inside_them():
    assert not _lr_named("eval_runtime") and not _lr_named("evalRuntime")
    assert all(_lr_named(c) for c in ("lr", "train/lr", "config_learning_rate", "learningRate", "peak_lr", "maxLR",
                                      "lr0", "LR"))
    df = synthetic_sweep(seed=1).rename(columns={"width": "hidden_size", "beta": "config_learning_rate",
                                                 "final_loss": "eval_loss"})
    df = df.assign(learning_rate=df["config_learning_rate"] / 90, eval_runtime=10.0)
    problems = _refusal(df)
    (lr,) = [p for p in problems if p.startswith("beta:")]
    assert "config_learning_rate, learning_rate look like it" in lr and "eval_runtime" not in lr.split(";")[1], lr


def test_a_column_of_zeros_is_not_suggested():
    df = synthetic_sweep(seed=1).rename(columns={"beta": "lr", "width": "d_model", "final_loss": "val/loss"})
    df = df.assign(**{"train/lr": 0.0})
    (lr,) = [p for p in _refusal(df) if p.startswith("beta:")]
    assert "; lr looks like it: name it with `lr_col`" in lr, lr


def test_a_parameter_count_with_a_suffix_says_the_number_to_write():
    df = synthetic_sweep(seed=1)
    df = df.assign(n_params=df["width"].map({64: "124M", 128: "350M", 256: "1.3B", 512: "2.7B", 1024: "6.7B"}))
    (said,) = _refusal(df, size_col="n_params")
    assert said.endswith("(the first: '124M') (a parameter count with a suffix? write it as a number: 124e6, not "
                         "124M)"), said


# --- 12. two budgets at every width ------------------------------------------------------------------------------


def _two_budgets(drop: tuple[tuple[int, int, int], ...] = ((256, 8000, 0),)) -> pd.DataFrame:
    """iters 2000 and 8000 at every width (a whole curve each, the shorter budget's loss higher), one seed; ``drop``
    removes the run at (width, iters, grid index): at a tie a size's usual count is the larger, 8000, and 2000 at
    width 256, where a run of 8000 is missing."""
    rng = np.random.default_rng(5)
    rows = []
    grid = np.arange(-14, -5.4, 0.5)
    for iters, shift in ((2000, 0.1), (8000, 0.0)):
        for w in (128, 256, 512, 1024):
            for i, x in enumerate(grid):
                if (w, iters, i) in drop:
                    continue
                d = x - (np.log2(3e-3 * 128 / w) + shift)
                loss = np.nan if d > 2.2 else 2.6 + 6.0 * w ** -0.5 + 0.03 * d * d + rng.normal(0, 0.004) \
                    + (0.2 if iters == 2000 else 0.0)
                rows.append({"width": w, "lr": 2.0 ** x, "seed": 0, "val_loss": loss, "iter": iters,
                             "max_iters": iters, "parameterization": "mup", "optimizer": "adam",
                             "lr_mode": "global"})
    return pd.DataFrame(rows)


def test_two_budgets_at_every_width_are_no_runs_cut_short():
    df = _two_budgets()
    said = _warnings(df, lr_col="lr", loss_col="val_loss")
    assert not _with(said, "stopped at a lower iter"), said
    assert not _with(said, "iter differs between sizes"), said
    # the mix itself is still said, and marks the prediction unreliable
    assert _with(said, "differ in max_iters") and _with(said, "averaged as if they were seeds")
    assert prepare(df, ColumnMapping(lr_col="lr", loss_col="val_loss"), drop_cut_short=True).n_left_out == 0


def test_runs_cut_short_beside_two_budgets_or_alone_are_still_said():
    df = _two_budgets()
    cut = df.index[(df["width"] == 512) & (df["iter"] == 8000)][6:8]
    df.loc[cut, "iter"] = 5100  # a timeout: a count of its own, at two runs of one width
    (said,) = _with(_warnings(df, lr_col="lr", loss_col="val_loss"), "stopped at a lower iter")
    # short of the budget above them, whichever count is the width's most common
    assert said.startswith("2 run(s) stopped at a lower iter than the other runs of their curve (e.g. 5100 of 8000)"), \
        said
    # one budget, a few runs cut short: as before
    one = _two_budgets()
    one = one[one["iter"] == 8000].reset_index(drop=True)
    short = one.index[one["width"] == 256][5:8]
    one.loc[short, "iter"] = 2000
    (said,) = _with(_warnings(one, lr_col="lr", loss_col="val_loss"), "stopped at a lower iter")
    assert said.startswith("3 run(s) stopped at a lower iter than the other runs of their curve (e.g. 2000 of 8000)")
