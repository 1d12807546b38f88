"""The joint loss law L(N, D) = E + A N^-alpha + B D^-beta on synthetic best losses with a known truth, and the
one-variable law's identification flag."""

from __future__ import annotations

import numpy as np
import pytest

from abcscale.fitting.losslaw import fit_loss_law, fit_loss_surface

# Chinchilla's published fit (Hoffmann et al. 2022), N in parameters and D in tokens
TRUTH = {"E": 1.69, "A": 406.4, "alpha": 0.34, "B": 410.7, "beta": 0.28}
N, D = (a.ravel() for a in np.meshgrid(np.geomspace(1e7, 1e9, 6), np.geomspace(1e8, 1e10, 6)))


def _law(size: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    return TRUTH["E"] + TRUTH["A"] * size ** -TRUTH["alpha"] + TRUTH["B"] * tokens ** -TRUTH["beta"]


def _noisy(rng: np.random.Generator, size=N, tokens=D, noise: float = 0.005) -> np.ndarray:
    return _law(size, tokens) * (1 + noise * rng.standard_normal(size.size))


def test_recovers_the_truth_and_reports_both_unit_systems():
    rng = np.random.default_rng(0)
    s = fit_loss_surface(N, D, _noisy(rng), n_boot=200, rng=rng)
    assert s.identified and s.notes == []
    assert s.n_points == N.size
    assert s.alpha.estimate == pytest.approx(TRUTH["alpha"], abs=0.05)
    assert s.beta.estimate == pytest.approx(TRUTH["beta"], abs=0.05)
    assert s.E.estimate == pytest.approx(TRUTH["E"], abs=0.15)
    # A, B are each term at the data's geometric-mean size/tokens; A_user, B_user are in the caller's units
    assert s.size_scale == pytest.approx(1e8) and s.tokens_scale == pytest.approx(1e9)
    assert s.A.estimate == pytest.approx(TRUTH["A"] * 1e8 ** -TRUTH["alpha"], rel=0.15)
    assert s.A_user == pytest.approx(s.A.estimate * s.size_scale**s.alpha.estimate)
    assert s.B_user == pytest.approx(s.B.estimate * s.tokens_scale**s.beta.estimate)
    assert s.predict(3e8, 3e9) == pytest.approx(float(_law(np.array(3e8), np.array(3e9))), rel=0.01)
    for name in TRUTH:
        e = getattr(s, name)
        assert e.ci.low <= e.estimate <= e.ci.high and e.ci.high > e.ci.low, name


def test_bootstrap_intervals_cover_the_truth_in_a_seeded_simulation():
    trials, hits = 12, {"alpha": 0, "beta": 0, "E": 0}
    for seed in range(trials):
        rng = np.random.default_rng(100 + seed)
        s = fit_loss_surface(N, D, _noisy(rng), n_boot=100, rng=rng, confidence_level=0.95)
        for name in hits:
            hits[name] += getattr(s, name).ci.contains(TRUTH[name])
    # 95% intervals: 12 trials miss 3 or more with probability ~2% when the coverage is right
    assert all(h >= trials - 2 for h in hits.values()), hits


def test_a_narrow_level_gives_a_nested_interval():
    wide = fit_loss_surface(N, D, _noisy(np.random.default_rng(5)), n_boot=200, rng=np.random.default_rng(1))
    narrow = fit_loss_surface(N, D, _noisy(np.random.default_rng(5)), n_boot=200, rng=np.random.default_rng(1),
                              confidence_level=0.5)
    for name in TRUTH:
        w, n = getattr(wide, name), getattr(narrow, name)
        assert n.estimate == w.estimate and n.ci.confidence_level == 0.5
        assert w.ci.low <= n.ci.low <= n.ci.high <= w.ci.high, name


@pytest.mark.parametrize("tokens", [[1e9], [1e8, 1e10]])
def test_too_few_distinct_tokens_is_unidentified_and_says_so(tokens):
    size, tok = (a.ravel() for a in np.meshgrid(np.geomspace(1e7, 1e9, 6), tokens))
    rng = np.random.default_rng(2)
    s = fit_loss_surface(size, tok, _noisy(rng, size, tok), n_boot=100, rng=rng)
    assert not s.identified
    assert any(n.startswith(f"tokens: {len(tokens)} distinct value") and "beta" in n for n in s.notes), s.notes


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pure_noise_is_unidentified(seed):
    rng = np.random.default_rng(seed)
    s = fit_loss_surface(N, D, 3.0 + 0.01 * rng.standard_normal(N.size), n_boot=100, rng=rng)
    assert not s.identified
    assert any("alpha" in n for n in s.notes) and any("beta" in n for n in s.notes), s.notes


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"size": -N}, "size"),
    ({"tokens": np.where(np.arange(N.size) == 3, np.nan, D)}, "tokens"),
    ({"loss": np.zeros(N.size)}, "loss"),
    ({"tokens": D[:-1]}, "tokens"),
    ({"loss": np.ones((N.size, 1))}, "loss"),
    ({"size": N[:4], "tokens": D[:4], "loss": np.ones(4)}, "size"),
])
def test_bad_input_is_a_value_error_naming_the_argument(kwargs, named):
    args = {"size": N, "tokens": D, "loss": _law(N, D), **kwargs}
    with pytest.raises(ValueError, match=rf"^{named}: "):
        fit_loss_surface(**args, n_boot=10, rng=np.random.default_rng(0))


# --- the one-variable law L*(w) = E + A w^-alpha -------------------------------------------------------------

WIDTHS = np.array([64, 128, 256, 512, 1024])


def _one_variable(best: np.ndarray):
    rng = np.random.default_rng(0)
    draws = best[:, None] * (1 + 0.0005 * rng.standard_normal((best.size, 50)))
    return fit_loss_law(WIDTHS, best, draws, n_boot=200, rng=rng)


def test_the_one_variable_law_is_identified_on_a_clean_power_law():
    law = _one_variable(2.0 + 20.0 * WIDTHS**-0.5)
    assert law is not None and law.identified and law.notes == []


def test_the_one_variable_law_says_when_the_loss_does_not_fall_with_width():
    # flat losses with noise: alpha is pushed to an edge of its range or the width term vanishes
    best = 3.0 * (1 + 0.002 * np.random.default_rng(4).standard_normal(WIDTHS.size))
    law = _one_variable(best)
    assert law is not None and not law.identified
    assert law.notes and all("alpha" in n or "A " in n for n in law.notes), law.notes
