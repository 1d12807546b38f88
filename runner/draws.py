"""A run's random inputs, its initial parameters and its data windows' starts, drawn outside the training program
by one small program that every width shares.

Until issue 18's compile work the training program drew both itself, and they were a fourth of every width's
compile (width 64: 0.47 s of 2.63 s of XLA CPU for the init, 0.25 s for the data draws, and 0.15 s of tracing),
paid again at every width of a sweep. Drawn here, they cost one compile of this program per sweep (0.4 s), kept
with the runner's executables like the training programs.

The initial parameters: each normal parameter is ``init_std_3[layer] * std_const * normal(key_i, (size,))``
reshaped, ``key_i`` the i-th of ``split(k_init, len(specs))`` in name order, ``(k_init, k_data) =
split(PRNGKey(seed))`` (:func:`runner.nn.init_params`). JAX draws with threefry in its partitionable mode (the
default since jax 0.5): element ``j`` of ``normal(key, (n,))`` is a function of the key and ``j`` alone (its
counter is ``(0, j)``)::

    bits_j = x0 ^ x1,  (x0, x1) = threefry2x32(key, (0, j))
    u_j    = max(lo, (bitcast(bits_j >> 9 | bits(1.0)) - 1) * (1 - lo) + lo),  lo = nextafter(-1, 0)
    z_j    = sqrt(2) * erfinv(u_j)

so the draw splits into blocks of :data:`BLOCK` counters, :data:`BLOCKS` to a call, whose shapes do not depend on
the model's. The data: step ``t`` of a run reads the windows starting at ``randint(fold_in(k_data, t), (B,), 0,
tokens - T - 1)``, which depend on the steps and the batch, not the width; every call returns the run's
``[steps, B]`` starts (800 integers for the demo, beside 65k normals), and the training program gathers its
windows from them.

The numbers are the in-program draws' bit for bit, compiled with the training program's own XLA options (the
normals' rounding depends on XLA:CPU's emitters; tests/runner/test_draws.py). Where JAX is set to draw otherwise
(another PRNG, or the older non-partitionable bits), the init is drawn by ``init_params`` itself, compiled per
model shape.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend.random import threefry2x32_p

from abcscale.runner import executables
from abcscale.runner.nn import ParamSpec, init_params

#: counters per block, and blocks per call of the draw program
BLOCK, BLOCKS = 8192, 8


@dataclass(frozen=True)
class Draw:
    """The draw program's identity in the executables cache: what its shapes depend on."""

    n_specs: int  # the model's number of parameter tensors (keys split)
    steps: int
    batch: int
    blocks: int = BLOCKS
    block: int = BLOCK


def _draw(seed: jax.Array, spec_P: jax.Array, offset_P: jax.Array, scale_P: jax.Array, high: jax.Array, *,
          what: Draw) -> tuple[jax.Array, jax.Array]:
    """``[P, block]`` normals, row p ``scale_P[p] * normal(key_{spec_P[p]}, ...)`` at counters ``offset_P[p] +
    j``; and the ``[steps, batch]`` window starts in ``[0, high)``."""
    k_init, k_data = jax.random.split(jax.random.PRNGKey(seed))
    key_Px2 = jax.random.split(k_init, what.n_specs)[spec_P]
    shape = (what.blocks, what.block)
    counts = offset_P[:, None] + lax.iota(jnp.uint32, what.block)[None, :]
    x0, x1 = threefry2x32_p.bind(
        jnp.broadcast_to(key_Px2[:, :1], shape), jnp.broadcast_to(key_Px2[:, 1:], shape),
        jnp.zeros(shape, jnp.uint32), counts)
    # jax.random.uniform's mantissa trick, then normal's inverse error function, op for op
    one = np.array(1.0, np.float32)
    floats = lax.bitcast_convert_type(lax.shift_right_logical(x0 ^ x1, jnp.uint32(9)) | jnp.uint32(one.view(np.uint32)),
                                      jnp.float32) - one
    lo = np.nextafter(np.float32(-1), np.float32(0), dtype=np.float32)
    u = lax.max(jnp.float32(lo), floats * (jnp.float32(one) - jnp.float32(lo)) + jnp.float32(lo))
    normals = scale_P[:, None] * (np.float32(np.sqrt(2)) * lax.erf_inv(u))
    starts = jax.vmap(lambda t: jax.random.randint(jax.random.fold_in(k_data, t), (what.batch,), 0, high))(
        jnp.arange(what.steps))
    return normals, starts


