"""Synthetic sweep tables with covariates (tokens D, batch size) and a known joint law, for the covariate tests.

log2 LR* = log2 C + e_size log2(N / base) + e_D log2(D / D_base) + e_B log2(B / B_base) + jitter, the loss a
basin around it, L*(N, D) = E + A N^-alpha + B D^-beta at the optimum.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

TRUTH = {"N": -0.8, "D": -0.3, "batch_size": 0.5}
SIZES = (64, 128, 256, 512)
TOKENS = (1e8, 4e8, 1.6e9)
BATCHES = (32, 128)


def covariate_sweep(*, sizes=SIZES, tokens=TOKENS, batches=BATCHES, truth=None, lr_base: float = 1e-2,
                    seeds: int = 2, noise: float = 0.002, jitter: float = 0.05, seed: int = 0,
                    size_unit: float = 1.0, asymmetry: float = 1.0, step: float = 0.5, interaction: float = 0.0,
                    curvature: float = 0.0) -> pd.DataFrame:
    """One row per run: N (size; times ``size_unit``, e.g. 1e6 for parameter counts), D, batch_size, beta,
    seed, final_loss. ``jitter``: sd (octaves) of each curve's optimum around the law; ``asymmetry``: how many
    times steeper the basin is above the optimum than below; ``step``: the LR grid's spacing (octaves) over +-3
    octaves. ``interaction`` adds that times log2(N / N_0) log2(D / 4e8), ``curvature`` that times log2(D / 4e8)^2:
    a law off the joint plane."""
    e = {**TRUTH, **(truth or {})}
    rng = np.random.default_rng(seed)
    rows = []
    for n, d, b in itertools.product(sizes, tokens, batches):
        x_true = (np.log2(lr_base) + e["N"] * np.log2(n / sizes[0]) + e["D"] * np.log2(d / 4e8)
                  + e["batch_size"] * np.log2(b / 32) + jitter * rng.standard_normal()
                  + interaction * np.log2(n / sizes[0]) * np.log2(d / 4e8) + curvature * np.log2(d / 4e8) ** 2)
        grid = x_true + rng.uniform(-step / 2, step / 2) + np.arange(-3.0, 3.01, step)
        best = 2.0 + 20 * n**-0.5 + 400 * d**-0.3
        for x in grid:
            for s in range(seeds):
                k = asymmetry if x > x_true else 1.0
                loss = best * (1 + 0.02 * k * (x - x_true) ** 2) * (1 + noise * rng.standard_normal())
                rows.append({"N": int(n * size_unit), "D": d, "batch_size": b, "beta": float(2.0**x), "seed": s,
                             "final_loss": loss})
    return pd.DataFrame(rows)
