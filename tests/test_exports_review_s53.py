"""A review of the optax export on flax NNX trees and modern LLM layers (session 53).

Before: the tree flax NNX hands optax (``nnx.state(model, nnx.Param)``: every array inside a ``Variable`` box that
flattens to its ``.value``, so each leaf's path ends in ``value``) had every matrix named hidden by the hidden rule's
``value`` (attention's value projection): the embedding's LR 32x too small and the readout's 8x too large under muP
+ Adam, unsaid; NNX-style conv names (``conv1``) were read as dense ([k, k, in, out] with the kernel left out of the
fan-in, an init 3x too large); Gemma's attention einsums were refused as "16 wide" (head_dim); a stack of experts or
an ``nn.scan`` stack whose fan-in is Llama's 2.75 D was refused as spanning several axes; an MoE router's refusal
said only "recommend at width=8"; an unfiltered NNX state's integer RNG leaves were given roles and LRs.
"""

from __future__ import annotations

import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import abcscale
from abcscale import optax as abcoptax
from abcscale.runner import export

D, V = 256, 512


class Box:
    """A stand-in for flax NNX's ``Variable`` (and linen's ``nn.Partitioned``): a pytree node holding one array under
    the attribute ``value``, flattened with ``GetAttrKey('value')`` as flax registers it."""

    def __init__(self, value):
        self.value = value


jax.tree_util.register_pytree_with_keys(
    Box, lambda b: (((jax.tree_util.GetAttrKey("value"), b.value),), None), lambda _, ch: Box(ch[0]),
    lambda b: ((b.value,), None))


