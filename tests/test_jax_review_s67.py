"""A session-67 review of abcscale.optax on flax-like trees (built here without flax):

- a conv kernel was read as a dense stack unless its module's name looked like a conv (`conv_a`, `proj`, an NNX
  `nnx.List`'s `layers/0`: an init std 3x too large for a 3x3 kernel, Muon orthogonalising each tap), and an
  `nn.scan` stack of convs folded its depth into the fan-in, all unsaid;
- `transform`'s labels were a tree of the boxed state it was built from, so `nnx.Optimizer.update` (flax 0.12, which
  hands `tx.update` the bare arrays) failed with a pytree structure error;
- a flax attention with one head of the width (head_dim = D) was refused;
- ConvNeXt's depthwise `dwconv` [7, 7, 1, C] was refused with the embedding's role offered;
- a model without an embedding whose input layer has a hidden matrix's shape trained it as hidden, unsaid.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import abcscale
from abcscale.schemas.groups import Role

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
abcoptax = pytest.importorskip("abcscale.optax")

C, V = 64, 256


def _spec(optimizer: str = "adam", width: int = C, base: int = 64):
    return abcscale.recommend("mup", optimizer, width=width, base_width=base, beta=1e-2,
                              form="multiplier_free").groups


def _z(*shape: int):
    return jnp.zeros(shape, jnp.float32)


def _caught(fn, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    return out, [str(w.message) for w in caught]


def _lm(block: dict) -> dict:
    return {"wte": {"embedding": _z(V, C)}, "blk_0": block, "lm_head": {"kernel": _z(C, V)}}


# --- 1. a conv kernel by its bias, whatever its module's name; an nn.scan stack of convs per layer


@pytest.mark.parametrize("module", ["Conv_0", "conv_a", "proj"])
def test_a_conv_kernel_with_a_bias_takes_its_taps_into_the_fan_in(module):
    spec = _spec()
    params = _lm({module: {"kernel": _z(3, 3, C, C), "bias": _z(C)}})
    stds, said = _caught(abcoptax.init_std_tree, spec, params)
    assert stds["blk_0"][module]["kernel"] == pytest.approx(spec.init_std(Role.hidden, 9.0))
    assert not [m for m in said if module in m]


def test_an_nnx_list_of_convs_takes_its_taps_into_the_fan_in():
    spec = _spec()
    params = {"stem": {"kernel": _z(3, 3, 3, C), "bias": _z(C)},
              "layers": [{"kernel": _z(3, 3, C, C), "bias": _z(C)} for _ in range(2)],
              "head": {"kernel": _z(C, 10), "bias": _z(10)}}
    stds, _ = _caught(abcoptax.init_std_tree, spec, params, rules=[("stem", "embedding")])
    assert [layer["kernel"] for layer in stds["layers"]] == pytest.approx([spec.init_std(Role.hidden, 9.0)] * 2)


@pytest.mark.parametrize("depth", [4, 16])
def test_a_scan_stack_of_convs_keeps_its_depth_out_of_the_fan_in(depth):
    spec = _spec()
    params = _lm({"layers": {"Conv_0": {"kernel": _z(depth, 3, 3, C, C), "bias": _z(depth, C)}}})
    stds, _ = _caught(abcoptax.init_std_tree, spec, params)
    assert stds["blk_0"]["layers"]["Conv_0"]["kernel"] == pytest.approx(spec.init_std(Role.hidden, 9.0))


def _muon_step(params, path):
    spec = _spec("muon")
    tx, _ = _caught(abcoptax.transform, spec, params)
    g = jax.random.normal(jax.random.key(0), (3, 3, C, C))
    grads = jax.tree.map(jnp.zeros_like, params)
    node = grads
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = jnp.broadcast_to(g, node[path[-1]].shape)
    updates, _ = tx.update(grads, tx.init(params), params)
    for key in path:
        updates = updates[key]
    return np.asarray(updates).reshape(-1, 9 * C, C)[0]


def test_muon_orthogonalises_a_conv_kernel_as_one_matrix_whatever_its_name_or_stack():
    named = _muon_step(_lm({"Conv_0": {"kernel": _z(3, 3, C, C), "bias": _z(C)}}), ["blk_0", "Conv_0", "kernel"])
    other = _muon_step(_lm({"conv_a": {"kernel": _z(3, 3, C, C), "bias": _z(C)}}), ["blk_0", "conv_a", "kernel"])
    stacked = _muon_step(_lm({"layers": {"Conv_0": {"kernel": _z(4, 3, 3, C, C), "bias": _z(4, C)}}}),
                         ["blk_0", "layers", "Conv_0", "kernel"])
    np.testing.assert_allclose(other, named, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(stacked, named, rtol=1e-4, atol=1e-7)


def test_a_four_axis_kernel_no_name_or_bias_reads_as_a_conv_is_warned_with_its_fan_in():
    spec = _spec()
    params = _lm({"conv_a": {"kernel": _z(3, 3, C, C)}})
    stds, said = _caught(abcoptax.init_std_tree, spec, params)
    assert stds["blk_0"]["conv_a"]["kernel"] == pytest.approx(spec.init_std(Role.hidden, 1.0))  # read as before
    (note,) = [m for m in said if "blk_0/conv_a/kernel" in m]
    assert "fan_in={'blk_0/conv_a/kernel': 576" in note
    given, said = _caught(abcoptax.init_std_tree, spec, params, fan_in={"blk_0/conv_a/kernel": 9 * C})
    assert given["blk_0"]["conv_a"]["kernel"] == pytest.approx(spec.init_std(Role.hidden, 9.0))
    assert not [m for m in said if "conv_a" in m]


def test_a_dense_stack_with_its_biases_is_no_conv():
    # an experts stack [E, D, F] with its biases [E, F]: stack axes, nothing contracted but D
    spec = _spec()
    params = _lm({"experts": {"kernel": _z(4, C, 4 * C), "bias": _z(4, 4 * C)},
                  "experts_out": {"kernel": _z(4, 4 * C, C), "bias": _z(4, C)}})
    stds, said = _caught(abcoptax.init_std_tree, spec, params)
    assert stds["blk_0"]["experts"]["kernel"] == pytest.approx(spec.init_std(Role.hidden, 1.0))
    assert stds["blk_0"]["experts_out"]["kernel"] == pytest.approx(spec.init_std(Role.hidden, 4.0))


# --- 3. the transform on the boxed state and on the bare arrays nnx.Optimizer.update hands it


class Box:
    """flax NNX's Param as optax sees it: a pytree node holding its array under `.value`."""

    def __init__(self, value):
        self.value = value


