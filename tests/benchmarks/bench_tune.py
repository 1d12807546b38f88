"""Tuned vs default constants (``make bench-tune``): does tuning at the base width pay off at 2x and 4x?

The method's first step (README "Tune the constants"): :func:`abcscale.tune` searches beta with the per-layer
LR constants (gamma of the embedding and the readout) at the base width, then
:func:`abcscale.usecases.tune.verify` sweeps betas x seeds at each larger width with the tuned constants
and with abcscale's defaults, and compares each one's best mean eval loss with a paired 95% interval (same
seed = same data order and init draws). The grid is 9 betas an octave apart around the tuned beta's transfer
(the CLI's default is 5): wide enough that the defaults' own best beta is on it, not at its edge. Measured on the
transfer benchmark's transformer for muP + Adam (per-layer and global LR) and standard + Adam (global LR). At the base
width per-layer and global LR train the same (every width factor is 1), so those two searches agree; they
differ only in how beta moves with width.

The cost is the search's CPU seconds (``time.process_time``: every thread of this process) as a multiple of
one training run at the largest width with the tuned constants, timed warm (its program compiled by a first,
untimed call), so the fraction is not flattered by counting compilation in the denominator.

Under pytest (``make bench``) it runs a small budget: 8 trials, one width; ``make bench-tune`` runs the
README's numbers.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Any

#: the transfer benchmark's transformer (tests/benchmarks/transfer.py's defaults)
SETTING: dict[str, Any] = dict(model="transformer", depth=1, head_dim=16, steps=100, batch=8, seq_len=32,
                               data="default")


def one_run_cpu_s(tuned: Any, width: int) -> tuple[float, float]:
    """(CPU s, wall s) of one training run at ``width`` with the tuned constants, warm."""
    from abcscale.runner.spec import SweepSpec
    from abcscale.runner.tune import lr_sweep

    spec = SweepSpec.model_validate({**tuned.training, "widths": [tuned.base_width],
                                     "base_width": tuned.base_width})
    grid = [math.log2(tuned.beta)]
    lr_sweep(spec, tuned.constants, width, grid, 1)  # compile (and warm caches)
    c0, t0 = time.process_time(), time.perf_counter()
    lr_sweep(spec, tuned.constants, width, grid, 1)
    return time.process_time() - c0, time.perf_counter() - t0


def run(param: str, lr_mode: str, base: int, widths: list[int], trials: int, seeds: int, top: int, reeval: int,
        verify_seeds: int, verify_lrs: int, seed: int = 0) -> list[str]:
    import abcscale
    from abcscale.usecases.tune_verify import verify

    c0 = time.process_time()
    tuned = abcscale.tune(param, "adam", base_width=base, lr_mode=lr_mode, trials=trials, seeds=seeds, top=top,
                          reeval_seeds=reeval, seed=seed, **SETTING)
    search_cpu = time.process_time() - c0
    g = tuned.constants.gamma
    lines = [f"## {param} + Adam, {lr_mode} LR, base width {base}: {tuned.trials_run} trials x {seeds} seeds, "
             f"top {top} re-evaluated with {reeval} seeds",
             f"tuned: beta = 2^{math.log2(tuned.beta):.2f}, gamma emb/hidden/readout = "
             f"{g.embedding:.3g}/{g.hidden:.3g}/{g.readout:.3g}, base loss {tuned.loss:.4f} +- {tuned.loss_std:.4f}",
             f"search: {search_cpu:.0f} CPU s ({tuned.elapsed_s:.0f} s wall)"]
    print(*lines, sep="\n", flush=True)
    checked = verify(tuned, widths, lrs=verify_lrs, seeds=verify_seeds)
    lines.append("| width | tuned best loss (beta) | default best loss (beta) | default - tuned [95%] | tuned wins |")
    lines.append("|---|---|---|---|---|")
    for c in checked.transfer:
        edge = lambda at: "*" if at else ""  # noqa: E731
        lines.append(f"| {c.width} | {c.tuned_loss:.4f} (2^{math.log2(c.tuned_beta):.1f}{edge(c.tuned_at_edge)}) "
                     f"| {c.default_loss:.4f} (2^{math.log2(c.default_beta):.1f}{edge(c.default_at_edge)}) "
                     f"| {c.difference:+.4f} [{c.interval[0]:+.4f}, {c.interval[1]:+.4f}] "
                     f"| {'unclear' if c.tuned_wins is None else c.tuned_wins} |")
        print(lines[-1], flush=True)
    run_cpu, run_wall = one_run_cpu_s(tuned, max(widths))
    lines.append(f"one run at width {max(widths)} (warm): {run_cpu:.1f} CPU s ({run_wall:.1f} s wall); "
                 f"search cost = {search_cpu / run_cpu:.1f} runs at width {max(widths)}")
    print(lines[-1], flush=True)
    return lines


def test_tune_transfers() -> None:
    """``make bench`` form: a small search and one width; the check runs end to end and reports finite numbers."""
    lines = run("mup", "per_layer", 32, [64], trials=8, seeds=1, top=2, reeval=2, verify_seeds=2, verify_lrs=5)
    assert any(line.startswith("| 64 |") for line in lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="mup:per_layer,mup:global,standard:global",
                    help="comma-separated PARAMETERIZATION:LR_MODE, each with Adam")
    ap.add_argument("--base-width", type=int, default=32)
    ap.add_argument("--widths", default="64,128")
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--top", type=int, default=3)
    ap.add_argument("--reeval-seeds", type=int, default=3)
    ap.add_argument("--verify-seeds", type=int, default=4)
    # 9 betas an octave apart: the default constants' best beta can sit 2-3 octaves from the tuned one
    ap.add_argument("--verify-lrs", type=int, default=9)
    ap.add_argument("--seed", type=int, default=0, help="the TPE sampler's seed (a second seed: another search)")
    args = ap.parse_args(argv)
    widths = [int(w) for w in args.widths.split(",")]
    for item in args.runs.split(","):
        param, mode = item.split(":")
        run(param, mode, args.base_width, widths, args.trials, args.seeds, args.top, args.reeval_seeds,
            args.verify_seeds, args.verify_lrs, seed=args.seed)
        print(flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
