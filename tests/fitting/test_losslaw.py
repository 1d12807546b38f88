"""The loss law L*(w) = E + A w^-alpha on synthetic best losses with a known truth."""

from __future__ import annotations

import numpy as np
import pytest

from abcscale.fitting.losslaw import fit_loss_law

TRUTH = {"E": 2.0, "A": 20.0, "alpha": 0.5}
WIDTHS = np.array([64, 128, 256, 512, 1024])


def _law(seed: int, level: float):
    """Best losses with 0.05% relative noise and 50 bootstrap draws per width; the same data at every level."""
    rng = np.random.default_rng(seed)
    true = TRUTH["E"] + TRUTH["A"] * WIDTHS ** -TRUTH["alpha"]
    best = true * (1 + 0.0005 * rng.standard_normal(true.size))
    draws = best[:, None] * (1 + 0.0005 * rng.standard_normal((true.size, 50)))
    return fit_loss_law(WIDTHS, best, draws, n_boot=400, rng=np.random.default_rng(0), confidence_level=level)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_narrow_intervals_have_width_and_nest_in_the_wide_ones(seed):
    wide, narrow = _law(seed, 0.95), _law(seed, 0.5)
    assert wide is not None and narrow is not None
    for name, truth in TRUTH.items():
        w, n = getattr(wide, name), getattr(narrow, name)
        assert n.estimate == w.estimate, name  # the level moves intervals only
        assert n.ci.high - n.ci.low > 0.2 * w.se, name  # not collapsed onto a grid point
        assert w.ci.low <= n.ci.low <= n.estimate <= n.ci.high <= w.ci.high, name
        assert w.ci.low <= truth <= w.ci.high, name


def test_alpha_is_not_restricted_to_a_grid():
    law = _law(1, 0.95)
    assert law is not None
    assert law.alpha.estimate == pytest.approx(TRUTH["alpha"], abs=0.03)
    assert law.E.estimate == pytest.approx(TRUTH["E"], abs=0.05)
    assert abs(law.alpha.estimate / 0.02 - round(law.alpha.estimate / 0.02)) > 1e-6  # off the 0.02 grid
