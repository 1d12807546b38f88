"""Session 67: a JAX team's review of `sweep --model` against abcscale.optax. A flax conv kernel [k, C, C] was drawn
at C^-1/2 by the sweep and (k C)^-1/2 by the export; flax's per-head attention biases [heads, head_dim] were refused
with the readout's role advised (following it trained them as readouts); an NNX model's pure dict (an nnx.List's
int keys) was refused."""

from __future__ import annotations

import pytest

pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402

import abcscale  # noqa: E402
from abcscale import optax as abcoptax  # noqa: E402
from abcscale.runner import sweep as sw  # noqa: E402
from abcscale.runner import user  # noqa: E402
from abcscale.runner.nn import ModelConfig  # noqa: E402
from abcscale.runner.spec import SweepSpec  # noqa: E402
from abcscale.schemas.groups import SPEC_ROLES  # noqa: E402

V, BASE, WIDTH = 256, 16, 32

#: a causal conv LM as flax.linen lays it out: Conv_0 (flax's name) and conv_a (a name of one's own) [3, C, C]
CONV = '''
import jax
import jax.numpy as jnp

def make(width, depth, *, vocab, seq_len):
    D = width
    shapes = {"params": {"wte": {"embedding": (vocab, D)},
                         "Conv_0": {"kernel": (3, D, D), "bias": (D,)},
                         "conv_a": {"kernel": (3, D, D), "bias": (D,)},
                         "lm_head": {"kernel": (D, vocab), "bias": (vocab,)}}}
    def conv(x, k, b):
        xp = jnp.pad(x, ((0, 0), (2, 0), (0, 0)))
        return sum(xp[:, i:i + x.shape[1]] @ k[i] for i in range(3)) + b
    def apply(p, tok, record):
        p = p["params"]
        x = p["wte"]["embedding"][tok]
        x = x + jax.nn.gelu(conv(x, p["Conv_0"]["kernel"], p["Conv_0"]["bias"]))
        x = x + jax.nn.gelu(conv(x, p["conv_a"]["kernel"], p["conv_a"]["bias"]))
        return x @ p["lm_head"]["kernel"] + p["lm_head"]["bias"]
    return {"shapes": shapes, "apply": apply}
'''

#: flax's MultiHeadDotProductAttention's layout: q/k/v [D, heads, 8] with per-head biases [heads, 8] (%s: a stack
#: over the depth, nn.scan's, where "stacked")
MHA = '''
import jax
import jax.numpy as jnp

HD = 8

def make(width, depth, *, vocab, seq_len):
    D, H = width, width // HD
    attn = {n: {"kernel": (D, H, HD), "bias": (H, HD)} for n in ("query", "key", "value")}
    attn["out"] = {"kernel": (H, HD, D), "bias": (D,)}
    shapes = {"params": {"wte": {"embedding": (vocab, D)}, "attn": attn, "lm_head": {"kernel": (D, vocab)}}}
    def apply(p, tok, record):
        p = p["params"]
        x = p["wte"]["embedding"][tok]
        a = p["attn"]
        q, k, v = (jnp.einsum("btd,dhe->bthe", x, a[n]["kernel"]) + a[n]["bias"] for n in ("query", "key", "value"))
        w = jax.nn.softmax(jnp.einsum("bthe,bshe->bhts", q, k) / HD ** 0.5, axis=-1)
        o = jnp.einsum("bhts,bshe->bthe", w, v)
        x = x + jnp.einsum("bthe,hed->btd", o, a["out"]["kernel"]) + a["out"]["bias"]
        return x @ p["lm_head"]["kernel"]
    fan_in = {f"params/attn/{n}/kernel": 0 for n in ("query", "key", "value")} | {"params/attn/out/kernel": [0, 1]}
    return {"shapes": shapes, "apply": apply, "fan_in": fan_in%s}
'''

#: flax NNX's nnx.to_pure_dict of a model with an nnx.List of blocks: int keys
NNX = '''
import jax

def make(width, depth, *, vocab, seq_len):
    D = width
    blocks = {i: {"up": {"kernel": (D, 4 * D), "bias": (4 * D,)}, "down": {"kernel": (4 * D, D), "bias": (D,)}}
              for i in range(depth)}
    shapes = {"tok": {"embedding": (vocab, D)}, "blocks": blocks, "lm_head": {"kernel": (D, vocab)}}
    def apply(p, tok, record):
        x = p["tok"]["embedding"][tok]
        for i in range(depth):
            b = p["blocks"][i]  # its own int key
            x = x + jax.nn.gelu(x @ b["up"]["kernel"] + b["up"]["bias"]) @ b["down"]["kernel"] + b["down"]["bias"]
        return x @ p["lm_head"]["kernel"]
    return {"shapes": shapes, "apply": apply}
'''


