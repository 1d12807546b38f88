"""Coordinate check: does each layer's activation size stay flat across width during training?

Each width trains a few steps at the same base LR; per layer and step we fit the slope of log activation
RMS against log width. A correct parameterization keeps coordinates O(1) (slope ~ 0), a wrong one blows up
(slope ~ 1/2 or 1). Shrinking is not a failure: muP's logits start at n^-1/2 by design. A run that diverged
(a NaN or an infinity in any seed) is a failure at that step (slope +inf, ``diverged``); an activation that is
exactly zero (a zero-initialised readout at step 0) is not growth: the slope is fitted on the widths where it is
not zero (0 with fewer than two).

At small widths the seeds' draws move a width's RMS by tens of percent, so each slope carries an interval
(``slope_interval``). The slope is the least-squares line of each width's mean log RMS (its seeds' geometric
mean) against log width, ``sum_w c_w y_w`` with ``c_w = (x_w - xbar) / Sxx``; its variance is
``sum_w c_w^2 s_w^2 / n_w`` from the seeds' spread of log RMS, with Welch-Satterthwaite degrees of freedom for
the t quantile (logs: a seed whose activations ran away by orders of magnitude is one large value on a log
scale, not a mean and a variance it dominates). With one seed the widths' scatter about the line gives it (three
widths or more). A layer **passes** when no step's slope exceeds ``max_slope`` (the point estimates, as without
intervals), **fails** when a step's slope exceeds it with its whole interval above it (or a run diverged), and is
**unclear** otherwise: the noise could explain the excess, and more seeds or widths would tell. A pass whose
interval reaches above ``max_slope`` is said in ``CoordCheck.notes`` (few seeds or widths rule out little
growth). The interval is the seeds' noise (not the curvature of a log-log line that is not straight), at ``level``
per step (not adjusted for the steps and layers judged together).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import ValidationError
from scipy import stats

from abcscale.runner import data
from abcscale.runner.spec import MAX_STEPS, SweepSpec
from abcscale.runner.sweep import check_model, compile_ahead, run_cell
from abcscale.schemas.errors import validation_message

Verdict = Literal["pass", "fail", "unclear"]


@dataclass(frozen=True)
class LayerVerdict:
    layer: str
    layer_type: str
    slopes: tuple[float, ...]  # one per recorded step; +inf where a run diverged
    worst_step: int
    worst_slope: float
    passed: bool
    diverged_steps: tuple[int, ...] = ()  # steps where some width's run (any seed) was not finite
    # per step, the slope's interval at the check's level (slope_interval; (nan, nan) for one seed at two widths,
    # (inf, inf) where a run diverged)
    intervals: tuple[tuple[float, float], ...] = ()
    verdict: Verdict = "pass"
    decisive_step: int = 0  # the step whose slope and interval decided the verdict (a FAIL's surest one)


@dataclass(frozen=True)
class CoordCheck:
    spec: SweepSpec
    max_slope: float
    # width, step, layer, act_rms (the seeds' geometric mean, as the slopes are fitted), update_rms, alignment_A
    # (the seeds' means)
    table: pd.DataFrame
    layers: list[LayerVerdict]
    level: float = 0.95  # each step's slope interval (two-sided), not adjusted for the steps and layers
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        """``fail`` if any layer fails, else ``unclear`` if any is unclear, else ``pass``."""
        found = {v.verdict for v in self.layers}
        return "fail" if "fail" in found else "unclear" if "unclear" in found else "pass"

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"


def slope_interval(widths: Sequence[float], per_width: Sequence[np.ndarray], level: float = 0.95
                   ) -> tuple[float, float, float]:
    """The slope of log RMS against log width and its ``level`` interval.

    ``per_width[i]`` holds width ``i``'s per-seed RMS values (finite and positive). The slope is the least-squares
    line through each width's mean log RMS (its seeds' geometric mean). Its interval comes from the seeds' spread of
    log RMS (Welch-Satterthwaite df) when every width has two seeds or more, else from the widths' scatter about the
    line (df = widths - 2) when there are three widths or more; with two widths and one seed there is none (NaN).
    Seeds that agree exactly give a zero-width interval."""
    x = np.log(np.asarray(widths, float))
    logs = [np.log(np.asarray(a, float)) for a in per_width]
    y = np.array([la.mean() for la in logs])
    sxx = float(np.sum((x - x.mean()) ** 2))
    c = (x - x.mean()) / sxx
    slope = float(c @ y)
    n = np.array([len(la) for la in logs])
    if np.all(n >= 2):
        parts = c ** 2 * np.array([np.var(la, ddof=1) for la in logs]) / n
        var = float(parts.sum())
        if var == 0.0:
            return slope, slope, slope
        df = var ** 2 / float(np.sum(parts ** 2 / (n - 1)))  # Welch-Satterthwaite
    elif len(x) >= 3:
        resid = y - y.mean() - slope * (x - x.mean())
        df = len(x) - 2
        var = float(resid @ resid) / df / sxx
    else:
        return slope, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, df)) * math.sqrt(var)
    return slope, slope - half, slope + half


def judge(runs: pd.DataFrame, max_slope: float, level: float = 0.95) -> list[LayerVerdict]:
    """Per layer, the slopes, their intervals and the verdict from per-seed rows (width, step, layer,
    layer_type, act_rms; any seeds per width). Every step of a layer must hold the same widths."""
    verdicts = []
    for layer, g in runs.groupby("layer", sort=False):
        widths = sorted(float(w) for w in g["width"].unique())
        slopes: list[float] = []
        intervals: list[tuple[float, float]] = []
        diverged: list[int] = []
        for i, (step, gs) in enumerate(g.groupby("step")):  # the steps recorded: 0, 1, ..., steps
            by_width: dict[float, np.ndarray] = {float(w): gs["act_rms"].to_numpy(float)[gs["width"].to_numpy() == w]
                                                 for w in gs["width"].unique()}
            if sorted(by_width) != widths:
                lacking = ", ".join(f"{w:g}" for w in sorted(set(widths) - set(by_width)))
                raise ValueError(f"runs: layer {layer!r} has no rows at width(s) {lacking} at step {step}")
            if not all(np.all(np.isfinite(a)) for a in by_width.values()):  # one seed is enough: not averaged away
                slopes.append(math.inf)
                intervals.append((math.inf, math.inf))
                diverged.append(i)
                continue
            # exactly zero: nothing there to grow (a zero-initialised layer), not log(0) = -inf; the slope is
            # fitted on the seeds and widths that are not zero
            positive = {w: a[a > 0] for w, a in by_width.items() if np.any(a > 0)}
            if len(positive) < 2:
                slopes.append(0.0)
                intervals.append((0.0, 0.0))
                continue
            slope, low, high = slope_interval(list(positive), list(positive.values()), level)
            slopes.append(slope)
            intervals.append((low, high))
        worst = int(np.argmax(slopes))
        over = [i for i, s in enumerate(slopes) if s > max_slope]
        sure = [i for i in over if intervals[i][0] > max_slope]  # NaN (no interval) is never sure
        if not over:
            verdict: Verdict = "pass"
            decisive = worst
        elif diverged or sure:
            verdict = "fail"
            # the step that decided it: a diverged one, else the one whose interval lies highest above the bound
            decisive = diverged[0] if diverged else max(sure, key=lambda i: intervals[i][0])
        else:
            verdict = "unclear"
            decisive = worst
        verdicts.append(LayerVerdict(str(layer), str(g["layer_type"].iloc[0]), tuple(slopes), worst, slopes[worst],
                                     verdict == "pass", tuple(diverged), tuple(intervals), verdict, decisive))
    return verdicts


def _geometric_mean(a: pd.Series) -> float:
    """The seeds' geometric mean of the positive values (0 if none is), what the slopes are fitted on."""
    v = a.to_numpy(float)
    v = v[v > 0]
    return float(np.exp(np.log(v).mean())) if len(v) else 0.0


