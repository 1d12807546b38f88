"""A session-65 review of abcscale.optax's roles (muP + AdamW, width 512 from base 128, multiplier_free), after the
PyTorch export's own fixes of that session:

- a readout on 2D features (`head/kernel` [1024, 10]) took the init std of a fan-in of D, 2x the torch export's;
- a ViT's classifier `Dense_0` [512, 2048] (classes = its MLP's width) beside the blocks trained as a hidden matrix,
  and the one warning spoke of a tied embedding its conv patches could not be;
- a flax or haiku MLP's first layer on 3072 = 6 x 512 inputs (`Dense_0`, `mlp/~/linear_0`) trained as hidden: a
  module's own auto-index was read as a block's;
- cross-attention onto 768 context features (`k_proj` [768, 512], flax's `key` [768, 8, 64]) trained as hidden of
  fan-in 1.5x, in both exports;
- under Muon an einsum kernel `wq` [D, 4, 64] given its fan-in was orthogonalised as D separate [4, 64] matrices;
- ViT-Ti's patch projection `patch_embed/proj` [768, 192] (768 = 4D, the MLP's width) trained as hidden.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import abcscale
from abcscale import torch as abctorch
from abcscale.schemas.groups import Role
from abcscale.theory.groups import DEFAULT_RULES, assign, check_width

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
abcoptax = pytest.importorskip("abcscale.optax")
export = pytest.importorskip("abcscale.runner.export")

D, BASE, H, HD, CONTEXT = 512, 128, 8, 64, 768


def _spec(optimizer: str = "adamw", width: int = D):
    return abcscale.recommend("mup", optimizer, width=width, base_width=BASE, beta=3e-3, weight_decay=0.1,
                              form="multiplier_free").groups


def _z(*shape: int):
    return jnp.zeros(shape, jnp.float32)


def _flat(tree) -> dict:
    with_path, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: x is None)
    return dict(zip(export._leaf_names([p for p, _ in with_path]), [x for _, x in with_path], strict=True))


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    return out, [str(w.message) for w in caught]


# --- 1. a readout's init std takes its fan-in ratio, as abcscale.torch's _place gives it


def test_a_readout_on_2d_features_takes_the_std_of_its_fan_in():
    spec = _spec()
    tree = {"tok": {"embedding": _z(1000, D)},
            "blocks_0": {"mlp": {"fc1": {"kernel": _z(D, 4 * D)}, "fc2": {"kernel": _z(4 * D, D)}}},
            "head": {"kernel": _z(2 * D, 10), "bias": _z(10)}}
    std = _flat(abcoptax.init_std_tree(spec, tree))["head/kernel"]
    assert std == pytest.approx(spec.init_std("readout", 2.0))  # 0.0009766, the torch export's; 0.001953 before
    assert std == pytest.approx(spec.init_std("readout", 1.0) / 2)  # muP: 1/r x the readout's
    assert _flat(abcoptax.labels(spec, tree))["head/kernel"] == "readout"
    drawn = abcoptax.init(spec, tree, jax.random.key(0))
    assert float(jnp.std(drawn["head"]["kernel"])) == pytest.approx(std, rel=0.1)
    # the readout of fan-in the width keeps the readout's own std
    tree["head"]["kernel"] = _z(D, 10)
    assert _flat(abcoptax.init_std_tree(spec, tree))["head/kernel"] == pytest.approx(spec.init_std("readout", 1.0))


def test_a_readout_named_by_a_rule_with_a_fan_in_given_takes_that_fan_in():
    spec = _spec()
    tree = {"tok": {"embedding": _z(1000, D)}, "blocks_0": {"w": {"kernel": _z(D, D)}},
            "cls": {"kernel": _z(2 * D, 10)}}
    std = _flat(abcoptax.init_std_tree(spec, tree, rules=[("cls", "readout")], fan_in={"cls/kernel": 4 * D}))
    assert std["cls/kernel"] == pytest.approx(spec.init_std("readout", 4.0))


# --- 2. a model with an input layer and no readout asks for an unpaired top-level matrix, as abcscale.torch does


def _vit(classes: int = 4 * D) -> dict:
    def block() -> dict:
        return {"LayerNorm_0": {"scale": _z(D), "bias": _z(D)},
                "MultiHeadDotProductAttention_0": {"query": {"kernel": _z(D, H, HD)}, "key": {"kernel": _z(D, H, HD)},
                                                   "value": {"kernel": _z(D, H, HD)}, "out": {"kernel": _z(H, HD, D)}},
                "MlpBlock_3": {"Dense_0": {"kernel": _z(D, 4 * D), "bias": _z(4 * D)},
                               "Dense_1": {"kernel": _z(4 * D, D), "bias": _z(D)}}}

    return {"params": {"Conv_0": {"kernel": _z(16, 16, 3, D), "bias": _z(D)}, "cls": _z(1, 1, D),
                       "Transformer": {"posembed_input": {"pos_embedding": _z(1, 197, D)},
                                       "encoderblock_0": block(), "encoderblock_1": block()},
                       "Dense_0": {"kernel": _z(D, classes), "bias": _z(classes)}}}


def test_a_vit_classifier_of_as_many_classes_as_its_mlp_is_width_asks_for_its_role():
    spec = _spec()
    rules = [("Conv_0", "embedding")]
    with pytest.raises(ValueError, match=r"parameter 'params/Dense_0/kernel' \[512, 2048\]: no rule names its role, "
                                         r"and the model has an embedding or input layer \('params/Conv_0/kernel'\) "
                                         r"but no readout.*\(r'\^params\\.Dense_0\\.kernel\$', 'readout'\)"):
        abcoptax.labels(spec, _vit(), rules=rules)
    labels, said = _quiet(abcoptax.labels, spec, _vit(), rules=[*rules, (r"^params/Dense_0/kernel$", "readout")])
    assert _flat(labels)["params/Dense_0/kernel"] == "readout"
    assert _flat(labels)["params/Dense_0/bias"] == "fixed"
    assert not [m for m in said if "no readout" in m]


def test_a_backbone_without_a_table_is_not_told_of_tied_logits():
    spec = _spec()
    tree = _vit()
    tree["params"]["pre_logits"] = tree["params"].pop("Dense_0")
    tree["params"]["pre_logits"]["kernel"] = _z(D, D)
    tree["params"]["pre_logits"]["bias"] = _z(D)
    _, said = _quiet(abcoptax.labels, spec, tree, rules=[("Conv_0", "embedding")])
    (note,) = [m for m in said if "no readout" in m]
    assert "'params/pre_logits/kernel'" in note and "'readout')" in note
    assert "tied" not in note and "Embed.attend" not in note  # a conv's kernel is no table the logits can read


def test_a_tied_model_is_still_told_its_logits_multiplier():
    from abcscale.theory.groups import tied_readout_multiplier

    spec = _spec()
    tree = {"params": {"Embed_0": {"embedding": _z(1000, D)},
                       "Block_0": {"Dense_0": {"kernel": _z(D, 4 * D)}, "Dense_1": {"kernel": _z(4 * D, D)}}}}
    _, said = _quiet(abcoptax.labels, spec, tree)
    (note,) = [m for m in said if "no readout" in m]
    assert note.startswith("no readout among the parameters: if the logits use the embedding's matrix (tied")
    assert f"multiply them by {tied_readout_multiplier(spec):.6g}" in note


# --- 3. a flax or haiku module's own auto-index is no block's


def _dense(fan_in: int, fan_out: int) -> dict:
    return {"kernel": _z(fan_in, fan_out), "bias": _z(fan_out)}


def _haiku(fan_in: int, fan_out: int) -> dict:
    return {"w": _z(fan_in, fan_out), "b": _z(fan_out)}


@pytest.mark.parametrize(("tree", "first", "rules"), [
    ({"params": {"Dense_0": _dense(3072, D), "Dense_1": _dense(D, D), "Dense_2": _dense(D, 10)}},
     "params/Dense_0/kernel", [("Dense_2", "readout")]),
    ({"params": {"Dense_0": _dense(3072, D), "Dense_1": _dense(D, D), "Dense_2": _dense(D, 2 * D)}},
     "params/Dense_0/kernel", []),  # 1024 classes: every matrix hidden by its shape, nothing said before
    ({"mlp/~/linear_0": _haiku(3072, D), "mlp/~/linear_1": _haiku(D, D), "mlp/~/linear_2": _haiku(D, 10)},
     "mlp/~/linear_0/w", [("linear_2", "readout")]),
    ({"mlp/~/linear_0": _haiku(3072, D), "mlp/~/linear_1": _haiku(D, D), "mlp/~/linear_2": _haiku(D, 2 * D)},
     "mlp/~/linear_0/w", []),
    ({"params": {"layers_0": _dense(3072, D), "layers_1": _dense(D, D), "layers_2": _dense(D, 10)}},
     "params/layers_0/kernel", [("layers_2", "readout")]),  # linen's nn.Sequential
    ({"layers": [{"weight": _z(D, 3072)}, {"weight": _z(D, D)}, {"weight": _z(10, D)}]},
     "layers/0/weight", [("layers/2", "readout")]),  # equinox's MLP, torch's layout
])
def test_an_mlps_input_layer_on_a_multiple_of_the_width_asks(tree, first, rules):
    spec = _spec()
    layout = "torch" if first.endswith("weight") else "jax"
    shape = "512, 3072" if layout == "torch" else "3072, 512"
    with pytest.raises(ValueError, match=rf"parameter '{first}' \[{shape}\]: no rule names its role.*axis of 3072 "
                                         r"is shared with no other matrix.*'embedding'\)"):
        abcoptax.labels(spec, tree, rules=rules or None, layout=layout)


def test_an_mlp_with_its_input_and_output_named_trains_as_said():
    spec = _spec()
    tree = {"params": {"Dense_0": _dense(3072, D), "Dense_1": _dense(D, D), "Dense_2": _dense(D, 2 * D)}}
    # its input named, its 1024 classes (2D, no transposed twin) still ask
    with pytest.raises(ValueError, match=r"'params/Dense_2/kernel' \[512, 1024\].*'readout'\)"):
        abcoptax.labels(spec, tree, rules=[("Dense_0", "embedding")])
    rules = [("Dense_0", "embedding"), ("Dense_2", "readout")]
    labels = _flat(abcoptax.labels(spec, tree, rules=rules))
    assert [labels[f"params/Dense_{i}/kernel"] for i in range(3)] == ["embedding", "hidden", "readout"]
    std = _flat(abcoptax.init_std_tree(spec, tree, rules=rules))
    assert std["params/Dense_0/kernel"] == pytest.approx(spec.init_std("embedding", 1.0) * 3072 ** -0.5)


def test_a_numbered_blocks_layers_stay_hidden_whatever_their_sizes():
    spec = _spec()
    # flax's blocks (`Block_0/Dense_0`, `encoderblock_0/MlpBlock_3/Dense_0`) and a flat key are still blocks'
    tree = {"params": {"Embed_0": {"embedding": _z(1000, D)},
                       "Block_0": {"Dense_0": {"kernel": _z(D, 6 * D)}, "Dense_1": {"kernel": _z(6 * D, D)}},
                       "lm_head": {"kernel": _z(D, 1000)}}}
    labels = _flat(abcoptax.labels(spec, tree))
    assert labels["params/Block_0/Dense_0/kernel"] == labels["params/Block_0/Dense_1/kernel"] == "hidden"
    assert assign("Block_0/Dense_1/kernel", (6 * D, D), D, DEFAULT_RULES, "jax")[0] is Role.hidden
    # a block list's items (flax NNX's `layers/0/...`) too, a fan-in of 3D no other matrix has included
    tree = {"embed": {"embedding": _z(1000, D)},
            "layers": [{"mlp": {"up": {"kernel": _z(D, 6 * D)}, "down": {"kernel": _z(6 * D, D)}},
                        "mix": {"kernel": _z(3 * D, D)}}],
            "lm_head": {"kernel": _z(D, 1000)}}
    assert _flat(abcoptax.labels(spec, tree))["layers/0/mix/kernel"] == "hidden"


# --- 4. cross-attention: key and value projections of another fan-in than their query's ask, in both exports


def _decoder(key: dict, value: dict, query: dict) -> dict:
    block = {"self_attn": {"q_proj": {"kernel": _z(D, D)}, "k_proj": {"kernel": _z(D, D)},
                           "v_proj": {"kernel": _z(D, D)}, "o_proj": {"kernel": _z(D, D)}},
             "cross_attn": {"q_proj": query, "k_proj": key, "v_proj": value, "o_proj": {"kernel": _z(D, D)}},
             "mlp": {"fc1": {"kernel": _z(D, 4 * D)}, "fc2": {"kernel": _z(4 * D, D)}}}
    return {"embed_tokens": {"embedding": _z(1000, D)}, "layers_0": block, "lm_head": {"kernel": _z(D, 1000)}}


def test_cross_attention_onto_a_fixed_context_asks_for_its_projections_roles():
    spec = _spec()
    tree = _decoder({"kernel": _z(CONTEXT, D)}, {"kernel": _z(CONTEXT, D)}, {"kernel": _z(D, D)})
    with pytest.raises(ValueError, match=r"parameter 'layers_0/cross_attn/k_proj/kernel' \[768, 512\]: a key or "
                                         r"value projection of fan-in 768 where its attention's query \('q_proj'\) "
                                         r"takes 512: cross-attention.*'embedding'\).*'hidden'\).*v_proj"):
        abcoptax.labels(spec, tree)
    as_input = [(r"cross_attn/(k|v)_proj", "embedding")]
    std = _flat(abcoptax.init_std_tree(spec, tree, rules=as_input))
    assert std["layers_0/cross_attn/k_proj/kernel"] == pytest.approx(spec.init_std("embedding", 1.0) * CONTEXT ** -0.5)
    std = _flat(abcoptax.init_std_tree(spec, tree, rules=[(r"cross_attn/(k|v)_proj", "hidden")]))
    assert std["layers_0/cross_attn/v_proj/kernel"] == pytest.approx(spec.init_std("hidden", CONTEXT / D))
    # a fan-in given says what it is
    fan_in = {"layers_0/cross_attn/k_proj/kernel": CONTEXT, "layers_0/cross_attn/v_proj/kernel": CONTEXT}
    assert _flat(abcoptax.labels(spec, tree, fan_in=fan_in))["layers_0/cross_attn/k_proj/kernel"] == "hidden"
    # self-attention (and GQA's narrower k/v outputs) reads the same fan-in: nothing asked
    abcoptax.labels(spec, _decoder({"kernel": _z(D, 256)}, {"kernel": _z(D, 256)}, {"kernel": _z(D, D)}))


def test_flax_cross_attention_kernels_ask_and_take_the_contexts_fan_in():
    spec = _spec()
    block = {"MultiHeadDotProductAttention_1": {"query": {"kernel": _z(D, H, HD)},
                                                "key": {"kernel": _z(CONTEXT, H, HD)},
                                                "value": {"kernel": _z(CONTEXT, H, HD)},
                                                "out": {"kernel": _z(H, HD, D)}},
             "Dense_0": {"kernel": _z(D, 4 * D)}, "Dense_1": {"kernel": _z(4 * D, D)}}
    tree = {"params": {"Embed_0": {"embedding": _z(1000, D)}, "Block_0": block, "lm_head": {"kernel": _z(D, 1000)}}}
    name = "params/Block_0/MultiHeadDotProductAttention_1/key/kernel"
    with pytest.raises(ValueError, match=rf"parameter '{name}' \[768, 8, 64\] \(read as the matrix \[768, 512\]\): "
                                         r"a key or value projection of fan-in 768"):
        abcoptax.labels(spec, tree)
    std = _flat(abcoptax.init_std_tree(spec, tree, rules=[(r"MultiHeadDotProductAttention_1/(key|value)",
                                                           "embedding")]))
    assert std[name] == pytest.approx(spec.init_std("embedding", 1.0) * CONTEXT ** -0.5)  # 768 inputs, not 768 x 8


def test_cross_attention_asks_in_the_torch_layout_too():
    placed = [("layers.0.cross_attn.q_proj.weight", (D, D), Role.hidden),
              ("layers.0.cross_attn.k_proj.weight", (D, CONTEXT), Role.hidden),
              ("layers.0.cross_attn.v_proj.weight", (D, CONTEXT), Role.hidden),
              ("layers.0.self_attn.wq.weight", (D, D), Role.hidden),
              ("layers.0.self_attn.wk.weight", (256, D), Role.hidden)]
    with pytest.raises(ValueError, match=r"'layers.0.cross_attn.k_proj.weight' \[512, 768\]: a key or value "
                                         r"projection.*\(r'\^layers\\.\\d\+\\.cross_attn\\.k_proj\\.weight\$'"):
        check_width(placed, D, "torch", DEFAULT_RULES)
    check_width(placed[3:], D, "torch", DEFAULT_RULES)  # GQA's k/v, of the width's fan-in


class _T:
    def __init__(self, *shape: int) -> None:
        self.shape, self.requires_grad, self.dtype = tuple(shape), True, "float32"

    def dim(self) -> int:
        return len(self.shape)


class _Module:
    """A duck-typed nn.Module: abcscale.torch reads named_parameters() and named_modules() alone."""

    def __init__(self, **kw) -> None:
        self._params = {k: v for k, v in kw.items() if isinstance(v, _T)}
        self._children = {k: v for k, v in kw.items() if not isinstance(v, _T)}

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        for k, v in self._params.items():
            yield (f"{prefix}.{k}" if prefix else k), v
        for k, c in self._children.items():
            yield from c.named_parameters(f"{prefix}.{k}" if prefix else k)

    def named_modules(self, prefix: str = ""):
        yield prefix, self
        for k, c in self._children.items():
            yield from c.named_modules(f"{prefix}.{k}" if prefix else k)

    def parameters(self):
        return [p for _, p in self.named_parameters()]


class _Linear(_Module):
    def __init__(self, fan_in: int, fan_out: int) -> None:
        super().__init__(weight=_T(fan_out, fan_in))


def test_abctorch_asks_of_a_linear_cross_attention_too():
    block = _Module(cross_attn=_Module(q_proj=_Linear(D, D), k_proj=_Linear(CONTEXT, D), v_proj=_Linear(CONTEXT, D),
                                       o_proj=_Linear(D, D)),
                    mlp=_Module(fc1=_Linear(D, 4 * D), fc2=_Linear(4 * D, D)))
    model = _Module(tok=_Module(weight=_T(1000, D)), layers=_Module(**{"0": block}), lm_head=_Linear(D, 1000))
    with pytest.raises(ValueError, match=r"'layers.0.cross_attn.k_proj.weight' \[512, 768\]: a key or value "
                                         r"projection of fan-in 768"):
        abctorch.param_groups(model, _spec(), rules=[("^tok", "embedding")])
    # the fan-in given settles it, as abcscale.optax's does
    given = {f"layers.0.cross_attn.{k}.weight": CONTEXT for k in ("k_proj", "v_proj")}
    groups = abctorch.param_groups(model, _spec(), rules=[("^tok", "embedding")], fan_in=given)
    assert any("fan-in 1.5x" in g["name"] for g in groups)


# --- 5. Muon reduces an einsum kernel over the axes its given fan-in spans


def test_muon_orthogonalises_an_einsum_kernel_given_its_fan_in_as_one_matrix():
    spec = _spec("muon")
    base = {"embed": {"embedding": _z(1000, D)}, "lm_head": {"kernel": _z(D, 1000)}}
    g = jax.random.normal(jax.random.key(1), (D, H * HD))
    updates = {}
    for name, shape, fan_in in (("wq", (D, H, HD), {"attn/wq/kernel": D}), ("wq2d", (D, H * HD), None),
                                ("query", (D, H, HD), None)):
        params = {**base, "attn": {name: {"kernel": _z(*shape)}}}
        grads = jax.tree_util.tree_map(jnp.zeros_like, params)
        grads["attn"][name]["kernel"] = g.reshape(shape)
        tx, _ = _quiet(abcoptax.transform, spec, params, fan_in=fan_in)
        u, _ = tx.update(grads, tx.init(params), params)
        updates[name] = np.asarray(u["attn"][name]["kernel"]).reshape(D, H * HD)
    np.testing.assert_allclose(updates["wq"], updates["wq2d"], rtol=1e-3, atol=1e-8)  # 12x apart before
    np.testing.assert_allclose(updates["query"], updates["wq2d"], rtol=1e-3, atol=1e-8)


@pytest.mark.parametrize(("shape", "layout", "fan_in", "reduced", "out"), [
    ((D, H, HD), "jax", D, (0,), (1, 2)),
    ((H, HD, D), "jax", H * HD, (0, 1), (2,)),
    ((4, D, H, HD), "jax", D, (1,), (2, 3)),  # an nn.scan stack: depth matrices [D, heads x head_dim]
    ((4, D, H, HD), "torch", H * HD, (2, 3), (1,)),
])
def test_muon_dims_follow_the_fan_in_given(shape, layout, fan_in, reduced, out):
    dims = export._muon_dims("attn/wq/kernel", shape, layout, D, fan_in)
    assert (tuple(np.atleast_1d(dims.reduction_axis)), tuple(np.atleast_1d(dims.output_axis))) == (reduced, out)
    # a fan-in no run of axes multiplies to (a strided transposed conv's taps) leaves the layout's own reading
    assert export._muon_dims("attn/wq/kernel", shape, layout, D, 7) == export._muon_dims("attn/wq/kernel", shape,
                                                                                         layout, D)


# --- 6. a patch embedding's projection on 768 = 4D inputs asks


def test_a_vit_tis_patch_projection_asks_for_the_embedding_role():
    w = 192
    spec = _spec(width=w)

    def block() -> dict:
        return {"LayerNorm_0": {"scale": _z(w)},
                "MlpBlock_0": {"Dense_0": {"kernel": _z(w, 4 * w)}, "Dense_1": {"kernel": _z(4 * w, w)}},
                "attn": {"qkv": {"kernel": _z(w, 3 * w)}, "proj": {"kernel": _z(w, w)}}}

    tree = {"patch_embed": {"proj": {"kernel": _z(768, w), "bias": _z(w)}}, "pos_embed": _z(1, 197, w),
            "cls_token": _z(1, 1, w), "Block_0": block(), "Block_1": block(),
            "head": {"kernel": _z(w, 1000), "bias": _z(1000)}}
    with pytest.raises(ValueError, match=r"parameter 'patch_embed/proj/kernel' \[768, 192\]: no rule names its role "
                                         r"and its shape reads as a hidden matrix's.*patch embedding.*"
                                         r"\(r'\^patch_embed\\.proj\\.kernel\$', 'embedding'\)"):
        abcoptax.labels(spec, tree)
    std = _flat(abcoptax.init_std_tree(spec, tree, rules=[("patch_embed/proj", "embedding")]))
    assert std["patch_embed/proj/kernel"] == pytest.approx(spec.init_std("embedding", 1.0) * 768 ** -0.5)


@pytest.mark.parametrize(("name", "shape", "layout"), [
    ("to_patch_embedding.2.weight", (D, 3 * D), "torch"),  # vit-pytorch's Linear after its LayerNorm
    ("vision_model.embeddings.patch_embedding.kernel", (3 * D, D), "jax"),
    ("stem/kernel", (2 * D, D), "jax"),  # an MLP-Mixer's stem on flattened patches
])
def test_patch_embedding_names_ask(name, shape, layout):
    with pytest.raises(ValueError, match="patch embedding's or a stem's matrix"):
        assign(name, shape, D, DEFAULT_RULES, layout)


def test_a_deep_stems_later_layers_and_a_patch_norm_keep_their_roles():
    assert assign("stem.conv2.weight", (D, D), D, DEFAULT_RULES, "torch")[0] is Role.hidden
    assert assign("patch_embed.norm.weight", (D,), D, DEFAULT_RULES, "torch")[0] is Role.vector


# --- a false-positive hunt over common architectures (session 65)


def test_a_conv_readout_no_conv_name_reads_takes_its_kernel_in_its_fan_in():
    # diffusers' `conv_out` [3, 3, C, 4] given the readout's role: 9x the torch export's std, which reads the class
    spec = _spec(width=256)
    from abcscale.schemas.groups import GroupRule

    tree = {"conv_in": {"kernel": _z(3, 3, 4, 256)}, "blk_0": {"conv1": {"kernel": _z(3, 3, 256, 256)}},
            "conv_out": {"kernel": _z(3, 3, 256, 4)}}
    rules = [GroupRule(pattern="conv_in", role="embedding"), GroupRule(pattern="conv_out", role="readout")]
    std = abcoptax.init_std_tree(spec, tree, rules=rules)["conv_out"]["kernel"]
    assert std == pytest.approx(spec.init_std("readout", 9.0))
    tree["Conv_9"] = tree.pop("conv_out")  # the same leaf under a conv name: the same std
    rules[1] = GroupRule(pattern="Conv_9", role="readout")
    assert abcoptax.init_std_tree(spec, tree, rules=rules)["Conv_9"]["kernel"] == pytest.approx(std)


def test_a_sequential_inside_a_module_is_a_blocks_not_the_models_layer_list():
    # a DiT backbone's `final_layer/adaLN_modulation/layers_1` [D, 2D] (flax nn.Sequential's auto-name) was refused
    from abcscale.schemas.groups import GroupRule

    W = 256
    spec = _spec(width=W)
    tree = {"params": {"x_embedder": {"proj": {"kernel": _z(2, 2, 4, W)}},
                       "final_layer": {"adaLN_modulation": {"layers_1": {"kernel": _z(W, 2 * W), "bias": _z(2 * W)}}},
                       "blocks_0": {"attn": {"qkv": {"kernel": _z(W, 3 * W)}, "proj": {"kernel": _z(W, W)}},
                                    "mlp": {"fc1": {"kernel": _z(W, 4 * W)}, "fc2": {"kernel": _z(4 * W, W)}}}}}
    labels, _ = _quiet(abcoptax.labels, spec, tree, rules=[GroupRule(pattern="x_embedder", role="embedding")])
    assert labels["params"]["final_layer"]["adaLN_modulation"]["layers_1"]["kernel"] == "hidden"
