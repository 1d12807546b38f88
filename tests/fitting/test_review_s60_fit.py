"""Session 60: a user review of fitting a team's own tables. A width whose best LR was its grid's smallest and
whose larger LRs diverged said "only 2 stable learning rate(s): widen the grid", not which way."""

from __future__ import annotations

import numpy as np

from abcscale.fitting import fit_table
from abcscale.fitting.optimum import Cells, fit_optimum


def _cells(lrs: list[float], losses: list[float]) -> Cells:
    x = np.log2(np.repeat(lrs, 2))
    y = np.repeat(losses, 2)
    return Cells.of_runs(x, y, np.tile([0, 1], len(lrs)))


def test_two_stable_lrs_say_which_way_to_widen():
    rng = np.random.default_rng(0)
    down = fit_optimum(_cells([1e-3, 3e-3, 1e-2, 3e-2], [2.09, 2.23, np.nan, np.nan]), 20, rng)
    assert not down.identified and "widen the grid downward" in down.notes[0], down.notes
    up = fit_optimum(_cells([np.exp2(-12), np.exp2(-11), 1e-3, 3e-3], [np.nan, np.nan, 2.3, 2.1]), 20, rng)
    assert not up.identified and "widen the grid upward" in up.notes[0], up.notes


def test_the_fit_names_the_direction_for_an_edge_width():
    rows = [{"width": w, "beta": b, "seed": s, "final_loss": 2.0 + 0.04 * np.log2(b / (1e-2 * 64 / w)) ** 2}
            for w in (64, 128, 256) for b in (1e-3, 3e-3, 1e-2, 3e-2, 1e-1) for s in (0, 1)]
    rows += [{"width": 1024, "beta": b, "seed": s, "final_loss": loss}
             for b, loss in ((1e-3, 2.09), (3e-3, 2.23), (1e-2, np.nan), (3e-2, np.nan)) for s in (0, 1)]
    import pandas as pd

    g = fit_table(pd.DataFrame(rows), n_boot=20).groups[0]
    (w1024,) = [w for w in g.per_width if w.width == 1024]
    assert "widen the grid downward" in (w1024.message or ""), w1024


def test_one_lr_tried_names_no_direction():
    rng = np.random.default_rng(0)
    one = fit_optimum(_cells([1e-3], [2.1]), 20, rng)
    assert not one.identified and "widen the grid (" in one.notes[0], one.notes