def coord_check(spec: SweepSpec, *, log2_lr: float, steps: int = 5, max_slope: float = 0.25, seeds: int = 4,
                level: float = 0.95, lr_exponents: tuple[float, float, float] | None = None,
                on_status: Callable[[str], None] | None = None) -> CoordCheck:
    """Train ``steps`` updates at every width of ``spec`` (one parameterization, optimizer, alignment,
    lr_mode) and judge the slopes. Steps are counted after each update: step 0 is the initialisation.
    The RMS is averaged over ``seeds`` runs (one vmapped call): at small widths one draw of the weights
    alone moves it by tens of percent. ``on_status`` hears what runs now ("compiling width 64", ...)."""
    if not (max_slope > 0 and math.isfinite(max_slope)):
        raise ValueError(f"max_slope: must be a positive number, got {max_slope}")
    if not 0 < level < 1:
        raise ValueError(f"level: must lie between 0 and 1, got {level}")
    if not math.isfinite(log2_lr):
        raise ValueError(f"log2_lr: must be finite, got {log2_lr}")
    if steps < 1:
        raise ValueError(f"steps: must be a positive integer, got {steps}")
    if steps >= MAX_STEPS:  # its runs train one update more: the spec's "10000001 is more than" named no input
        raise ValueError(f"steps: a coordinate check trains at most {MAX_STEPS - 1:,} updates, got {steps:,}")
    try:
        spec = spec.with_overrides(log2_lr=[log2_lr], seeds=seeds, steps=steps + 1, schedule="constant",
                                   warmup=0.0, coord_steps=list(range(steps + 1)), curves=False, batching="vmap")
    except ValidationError as exc:  # the spec's limits speak of its steps, one more than the check was given
        said, text = f"steps: {steps + 1} ", validation_message(exc)
        if not text.startswith(said):
            raise
        raise ValueError(f"steps: {steps} (a coordinate check trains {steps + 1}) {text[len(said):]}") from None
    cells = spec.cells()
    if len({(c.parameterization, c.optimizer, c.alignment, c.lr_mode) for c in cells}) != 1 or len(cells) < 2:
        raise ValueError("widths: a coordinate check needs one configuration and at least two widths")
    check_model(spec)
    from abcscale.runner.train import Compiler

    status = on_status or (lambda _: None)
    frames = []
    with Compiler() as compiler, data.held():
        compile_ahead(spec, cells, compiler)
        for cell in cells:
            status(f"training width {cell.width}")
            frames.append(run_cell(spec, cell, compiler=compiler, lr_exponents=lr_exponents,
                                   on_compile=lambda c: status(f"compiling width {c.width}")).coord)
    keys = ["width", "step", "layer", "layer_type"]
    runs = pd.concat(frames, ignore_index=True)
    table = runs.groupby(keys, sort=False, as_index=False).agg(
        act_rms=("act_rms", _geometric_mean), update_rms=("update_rms", "mean"), alignment_A=("alignment_A", "mean"))
    # the mean skips NaN: a seed that diverged would vanish into the others' average, so any one makes it inf
    bad = runs.assign(bad=~np.isfinite(runs["act_rms"].to_numpy(float))).groupby(keys, sort=False)["bad"].any()
    table.loc[bad.to_numpy(), "act_rms"] = math.inf
    layers = judge(runs, max_slope, level)
    notes = [] if seeds > 1 else ["one seed: the intervals come from the widths' scatter about the line (none with "
                                  "two widths, where a slope above the bound is unclear); --seeds 2 or more read "
                                  "the seeds' spread"]
    # activations not finite before any update are the model's forward pass: the verdict's "lower the LR" cannot help
    if at_init := [v.layer for v in layers if 0 in v.diverged_steps]:
        notes.append(f"{', '.join(at_init)} not finite at step 0, the initialisation before any update: the model's "
                     "forward pass, not the learning rate (a lower --log2-base-lr cannot fix it)")
    # each layer's highest interval end with its step: the table shows the deciding step's interval, and a note's
    # "+0.93" from another step read as a number the table did not hold (a user review)
    loose = [(v.layer, *max((high, t) for t, (_, high) in enumerate(v.intervals))) for v in layers
             if v.verdict == "pass" and any(high > max_slope for _, high in v.intervals)]
    if loose:
        names = ", ".join(layer for layer, _, _ in loose)
        reach = ", ".join(f"{high:+.2f} at t={t}" for _, high, t in loose)
        said = (f"{names} passes on its slopes, but its {level:.0%} interval reaches" if len(loose) == 1 else
                f"{names} pass on their slopes, but their {level:.0%} intervals reach")
        notes.append(f"{said} above {max_slope:g} (to {reach}): these seeds and widths cannot rule out that much "
                     "growth; more --seeds or a wider --widths range narrow it")
    return CoordCheck(spec, max_slope, table, layers, level, notes)


def panel_title(v: LayerVerdict) -> str:
    """A plot panel's title: the layer, its verdict and the slope of the step that decided it, as the table shows
    them (it said FAIL for an unclear layer, and the worst step's slope where a FAIL was decided at another)."""
    word = {"pass": "ok", "fail": "FAIL", "unclear": "unclear"}[v.verdict]
    return f"{v.layer} {word} ({v.slopes[v.decisive_step]:+.2f} at t={v.decisive_step})"


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
        ax.set_title(panel_title(v), fontsize=9)
    for ax in list(axes.flat)[len(layers):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.supxlabel("width")
    fig.supylabel("activation RMS")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
