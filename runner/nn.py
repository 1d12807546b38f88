"""What the models share: parameters tagged by layer type, jitted init, and coordinate probes.

Layer types index the per-layer arrays the parameterization supplies at run time: 0 embedding, 1 hidden,
2 readout (``schemas.enums.LAYERS`` order) and 3 vector-like (biases, LayerNorm gains: ``schemas.groups.Role``
order). The learning rates, Adam epsilons and weight decays are 4-long; multipliers and init stds stay 3-long,
since a vector-like parameter takes no multiplier and starts at ones or zeros. All are runtime arrays, so one
compiled program serves every parameterization at a given shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import jax
import jax.numpy as jnp

EMB, HID, OUT, VEC, FIX = 0, 1, 2, 3, 4
#: the role names of the layer-type indices (coord.parquet's ``layer_type``)
LAYER_TYPES = ("embedding", "hidden", "readout", "vector", "fixed")
Init = Literal["normal", "ones", "zeros"]


@dataclass(frozen=True)
class ModelConfig:
    kind: Literal["transformer", "mlp", "user"]
    width: int  # D
    depth: int  # blocks (transformer) or hidden layers (mlp)
    seq_len: int  # T
    vocab: int = 256  # V
    head_dim: int = 16
    attn_scale: Literal["sqrt", "linear"] = "sqrt"
    factory: str | None = None  # kind "user": the factory reference (runner.user)
    fan_in_exponent: float = 0.5  # kind "user": a hidden matrix with fan-in r * width starts at std * r**-this
    # kind "user": a readout with fan-in r * width starts at std * r**-this (its role's init exponent, as the exports'
    # spec.init_std("readout", r)); None: r is not read (1), as before session 65
    readout_fan_in_exponent: float | None = None


@dataclass(frozen=True)
class ParamSpec:
    shape: tuple[int, ...]
    layer: int  # EMB, HID, OUT, VEC or FIX (no width-sized axis: a user model's readout bias)
    init: Init = "normal"  # LayerNorm scales start at ones, biases at zeros; neither takes a multiplier
    std_const: float = 1.0  # width-independent factor on the init std (e.g. fan-in 4D of the MLP output)


def role_std(init_std_3: Any, layer: int) -> Any:
    """The init std a normal parameter of ``layer`` is drawn at times its ``std_const``: its role's (embedding,
    hidden, readout), or 1 for a vector-like or fixed one, whose ``std_const`` is then its std itself (a user model's
    depthwise conv kernel, drawn as the model draws it: ``runner.user.layout``). Indexed past the three, a JAX array
    took the readout's std in silence."""
    return init_std_3[layer] if layer < len(init_std_3) else 1.0


def init_params(specs: dict[str, ParamSpec], key: jax.Array, init_std_3: jax.Array) -> dict[str, jax.Array]:
    """Each normal parameter is ``init_std_3[layer] * std_const * normal(key_i, shape)``, key_i the i-th of
    ``split(key, len(specs))`` in name order (a vector-like or fixed one's at ``std_const``: :func:`role_std`).

    Parameters of one size draw in one vmapped call (their flat normals, scaled inside the call, reshaped):
    the same numbers bit for bit as one draw per parameter (tests/runner/test_init.py), with a third of the
    kernels, which cuts the compile time of a depth-2 transformer's init by a third (issue 18)."""
    keys = jax.random.split(key, len(specs))
    out: dict[str, jax.Array] = {}
    by_size: dict[int, list[tuple[str, jax.Array]]] = {}
    for k, (name, s) in zip(keys, sorted(specs.items()), strict=True):
        if s.init == "ones":
            out[name] = jnp.ones(s.shape, jnp.float32)
        elif s.init == "zeros":
            out[name] = jnp.zeros(s.shape, jnp.float32)
        else:
            by_size.setdefault(math.prod(s.shape), []).append((name, k))
    for size, members in by_size.items():
        # the scale multiplies inside the vmapped draw, as it did in one draw per parameter: the same fusion
        # gives the same rounding (scaling after the draw differs in the last bit)
        scale = jnp.stack([role_std(init_std_3, specs[n].layer) * specs[n].std_const for n, _ in members])
        z = jax.vmap(lambda k, c: c * jax.random.normal(k, (size,), jnp.float32))(  # noqa: B023
            jnp.stack([k for _, k in members]), scale)
        for i, (name, _) in enumerate(members):
            out[name] = z[i].reshape(specs[name].shape)
    return {name: out[name] for name in sorted(specs)}


def n_params(specs: dict[str, ParamSpec]) -> int:
    total = 0
    for s in specs.values():
        size = 1
        for d in s.shape:
            size *= d
        total += size
    return total


