"""Lopsided basins with few seeds (session 50's user review, fixed in session 51).

A basin 2x steeper above the optimum than below puts a quadratic's vertex about 0.15 octave low on a half-octave
grid, while missing the five cells of a +-1 octave window by little more than the noise of two seeds' means: the
lack-of-fit F test (2 residual dof) saw it at about half the widths, and there the interval was the seed noise's,
0.28 octave wide: per-width 95% intervals covered 75% (17 of 30 in the review), every miss low. A test of the
cubic term over the wider window (the odd part is what moves a vertex) now sends such widths down the lack-of-fit
path (residual noise, the asymmetric model). The slope through the widths is bounded by each width's seed noise
alone, the shape error being one they share.
"""

from __future__ import annotations

import numpy as np

import abcscale
from abcscale.fitting import optimum
from abcscale.fitting.optimum import Cells, _scan, fit_optimum
from abcscale.fitting.synthetic import synthetic_sweep

W5 = (64, 128, 256, 512, 1024)


def _truth(width: int) -> float:
    return float(np.log2(1e-2) - np.log2(width / 64))


def test_per_width_intervals_cover_on_2x_lopsided_basins_with_two_seeds():
    hits = n = 0
    for r in range(8):
        g = abcscale.fit(synthetic_sweep(widths=W5, asymmetry=2.0, seeds=2, seed=500 + r), n_boot=200,
                         seed=r).groups[0]
        for w in g.per_width:
            hits += np.log2(w.ci.low) <= _truth(w.width) <= np.log2(w.ci.high)
            n += 1
    # 30 of 40 (75%) before; 40 of 40 measured now: 34 or more of 40 fails a 95% interval 1% of the time
    assert hits >= 34, (hits, n)


def test_the_asymmetry_test_finds_the_lopsided_width_and_says_so():
    df = synthetic_sweep(widths=(256,), asymmetry=2.0, seeds=2, seed=501)
    cells = Cells.of_runs(np.log2(df.beta.to_numpy()), df.final_loss.to_numpy(), df.seed.to_numpy())
    scan = _scan(cells, 0.95)
    p = optimum._skew_p(scan, 1.0, cells)
    assert p is not None and p < 0.05
    o = fit_optimum(cells, 200, np.random.default_rng(0))
    assert o.lack_of_fit and o.model == "asymmetric"
    assert o.ci[0] <= _truth(256) <= o.ci[1]


def test_a_symmetric_basin_is_rarely_called_lopsided():
    """The asymmetry test's level (5%) on exactly quadratic basins: flags come at about that rate."""
    flagged = n = 0
    for r in range(20):
        df = synthetic_sweep(widths=W5, asymmetry=1.0, seeds=2, seed=600 + r)
        for _, rows in df.groupby("width"):
            cells = Cells.of_runs(np.log2(rows.beta.to_numpy()), rows.final_loss.to_numpy(), rows.seed.to_numpy())
            scan = _scan(cells, 0.95)
            p = optimum._skew_p(scan, 1.0, cells)
            flagged += p is not None and p < 0.05
            n += p is not None
    assert n >= 90 and flagged / n <= 0.12, (flagged, n)  # 5% expected; 12% of 100 is a 1% tail


def test_one_seed_and_coarse_grids_take_no_asymmetry_test():
    one = synthetic_sweep(widths=(256,), asymmetry=2.0, seeds=1, seed=7)
    cells = Cells.of_runs(np.log2(one.beta.to_numpy()), one.final_loss.to_numpy(), one.seed.to_numpy())
    assert optimum._skew_p(_scan(cells, 0.95), 1.0, cells) is None  # no seed spread: the residuals are the noise anyway
    coarse = synthetic_sweep(widths=(256,), asymmetry=2.0, seeds=2, step=1.0, seed=7)
    cells = Cells.of_runs(np.log2(coarse.beta.to_numpy()), coarse.final_loss.to_numpy(), coarse.seed.to_numpy())
    assert optimum._skew_p(_scan(cells, 0.95), 1.0, cells) is None  # 3 cells in +-1.5 octaves: no cubic to test


def test_the_slope_is_bounded_by_the_seed_noise_not_the_shared_shape_error():
    """A lopsided width's interval carries its shape error (shared by every width: it moves the constant), and its
    noise_sd, which bounds the slope's interval from below, is its seed noise alone."""
    g = abcscale.fit(synthetic_sweep(widths=W5, asymmetry=2.0, seeds=2, seed=502), n_boot=200, seed=0).groups[0]
    lopsided = [w for w in g.per_width if w.model == "asymmetric"]
    assert len(lopsided) >= 3
    for w in lopsided:
        half = (np.log2(w.ci.high) - np.log2(w.ci.low)) / (2 * 1.96)
        assert w.noise_sd < 0.8 * half, (w.width, w.noise_sd, half)
    assert g.law.shared_var > 0
    assert g.exponent.ci.low <= -1.0 <= g.exponent.ci.high
