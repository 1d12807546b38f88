"""Lopsided basins with few seeds (session 50's user review, fixed in session 51).

A basin 2x steeper above the optimum than below puts a quadratic's vertex about 0.15 octave low on a half-octave
grid, while missing the five cells of a +-1 octave window by little more than the noise of two seeds' means: the
lack-of-fit F test (2 residual dof) saw it at about half the widths, and there the interval was the seed noise's,
0.28 octave wide: per-width 95% intervals covered 75% (17 of 30 in the review), every miss low. A test of the
cubic term over the wider window (the odd part is what moves a vertex) now sends such widths down the lack-of-fit
path (residual noise, the asymmetric model). Where the widths share that misfit, the slope through them is
bounded by each width's seed noise alone (a shared error cancels in a slope).
"""

from __future__ import annotations

import numpy as np

import abcscale
from abcscale.fitting import optimum
from abcscale.fitting.optimum import Cells, _scan, fit_optimum
from abcscale.fitting.synthetic import synthetic_sweep

W5 = (64, 128, 256, 512, 1024)


def _skew(scan, cells):
    return optimum._skew_p(scan, 1.0, cells, optimum._local_fit(optimum._window(scan, 1.0)))


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
    # 30 of 40 (75%) before; 38 of 40 measured now: 34 or more of 40 fails a 95% interval 1% of the time
    assert hits >= 34, (hits, n)


def test_the_asymmetry_test_finds_the_lopsided_width_and_says_so():
    df = synthetic_sweep(widths=(256,), asymmetry=2.0, seeds=2, seed=501)
    cells = Cells.of_runs(np.log2(df.beta.to_numpy()), df.final_loss.to_numpy(), df.seed.to_numpy())
    scan = _scan(cells, 0.95)
    p = _skew(scan, cells)
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
            p = _skew(scan, cells)
            flagged += p is not None and p < 0.05
            n += p is not None
    assert n >= 90 and flagged / n <= 0.12, (flagged, n)  # 5% expected; 12% of 100 is a 1% tail


def test_a_symmetric_basin_flatter_than_a_quadratic_is_not_called_lopsided():
    """A code review: 1 + k d^2 + q d^4 is symmetric (the quadratic's vertex unbiased), yet a cubic about the grid
    argmin, up to half a step off the optimum, has a term -4 q d: a cubic-only test there flagged 65% of widths at
    q = 0.005. Centred on the narrow fit's vertex, with a quartic term, it flags about its level."""
    rng = np.random.default_rng(0)
    flagged = n = 0
    for _ in range(100):
        off = rng.uniform(-0.25, 0.25)
        xs, ls, ss = [], [], []
        for x in off + np.arange(-3, 3 + 1e-9, 0.5):
            for s in range(2):
                xs.append(x), ss.append(s)
                ls.append(3.0 * (1 + 0.02 * x * x + 0.005 * x**4) * (1 + 0.002 * rng.standard_normal()))
        cells = Cells.of_runs(np.array(xs), np.array(ls), np.array(ss))
        p = _skew(_scan(cells, 0.95), cells)
        flagged += p is not None and p < 0.05
        n += p is not None
    assert n >= 90 and flagged / n <= 0.25, (flagged, n)  # 13% measured (65% with the cubic about the argmin)


def test_one_seed_and_coarse_grids_take_no_asymmetry_test():
    one = synthetic_sweep(widths=(256,), asymmetry=2.0, seeds=1, seed=7)
    cells = Cells.of_runs(np.log2(one.beta.to_numpy()), one.final_loss.to_numpy(), one.seed.to_numpy())
    assert _skew(_scan(cells, 0.95), cells) is None  # no seed spread: the residuals are the noise anyway
    coarse = synthetic_sweep(widths=(256,), asymmetry=2.0, seeds=2, step=1.0, seed=7)
    cells = Cells.of_runs(np.log2(coarse.beta.to_numpy()), coarse.final_loss.to_numpy(), coarse.seed.to_numpy())
    assert _skew(_scan(cells, 0.95), cells) is None  # 3 cells in +-1.5 octaves: no cubic to test


def test_the_slope_is_bounded_by_the_seed_noise_where_the_shape_error_is_shared():
    """A lopsided width's interval carries its shape error, which every width shares (it moves the constant); the
    slope's lower bound, where the group shares it, is each width's seed-noise part (`seed_noise_var`), so a
    lopsided sweep's exponent interval stays sharp (a code review: only where the misfit is shared)."""
    df = synthetic_sweep(widths=(256,), asymmetry=2.0, seeds=2, seed=501)
    cells = Cells.of_runs(np.log2(df.beta.to_numpy()), df.final_loss.to_numpy(), df.seed.to_numpy())
    o = fit_optimum(cells, 200, np.random.default_rng(0))
    assert o.lack_of_fit and o.seed_noise_var is not None and o.seed_noise_var < 0.7 * o.noise_var
    g = abcscale.fit(synthetic_sweep(widths=W5, asymmetry=2.0, seeds=2, seed=502), n_boot=200, seed=0).groups[0]
    assert g.law.shared_var > 0
    assert g.exponent.ci.low <= -1.0 <= g.exponent.ci.high and g.exponent.ci.high - g.exponent.ci.low < 0.15


def test_an_older_tables_alignment_past_one_half_is_said_in_words():
    """omega > 1/2 is refused since session 51; a table whose alignment column holds one gave pydantic's raw
    multi-line message (with its URL) as the group's warning (a code review)."""
    from abcscale.fitting.group import theory_for_group

    exp, why = theory_for_group({"parameterization": "mup", "optimizer": "adam", "lr_mode": "global",
                                 "alignment": "1,1,1"}, None)
    assert exp is None and why is not None
    assert "omega: Input should be less than or equal to 0.5" in why and "\n" not in why and "pydantic" not in why
