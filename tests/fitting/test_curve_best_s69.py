"""Session 69: a curve's best loss and its LR by integer codes and ``np.fmin.at`` / ``np.fmax.at`` (one grouping a
table's checks share) instead of two pandas groupby transforms a call: the same numbers, NaN skipped as pandas skips
it, on tables with NaN keys, NaN and infinite losses, ties and curves without one usable run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abcscale.fitting.table._valid import _curve_best, _stalled


def _pandas_best(keys, lr, loss, ok, tie):
    """The groupby form it replaced (session 68's code), the reference."""
    frame = keys.assign(_lr=lr, _loss=np.where(ok, loss, np.inf))
    best = frame.groupby(list(keys.columns), dropna=False, sort=False)["_loss"].transform("min").to_numpy()
    at_best = frame["_lr"].where(frame["_loss"].to_numpy() == best)
    lr_best = at_best.groupby([frame[c] for c in keys.columns], dropna=False, sort=False).transform(tie).to_numpy()
    return best, lr_best


LOSSES = st.sampled_from([np.nan, np.inf, 1.0, 2.0, 2.0, 3.5, 0.5])
ROW = st.tuples(st.sampled_from(["a", "b", None]), st.sampled_from([32, 64]), st.sampled_from([0.5, 1.0, np.nan]),
                st.sampled_from([1e-3, 2e-3, 4e-3, 8e-3, np.nan]), LOSSES, st.booleans())


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(ROW, min_size=1, max_size=40), tie=st.sampled_from(["min", "max"]))
def test_the_codes_give_the_groupbys_numbers(rows, tie):
    group, width, const, lr, loss, ok = (list(c) for c in zip(*rows, strict=True))
    keys = pd.DataFrame({"g": pd.Series(group, dtype=object), "width": width, "c": const})
    lr, loss, ok = np.array(lr, float), np.array(loss, float), np.array(ok)
    want = _pandas_best(keys, lr, loss, ok, tie)
    got = _curve_best(keys, lr, loss, ok, tie)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)  # NaN where NaN, every other number bit for bit


def test_a_stall_still_reads_its_curves_loss_at_init():
    # two curves: the first's best (1.0 from 3.0 at init) learned; its run at the larger LR ended within 1% of its
    # init (2.99)
    keys = pd.DataFrame({"width": [32, 32, 32, 64, 64], "c": [1.0] * 5})
    lr = np.array([1e-3, 2e-3, 4e-3, 1e-3, 2e-3])
    loss = np.array([1.5, 1.0, 2.99, 1.0, 1.2])
    init = np.array([3.0, 3.0, 3.0, 3.0, 3.0])
    stalled = _stalled(keys, lr, loss, init, np.zeros(5, bool))
    assert stalled.tolist() == [False, False, True, False, False]


def _seeds_sharing_losses(share: float) -> pd.DataFrame:
    """A two-seed sweep whose second seed repeats the first's loss at the first ``share`` of each width's LRs (not
    all of them: no copy to drop)."""
    from abcscale.fitting.synthetic import synthetic_sweep

    df = synthetic_sweep(widths=(64, 128, 256, 512), seeds=2, step=0.5, half_range=2.0,
                         group={"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"})
    for _, cell in df.groupby("width"):
        lrs = sorted(cell["beta"].unique())
        for lr in lrs[:round(share * len(lrs))]:
            at = cell.index[cell["beta"] == lr]
            df.loc[at, "final_loss"] = df.loc[at[0], "final_loss"]
    return df


@pytest.mark.parametrize(("share", "said"), [(0.8, True), (0.4, False)])
def test_seeds_identical_at_most_cells_are_said_with_their_count(share, said):
    """The note on seeds whose losses agree at most (not all) cells, counted per cell (now by numpy): said where
    they agree at half the cells run with two seeds or more, its counts those the table holds."""
    import re

    from abcscale.fitting.table import prepare

    df = _seeds_sharing_losses(share)
    notes = [w for w in prepare(df).warnings if "the seeds' losses are identical" in w]
    touched = sum(round(share * g["beta"].nunique()) for _, g in df.groupby("width"))
    if not said:
        assert notes == []
        return
    (note,) = notes
    same, several = map(int, re.search(r"identical at (\d+) of (\d+) learning rates", note).groups())
    # every touched cell kept both seeds (the blow-ups sit at the grid's top, above the touched LRs' share)
    assert same == touched and 2 * same >= several and several <= df.groupby(["width", "beta"]).ngroups
