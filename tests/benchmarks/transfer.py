"""Transfer-accuracy benchmark (`make bench-transfer`): does abcscale's prediction hold at held-out widths?

For each (parameterization, optimizer, lr_mode) row:

1. sweep the fit widths; each grid is centred where theory says the optimum should be and is widened by
   2 octaves whenever the best LR sits on an edge;
2. fit only those widths and predict LR* (with its 95% band and the safe-side LR) at the held-out widths;
3. sweep the held-out widths the same way (the grid is centred on the prediction and widened on an edge)
   and measure the truth: the fitted per-width optimum and the seed-averaged loss curve;
4. report the error in octaves, whether the 95% band covers the truth, its width in octaves and how it was
   made (theory_prior or free, fitting.scaling), and the loss penalty of using the
   predicted, the safe-side, and the baseline LR (the largest fitted width's optimum, reused unchanged)
   instead of the grid best.

Everything is cached under --out: an interrupted or repeated run resumes from the finished cells.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROWS = [
    ("standard", "adam", "global"),
    ("standard", "adam", "per_layer"),
    ("mup", "adam", "global"),
    ("mup", "adam", "per_layer"),
    ("mup", "sgd", "per_layer"),
    ("standard", "adafactor", "per_layer"),
]
START = {"adam": -5.0, "sgd": 0.0, "adafactor": -5.0}  # first guess of log2 LR* at the base width


def sweep_width(spec_kw: dict, row: tuple[str, str, str], width: int, center: float, out: Path,
                half: float, step: float) -> pd.DataFrame:
    """Sweep one width, widening the grid by 2 octaves towards an edge optimum (at most 3 times)."""
    from abcscale.runner.spec import SweepSpec
    from abcscale.runner.sweep import run_sweep

    # on the grid's lattice (multiples of step): a rerun whose prediction moved reuses the cells it already has
    center = round(center / step) * step
    lo, hi = center - half, center + half
    frames = []
    for _ in range(4):
        grid = [round(x, 6) for x in np.arange(lo, hi + 1e-9, step)]
        have = set() if not frames else set(np.round(np.log2(pd.concat(frames)["beta"]), 6))
        todo = [x for x in grid if x not in have]
        if todo:
            spec = SweepSpec(parameterizations=[row[0]], optimizers=[row[1]], lr_modes=[row[2]], widths=[width],
                             log2_lr=todo, **spec_kw)
            frames.append(run_sweep(spec, out / f"{row[0]}-{row[1]}-{row[2]}-w{width}-{todo[0]:+.2f}",
                                    progress=False))
        df = pd.concat(frames, ignore_index=True)
        curve = mean_curve(df)
        best = curve.idxmin()
        if best <= lo + 1e-9 and curve.notna().sum() > 1:
            hi, lo = lo - step, lo - 2.0
        elif best >= hi - 1e-9:
            lo, hi = hi + step, hi + 2.0
        else:
            break
    return df


def mean_curve(df: pd.DataFrame) -> pd.Series:
    """Seed-averaged final loss by log2 LR; a cell with any diverged seed is +inf."""
    d = df.assign(x=np.log2(df["beta"]).round(6), loss=df["final_loss"].where(~df["diverged"], np.inf))
    return d.groupby("x")["loss"].mean().replace(np.nan, np.inf).sort_index()


def loss_at(curve: pd.Series, x: float) -> float:
    """Loss at log2 LR x, linear in log2 LR between grid points; inf outside the swept range or past divergence."""
    xs, ys = curve.index.to_numpy(float), curve.to_numpy(float)
    if x < xs[0] or x > xs[-1]:
        return math.inf
    i = int(np.searchsorted(xs, x))
    if i < len(xs) and math.isclose(xs[i], x):
        return float(ys[i])
    a, b = ys[i - 1], ys[i]
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf
    t = (x - xs[i - 1]) / (xs[i] - xs[i - 1])
    return float(a + t * (b - a))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fit-widths", default="32,64,128")
    ap.add_argument("--test-widths", default="256,512")
    ap.add_argument("--rows", default="all", help="comma-separated indices into ROWS, or 'all'")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=32)
    ap.add_argument("--depth", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(".bench-transfer"))
    ap.add_argument("--report", type=Path, default=Path("tests/benchmarks/transfer_results.md"))
    args = ap.parse_args(argv)

    from abcscale import theory
    from abcscale.fitting import fit_table, predict_group

    fit_w = [int(w) for w in args.fit_widths.split(",")]
    test_w = [int(w) for w in args.test_widths.split(",")]
    rows = ROWS if args.rows == "all" else [ROWS[int(i)] for i in args.rows.split(",")]
    spec_kw = dict(model="transformer", steps=args.steps, batch=args.batch, seq_len=args.seq_len,
                   depth=args.depth, head_dim=16, seeds=args.seeds, base_width=fit_w[0])
    t0 = time.perf_counter()
    lines: list[str] = []
    row_times: list[str] = []
    for row in rows:
        t_row = time.perf_counter()
        e_th = theory.theory_exponent(row[0], row[1], "full", row[2])
        fit_frames = [sweep_width(spec_kw, row, w, START[row[1]] + e_th * math.log2(w / fit_w[0]), args.out,
                                  half=2.5, step=0.5) for w in fit_w]
        fit_df = pd.concat(fit_frames, ignore_index=True)
        fit = fit_table(fit_df, n_boot=500)
        g = fit.groups[0]
        largest = max((wo for wo in g.per_width if wo.lr_opt), key=lambda wo: wo.width, default=None)
        for w in test_w:
            label = f"{row[0]} / {row[1]} / {row[2]}"
            try:
                pred = predict_group(g, w)
            except ValueError as exc:
                lines.append(f"| {label} | {w} | - | - | - | - | - | - | - | - | - | {str(exc)[:80]} |")
                continue
            x_pred = math.log2(pred.lr)
            test_df = sweep_width(spec_kw, row, w, x_pred, args.out, half=2.0, step=0.5)
            truth = fit_table(test_df, n_boot=300).groups[0].per_width[0]
            curve = mean_curve(test_df)
            best = float(curve.min())
            x_true = math.log2(truth.lr_opt) if truth.lr_opt else float(curve.idxmin())

            def pen(x: float, curve=curve, best=best) -> str:
                v = loss_at(curve, x) / best - 1
                return "diverged" if not math.isfinite(v) else f"{100 * v:.2f}%"

            def verdict(c: bool | None) -> str:
                return {True: "consistent", False: "inconsistent", None: "no theory"}[c]

            covered = pred.ci95[0] <= 2.0**x_true <= pred.ci95[1]
            base_x = math.log2(largest.lr_opt) if largest else float("nan")
            lines.append(
                f"| {label} | {w} ({w / max(fit_w):g}x) | {g.exponent.estimate:+.2f} vs {e_th:+.2f} | "
                f"[{g.exponent.ci.low:+.2f}, {g.exponent.ci.high:+.2f}] {verdict(g.consistent)} | "
                f"{x_pred:+.2f} | {x_true:+.2f} | {x_pred - x_true:+.2f} | {'yes' if covered else 'no'} | "
                f"{math.log2(pred.ci95[1] / pred.ci95[0]):.2f} ({pred.method}) | "
                f"{pen(x_pred)} | {pen(math.log2(pred.safe_lr))} | {base_x - x_true:+.2f} / {pen(base_x)} |")
            print(lines[-1], flush=True)
        row_times.append(f"{row[0]} / {row[1]} / {row[2]} {time.perf_counter() - t_row:.0f} s")
        # after every row, so a run stopped by a time limit (the GPU check's) still leaves what it finished
        text = write_report(args, fit_w, test_w, lines, row_times, time.perf_counter() - t0)
    if rows:
        print(text, flush=True)
    return 0


def machine() -> str:
    """What trained: the CPU, or the accelerator JAX ran on."""
    import os
    import platform

    import jax

    dev = jax.devices()[0]
    if dev.platform == "cpu":
        return f"{platform.machine()}, {os.cpu_count()} cores, CPU only"
    return f"{platform.machine()}, {os.cpu_count()} cores, {jax.device_count()} x {dev.device_kind} ({dev.platform})"


def write_report(args: argparse.Namespace, fit_w: list[int], test_w: list[int], lines: list[str],
                 row_times: list[str], wall: float) -> str:
    header = ("| parameterization / optimizer / lr_mode | held-out width (extrapolation) | fitted exponent vs theory "
              "| its 95% CI, verdict | predicted log2 LR* | true log2 LR* | error (octaves) | 95% band covers "
              "| 95% band width (octaves, method) | loss penalty at predicted "
              "| at safe-side | baseline: reuse largest fitted width's LR* (error oct / penalty) |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|---|")
    # the training time is summed from the rows, so a rerun over cached cells still reports the real cost
    cells = pd.concat([pd.read_parquet(p) for p in args.out.glob("*/results.parquet")], ignore_index=True)
    cells = cells.drop_duplicates(["parameterization", "optimizer", "lr_mode", "width", "compile_s", "run_s"])
    train_min = (cells["run_s"].sum() + cells["compile_s"].sum()) / 60
    text = (f"Fit widths {fit_w}, held-out widths {test_w}; transformer depth {args.depth}, {args.steps} steps, "
            f"batch {args.batch} x {args.seq_len} bytes, {args.seeds} seeds, LR grid 2^0.5 apart. "
            f"Machine: {machine()}; training and compiling "
            f"{train_min:.1f} min in all; this run's wall time {wall / 60:.1f} min (cells already in {args.out} "
            f"are reused). Each row's wall time: {'; '.join(row_times)}.\n\n{header}\n" + "\n".join(lines) + "\n")
    tmp = args.report.with_name(args.report.name + ".part")  # whole or not at all, if a time limit stops us here
    tmp.write_text(text)
    tmp.replace(args.report)
    return text


if __name__ == "__main__":
    sys.exit(main())
