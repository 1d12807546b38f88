"""Prediction bands on sweeps drawn with a known truth that theory gets only roughly right.

The sweeps (fitting.synthetic.misspecified_sweep) are the issue's realistic case: widths 32/64/128, 2 seeds, a
half-octave grid centred on theory's line, the true exponent theory's + N(0, 0.12^2), every width's optimum
jittered off the line by N(0, 0.15^2), asymmetric basins and divergence at high LR. The targets: 95% bands that
hold the truth in >= 90% of trials (>= 0.85 here, on few trials), median width <= 1.5 octaves at 4x and <= 3
at 32x when the group has a theory exponent; honest (covering) and explained when it has none; and the free
test against theory unchanged by the prior.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abcscale.fitting import fit_table, predict_group, prepare
from abcscale.fitting.group import fit_groups, learn_priors
from abcscale.fitting.parts import Settings
from abcscale.fitting.predict import UNRELIABLE, unreliable
from abcscale.fitting.scaling import PRIOR_SD
from abcscale.fitting.synthetic import band_study, misspecified_sweep, synthetic_sweep
from abcscale.schemas.fit import ColumnMapping, GroupFit

MUP = {"parameterization": "mup", "optimizer": "adam", "alignment": "full", "lr_mode": "per_layer"}


@pytest.fixture(scope="module")
def with_theory():
    return {r.factor: r for r in band_study(60, theory=True, seed=11, factors=(4, 32), n_boot=100)}


@pytest.fixture(scope="module")
def without_theory():
    return {r.factor: r for r in band_study(30, theory=False, seed=12, factors=(4, 32), n_boot=100)}


def test_theory_bands_cover_the_truth(with_theory):
    for f, row in with_theory.items():
        assert row.coverage >= 0.85, (f, row)


def test_theory_bands_are_sharp(with_theory):
    assert with_theory[4].median_octaves <= 1.5
    assert with_theory[32].median_octaves <= 3.0


def test_free_bands_stay_honest_and_wider(with_theory, without_theory):
    for f, row in without_theory.items():
        assert row.coverage >= 0.85, (f, row)
        assert row.median_octaves > with_theory[f].median_octaves


def _fit(df: pd.DataFrame, **kw):
    return fit_table(df, n_boot=100, seed=0, **kw).groups[0]


def test_the_law_and_prediction_say_how_the_band_was_made():
    df, _ = misspecified_sweep(np.random.default_rng(3), group=MUP)
    g = _fit(df)
    assert g.law.method == "theory_prior" and g.law.prior_mean == 0.0 and g.law.prior_sd == PRIOR_SD
    assert g.law.df == 0 and g.law.tau2 > 0
    p = predict_group(g, 512)
    assert p.method == "theory_prior"
    assert not any("theory prior" in w or "widths alone" in w for w in p.warnings)


def test_without_theory_the_prediction_says_why_the_band_is_wide():
    df, _ = misspecified_sweep(np.random.default_rng(3), group={"model": "m"})
    p = predict_group(_fit(df), 512)
    assert p.method == "free"
    assert any(w.startswith("no theory prior") and "3 widths alone" in w and "1 df" in w for w in p.warnings)


def test_the_free_test_against_theory_does_not_lean_on_theory():
    """The exponent and its interval (what --expect-theory and `consistent` use) are the same with and without
    theory columns: the prior only moves the prediction."""
    df, _ = misspecified_sweep(np.random.default_rng(4), group=MUP)
    with_th = _fit(df)
    without = _fit(df.drop(columns=list(MUP)))
    assert with_th.exponent == without.exponent
    assert with_th.law.exponent != without.law.exponent  # the predictive law did lean on theory


def test_a_wrong_theory_is_still_rejected_and_the_band_drops_it():
    """True exponent 0.5 off theory: 5 widths reject theory, and with 3 widths (where the free interval has
    1 df and rarely rejects) the prior-data check makes most bands drop the prior."""
    rng = np.random.default_rng(5)
    rejected = dropped = 0
    for _ in range(12):
        df, _ = misspecified_sweep(rng, group=MUP, widths=(32, 64, 128, 256, 512), theory_error=0.5,
                                   exponent_sd=0.0)
        g = _fit(df)
        rejected += g.consistent is False
        assert g.law.method == "free"
        df3, _ = misspecified_sweep(rng, group=MUP, theory_error=0.5, exponent_sd=0.0)
        p = predict_group(_fit(df3), 1024)
        dropped += p.method == "free" and any("too far from theory" in w or "rejects" in w for w in p.warnings)
    assert rejected >= 11
    assert dropped >= 8


def _groups_table(spread: float, seed: int) -> pd.DataFrame:
    """Six muP groups whose true exponents are theory's (0) + N(0, spread^2)."""
    rng = np.random.default_rng(seed)
    return pd.concat([misspecified_sweep(rng, group={**MUP, "model": f"m{i}"}, exponent_sd=spread,
                                         widths=(32, 64, 128, 256))[0] for i in range(6)], ignore_index=True)


def _settings() -> Settings:
    return Settings(n_boot=100, confidence_level=0.95, window=1.0)


@pytest.mark.parametrize("spread, learns", [(0.6, True), (0.02, False)])
def test_priors_are_learned_from_a_tables_groups(spread, learns):
    prep = prepare(_groups_table(spread, seed=6), ColumnMapping(group_cols=["model", *MUP]))
    fits, notes = fit_groups(list(prep.groups), _settings(), seed=0)
    learned = learn_priors(fits, _settings())
    if learns:
        assert learned.prior_sd > 2 * PRIOR_SD
        assert notes and "learned from 6 groups" in notes[0]
        assert all(g.law.prior_sd == learned.prior_sd for g in fits if g.law.method == "theory_prior")
    else:
        assert learned.prior_sd == PRIOR_SD and notes == []


def test_unreliable_is_a_field_and_keeps_its_warning():
    df = synthetic_sweep(widths=(64, 256), group=MUP, seeds=2)
    p = predict_group(_fit(df), 4096)
    assert p.unreliable and all(UNRELIABLE + r in p.warnings for r in p.unreliable)
    assert unreliable(p) == unreliable(p.warnings)
    safe = predict_group(_fit(synthetic_sweep(group=MUP, seeds=2)), 512)
    assert safe.unreliable == [] and unreliable(safe) == []


def test_a_fit_stored_before_the_prior_still_predicts_and_says_so():
    df, _ = misspecified_sweep(np.random.default_rng(7), group=MUP)
    stored = _fit(df).model_dump(mode="json")
    stored["law"] = {k: v for k, v in stored["law"].items()
                     if k not in ("method", "prior_mean", "prior_sd", "tau_scale")}
    stored["law"]["df"] = 1
    p = predict_group(GroupFit.model_validate(stored), 512)
    assert p.method == "free" and any("predates theory-informed bands" in w for w in p.warnings)
