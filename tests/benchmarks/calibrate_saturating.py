"""Calibration of the covariate laws on a saturating batch law (session 68): how often a bend is said, how often a
prediction is `unreliable:`, and how often its bands cover the truth, over seeded tables of known truth.

    python tests/benchmarks/calibrate_saturating.py SCENARIO START COUNT OUT   # a JSON line a table: OUT/SCENARIO.jsonl
    python tests/benchmarks/calibrate_saturating.py --summary OUT              # counts per scenario and target

The tables follow session 67's review: 5 sizes (parameters, 20M-760M), LR* = 3e-3 (N/20M)^-0.3 (D/4e9)^-0.1
min(B/256, 1)^0.5 (saturating; ``str*`` scenarios: (B/256)^0.5 throughout), quadratic basins in log2 LR (2.5x steeper
above the optimum with ``asym``) that diverge 2 octaves above it, a half-octave grid or a rounded 1-2-5 one, 1-2
seeds, a per-curve jitter of the optimum (octaves). About 2 CPU-s a table.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import sys
import warnings

import numpy as np
import pandas as pd

SIZES = (20e6, 50e6, 125e6, 350e6, 760e6)
MAPPING = {"size_col": "N", "lr_col": "lr", "loss_col": "loss", "seed_col": "seed", "size_kind": "params"}
GRID_125 = np.array([m * 10.0**k for k in range(-6, 1) for m in (1, 2, 5)])
B3, B4, B4_BETWEEN, T3 = (64, 256, 1024), (64, 256, 1024, 4096), (32, 128, 512, 2048), (1e9, 4e9, 16e9)
SCENARIOS = {
    "sat3": (["batch_size"], {"batches": B3}),
    "sat3_tok_r1": (["tokens", "batch_size"], {"batches": B3, "tokens": T3, "rounded": True, "seeds": 1,
                                               "jitter": 0.1}),
    "sat3_j02": (["batch_size"], {"batches": B3, "jitter": 0.2}),
    "sat3_j03": (["batch_size"], {"batches": B3, "jitter": 0.3}),
    "sat4": (["batch_size"], {"batches": B4, "jitter": 0.1}),
    "sat4_kink_between": (["batch_size"], {"batches": B4_BETWEEN, "jitter": 0.1}),
    "sat4_j03": (["batch_size"], {"batches": B4, "jitter": 0.3}),
    "str3": (["batch_size"], {"batches": B3, "sat": False}),
    "str3_j01_r1": (["batch_size"], {"batches": B3, "sat": False, "rounded": True, "seeds": 1, "jitter": 0.1}),
    "str3_tok_r1": (["tokens", "batch_size"], {"batches": B3, "tokens": T3, "rounded": True, "seeds": 1,
                                               "jitter": 0.1, "sat": False}),
    "str4": (["batch_size"], {"batches": B4, "sat": False, "jitter": 0.1}),
    "str3_asym": (["batch_size"], {"batches": B3, "sat": False, "asym": 2.5}),
}


def truth(n: float, d: float, b: float, sat: bool = True) -> float:
    """log2 LR* of the tables' law."""
    lb = min(np.log2(b / 256.0), 0.0) if sat else np.log2(b / 256.0)
    return float(np.log2(3e-3) - 0.3 * np.log2(n / 20e6) - 0.1 * np.log2(d / 4e9) + 0.5 * lb)


def table(rng: np.random.Generator, *, sat: bool = True, batches=B3, tokens=(4e9,), seeds: int = 2,
          rounded: bool = False, jitter: float = 0.0, noise: float = 0.004, asym: float = 1.0) -> pd.DataFrame:
    rows = []
    for n, d, b in itertools.product(SIZES, tokens, batches):
        opt = truth(n, d, b, sat) + jitter * rng.standard_normal()
        best = 1.8 + 300 * n**-0.3 + 400 * d**-0.28
        shift = rng.uniform(-0.7, 0.7)
        grid = np.log2(GRID_125)
        xs = (grid[(grid >= opt - 3.2 + shift) & (grid <= opt + 2.6 + shift)] if rounded
              else np.arange(np.floor(2 * (opt - 3)) / 2, opt + 2.6, 0.5))
        for x in xs:
            for s in range(seeds):
                u = x - opt
                loss = (np.nan if u > 2 else best * (1 + 0.01 * (asym if u > 0 else 1.0) * u * u)
                        + noise * rng.standard_normal())
                rows.append({"N": int(n), "tokens": d, "batch_size": b, "lr": 2.0**x, "seed": s, "loss": loss})
    return pd.DataFrame(rows)


def calibrate(name: str, start: int, count: int, out: str) -> None:
    import abcscale
    from abcscale.fitting.joint import predict_joint

    covs, kw = SCENARIOS[name]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"{name}.jsonl"), "a", encoding="utf-8") as f:
        for s in range(start, start + count):
            df = table(np.random.default_rng(10_000 + s), **kw)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                law = abcscale.fit(df, mapping={**MAPPING, "covariates": covs}, n_boot=200).joint[0]
            rec = {"seed": s, "bend": any(w.startswith("the optimum bends in log2(batch") for w in law.warnings),
                   "any_misfit": any(w.startswith(("the optimum bends in log2(", "the size exponent changes",
                                                   "the tokens exponent changes")) for w in law.warnings),
                   "preds": []}
            levels = kw["batches"]
            for b in sorted({*levels, *(2 * x for x in levels[:-1]), 4 * levels[-1]}):
                at = {"batch_size": b} if covs == ["batch_size"] else {"tokens": 4e9, "batch_size": b}
                for size in (125e6, 7e9):
                    p = predict_joint(law, int(size), at)
                    tr = truth(size, 4e9, b, kw.get("sat", True))
                    rec["preds"].append({
                        "B": b, "size": size, "err": p.log2_lr - tr, "sd": p.sd_log2,
                        "c68": bool(p.ci68[0] <= 2**tr <= p.ci68[1]), "c95": bool(p.ci95[0] <= 2**tr <= p.ci95[1]),
                        "unreliable": bool(p.unreliable),
                        "inside": any("lies between" in u or "off the plane" in u for u in p.unreliable)})
            f.write(json.dumps(rec) + "\n")


def summary(out: str) -> None:
    for fn in sorted(glob.glob(os.path.join(out, "*.jsonl"))):
        recs = [json.loads(line) for line in open(fn, encoding="utf-8")]
        n, bend = len(recs), sum(r["bend"] for r in recs)
        print(f"== {os.path.basename(fn)[:-6]}: {n} tables, batch bend said in {bend} ({100 * bend / n:.1f}%), "
              f"any misfit in {sum(r['any_misfit'] for r in recs)}")
        for key in sorted({(p["B"], p["size"]) for r in recs for p in r["preds"]}):
            ps = [p for r in recs for p in r["preds"] if (p["B"], p["size"]) == key]
            m = len(ps)
            print(f"  B={key[0]:<5} N={key[1]:.3g}: error {sum(p['err'] for p in ps) / m:+.2f} octave, sd "
                  f"{sum(p['sd'] for p in ps) / m:.2f}; 68% band covers {sum(p['c68'] for p in ps)}/{m}, 95% "
                  f"{sum(p['c95'] for p in ps)}/{m}; unreliable {sum(p['unreliable'] for p in ps)} (inside the "
                  f"swept batch sizes: {sum(p['inside'] for p in ps)})")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--summary"]:
        summary(sys.argv[2])
    else:
        calibrate(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
