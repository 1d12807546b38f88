"""A run's random inputs, its initial parameters and its data windows' starts, drawn outside the training program:
the normals by one small program that every model shares, the keys and the starts (integers, exact) by numpy.

Until issue 18's compile work the training program drew both itself, and they were a fourth of every width's
compile (width 64: 0.47 s of 2.63 s of XLA CPU for the init, 0.25 s for the data draws, and 0.15 s of tracing),
paid again at every width of a sweep. Here the normals cost one compile of a program per XLA option set (0.26 CPU-s),
kept with the runner's executables like the training programs, and the rest costs no compile at all.

The initial parameters: each normal parameter is ``init_std_3[layer] * std_const * normal(key_i, (size,))``
reshaped, ``key_i`` the i-th of ``split(k_init, len(specs))`` in name order, ``(k_init, k_data) =
split(PRNGKey(seed))`` (:func:`runner.nn.init_params`). JAX draws with threefry in its partitionable mode (the
default since jax 0.5), where every draw is the threefry-2x32 hash of a key and a counter ``(hi, lo)``:
``PRNGKey(seed)`` is ``(0, seed)`` for a 32-bit seed, key ``i`` of ``split(key, n)`` is ``threefry(key, (0, i))``
whatever ``n``, ``fold_in(key, d)`` is ``threefry(key, (0, d))``, and element ``j`` of ``normal(key, (n,))`` is::

    bits_j = x0 ^ x1,  (x0, x1) = threefry2x32(key, (0, j))
    u_j    = max(lo, (bitcast(bits_j >> 9 | bits(1.0)) - 1) * (1 - lo) + lo),  lo = nextafter(-1, 0)
    z_j    = sqrt(2) * erfinv(u_j)

so the normals split into blocks of :data:`BLOCK` counters, :data:`BLOCKS` to a call, given their keys: the
program's shapes depend on nothing of the model's. The inverse error function is XLA's (its rounding depends on
XLA:CPU's emitters, so the program is compiled with the training program's options); the hash and the integers are
exact, so numpy computes the keys (:func:`_threefry`) and the data: step ``t`` of a run reads the windows starting at
``randint(fold_in(k_data, t), (B,), 0, tokens - T - 1)`` (:func:`starts`, jax's ``randint`` op for op in uint32).

The numbers are the in-program draws' bit for bit (tests/runner/test_draws.py). Where JAX is set to draw otherwise
(another PRNG, or the older non-partitionable bits), ``init_params`` and ``randint`` draw them, compiled per model
shape. A sweep's runs of one seed share their draw (:data:`_drawn` keeps the latest few).
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
from abcscale.runner.nn import ParamSpec, init_params, role_std

#: counters per block, and blocks per call of the draw program
BLOCK, BLOCKS = 8192, 8


@dataclass(frozen=True)
class Draw:
    """The draw program's identity in the executables cache: what its shapes depend on."""

    blocks: int = BLOCKS
    block: int = BLOCK


_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


Key = tuple[Any, Any]  # (k0, k1): uint32 scalars or arrays


def _threefry(k0: Any, k1: Any, x0: Any, x1: Any) -> Key:
    """The threefry-2x32 hash (20 rounds, Salmon et al. 2011) of counters ``(x0, x1)`` under keys ``(k0, k1)``,
    elementwise over their broadcast shapes, in uint32 arithmetic (wrapping): JAX's ``threefry2x32_p``."""
    k0, k1, x0, x1 = (np.asarray(a, np.uint32) for a in (k0, k1, x0, x1))
    ks = (k0, k1, k0 ^ k1 ^ np.uint32(0x1BD11BDA))
    with np.errstate(over="ignore"):  # the hash wraps by design
        x0, x1 = x0 + ks[0], x1 + ks[1]
        for i in range(5):
            for r in _ROTATIONS[i % 2]:
                x0 = x0 + x1
                x1 = (x1 << np.uint32(r)) | (x1 >> np.uint32(32 - r))
                x1 = x1 ^ x0
            x0, x1 = x0 + ks[(i + 1) % 3], x1 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x0, x1


def _child(key: Key, lo: Any) -> Key:
    """Key ``lo`` of ``split(key, n)``, and ``fold_in(key, lo)``: both hash the counter ``(0, lo)``."""
    return _threefry(key[0], key[1], np.uint32(0), lo)


