"""Synthetic sweeps with a known truth, for tests, benchmarks and demos.

The loss at width w and x = log2 LR is a basin around x*(w) = log2 C + e log2(w / base):
L = L*(w) (1 + k (x - x*)^2), with k larger above the optimum when ``asymmetry`` > 1, L*(w) = E + A w^-alpha,
relative Gaussian seed noise, and divergence (NaN loss, diverged=True) above x* + ``edge_octaves``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def synthetic_sweep(
    widths: tuple[int, ...] = (64, 128, 256, 512, 1024),
    *,
    exponent: float = -1.0,
    lr_base: float = 1e-2,
    base_width: int = 64,
    seeds: int = 3,
    noise: float = 0.002,
    curvature: float = 0.02,
    asymmetry: float = 1.0,
    edge_octaves: float | None = 2.0,
    step: float = 0.5,
    half_range: float = 3.0,
    grid_center_exponent: float | None = None,
    grid_offset: float = 0.0,
    loss_law: tuple[float, float, float] = (2.0, 20.0, 0.5),
    group: dict[str, Any] | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per run in the sweep-table contract's columns (plus ``group``'s columns)."""
    rng = np.random.default_rng(seed)
    E, A, alpha = loss_law
    center_e = exponent if grid_center_exponent is None else grid_center_exponent
    rows = []
    for w in widths:
        z = np.log2(w / base_width)
        x_true = np.log2(lr_base) + exponent * z
        # a grid centred on a guess, not on the truth: the optimum falls between grid points
        c = np.log2(lr_base) + grid_offset + center_e * z + rng.uniform(-step / 2, step / 2)
        grid = c + np.arange(-half_range, half_range + 1e-9, step)
        best = E + A * w ** (-alpha)
        for x in grid:
            d = x - x_true
            k = curvature * (asymmetry if d > 0 else 1.0)
            for s in range(seeds):
                div = edge_octaves is not None and d > edge_octaves
                loss = np.nan if div else best * (1 + k * d * d) * (1 + noise * rng.standard_normal())
                rows.append({**(group or {}), "width": int(w), "base_width": base_width, "beta": float(2.0**x),
                             "seed": s, "final_loss": loss, "diverged": bool(div)})
    return pd.DataFrame(rows)
