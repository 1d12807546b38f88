"""Optimizers: Adam-atan2's documented identities, per-layer learning rates and epsilons."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from abcscale.runner.optim import (
    OPTIMIZER_VARIANTS,
    make_optimizer,
    scale_by_adam_atan2,
    scale_by_layer_adam,
    variant,
)
from abcscale.runner.spec import OPTIMIZER_FAMILY


def _run(tx, grads_seq, params):
    state = tx.init(params)
    out = []
    for g in grads_seq:
        u, state = tx.update(g, state, params)
        out.append(u)
    return out


def _grads(scale=1.0, n=5, seed=0):
    rng = np.random.default_rng(seed)
    # a consistent sign plus noise: |m_hat| << sqrt(v_hat) needs noisy gradients, so use a large noise
    return [{"w": jnp.asarray(scale * (0.01 + rng.normal(size=(4, 3))), jnp.float32)} for _ in range(n)]


def test_atan2_is_adam_times_a_in_the_small_angle_regime():
    params = {"w": jnp.zeros((4, 3))}
    grads = _grads()
    adam = _run(optax.scale_by_adam(eps=0.0), grads, params)
    atan = _run(scale_by_adam_atan2(a=1.0), grads, params)
    atan_default = _run(scale_by_adam_atan2(), grads, params)
    ratio = np.asarray(adam[-1]["w"])
    small = np.abs(ratio) < 0.05  # atan(x) = x (1 - x^2/3 + ...): relative error < 1e-3 here
    assert small.sum() >= 1
    np.testing.assert_allclose(np.asarray(atan[-1]["w"])[small], ratio[small], rtol=1e-3)
    np.testing.assert_allclose(np.asarray(atan_default[-1]["w"])[small], 4 / math.pi * ratio[small], rtol=1e-3)


def test_atan2_matches_adam_where_m_equals_sqrt_v():
    # one step: m_hat = g, v_hat = g^2, so Adam gives sign(g) and atan2 gives (4/pi) atan(1) = 1
    g = {"w": jnp.asarray([[3.0, -0.2]])}
    (u,) = _run(scale_by_adam_atan2(), [g], {"w": jnp.zeros((1, 2))})
    np.testing.assert_allclose(np.asarray(u["w"]), [[1.0, -1.0]], rtol=1e-5)


@pytest.mark.parametrize("scale", [1e-6, 1e3])
def test_atan2_is_invariant_to_gradient_scale(scale):
    params = {"w": jnp.zeros((4, 3))}
    ref = _run(scale_by_adam_atan2(), _grads(1.0), params)[-1]["w"]
    got = _run(scale_by_adam_atan2(), _grads(scale), params)[-1]["w"]
    np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-4)
    # ...while Adam with an epsilon is not: tiny gradients fall under epsilon
    adam_small = _run(optax.scale_by_adam(eps=1e-8), _grads(1e-9), params)[-1]["w"]
    assert np.abs(np.asarray(adam_small)).max() < 0.5 * np.abs(np.asarray(ref)).max()


def test_layer_adam_equals_optax_adam_with_one_epsilon():
    params = {"a": jnp.zeros((4, 3)), "b": jnp.zeros((2,))}
    grads = [{"a": g["w"], "b": g["w"][0, :2]} for g in _grads()]
    ours = _run(scale_by_layer_adam({"a": 1e-3, "b": 1e-3}), grads, params)[-1]
    ref = _run(optax.scale_by_adam(eps=1e-3), grads, params)[-1]
    for k in params:
        np.testing.assert_allclose(np.asarray(ours[k]), np.asarray(ref[k]), rtol=1e-5)


def test_per_layer_learning_rates_and_epsilons_apply_to_their_layer():
    params = {"e": jnp.zeros((3,)), "h": jnp.zeros((3,)), "r": jnp.zeros((3,))}
    layers = {"e": 0, "h": 1, "r": 2}
    g = {k: jnp.full((3,), 1e-3) for k in params}
    lr = jnp.asarray([1.0, 0.1, 0.01])
    tx = make_optimizer("sgd", lr, jnp.zeros(3), layers, steps=10, schedule_kind="constant")
    u, _ = tx.update(g, tx.init(params), params)
    for k, i in layers.items():
        np.testing.assert_allclose(np.asarray(u[k]), -float(lr[i]) * 1e-3, rtol=1e-6)
    # Adam: epsilon 1e-3 on the hidden layer halves its first step (|g| = eps), the others are ~sign(g)
    tx = make_optimizer("adam", jnp.ones(3), jnp.asarray([0.0, 1e-3, 0.0]), layers, steps=10,
                        schedule_kind="constant")
    u, _ = tx.update(g, tx.init(params), params)
    np.testing.assert_allclose([float(u[k][0]) for k in "ehr"], [-1.0, -0.5, -1.0], rtol=1e-4)


def test_warmup_then_cosine_schedule():
    from abcscale.runner.optim import schedule

    s = schedule("cosine", 100, 0.1)
    assert float(s(0)) < 0.2 and abs(float(s(10)) - 1.0) < 1e-6 and float(s(99)) < 0.01
    assert float(schedule("constant", 100, 0.0)(50)) == 1.0


def test_jitted_optimizer_takes_traced_learning_rates():
    params = {"e": jnp.ones((2,))}

    @jax.jit
    def step(lr):
        tx = make_optimizer("adam", jnp.stack([lr, lr, lr]), jnp.full(3, 1e-8), {"e": 0}, steps=5,
                            schedule_kind="constant")
        u, _ = tx.update({"e": jnp.ones((2,))}, tx.init(params), params)
        return u["e"]

    np.testing.assert_allclose(np.asarray(jax.vmap(step)(jnp.asarray([0.1, 0.2])))[:, 0], [-0.1, -0.2], rtol=1e-4)


@pytest.mark.parametrize("name", list(OPTIMIZER_VARIANTS))
def test_uses_epsilon_says_whether_the_chain_reads_the_epsilons(name):
    params = {"e": jnp.ones((3,)), "h": jnp.ones((3,)), "r": jnp.ones((3,))}  # nonzero: parameter scaling
    layers = {"e": 0, "h": 1, "r": 2}
    g = {k: jnp.asarray([1e-3, -2e-3, 5e-4]) for k in params}

    def first_update(eps):
        tx = make_optimizer(name, jnp.ones(3), jnp.full(3, eps), layers, steps=10, schedule_kind="constant",
                            momentum=0.9)
        u, _ = tx.update(g, tx.init(params), params)
        return np.concatenate([np.asarray(u[k]) for k in layers])

    small, large = first_update(0.0), first_update(1e-2)  # epsilon 10x the gradient: Adam's step shrinks ~10x
    assert np.all(np.isfinite(small)) and np.abs(small).max() > 0
    assert (not np.array_equal(small, large)) == variant(name).uses_epsilon


def test_the_registry_names_the_spec_variants_with_their_families():
    assert {k: v.family for k, v in OPTIMIZER_VARIANTS.items()} == OPTIMIZER_FAMILY


def test_unknown_variant_names_the_registry():
    with pytest.raises(ValueError, match="unknown optimizer variant 'sophia'; OPTIMIZER_VARIANTS has sgd, adam"):
        make_optimizer("sophia", jnp.ones(3), jnp.zeros(3), {"e": 0}, steps=5)


def test_adamw_one_step_is_the_hand_computation():
    """Step 1: m_hat = g, v_hat = g^2, so W <- W - lr_l (g / (|g| + eps_l) + wd_l W) on matrices, and the
    vector (a LayerNorm gain) gets Adam's step only."""
    params = {"e": jnp.full((2, 3), 2.0), "h": jnp.full((3, 3), -1.0), "gain": jnp.full((3,), 1.5)}
    layers = {"e": 0, "h": 1, "gain": 0}
    g = {"e": jnp.full((2, 3), 0.5), "h": jnp.full((3, 3), -0.25), "gain": jnp.full((3,), 0.1)}
    lr, eps, wd = jnp.asarray([0.1, 0.01, 1.0]), jnp.asarray([0.5, 0.0, 0.0]), jnp.asarray([0.2, 3.0, 0.0])
    tx = make_optimizer("adamw", lr, eps, layers, steps=10, schedule_kind="constant", wd_3=wd)
    u, _ = tx.update(g, tx.init(params), params)
    want = {"e": -0.1 * (0.5 / (0.5 + 0.5) + 0.2 * 2.0),  # -0.09
            "h": -0.01 * (-1.0 + 3.0 * -1.0),              # +0.04
            "gain": -0.1 * (0.1 / (0.1 + 0.5))}             # no decay on a vector
    for k, v in want.items():
        np.testing.assert_allclose(np.asarray(u[k]), v, rtol=1e-5)


