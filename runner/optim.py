"""Optimizers as optax chains with per-layer-type learning rates and Adam epsilons given at run time.

One chain for the whole model, ``direction -> schedule -> per-leaf scale(-lr_l)``: learning rates and
epsilons are traced per-leaf values, so vmapping over them reuses one compiled program, and one shared
chain (rather than one per layer type) keeps that program, and its compile time, small.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


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


def scale_by_tree(factors: optax.Updates) -> optax.GradientTransformation:
    """Multiply each leaf's update by its own (traced) factor: the per-layer learning rates."""

    def update_fn(updates, state, params=None):
        del params
        return jax.tree.map(lambda u, f: u * f, updates, factors), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


def make_optimizer(optimizer: str, lr_3: jax.Array, eps_3: jax.Array, param_layers: dict[str, int], *,
                   steps: int, schedule_kind: str = "cosine", warmup: float = 0.0, momentum: float = 0.0,
                   weight_decay: float = 0.0) -> optax.GradientTransformation:
    """The optimizer; ``lr_3`` and ``eps_3`` are indexed embedding, hidden, readout and
    ``param_layers`` maps each parameter name to its layer-type index."""
    sched = schedule(schedule_kind, steps, warmup)
    eps = {k: eps_3[i] for k, i in param_layers.items()}
    lr = {k: lr_3[i] for k, i in param_layers.items()}
    if optimizer == "adafactor":
        # Adafactor's own chain (factored second moments, parameter scaling, update clipping); it negates.
        parts = [optax.adafactor(learning_rate=sched, multiply_by_parameter_scale=True, factored=True),
                 scale_by_tree(lr)]
    else:
        if optimizer == "sgd":
            direction = [optax.trace(decay=momentum)] if momentum else []
        elif optimizer == "adam":
            direction = [scale_by_layer_adam(eps)]
        elif optimizer == "adam_atan2":
            direction = [scale_by_adam_atan2()]
        elif optimizer == "adam_scaled":
            direction = [scale_by_layer_adam(eps), optax.scale_by_param_block_rms()]
        else:
            raise ValueError(f"unknown optimizer {optimizer!r}")
        parts = [*direction, optax.scale_by_schedule(sched), scale_by_tree({k: -v for k, v in lr.items()})]
    if weight_decay:
        parts.append(optax.add_decayed_weights(-weight_decay))  # independent of the LR
    return optax.chain(*parts)
