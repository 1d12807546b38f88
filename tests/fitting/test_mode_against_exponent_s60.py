"""A recommendation's LR mode against the fitted exponent (session 60, a user review).

A table without an lr_mode column is answered in the mode the caller gives. A global sweep's fit (LR* falling as
width^-1) answered per_layer scaled the fitted LR by each layer's (n/b)^-c again, muP + Adam's hidden LR 64x under
the truth at 64x the base width, without a word; the fitted exponent's interval tells the modes apart.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abcscale.fitting import fit_table
from abcscale.usecases.recommend import recommend_from_fit

GRID = 2.0 ** np.arange(-14.0, -3.0, 0.5)


def _table(exponent: float, widths: tuple[int, ...] = (64, 128, 256, 512), seed: int = 0) -> pd.DataFrame:
    """One LR per run, LR* = 1e-2 (w / 64)^exponent, a quadratic basin, 2 seeds; no setup columns."""
    rng = np.random.default_rng(seed)
    rows = []
    for w in widths:
        star = np.log2(1e-2) + exponent * np.log2(w / 64)
        for lr in GRID:
            d = np.log2(lr) - star
            for s in range(2):
                loss = np.nan if d > 3 else 2.0 + 0.04 * d * d + rng.normal(0, 0.003)
                rows.append({"width": w, "beta": lr, "seed": s, "final_loss": loss})
    return pd.DataFrame(rows)


def _answer(df: pd.DataFrame, lr_mode: str):
    fit = fit_table(df, n_boot=50)
    return recommend_from_fit(fit, 4096, selector={"parameterization": "mup", "optimizer": "adam",
                                                   "lr_mode": lr_mode})


def test_a_global_sweep_answered_per_layer_is_unreliable_naming_global():
    rec = _answer(_table(-1.0), "per_layer")
    said = [u for u in rec.band.unreliable if u.startswith("lr_mode:")]
    assert len(said) == 1 and "excludes theory's 0 for a per_layer sweep" in said[0]
    assert "recommend with lr_mode global" in said[0]
    assert any(w == f"unreliable: {said[0]}" for w in rec.warnings)
    # answered global it is the fitted LR at every layer, and nothing is said
    rec = _answer(_table(-1.0), "global")
    assert not any(u.startswith("lr_mode:") for u in rec.band.unreliable)


def test_a_per_layer_sweep_answered_global_is_unreliable_naming_per_layer():
    rec = _answer(_table(0.0), "global")
    said = [u for u in rec.band.unreliable if u.startswith("lr_mode:")]
    assert len(said) == 1 and "for a global sweep" in said[0] and "recommend with lr_mode per_layer" in said[0]
    assert not any(u.startswith("lr_mode:") for u in _answer(_table(0.0), "per_layer").band.unreliable)


@pytest.mark.parametrize("mode", ["per_layer", "global"])
def test_an_interval_that_holds_both_modes_says_nothing(mode):
    # two close widths: the exponent's interval spans 0 and -1 alike
    rec = _answer(_table(-0.5, widths=(64, 96), seed=3), mode)
    assert not any(u.startswith("lr_mode:") for u in rec.band.unreliable)


def test_the_modes_are_told_apart_at_95_whatever_the_fits_level():
    # a fit at 50%: its interval is narrow enough to exclude a theory the 95% one holds (a code review)
    df = _table(-0.5, widths=(64, 96), seed=3)
    fit = fit_table(df, n_boot=50, confidence_level=0.5)
    e = fit.groups[0].exponent
    assert e.ci.high < 0.0 or e.ci.low > -1.0  # the 50% interval leaves out one mode's theory
    for mode in ("per_layer", "global"):
        rec = recommend_from_fit(fit, 4096, selector={"parameterization": "mup", "optimizer": "adam",
                                                      "lr_mode": mode})
        assert not any(u.startswith("lr_mode:") for u in rec.band.unreliable)
