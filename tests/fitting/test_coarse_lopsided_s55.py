"""Lopsided basins on grids coarser than half an octave (session 54's statistician's audit, fixed in session 55).

Where +-1 octave of the grid argmin holds fewer than 4 cells (a 1-3-10 grid, a 2x grid), the local fit took the
nearest 4-5 cells, 2-3.3 octaves out, where a lopsided basin (here 2(e^d - 1 - d): linear on the flat side,
exponential on the steep one, about 2x steeper a octave above the optimum than below) is least like a quadratic.
Every width's vertex slid to the flat side: -1.07 octave on a 1-3-10 grid, -0.46 on a 2x grid; with one seed the
per-width 95% intervals covered 57% of widths and the 68% band at 4x the widest width 1%. The vertex now comes from
the argmin's bracket (the argmin and its neighbours) wherever seeds do not vouch for the wider fit's shape, or the
group's widths show a lopsided basin (their bracket-minus-wide shifts agree in sign), at -0.32 / -0.13 octave.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import abcscale
from abcscale.fitting import optimum
from abcscale.fitting.optimum import Cells, bracket_shift, fit_optimum, lopsided

COARSE = np.log2(np.array([1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1]))  # 1-3-10: 1.58 / 1.74 octave steps
TWO_X = np.arange(-13.0, -1.99, 1.0)
WIDTHS = (32, 64, 128, 256)
MAP = {"lr_col": "lr", "loss_col": "loss", "seed_col": "seed"}


def _linex(d: np.ndarray) -> np.ndarray:
    return 2 * (np.exp(d) - 1 - d)


def _quad(d: np.ndarray) -> np.ndarray:
    return d * d


def _table(rng: np.random.Generator, grid: np.ndarray, shape, seeds: int, noise: float = 0.002
           ) -> tuple[pd.DataFrame, float]:
    """Widths 32-256 whose optimum is one LR (muP-like), a random offset from the grid; the loss falls with width."""
    x0 = math.log2(1e-2) + rng.uniform(-1, 1)
    rows = []
    for w in WIDTHS:
        best = 2 + 20 * w**-0.5
        for x in grid:
            for s in range(seeds):
                loss = best * (1 + 0.01 * shape(x - x0)) * (1 + noise * rng.standard_normal())
                rows.append({"width": w, "lr": float(2.0**x), "seed": s, "loss": float(loss)})
    return pd.DataFrame(rows), x0


def _per_width(grid: np.ndarray, shape, seeds: int, trials: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Errors (octaves) and 95% interval hits of every width's optimum over ``trials`` tables."""
    rng = np.random.default_rng(seed)
    err, hit = [], []
    for t in range(trials):
        df, x0 = _table(rng, grid, shape, seeds)
        for pw in abcscale.fit(df, mapping=MAP, n_boot=300, seed=t).groups[0].per_width:
            assert pw.lr_opt is not None and pw.ci is not None
            err.append(math.log2(pw.lr_opt) - x0)
            hit.append(math.log2(pw.ci.low) <= x0 <= math.log2(pw.ci.high))
    return np.array(err), np.array(hit)


@pytest.mark.parametrize("grid", [COARSE, TWO_X], ids=["1-3-10", "2x"])
def test_one_seed_lopsided_basins_on_coarse_grids_are_found_and_covered(grid):
    err, hit = _per_width(grid, _linex, seeds=1, trials=8, seed=55)
    # before: median |error| 1.15 octave (1-3-10) / 0.48 (2x), 59% of 1-3-10 intervals covering; now 0.35 / 0.13
    assert np.median(np.abs(err)) < (0.6 if grid is COARSE else 0.25), np.median(np.abs(err))
    assert hit.mean() >= 0.9, hit.mean()


def test_two_seed_lopsided_basins_on_a_1_3_10_grid_lose_the_octave_of_bias():
    err, hit = _per_width(COARSE, _linex, seeds=2, trials=6, seed=56)
    assert np.median(np.abs(err)) < 0.6, np.median(np.abs(err))  # 1.11 before
    assert hit.all()


def _cells(grid: np.ndarray, shape, seeds: int, x0: float, rng: np.random.Generator, noise: float = 0.002) -> Cells:
    x = np.repeat(grid, seeds)
    loss = 3 * (1 + 0.01 * shape(x - x0)) * (1 + noise * rng.standard_normal(x.size))
    return Cells.of_runs(x, loss, np.tile(np.arange(seeds), grid.size))


