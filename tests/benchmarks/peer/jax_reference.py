"""The runner's side of the peer equivalence check (tests/torch/test_peer_equivalence.py), run in the main venv.

Trains one run of the peer benchmark's sweep (mup, adam, per_layer, 1/head_dim attention, base width 32) with
the runner (``run_cell``, per-step losses on) and writes to ``--out`` (an ``.npz``): the run's initial
parameters and every step's training window, drawn as the runner draws them (``runner.draws``: the numbers of
``init_params`` with the first half of the seed's key, ``randint`` folded with the step from the second), the
loss curve, the initial and final eval losses and the per-layer numbers of ``layer_hyper``. If the runner
changes how it draws them, the curves stop agreeing and the check fails, as it should::

    .venv/bin/python tests/benchmarks/peer/jax_reference.py --width 64 --log2-lr -6 --out /tmp/ref.npz
"""

from __future__ import annotations

import argparse
from typing import Any

import jax
import numpy as np

from abcscale.runner.nn import ModelConfig, init_params
from abcscale.runner.spec import SweepSpec
from abcscale.runner.sweep import layer_hyper, run_cell
from abcscale.runner.transformer import param_specs


def spec_for(width: int, log2_lr: float, steps: int) -> SweepSpec:
    return SweepSpec.model_validate({
        "model": "transformer", "parameterizations": ["mup"], "optimizers": ["adam"], "lr_modes": ["per_layer"],
        "widths": [width], "base_width": 32, "log2_lr": [log2_lr], "seeds": 1, "steps": steps, "batch": 8,
        "seq_len": 32, "depth": 1, "head_dim": 16, "attn_scale": "linear", "max_bytes": 2_000_000,
        "coord_steps": [], "curves": True})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--log2-lr", type=float, default=-6.0)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    spec = spec_for(args.width, args.log2_lr, args.steps).with_overrides(seeds=args.seed + 1)
    cell = spec.cells()[0]
    hyper = layer_hyper(spec, cell)
    res = run_cell(spec, cell)
    row = res.rows[res.rows["seed"] == args.seed].iloc[0]
    curve = res.curves[res.curves["seed"] == args.seed].sort_values("step")["loss"].to_numpy()

    cfg = ModelConfig("transformer", args.width, spec.depth, spec.seq_len, head_dim=spec.head_dim,
                      attn_scale="linear")
    k_init, k_data = jax.random.split(jax.random.PRNGKey(args.seed))
    params = init_params(param_specs(cfg), k_init, jax.numpy.asarray(hyper.init_std, jax.numpy.float32))
    train = np.asarray(spec.corpus().train)
    T, B = spec.seq_len, spec.batch
    idx = np.stack([np.asarray(jax.random.randint(jax.random.fold_in(k_data, s), (B,), 0, train.shape[0] - T - 1))
                    for s in range(args.steps)])
    windows = train[idx[..., None] + np.arange(T + 1)]  # [steps, B, T + 1]
    arrays: dict[str, Any] = {f"param:{k}": np.asarray(v) for k, v in params.items()}
    np.savez(args.out, windows=windows, curve=curve, loss_at_init=row["loss_at_init"], eval_loss=row["eval_loss"],
             n_params=row["n_params"], multiplier=hyper.multiplier, init_std=hyper.init_std,
             lr=np.asarray(hyper.lr_factor) * 2.0**args.log2_lr, epsilon=hyper.epsilon, **arrays)


if __name__ == "__main__":
    main()
