"""Synthetic sweep tables with a known truth, shared by the fitting tests."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

MUP = {"parameterization": "mup", "optimizer": "adam", "alignment": "full", "lr_mode": "per_layer"}


def lr_gamma_sweep(*, seeds: int = 1, noise: float = 0.001, diverge_above: float | None = None) -> pd.DataFrame:
    """LR x gamma_hidden at widths 64-512 under muP: LR* = 1e-2 at every width, gamma_hidden* = 1.5, best loss
    2 + 20 w^-1/2, curvatures 0.02 (LR) and 0.01 (gamma) per octave^2, multiplicative noise ``noise``; runs more
    than ``diverge_above`` octaves above LR* diverge (NaN loss)."""
    rng = np.random.default_rng(0)
    rows = []
    for w in (64, 128, 256, 512):
        x_opt = math.log2(1e-2)
        for x in x_opt + np.arange(-2.0, 2.01, 0.5):
            for gh in 2.0 ** np.arange(-2.0, 2.01, 0.5):
                d_lr, d_g = x - x_opt, math.log2(gh) - math.log2(1.5)
                best = 2 + 20 * w**-0.5
                for seed in range(seeds):
                    diverged = diverge_above is not None and d_lr > diverge_above
                    loss = math.nan if diverged else (
                        best * (1 + 0.02 * d_lr**2 + 0.01 * d_g**2) * (1 + noise * rng.standard_normal()))
                    rows.append({**MUP, "width": w, "beta": 2.0**x, "gamma_hidden": gh, "final_loss": loss,
                                 "seed": seed, "diverged": diverged})
    return pd.DataFrame(rows)
