"""Optimizers as optax chains with per-layer-type learning rates and Adam epsilons given at run time.

One chain for the whole model, ``direction -> schedule -> per-leaf scale(-lr_l)``: learning rates and
epsilons are traced per-leaf values, so vmapping over them reuses one compiled program, and one shared
chain (rather than one per layer type) keeps that program, and its compile time, small.

Each variant the runner trains is one entry of ``OPTIMIZER_VARIANTS``: its chain, the optimizer family
whose exponents the theory engine uses, and whether the chain reads the epsilons.

Weight decay comes in two forms (docs/theory.md section 9). ``make_optimizer(weight_decay=...)`` is the
independent one, for every variant: each step subtracts wd * W, whatever the LR. The ``adamw`` variant adds the
coupled one, ``optax.adamw``'s chain with per-layer values: the step subtracts lr_l * wd_l * W, with wd_l from
``wd_3`` (or, with ``wd_mode="independent"``, wd_l * W after the LR, unscheduled). It decays only
matrices (``ndim >= 2``: embeddings, hidden and readout weights), not LayerNorm gains
or biases, as nanoGPT and most LLM recipes do: a gain's size is a scale, not a capacity to regularise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from abcscale.schemas.enums import Optimizer


class ScaleByAdamMomentsState(NamedTuple):
    count: jax.Array  # type: ignore[assignment]  # optax's name for the step count; shadows tuple.count
    mu: optax.Updates
    nu: optax.Updates


def _scale_by_adam_moments(direction, b1: float, b2: float, *extra: optax.Updates) -> optax.GradientTransformation:
    """Adam's bias-corrected moments, then ``direction(m_hat, v_hat, *extra_leaves)`` per leaf."""

    def init_fn(params: optax.Params) -> ScaleByAdamMomentsState:
        zeros = optax.tree_utils.tree_zeros_like(params)
        return ScaleByAdamMomentsState(jnp.zeros([], jnp.int32), zeros, zeros)

    def update_fn(updates, state, params=None):
        del params
        mu = optax.tree_utils.tree_update_moment(updates, state.mu, b1, 1)
        nu = optax.tree_utils.tree_update_moment_per_elem_norm(updates, state.nu, b2, 2)
        count = optax.safe_increment(state.count)
        mu_hat = optax.tree_utils.tree_bias_correction(mu, b1, count)
        nu_hat = optax.tree_utils.tree_bias_correction(nu, b2, count)
        return jax.tree.map(direction, mu_hat, nu_hat, *extra), ScaleByAdamMomentsState(count, mu, nu)

    return optax.GradientTransformation(init_fn, update_fn)


def scale_by_adam_atan2(b1: float = 0.9, b2: float = 0.999, a: float = 4 / math.pi,
                        b: float = 1.0) -> optax.GradientTransformation:
    r"""Adam-atan2 (Everett et al. 2024; docs/theory.md section 5): no epsilon, scale-invariant, bounded.

    .. math::

        u = a \, \mathrm{atan2}(\hat m, b \sqrt{\hat v})

    With ``a = 4/pi, b = 1`` it equals Adam where :math:`\hat m = \sqrt{\hat v}`; where
    :math:`|\hat m| \ll \sqrt{\hat v}` it is ``a`` times Adam without epsilon.
    """

    return _scale_by_adam_moments(lambda m, v: a * jnp.arctan2(m, b * jnp.sqrt(v)), b1, b2)


def schedule(kind: str, steps: int, warmup: float):
    """Multiplier on the LR at each step: linear warmup, then cosine to zero or constant."""
    n_warm = int(round(warmup * steps))
    if kind == "constant":
        decay = optax.constant_schedule(1.0)
    else:
        decay = optax.cosine_decay_schedule(1.0, max(steps - n_warm, 1))
    if n_warm == 0:
        return decay
    return optax.join_schedules([optax.linear_schedule(1.0 / (n_warm + 1), 1.0, n_warm), decay], [n_warm])


def scale_by_layer_adam(eps: optax.Updates, b1: float = 0.9, b2: float = 0.999) -> optax.GradientTransformation:
    r"""Adam's direction :math:`\hat m / (\sqrt{\hat v} + \epsilon_l)` with a per-leaf epsilon tree
    (docs/theory.md section 5: epsilon scaled per layer with the layer's gradient size)."""

    return _scale_by_adam_moments(lambda m, v, e: m / (jnp.sqrt(v) + e), b1, b2, eps)


def add_decayed_matrices(weight_decay: optax.Updates) -> optax.GradientTransformation:
    """``optax.add_decayed_weights`` with a per-leaf (traced) decay, on matrices only: u + wd_l * W where
    ``W.ndim >= 2``, u elsewhere (the module docstring's mask)."""

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("add_decayed_matrices needs the parameters: pass them to update()")
        return jax.tree.map(lambda u, p, w: u + w * p if p.ndim >= 2 else u, updates, params, weight_decay), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


def scale_by_tree(factors: optax.Updates) -> optax.GradientTransformation:
    """Multiply each leaf's update by its own (traced) factor: the per-layer learning rates."""

    def update_fn(updates, state, params=None):
        del params
        return jax.tree.map(lambda u, f: u * f, updates, factors), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