def _bits(key: Key, n: int) -> np.ndarray:
    """``random_bits(key, 32, (n,))`` for keys of shape S: ``[*S, n]``."""
    x0, x1 = _threefry(key[0][..., None], key[1][..., None], np.uint32(0), np.arange(n, dtype=np.uint32))
    return x0 ^ x1


def _root(seed: int) -> Key:
    return np.uint32(0), np.uint32(seed)  # PRNGKey(seed) for a 32-bit seed


def starts(seed: int, steps: int, batch: int, high: int) -> np.ndarray:
    """The ``[steps, batch]`` int32 window starts of a run: row ``t`` is ``randint(fold_in(k_data, t), (batch,), 0,
    high)``, ``k_data = split(PRNGKey(seed))[1]``. ``randint`` as jax computes it for int32: two 32-bit draws
    ``hi``, ``lo`` from the key's two children, ``span = high`` (1 when ``high <= 0``), ``m = (2^16 mod span)^2 mod
    span`` and ``((hi mod span) * m + lo mod span) mod span``, all in wrapping uint32 arithmetic."""
    if high >= 2 ** 31:
        raise ValueError(f"window starts up to {high}: more than an int32 randint draws")
    k_t = _child(_child(_root(seed), 1), np.arange(steps, dtype=np.uint32))  # [steps] keys
    hi, lo = _bits(_child(k_t, 0), batch), _bits(_child(k_t, 1), batch)
    span = np.uint32(high if high > 0 else 1)
    with np.errstate(over="ignore"):  # as jax's uint32 arithmetic, wrapping
        m = (np.uint32(2 ** 16) % span) * (np.uint32(2 ** 16) % span) % span
        return ((hi % span * m + lo % span) % span).astype(np.int32)