jax.tree_util.register_pytree_with_keys(
    Box, lambda b: (((jax.tree_util.GetAttrKey("value"), b.value),), None), lambda _, ch: Box(ch[0]))


def _mlp(box=lambda x: x):
    return {"tok": {"embedding": box(jnp.ones((V, C)))},
            "up": {"kernel": box(jnp.ones((C, 4 * C))), "bias": box(jnp.zeros(4 * C))},
            "down": {"kernel": box(jnp.ones((4 * C, C))), "bias": box(jnp.zeros(C))},
            "lm_head": {"kernel": box(jnp.ones((C, V)))}}


def test_a_transform_built_on_the_boxed_state_updates_the_bare_arrays():
    spec = _spec()
    tx = abcoptax.transform(spec, _mlp(Box))
    pure = _mlp()
    grads = jax.tree.map(lambda x: jnp.full_like(x, 0.5), pure)
    updates, _ = tx.update(grads, tx.init(pure), pure)  # a pytree structure error before
    lrs = abcoptax.lr_tree(spec, pure)
    # Adam's first step moves every entry by its role's LR
    for path in (("up", "kernel"), ("up", "bias"), ("tok", "embedding"), ("lm_head", "kernel")):
        u, lr = updates, lrs
        for key in path:
            u, lr = u[key], lr[key]
        assert float(jnp.abs(u).max()) == pytest.approx(lr, rel=1e-3)
    # and still on the boxed tree, alike
    boxed = _mlp(Box)
    boxed_updates, _ = tx.update(jax.tree.map(lambda x: jnp.full_like(x, 0.5), boxed), tx.init(boxed), boxed)
    np.testing.assert_allclose(boxed_updates["up"]["kernel"].value, updates["up"]["kernel"])


