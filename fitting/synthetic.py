"""Synthetic sweeps with a known truth, for tests, benchmarks and demos.

The loss at width w and x = log2 LR is a basin around x*(w) = log2 C + e log2(w / base):
L = L*(w) (1 + k (x - x*)^2), with k larger above the optimum when ``asymmetry`` > 1, L*(w) = E + A w^-alpha,
relative Gaussian seed noise, and divergence (NaN loss, diverged=True) above x* + ``edge_octaves``.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    offsets: dict[int, float] | None = None,
) -> pd.DataFrame:
    """One row per run in the sweep-table contract's columns (plus ``group``'s columns).

    ``offsets`` moves each width's true optimum off the line by that many octaves (width-level jitter).
    """
    rng = np.random.default_rng(seed)
    E, A, alpha = loss_law
    center_e = exponent if grid_center_exponent is None else grid_center_exponent
    rows = []
    for w in widths:
        z = np.log2(w / base_width)
        x_true = np.log2(lr_base) + exponent * z + (offsets or {}).get(int(w), 0.0)
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


@dataclass(frozen=True)
class Truth:
    """The law a misspecified sweep was drawn from, and each width's own jitter off it (octaves)."""

    log2_constant: float
    exponent: float
    base_width: int
    offsets: dict[int, float]

    def log2_lr(self, width: int) -> float:
        """The true optimum at ``width``: the line plus that width's jitter (drawn for every width asked for)."""
        return self.log2_constant + self.exponent * float(np.log2(width / self.base_width)) + self.offsets[width]


def misspecified_sweep(
    rng: np.random.Generator,
    *,
    theory_exponent: float = 0.0,
    group: dict[str, Any] | None = None,
    widths: tuple[int, ...] = (32, 64, 128),
    targets: tuple[int, ...] = (256, 512, 1024, 4096),
    exponent_sd: float = 0.12,
    theory_error: float = 0.0,
    jitter_sd: float = 0.15,
    seeds: int = 2,
    step: float = 0.5,
) -> tuple[pd.DataFrame, Truth]:
    """A sweep as real ones are: the true exponent is theory's plus N(0, ``exponent_sd``^2), every width's
    optimum (fitted and target widths alike) is off the line by N(0, ``jitter_sd``^2), the grid is centred on
    theory's line (where a user would put it), the basin is 1-2.5x steeper above the optimum, seed noise is
    0.1-0.4% and runs 1.5-2.5 octaves above the optimum diverge. ``theory_error`` moves the true exponent
    off theory by that much more (a wrong theory)."""
    base = widths[0]
    offsets = {w: float(rng.normal(0.0, jitter_sd)) for w in (*widths, *targets)}
    truth = Truth(log2_constant=float(np.log2(1e-2) + rng.uniform(-1, 1)),
                  exponent=float(theory_exponent + theory_error + rng.normal(0.0, exponent_sd)), base_width=base,
                  offsets=offsets)
    df = synthetic_sweep(
        widths, exponent=truth.exponent, lr_base=2.0**truth.log2_constant, base_width=base, seeds=seeds,
        noise=float(rng.uniform(0.001, 0.004)), asymmetry=float(rng.uniform(1.0, 2.5)),
        edge_octaves=float(rng.uniform(1.5, 2.5)), step=step, grid_center_exponent=theory_exponent,
        grid_offset=float(rng.uniform(-0.5, 0.5)), group=group, seed=int(rng.integers(2**31)), offsets=offsets,
    )
    return df, truth


@dataclass(frozen=True)
class BandRow:
    """Over the trials at one extrapolation factor: how often the band held the truth, and its median width."""

    factor: int
    coverage: float
    median_octaves: float
    n: int


#: the group theory's exponent comes from in the studies: muP + Adam with per-layer LRs (exponent 0)
PER_LAYER_GROUP = {"parameterization": "mup", "optimizer": "adam", "alignment": "full", "lr_mode": "per_layer"}


def band_study(trials: int, *, theory: bool, seed: int = 0, factors: tuple[int, ...] = (2, 4, 8, 32),
               level: float = 0.95, n_boot: int = 200, group: dict[str, Any] | None = None,
               theory_exponent: float = 0.0, **sweep: Any) -> list[BandRow]:
    """Coverage and median width (octaves) of the ``level`` prediction band at ``factors`` x the largest fitted
    width, over ``trials`` misspecified sweeps (:func:`misspecified_sweep`). ``theory=False`` drops the
    group columns theory needs, so the exponent is free. ``group`` (default :data:`PER_LAYER_GROUP`) is the
    table's theory setup and ``theory_exponent`` what theory says for it, where the truth is drawn around and
    the grids centred (a global LR's full-alignment exponent, say). Trials where nothing was fitted count as
    misses."""
    from abcscale.fitting.pipeline import fit_table
    from abcscale.fitting.predict import predict_group

    rng = np.random.default_rng(seed)
    group = PER_LAYER_GROUP if group is None else group
    widths = sweep.get("widths", (32, 64, 128))
    targets = tuple(f * max(widths) for f in factors)
    hits = np.zeros((trials, len(factors)), dtype=bool)
    octaves = np.full((trials, len(factors)), np.inf)
    for t in range(trials):
        df, truth = misspecified_sweep(rng, theory_exponent=theory_exponent,
                                       group=group if theory else {"model": "m"}, targets=targets, **sweep)
        g = fit_table(df, n_boot=n_boot, seed=t, confidence_level=level).groups[0]
        if g.law is None:
            continue
        for j, w in enumerate(targets):
            p = predict_group(g, w, confidence_level=level)
            lo, hi = np.log2(p.ci.low), np.log2(p.ci.high)
            hits[t, j] = lo <= truth.log2_lr(w) <= hi
            octaves[t, j] = hi - lo
    return [BandRow(factor=f, coverage=float(hits[:, j].mean()), median_octaves=float(np.median(octaves[:, j])),
                    n=trials) for j, f in enumerate(factors)]


@dataclass(frozen=True)
class ExponentRow:
    """Over the trials: how often the free exponent's interval held the truth, its median width (octaves of LR
    per doubling of width), and how often it left out theory's exponent (the ``--expect-theory`` gate's failures:
    its power where theory is off, its false alarms where theory holds)."""

    coverage: float
    median_width: float
    rejects_theory: float
    n: int


def exponent_study(trials: int, *, seed: int = 0, level: float = 0.95, n_boot: int = 100,
                   **sweep: Any) -> ExponentRow:
    """The exponent's ``level`` interval over ``trials`` misspecified sweeps (:func:`misspecified_sweep`, theory's
    exponent 0 as muP's per-layer LR has it). Trials where no law was fitted count as misses."""
    from abcscale.fitting.pipeline import fit_table

    rng = np.random.default_rng(seed)
    group = PER_LAYER_GROUP
    hits, widths, rejects = np.zeros(trials, dtype=bool), np.full(trials, np.inf), np.zeros(trials, dtype=bool)
    for t in range(trials):
        df, truth = misspecified_sweep(rng, theory_exponent=0.0, group=group, targets=(), **sweep)
        g = fit_table(df, n_boot=n_boot, seed=t, confidence_level=level).groups[0]
        if g.exponent is None:
            continue
        hits[t] = g.exponent.ci.low <= truth.exponent <= g.exponent.ci.high
        widths[t] = g.exponent.ci.high - g.exponent.ci.low
        rejects[t] = g.consistent is False
    return ExponentRow(coverage=float(hits.mean()), median_width=float(np.median(widths)),
                       rejects_theory=float(rejects.mean()), n=trials)