def _normals(key_P2: jax.Array, offset_P: jax.Array, scale_P: jax.Array, *, what: Draw) -> jax.Array:
    """``[P, block]`` normals: row p ``scale_P[p] * normal(key_P2[p], ...)`` at counters ``offset_P[p] + j``."""
    shape = (what.blocks, what.block)
    counts = offset_P[:, None] + lax.iota(jnp.uint32, what.block)[None, :]
    x0, x1 = threefry2x32_p.bind(jnp.broadcast_to(key_P2[:, :1], shape), jnp.broadcast_to(key_P2[:, 1:], shape),
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


def _program(what: Draw, options: dict[str, Any]) -> Any:
    """The compiled draw program for these XLA options: kept in this process, else loaded from the runner's
    executables, else compiled (once, whichever thread asks first) and kept."""
    key = (what, tuple(sorted(options.items())))
    with _lock:
        if (compiled := _programs.get(key)) is not None:
            return compiled
        S = jax.ShapeDtypeStruct
        P = what.blocks
        args = (S((P, 2), jnp.uint32), S((P,), jnp.uint32), S((P,), jnp.float32))
        file = executables.path(what, args, options)
        if (compiled := executables.load(file)) is None:
            compiled = jax.jit(lambda *a: _normals(*a, what=what)).lower(*args).compile(options)
            executables.save(file, compiled)
        _programs[key] = compiled
        return compiled


def shared_draw() -> bool:
    """Whether JAX draws as this module assumes: threefry keys, partitionable bits, 32-bit integers (``randint``'s
    int64 under x64 is another algorithm) and no seed offset (which ``PRNGKey`` would add)."""
    config: Any = jax.config  # its flags are attributes set at run time
    return (bool(config.jax_threefry_partitionable) and config.jax_default_prng_impl == "threefry2x32"
            and not config.jax_enable_x64 and not getattr(config, "jax_random_seed_offset", 0))


class Drawn(NamedTuple):
    params: dict[str, np.ndarray]  # name -> [M, *shape], in name order
    starts: np.ndarray  # [M, steps, batch] int32


#: the latest draws, one seed's each: (what decides them) -> name -> array. A sweep trains a seed at every LR, one
#: run a call, so its runs of a seed reuse one draw; at most :data:`KEEP_BYTES` of them are kept.
_drawn: dict[tuple[Any, ...], dict[str, np.ndarray]] = {}
KEEP_BYTES = 256 * 2 ** 20


def _one_seed(specs: dict[str, ParamSpec], names: list[str], seed: int, init_3: np.ndarray,
              options: dict[str, Any]) -> dict[str, np.ndarray]:
    """One seed's initial parameters (read-only arrays, shared between the runs that ask)."""
    layout = tuple((n, specs[n].shape, specs[n].layer, specs[n].init, specs[n].std_const) for n in names)
    key = (layout, seed, init_3.tobytes(), tuple(sorted(options.items())))
    with _lock:
        if (hit := _drawn.pop(key, None)) is not None:
            _drawn[key] = hit  # most recent last
            return hit
    k_init = _child(_root(seed), 0)
    jobs: list[tuple[int, int, np.float32]] = []  # (spec index, first counter, scale) per block
    for i, name in enumerate(names):
        s = specs[name]
        if s.init == "normal":
            size = math.prod(s.shape)
            if size >= 2 ** 32:
                raise ValueError(f"{name}: {size} elements, more than a 32-bit counter draws")
            # the scale as the in-program draw formed it: a float32 std times the float32 constant
            scale = np.float32(role_std(init_3, s.layer)) * np.float32(s.std_const)
            jobs += [(i, off, scale) for off in range(0, size, BLOCK)]
    flat = np.empty((0, BLOCK), np.float32)
    if jobs:
        table = jobs + [(0, 0, np.float32(0))] * (-len(jobs) % BLOCKS)
        key_J2 = np.stack(_child(k_init, np.asarray([j[0] for j in table], np.uint32)), axis=-1)
        offset_J = np.asarray([j[1] for j in table], np.uint32)
        scale_J = np.asarray([j[2] for j in table], np.float32)
        program = _program(Draw(), options)
        flat = np.concatenate([np.asarray(program(key_J2[b:b + BLOCKS], offset_J[b:b + BLOCKS],
                                                  scale_J[b:b + BLOCKS])) for b in range(0, len(table), BLOCKS)])
    out, row = {}, 0
    for name in names:
        s = specs[name]
        if s.init == "normal":
            n_blocks = -(-math.prod(s.shape) // BLOCK)
            # a copy: a view would keep the padded blocks alive, which the cache's byte count does not see
            value = flat[row:row + n_blocks].reshape(-1)[:math.prod(s.shape)].reshape(s.shape).copy()
            row += n_blocks
        else:
            value = np.full(s.shape, 1.0 if s.init == "ones" else 0.0, np.float32)
        value.flags.writeable = False
        out[name] = value
    with _lock:
        _drawn[key] = out
        while sum(a.nbytes for one in _drawn.values() for a in one.values()) > KEEP_BYTES and len(_drawn) > 1:
            del _drawn[next(iter(_drawn))]
    return out


def draw(specs: dict[str, ParamSpec], seeds_M: np.ndarray, init_3: np.ndarray, *, steps: int, batch: int,
         high: int, options: dict[str, Any] | None = None) -> Drawn:
    """Every run's initial parameters (per-layer init stds ``init_3``) and its ``steps`` x ``batch`` data window
    starts in ``[0, high)``, for seeds ``seeds_M``; the normals compiled with ``options`` (the training program's,
    whose rounding of them they then share), by default the options the runner compiles a program of these
    ``specs`` with (``runner.train.compiler_options(specs=specs)``): a run's own draws, which a user's own loop
    needed an undocumented ``options=`` for (a user review)."""
    if options is None:
        from abcscale.runner.train import compiler_options

        options = compiler_options(specs=specs)
    seeds = np.asarray(seeds_M, np.uint32).reshape(-1)
    init_3 = np.asarray(init_3, np.float32)
    names = sorted(specs)
    if not shared_draw():  # as init_params and randint draw them, one program per model shape
        def one(seed: jax.Array) -> tuple[dict[str, jax.Array], jax.Array]:
            k_init, k_data = jax.random.split(jax.random.PRNGKey(seed))
            return init_params(specs, k_init, jnp.asarray(init_3)), jax.vmap(
                lambda t: jax.random.randint(jax.random.fold_in(k_data, t), (batch,), 0, high))(jnp.arange(steps))
        params, starts_M = jax.jit(jax.vmap(one)).lower(jnp.asarray(seeds)).compile(options)(jnp.asarray(seeds))
        return Drawn({n: np.asarray(params[n]) for n in names}, np.asarray(starts_M))
    drawn = [_one_seed(specs, names, int(seed), init_3, options) for seed in seeds]
    params = {n: np.stack([d[n] for d in drawn]) if drawn else np.empty((0, *specs[n].shape), np.float32)
              for n in names}
    return Drawn(params, np.stack([starts(int(seed), steps, batch, high) for seed in seeds]) if len(seeds) else
                 np.empty((0, steps, batch), np.int32))