def _vertex_of(cells: Cells, n: int) -> float:
    """The weighted quadratic's vertex through the ``n`` cells nearest the argmin (ties kept), by numpy alone."""
    i = int(np.argmin(cells.mean))
    d = np.abs(cells.x - cells.x[i])
    keep = d <= np.sort(d)[n - 1] * (1 + optimum.WINDOW_RTOL)
    c = np.polyfit(cells.x[keep], cells.mean[keep], 2, w=np.sqrt(cells.n_ok[keep]))
    return float(-c[1] / (2 * c[0]))


def test_the_bracket_is_the_argmin_and_its_neighbours_and_holds_three_cells_at_the_stability_edge():
    cells = _cells(COARSE, _quad, 1, math.log2(1e-2) + 0.2, np.random.default_rng(0))
    scan = optimum._scan(cells, 0.95)
    near, wide = optimum._window(scan, 1.0, bracket=True), optimum._window(scan, 1.0)
    assert near.x.size == 3 and wide.x.size == 5  # the 4th-nearest distance (3.32 octaves) is a tie: both kept
    assert near.x.min() < 0 < near.x.max()
    # the argmin is the last stable learning rate (the next one diverged): its bracket still has 3 cells
    x = COARSE[:6]
    loss = 3 * (1 + 0.01 * _quad(x - x[-1] - 0.5))
    edge = Cells.of_runs(np.append(x, COARSE[6]), np.append(loss, np.nan), np.zeros(7))
    s = optimum._scan(edge, 0.95)
    assert s.i == s.xs.size - 1 and optimum._window(s, 1.0, bracket=True).x.size == 3


def test_which_window_gives_the_vertex():
    rng = np.random.default_rng(3)
    two = _cells(COARSE, _quad, 2, math.log2(1e-2) + 0.3, rng)
    one = _cells(COARSE, _quad, 1, math.log2(1e-2) + 0.3, rng)
    fit = lambda c, verdict: fit_optimum(c, 200, np.random.default_rng(0), lopsided=verdict).x_opt  # noqa: E731
    # seeds whose spread explains the wider fit vouch for it (the fit before this change, bit for bit) ...
    assert fit(two, None) == pytest.approx(_vertex_of(two, 4), abs=1e-9)
    assert fit(two, False) == pytest.approx(_vertex_of(two, 4), abs=1e-9)
    # ... unless the group's basins are lopsided
    assert fit(two, True) == pytest.approx(_vertex_of(two, 3), abs=1e-9)
    # one seed cannot test its own shape: the group's verdict, and the bracket untested
    assert fit(one, False) == pytest.approx(_vertex_of(one, 4), abs=1e-9)
    assert fit(one, True) == pytest.approx(_vertex_of(one, 3), abs=1e-9)
    assert fit(one, None) == pytest.approx(_vertex_of(one, 3), abs=1e-9)
    # a half-octave grid has 5 cells within +-1 octave: one window, whatever the verdict
    half = _cells(np.arange(-13.0, -1.99, 0.5), _quad, 1, math.log2(1e-2) + 0.3, rng)
    assert fit(half, True) == fit(half, False) == fit(half, None)


def test_the_group_test_finds_lopsided_basins_and_rarely_calls_quadratic_ones_lopsided():
    rng = np.random.default_rng(7)
    found = 0
    for _ in range(20):
        x0 = math.log2(1e-2) + rng.uniform(-1, 1)
        shifts = [bracket_shift(_cells(COARSE, _linex, 1, x0 + 0.2 * k, rng)) for k in range(4)]
        assert all(s is not None and s > 0 for s in shifts)  # the wider fit's vertex on the flat (low) side
        found += bool(lopsided(shifts))
    assert found >= 17, found
    flagged = tested = 0
    for _ in range(200):
        x0 = math.log2(1e-2) + rng.uniform(-1, 1)
        verdict = lopsided(bracket_shift(_cells(COARSE, _quad, 1, x0 + 0.2 * k, rng)) for k in range(4))
        tested += verdict is not None
        flagged += bool(verdict)
    assert tested == 200 and flagged <= 20, flagged  # 5% expected; 20 of 200 is beyond a 1% tail
    assert lopsided([0.5, None, 0.6]) is None  # fewer than 3 widths: untested
    # a half-octave grid: one window, nothing to compare
    assert bracket_shift(_cells(np.arange(-13.0, -1.99, 0.5), _linex, 1, -7.0, rng)) is None
