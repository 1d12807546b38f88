"""Session 69: a curve's best loss and its LR by integer codes and ``np.fmin.at`` / ``np.fmax.at`` (one grouping a
table's checks share) instead of two pandas groupby transforms a call: the same numbers, NaN skipped as pandas skips
it, on tables with NaN keys, NaN and infinite losses, ties and curves without one usable run."""

from __future__ import annotations

import numpy as np
import pandas as pd
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
