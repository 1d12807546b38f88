"""Session 67's review of the PyTorch path (muP, width 256 over 64, the plain form), through abcscale.torch:

1. a norm before a readout of a wider fan-in (ConvNeXt's head.norm over 8D, a final LayerNorm(2D) before a head
   Linear(2D, 10)) was `fixed`: lr 0.1 where the vector role's (and MuSGD's) is 0.4, Adam's eps 1e-8 for 2.5e-9;
2. a bare logits bias beside an nn.Linear readout (`logits_bias` [V]) stayed vector-like, its SGD LR grown 4x;
3. MLP-Mixer's token-mixing MLP trained as hidden matrices whose fan-in ratios change with the width;
4. a bare readout stored [in, out] (U [D, V], logits = h @ U) could not be placed: fan_in={'U': D} did not say its
   orientation, the error said "pass layout='jax'" (no such option) and param_groups(layout='jax') put `layout` in
   every group;
5. refusals offered bare tables the readout's role; a model with three readouts went unsaid;
   and a bare hidden W1 [D, 4D] used as x @ W1 took its fan-in from the wrong axis, unsaid.
"""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import abcscale  # noqa: E402
from abcscale import torch as abctorch  # noqa: E402

D, V = 256, 1000


def _spec(optimizer: str = "sgd", width: int = D, beta: float = 0.1):
    return abcscale.recommend("mup", optimizer, width=width, base_width=64, beta=beta, form="multiplier_free").groups


def _groups(model: nn.Module, spec, **kw) -> dict[str, dict]:
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: g for g in abctorch.param_groups(model, spec, **kw) for p in g["params"]}


class _HeadNorm(nn.Module):
    """A final LayerNorm over 2D features, then the classifier (timm's ConvNeXt: head.norm over 8D, head.fc)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, n)
        self.up = nn.Linear(n, 2 * n)
        self.final_norm = nn.LayerNorm(2 * n)
        self.head = nn.Linear(2 * n, 10)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_norm_over_the_readouts_fan_in_is_vector_like(optimizer):
    spec = _spec(optimizer)
    groups = _groups(_HeadNorm(D), spec)
    for name in ("final_norm.weight", "final_norm.bias"):
        assert groups[name]["name"] == "vector"
        assert groups[name]["lr"] == pytest.approx(spec["vector"].lr)  # MuSGD's 0.4 under SGD, not 0.1
        if optimizer == "adam":
            assert groups[name]["eps"] == pytest.approx(spec["vector"].epsilon)  # 2.5e-9, not the base 1e-8
    assert groups["head.bias"]["name"] == "fixed"


class _LM(nn.Module):
    def __init__(self, n: int, bias: str) -> None:
        super().__init__()
        self.wte = nn.Embedding(V, n)
        self.mlp = nn.Sequential(nn.Linear(n, 4 * n), nn.GELU(), nn.Linear(4 * n, n))
        self.ln_f = nn.LayerNorm(n)
        self.lm_head = nn.Linear(n, V, bias=False)
        setattr(self, bias, nn.Parameter(torch.zeros(V)))


@pytest.mark.parametrize("bias", ["logits_bias", "logit_bias", "output_bias"])
def test_a_bare_logits_bias_is_fixed(bias):
    spec = _spec("sgd")
    groups = _groups(_LM(D, bias), spec)
    assert groups[bias]["name"] == "fixed" and groups[bias]["lr"] == pytest.approx(0.1)
    assert groups["ln_f.weight"]["name"] == "vector" and groups["ln_f.weight"]["lr"] == pytest.approx(0.4)


class _Mlp(nn.Module):
    def __init__(self, a: int, b: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(a, b), nn.Linear(b, a)


class _MixerBlock(nn.Module):
    def __init__(self, n: int, patches: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(n), nn.LayerNorm(n)
        self.mlp_tokens = _Mlp(patches, n // 2)  # over the patches (applied to x.transpose(1, 2))
        self.mlp_channels = _Mlp(n, 4 * n)


class _Mixer(nn.Module):
    """timm's MlpMixer's parameters and names: a conv stem over 8x8 patches of a 64x64 image (64 patches)."""

    def __init__(self, n: int, patches: int = 64, blocks: int = 2) -> None:
        super().__init__()
        self.stem = nn.Module()
        self.stem.proj = nn.Conv2d(3, n, 8, stride=8)
        self.blocks = nn.ModuleList([_MixerBlock(n, patches) for _ in range(blocks)])
        self.norm = nn.LayerNorm(n)
        self.head = nn.Linear(n, 10)


_STEM = (r"^stem\.proj\.weight$", "embedding")
_TOKENS = [(r"^blocks\.\d+\.mlp_tokens\.fc1\.weight$", "embedding"),
           (r"^blocks\.\d+\.mlp_tokens\.fc2\.weight$", "readout")]


def test_mlp_mixers_token_mixing_is_not_trained_as_hidden_matrices():
    spec = _spec("adam", beta=1e-3)
    with pytest.raises(ValueError) as exc:
        abctorch.param_groups(_Mixer(D), spec, rules=[_STEM])
    said = str(exc.value)
    assert all(rule in said for rule, _ in _TOKENS) and "'embedding'" in said and "'readout'" in said
    # the rules it offers: fc1 an input layer (its fan-in the 64 patches), fc2 an output layer, its bias fixed
    m = _Mixer(D)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "several readouts": the blocks' own are not counted
        groups = _groups(m, spec, rules=[_STEM, *_TOKENS])
        drawn = abctorch.init_(m, spec, rules=[_STEM, *_TOKENS])
    assert groups["blocks.0.mlp_tokens.fc1.weight"]["lr"] == pytest.approx(spec["embedding"].lr)
    assert drawn["blocks.0.mlp_tokens.fc1.weight"] == pytest.approx(spec.init_std("embedding", 1.0) / 8)  # 64^-1/2
    assert groups["blocks.1.mlp_tokens.fc2.weight"]["lr"] == pytest.approx(spec["readout"].lr)
    assert groups["blocks.0.mlp_tokens.fc2.bias"]["name"] == "fixed"
    assert groups["blocks.0.mlp_channels.fc1.weight"]["name"] == "hidden"
    # at the width of the patches the shapes read as a block MLP's; the module names say it (session 68): the same
    # rules must be given there
    abctorch.param_groups(_Mixer(64), _spec("adam", width=64, beta=1e-3), rules=[_STEM, *_TOKENS])
    with pytest.raises(ValueError, match="mlp_tokens"):
        abctorch.param_groups(_Mixer(64), _spec("adam", width=64, beta=1e-3), rules=[_STEM])


class _Odd(nn.Module):
    """Bare parameters: a table E [V, D], positions P [T, D], one block, a readout U stored [in, out] (h @ U)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.E = nn.Parameter(torch.randn(V, n))
        self.P = nn.Parameter(torch.zeros(64, n))
        self.layers = nn.ModuleList([_Mlp(n, 4 * n)])
        self.gf = nn.Parameter(torch.ones(n))
        self.U = nn.Parameter(torch.randn(n, V) / n)


