"""XLA:CPU's dot against numpy's BLAS at the runner's width-256/512 step shapes, on one core (docs/runner-speed.md,
session 71: whether calling BLAS from the training program could speed the step; it could not).

Run pinned to one core, as each of a sweep's run threads is::

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \\
    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \\
    taskset -c 1 .venv/bin/python tests/benchmarks/gemm_blas_vs_xla.py
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

#: (rows x inner) x (inner x cols): the forward's, the backward's weight gradients', at batch 8 x 32 = 256 rows
SHAPES = [((256, 512), (512, 512)), ((256, 512), (512, 2048)), ((256, 2048), (2048, 512)), ((512, 256), (256, 2048)),
          ((2048, 256), (256, 512)), ((256, 256), (256, 1024)), ((256, 1024), (1024, 256))]


def best_ms(calls, rounds: int = 15, n: int = 10) -> list[float]:
    """Each call's best time (ms) over ``rounds``, the calls alternating round by round (the machine is shared:
    a busy moment then slows both alike)."""
    best = [float("inf")] * len(calls)
    for fn, args in calls:
        fn(*args)
    for _ in range(rounds):
        for i, (fn, args) in enumerate(calls):
            t = time.perf_counter()
            for _ in range(n):
                out = fn(*args)
            if hasattr(out, "block_until_ready"):
                out.block_until_ready()
            best[i] = min(best[i], (time.perf_counter() - t) / n * 1e3)
    return best


def main() -> None:
    rng = np.random.default_rng(0)
    dot = jax.jit(lambda x, y: x @ y)
    for sa, sb in SHAPES:
        a, b = rng.standard_normal(sa, dtype=np.float32), rng.standard_normal(sb, dtype=np.float32)
        ja, jb = jnp.asarray(a), jnp.asarray(b)
        xla, blas = best_ms([(dot, (ja, jb)), (np.matmul, (a, b))])
        gflop = 2 * sa[0] * sa[1] * sb[1] / 1e9
        print(f"{sa} x {sb}: XLA {xla:.3f} ms ({gflop / xla * 1e3:.0f} GFLOP/s), numpy BLAS {blas:.3f} ms "
              f"({gflop / blas * 1e3:.0f} GFLOP/s), XLA / BLAS time {xla / blas:.2f}")


if __name__ == "__main__":
    main()
