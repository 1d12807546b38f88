"""Session 48: a vision engineer's review of the exports (helper), without PyTorch: module classes read by name.
A ConvTranspose2d input layer took an init std shrinking with the width (its [in, out, k, k] read as a Conv's),
a grouped conv was told it was 16 wide, a depthwise one had no role, an MLP's input on 3 x 1024 pixels trained as
a hidden matrix at width 1024, a cls token [1, 1, D] had no role. tests/torch/test_review_s48.py runs the same on
real PyTorch."""

from __future__ import annotations

import pytest

import abcscale
from abcscale import torch as abctorch
from tests.test_exports import _Tensor
from tests.test_exports_review_s36 import Linear, _ConvNd, _Module, _Net

BASE = 64


def _spec(width, optimizer="adam"):
    return abcscale.recommend("mup", optimizer, width=width, base_width=BASE, beta=1e-3, form="multiplier_free").groups


class Conv2d(_ConvNd):
    def __init__(self, out, cin, k, groups=1):
        super().__init__(out, cin // groups, k, k)
        self.groups = groups


class _ConvTransposeNd(_ConvNd):
    pass


class ConvTranspose2d(_ConvTransposeNd):
    def __init__(self, cin, out, k, groups=1):
        _Module.__init__(self, cin, out // groups, k, k)
        self.bias = _Tensor(out)
        self.groups = groups


def _roles(net, spec, **kw):
    names = {id(p): n for n, p in net.named_parameters()}
    return {names[id(p)]: g["name"] for g in abctorch.param_groups(net, spec, **kw) for p in g["params"]}


@pytest.mark.parametrize("width", [BASE, 1024])
def test_a_transposed_conv_input_layer_keeps_its_init_across_widths(width):
    """A decoder's first layer from a 16-channel latent: fan-in 16 x 3 x 3 at every width (it was width x 9)."""
    net = _Net(up=ConvTranspose2d(16, width, 3), mix=Conv2d(width, width, 3), head=Linear(10, width))
    drawn = abctorch.init_(net, _spec(width), rules={"up": "embedding"})
    assert drawn["up.weight"] == pytest.approx((16 * 9) ** -0.5)
    assert drawn["mix.weight"] == pytest.approx(_spec(width)["hidden"].init_std / 3)  # fan-in 9 x width


def test_a_transposed_conv_can_be_hidden():
    w = 256
    net = _Net(inp=Conv2d(w, 3, 3), up=ConvTranspose2d(w, w, 4), head=Linear(10, w))
    assert _roles(net, _spec(w), rules={"inp": "embedding"})["up.weight"] == "hidden (fan-in 16x width)"


def test_a_grouped_conv_is_read_over_its_groups_and_a_depthwise_one_is_vector_like():
    w = 64
    net = _Net(inp=Conv2d(w, 3, 3), grouped=Conv2d(w, w, 3, groups=4), dw=Conv2d(w, w, 3, groups=w),
               head=Linear(10, w))
    # a grouped conv's role is the user's to say (a code review: a fixed group width makes it input-like)
    with pytest.raises(ValueError, match=r"'grouped.weight' \[64, 16, 3, 3\]: a grouped convolution \(4 groups\)"):
        _roles(net, _spec(w), rules={"inp": "embedding"})
    rules = {"inp": "embedding", "grouped": "hidden"}
    roles = _roles(net, _spec(w), rules=rules)
    assert roles["grouped.weight"] == "hidden (fan-in 2.25x width)"  # 16 inputs a group x 9 = 144 = 2.25 x 64
    assert roles["dw.weight"] == "vector"  # one input channel a group: [n, 1, 3, 3], as microsoft/mup reads it
    drawn = abctorch.init_(net, _spec(w), rules=rules)
    assert drawn["grouped.weight"] == pytest.approx(_spec(w)["hidden"].init_std / 2.25**0.5)
    assert "dw.weight" not in drawn  # a vector-like parameter keeps its init


def test_an_mlp_input_of_a_multiple_of_the_width_is_not_taken_for_hidden():
    """CIFAR-10 pixels, 3072 = 3 x 1024: an unnamed `0.weight` [1024, 3072] trained as a hidden matrix of fan-in 3x
    (128x too small an LR under Adam), while at the base width 64 (3072 = 48 x 64) it was an error: the axis of
    3072 is in no other matrix (an MLP's expansion is in its up and its down projection)."""
    net = _Net(**{"0": Linear(1024, 3072), "2": Linear(1024, 1024), "4": Linear(10, 1024)})
    with pytest.raises(ValueError, match=r"'0.weight' \[1024, 3072\].*3072.*no other matrix"):
        _roles(net, _spec(1024), rules={r"^4\.": "readout"})
    roles = _roles(net, _spec(1024), rules={r"^4\.": "readout", r"^0\.": "embedding"})
    assert roles["0.weight"] == "embedding" and roles["2.weight"] == "hidden"


def test_a_token_of_one_width_sized_axis_is_vector_like():
    """A ViT's cls token [1, 1, D]: one width-sized axis (microsoft/mup's vector-like); it asked for a rule."""
    w = 64
    net = _Net(patch=Conv2d(w, 3, 4), blk=Linear(w, w), head=Linear(10, w))
    token = _Tensor(1, 1, w)
    net.modules[""] = type("Root", (), {"named_parameters": lambda self, recurse=False: iter(
        [("cls_token", token)])})()
    roles = _roles(net, _spec(w), rules={"patch": "embedding"})
    assert roles[".cls_token"] == "vector"


def test_a_flax_conv_kernels_fan_in_holds_its_kernel():
    """flax's Conv kernel [3, 3, n, n]: one output sums 9 n inputs; the optax export gave it 1/sqrt(n), 3x too
    large (the PyTorch export had it right)."""
    jnp = pytest.importorskip("jax.numpy")
    from abcscale import optax as abcoptax

    for w in (BASE, 1024):
        spec = _spec(w)
        tree = {"params": {"Conv_0": {"kernel": jnp.zeros((3, 3, 3, w))}, "Conv_1": {"kernel": jnp.zeros((3, 3, w, w))},
                           "Dense_0": {"kernel": jnp.zeros((w, 10)), "bias": jnp.zeros(10)}}}
        stds = abcoptax.init_std_tree(spec, tree, rules=[("Conv_0", "embedding"), ("Dense_0", "readout")])["params"]
        assert stds["Conv_1"]["kernel"] == pytest.approx(spec["hidden"].init_std / 3)  # fan-in 9 x width
        assert stds["Conv_0"]["kernel"] == pytest.approx(27**-0.5)  # a dense input: 3 x 3 x 3, as before


def test_the_optax_export_applies_sgds_decay_per_group():
    """SGD's L2 term, per group from the spec: each group's first step on a zero gradient shrinks W by lr x wd, the
    base width's lr x wd at every width (one number for every group made the input layer's grow with the width)."""
    jnp = pytest.importorskip("jax.numpy")
    from abcscale import optax as abcoptax

    for w in (BASE, 1024):
        spec = abcscale.recommend("mup", "sgd", width=w, base_width=BASE, beta=0.1, weight_decay=5e-4,
                                  form="multiplier_free").groups
        tree = {"emb": jnp.ones((256, w)), "Dense_0": {"kernel": jnp.ones((w, w))},
                "head": {"kernel": jnp.ones((w, 10)), "bias": jnp.ones(10)}}
        tx = abcoptax.transform(spec, tree, momentum=0.9, rules=[("emb", "embedding")])
        zero = {"emb": jnp.zeros((256, w)), "Dense_0": {"kernel": jnp.zeros((w, w))},
                "head": {"kernel": jnp.zeros((w, 10)), "bias": jnp.zeros(10)}}
        step, _ = tx.update(zero, tx.init(tree), tree)
        for got in (step["emb"], step["Dense_0"]["kernel"], step["head"]["kernel"]):
            assert float(got[0, 0]) == pytest.approx(-0.1 * 5e-4)
        assert float(step["head"]["bias"][0]) == 0.0  # abcscale's recipe decays no bias


def test_every_parameter_that_asks_for_a_role_is_named_at_once():
    """A ViT took three runs, one error each (a review): the first error, and the others by name."""
    w = 64
    net = _Net(patch=Conv2d(w, 3, 4), blk=Linear(w, w), fc=Linear(10, w), classifier=Linear(10, w))
    with pytest.raises(ValueError, match=r"^3 parameters could not be placed: parameter 'patch.weight'.*; parameter "
                                         r"'fc.weight' \[10, 64\].*; parameter 'classifier.weight' \[10, 64\]"):
        _roles(net, _spec(w))


# --- a code review of the above (helper) ----------------------------------------------------------------------------


def test_a_one_output_layer_is_no_token():
    """The token rule read `score.weight` [1, D] (a reward model's head), a value head and a U-Net's 1-class conv as
    vector-like: 128x the readout's LR and no init. They ask for their role, as before; a [1, 1, D] token does not."""
    w = 64
    net = _Net(emb=Linear(w, 784), blk=Linear(w, w), score=Linear(1, w))
    with pytest.raises(ValueError, match=r"'score.weight' \[1, 64\]"):
        _roles(net, _spec(w), rules={"emb": "embedding"})
    assert _roles(net, _spec(w), rules={"emb": "embedding", "score": "readout"})["score.weight"] == "readout"
    assert abcscale.theory.assign("cls_token", (1, 1, w), w)[0].value == "vector"
    jnp = pytest.importorskip("jax.numpy")
    from abcscale import optax as abcoptax

    tree = {"params": {"Embed_0": {"embedding": jnp.zeros((256, w))}, "Dense_0": {"kernel": jnp.zeros((w, w))},
                       "value_head": {"kernel": jnp.zeros((w, 1)), "bias": jnp.zeros(1)}}}
    with pytest.raises(ValueError, match="value_head/kernel"):
        abcoptax.labels(_spec(w), tree)


def test_a_depthwise_conv_on_fixed_channels_is_fixed():
    w = 64
    net = _Net(blur=Conv2d(3, 3, 5, groups=3), inp=Conv2d(w, 3, 3), head=Linear(10, w))
    assert _roles(net, _spec(w), rules={"inp": "embedding"})["blur.weight"] == "fixed"


def test_a_strided_transposed_convs_fan_in_counts_the_taps_an_output_takes():
    """A U-Net's k = 2, s = 2 upsampling: each output takes one tap of each kernel axis (its std was 2x too small)."""
    w = 64
    up = ConvTranspose2d(16, w, 2)
    up.stride = (2, 2)
    net = _Net(up=up, mix=Conv2d(w, w, 3), head=Linear(10, w))
    assert abctorch.init_(net, _spec(w), rules={"up": "embedding"})["up.weight"] == pytest.approx(16**-0.5)


def test_a_flax_kernel_is_a_conv_by_its_own_module_only():
    jnp = pytest.importorskip("jax.numpy")
    from abcscale import optax as abcoptax

    w = 64
    tree = {"params": {"Conv_0": {"kernel": jnp.zeros((3, 3, 3, w))},
                       "convnext_stage": {"Dense_0": {"kernel": jnp.zeros((2, w, 4 * w))},
                                          "Dense_1": {"kernel": jnp.zeros((2, 4 * w, w))}},
                       "Dense_9": {"kernel": jnp.zeros((w, 10))}}}
    stds = abcoptax.init_std_tree(_spec(w), tree, rules=[("Conv_0", "embedding"), ("Dense_9", "readout")])["params"]
    assert stds["convnext_stage"]["Dense_0"]["kernel"] == pytest.approx(_spec(w)["hidden"].init_std)


def test_a_lone_fan_out_is_a_fused_projection_not_an_input():
    """The lone-axis rule refused a TransformerEncoderLayer's in_proj_weight [3D, D] and a CNN's channel-expanding
    conv: only a shape-guessed matrix's fan-in is asked about (the pixels), not its fan-out."""
    w = 512
    placed = [("layer.self_attn.in_proj_weight", (3 * w, w), abcscale.Role.hidden),
              ("layer.self_attn.out_proj.weight", (w, w), abcscale.Role.hidden)]
    abcscale.theory.groups.check_width(placed, w, "torch", abcscale.theory.DEFAULT_RULES)
    pixels = [("0.weight", (w, 3 * w), abcscale.Role.hidden), ("2.weight", (w, w), abcscale.Role.hidden)]
    with pytest.raises(ValueError, match="axis of 1536 is shared with no other matrix"):
        abcscale.theory.groups.check_width(pixels, w, "torch", abcscale.theory.DEFAULT_RULES)


def test_a_width_mismatch_leads_the_refusal_and_other_reasons_follow():
    m = 96  # a model 96 wide, given a spec for 64
    net = _Net(stem=Conv2d(m, 3, 3), **{f"b{i}": Linear(m, m) for i in range(3)}, head=Linear(10, m))
    with pytest.raises(ValueError) as exc:
        _roles(net, _spec(64))
    said = str(exc.value)
    assert said.index("width 96") < said.index("'stem.weight'") and "2 more matrices read as that width" in said


def test_sgd_groups_take_a_zero_weight_decay_and_convert_says_no_decay_mode():
    w = 64
    net = _Net(emb=Linear(w, 784), blk=Linear(w, w), head=Linear(10, w))
    sgd = _spec(w, "sgd")
    assert abctorch.param_groups(net, sgd, rules={"emb": "embedding"}, weight_decay=0.0)
    from abcscale.schemas.api import ConvertRequest
    from abcscale.usecases.convert import convert_setting

    out = convert_setting(ConvertRequest(optimizer="sgd", source="mup", target="sp", width=1024, base_width=64))
    assert out.weight_decay_mode is None
