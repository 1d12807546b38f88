"""Session 68, abcscale.optax's side of the sweep/export review (tests/runner/test_review_s68_jax.py the sweep's):

- a readout's fan-in is read by one function for both (``export.readout_fan``): every axis but its last for a readout
  of 3 or more axes that nothing else reads (a DenseGeneral over [heads, head_dim, V], a conv readout no conv name
  reads), the read matrix's input axis times the taps otherwise (a ConvLocal readout's own [kernel x in, out] matrices:
  its output positions were taken into the fan-in, 16x it for a 4 x 4 grid);
- a conv-named kernel of 5 axes without a bias is one convolution of 3 kernel axes, or an nn.scan stack of 2-D
  convolutions (the std sqrt(depth) apart, Muon one matrix or one a layer): said, with the fan_in for a stack.
"""

from __future__ import annotations

import pytest

import abcscale
from abcscale.schemas.groups import GroupRule, Role

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
abcoptax = pytest.importorskip("abcscale.optax")
export = pytest.importorskip("abcscale.runner.export")

from tests.test_jax_review_s67 import _caught, _z  # noqa: E402  (after the importorskips: JAX is an extra)

C, V = 64, 256


def _spec(optimizer: str = "adam", width: int = C):
    return abcscale.recommend("mup", optimizer, width=width, base_width=32, beta=1e-2, form="multiplier_free").groups




def _lm(block: dict, head: dict | None = None) -> dict:
    return {"wte": {"embedding": _z(V, C)}, "blk_0": block, "lm_head": head or {"kernel": _z(C, V)}}


@pytest.mark.parametrize(("shape", "fan"), [((C // 8, 8, V), C), ((C, 4, V // 4), 4 * C), ((3, 3, C, V), 9 * C)])
def test_a_readout_of_three_or_more_axes_sums_over_every_axis_but_its_last(shape, fan):
    spec = _spec()
    stds, _ = _caught(abcoptax.init_std_tree, spec, _lm({"fc": {"kernel": _z(C, C)}}, {"kernel": _z(*shape)}))
    assert stds["lm_head"]["kernel"] == pytest.approx(spec.init_std(Role.readout, fan / C))
    assert export.readout_fan(shape, shape, 1, "", "jax") == fan


def test_a_convlocal_readout_sums_over_its_own_matrix_not_its_positions():
    spec = _spec()
    tree = _lm({"fc": {"kernel": _z(C, C)}}, {"kernel": _z(4, 4, 9 * C, V)})
    tree["lm_head"] = {}
    tree["ConvLocal_0"] = {"kernel": _z(4, 4, 9 * C, V)}
    stds, _ = _caught(abcoptax.init_std_tree, spec, tree, rules=[GroupRule(pattern="ConvLocal_0", role="readout")])
    assert stds["ConvLocal_0"]["kernel"] == pytest.approx(spec.init_std(Role.readout, 9.0))  # 144 x C before


def test_a_conv_named_kernel_of_five_axes_without_a_bias_is_said():
    spec = _spec()
    params = _lm({"Conv_0": {"kernel": _z(4, 3, 3, C, C)}})
    stds, said = _caught(abcoptax.init_std_tree, spec, params)
    assert stds["blk_0"]["Conv_0"]["kernel"] == pytest.approx(spec.init_std(Role.hidden, 36.0))  # read as before
    (note,) = [m for m in said if "blk_0/Conv_0/kernel" in m]
    assert "one convolution's kernel of 3 kernel axes" in note and "fan_in={'blk_0/Conv_0/kernel': 576}" in note
    given, said = _caught(abcoptax.init_std_tree, spec, params, fan_in={"blk_0/Conv_0/kernel": 9 * C})
    assert given["blk_0"]["Conv_0"]["kernel"] == pytest.approx(spec.init_std(Role.hidden, 9.0))
    assert not [m for m in said if "Conv_0" in m]
    # a bias says the stack: no note
    _, said = _caught(abcoptax.init_std_tree, spec, _lm({"Conv_0": {"kernel": _z(4, 3, 3, C, C), "bias": _z(4, C)}}))
    assert not [m for m in said if "Conv_0" in m]


def test_muon_reads_a_stack_of_convs_given_its_fan_in_one_matrix_a_layer():
    import numpy as np

    spec = _spec("muon")
    params = _lm({"Conv_0": {"kernel": _z(4, 3, 3, C, C)}})
    tx, _ = _caught(abcoptax.transform, spec, params, fan_in={"blk_0/Conv_0/kernel": 9 * C})
    g = jax.random.normal(jax.random.key(0), (3, 3, C, C))
    grads = jax.tree.map(jnp.zeros_like, params)
    grads["blk_0"]["Conv_0"]["kernel"] = jnp.broadcast_to(g, (4, 3, 3, C, C))
    updates, _ = tx.update(grads, tx.init(params), params)
    layers = np.asarray(updates["blk_0"]["Conv_0"]["kernel"]).reshape(4, 9 * C, C)
    np.testing.assert_allclose(layers[1:], np.broadcast_to(layers[0], (3, 9 * C, C)), rtol=1e-4, atol=1e-7)
    s = np.linalg.svd(layers[0] / spec[Role.hidden].lr, compute_uv=False)
    assert s.max() < 1.3 and s.min() > 0.5  # each layer's [taps x C, C] matrix orthogonalised alone