_programs: dict[tuple[Draw, tuple[tuple[str, Any], ...]], Any] = {}
_lock = threading.Lock()


def _program(what: Draw, options: dict[str, Any]) -> Any:
    """The compiled draw program for these XLA options: kept in this process, else loaded from the runner's
    executables, else compiled (once, whichever thread asks first) and kept."""
    key = (what, tuple(sorted(options.items())))
    with _lock:
        if (compiled := _programs.get(key)) is not None:
            return compiled
        S = jax.ShapeDtypeStruct
        P = what.blocks
        args = (S((), jnp.uint32), S((P,), jnp.int32), S((P,), jnp.uint32), S((P,), jnp.float32), S((), jnp.int32))
        file = executables.path(what, args, options)
        if (compiled := executables.load(file)) is None:
            compiled = jax.jit(lambda *a: _draw(*a, what=what)).lower(*args).compile(options)
            executables.save(file, compiled)
        _programs[key] = compiled
        return compiled


def shared_draw() -> bool:
    """Whether JAX draws as this module assumes: threefry keys, partitionable bits."""
    config: Any = jax.config  # its flags are attributes set at run time
    return bool(config.jax_threefry_partitionable) and config.jax_default_prng_impl == "threefry2x32"


class Drawn(NamedTuple):
    params: dict[str, np.ndarray]  # name -> [M, *shape], in name order
    starts: np.ndarray  # [M, steps, batch] int32


def draw(specs: dict[str, ParamSpec], seeds_M: np.ndarray, init_3: np.ndarray, *, steps: int, batch: int,
         high: int, options: dict[str, Any]) -> Drawn:
    """Every run's initial parameters (per-layer init stds ``init_3``) and its ``steps`` x ``batch`` data window
    starts in ``[0, high)``, for seeds ``seeds_M``; the program compiled with ``options`` (the training
    program's, whose rounding of the normals it then shares)."""
    seeds = np.asarray(seeds_M, np.uint32).reshape(-1)
    init_3 = np.asarray(init_3, np.float32)
    names = sorted(specs)
    shared = shared_draw()
    jobs: list[tuple[int, int, np.float32]] = []  # (spec index, first counter, scale) per block
    for i, name in enumerate(names):
        s = specs[name]
        if s.init == "normal" and shared:
            size = math.prod(s.shape)
            if size >= 2 ** 32:
                raise ValueError(f"{name}: {size} elements, more than a 32-bit counter draws")
            # the scale as the in-program draw formed it: a float32 std times the float32 constant
            scale = np.float32(init_3[s.layer]) * np.float32(s.std_const)
            jobs += [(i, off, scale) for off in range(0, size, BLOCK)]
    pad = -len(jobs) % BLOCKS if jobs else BLOCKS  # at least one call: it draws the data starts too
    table = jobs + [(0, 0, np.float32(0))] * pad
    spec_J = np.asarray([j[0] for j in table], np.int32)
    offset_J = np.asarray([j[1] for j in table], np.uint32)
    scale_J = np.asarray([j[2] for j in table], np.float32)
    program = _program(Draw(len(names), steps, batch), options)
    params = {n: np.empty((len(seeds), *specs[n].shape), np.float32) for n in names}
    starts = np.empty((len(seeds), steps, batch), np.int32)
    for m, seed in enumerate(seeds):
        blocks = []
        for b in range(0, len(table), BLOCKS):
            normals, starts_m = program(seed, spec_J[b:b + BLOCKS], offset_J[b:b + BLOCKS], scale_J[b:b + BLOCKS],
                                        np.int32(high))
            blocks.append(np.asarray(normals))
        starts[m] = np.asarray(starts_m)
        flat, row = np.concatenate(blocks), 0
        for name in names:
            s = specs[name]
            if s.init == "ones":
                params[name][m] = 1.0
            elif s.init == "zeros":
                params[name][m] = 0.0
            elif shared:
                n_blocks = -(-math.prod(s.shape) // BLOCK)
                params[name][m] = flat[row:row + n_blocks].reshape(-1)[:math.prod(s.shape)].reshape(s.shape)
                row += n_blocks
    if not shared:  # the normals as init_params draws them, one program per model shape
        fallback = jax.jit(jax.vmap(lambda seed: init_params(
            specs, jax.random.split(jax.random.PRNGKey(seed))[0], jnp.asarray(init_3))))
        drawn = fallback.lower(jnp.asarray(seeds)).compile(options)(jnp.asarray(seeds))
        params = {n: np.asarray(drawn[n]) for n in names}
    return Drawn(params, starts)
