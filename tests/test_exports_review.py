"""What a review of the Python API and the exports as a user's integration found (session 32): a spec for one
width applied to a model of another, ``rules=`` forms the exports refused, a Recommendation passed for its groups,
``form=`` ignored, a BaseConfig's width and beta dropped, ``from_mup`` without weight decay, a tied embedding
and readout trained at one role's LR, AdamW's default decay on an Adam spec, optimizer arguments that did
nothing, and ``recommend(fit=...)`` reading a table without an lr_mode column as per-layer."""

from __future__ import annotations

import re
import warnings

import jax.numpy as jnp
import pytest

import abcscale
from abcscale import optax as abcoptax
from abcscale import torch as abctorch
from abcscale.fitting import fit_table
from abcscale.fitting.synthetic import synthetic_sweep
from tests.test_exports import GPT, D, V, _flax_tree, _Model, _spec


def _gpt(width: int) -> dict[str, tuple[int, ...]]:
    return {k.replace(str(D), "x"): tuple(width if d == D else 4 * width if d == 4 * D else d for d in s)
            for k, s in GPT.items()}


@pytest.mark.parametrize("width", [4 * D, D // 2])
def test_a_spec_for_another_width_is_refused_by_the_model_s_shapes(width):
    spec = _spec()  # width D
    with pytest.raises(ValueError, match=rf"spec is for width {D}: recommend at the model's width \(width={width}\)"):
        abctorch.param_groups(_Model(_gpt(width)), spec)
    tree = {"params": {"tok_embed": {"embedding": jnp.zeros((V, width))},
                       "c_fc": {"kernel": jnp.zeros((width, 4 * width))},
                       "lm_head": {"kernel": jnp.zeros((width, V))}}}
    with pytest.raises(ValueError, match=rf"spec is for width {D}: recommend at the model's width \(width={width}\)"):
        abcoptax.lr_tree(spec, tree)
    # the model's own width is fine, in both layouts
    assert abctorch.param_groups(_Model(_gpt(D)), spec)
    assert abcoptax.lr_tree(spec, _flax_tree())


def test_models_whose_first_layer_is_not_the_width_still_pass():
    """A code review of the first version (session 32): it read every embedding as [vocab, D] and refused an MLP
    whose input layer is an nn.Linear [D, 784], a factorized (ALBERT) embedding and a convolutional head."""
    spec = _spec()
    rules = {"fc_in": "embedding", "head": "readout", "emb_small": "embedding"}
    mlp = _Model({"fc_in.weight": (D, 784), "fc_mid.weight": (D, D), "head.weight": (10, D)})
    assert abctorch.param_groups(mlp, spec, rules=rules)
    albert = _Model({"emb_small.weight": (V, 128), "proj.weight": (D, 2 * D), "lm_head.weight": (V, D)})
    # (proj's axis of 2D is in no other matrix: read by its shape alone it asks for a role since session 48)
    assert abctorch.param_groups(albert, spec, rules=rules | {"proj": "hidden"})
    conv = _Model({"head.weight": (10, 7 * 7 * D), "fc_mid.weight": (D, D)})
    assert abctorch.param_groups(conv, spec, rules=rules)


@pytest.mark.parametrize("width", [2 * D, D // 2])
def test_a_backbone_of_another_width_is_refused_by_its_hidden_matrices(width):
    """A model with no readout (a backbone given its own param groups) passed any spec: nothing but its hidden
    matrices says its width, and every one of them has an axis of it (session 33)."""
    blocks = {f"h.{i}.{k}.weight": s for i in range(2) for k, s in
              (("attn.qkv", (3 * width, width)), ("attn.proj", (width, width)), ("mlp.fc", (4 * width, width)),
               ("mlp.proj", (width, 4 * width)))}
    spec = _spec()
    with pytest.raises(ValueError, match=rf"the model is {width} wide .* spec is for width {D}: recommend at the "
                                         rf"model's width \(width={width}\)"):
        abctorch.param_groups(_Model(blocks), spec, rules={"h": "hidden"})
    tree = {"params": {k.replace(".weight", ""): {"kernel": jnp.zeros(s[::-1])} for k, s in blocks.items()}}
    with pytest.raises(ValueError, match=rf"the model is {width} wide"):
        abcoptax.lr_tree(spec, tree, rules={"h": "hidden"})
    # at the spec's width it passes; so do hidden matrices that share no size (an MLP narrowing layer by layer)
    same = {k: tuple(D if d == width else 3 * D if d == 3 * width else 4 * D for d in s) for k, s in blocks.items()}
    assert abctorch.param_groups(_Model(same), spec, rules={"h": "hidden"})
    funnel = _Model({"fc1.weight": (2 * D, 4 * D), "fc2.weight": (D, 2 * D), "fc3.weight": (D // 2, D)})
    assert abctorch.param_groups(funnel, spec, rules={"fc": "hidden"})


@pytest.mark.parametrize("vocab", [2 * D, 4 * D])
def test_an_unnamed_readout_whose_vocabulary_is_a_multiple_of_the_width_is_asked_for(vocab):
    """A flax model's readout `Dense_2` [D, V] with V a multiple of D (512 at 256; 32000 at 256 is 125x) was taken
    for a hidden matrix by its shape: the hidden LR and init, 8x and 16x the readout's for muP (session 33)."""
    spec = _spec()
    tree = {"params": {"Embed_0": {"embedding": jnp.zeros((vocab, D))}, "Dense_0": {"kernel": jnp.zeros((D, D))},
                       "Dense_2": {"kernel": jnp.zeros((D, vocab))}}}
    with pytest.raises(ValueError, match=rf"'params/Dense_2/kernel' \[{D}, {vocab}\]: no rule names its role, and "
                                         rf"its shape could be .* \({vocab} is the vocabulary of "):
        abcoptax.labels(spec, tree)
    labels = abcoptax.labels(spec, tree, rules={"Dense_2": "readout"})["params"]
    assert labels["Dense_2"]["kernel"] == "readout" and labels["Dense_0"]["kernel"] == "hidden"
    torch_like = _Model({"embed.weight": (vocab, D), "layers.0.weight": (D, D), "out.weight": (vocab, D)})
    with pytest.raises(ValueError, match=r"'out.weight' .* no rule names its role"):
        abctorch.param_groups(torch_like, spec)
    # an unnamed square matrix beside it is still hidden by its shape
    assert abctorch.param_groups(torch_like, spec, rules={"out": "readout"})


def test_an_unnamed_embedding_beside_a_readout_or_another_of_its_shape_is_asked_for():
    """minGPT's `tok_emb` (no default rule names it) beside its readout `head` at vocabulary 2D, and `emb` beside
    `out`: taken for hidden by their shapes, the embedding (and `out`) trained at the hidden LR and init."""
    spec = _spec()
    unnamed = _Model({"wtok.weight": (2 * D, D), "blocks.0.fc.weight": (4 * D, D), "head.weight": (2 * D, D)})
    with pytest.raises(ValueError, match=rf"'wtok.weight' \[{2 * D}, {D}\]: no rule names its role, .* "
                                         rf"\({2 * D} is the vocabulary of 'head.weight'\)"):
        abctorch.param_groups(unnamed, spec)
    assert abctorch.param_groups(unnamed, spec, rules={"wtok": "embedding"})
    # minGPT's own name is a default rule's since session 35
    mingpt = _Model({"tok_emb.weight": (2 * D, D), "blocks.0.fc.weight": (4 * D, D), "head.weight": (2 * D, D)})
    assert {g["name"] for g in abctorch.param_groups(mingpt, spec)} == {"embedding", "hidden", "readout"}
    pair = _Model({"emb.weight": (2 * D, D), "out.weight": (2 * D, D)})
    with pytest.raises(ValueError, match="parameters 'emb.weight' .* and 'out.weight' .*: no rule names their roles"):
        abctorch.param_groups(pair, spec)
    assert abctorch.param_groups(pair, spec, rules={"emb": "embedding", "out": "readout"})
    # an MLP's up and down projections outside blocks are laid out the other way: still hidden by their shapes
    assert abctorch.param_groups(_Model({"up.weight": (4 * D, D), "down.weight": (D, 4 * D)}), spec)


@pytest.mark.parametrize("layout", ["torch", "jax"])
def test_block_mlps_at_the_vocabulary_s_size_stay_hidden_when_both_ends_are_named(layout):
    """The byte data's vocabulary 256 is 4x width 64: an unnamed MLP matrix in a block has the vocabulary's size,
    and with the embedding and the readout named there is nothing to guess (a code review of session 33)."""
    w, v = 64, 256
    spec = _spec(width=w)
    if layout == "torch":
        model = _Model({"transformer.wte.weight": (v, w), "transformer.h.0.mlp.0.weight": (4 * w, w),
                        "transformer.h.0.mlp.2.weight": (w, 4 * w), "lm_head.weight": (v, w)})
        groups = abctorch.param_groups(model, spec)
        assert {g["name"].split(" ")[0] for g in groups} >= {"embedding", "hidden", "readout"}
    else:
        # a gated MLP (flax's unnamed Dense_N): up and gate [D, 4D], down [4D, D]; 4D is the vocabulary
        tree = {"params": {"Embed_0": {"embedding": jnp.zeros((v, w))},
                           "Block_0": {"Dense_0": {"kernel": jnp.zeros((w, 4 * w))},
                                       "Dense_1": {"kernel": jnp.zeros((w, 4 * w))},
                                       "Dense_2": {"kernel": jnp.zeros((4 * w, w))}},
                           "lm_head": {"kernel": jnp.zeros((w, v))}}}
        labels = abcoptax.labels(spec, tree)["params"]
        assert labels["Block_0"]["Dense_0"]["kernel"] == "hidden" and labels["lm_head"]["kernel"] == "readout"
        assert labels["Block_0"]["Dense_2"]["kernel"] == "hidden"
        # a block with an up projection and nothing back to the width is no MLP: a second head? asked, not guessed
        del tree["params"]["Block_0"]["Dense_2"]
        with pytest.raises(ValueError, match="Dense_0/kernel.*256 is the vocabulary"):
            abcoptax.labels(spec, tree)


def test_unnamed_matrices_of_another_width_say_the_width_may_be_wrong():
    model = _Model({"mlp.0.weight": (2 * D // 2, D // 2)})
    with pytest.raises(ValueError, match=f"a hidden matrix's shape for width {D // 2}, not the spec's {D}: if the "
                                         f"model is {D // 2} wide, recommend at its width"):
        abctorch.param_groups(model, _spec())


@pytest.mark.parametrize("rules", [
    [{"pattern": "head_out", "role": "readout"}],
    [("head_out", "readout")],
    {"head_out": "readout"},
])
def test_the_exports_take_the_rules_recommend_takes(rules):
    shapes = dict(GPT) | {"head_out.weight": (V, D)}
    del shapes["lm_head.weight"]
    spec = _spec()
    with pytest.raises(ValueError, match="head_out"):
        abctorch.param_groups(_Model(shapes), spec)  # no rule names it: an embedding and a readout look alike
    groups = {g["name"]: g for g in abctorch.param_groups(_Model(shapes), spec, rules=rules)}
    assert groups["readout"]["lr"] == spec["readout"].lr
    tree = _flax_tree()
    tree["params"]["head_out"] = tree["params"].pop("lm_head")
    assert abcoptax.labels(spec, tree, rules=rules)["params"]["head_out"]["kernel"] == "readout"
    with pytest.raises(ValueError, match=r"rules\[0\]"):
        abcoptax.labels(spec, tree, rules=[{"pattern": "x", "role": "bogus"}])


def test_a_recommendation_gives_its_groups_and_anything_else_is_named():
    rec = abcscale.recommend("mup", "adamw", width=D, base_width=64, beta=3e-3, weight_decay=0.1,
                             form="multiplier_free")
    model = _Model(GPT)
    assert abctorch.param_groups(model, rec) == abctorch.param_groups(model, rec.groups)
    assert abcoptax.lr_tree(rec, _flax_tree()) == abcoptax.lr_tree(rec.groups, _flax_tree())
    for bad in (None, 3, {"hidden": 1e-3}):
        with pytest.raises(ValueError, match="^spec: expected recommend"):
            abctorch.param_groups(_Model(GPT), bad, width=D)


def test_a_form_other_than_the_spec_s_is_refused():
    plain = _spec(form="multiplier_free")
    with pytest.raises(ValueError, match="^form: the spec is in the multiplier_free form"):
        abcoptax.lr_tree(plain, _flax_tree(), form="abc")
    with pytest.raises(ValueError, match="^form: "):
        abctorch.multipliers(_Model(GPT), plain, form="abc")
    assert abctorch.multipliers(_Model(GPT), plain, form="plain") == {}  # an alias of the spec's own form


def test_a_base_config_gives_its_width_and_beta():
    imp = abcscale.from_mup("adamw", base_width=256, lr=3e-3, width=1024, weight_decay=0.1)
    assert imp.constants.weight_decay == 0.1
    rec = abcscale.recommend("mup", "adamw", width=1024, constants=imp.constants)
    plain = abcscale.Constants.model_validate(imp.constants.model_dump(exclude={"width", "beta"}))
    same = abcscale.recommend("mup", "adamw", width=1024, base_width=256, beta=3e-3, constants=plain)
    assert rec.layers == same.layers and rec["hidden"].weight_decay == same["hidden"].weight_decay > 0
    assert abcscale.recommend("mup", "adamw", width=1024, base_width=256, beta=3e-3,
                              constants=imp.constants).layers == same.layers  # given and equal: fine
    for kw, needle in (({"base_width": 128}, "^base_width: 128 here, 256 in `constants`"),
                       ({"beta": 1e-2}, "^beta: 0.01 here, 0.003 in `constants`")):
        with pytest.raises(ValueError, match=needle):
            abcscale.recommend("mup", "adamw", width=1024, constants=imp.constants, **kw)


class _Tied(_Model):
    """named_parameters as PyTorch gives it: a tied tensor once, unless remove_duplicate=False."""

    def __init__(self, shapes, tie):
        super().__init__(shapes)
        self.tie = tie

    def named_parameters(self, remove_duplicate=True):
        items = list(self.params.items())
        if not remove_duplicate:
            items.append((self.tie[1], self.params[self.tie[0]]))
        return iter(items)


def test_a_tied_embedding_and_readout_is_said_not_silent():
    """It trains as the embedding (microsoft/mup's MuSharedReadout does the same), which the groups said nothing
    of: muP's readout LR is the embedding's / width ratio, so the warning says what is applied and what is not."""
    shapes = {k: s for k, s in GPT.items() if k != "lm_head.weight"}
    model = _Tied(shapes, ("transformer.wte.weight", "lm_head.weight"))
    from abcscale.theory.groups import tied_readout_multiplier

    spec = _spec()
    want = f"multiply the tied logits (h @ W.T, W as stored) by {tied_readout_multiplier(spec):.4g}"
    with pytest.warns(UserWarning, match="'transformer.wte.weight' and 'lm_head.weight' are one tensor .* trains "
                                         "as the embedding.*" + re.escape(want)):
        groups = abctorch.param_groups(model, spec)
    assert "readout" not in {g["name"] for g in groups}
    # BERT's decoder weight, a readout name since session 52 (PyTorch's word-language-model example names its
    # readout so), is said alike; an alias no rule names is not compared, and does not abort the groups
    bert = _Tied(shapes, ("transformer.wte.weight", "cls.predictions.decoder.weight"))
    with pytest.warns(UserWarning, match="'cls.predictions.decoder.weight' are one tensor .* " + re.escape(want)):
        assert abctorch.param_groups(bert, spec)
    other = _Tied(shapes, ("transformer.wte.weight", "cls.predictions.tied_out.weight"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert abctorch.param_groups(other, spec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        abctorch.param_groups(model, _spec(), rules={"lm_head": "embedding"})  # one role: nothing to say
        abctorch.param_groups(_Tied(GPT, ("transformer.h.0.mlp.c_fc.bias", "extra.bias")), _spec())


def test_groups_of_a_spec_without_decay_say_zero_and_optax_refuses_unused_arguments():
    for g in abctorch.param_groups(_Model(GPT), _spec("adam")):
        # an adam spec decays nothing and leaves the key to the optimizer (SGD/Adam's own weight_decay still
        # applies; the README says AdamW's default 0.01 would): a code review undid a forced 0 (session 32)
        assert "weight_decay" not in g
    with pytest.raises(ValueError, match="^momentum: adam has no momentum"):
        abcoptax.transform(_spec("adam"), _flax_tree(), momentum=0.9)
    with pytest.raises(ValueError, match="^b1: sgd has no b1"):
        abcoptax.transform(_spec("sgd"), _flax_tree(), b1=0.5)
    abcoptax.transform(_spec("sgd"), _flax_tree(), momentum=0.9)
    abcoptax.transform(_spec("adam"), _flax_tree(), b1=0.8)


def test_recommend_from_a_fit_without_an_lr_mode_column_asks_for_it():
    """The Python API defaulted lr_mode to per_layer, so a global-LR table's hidden LR came out scaled by
    (width ratio)^-c twice, 32x too small in the review's case; the CLI and REST already refused."""
    df = synthetic_sweep(widths=(64, 128, 256, 512), exponent=-1.0, seeds=2, seed=3,
                         group={"parameterization": "standard", "optimizer": "adam"})
    fit = fit_table(df, n_boot=50)
    with pytest.raises(ValueError, match="lr_mode"):
        abcscale.recommend(fit=fit, width=8192)
    rec = abcscale.recommend(fit=fit, width=8192, lr_mode="global")
    assert len({round(s.lr, 12) for s in rec.layers}) == 1
    # the analytic transfer still defaults to per-layer
    assert abcscale.recommend("mup", "adam", width=1024, base_width=256, beta=3e-3).lr_mode.value == "per_layer"


def test_convert_takes_recommend_s_name_for_the_base_lr():
    one = abcscale.convert("adam", "mup", "standard", width=1024, base_width=256, base_lr=3e-3)
    assert abcscale.convert("adam", "mup", "standard", width=1024, base_width=256, beta=3e-3) == one
    assert abcscale.convert("adam", "mup", "standard", width=1024, base_width=256) == abcscale.convert(
        "adam", "mup", "standard", width=1024, base_width=256, base_lr=1e-3)
    with pytest.raises(ValueError, match="^beta: the same as base_lr; give one"):
        abcscale.convert("adam", "mup", "standard", width=1024, beta=3e-3, base_lr=3e-3)


@pytest.mark.parametrize("layout", ["torch", "jax"])
def test_a_tied_model_s_block_mlps_at_the_vocabulary_s_size_stay_hidden(layout):
    """A tied model (the readout is the embedding) names only its embedding; its unnamed block MLPs at 4D = 256
    bytes were asked for as a readout (session 33). Up and down come in pairs; one more of a shape is asked for."""
    w, v = 64, 256
    spec = _spec(width=w)
    if layout == "torch":
        blocks = {"transformer.wte.weight": (v, w), "transformer.h.0.mlp.0.weight": (4 * w, w),
                  "transformer.h.0.mlp.2.weight": (w, 4 * w)}
        assert abctorch.param_groups(_Model(blocks), spec)
        with pytest.raises(ValueError, match=r"'out.weight' \[256, 64\]: no rule names its role"):
            abctorch.param_groups(_Model({**blocks, "out.weight": (v, w)}), spec)
    else:
        tree = {"params": {"Embed_0": {"embedding": jnp.zeros((v, w))},
                           "Block_0": {"Dense_0": {"kernel": jnp.zeros((w, 4 * w))},
                                       "Dense_1": {"kernel": jnp.zeros((4 * w, w))}}}}
        labels = abcoptax.labels(spec, tree)["params"]
        assert labels["Block_0"]["Dense_0"]["kernel"] == labels["Block_0"]["Dense_1"]["kernel"] == "hidden"
        tree["params"]["Dense_9"] = {"kernel": jnp.zeros((w, v))}
        with pytest.raises(ValueError, match=r"'params/Dense_9/kernel' \[64, 256\]: no rule names its role"):
            abcoptax.labels(spec, tree)


def test_a_named_up_projection_still_pairs_with_its_down():
    """With the block MLP's up named by a rule and its down not, an unnamed readout [V, D] paired with the down
    [D, V] and went through as hidden (a review of session 34): pairs are counted over every hidden matrix."""
    w, v = 64, 256
    model = {"wte.weight": (v, w), "h.0.fc1.weight": (4 * w, w), "h.0.proj.weight": (w, 4 * w),
             "out.weight": (v, w)}
    with pytest.raises(ValueError, match=r"'out.weight' \[256, 64\]: no rule names its role"):
        abctorch.param_groups(_Model(model), _spec(width=w), rules={"fc1": "hidden"})
    assert abctorch.param_groups(_Model(model), _spec(width=w), rules={"fc1": "hidden", "out": "readout"})


def test_a_rule_naming_a_module_leaves_its_bias_out_of_the_matrix_role():
    """The README's `rules=[{"pattern": "Dense_2", "role": "readout"}]` caught `Dense_2/bias` too: the readout's
    LR (32x under the vector's at width 1024) and a random init in place of zeros (a session-34 review). The
    readout's bias is the fixed role (its length is the readout's output: no width-sized axis)."""
    spec = _spec()
    tree = {"params": {"Embed_0": {"embedding": jnp.zeros((3 * D, D))}, "Dense_0": {"kernel": jnp.zeros((D, D))},
                       "Dense_2": {"kernel": jnp.zeros((D, 3 * D)), "bias": jnp.zeros(3 * D)}}}
    labels = abcoptax.labels(spec, tree, rules=[{"pattern": "Dense_2", "role": "readout"}])["params"]
    assert labels["Dense_2"] == {"kernel": "readout", "bias": "fixed"}
    model = _Model({"embed.weight": (3 * D, D), "decoder.weight": (3 * D, D), "decoder.bias": (3 * D,)})
    roles = {g["name"].split(" ")[0]: len(g["params"]) for g in abctorch.param_groups(
        model, spec, rules={"decoder": "readout"})}
    assert roles.get("readout") == 1 and roles.get("fixed") == 1, roles


def test_a_model_narrower_than_the_spec_is_told_its_width_first():
    """A model 512 wide given a spec for 1024 was told "no rule names its role ... (an embedding and a readout
    look alike)" about an ordinary MLP matrix, the width hint last (a session-34 review)."""
    spec = _spec(width=1024)
    model = _Model({"wte.weight": (50257, 512), "h.0.mlp.0.weight": (2048, 512), "h.0.mlp.2.weight": (512, 2048),
                    "lm_head.weight": (50257, 512)})
    with pytest.raises(ValueError, match=r"\[2048, 512\]: a hidden matrix's shape for width 512, not the spec's "
                                         r"1024: if the model is 512 wide, recommend at its width \(width=512\)"):
        abctorch.param_groups(model, spec)


def test_groups_for_a_model_with_mup_base_shapes_say_which_optimizer_takes_them():
    """Groups given to mup's MuAdam on a set_base_shapes model divide the hidden LR by the width ratio a second
    time (beta/256 for beta/16 at 16x), silently (a session-34 review): param_groups says so."""
    model = _Model(GPT)
    assert abctorch.param_groups(model, _spec())  # no base shapes: nothing to say
    for p in model.params.values():
        p.infshape = object()
    with pytest.warns(UserWarning, match=r"for mup's MuAdam/MuSGD set each group's lr to spec\.mup\.lr"):
        abctorch.param_groups(model, _spec())


def test_multipliers_give_the_tied_logits_scale():
    """The warning said the forward must multiply the tied logits by the tied-readout multiplier, but
    multipliers(), the documented "what the forward must multiply", returned {} (a session-34 review)."""
    from abcscale.theory.groups import tied_readout_multiplier

    shapes = {k: s for k, s in GPT.items() if k != "lm_head.weight"}
    model = _Tied(shapes, ("transformer.wte.weight", "lm_head.weight"))
    spec = _spec()
    with pytest.warns(UserWarning, match="abctorch.multipliers gives it"):
        out = abctorch.multipliers(model, spec)
    assert tied_readout_multiplier(spec) != 1.0 and out.get("lm_head.weight") == tied_readout_multiplier(spec)
    assert abctorch.multipliers(_Model(GPT), spec) == {}  # untied, multiplier-free: nothing to scale
