"""Session 36: a dense input layer given the embedding role (an MLP classifier's first layer on 784 pixels, a
ViT's patch projection) took a lookup table's init std (1 in the multiplier-free form), so a unit-variance
input of fan-in 784 gave pre-activations 28x too large. The exports now tell a dense or convolutional input
from a lookup table (PyTorch by module class, a JAX tree by its library's leaf name) and scale its std by
fan_in^-1/2 (``theory.groups.dense_input_std``); a lookup table's std is unchanged."""

from __future__ import annotations

import math

import numpy as np
import pytest

import abcscale
from abcscale import torch as abctorch
from abcscale.theory.groups import dense_input_std, is_dense_leaf
from tests.test_exports import _Tensor

W = 256


def _plain():
    return abcscale.recommend("mup", "adam", width=W, base_width=64, beta=3e-3, form="multiplier_free").groups


class _Module:  # the class names abcscale.torch reads (PyTorch itself is not needed)
    def __init__(self, *shape, bias=True):
        self.weight = _Tensor(*shape)
        self.bias = _Tensor(shape[0]) if bias else None

    def named_parameters(self, recurse=False):
        return iter([(k, v) for k, v in (("weight", self.weight), ("bias", self.bias)) if v is not None])


class Linear(_Module):
    pass


class _ConvNd(_Module):
    pass


class Conv2d(_ConvNd):
    pass


class Embedding(_Module):
    def __init__(self, *shape):
        super().__init__(*shape, bias=False)


class _Net:
    def __init__(self, **modules):
        self.modules = modules

    def named_modules(self):
        return iter([("", self), *self.modules.items()])

    def named_parameters(self, recurse=True, remove_duplicate=True):
        if not recurse:
            return iter([])
        return iter([(f"{m}.{k}", p) for m, mod in self.modules.items() for k, p in mod.named_parameters()])


def test_an_mlp_classifiers_dense_input_takes_its_fan_in():
    spec = _plain()
    net = _Net(fc1=Linear(W, 784), fc2=Linear(W, W), fc3=Linear(10, W))
    rules = [("fc1", "embedding"), ("fc3", "readout")]
    drawn = abctorch.init_(net, spec, rules=rules)
    assert drawn["fc1.weight"] == pytest.approx(spec.init_std("embedding") / 28)
    assert drawn["fc2.weight"] == pytest.approx(spec.init_std("hidden"))
    assert drawn["fc3.weight"] == pytest.approx(spec.init_std("readout"))
    assert net.modules["fc1"].weight.drawn == (0.0, drawn["fc1.weight"])


def test_a_lookup_table_keeps_the_embeddings_std():
    spec = _plain()
    net = _Net(wte=Embedding(512, W), fc=Linear(W, W), head=Linear(512, W, bias=False))
    drawn = abctorch.init_(net, spec, rules=[("head", "readout")])
    assert drawn["wte.weight"] == spec.init_std("embedding")


def test_a_patch_projection_takes_channels_times_kernel():
    spec = _plain()
    net = _Net(patch_embed=Conv2d(W, 3, 16, 16), fc=Linear(W, W), head=Linear(1000, W))
    drawn = abctorch.init_(net, spec, rules=[("patch_embed", "embedding"), ("head", "readout")])
    assert drawn["patch_embed.weight"] == pytest.approx(spec.init_std("embedding") / math.sqrt(3 * 16 * 16))
    assert "patch_embed.bias" not in drawn  # a vector keeps its own init


def test_dense_input_std_reads_the_fan_in_of_each_layout():
    assert dense_input_std(1.0, (W, 784), "torch") == pytest.approx(1 / 28)
    assert dense_input_std(2.0, (784, W), "jax") == pytest.approx(2 / 28)
    assert dense_input_std(1.0, (16, 16, 3, W), "jax") == pytest.approx(1 / math.sqrt(768))
    with pytest.raises(ValueError, match="2 or more axes"):
        dense_input_std(1.0, (W,))


@pytest.mark.parametrize("name, dense", [
    ("params/Dense_0/kernel", True), ("params/Conv_0/kernel", True), ("mlp/~/linear_0/w", True),
    ("params/Embed_0/embedding", False), ("embed/embeddings", False), ("layers/0/weight", False),
    ("wte", False),
])
def test_jax_leaves_are_dense_by_their_librarys_name(name, dense):
    assert is_dense_leaf(name) is dense