@pytest.fixture(scope="module")
def spec():
    return abcscale.recommend("mup", "adam", width=D, base_width=64, beta=1e-3, form="multiplier_free").groups


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _llama(box=lambda a: a):
    z = lambda *s: box(jnp.zeros(s))  # noqa: E731
    layer = {"attn_norm": {"scale": z(D)}, "attn": {"q_proj": {"kernel": z(D, D)}, "k_proj": {"kernel": z(D, D // 4)},
                                                   "v_proj": {"kernel": z(D, D // 4)}, "o_proj": {"kernel": z(D, D)}},
             "mlp": {"gate_proj": {"kernel": z(D, 704)}, "up_proj": {"kernel": z(D, 704)},
                     "down_proj": {"kernel": z(704, D)}}}
    return {"embed": {"embedding": z(V, D)}, "layers": {0: layer, 1: layer}, "norm": {"scale": z(D)},
            "lm_head": {"kernel": z(D, V), "bias": z(V)}}


def _by_name(tree) -> dict:
    flat = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: isinstance(x, (str, float)) or x is None)[0]
    return dict(zip(export._leaf_names([path for path, _ in flat]), [v for _, v in flat], strict=True))


def test_an_nnx_state_reads_as_its_pure_dict(spec):
    pure, boxed = _llama(), _llama(Box)
    for fn in (abcoptax.labels, abcoptax.lr_tree, abcoptax.init_std_tree, abcoptax.multiplier_tree):
        assert _by_name(_quiet(fn, spec, boxed)) == _by_name(_quiet(fn, spec, pure)), fn.__name__
    labels = _by_name(_quiet(abcoptax.labels, spec, boxed))
    assert labels["embed/embedding"] == "embedding" and labels["lm_head/kernel"] == "readout"
    assert labels["lm_head/bias"] == "fixed" and labels["norm/scale"] == "vector"
    assert labels["layers/0/mlp/down_proj/kernel"] == "hidden"
    # the optimizer runs on the boxed tree itself (nnx.Optimizer calls tx.init on the State), its first Adam step
    # the embedding's LR there, as on the pure dict
    params = _quiet(abcoptax.init, spec, boxed, jax.random.key(0))
    assert isinstance(params["embed"]["embedding"], Box)
    assert abs(float(jnp.std(params["embed"]["embedding"].value)) - 1.0) < 0.05
    tx = _quiet(abcoptax.transform, spec, boxed)
    grads = jax.tree.map(jnp.ones_like, params)
    step, _ = tx.update(grads, tx.init(params), params)
    assert np.allclose(step["embed"]["embedding"].value, -spec["embedding"].lr, rtol=1e-4)
    assert np.allclose(step["lm_head"]["kernel"].value, -spec["readout"].lr, rtol=1e-4)


def test_muon_reads_an_nnx_state_s_leaves_by_their_names(spec):
    muon = abcscale.recommend("mup", "muon", width=D, base_width=64, beta=1e-3, form="multiplier_free").groups
    attn = {"query": {"kernel": Box(jnp.zeros((D, 4, 64)))}}
    (name,) = export._leaf_names([path for path, _ in jax.tree_util.tree_flatten_with_path(attn)[0]])
    assert name == "query/kernel"
    _quiet(abcoptax.transform, muon, _llama(Box)).init(_llama(Box))  # runs on the boxed tree


def test_nnx_style_conv_names_take_the_kernel_into_the_fan_in(spec):
    conv = {"conv1": {"kernel": jnp.zeros((3, 3, D, D))}, "Conv_1": {"kernel": jnp.zeros((3, 3, D, D))},
            "conv_2": {"kernel": jnp.zeros((3, 3, D, D))}}
    stds = _quiet(abcoptax.init_std_tree, spec, conv)
    assert stds["conv1"]["kernel"] == pytest.approx(stds["Conv_1"]["kernel"]) == pytest.approx(
        stds["conv_2"]["kernel"]) == pytest.approx((9 * D) ** -0.5)


def test_gemma_s_attention_einsums_are_read_as_their_matrices(spec):
    h, dh = 4, 64
    tree = {"embedder": {"input_embedding": jnp.zeros((V, D))},
            "attn": {"q_einsum": {"w": jnp.zeros((h, D, dh))}, "kv_einsum": {"w": jnp.zeros((2, 1, D, dh))},
                     "attn_vec_einsum": {"w": jnp.zeros((h, dh, D))}},
            "mlp": {"gating_einsum": jnp.zeros((2, D, 4 * D)), "linear": jnp.zeros((4 * D, D))}}
    labels = _quiet(abcoptax.labels, spec, tree)
    assert labels["embedder"]["input_embedding"] == "embedding"  # Gemma's tied table
    assert {labels["attn"][k]["w"] for k in ("q_einsum", "kv_einsum", "attn_vec_einsum")} == {"hidden"}
    stds = _quiet(abcoptax.init_std_tree, spec, tree)
    assert stds["attn"]["q_einsum"]["w"] == pytest.approx(D ** -0.5)  # fan-in D
    assert stds["attn"]["attn_vec_einsum"]["w"] == pytest.approx((h * dh) ** -0.5)  # fan-in heads x head_dim
    assert stds["mlp"]["linear"] == pytest.approx((4 * D) ** -0.5)
    dims = export._muon_dims("attn/kv_einsum/w", (2, 1, D, dh), "jax", D)  # k and v each alone (axis 0 a batch)
    assert dims.reduction_axis == 2 and dims.output_axis == (1, 3)
    # Gemma 3 transposes its gating einsum: (2, F, D), the fan-in D last
    gating = {"mlp": {"gating_einsum": jnp.zeros((2, 4 * D, D))}}
    assert _quiet(abcoptax.init_std_tree, spec, tree | gating)["mlp"]["gating_einsum"] == pytest.approx(D ** -0.5)
    dims = export._muon_dims("mlp/gating_einsum", (2, 4 * D, D), "jax", D)
    assert dims.reduction_axis == 2 and dims.output_axis == 1
    dims = export._muon_dims("attn/attn_vec_einsum/w", (h, dh, D), "jax", D)
    assert dims.reduction_axis == (0, 1) and dims.output_axis == 2


def test_a_stack_whose_fan_in_is_an_mlp_s_width_is_taken(spec):
    f = 704  # Llama's 2.75 D
    tree = {"embed": {"embedding": jnp.zeros((V, D))}, "lm_head": {"kernel": jnp.zeros((D, V))},
            "experts": {"up_proj": jnp.zeros((8, D, f)), "down_proj": jnp.zeros((8, f, D))},
            "scan": {"mlp": {"down_proj": {"kernel": jnp.zeros((2, f, D))}}}}
    stds = _quiet(abcoptax.init_std_tree, spec, tree)
    assert stds["experts"]["down_proj"] == pytest.approx(f ** -0.5)
    assert stds["scan"]["mlp"]["down_proj"]["kernel"] == pytest.approx(f ** -0.5)
    assert stds["experts"]["up_proj"] == pytest.approx(D ** -0.5)
    # a heads axis under the width is still refused as spanning several axes
    with pytest.raises(ValueError, match="fan-in is another axis or spans several axes"):
        _quiet(abcoptax.labels, spec, {"attn": {"proj": jnp.zeros((4, 64, D))}}, rules=[("proj", "hidden")])


def test_a_router_s_refusal_names_the_readout_role(spec):
    for width in (64, D):
        s = abcscale.recommend("mup", "adam", width=width, base_width=64, beta=1e-3, form="multiplier_free").groups
        tree = {"embed": {"embedding": jnp.zeros((V, width))}, "lm_head": {"kernel": jnp.zeros((width, V))},
                "moe": {"router": {"kernel": jnp.zeros((width, 8))}}}
        rule = r"^moe\.router\.kernel$"
        with pytest.raises(ValueError, match="MoE router's experts.*" + re.escape(f"(r'{rule}', 'readout')")):
            _quiet(abcoptax.labels, s, tree)
        labels = _quiet(abcoptax.labels, s, tree, rules=[(rule, "readout")])  # the suggestion, followed
        assert labels["moe"]["router"]["kernel"] == "readout"


def test_integer_leaves_are_refused_by_name(spec):
    tree = _llama() | {"rngs": {"default": {"count": jnp.zeros((), jnp.uint32)}}}
    with pytest.raises(ValueError, match=r"'rngs/default/count' is an array of uint32.*nnx.state\(model, nnx.Param\)"):
        _quiet(abcoptax.labels, spec, tree)


@pytest.mark.parametrize("name", ["position_embedding", "positional_embeddings", "pos_embeddings"])
def test_a_position_table_s_names(spec, name):
    tree = {"embed": {"embedding": jnp.zeros((V, D))}, name: jnp.zeros((1024, D)), "lm_head": {"kernel":
            jnp.zeros((D, V))}, "mlp": {"up_proj": {"kernel": jnp.zeros((D, 4 * D))}}}
    assert _quiet(abcoptax.labels, spec, tree)[name] == "embedding"  # [1024, D] read as hidden [4D, D] before


def test_a_router_trained_as_hidden_by_its_shape_is_said_in_a_jax_tree(spec):
    tree = {"embed": {"embedding": jnp.zeros((V, D))}, "lm_head": {"kernel": jnp.zeros((D, V))},
            "layers": {0: {"mlp": {"gate": {"kernel": jnp.zeros((D, D))},  # as many experts as the width
                                   "experts": {"up_proj": jnp.zeros((D, D, 4 * D))}}}}}
    rule = r"^layers\.\d+\.mlp\.gate\.kernel$"
    with pytest.warns(UserWarning, match="layers/0/mlp/gate/kernel: named like an MoE router.*"
                      + re.escape(f"(r'{rule}', 'readout')")):
        abcoptax.labels(spec, tree)
    two = tree | {"layers": {0: tree["layers"][0], 1: tree["layers"][0]}}
    labels = _quiet(abcoptax.labels, spec, two, rules=[(rule, "readout")])  # the suggestion names both blocks' alone
    assert labels["layers"][0]["mlp"]["gate"]["kernel"] == labels["layers"][1]["mlp"]["gate"]["kernel"] == "readout"
    assert labels["layers"][1]["mlp"]["experts"]["up_proj"] == "hidden"
    # a gated MLP's `gate` [D, F] with no experts beside it is not warned (the code review)
    glu = {"embed": tree["embed"], "lm_head": tree["lm_head"], "mlp": {"gate": {"kernel": jnp.zeros((D, 4 * D))},
                                                                      "down": {"kernel": jnp.zeros((4 * D, D))}}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        abcoptax.labels(spec, glu)


def test_a_bare_top_level_matrix_asks_for_its_role(spec):
    tree = {"embed": {"embedding": jnp.zeros((V, D))}, "lm_head": {"kernel": jnp.zeros((D, V))},
            "pos": jnp.zeros((1024, D)), "mlp": {"up_proj": {"kernel": jnp.zeros((D, 4 * D))}}}
    with pytest.raises(ValueError, match=r"'pos' \[1024, 256\]: a bare matrix no rule names"):
        _quiet(abcoptax.labels, spec, tree)  # [1024, D] read as a hidden [4D, D] before, unsaid
    assert _quiet(abcoptax.labels, spec, tree, rules=[("pos", "embedding")])["pos"] == "embedding"


def test_a_module_s_own_value_field_keeps_its_name(spec):
    """Only a box's only child loses its `value`: an attention module (equinox, a dataclass) whose query, key and
    value arrays are fields keeps `attn/value`, which the hidden rule names (the code review: it became `attn`,
    read by its shape and refused)."""

    class Attn:
        def __init__(self, query, key, value):
            self.query, self.key, self.value = query, key, value

    jax.tree_util.register_pytree_with_keys(
        Attn, lambda a: (((jax.tree_util.GetAttrKey("query"), a.query), (jax.tree_util.GetAttrKey("key"), a.key),
                          (jax.tree_util.GetAttrKey("value"), a.value)), None),
        lambda _, ch: Attn(*ch), lambda a: ((a.query, a.key, a.value), None))
    z = jnp.zeros((D, 64))
    tree = {"embed": {"embedding": jnp.zeros((V, D))}, "lm_head": {"kernel": jnp.zeros((D, V))},
            "attn": Attn(z, z, z)}
    labels = _by_name(_quiet(abcoptax.labels, spec, tree))
    assert labels["attn/value"] == labels["attn/query"] == "hidden"


def test_the_top_level_refusal_spares_a_module_s_own_weight_and_sees_past_params(spec):
    """A lone layer's `kernel`/`weight` (nn.MultiheadAttention's `in_proj_weight`) passed alone is no bare table (it
    was refused: the code review); a linen tree's `params/pos` is top-level (it was not seen, and trained hidden)."""
    assert _quiet(abcoptax.labels, spec, {"kernel": jnp.zeros((D, 4 * D))})["kernel"] == "hidden"
    assert _quiet(abcoptax.labels, spec, {"in_proj_weight": jnp.zeros((3 * D, D))},
                  layout="torch")["in_proj_weight"] == "hidden"
    tree = {"params": {"embed": {"embedding": jnp.zeros((V, D))}, "lm_head": {"kernel": jnp.zeros((D, V))},
                       "pos": jnp.zeros((1024, D)), "mlp": {"up_proj": {"kernel": jnp.zeros((D, 4 * D))}}}}
    with pytest.raises(ValueError, match=r"'params/pos' \[1024, 256\]: a bare matrix.*"
                       + re.escape(r"r'^params\.pos$'")):
        _quiet(abcoptax.labels, spec, tree)


def test_qk_norms_are_fixed_only_where_every_one_is_under_the_width():
    sgd = abcscale.recommend("mup", "sgd", width=D, base_width=64, beta=1e-3, form="multiplier_free").groups
    base = {"embed": {"embedding": jnp.zeros((V, D))}, "lm_head": {"kernel": jnp.zeros((D, V))},
            "attn": {"q_proj": {"kernel": jnp.zeros((D, D))}}}
    gemma = base | {"attn": base["attn"] | {"_query_norm": {"scale": jnp.zeros(16)},
                                            "_key_norm": {"scale": jnp.zeros(16)}}}
    labels = _quiet(abcoptax.labels, sgd, gemma)["attn"]
    assert labels["_query_norm"]["scale"] == labels["_key_norm"]["scale"] == "fixed"
    # OLMo 2 with GQA: the query norm over D, the key norm over the kv heads (which grow with the width): vector
    olmo = base | {"attn": base["attn"] | {"q_norm": {"scale": jnp.zeros(D)}, "k_norm": {"scale": jnp.zeros(D // 4)}}}
    labels = _quiet(abcoptax.labels, sgd, olmo)["attn"]
    assert labels["q_norm"]["scale"] == labels["k_norm"]["scale"] == "vector"


@pytest.mark.parametrize(("name", "same", "other"), [
    ("conv1.weight", [], ["layer1.0.conv1.weight"]),  # torchvision's stem, not every block's conv1
    ("params/Dense_0/kernel", [], ["params/Block_0/Dense_0/kernel"]),  # a linen head, not every block's Dense_0
    ("classifier.6.weight", [], ["features.6.weight"]),  # VGG's
    ("model.layers.0.mlp.gate.weight", ["model.layers.11.mlp.gate.weight", "_orig_mod.model.layers.1.mlp.gate.weight"],
     ["model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.experts.0.gate.weight"]),
    ("params/Block_3/Dense_0/kernel", ["params/Block_0/Dense_0/kernel"], ["params/Block_3/Dense_1/kernel"]),
    ("~/pos", [], ["enc/~/pos"]),
    ("features.0.0.weight", [], ["features.1.0.weight", "features.2.0.weight"]),  # MobileNet's stem, not its blocks'
    ("params/layers_2/mlp/kernel", ["params/layers_0/mlp/kernel"], ["params/layers_2/attn/kernel"]),
])
def test_a_suggested_rule_names_the_parameter_and_its_like_in_other_blocks_alone(name, same, other):
    from abcscale.theory.groups import _pattern, matched_name, rule_for

    pattern = eval(rule_for(name))  # the message's raw string
    hit = [n for n in [name, *same, *other] if re.search(_pattern(pattern), matched_name(n), re.IGNORECASE)]
    assert hit == [name, *same], (pattern, hit)


def test_a_fixed_axis_at_the_fan_in_suggests_the_embedding():
    s = abcscale.recommend("mup", "adam", width=64, base_width=64, beta=1e-3, form="multiplier_free").groups
    stem = {"stem": {"kernel": jnp.zeros((8, 64))}, "lm_head": {"kernel": jnp.zeros((64, V))}}  # 8 inputs -> width
    with pytest.raises(ValueError, match="maps it to the width, an input layer: "
                       + re.escape(r"(r'^stem\.kernel$', 'embedding')")):
        _quiet(abcoptax.labels, s, stem)


def test_tokens_stacked_biases_and_more_names_from_the_third_review():
    s = abcscale.recommend("mup", "adam", width=64, base_width=64, beta=1e-3, form="multiplier_free").groups
    z = lambda *shape: jnp.zeros(shape)  # noqa: E731
    tree = {"embed": {"W_E": z(256, 64)}, "pos_embed": {"W_pos": z(128, 64)}, "unembed": {"W_U": z(64, 256)},
            "gnn": {"w_e": {"kernel": z(64, 128)}}, "final_logits_bias": z(1, 256),
            "mask_token": z(1, 64), "register_tokens": z(1, 4, 64), "memory_tokens": z(4, 64),
            "experts": {"gate_up_proj_bias": z(8, 256), "down_proj_bias": z(8, 64)},
            "attn": {"q_a_proj": {"kernel": z(64, 24)}, "kv_b_proj": {"kernel": z(16, 256)}},
            "lm": {"pos_embs": z(256, 64)}, "mlp": {"up_proj": {"kernel": z(64, 256)}}}
    labels = _by_name(_quiet(abcoptax.labels, s, tree))
    assert labels["embed/W_E"] == labels["pos_embed/W_pos"] == labels["lm/pos_embs"] == "embedding"
    assert labels["unembed/W_U"] == "readout"
    assert {labels[k] for k in ("mask_token", "register_tokens", "memory_tokens")} == {"vector"}  # offered readout
    assert labels["experts/gate_up_proj_bias"] == labels["experts/down_proj_bias"] == "vector"  # refused before
    assert labels["attn/q_a_proj/kernel"] == labels["attn/kv_b_proj/kernel"] == "hidden"  # DeepSeek's MLA
    # the review of these: a GNN's `w_e` is no TransformerLens embedding; BART's logits bias is the readout's, fixed;
    # a table named `tokens` and a square attention bias named `*_bias` are not vector-like
    assert labels["gnn/w_e/kernel"] == "hidden" and labels["final_logits_bias"] == "fixed"
    assert _quiet(abcoptax.labels, s, tree | {"attn_bias": z(64, 64)})["attn_bias"] == "hidden"
    with pytest.raises(ValueError, match="'tokens' \\[512, 64\\]"):
        _quiet(abcoptax.labels, s, tree | {"tokens": z(512, 64)})
