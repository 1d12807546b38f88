"""A cell's one-run calls side by side on threads (issue 18 item 2): the same rows, coordinates and curves, bit
for bit, as one call after the other (``ABCSCALE_RUN_THREADS=1``, the reference path)."""

from __future__ import annotations

import pandas as pd

import abcscale.runner.sweep as sw
from abcscale.runner.spec import SweepSpec


def test_runs_on_threads_give_the_same_tables_as_one_after_the_other(monkeypatch):
    spec = SweepSpec(model="transformer", widths=[16], depth=1, head_dim=8, log2_lr=[-7, -6, -5], seeds=2,
                     steps=8, batch=4, seq_len=8, data="synthetic", eval_batches=2, batching="single", curves=True,
                     coord_steps=[0, 7])
    cell = spec.cells()[0]
    monkeypatch.setenv("ABCSCALE_RUN_THREADS", "3")
    assert sw.run_threads(1, 5) == 3 and sw.run_threads(2, 5) == 1 and sw.run_threads(1, 1) == 1
    threaded = sw.run_cell(spec, cell)
    monkeypatch.setenv("ABCSCALE_RUN_THREADS", "1")
    one_by_one = sw.run_cell(spec, cell)
    timing = ["compile_s", "run_s"]
    pd.testing.assert_frame_equal(threaded.rows.drop(columns=timing), one_by_one.rows.drop(columns=timing),
                                  check_exact=True)
    pd.testing.assert_frame_equal(threaded.coord, one_by_one.coord, check_exact=True)
    pd.testing.assert_frame_equal(threaded.curves, one_by_one.curves, check_exact=True)
    assert len(threaded.rows) == 6
