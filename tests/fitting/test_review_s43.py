"""Session 43, from the last sessions' "noticed and left": a whole size trained to fewer steps (the within-curve
check cannot see it), runs without a step count, `--drop-cut-short` on a table without a step column (it said
nothing), a loss law over a step axis called "tokens", and `check --strict --json` saying its reason twice."""

from __future__ import annotations

import numpy as np

from abcscale.fitting import fit_table, prepare
from abcscale.schemas.fit import ColumnMapping
from tests.cli.test_ci_review_s42 import _passing_config, two_widths  # noqa: F401 (a fixture)
from tests.fitting.covariate_sweeps import covariate_sweep
from tests.fitting.test_review_s35 import _sweep
from tests.usecases.test_check_service import run_check


def _widest_short(steps: int = 700):
    df = _sweep(seeds=1)
    df["_step"] = 2000
    df.loc[df["width"] == df["width"].max(), "_step"] = steps
    return df


def test_a_whole_size_with_fewer_steps_is_said_with_its_numbers():
    df = _widest_short()
    (note,) = [w for w in prepare(df).warnings if "differs between sizes" in w]
    assert note.startswith("_step differs between sizes (width 64: 2000, 128: 2000, 256: 2000, 512: 2000, 1024: 700 "
                           "(1 of 5 below 2000))"), note
    # what it can be, and that --drop-cut-short (runs within a curve) does not leave it out
    assert "cut short" in note and "`covariates`" in note and "`drop_cut_short`" in note and "does not" in note
    kept = prepare(df, drop_cut_short=True)
    assert kept.n_left_out == 0 and any("differs between sizes" in w for w in kept.warnings)
    # no note when every size trained alike, nor for the within-curve check's case
    same = _widest_short(2000)
    assert not any("differs between sizes" in w for w in prepare(same).warnings)


def test_groups_are_named_only_when_there_are_several():
    df = _widest_short()
    other = df.assign(lr_mode="per_layer")
    other["_step"] = 2000  # this group's sizes trained alike
    (note,) = [w for w in prepare(pd_concat(df, other)).warnings if "differs between sizes" in w]
    assert "lr_mode=global: width 64: 2000" in note and "per_layer" not in note, note
    (note,) = [w for w in prepare(df).warnings if "differs between sizes" in w]
    assert "lr_mode=" not in note


def pd_concat(*frames):
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


def test_runs_without_a_step_count_are_named():
    df = _sweep(seeds=1)
    df["_step"] = 2000.0
    df.loc[[3, 4], "_step"] = np.nan
    (note,) = [w for w in prepare(df).warnings if "have no _step" in w]
    assert note.startswith("2 run(s) have no _step") and note.endswith("row(s) 3, 4"), note
    df["_step"] = df["_step"].astype(object)
    df.loc[3, "_step"], df.loc[4, "_step"] = "done", 2000
    (note,) = [w for w in prepare(df).warnings if "have no _step" in w]
    assert note.startswith("1 run(s)") and note.endswith("row(s) 3"), note
    df.loc[3, "_step"] = 2000
    assert not any("have no _step" in w for w in prepare(df).warnings)


def test_drop_cut_short_without_a_step_column_says_so():
    df = _sweep(seeds=1)
    (note,) = [w for w in prepare(df, drop_cut_short=True).warnings if "drop_cut_short" in w]
    assert "no step column" in note and "none was left out" in note, note
    assert not any("no step column" in w for w in prepare(df).warnings)
    # a step column that is a covariate is no step column for this check
    covs = covariate_sweep(batches=(32,)).rename(columns={"D": "_step"})
    mapped = ColumnMapping(size_col="N", covariates=["_step"])
    assert any("no step column" in w for w in prepare(covs, mapped, drop_cut_short=True).warnings)


def test_a_loss_law_over_steps_calls_its_axis_by_its_name():
    df = covariate_sweep(tokens=(1e8, 4e8), batches=(32,)).rename(columns={"D": "_step"})
    fit = fit_table(df, ColumnMapping(size_col="N", covariates=["_step"]), n_boot=50)
    notes = " ".join(n for law in fit.joint or [] for n in law.notes)
    assert "L(N, _step) not identified (_step: 2 distinct value(s)" in notes, notes
    assert "tokens" not in notes


def test_check_strict_json_says_the_unreliable_reason_once(tmp_path, two_widths):  # noqa: F811
    fit, path = two_widths
    code, report = run_check(tmp_path, _passing_config(fit), "--fit", str(path), "--strict")
    assert code == 1 and any(f.startswith("unreliable prediction:") for f in report["failed"]), report
    assert not any(w.startswith("unreliable:") for w in report["warnings"]), report["warnings"]
    # without --strict the reason stays a warning
    code, report = run_check(tmp_path, _passing_config(fit), "--fit", str(path))
    assert code == 0 and any(w.startswith("unreliable:") for w in report["warnings"]), report["warnings"]


def test_a_loss_far_beyond_every_other_is_refused_naming_its_row(tmp_path):
    """A user review: one 1e308 among losses near 3 was fitted (named only as a broken seed), its square
    overflowed, the width's `noise_sd` came out exactly 0 and numpy's overflow warnings went to stderr."""
    import warnings

    import pytest
    from typer.testing import CliRunner

    from abcscale.cli import app
    from abcscale.fitting.table import TableError

    df = _sweep(seeds=2)
    row = int(df.index[(df["width"] == 64) & df["final_loss"].notna()][2])
    df.loc[row, "final_loss"] = 1e308
    with pytest.raises(TableError) as info, warnings.catch_warnings():
        warnings.simplefilter("error")  # and no overflow on the way
        prepare(df)
    (problem,) = info.value.problems
    assert problem.startswith(f"final_loss: row(s) {row} hold a loss more than 1e+30x the runs' median"), problem
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    res = CliRunner().invoke(app, ["fit", str(path), "--json", "-q"])
    assert res.exit_code == 2 and f"row(s) {row}" in res.stderr and "--diverged-col" in res.stderr, res.output
    assert "RuntimeWarning" not in res.stderr
    # flagged diverged, it is a divergence like any other
    df["diverged"] = False
    df.loc[row, "diverged"] = True
    assert prepare(df).n_rows == len(df)


def test_size_notes_tell_nan_groups_apart_and_write_counts_in_full():
    """A code review: groups `a` and NaN were counted as one (no labels: two identical entries), and 1,999,999 and
    2,000,000 steps both read 2e+06."""
    df = _widest_short().assign(tag="a")
    other = df.assign(tag=np.nan)
    other.loc[other["width"] == 64, "_step"] = 1_999_999
    other.loc[other["width"] != 64, "_step"] = 2_000_000
    notes = [w for w in prepare(pd_concat(df, other), ColumnMapping(group_cols=["tag"])).warnings
             if "differs between sizes" in w]
    (note,) = notes
    assert "tag=a: width 64: 2000" in note and "tag=nan: width 64: 1999999, 128: 2000000" in note, note
    assert "below 2000000" in note
    # "64" and 64 are one size
    mixed = _widest_short().astype({"width": object})
    mixed.loc[mixed.index[:2], "width"] = "64"
    (note,) = [w for w in prepare(mixed).warnings if "differs between sizes" in w]
    assert note.count("64:") == 1, note


def test_drop_cut_short_with_an_empty_step_column_says_so():
    df = _sweep(seeds=1)
    df["_step"] = np.nan
    assert any("no step column with numbers" in w for w in prepare(df, drop_cut_short=True).warnings)
