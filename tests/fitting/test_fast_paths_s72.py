"""Session 72-73: the fitter's fast paths give the numbers the slow ones gave.

The point fit and its bootstrap share one vectorised loss-law call (rows never interact), and scipy's distributions
are called past their argument checks (``special.stdtr``, ``special.ndtr``, the normal density's formula) or cached.
Each is checked here against what it stands for; the fits' own tests check the rest."""

from __future__ import annotations

import numpy as np
from scipy import special, stats

from abcscale.fitting import losslaw, optimum, predict, scaling


def _bits(x: np.ndarray | float) -> np.ndarray:
    """The values' bits, every NaN alike (which operand's NaN an addition keeps is the compiler's choice)."""
    a = np.array(x, dtype=float)
    a[np.isnan(a)] = np.nan
    return a.view(np.int64)


def test_one_call_fits_each_row_as_its_own_call_would():
    rng = np.random.default_rng(0)
    W = np.tile([64.0, 128, 256, 512, 1024], (30, 1))
    L = (2 + 20 * W**-0.5) * (1 + 0.003 * rng.standard_normal(W.shape))
    together = losslaw._fit_many(W, L)
    alone = [losslaw._fit_many(W[i:i + 1], L[i:i + 1]) for i in range(0, 30, 7)]
    for j, got in zip(range(0, 30, 7), alone, strict=True):
        assert np.array_equal(_bits([x[j] for x in together]), _bits([x[0] for x in got]))
    n, d = rng.uniform(0.3, 3, (9, 12)), rng.uniform(0.3, 3, (9, 12))
    y = (2 + 3 * n**-0.4 + 5 * d**-0.3) * (1 + 0.002 * rng.standard_normal((9, 12)))
    blocks = losslaw._fit_surfaces(n, d, y, groups=(1, 8))  # each block searched until its own rows converge
    assert np.array_equal(_bits(blocks[:1]), _bits(losslaw._fit_surfaces(n[:1], d[:1], y[:1])))
    assert np.array_equal(_bits(blocks[1:]), _bits(losslaw._fit_surfaces(n[1:], d[1:], y[1:])))


def test_a_loss_law_with_no_fit_hands_its_draws_back():
    rng = np.random.default_rng(1)
    best = np.array([2.0, 1.9, 1.8, 1.7])
    with np.errstate(all="ignore"):  # a width of 0: no term w^-alpha is finite (the draws are taken first)
        law = losslaw.fit_loss_law(np.array([0.0, 1, 2, 3]), best, np.tile(best[:, None], (1, 10)), 100, rng)
    assert law is None
    assert rng.bit_generator.state == np.random.default_rng(1).bit_generator.state


def test_the_distributions_past_their_checks_and_cached_give_scipys_numbers():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.standard_normal(200) * 10.0 ** rng.uniform(-3, 2, 200), [0.0, -0.0, np.inf, -np.inf]])
    assert np.array_equal(_bits(special.ndtr(x)), _bits(stats.norm.cdf(x)))
    sd = 0.7
    for mu in list(x[:40] * sd) + [0.0, 3.0, -3.0]:  # the penalty's two sides, against scipy's cdf and density
        neg, pos = predict._side(mu, sd)
        t = mu / sd
        m2 = mu**2 + sd**2
        # bit for bit: the density's formula is scipy's own (exp(-t^2 / 2) / sqrt(2 pi))
        assert _bits(pos) == _bits(m2 * stats.norm.cdf(t) + mu * sd * stats.norm.pdf(t))
        assert _bits(neg) == _bits(m2 * stats.norm.cdf(-t) - mu * sd * stats.norm.pdf(t))
    for df in (1, 2, 3, 7, 30):
        assert all(_bits(optimum.t_sf(v, df)) == _bits(stats.t.sf(v, df)) for v in np.abs(x))
        assert optimum._t_975(df) == stats.t.ppf(0.975, df)
        for level in (0.5, 0.68, 0.6827, 0.9, 0.95, 0.99):
            assert scaling.t_quantile(df, level) == stats.t.ppf(0.5 + level / 2, df)
    assert scaling.t_quantile(0, 0.95) == stats.norm.ppf(0.975)
    assert optimum._lack_of_fit_f(2, 5) == stats.f.ppf(1 - optimum.LACK_OF_FIT_ALPHA, 2, 5)
    assert optimum._flags_by_chance(3, 5) == stats.binom.sf(2, 5, optimum.FLAG_RATE)
    q = (np.arange(200) + 0.5) / 200
    assert np.array_equal(optimum._ordered_normal(200), stats.norm.ppf(q)[optimum._order(200)])
    assert not optimum._ordered_normal(200).flags.writeable  # shared by every width: never changed in place
