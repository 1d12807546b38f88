"""Session 36: a run whose loss is missing (an empty cell, NaN) above its curve's best LR counts as diverged, as a
NaN there usually is; but where the table's own divergence column, which flags most of its NaN runs, marks a few
*not* diverged, the two disagree (an unfinished run exported mid-training), and that is said, with its rows. A
column that flags no NaN (computed as `loss > 10`, false for NaN) says nothing of them."""

from __future__ import annotations

import numpy as np
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