def test_adamw_is_optax_adamw_with_a_matrix_mask():
    params = {"w": jnp.asarray(np.random.default_rng(1).normal(size=(4, 3)), jnp.float32), "b": jnp.ones((3,))}
    grads = [{"w": g["w"], "b": g["w"][0]} for g in _grads()]
    ours = make_optimizer("adamw", jnp.full(3, 3e-2), jnp.full(3, 1e-6), {"w": 1, "b": 1}, steps=5,
                          schedule_kind="constant", wd_3=jnp.full(3, 0.5))
    ref = optax.adamw(3e-2, eps=1e-6, weight_decay=0.5, mask=lambda p: jax.tree.map(lambda x: x.ndim >= 2, p))
    for a, b in zip(_run(ours, grads, params), _run(ref, grads, params), strict=True):
        for k in params:
            np.testing.assert_allclose(np.asarray(a[k]), np.asarray(b[k]), rtol=1e-5, atol=1e-8)
    # without wd_3 the coupled decay is off: adamw is adam
    plain = make_optimizer("adamw", jnp.full(3, 3e-2), jnp.full(3, 1e-6), {"w": 1, "b": 1}, steps=5,
                           schedule_kind="constant")
    adam = make_optimizer("adam", jnp.full(3, 3e-2), jnp.full(3, 1e-6), {"w": 1, "b": 1}, steps=5,
                          schedule_kind="constant")
    np.testing.assert_allclose(np.asarray(_run(plain, grads, params)[-1]["w"]),
                               np.asarray(_run(adam, grads, params)[-1]["w"]), rtol=1e-6)


def test_adamw_independent_decay_is_subtracted_as_it_is_after_the_lr():
    """wd_mode="independent": W <- W - lr_l * adam_step - wd_l * W on matrices (not scaled by the LR)."""
    params = {"h": jnp.full((3, 3), -1.0), "gain": jnp.full((3,), 1.5)}
    g = {"h": jnp.full((3, 3), -0.25), "gain": jnp.full((3,), 0.1)}
    tx = make_optimizer("adamw", jnp.asarray([0.1, 0.01, 1.0]), jnp.zeros(3), {"h": 1, "gain": 1}, steps=10,
                        schedule_kind="constant", wd_3=jnp.asarray([0.0, 0.3, 0.0]), wd_mode="independent")
    u, _ = tx.update(g, tx.init(params), params)
    np.testing.assert_allclose(np.asarray(u["h"]), -0.01 * -1.0 - 0.3 * -1.0, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(u["gain"]), -0.01 * 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="wd_mode"):
        make_optimizer("adamw", jnp.ones(3), jnp.zeros(3), {"h": 1}, steps=5, wd_mode="both")
