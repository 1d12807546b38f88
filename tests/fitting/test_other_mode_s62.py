"""A fit whose exponent excludes theory's for its lr_mode and holds the other mode's says so at fit time (session
62, a user review: a microsoft/mup sweep, one MuAdam lr per run, fitted as `--lr-mode global` read "inconsistent"
with a 4.4-octave band, and only `recommend` said the sweep looked per_layer)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abcscale.fitting import fit_table

WIDTHS = (128, 256, 512, 1024)


def _table(exponent: float, mode: str, seed: int = 0) -> pd.DataFrame:
    """muP + Adam, LR* = 3e-3 (w / 128)^exponent on a half-octave grid, a quadratic basin, 2 seeds, noise 0.003."""
    rng = np.random.default_rng(seed)
    rows = []
    for w in WIDTHS:
        star = np.log2(3e-3) + exponent * np.log2(w / 128)
        for x in np.arange(-13.0, -4.9, 0.5):
            for s in range(2):
                loss = 2.0 + 8.0 * w**-0.5 + 0.03 * (x - star) ** 2 + rng.normal(0, 0.003)
                rows.append({"width": w, "beta": 2.0**x, "seed": s, "final_loss": loss, "parameterization": "mup",
                             "optimizer": "adam", "lr_mode": mode})
    return pd.DataFrame(rows)


def _notes(g) -> list[str]:
    return [w for w in g.warnings if w.startswith("lr_mode: the fitted exponent's 95% interval")]


@pytest.mark.parametrize(("truth", "told", "other"), [(0.0, "global", "per_layer"), (-1.0, "per_layer", "global")])
def test_the_other_mode_is_named_where_the_exponent_holds_its_theory(truth, told, other):
    g = fit_table(_table(truth, told), n_boot=50).groups[0]
    assert g.consistent is False
    (note,) = _notes(g)
    assert f"for a {other} sweep" in note and f"fit again with lr_mode {other}" in note


@pytest.mark.parametrize(("truth", "mode"), [(0.0, "per_layer"), (-1.0, "global")])
def test_nothing_is_said_where_the_mode_fits(truth, mode):
    g = fit_table(_table(truth, mode), n_boot=50).groups[0]
    assert g.consistent is True and not _notes(g)


def test_nothing_is_said_where_neither_mode_fits():
    g = fit_table(_table(-2.0, "per_layer"), n_boot=50).groups[0]  # steeper than either theory
    assert g.consistent is False and not _notes(g)
