"""Session 35's review of putting the numbers into a team's own model (each a wrong number that passed in
silence): an MLP classifier's `fc1`/`fc2` taken for hidden matrices by name, minGPT's `pos_emb` [1, T, D] taken
for a hidden matrix by shape, a square `lm_head` (vocabulary = width) made hidden, and a tied readout declared
before the embedding trained (and initialised) as the readout while the tied-logits multiplier assumed the
embedding's init."""

from __future__ import annotations

import warnings

import pytest

import abcscale
from abcscale import torch as abctorch
from abcscale.theory.groups import assign, tied_readout_multiplier
from tests.test_exports import _Model
from tests.test_exports_review import _Tied

W = 1024


def _plain():
    return abcscale.recommend("mup", "adam", width=W, base_width=128, beta=3e-3, form="multiplier_free").groups


@pytest.mark.parametrize("name, shape, fixed", [
    ("fc1.weight", (W, 784), 784),       # an MLP classifier's input layer (torch [out, in])
    ("fc2.weight", (10, W), 10),         # its 10-class head
    ("w3", (W, 10), 10),                 # the same head in the jax layout
])
def test_a_hidden_name_with_a_fixed_axis_asks_for_its_role(name, shape, fixed):
    with pytest.raises(ValueError, match=rf"named like a hidden matrix, but its axis of {fixed} does not grow with "
                                         rf"the width {W}.*add a rule"):
        assign(name, shape, W)
    assert assign(name, shape, W, [abcscale.GroupRule(pattern=name.split(".")[0], role="readout")])[0].value \
        == "readout"


