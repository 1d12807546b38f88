"""``--verify-constants``: the fitter's constants-consistency test on sweep rows around the tuned constants.

On synthetic rows with a known optimum per width: a readout constant whose optimum stays put is judged
width-independent; one whose optimum drifts with width is not; the embedding constant (never drifting) stays
width-independent either way."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from abcscale.schemas.theory import PerLayer
from abcscale.usecases.tune_verify import CONSTANT_FACTORS, constants_consistency

TUNED = PerLayer(embedding=2.0, hidden=1.0, readout=4.0)
NAMES = ["gamma_embedding", "gamma_readout"]


def rows(drift: float, seed: int = 0) -> pd.DataFrame:
    """Rows as the check's sweeps give them: each constant times the factors (the other at its tuned value) x
    5 betas x 3 seeds at widths 32..512; the readout's optimum is TUNED.readout * (width / 32)^drift (five
    widths: the drift's t interval has widths - 2 degrees of freedom, and with three it holds almost anything)."""
    rng = np.random.default_rng(seed)
    out = []
    for width in (32, 64, 128, 256, 512):
        best = {"embedding": TUNED.embedding, "readout": TUNED.readout * (width / 32) ** drift}
        for name in NAMES:
            layer = name.removeprefix("gamma_")
            for f in CONSTANT_FACTORS:
                g = {"embedding": TUNED.embedding, "readout": TUNED.readout} | {layer: TUNED[layer] * f}
                for log2_lr in (-8.0, -7.0, -6.0, -5.0, -4.0):
                    bowl = 0.05 * (log2_lr + 6) ** 2 + sum(0.05 * math.log2(g[k] / best[k]) ** 2 for k in g)
                    for s in range(3):
                        out.append({"width": width, "beta": 2.0 ** log2_lr, "seed": s, "diverged": False,
                                    "eval_loss": 2.0 + bowl + rng.normal(0, 0.002),
                                    "gamma_embedding": g["embedding"], "gamma_readout": g["readout"]})
    return pd.DataFrame(out)


@pytest.mark.parametrize(("drift", "readout_ok"), [(0.0, True), (0.25, False)])
def test_the_fitter_judges_each_constant_s_drift(drift, readout_ok):
    check = constants_consistency(rows(drift), TUNED, NAMES, base_width=32)
    assert check.width_independent == {"gamma_embedding": True, "gamma_readout": readout_ok}
    fits = {f.name: f for f in check.fits}
    assert fits["gamma_embedding"].optimum.ci.low <= TUNED.embedding <= fits["gamma_embedding"].optimum.ci.high
    drift_fit = fits["gamma_readout"].drift_exponent
    assert drift_fit is not None and drift_fit.ci.low <= drift <= drift_fit.ci.high
    assert check.widths == [32, 64, 128, 256, 512]
    assert any("gamma_readout: its optimum drifts" in n for n in check.notes) == (not readout_ok)


def test_a_drift_interval_too_wide_to_tell_is_no_verdict():
    """Three widths and loud noise: the drift's interval held 0 by holding everything ([-5.9, +6.8] in a review,
    session 31) and the check said "width-independent: yes"."""
    from abcscale.usecases.tune_verify import MAX_DRIFT_INTERVAL

    noisy = rows(0.0, seed=3)
    noisy = noisy[noisy["width"] <= 128].copy()
    noisy["eval_loss"] += np.random.default_rng(4).normal(0, 0.3, len(noisy))
    check = constants_consistency(noisy, TUNED, NAMES, base_width=32)
    fits = {f.name: f for f in check.fits}
    for name, verdict in check.width_independent.items():
        d = fits[name].drift_exponent
        if d is not None and d.ci.high - d.ci.low > MAX_DRIFT_INTERVAL:
            assert verdict is None and any(n.startswith(f"{name}: the drift's interval") for n in check.notes)
    assert None in check.width_independent.values()  # this table's noise makes at least one too wide
