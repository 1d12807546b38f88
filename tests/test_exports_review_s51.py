"""An optimizer-coverage review (session 51): a Muon spec's hidden conv kernels and ``lax.scan`` stacks.

Muon's hidden LR (c = 0 under muP: constant across widths) is derived for its orthogonalised step. The optax
export ran every hidden tensor that was not 2-D through contrib.muon's AdamW fallback at that LR: at 16x the
base width a conv kernel's or a stacked layer's step was 16x what Adam's own hidden rule gives. Now Muon takes
them: a stack layer by layer, a conv kernel as one [kernel x in, out] matrix.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optax import contrib

import abcscale
from abcscale import optax as abcoptax

D, V = 64, 50


def _spec(opt: str = "muon"):
    return abcscale.recommend("mup", opt, width=D, base_width=16, beta=1e-3, form="multiplier_free").groups


def _tree(extra):
    return {"embed": {"embedding": jnp.zeros((V, D))}, "hidden_0": {"kernel": jnp.zeros((D, D))},
            "ln_f": {"scale": jnp.ones(D)}, "lm_head": {"kernel": jnp.zeros((D, V))}, **extra}


def _step(spec, params, grads):
    tx = abcoptax.transform(spec, params)
    updates, _ = tx.update(grads, tx.init(params), params)
    return updates


def test_a_scan_stack_is_muon_layer_by_layer():
    g = jax.random.normal(jax.random.key(0), (2, D, D))
    params = _tree({"blocks": {"mlp": {"kernel": jnp.zeros((2, D, D))}}})
    grads = jax.tree.map(jnp.zeros_like, params)
    grads["blocks"]["mlp"]["kernel"] = g
    grads["hidden_0"]["kernel"] = g[1]
    u = _step(_spec(), params, grads)
    # the stack's second layer steps exactly as a lone hidden matrix with its gradient does
    np.testing.assert_allclose(np.asarray(u["blocks"]["mlp"]["kernel"][1]), np.asarray(u["hidden_0"]["kernel"]),
                               rtol=1e-5, atol=1e-9)
    # and not as Adam's first step (lr x sign(g) everywhere), which the AdamW fallback took
    step = np.abs(np.asarray(u["blocks"]["mlp"]["kernel"]))
    assert step.std() / step.mean() > 0.3


def test_a_conv_kernel_is_one_flattened_muon_matrix():
    g = jax.random.normal(jax.random.key(1), (3, 3, D, D))
    params = _tree({"Conv_0": {"kernel": jnp.zeros((3, 3, D, D))}})
    grads = jax.tree.map(jnp.zeros_like, params)
    grads["Conv_0"]["kernel"] = g
    spec = _spec()
    u = _step(spec, params, grads)["Conv_0"]["kernel"]
    lr = spec["hidden"].lr
    ref = contrib.muon(lr, beta=0.95)  # the same step on the [3 x 3 x in, out] matrix
    flat = jnp.zeros((9 * D, D))
    want, _ = ref.update(g.reshape(9 * D, D), ref.init(flat), flat)
    np.testing.assert_allclose(np.asarray(u).reshape(9 * D, D), np.asarray(want), rtol=1e-4, atol=1e-9)


def test_adam_specs_are_unchanged_on_such_tensors():
    params = _tree({"Conv_0": {"kernel": jnp.zeros((3, 3, D, D))}})
    grads = jax.tree.map(jnp.ones_like, params)
    spec = _spec("adam")
    u = _step(spec, params, grads)
    assert float(jnp.abs(u["Conv_0"]["kernel"]).mean()) == pytest.approx(spec["hidden"].lr, rel=1e-3)
    assert isinstance(abcoptax.transform(spec, params), optax.GradientTransformation)


def test_a_torch_layout_stack_is_muon_layer_by_layer():
    """A code review: in the torch layout (equinox, [out, in]) a stack [depth, out, in] was read as one
    [out, depth x in] matrix, mixing its layers, each step about sqrt(fan-in) too small."""
    g = jax.random.normal(jax.random.key(2), (2, D, D))
    params = {"embed": {"weight": jnp.zeros((V, D))}, "hidden_0": {"weight": jnp.zeros((D, D))},
              "ln_f": {"weight": jnp.ones(D)}, "lm_head": {"weight": jnp.zeros((V, D))},
              "blocks": {"mlp": {"weight": jnp.zeros((2, D, D))}}}
    grads = jax.tree.map(jnp.zeros_like, params)
    grads["blocks"]["mlp"]["weight"] = g
    grads["hidden_0"]["weight"] = g[0]
    spec = _spec()
    tx = abcoptax.transform(spec, params, layout="torch")
    u, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(np.asarray(u["blocks"]["mlp"]["weight"][0]), np.asarray(u["hidden_0"]["weight"]),
                               rtol=1e-5, atol=1e-9)
