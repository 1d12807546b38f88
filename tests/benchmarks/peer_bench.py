"""abcscale's runner against microsoft/mup + PyTorch on the same sweep, whole process (``make bench-peer``).

Not a pytest file (``make bench`` collects ``bench_*.py``; this one needs the torch venv): a script, run in
the main venv, that starts each program as a subprocess and times it from spawn to exit, its results on disk:

- abcscale: ``abcscale sweep`` (the CLI, main venv) over the grid, muP + Adam per-layer, 1/head_dim attention,
  base width 32, into a fresh folder; cold = a fresh compilation cache (``ABCSCALE_JAX_CACHE``), warm =
  the cache the cold run just filled;
- mup: tests/benchmarks/peer/mup_sweep.py (torch venv): the same model, data, schedule and muP settings in
  PyTorch eager with microsoft/mup, one run at a time, 2 threads, OpenMP's default (active) waiting
  (tests/torch/test_peer_equivalence.py checks the two give the same loss curve from the same start).

Per repeat the order is abcscale cold, mup, abcscale warm, mup (alternating, so drift on a shared machine hits
both). Sweeps: ``demo`` (widths 32, 64, 128 x 11 LRs x 2 seeds x 100 steps, batch 8 x 32) and ``wide``
(widths 256, 512 x 6 LRs x 1 seed); ``--quick`` is a tiny grid for a smoke test. Prints a markdown table of
wall times (median over repeats, each repeat listed), the ratio mup / abcscale and where each program's time
goes; writes every measurement to ``--out``/peer_bench.json::

    .venv/bin/python tests/benchmarks/peer_bench.py [--repeats 1] [--quick] [--sweeps demo,wide]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PEER = ROOT / "tests" / "benchmarks" / "peer" / "mup_sweep.py"


@dataclass(frozen=True)
class Sweep:
    name: str
    widths: str
    log2_lr: str
    seeds: int
    steps: int = 100

    def label(self) -> str:
        n_lr = len(self.log2_lr.split(",")) if ":" not in self.log2_lr else _n_grid(self.log2_lr)
        return f"{self.name}: widths {self.widths} x {n_lr} LRs x {self.seeds} seed(s) x {self.steps} steps"


def _n_grid(value: str) -> int:
    start, stop, step = (float(p) for p in value.split(":"))
    return int((stop - start) / step + 1e-9) + 1


SWEEPS = {"demo": Sweep("demo", "32,64,128", "-8.5:-3.5:0.5", 2),
          "wide": Sweep("wide", "256,512", "-8:-5.5:0.5", 1)}
QUICK = Sweep("quick", "32", "-6,-5", 1, steps=10)


@dataclass
class Measurement:
    program: str  # "abcscale cold", "abcscale warm" or "mup"
    wall_s: float
    phases: dict[str, float] = field(default_factory=dict)
    train_by_width_s: dict[str, float] = field(default_factory=dict)


def _abcscale(sweep: Sweep, exe: str, out: Path, cache: Path, cold: bool) -> Measurement:
    if cold:
        shutil.rmtree(cache, ignore_errors=True)
    cmd = [exe, "sweep", "--out", str(out), "-q", "--json", "-p", "mup", "-o", "adam", "--lr-mode", "per_layer",
           "--widths", sweep.widths, f"--log2-lr={sweep.log2_lr}", "--seeds", str(sweep.seeds), "--steps",
           str(sweep.steps), "--batch", "8", "--seq-len", "32", "--depth", "1", "--head-dim", "16",
           "--attn-scale", "linear", "--base-width", "32", "--max-bytes", "2000000"]
    env = {k: v for k, v in os.environ.items() if k != "ABCSCALE_XLA_OPT_LEVEL"} | {"ABCSCALE_JAX_CACHE": str(cache)}
    wall, stdout = _timed(cmd, env)
    import pandas as pd

    rows = pd.read_parquet(out / "results.parquet")
    if not {"compile_s", "run_s", "runs_per_call"} <= set(rows.columns):  # the wall time still stands
        return Measurement(f"abcscale {'cold' if cold else 'warm'}", wall)
    # compile_s and run_s are per call, repeated on each of the call's rows; a cell's calls run on threads side
    # by side (runner.sweep.run_threads), so run_s sums overlap: training is the sweep's span (`sweep --json`'s
    # sweep_s) less the compile waits, and the rest (start-up, imports, data, theory, exit) is wall - span
    from abcscale.runner.sweep import compile_wait_s

    per_run = rows.assign(r=rows["run_s"] / rows["runs_per_call"])
    compile_s = compile_wait_s(rows)
    span = float(json.loads(stdout)["sweep_s"])
    return Measurement(f"abcscale {'cold' if cold else 'warm'}", wall,
                       {"compile_s": compile_s, "train_s": span - compile_s, "rest_s": wall - span},
                       {str(w): float(v) for w, v in per_run.groupby("width")["r"].sum().items()})


def _mup(sweep: Sweep, python: str, out: Path) -> Measurement:
    cmd = [python, str(PEER), "--widths", sweep.widths, f"--log2-lr={sweep.log2_lr}", "--seeds", str(sweep.seeds),
           "--steps", str(sweep.steps), "--out", str(out), "--t0", "T0"]
    # OpenMP's default waiting, as a user runs PyTorch: on the idle machine passive waits made the demo sweep
    # 2.1x slower (79.0 s against 37.2 s; 1 thread 42.4 s), which would flatter abcscale. On a loaded machine
    # active spinning is what hurts (a peer thread descheduled at every barrier): run this on an idle one.
    wall, _ = _timed(cmd, dict(os.environ))
    t = json.loads((out / "timings.json").read_text())
    train = t["setup_s"] + t["train_s"] + t["eval_s"]  # as abcscale's run_s: init, steps and evals
    return Measurement("mup", wall, {"startup_imports_s": t["startup_imports_s"], "compile_s": 0.0,
                                     "train_s": train, "rest_s": wall - t["startup_imports_s"] - train},
                       t["train_by_width_s"])


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.time()
    cmd = [str(t0) if c == "T0" else c for c in cmd]  # the peer measures its start-up from the spawn
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.time() - t0
    if proc.returncode:
        sys.exit(f"peer_bench: {cmd[0]} {cmd[1]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, proc.stdout


def run(sweep: Sweep, repeats: int, exe: str, python: str, work: Path) -> list[Measurement]:
    out: list[Measurement] = []
    for r in range(repeats):
        cache = work / f"jax-cache-{sweep.name}-{r}"
        for i, step in enumerate(("cold", "mup", "warm", "mup")):
            folder = work / f"{sweep.name}-{r}-{i}-{step}"
            m = (_mup(sweep, python, folder) if step == "mup"
                 else _abcscale(sweep, exe, folder, cache, cold=step == "cold"))
            print(f"  {sweep.name} repeat {r + 1}: {m.program:14s} {m.wall_s:6.1f} s", file=sys.stderr, flush=True)
            out.append(m)
    return out


nan = float("nan")


def _median(ms: list[Measurement], key: str | None = None) -> float:
    return statistics.median(m.wall_s if key is None else m.phases.get(key, nan) for m in ms)


def table(results: dict[str, list[Measurement]], sweeps: dict[str, Sweep]) -> str:
    lines = ["| sweep | program | wall s (median; each run) | start-up, imports | compile (waiting) | training "
             "(init, steps, evals) | rest (data, theory, I/O, exit) | training by width (abcscale: summed call times, "
             "which overlap on threads) | mup / this |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, ms in results.items():
        mup = [m for m in ms if m.program == "mup"]
        for prog in ("abcscale cold", "abcscale warm", "mup"):
            sel = [m for m in ms if m.program == prog]
            each = ", ".join(f"{m.wall_s:.1f}" for m in sel)
            startup = _median(sel, "startup_imports_s")
            widths = " / ".join(f"{w}: {statistics.median(m.train_by_width_s.get(w, nan) for m in sel):.1f}"
                                for w in sel[0].train_by_width_s) or "-"
            ratio = f"**{_median(mup) / _median(sel):.2f}x**" if prog != "mup" else "-"
            lines.append(f"| {sweeps[name].label()} | {prog} | {_median(sel):.1f} ({each}) | "
                         f"{'-' if startup != startup else f'{startup:.1f}'} | {_median(sel, 'compile_s'):.1f} | "
                         f"{_median(sel, 'train_s'):.1f} | {_median(sel, 'rest_s'):.1f} | {widths} | {ratio} |")
    return "\n".join(lines)


def _usage(message: str) -> None:
    print(message, file=sys.stderr)
    sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2, help="A B A B rounds per sweep")
    ap.add_argument("--quick", action="store_true", help="a tiny grid (width 32 x 2 LRs x 10 steps)")
    ap.add_argument("--sweeps", default="demo,wide", help="comma list of " + ", ".join(SWEEPS))
    ap.add_argument("--torch-python", default=str(ROOT / ".venv-torch" / "bin" / "python"))
    ap.add_argument("--abcscale", default=str(Path(sys.executable).parent / "abcscale"))
    ap.add_argument("--out", default=str(ROOT / ".bench-peer"), help="where peer_bench.json goes")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        _usage("--repeats: must be at least 1")
    unknown = [s for s in args.sweeps.split(",") if s not in SWEEPS]
    if unknown:
        _usage(f"--sweeps: unknown {', '.join(unknown)}; allowed: {', '.join(SWEEPS)}")
    for flag, path in (("--torch-python", args.torch_python), ("--abcscale", args.abcscale)):
        if not Path(path).exists():
            _usage(f"{flag}: no such program {path} (make bench-peer builds the torch venv)")
    sweeps = {"quick": QUICK} if args.quick else {s: SWEEPS[s] for s in args.sweeps.split(",")}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="peer-bench-") as work:
        results = {name: run(s, args.repeats, args.abcscale, args.torch_python, Path(work))
                   for name, s in sweeps.items()}
    text = table(results, sweeps)
    print(text)
    (out / "peer_bench.json").write_text(json.dumps(
        {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "repeats": args.repeats,
         "sweeps": {n: asdict(s) for n, s in sweeps.items()},
         "runs": {n: [asdict(m) for m in ms] for n, ms in results.items()}, "table": text}, indent=1))


if __name__ == "__main__":
    main()