def rms(x: jax.Array) -> jax.Array:
    return jnp.sqrt(jnp.mean(jnp.square(x)))


@jax.custom_vjp
def matmul(z_NxI: jax.Array, w_IxO: jax.Array) -> jax.Array:
    """``z @ w`` for 2-D operands, with a weight gradient that XLA:CPU runs as a plain GEMM.

    Autodiff writes the weight gradient ``z^T g`` as a dot contracting both operands' first axis, which
    XLA:CPU gives to Eigen instead of the YNNPACK kernels that run the forward and the input gradient (in a
    width-128 profile of the demo's transformer those dots ran at 51-64 GFLOP/s and took a fifth of the step). On
    the CPU this materializes ``z^T`` first (the optimization barrier keeps XLA from folding the transpose
    back into the dot), so the product is an ordinary GEMM: the warm demo sweep ran 2.8% faster (issue 18),
    with losses bit-identical at widths 64-256 and within 1e-6 at 32 (tests/runner/test_matmul.py). Other
    backends take the transposed form natively and keep autodiff's."""
    return z_NxI @ w_IxO


def _matmul_fwd(z_NxI: jax.Array, w_IxO: jax.Array) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    return z_NxI @ w_IxO, (z_NxI, w_IxO)


def _matmul_bwd(res: tuple[jax.Array, jax.Array], g_NxO: jax.Array) -> tuple[jax.Array, jax.Array]:
    z_NxI, w_IxO = res
    z_IxN = jax.lax.optimization_barrier(z_NxI.T) if jax.default_backend() == "cpu" else z_NxI.T
    return g_NxO @ w_IxO.T, z_IxN @ g_NxO


matmul.defvjp(_matmul_fwd, _matmul_bwd)


class Probes:
    """Applies each weight and, when on, keeps what the coordinate statistics need (:func:`probe_stats`).

    A_l = log_{fan_in}( rms(W z) / (rms(W) rms(z)) ): 1/2 when W and z are independent, 1 when aligned.
    Both use the raw weight, so the multiplier cancels; the activation RMS includes it.

    The kept arrays are the training forward's own (a loss function returns ``captured`` as an auxiliary
    output), so the statistics need no second, probed forward to compile or run: the training program
    reduces them only at the recorded steps (issue 18).
    """

    def __init__(self, on: bool) -> None:
        self.on = on
        # name -> (output before the multiplier, multiplier, weight or None, input rms or input or None)
        self.captured: dict[str, tuple[jax.Array, ...]] = {}

    def dense(self, name: str, z: jax.Array, w: jax.Array, mult: jax.Array) -> jax.Array:
        # One 2-D GEMM over all leading axes: with [B, T, D] @ [D, F] autodiff contracts the weight
        # gradient over (B, T), and XLA:CPU then copies the [B*T, F] activation gradient into a transposed
        # layout every step (0.35 s of a 2.5 s width-512 step in a profile of bench_runner's compute benchmark).
        y = matmul(z.reshape(-1, z.shape[-1]), w).reshape(*z.shape[:-1], w.shape[-1])
        if self.on:
            self.captured[name] = (y, mult, w, z)
        return mult * y

    def record(self, name: str, x: jax.Array) -> jax.Array:
        """A user model's probe (runner.user): the activation's RMS; no weight, so no alignment."""
        if self.on:
            self.captured[name] = (x,)
        return x

    def embed(self, name: str, tokens: jax.Array, w: jax.Array, mult: jax.Array) -> jax.Array:
        y = w[tokens]  # a one-hot times w: the one-hot's RMS is V^-1/2
        if self.on:
            self.captured[name] = (y, mult, w)
        return mult * y


def probe_stats(captured: dict[str, tuple[jax.Array, ...]]) -> dict[str, tuple[jax.Array, jax.Array]]:
    """Per probed name, (activation RMS with the multiplier, alignment A_l) from :class:`Probes`' captures;
    a user model's activation probe has RMS only (alignment NaN)."""
    out: dict[str, tuple[jax.Array, jax.Array]] = {}
    for name, cap in captured.items():
        if len(cap) == 1:
            out[name] = (rms(cap[0]), jnp.asarray(jnp.nan, jnp.float32))
            continue
        y, mult, w = cap[:3]
        # the embedding's input is a one-hot, whose RMS is V^-1/2
        z_rms = rms(cap[3]) if len(cap) == 4 else jnp.asarray(w.shape[0] ** -0.5)
        y_rms = rms(y)
        out[name] = (mult * y_rms, jnp.log(y_rms / (rms(w) * z_rms)) / jnp.log(w.shape[0]))
    return out
