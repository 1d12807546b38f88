"""Coordinate check: does each layer's activation size stay flat across width during training?

Each width trains a few steps at the same base LR; per layer and step we fit the slope of log activation
RMS against log width. A layer passes when no step's slope exceeds ``max_slope``: a correct
parameterization keeps coordinates O(1) (slope ~ 0), a wrong one blows up (slope ~ 1/2 or 1). Shrinking
is not a failure: muP's logits start at n^-1/2 by design.
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
    slopes: tuple[float, ...]  # one per recorded step
    worst_step: int
    worst_slope: float
    passed: bool


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
    table = pd.concat(frames, ignore_index=True).groupby(keys, sort=False, as_index=False)[
        ["act_rms", "update_rms", "alignment_A"]].mean()
    verdicts = []
    for layer, g in table.groupby("layer", sort=False):
        slopes = []
        for _, gs in g.groupby("step"):
            x, y = np.log(gs["width"].to_numpy(float)), np.log(gs["act_rms"].to_numpy(float))
            slopes.append(float(np.polyfit(x, y, 1)[0]) if np.all(np.isfinite(y)) else float("inf"))
        worst = int(np.argmax(slopes))
        verdicts.append(LayerVerdict(str(layer), g["layer_type"].iloc[0], tuple(slopes), worst, slopes[worst],
                                     bool(slopes[worst] <= max_slope)))
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