@pytest.mark.parametrize("name, shape", [
    ("layers.0.feed_forward.w1.weight", (11008 * W // 4096, W)),  # LLaMA's MLP width, no multiple of D
    ("layers.0.attention.wk.weight", (W // 4, W)),                # grouped keys: a divisor of the width
    ("h.0.mlp.c_fc.weight", (4 * W, W)),
    # a code review's models: heads x head_dim no divisor of D, MoE experts narrower than D, in blocks
    ("model.layers.0.self_attn.q_proj.weight", (2048 * W // 2304, W)),
    ("model.layers.3.mlp.experts.7.gate_proj.weight", (1408 * W // 2048, W)),
    ("q_proj.weight", (W - 128, W)),  # attention names are never an input or output layer
    ("h.0.mlp.fc1.weight", (W, 784)),  # a generic name inside a block is the block's
])
def test_hidden_names_that_grow_with_the_width_stay_hidden(name, shape):
    assert assign(name, shape, W)[0].value == "hidden"


def test_mingpt_position_table_is_an_embedding_by_name():
    assert assign("pos_emb", (1, 1024, W), W)[0].value == "embedding"
    assert assign("tok_emb.weight", (50304, W), W)[0].value == "embedding"
    # by shape alone a [1, T, D] table and a one-layer stack [1, D, 4D] look alike: a stack stays hidden
    assert assign("blocks.w_in", (1, W, 4 * W), W, layout="jax")[0].value == "hidden"
    assert assign("layers_stacked", (4, W, 4 * W), W, layout="jax")[0].value == "hidden"


def test_a_square_lm_head_is_the_readout_but_a_square_output_stays_ambiguous():
    spec = _plain()
    model = _Model({"wte.weight": (W, W), "h.0.mlp.c_fc.weight": (4 * W, W), "h.0.mlp.c_proj.weight": (W, 4 * W),
                    "lm_head.weight": (W, W)})
    groups = {g["name"]: g for g in abctorch.param_groups(model, spec)}
    assert groups["readout"]["params"] == [model.params["lm_head.weight"]]
    assert groups["readout"]["lr"] == spec["readout"].lr < spec["hidden"].lr
    assert assign("blocks.0.attn.output.weight", (W, W), W)[0].value == "hidden"


def test_a_tied_readout_declared_first_trains_as_the_embedding():
    spec = _plain()
    shapes = {"lm_head.weight": (512, W), "fc1.weight": (W, W)}
    model = _Tied(shapes, ("lm_head.weight", "wte.weight"))  # PyTorch lists the tensor under lm_head
    with pytest.warns(UserWarning, match="'wte.weight' and 'lm_head.weight' are one tensor .* trains as the embedding"):
        groups = {g["name"]: g for g in abctorch.param_groups(model, spec)}
    assert groups["embedding"]["params"] == [model.params["lm_head.weight"]] and "readout" not in groups
    assert groups["embedding"]["lr"] == spec["embedding"].lr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        drawn = abctorch.init_(model, spec)
        mults = abctorch.multipliers(model, spec)
    # said as named_parameters() lists the tensor (under lm_head), drawn with the embedding's std (session 65)
    assert drawn["lm_head.weight"] == spec["embedding"].init_std == 1.0 and "wte.weight" not in drawn
    # the logits' multiplier assumes the embedding's init, which the tensor now has
    assert mults == {"lm_head.weight": tied_readout_multiplier(spec)}
    assert tied_readout_multiplier(spec) * drawn["lm_head.weight"] == pytest.approx(spec["readout"].init_std)


class Conv1D:
    """Hugging Face's GPT-2 Conv1D, as abcscale.torch sees it: a module whose weight is stored [in, out]."""

    def __init__(self, n_out, n_in):
        from tests.test_exports import _Tensor

        self.weight = _Tensor(n_in, n_out)

    def named_parameters(self, recurse=True):
        return iter([("weight", self.weight)])


class _HFGPT2:
    def __init__(self, d, v):
        from tests.test_exports import _Tensor

        self.modules = {"transformer.h.0.attn.c_attn": Conv1D(3 * d, d), "transformer.h.0.mlp.c_fc": Conv1D(4 * d, d),
                        "transformer.h.0.mlp.c_proj": Conv1D(d, 4 * d)}
        self.params = {"transformer.wte.weight": _Tensor(v, d),
                       **{f"{k}.weight": m.weight for k, m in self.modules.items()}, "lm_head.weight": _Tensor(v, d)}

    def named_parameters(self):
        return iter(self.params.items())

    def named_modules(self):
        return iter([("", self), *self.modules.items()])


def test_hugging_face_conv1d_weights_are_read_in_out():
    """GPT-2's Conv1D weights are [in, out]: read as nn.Linear's [out, in], c_attn [768, 2304] had fan-in 3x the
    width (init std / sqrt 3) and the MLP's down projection fan-in 1x (std x 2)."""
    d = 768
    spec = abcscale.recommend("mup", "adam", width=d, base_width=128, beta=3e-3, form="multiplier_free").groups
    model = _HFGPT2(d, 50257)
    drawn = abctorch.init_(model, spec)
    hidden = spec.init_std("hidden", 1)
    assert drawn["transformer.h.0.attn.c_attn.weight"] == pytest.approx(hidden)
    assert drawn["transformer.h.0.mlp.c_fc.weight"] == pytest.approx(hidden)
    assert drawn["transformer.h.0.mlp.c_proj.weight"] == pytest.approx(spec.init_std("hidden", 4)) == hidden / 2
    names = {g["name"] for g in abctorch.param_groups(model, spec)}
    assert names == {"embedding", "hidden", "hidden (fan-in 4x width)", "readout"}


def test_an_abc_spec_given_to_the_exports_says_its_numbers_need_the_multipliers():
    """recommend()'s default form is abc: param_groups / init_ / the optax exports applied it to a plain model in
    silence, the embedding's LR 32x low and the readout's init std 32x large at width 1024."""
    import jax.numpy as jnp

    from abcscale import optax as abcoptax

    abc = abcscale.recommend("mup", "adam", width=W, base_width=128, beta=3e-3).groups
    model = _Model({"wte.weight": (512, W), "h.0.mlp.c_fc.weight": (4 * W, W), "lm_head.weight": (512, W)})
    params = {"wte": jnp.zeros((512, W)), "h_0": {"c_fc": {"kernel": jnp.zeros((W, 4 * W))}},
              "lm_head": {"kernel": jnp.zeros((W, 512))}}
    said = r"the spec is in the abc form, whose LRs and init stds assume the forward multiplies .*embedding 32"
    for call in (lambda: abctorch.param_groups(model, abc), lambda: abctorch.init_(model, abc),
                 lambda: abcoptax.lr_tree(abc, params), lambda: abcoptax.transform(abc, params)):
        with pytest.warns(UserWarning, match=said):
            call()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        abctorch.param_groups(model, abc, form="abc")  # the caller says its forward applies them
        abctorch.multipliers(model, abc)  # the function that names them
        abctorch.init_(model, _plain())
        abcoptax.lr_tree(_plain(), params)


def test_a_readout_under_a_numbered_wrapper_is_said_so():
    """flax names a wrapper `Transformer_0`: its `lm_head` was refused as "no rule names its role", though the
    readout rule names it; the message says why the default rule stood back, and the rule to add."""
    with pytest.raises(ValueError, match=r"named like the readout, but under a numbered module.*\('lm_head', "
                                         r"'readout'\)"):
        assign("params/Transformer_0/lm_head/kernel", (W, 50257), W, layout="jax")
    rule = abcscale.GroupRule(pattern="lm_head", role="readout")
    assert assign("params/Transformer_0/lm_head/kernel", (W, 50257), W, [rule], layout="jax")[0].value == "readout"


def test_recommend_takes_constants_as_a_dict():
    rec = abcscale.recommend("mup", "adam", width=W, base_width=128, beta=3e-3, constants={"gamma": {"hidden": 2.0}})
    plain = abcscale.recommend("mup", "adam", width=W, base_width=128, beta=3e-3)
    assert rec["hidden"].lr == pytest.approx(2 * plain["hidden"].lr)
    with pytest.raises(ValueError, match=r"^constants \(gamma.hiden\): "):
        abcscale.recommend("mup", "adam", width=W, base_width=128, beta=3e-3, constants={"gamma": {"hiden": 2.0}})


def test_jax_users_get_the_multipliers_per_leaf():
    """abctorch.multipliers had no JAX counterpart: an abc or mup form user read spec[role].multiplier by hand."""
    import jax.numpy as jnp

    from abcscale import optax as abcoptax

    params = {"wte": {"embedding": jnp.zeros((512, W))}, "h_0": {"c_fc": {"kernel": jnp.zeros((W, 4 * W)),
                                                                          "bias": jnp.zeros(4 * W)}},
              "lm_head": {"kernel": jnp.zeros((W, 512))}}
    abc = abcscale.recommend("mup", "adam", width=W, base_width=128, beta=3e-3).groups
    tree = abcoptax.multiplier_tree(abc, params)
    assert tree["wte"]["embedding"] == abc["embedding"].multiplier == 32.0
    assert tree["lm_head"]["kernel"] == abc["readout"].multiplier == 1 / 32
    assert tree["h_0"]["c_fc"]["kernel"] == 1.0 and tree["h_0"]["c_fc"]["bias"] == 1.0
    plain = abcoptax.multiplier_tree(_plain(), params)
    assert all(v == 1.0 for v in (plain["wte"]["embedding"], plain["lm_head"]["kernel"]))


def test_the_multiplier_warning_points_at_the_callers_line():
    abc = abcscale.recommend("mup", "adam", width=W, base_width=128, beta=3e-3).groups
    model = _Model({"wte.weight": (512, W), "h.0.mlp.c_fc.weight": (4 * W, W), "lm_head.weight": (512, W)})
    with pytest.warns(UserWarning, match="abc form") as caught:
        abctorch.param_groups(model, abc)
    assert caught[0].filename == __file__
