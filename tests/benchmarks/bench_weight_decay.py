"""Weight-decay transfer (``make bench-wd``): does AdamW's optimal weight decay stay put as the width grows?

docs/theory.md section 9: with the coupled form (W <- W - lr_l (u + wd_l W)) the runner gives each layer
wd_l = wd * (n/b)^c_l, so lr_l * wd_l, the inverse of the weights' averaging timescale, is the same at every
width (Wang & Aitchison 2024). Measured here on the runner's transformer, muP + ``adamw`` with per-layer LRs
at one fixed base LR near its optimum, against a log-spaced grid of the base weight decay wd, side by side:

- ``rule``: the runner as it is (``constants.weight_decay = wd``, coupled);
- ``naive``: every layer keeps the base width's decay at every width (what reusing a tuned ``weight_decay``
  in ``torch.optim.AdamW`` does), so lr_l * wd_l falls as (n/b)^-c_l: c = 1 on hidden matrices, 1/2 on
  the embedding and readout under muP + Adam, and the optimum should move up by 1/2 to 1 octave per octave.

(The ``independent`` form is not a baseline: its constant wd is already that form's rule.) Two measurements
per width, each with bootstrap draws: the optimum log2 wd*, the fitting module's local-quadratic vertex
(``abcscale.fitting.optimum.fit_optimum``), and the decay edge, the log2 wd right of the optimum where the
seed-mean loss has risen 5% above its minimum (seeds resampled). At CPU scale decay gains only a few percent
over wd = 0 across about two octaves, so the optimum is an octave wide at each width, while the edge, where the
curve is steep, is resolved to a few tenths. The slope against log2 width and its 95% interval come from
refitting the line on each draw. The naive rows come from the same sweeps with
:func:`abcscale.runner.sweep.layer_hyper` wrapped to put back the base width's decays; the rows'
``weight_decay_<layer>`` columns are checked to carry them.

Results are cached under --out (one sweep folder per rule and wd), so a rerun only reprints.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd

#: the transfer benchmark's transformer, trained twice as long so that decay shapes the weights
SETTING = dict(model="transformer", parameterizations=["mup"], optimizers=["adamw"], lr_modes=["per_layer"],
               depth=1, head_dim=16, steps=200, batch=8, seq_len=32, data="default", coord_steps=[])
RULES = ("rule", "naive")


@contextlib.contextmanager
def _base_decays(decays: tuple[float, ...]) -> Iterator[None]:
    """Every cell trains with ``decays`` (the base width's) instead of the theory's per-width ones."""
    import abcscale.runner.sweep as sw

    real = sw.layer_hyper
    with mock.patch.object(sw, "layer_hyper", lambda spec, cell, *a, **k: dataclasses.replace(
            real(spec, cell, *a, **k), weight_decay=decays)):
        yield


def sweep(widths: list[int], log2_lr: float, log2_wds: list[float], seeds: int, out: Path) -> pd.DataFrame:
    """Rows of every (rule, wd, width, seed); wd = 0 (log2 -inf) is the no-decay reference, one per width."""
    from abcscale.runner.spec import SweepSpec
    from abcscale.runner.sweep import layer_hyper, run_sweep

    frames = []
    for x in [-math.inf, *log2_wds]:
        wd = 0.0 if x == -math.inf else 2.0**x
        spec = SweepSpec(**SETTING, widths=widths, base_width=widths[0], log2_lr=[log2_lr], seeds=seeds,
                         constants={"weight_decay": wd})
        base = layer_hyper(spec, spec.cells()[0]).weight_decay
        for rule in RULES if wd else RULES[:1]:
            ctx = _base_decays(base) if rule == "naive" else contextlib.nullcontext()
            sub = spec if rule == "rule" else spec.with_overrides(widths=widths[1:])
            with ctx:
                df = run_sweep(sub, out / f"{rule}-wd{x:+.2f}", progress=False)
            frames.append(df.assign(rule=rule, log2_wd=x))
    rows = pd.concat(frames, ignore_index=True)
    # the base width is the same run under both rules, and wd = 0 the same under both
    shared = rows[(rows["width"] == widths[0]) | (rows["log2_wd"] == -math.inf)]
    rows = pd.concat([rows, shared.assign(rule="naive")], ignore_index=True)
    _check_decays(rows, widths[0])
    return rows


def _check_decays(rows: pd.DataFrame, base: int) -> None:
    """The rule's rows keep each layer's lr_l * wd_l at its base-width value; the naive rows decay by wd."""
    cols = sorted(c for c in rows.columns if c.startswith("weight_decay_") and c != "weight_decay_mode")
    assert cols and all(c.replace("weight_decay_", "lr_") in rows.columns for c in cols), list(rows.columns)
    d = rows[rows["log2_wd"] > -math.inf]
    shrink = pd.DataFrame({c: d[c] * d[c.replace("weight_decay_", "lr_")] for c in cols})
    at_base = shrink[d["width"] == base].groupby(d["log2_wd"]).first().loc[d["log2_wd"]].to_numpy()
    rule = (d["rule"] == "rule").to_numpy()
    assert np.allclose(shrink.to_numpy()[rule], at_base[rule], rtol=1e-5), "rule: lr_l * wd_l moved with width"
    decays, wd = d[cols].to_numpy()[~rule], 2.0 ** d["log2_wd"].to_numpy()[~rule, None]
    assert np.allclose(decays, np.where(decays > 0, wd, 0.0), rtol=1e-5), "naive: a layer's decay is not wd"


@dataclasses.dataclass(frozen=True)
class Drift:
    """One rule's estimate of log2 wd per width (NaN: unidentified) with 95% intervals, and its slope against
    log2 width with the slope's 95% interval (from refitting the line on each bootstrap draw)."""

    rule: str
    estimator: str
    widths: tuple[int, ...]
    x: tuple[float, ...]
    ci: tuple[tuple[float, float], ...]
    slope: float
    slope_ci: tuple[float, float]


def _line(widths: list[int], x: list[float], draws: list[np.ndarray]) -> tuple[float, tuple[float, float]]:
    if not np.all(np.isfinite(x)):
        return math.nan, (math.nan, math.nan)
    slopes = np.polyfit(np.log2(widths), np.vstack(draws), 1)[0]  # one line per draw (draws are per width)
    lo, hi = np.nanquantile(slopes, [0.025, 0.975])
    return float(np.polyfit(np.log2(widths), x, 1)[0]), (float(lo), float(hi))


def _curves(rows: pd.DataFrame, rule: str) -> dict[int, pd.DataFrame]:
    """Per width: final loss (NaN = diverged) by log2 wd (rows) and seed (columns), wd = 0 left out."""
    d = rows[(rows["rule"] == rule) & (rows["log2_wd"] > -math.inf)]
    d = d.assign(loss=d["final_loss"].where(~d["diverged"], np.nan))
    return {int(w): g.pivot_table(index="log2_wd", columns="seed", values="loss", dropna=False)
            for w, g in d.groupby("width")}


def optimum_drift(rows: pd.DataFrame, rule: str, n_boot: int = 2000, seed: int = 0) -> Drift:
    """log2 wd* per width: the fitting module's local-quadratic vertex and its bootstrap draws."""
    from abcscale.fitting.optimum import Cells, fit_optimum

    rng = np.random.default_rng(seed)
    curves = _curves(rows, rule)
    x, ci, draws = [], [], []
    for c in curves.values():
        long = c.stack().rename("loss").reset_index()
        o = fit_optimum(Cells.of_runs(long["log2_wd"].to_numpy(float), long["loss"].to_numpy(float),
                                      long["seed"].to_numpy()), n_boot, rng)
        x.append(o.x_opt if o.identified and o.x_opt is not None else math.nan)
        ci.append(o.ci or (math.nan, math.nan))
        draws.append(o.draws if o.draws is not None else np.full(n_boot, np.nan))
    slope, slope_ci = _line(list(curves), x, draws)
    return Drift(rule, "optimum", tuple(curves), tuple(x), tuple(ci), slope, slope_ci)


def _edge(c: pd.DataFrame, rise: float) -> float:
    """log2 wd where the seed-mean loss, right of its minimum, first reaches (1 + rise) x that minimum
    (linear in log2 wd between grid points); NaN when it never does."""
    xs, ys = c.index.to_numpy(float), c.mean(axis=1).to_numpy(float)
    ys = np.where(np.isfinite(ys), ys, np.inf)  # a diverged cell is past the edge
    i = int(np.argmin(ys))
    level = ys[i] * (1 + rise)
    above = np.nonzero(ys[i:] >= level)[0]
    if above.size == 0:
        return math.nan
    j = i + int(above[0])
    if not np.isfinite(ys[j]):
        return float(xs[j - 1])
    return float(xs[j - 1] + (level - ys[j - 1]) / (ys[j] - ys[j - 1]) * (xs[j] - xs[j - 1]))


def edge_drift(rows: pd.DataFrame, rule: str, rise: float = 0.05, n_boot: int = 2000, seed: int = 0) -> Drift:
    """log2 wd at the decay edge (where decay costs ``rise`` of the best loss) per width; bootstrap over seeds
    (a resampled seed keeps its whole curve: the runs of one seed share init and data)."""
    rng = np.random.default_rng(seed)
    curves = _curves(rows, rule)
    x, ci, draws = [], [], []
    for c in curves.values():
        picks = rng.integers(0, c.shape[1], size=(n_boot, c.shape[1]))
        b = np.array([_edge(c.iloc[:, p], rise) for p in picks])
        x.append(_edge(c, rise))
        ci.append(tuple(np.nanquantile(b, [0.025, 0.975])) if np.isfinite(b).any() else (math.nan, math.nan))
        draws.append(b)
    slope, slope_ci = _line(list(curves), x, draws)
    return Drift(rule, f"edge (+{100 * rise:g}%)", tuple(curves), tuple(x), tuple(ci), slope, slope_ci)


def report(rows: pd.DataFrame, drifts: list[Drift]) -> str:
    """The loss curves (seed means) and the drift table, as text."""
    curve = rows.assign(wd=np.where(rows["log2_wd"] > -math.inf, 2.0 ** rows["log2_wd"], 0.0)).pivot_table(
        index="wd", columns=["rule", "width"], values="final_loss", aggfunc="mean")
    lines = ["Final train loss (seed mean) by base weight decay wd:", "", curve.round(4).to_string(), "",
             "| estimator | rule | log2 wd at " + " / ".join(map(str, drifts[0].widths)) + " (95% interval) "
             "| ratio to the base width | slope against log2 width, 95% interval |", "|---|---|---|---|---|"]
    for d in drifts:
        at = " / ".join(f"{o:+.2f} [{lo:+.2f}, {hi:+.2f}]" for o, (lo, hi) in zip(d.x, d.ci, strict=True))
        ratios = " / ".join(f"{2.0 ** (o - d.x[0]):.2f}" for o in d.x)
        lines.append(f"| {d.estimator} | {d.rule} | {at} | {ratios} | {d.slope:+.2f} [{d.slope_ci[0]:+.2f}, "
                     f"{d.slope_ci[1]:+.2f}] |")
    best = curve.min()
    lines += ["", "best seed-mean loss / at wd = 0: " + "; ".join(
        f"{r} {w}: {best[(r, w)]:.3f} / {curve.loc[0.0, (r, w)]:.3f}" for r, w in curve.columns)]
    return "\n".join(lines)


def measure(out: Path, widths: list[int], log2_lr: float, log2_wds: list[float], seeds: int) -> list[Drift]:
    t0 = time.perf_counter()
    rows = sweep(widths, log2_lr, log2_wds, seeds, out)
    drifts = [f(rows, r) for f in (optimum_drift, edge_drift) for r in RULES]
    train_s = rows.drop_duplicates(["log2_wd", "width", "run_s"])["run_s"].sum()  # shared rows once
    print(f"\n[weight decay] muP + adamw, per-layer LRs, log2 LR {log2_lr:g}; transformer depth {SETTING['depth']}, "
          f"{SETTING['steps']} steps, batch {SETTING['batch']} x {SETTING['seq_len']} bytes, {seeds} seeds, "
          f"widths {widths}, log2 wd {log2_wds[0]:g}..{log2_wds[-1]:g}; {os.cpu_count()} cores; training "
          f"{train_s / 60:.1f} min, this run's wall time {(time.perf_counter() - t0) / 60:.1f} min\n")
    print(report(rows, drifts), flush=True)
    return drifts


def check(drifts: list[Drift]) -> None:
    """Under the rule neither the optimum nor the edge moves with width (each slope's interval holds 0);
    without it the edge moves up (the naive rule's decay edge is the sharper, resolved measurement)."""
    by = {(d.estimator.split()[0], d.rule): d for d in drifts}
    for est in ("optimum", "edge"):
        d = by[(est, "rule")]
        assert d.slope_ci[0] <= 0.0 <= d.slope_ci[1], d
    naive = by[("edge", "naive")]
    assert naive.slope_ci[0] > 0.0, naive


def test_weight_decay_optimum_does_not_drift_under_the_rule():
    with tempfile.TemporaryDirectory() as tmp:
        check(measure(Path(tmp), [32, 64, 128], -5.0, list(np.arange(-3.0, 3.01, 0.5)), seeds=3))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", default="32,64,128", help="the first is the base width")
    ap.add_argument("--log2-lr", type=float, default=-5.0, help="log2 of the base LR beta (near its optimum)")
    ap.add_argument("--log2-wd", default="-3:3:0.5", help="START:STOP:STEP of log2 wd (wd = 0 is added)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path(".bench-wd"))
    args = ap.parse_args(argv)
    from abcscale.runner.spec import parse_lr_grid

    drifts = measure(args.out, [int(w) for w in args.widths.split(",")], args.log2_lr,
                     parse_lr_grid(args.log2_wd), args.seeds)
    try:
        check(drifts)
    except AssertionError as exc:
        print(f"\nphysics check failed: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
