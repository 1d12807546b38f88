"""Coordinate check: does each layer's activation size stay flat across width during training?

Each width trains a few steps at the same base LR; per layer and step we fit the slope of log activation
RMS against log width. A layer passes when no step's slope exceeds ``max_slope``: a correct
parameterization keeps coordinates O(1) (slope ~ 0), a wrong one blows up (slope ~ 1/2 or 1). Shrinking
is not a failure: muP's logits start at n^-1/2 by design. A run that diverged (a NaN or an infinity in any
seed) is a failure at that step (slope +inf, ``diverged``); an activation that is exactly zero (a zero-initialised
readout at step 0) is not growth: the slope is fitted on the widths where it is not zero (0 with fewer than two).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from abcscale.runner.spec import SweepSpec
from abcscale.runner.sweep import check_model, compile_ahead, run_cell


@dataclass(frozen=True)
class LayerVerdict:
    layer: str
    layer_type: str
    slopes: tuple[float, ...]  # one per recorded step; +inf where a run diverged
    worst_step: int
    worst_slope: float
    passed: bool
    diverged_steps: tuple[int, ...] = ()  # steps where some width's run (any seed) was not finite


@dataclass(frozen=True)
class CoordCheck:
    spec: SweepSpec
    max_slope: float
    table: pd.DataFrame  # width, step, layer, act_rms, update_rms, alignment_A
    layers: list[LayerVerdict]

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.layers)


def coord_check(spec: SweepSpec, *, log2_lr: float, steps: int = 5, max_slope: float = 0.25, seeds: int = 4,
                lr_exponents: tuple[float, float, float] | None = None,
                on_status: Callable[[str], None] | None = None) -> CoordCheck:
    """Train ``steps`` updates at every width of ``spec`` (one parameterization, optimizer, alignment,
    lr_mode) and judge the slopes. Steps are counted after each update: step 0 is the initialisation.
    The RMS is averaged over ``seeds`` runs (one vmapped call): at small widths one draw of the weights
    alone moves it by tens of percent. ``on_status`` hears what runs now ("compiling width 64", ...)."""
    if not (max_slope > 0 and math.isfinite(max_slope)):
        raise ValueError(f"max_slope: must be a positive number, got {max_slope}")
    if not math.isfinite(log2_lr):
        raise ValueError(f"log2_lr: must be finite, got {log2_lr}")
    if steps < 1:
        raise ValueError(f"steps: must be a positive integer, got {steps}")
    spec = spec.with_overrides(log2_lr=[log2_lr], seeds=seeds, steps=steps + 1, schedule="constant",
                               warmup=0.0, coord_steps=list(range(steps + 1)), curves=False, batching="vmap")
    cells = spec.cells()
    if len({(c.parameterization, c.optimizer, c.alignment, c.lr_mode) for c in cells}) != 1 or len(cells) < 2:
        raise ValueError("widths: a coordinate check needs one configuration and at least two widths")
    check_model(spec)
    from abcscale.runner.train import Compiler

    status = on_status or (lambda _: None)
    frames = []
    with Compiler() as compiler:
        compile_ahead(spec, cells, compiler)
        for cell in cells:
            status(f"training width {cell.width}")
            frames.append(run_cell(spec, cell, compiler=compiler, lr_exponents=lr_exponents,
                                   on_compile=lambda c: status(f"compiling width {c.width}")).coord)
    keys = ["width", "step", "layer", "layer_type"]
    runs = pd.concat(frames, ignore_index=True)
    table = runs.groupby(keys, sort=False, as_index=False)[["act_rms", "update_rms", "alignment_A"]].mean()
    # the mean skips NaN: a seed that diverged would vanish into the others' average, so any one makes it inf
    bad = runs.assign(bad=~np.isfinite(runs["act_rms"].to_numpy(float))).groupby(keys, sort=False)["bad"].any()
    table.loc[bad.to_numpy(), "act_rms"] = math.inf
    verdicts = []
    for layer, g in table.groupby("layer", sort=False):
        slopes: list[float] = []
        diverged: list[int] = []
        for i, (_, gs) in enumerate(g.groupby("step")):  # the steps recorded: 0, 1, ..., steps
            w, a = gs["width"].to_numpy(float), gs["act_rms"].to_numpy(float)
            if not np.all(np.isfinite(a)):
                slopes.append(math.inf)
                diverged.append(i)
                continue
            keep = a > 0  # exactly zero: nothing there to grow (a zero-initialised layer), not log(0) = -inf
            slopes.append(float(np.polyfit(np.log(w[keep]), np.log(a[keep]), 1)[0]) if keep.sum() >= 2 else 0.0)
        worst = int(np.argmax(slopes))
        verdicts.append(LayerVerdict(str(layer), g["layer_type"].iloc[0], tuple(slopes), worst, slopes[worst],
                                     bool(slopes[worst] <= max_slope), tuple(diverged)))
    return CoordCheck(spec, max_slope, table, verdicts)


def plot(result: CoordCheck, path: str) -> None:
    """Activation RMS against width, one line per step, one panel per layer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = [v.layer for v in result.layers]
    cols = min(4, len(layers))
    rows = -(-len(layers) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, v in zip(axes.flat, result.layers, strict=False):
        g = result.table[result.table["layer"] == v.layer]
        for step, gs in g.groupby("step"):
            ax.plot(gs["width"], gs["act_rms"], marker="o", label=f"t={step}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(f"{v.layer} {'ok' if v.passed else 'FAIL'} ({v.worst_slope:+.2f})", fontsize=9)
    for ax in list(axes.flat)[len(layers):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.supxlabel("width")
    fig.supylabel("activation RMS")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