def _ref(tmp_path, source, name="m.py"):
    (tmp_path / name).write_text(source)
    return f"{tmp_path / name}:make"


def _runner_vs_export(ref):
    spec = SweepSpec(model=ref, widths=[BASE, WIDTH], depth=1, log2_lr="-6:-6:1", steps=2, batch=2, seq_len=8,
                     data="synthetic", eval_batches=1, parameterizations=["mup"], optimizers=["adam"])
    user.check(ref, [BASE, WIDTH], 1, 8)
    out = {}
    for cell in (c for c in spec.cells() if c.width in (BASE, WIDTH)):
        hyper = sw.layer_hyper(spec, cell)
        cfg = ModelConfig("user", cell.width, 1, 8, factory=ref, fan_in_exponent=hyper.fan_in_exponent,
                          readout_fan_in_exponent=hyper.readout_fan_in_exponent)
        layout = user.param_specs(cfg)
        groups = abcscale.recommend("mup", "adam", width=cell.width, base_width=BASE, beta=2.0**-6,
                                    form="multiplier_free").groups
        model = user.build(ref, cell.width, 1, V, 8)
        stds = abcoptax.init_std_tree(groups, model.tree({k: jnp.zeros(s) for k, s in model.shapes.items()}))
        for name, p in layout.items():
            node = stds
            for key in model.paths[name]:
                node = node[key]
            drawn = None if p.init != "normal" else hyper.init_std[p.layer] * p.std_const
            out[(cell.width, name)] = (drawn, node, SPEC_ROLES[p.layer], p.init)
    return out


def test_a_conv_kernel_starts_in_the_sweep_as_the_export_draws_it(tmp_path):
    got = _runner_vs_export(_ref(tmp_path, CONV))
    for (width, name), (drawn, exported, _, _) in got.items():
        if exported is not None:
            assert drawn == pytest.approx(exported, rel=1e-9), (width, name)
    # (3 C)^-1/2 under muP's hidden std at C: the taps are in the fan-in
    assert got[(WIDTH, "params/Conv_0/kernel")][0] == pytest.approx((3 * WIDTH) ** -0.5, rel=1e-9)
    assert got[(WIDTH, "params/conv_a/kernel")][0] == pytest.approx((3 * WIDTH) ** -0.5, rel=1e-9)


def test_flax_attentions_per_head_biases_are_vector_like_zeros(tmp_path):
    got = _runner_vs_export(_ref(tmp_path, MHA % ""))  # refused before ("give it a role, e.g. 'readout'")
    for width in (BASE, WIDTH):
        for n in ("query", "key", "value"):
            _, exported, role, init = got[(width, f"params/attn/{n}/bias")]
            assert (role, init, exported) == ("vector", "zeros", None)


def test_a_per_head_bias_given_the_vector_role_starts_at_zeros(tmp_path):
    roles = ', "roles": {f"params/attn/{n}/bias": "vector" for n in ("query", "key", "value")}'
    got = _runner_vs_export(_ref(tmp_path, MHA % roles))  # "init: ... give it init 'ones'/'zeros'" before
    assert got[(WIDTH, "params/attn/key/bias")][2:] == ("vector", "zeros")


def test_a_per_head_bias_named_so_is_never_advised_a_matrix_role(tmp_path):
    # a bias whose shape the exemption does not take (its heads as many as the width) is advised the vector role
    source = MHA.replace("(H, HD)}", "(D, HD)}") % ""
    with pytest.raises(ValueError, match=r"'params/attn/query/bias': 'vector'") as info:
        user.check(_ref(tmp_path, source), [BASE, WIDTH], 1, 8)
    assert "readout" not in str(info.value) and "embedding" not in str(info.value)


def test_an_nnx_pure_dicts_int_keys_are_taken(tmp_path):
    ref = _ref(tmp_path, NNX)
    user.check(ref, [BASE, WIDTH], 2, 8)  # "nested key 0 under blocks must be a str" before
    model = user.build(ref, WIDTH, 2, V, 8)
    assert "blocks/1/up/kernel" in model.shapes
    tree = model.tree({k: jnp.zeros(s) for k, s in model.shapes.items()})
    assert set(tree["blocks"]) == {0, 1}  # apply gets its own keys back
    spec = abcscale.recommend("mup", "adam", width=WIDTH, base_width=BASE, beta=1.0, form="multiplier_free").groups
    labels = abcoptax.labels(spec, tree)
    laid = user.layout(model, WIDTH, grown=user.grown_model(ref, WIDTH, 2, V, 8))
    for name, p in laid.items():
        node = labels
        for key in model.paths[name]:
            node = node[key]
        assert node == SPEC_ROLES[p.layer], name