class ChainInputs(NamedTuple):
    """What a variant's chain is built from: per-leaf epsilons, learning rates and coupled weight decays,
    the LR multiplier schedule, and SGD's momentum."""

    eps: optax.Updates
    lr: optax.Updates
    sched: optax.Schedule
    momentum: float
    wd: optax.Updates


Chain = Callable[[ChainInputs], list[optax.GradientTransformation]]


@dataclass(frozen=True)
class Variant:
    """One optimizer the runner trains."""

    family: Optimizer  # whose exponents the theory engine uses
    uses_epsilon: bool  # the chain reads the per-layer epsilons, so the rows record them
    chain: Chain
    decays: bool = False  # the chain applies the per-layer decoupled decay (wd_3), so the rows record it


def _descend(direction: Chain) -> Chain:
    """``direction``, then the schedule and minus each leaf's learning rate."""
    return lambda x: [*direction(x), optax.scale_by_schedule(x.sched),
                      scale_by_tree({k: -v for k, v in x.lr.items()})]


def _adafactor(x: ChainInputs) -> list[optax.GradientTransformation]:
    # Adafactor's own chain (factored second moments, parameter scaling, update clipping); it negates.
    return [optax.adafactor(learning_rate=x.sched, multiply_by_parameter_scale=True, factored=True),
            scale_by_tree(x.lr)]


#: optimizer variants the runner trains (runner.spec.OPTIMIZER_FAMILY lists the same names, without JAX)
OPTIMIZER_VARIANTS: dict[str, Variant] = {
    "sgd": Variant(Optimizer.sgd, uses_epsilon=False,
                   chain=_descend(lambda x: [optax.trace(decay=x.momentum)] if x.momentum else [])),
    "adam": Variant(Optimizer.adam, uses_epsilon=True, chain=_descend(lambda x: [scale_by_layer_adam(x.eps)])),
    # optax.adamw's order (Adam, + wd * W, then the LR): the decay is scaled by lr_l and the schedule
    "adamw": Variant(Optimizer.adamw, uses_epsilon=True, decays=True, chain=_descend(
        lambda x: [scale_by_layer_adam(x.eps), add_decayed_matrices(x.wd)])),
    # scale-invariant Adam: Adam's update scale, no epsilon
    "adam_atan2": Variant(Optimizer.adam, uses_epsilon=False, chain=_descend(lambda x: [scale_by_adam_atan2()])),
    # Adam with parameter scaling: Adafactor's exponents (docs/theory.md section 2)
    "adam_scaled": Variant(Optimizer.adafactor, uses_epsilon=True, chain=_descend(
        lambda x: [scale_by_layer_adam(x.eps), optax.scale_by_param_block_rms()])),
    "adafactor": Variant(Optimizer.adafactor, uses_epsilon=False, chain=_adafactor),
}


def variant(name: str) -> Variant:
    """The registered variant ``name``; an unknown name is a ValueError listing ``OPTIMIZER_VARIANTS``."""
    try:
        return OPTIMIZER_VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown optimizer variant {name!r}; OPTIMIZER_VARIANTS has "
                         f"{', '.join(OPTIMIZER_VARIANTS)}") from None


def make_optimizer(optimizer: str, lr_3: jax.Array, eps_3: jax.Array, param_layers: dict[str, int], *,
                   steps: int, schedule_kind: str = "cosine", warmup: float = 0.0, momentum: float = 0.0,
                   weight_decay: float = 0.0, wd_3: jax.Array | None = None,
                   wd_mode: str = "coupled") -> optax.GradientTransformation:
    """The chain of variant ``optimizer``; ``lr_3``, ``eps_3`` and ``wd_3`` are indexed embedding, hidden,
    readout (and vector-like, ``runner.nn.VEC``, when a parameter has that type) and ``param_layers`` maps each
    parameter name to its layer-type index.

    ``weight_decay``: the plain independent decay, every variant, every parameter; ``wd_3``: the per-layer
    decoupled decay that ``adamw`` applies to its matrices (default none), ``coupled`` (scaled by lr_l and the
    schedule) or ``independent`` (``wd_mode``: subtracted as it is, after the LR)."""
    if wd_mode not in ("coupled", "independent"):
        raise ValueError(f"wd_mode must be 'coupled' or 'independent', got {wd_mode!r}")
    var = variant(optimizer)
    wd_3 = jnp.zeros(4) if wd_3 is None else wd_3
    per_leaf = {k: wd_3[i] for k, i in param_layers.items()}
    independent = wd_mode == "independent" and var.decays
    parts = var.chain(ChainInputs(eps={k: eps_3[i] for k, i in param_layers.items()},
                                  lr={k: lr_3[i] for k, i in param_layers.items()},
                                  sched=schedule(schedule_kind, steps, warmup), momentum=momentum,
                                  wd={k: 0.0 * v for k, v in per_leaf.items()} if independent else per_leaf))
    if independent:
        parts.append(add_decayed_matrices({k: -v for k, v in per_leaf.items()}))
    if weight_decay:
        parts.append(optax.add_decayed_weights(-weight_decay))  # independent of the LR
    return optax.chain(*parts)