def test_a_transform_given_another_tree_says_so():
    tx = abcoptax.transform(_spec(), _mlp())
    other = _mlp() | {"extra": {"kernel": jnp.ones((C, C))}}
    with pytest.raises(ValueError, match="'extra/kernel' is no leaf of the tree the transform was built for"):
        tx.init(other)


# --- 5. a flax attention with one head of the width


def test_an_attention_of_one_head_of_the_width_is_read():
    spec = _spec(width=C, base=32)
    attn = {"query": {"kernel": _z(C, 1, C)}, "key": {"kernel": _z(C, 1, C)}, "value": {"kernel": _z(C, 1, C)},
            "out": {"kernel": _z(1, C, C)}}
    stds, _ = _caught(abcoptax.init_std_tree, spec, {"params": {**_lm({}), "attn": attn}})  # refused before
    hidden = spec.init_std(Role.hidden, 1.0)
    assert [stds["params"]["attn"][k]["kernel"] for k in ("query", "key", "value", "out")] == \
        pytest.approx([hidden] * 4)
    # a stack of the model's own matrices named so, [depth, D, D], is still a stack
    stack = {"query": {"kernel": _z(4, C, C)}, "out": {"kernel": _z(4, C, C)}}
    labels, _ = _caught(abcoptax.labels, spec, {"params": {**_lm({}), "attn": stack}})
    assert labels["params"]["attn"]["query"]["kernel"] == "hidden"


# --- 6b. ConvNeXt's depthwise conv


@pytest.mark.parametrize("bias", [True, False])
def test_a_depthwise_conv_named_otherwise_is_vector_like(bias):
    spec = _spec(width=256)
    block = {"dwconv": {"kernel": _z(7, 7, 1, 256)} | ({"bias": _z(256)} if bias else {}),
             "pwconv1": {"kernel": _z(256, 1024)}, "pwconv2": {"kernel": _z(1024, 256)}}
    params = {"params": {"stem": {"kernel": _z(4, 4, 3, 256), "bias": _z(256)}, "Block_0": block,
                         "head": {"kernel": _z(256, 10)}}}
    labels, _ = _caught(abcoptax.labels, spec, params, rules=[("stem", "embedding")])  # refused before
    assert labels["params"]["Block_0"]["dwconv"]["kernel"] == "vector"


# --- 8. no embedding: an input layer with a hidden matrix's shape


def test_an_input_layer_read_as_hidden_is_warned_where_the_model_has_no_embedding():
    spec = _spec(width=256)
    params = {"input_proj": {"kernel": _z(512, 256)},
              "blocks_0": {"fc1": {"kernel": _z(256, 512)}, "fc2": {"kernel": _z(512, 256)}},
              "head": {"kernel": _z(256, 10)}}
    _, said = _caught(abcoptax.labels, spec, params)
    (note,) = [m for m in said if "no embedding or input layer" in m]
    assert "'input_proj/kernel'" in note and r"(r'^input_proj\.kernel$', 'embedding')" in note
    _, said = _caught(abcoptax.labels, spec, params, rules=[("input_proj", "embedding")])
    assert not [m for m in said if "no embedding or input layer" in m]


def test_an_equinox_norm_over_the_readouts_fan_in_is_vector_and_its_bias_fixed():
    """settle_fixed read the readout's fan-out in the JAX layout: an equinox model's (layout="torch") norm over a
    wider readout's fan-in was 'fixed' (the PyTorch export's session-67 bug, its JAX-side twin)."""
    import numpy as np

    import abcscale
    import abcscale.optax as abcoptax

    spec = abcscale.recommend("mup", "sgd", width=256, base_width=64, beta=0.1, form="multiplier_free").groups
    z = lambda *s: np.zeros(s, np.float32)  # noqa: E731
    tree = {"embed": {"weight": z(100, 256)}, "up": {"weight": z(512, 256)}, "final_norm": {"weight": z(512)},
            "head": {"weight": z(10, 512), "bias": z(10)}}
    labels = abcoptax.labels(spec, tree, layout="torch")
    assert labels["final_norm"]["weight"] == "vector" and labels["head"]["bias"] == "fixed", labels