def test_the_optax_export_scales_a_flax_dense_input():
    pytest.importorskip("jax")
    from abcscale import optax as abcoptax

    spec = _plain()
    params = {"params": {"Dense_0": {"kernel": np.zeros((784, W), np.float32), "bias": np.zeros(W, np.float32)},
                         "Dense_1": {"kernel": np.zeros((W, W), np.float32)},
                         "Dense_2": {"kernel": np.zeros((W, 10), np.float32)}}}
    rules = [("Dense_0", "embedding"), ("Dense_2", "readout")]
    stds = abcoptax.init_std_tree(spec, params, rules=rules)["params"]
    assert stds["Dense_0"]["kernel"] == pytest.approx(spec.init_std("embedding") / 28)
    assert stds["Dense_1"]["kernel"] == pytest.approx(spec.init_std("hidden"))
    import jax

    drawn = abcoptax.init(spec, params, jax.random.key(0), rules=rules)["params"]["Dense_0"]["kernel"]
    assert float(np.std(np.asarray(drawn))) == pytest.approx(spec.init_std("embedding") / 28, rel=0.02)
    # a flax Embed table is a lookup: its std is the role's
    table = {"params": {"Embed_0": {"embedding": np.zeros((512, W), np.float32)},
                        "Dense_1": {"kernel": np.zeros((W, W), np.float32)},
                        "lm_head": {"kernel": np.zeros((W, 512), np.float32)}}}
    assert abcoptax.init_std_tree(spec, table)["params"]["Embed_0"]["embedding"] == spec.init_std("embedding")


# The top-level fixed-axis check missed a 10-class head at width 640 (a divisor) and 784 inputs at width 512 (larger
# than the width): both were trained as hidden matrices. An axis no other matrix of the model shares is refused.
@pytest.mark.parametrize("width, shapes, lone", [
    (640, {"fc1.weight": (640, 640), "fc1.bias": (640,), "fc2.weight": (10, 640)}, 10),
    (512, {"fc1.weight": (512, 784), "fc2.weight": (512, 512), "fc3": (512, 512)}, 784),
    (512, {"w1": (784, 512), "w2": (512, 512)}, 784),  # jax layout, the same by shape
])
def test_a_top_level_mlp_axis_shared_by_no_other_matrix_asks_for_its_role(width, shapes, lone):
    from tests.test_exports import _Model

    spec = abcscale.recommend("mup", "adam", width=width, base_width=64, beta=3e-3, form="multiplier_free").groups
    with pytest.raises(ValueError, match=rf"its axis of {lone} is shared with no other matrix.*add a rule"):
        abctorch.init_(_Model(shapes), spec)
    name = next(n for n, s in shapes.items() if lone in s)
    role = "embedding" if name in ("fc1.weight", "w1") else "readout"
    assert abctorch.init_(_Model(shapes), spec, rules=[(name.split(".")[0], role)])  # a rule places it


@pytest.mark.parametrize("shapes", [
    {"fc1.weight": (2560, 640), "fc2.weight": (640, 2560)},                     # a 4x MLP at the top level
    {"w1": (1760, 640), "w3": (1760, 640), "w2": (640, 1760)},                  # SwiGLU's 2.75x
    {"h.0.mlp.fc1.weight": (640, 784), "h.0.mlp.fc2.weight": (10, 640)},        # inside a block: the block's
])
def test_mlp_expansions_and_block_matrices_stay_hidden(shapes):
    from tests.test_exports import _Model

    spec = abcscale.recommend("mup", "adam", width=640, base_width=64, beta=3e-3, form="multiplier_free").groups
    groups = abctorch.param_groups(_Model(shapes), spec)
    assert {g["name"].split()[0] for g in groups} == {"hidden"}


def test_a_users_hidden_rule_is_not_second_guessed():
    from tests.test_exports import _Model

    spec = abcscale.recommend("mup", "adam", width=512, base_width=64, beta=3e-3, form="multiplier_free").groups
    shapes = {"fc1.weight": (512, 784), "fc2.weight": (512, 512)}
    assert abctorch.init_(_Model(shapes), spec, rules=[("fc1", "hidden")])["fc1.weight"] > 0
