"""A JAX user's review of the optax export (session 52), on the trees flax, haiku and equinox make.

Before: a rule written as the export names leaves (``params/Dense_0/kernel``) matched nothing, silently (the input
layer trained as hidden, its LR 32x too small); flax's own attention ([D, heads, head_dim] kernels), every equinox
conv ([out, in, k, k]), an ``nn.scan`` stack's gains and biases ([depth, D]) and a flax depthwise conv ([k, k, 1,
C]) were refused with advice that did not apply ("a hidden matrix's shape for width 4", "an embedding and a readout
look alike"); a tied model (flax's ``Embed.attend``) was not warned of its logits' multiplier; a strided transposed
conv's fan-in could not be given; a layout typo was said once per leaf and a forgotten ``layout="torch"`` was told
to recommend at the vocabulary's width.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import pytest

import abcscale
from abcscale import optax as abcoptax
from abcscale.runner import export

D, V = 256, 1000


@pytest.fixture(scope="module")
def spec():
    return abcscale.recommend("mup", "adam", width=D, base_width=64, beta=1e-3, form="multiplier_free").groups


def _flat(tree) -> dict:
    return {"/".join(export._key(k) for k in path): v for path, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def test_a_rule_written_with_slashes_names_the_leaf(spec):
    tree = {"params": {"Dense_0": {"kernel": jnp.zeros((D, D))}, "Dense_1": {"kernel": jnp.zeros((D, D))},
                       "lm_head": {"kernel": jnp.zeros((D, V))}}}
    labels = _flat(_quiet(abcoptax.labels, spec, tree, rules=[("params/Dense_0/kernel", "embedding")]))
    assert labels["params/Dense_0/kernel"] == "embedding" and labels["params/Dense_1/kernel"] == "hidden"
    lrs = _flat(_quiet(abcoptax.lr_tree, spec, tree, rules=[("params/Dense_0/kernel", "embedding")]))
    assert lrs["params/Dense_0/kernel"] == spec["embedding"].lr == 32 * lrs["params/Dense_1/kernel"]
    # an escaped slash is a slash too; the dotted form keeps working
    for pattern in (r"params\/Dense_0\/kernel", r"Dense_0\.kernel"):
        assert _flat(_quiet(abcoptax.labels, spec, tree, rules=[(pattern, "embedding")]))["params/Dense_0/kernel"] \
            == "embedding"


def _flax_transformer():
    return {"params": {
        "Embed_0": {"embedding": jnp.zeros((V, D))},
        "attn": {**{k: {"kernel": jnp.zeros((D, 4, 64)), "bias": jnp.zeros((4, 64))}
                    for k in ("query", "key", "value")},
                 "out": {"kernel": jnp.zeros((4, 64, D)), "bias": jnp.zeros((D,))}},
        "ScanBlock_0": {"LayerNorm_0": {"scale": jnp.ones((3, D)), "bias": jnp.zeros((3, D))},
                        "Dense_0": {"kernel": jnp.zeros((3, D, 4 * D)), "bias": jnp.zeros((3, 4 * D))}},
        "lm_head": {"kernel": jnp.zeros((D, V))}}}


def test_flax_attention_and_scan_stacks_are_placed(spec):
    tree = _flax_transformer()
    labels, stds = _flat(abcoptax.labels(spec, tree)), _flat(abcoptax.init_std_tree(spec, tree))
    for k in ("query", "key", "value", "out"):  # [D, heads x head_dim] either way: fan-in D or heads x head_dim = D
        assert labels[f"params/attn/{k}/kernel"] == "hidden" and stds[f"params/attn/{k}/kernel"] == D ** -0.5
        assert labels[f"params/attn/{k}/bias"] == "vector"
    for k in ("LayerNorm_0/scale", "LayerNorm_0/bias", "Dense_0/bias"):  # [depth, D] stacks of vectors
        assert labels[f"params/ScanBlock_0/{k}"] == "vector" and f"params/ScanBlock_0/{k}" not in stds  # None: kept
    assert labels["params/ScanBlock_0/Dense_0/kernel"] == "hidden"


def test_depthwise_and_equinox_convs_are_placed(spec):
    flax = {"Conv_0": {"kernel": jnp.zeros((3, 3, D, D))}, "Conv_1": {"kernel": jnp.zeros((3, 3, 1, D))},
            "Conv_2": {"kernel": jnp.zeros((3, 3, 1, 3))}}
    labels, stds = _flat(abcoptax.labels(spec, flax)), _flat(abcoptax.init_std_tree(spec, flax))
    assert labels == {"Conv_0/kernel": "hidden", "Conv_1/kernel": "vector", "Conv_2/kernel": "fixed"}
    assert stds["Conv_0/kernel"] == pytest.approx((9 * D) ** -0.5)
    # a rule still says otherwise where the user means it (a one-channel stem is no depthwise conv)
    assert _flat(abcoptax.labels(spec, flax, rules=[("Conv_1", "hidden")]))["Conv_1/kernel"] == "hidden"
    eqx = {"emb": {"weight": jnp.zeros((V, D))}, "conv": {"weight": jnp.zeros((D, D, 3, 3)),
                                                         "bias": jnp.zeros((D, 1, 1))},
           "dw": {"weight": jnp.zeros((D, 1, 3, 3))}, "head": {"weight": jnp.zeros((V, D))}}
    rules = [("emb", "embedding"), ("head", "readout")]
    labels = _flat(abcoptax.labels(spec, eqx, layout="torch", rules=rules))
    stds = _flat(abcoptax.init_std_tree(spec, eqx, layout="torch", rules=rules))
    assert labels == {"conv/bias": "vector", "conv/weight": "hidden", "dw/weight": "vector",
                      "emb/weight": "embedding", "head/weight": "readout"}
    assert stds["conv/weight"] == pytest.approx((9 * D) ** -0.5)


def test_muon_orthogonalises_an_equinox_conv_as_one_out_by_in_kernel_matrix():
    dims = export._muon_dims("conv/weight", (D, D, 3, 3), "torch", D)
    assert dims.reduction_axis == (1, 2, 3) and dims.output_axis == 0
    stack = export._muon_dims("blocks/weight", (3, D, D), "torch", D)  # a stack [depth, out, in]: per layer
    assert stack.reduction_axis == 2 and stack.output_axis == 1


def test_a_transposed_conv_is_warned_and_its_fan_in_can_be_given(spec):
    tree = {"ConvTranspose_0": {"kernel": jnp.zeros((2, 2, D, D))}}
    with pytest.warns(UserWarning, match=r"ConvTranspose_0/kernel: a transposed convolution.*fan_in="):
        assert _flat(abcoptax.init_std_tree(spec, tree))["ConvTranspose_0/kernel"] == (4 * D) ** -0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # given, nothing to say
        std = _flat(abcoptax.init_std_tree(spec, tree, fan_in={"ConvTranspose_0/kernel": D}))
    assert std["ConvTranspose_0/kernel"] == D ** -0.5  # k = 2, stride 2: one tap per axis
    drawn = abcoptax.init(spec, tree, jax.random.key(0), fan_in={"ConvTranspose_0/kernel": D})
    assert float(jnp.std(drawn["ConvTranspose_0"]["kernel"])) == pytest.approx(D ** -0.5, rel=0.05)
    with pytest.raises(ValueError, match=r"fan_in: 'ConvTranspose_0' is no leaf.*'ConvTranspose_0/kernel'"):
        abcoptax.labels(spec, tree, fan_in={"ConvTranspose_0": D})
    with pytest.raises(ValueError, match="fan_in: 'ConvTranspose_0/kernel': a positive integer"):
        abcoptax.labels(spec, tree, fan_in={"ConvTranspose_0/kernel": 0})


def test_a_tied_model_is_told_its_logits_multiplier(spec):
    from abcscale.theory.groups import tied_readout_multiplier

    tree = {"Embed_0": {"embedding": jnp.zeros((V, D))}, "Dense_0": {"kernel": jnp.zeros((D, D))}}
    with pytest.warns(UserWarning, match=f"no readout.*multiply them by {tied_readout_multiplier(spec):.6g}"):
        abcoptax.transform(spec, tree)


def test_layouts_are_checked_once_and_a_flipped_one_is_named(spec):
    tree = {"emb": {"weight": jnp.zeros((V, D))}, "l1": {"weight": jnp.zeros((4 * D, D))},
            "l2": {"weight": jnp.zeros((D, 4 * D))}, "head": {"weight": jnp.zeros((V, D))}}
    with pytest.raises(ValueError, match=r"^layout: must be 'jax' .* or 'torch' .*, got 'pytorch'$"):
        abcoptax.labels(spec, tree, layout="pytorch")
    with pytest.raises(ValueError, match=r"recommend at the model's width \(width=1000\); or the weights are stored "
                                         r"\[out, in\] \(equinox, a torch port\): pass layout='torch'"):
        abcoptax.labels(spec, tree, rules=[("emb", "embedding"), ("head", "readout")])


def test_a_user_models_per_head_bias_is_vector_like_and_starts_at_zeros():
    """The runner's user models read the same rule (theory.groups.gain_or_bias): a [heads, head_dim] bias is
    vector-like and starts as its rows would (zeros), not drawn normal with a vector's missing std."""
    from abcscale.runner.user import UserModel, layout
    from abcscale.schemas.groups import SPEC_ROLES, Role

    model = UserModel(shapes={"embed": (V, D), "attn/query/bias": (4, 64), "attn/ln/scale": (4, 64),
                              "lm_head": (D, V)}, apply=lambda *a: None, roles={"embed": "embedding"})
    specs = layout(model, D)
    assert SPEC_ROLES[specs["attn/query/bias"].layer] is Role.vector and specs["attn/query/bias"].init == "zeros"
    assert specs["attn/ln/scale"].init == "ones"
