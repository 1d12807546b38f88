"""The initial parameters, drawn outside the training program by one small program that every width shares.

Each normal parameter is ``init_std_3[layer] * std_const * normal(key_i, (size,))`` reshaped, ``key_i`` the
i-th of ``split(k_init, len(specs))`` in name order and ``k_init`` the first half of ``split(PRNGKey(seed))``
(:func:`runner.nn.init_params`, which the training program ran until issue 18's compile work). Drawn inside,
the init was a fifth of every width's compile (0.47 of 2.63 s of XLA CPU at width 64, and 0.1 s of tracing),
paid again at every width of a sweep.

JAX draws with threefry in its partitionable mode (the default since jax 0.5): element ``j`` of
``normal(key, (n,))`` is a function of the key and ``j`` alone (its counter is ``(0, j)``)::

    bits_j = x0 ^ x1,  (x0, x1) = threefry2x32(key, (0, j))
    u_j    = max(lo, (bitcast(bits_j >> 9 | bits(1.0)) - 1) * (1 - lo) + lo),  lo = nextafter(-1, 0)
    z_j    = sqrt(2) * erfinv(u_j)

So the draw splits into blocks of :data:`BLOCK` counters, ``BLOCKS`` to a call, whose shapes do not depend on the
model's: one program per parameter count of the model (its number of tensors), compiled once and kept with the
runner's executables, draws every width's init. The numbers are the in-program init's bit for bit, compiled with
the training program's own XLA options (tests/runner/test_draws.py).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

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

    n_specs: int
    blocks: int = BLOCKS
    block: int = BLOCK


def _draw(seed: jax.Array, spec_P: jax.Array, offset_P: jax.Array, scale_P: jax.Array, *, n_specs: int,
          block: int) -> jax.Array:
    """``[P, block]``: row p is ``scale_P[p] * normal(key_{spec_P[p]}, ...)`` at counters ``offset_P[p] + j``."""
    k_init = jax.random.split(jax.random.PRNGKey(seed))[0]
    key_Px2 = jax.random.split(k_init, n_specs)[spec_P]
    shape = (spec_P.shape[0], block)
    counts = offset_P[:, None] + lax.iota(jnp.uint32, block)[None, :]
    x0, x1 = threefry2x32_p.bind(
        jnp.broadcast_to(key_Px2[:, :1], shape), jnp.broadcast_to(key_Px2[:, 1:], shape),
        jnp.zeros(shape, jnp.uint32), counts)
    # jax.random.uniform's mantissa trick, then normal's inverse error function, op for op
    one = np.array(1.0, np.float32)
    floats = lax.bitcast_convert_type(lax.shift_right_logical(x0 ^ x1, jnp.uint32(9)) | jnp.uint32(one.view(np.uint32)),
                                      jnp.float32) - one
    lo = np.nextafter(np.float32(-1), np.float32(0), dtype=np.float32)
    u = lax.max(jnp.float32(lo), floats * (jnp.float32(one) - jnp.float32(lo)) + jnp.float32(lo))
    return scale_P[:, None] * (np.float32(np.sqrt(2)) * lax.erf_inv(u))


_programs: dict[tuple[Draw, tuple[tuple[str, Any], ...]], Any] = {}
_lock = threading.Lock()


def _program(draw: Draw, options: dict[str, Any]) -> Any:
    """The compiled draw program for these XLA options: kept in this process, else loaded from the runner's
    executables, else compiled (once, whichever thread asks first) and kept."""
    key = (draw, tuple(sorted(options.items())))
    with _lock:
        if (compiled := _programs.get(key)) is not None:
            return compiled
        S = jax.ShapeDtypeStruct
        args = (S((), jnp.uint32), S((draw.blocks,), jnp.int32), S((draw.blocks,), jnp.uint32),
                S((draw.blocks,), jnp.float32))
        file = executables.path(draw, args, options)
        if (compiled := executables.load(file)) is None:
            fn = jax.jit(lambda *a: _draw(*a, n_specs=draw.n_specs, block=draw.block))
            compiled = fn.lower(*args).compile(options)
            executables.save(file, compiled)
        _programs[key] = compiled
        return compiled


def shared_draw() -> bool:
    """Whether JAX draws as this module assumes: threefry keys, partitionable bits. Otherwise (a user's JAX
    settings) :func:`initial_params` draws through :func:`runner.nn.init_params`, the same numbers, compiled
    per model shape."""
    config: Any = jax.config  # its flags are attributes set at run time
    return bool(config.jax_threefry_partitionable) and config.jax_default_prng_impl == "threefry2x32"


def initial_params(specs: dict[str, ParamSpec], seeds_M: np.ndarray, init_3: np.ndarray,
                   options: dict[str, Any]) -> dict[str, np.ndarray]:
    """Every run's initial parameters, ``name -> [M, *shape]`` in name order, for seeds ``seeds_M`` and per-layer
    init stds ``init_3``; the draw program compiled with ``options`` (the training program's, whose rounding
    of the scale it then shares)."""
    seeds = np.asarray(seeds_M, np.uint32).reshape(-1)
    init_3 = np.asarray(init_3, np.float32)
    names = sorted(specs)
    if not shared_draw():
        fallback = jax.jit(jax.vmap(lambda seed: init_params(
            specs, jax.random.split(jax.random.PRNGKey(seed))[0], jnp.asarray(init_3))))
        drawn = fallback.lower(jnp.asarray(seeds)).compile(options)(jnp.asarray(seeds))
        return {n: np.asarray(drawn[n]) for n in names}
    jobs: list[tuple[int, int, np.float32]] = []  # (spec index, first counter, scale) per block
    for i, name in enumerate(names):
        s = specs[name]
        if s.init == "normal":
            size = math.prod(s.shape)
            if size >= 2 ** 32:
                raise ValueError(f"{name}: {size} elements, more than a 32-bit counter draws")
            # the scale as the in-program draw formed it: a float32 std times the float32 constant
            scale = np.float32(init_3[s.layer]) * np.float32(s.std_const)
            jobs += [(i, off, scale) for off in range(0, size, BLOCK)]
    draw = Draw(len(names))
    program = _program(draw, options) if jobs else None
    out: dict[str, np.ndarray] = {n: np.empty((len(seeds), *specs[n].shape), np.float32) for n in names}
    pad = -len(jobs) % BLOCKS
    table = jobs + [(0, 0, np.float32(0))] * pad
    spec_J = np.asarray([j[0] for j in table], np.int32)
    offset_J = np.asarray([j[1] for j in table], np.uint32)
    scale_J = np.asarray([j[2] for j in table], np.float32)
    for m, seed in enumerate(seeds):
        rows = [np.asarray(program(seed, spec_J[b:b + BLOCKS], offset_J[b:b + BLOCKS], scale_J[b:b + BLOCKS]))
                for b in range(0, len(table), BLOCKS)] if program is not None else []
        flat = np.concatenate(rows) if rows else np.empty((0, BLOCK), np.float32)
        row = 0
        for name in names:
            s = specs[name]
            if s.init == "ones":
                out[name][m] = 1.0
            elif s.init == "zeros":
                out[name][m] = 0.0
            else:
                n_blocks = -(-math.prod(s.shape) // BLOCK)
                out[name][m] = flat[row:row + n_blocks].reshape(-1)[:math.prod(s.shape)].reshape(s.shape)
                row += n_blocks
    return out
