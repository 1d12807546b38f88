"""Session 58 (a statistics review of the joint law): optima off the law's plane along a covariate (an interaction
with the size, a bend in log2 D) were fitted in silence, and predictions 2 octaves out missed by 0.5-1.4 octaves
with none of their bands covering. The law now says either (fitting.joint.lack_of_fit), and a prediction past the
swept range of that covariate (or, for an interaction, of the sizes) is unreliable. Synthetic tables of known law:
4 sizes x 3-4 token budgets x 2 batch sizes, 2 seeds."""

from __future__ import annotations

import warnings

import abcscale
from tests.fitting.covariate_sweeps import covariate_sweep

MAPPING = {"size_col": "N", "lr_col": "beta", "loss_col": "final_loss", "covariates": ["D", "batch_size"]}
TOKENS4 = (1e8, 4e8, 1.6e9, 6.4e9)


def _law(n_boot: int = 200, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = abcscale.fit(covariate_sweep(**kw), mapping=MAPPING, n_boot=n_boot)
    return fit, fit.joint[0]


def _said(law, start: str) -> bool:
    return any(w.startswith(start) for w in law.warnings)


def test_a_straight_law_is_not_called_off_its_plane():
    said = [w for s in range(4) for j in (0.05, 0.15) for w in _law(seed=s, jitter=j)[1].warnings
            if w.startswith(("the optimum bends in log2(D", "the optimum bends in log2(batch", "the width exponent"))]
    assert len(said) <= 1, said  # 8 tables at alpha 0.01 a test: 0 here, 1 of 60 in a larger run


def test_an_interaction_with_the_size_is_said_and_makes_far_predictions_unreliable():
    hits = 0
    for s in range(5):
        # 100 draws (0.26 CPU-s a fit against 0.36 at 200, 2026-12-07): these laws are said 5 of 5 at either; the
        # false alarms' test above keeps 200
        fit, law = _law(100, seed=s, interaction=0.08)
        if _said(law, "the width exponent changes with D "):
            hits += 1
            far = abcscale.predict(fit, 4096, at={"D": 2.56e10, "batch_size": 128})
            assert any("the width exponent changes with D" in u for u in far.unreliable), far.unreliable
            inside = abcscale.predict(fit, 256, at={"D": 4e8, "batch_size": 32})
            assert not any("changes with" in u for u in inside.unreliable)
    assert hits >= 4, hits


def test_a_bend_in_log_tokens_is_said_and_makes_predictions_past_it_unreliable():
    hits = 0
    for s in range(5):
        fit, law = _law(100, seed=s, tokens=TOKENS4, curvature=0.04)  # 5 of 5 said at 100 draws as at 200
        if _said(law, "the optimum bends in log2(D)"):
            hits += 1
            past = abcscale.predict(fit, 256, at={"D": 1e11, "batch_size": 32})
            assert any("bends in log2(D)" in u for u in past.unreliable), past.unreliable
    assert hits >= 4, hits


def test_covariates_given_as_text_fit_as_the_numbers_they_are():
    df = covariate_sweep(seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        numbers = abcscale.fit(df, mapping=MAPPING, n_boot=100)
        text = abcscale.fit(df.assign(D=df["D"].map(lambda d: f"{d:g}")), mapping=MAPPING, n_boot=100)
    assert [g.group["D"] for g in text.groups] == [g.group["D"] for g in numbers.groups]  # 1e8 < 4e8, not as words
    assert all(isinstance(g.group["D"], float) for g in text.groups)
    assert text.joint[0].exponents["D"].estimate == numbers.joint[0].exponents["D"].estimate