_ODD_RULES = [(r"^E$", "embedding"), (r"^P$", "embedding"), (r"^U$", "readout")]


def test_a_bare_readout_stored_in_out_is_placed_by_its_fan_in():
    spec = _spec("adam", beta=1e-3)
    m = _Odd(D)
    with pytest.raises(ValueError) as exc:  # without its fan-in: the option abctorch has, not a layout
        abctorch.param_groups(m, spec, rules=_ODD_RULES)
    assert "fan_in={'U': 256}" in str(exc.value) and "layout=" not in str(exc.value)
    groups = _groups(m, spec, rules=_ODD_RULES, fan_in={"U": D})
    drawn = abctorch.init_(m, spec, rules=_ODD_RULES, fan_in={"U": D})
    assert groups["U"]["name"] == "readout" and groups["U"]["lr"] == pytest.approx(spec["readout"].lr)
    assert drawn["U"] == pytest.approx(spec.init_std("readout", 1.0))
    assert groups["E"]["lr"] == pytest.approx(spec["embedding"].lr)


def test_param_groups_refuses_a_layout():
    with pytest.raises(TypeError, match="fan_in"):
        abctorch.param_groups(_Odd(D), _spec("adam", beta=1e-3), rules=_ODD_RULES, layout="jax")


class _Tables(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.tok = nn.Parameter(torch.randn(V, n))  # used as self.tok[idx]
        self.pe = nn.Parameter(torch.zeros(1, 65, n))  # a ViT's positions
        self.blocks = nn.ModuleList([_Mlp(n, 4 * n)])
        self.lm_head = nn.Linear(n, V)


def test_bare_tables_are_offered_the_embedding_and_three_readouts_are_said():
    spec = _spec("adam", beta=1e-3)
    with pytest.raises(ValueError) as exc:
        abctorch.param_groups(_Tables(D), spec)
    said = str(exc.value)
    assert "(r'^tok$', 'embedding')" in said and "(r'^pe$', 'embedding')" in said
    assert "(r'^tok$', 'readout')" not in said and "(r'^pe$', 'readout')" not in said
    with pytest.warns(UserWarning, match="3 readouts outside the blocks"):
        abctorch.param_groups(_Tables(D), spec, rules=[(r"^tok$", "readout"), (r"^pe$", "readout")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        groups = _groups(_Tables(D), spec, rules=[(r"^tok$", "embedding"), (r"^pe$", "embedding")])
    assert groups["tok"]["name"] == groups["pe"]["name"] == "embedding"


class _InOutBlock(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.W1 = nn.Parameter(torch.randn(n, 4 * n))  # used as x @ W1
        self.W2 = nn.Parameter(torch.randn(4 * n, n))  # used as h @ W2


class _InOut(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.wte = nn.Embedding(V, n)
        self.layers = nn.ModuleList([_InOutBlock(n)])
        self.lm_head = nn.Linear(n, V)


def test_a_bare_hidden_matrix_stored_in_out_is_said():
    spec = _spec("adam", beta=1e-3)
    with pytest.warns(UserWarning, match=r"fan_in=\{'layers.0.W1': 256\}"):
        abctorch.param_groups(_InOut(D), spec)
    # given their fan-ins, nothing to say, and the init stds are a fan-in of D's and of 4D's
    m = _InOut(D)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        drawn = abctorch.init_(m, spec, fan_in={"layers.0.W1": D, "layers.0.W2": 4 * D})
    assert drawn["layers.0.W1"] == pytest.approx(spec.init_std("hidden", 1.0))
    assert drawn["layers.0.W2"] == pytest.approx(spec.init_std("hidden", 4.0))


def test_muon_is_told_of_a_hidden_matrix_whose_fan_in_says_it_is_stored_in_out():
    spec = abcscale.recommend("mup", "muon", width=D, base_width=64, beta=0.02, form="multiplier_free").groups
    with pytest.warns(UserWarning, match=r"layers\.0\.W1.*stored \[in, out\]"):
        abctorch.param_groups(_InOut(D), spec, fan_in={"layers.0.W1": D, "layers.0.W2": 4 * D})
