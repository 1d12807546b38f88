"""Session 68's leftovers of the PyTorch path (muP + Adam, base width 64), through abcscale.torch:

1. MLP-Mixer's token-mixing MLP (over the patches, a size fixed as the width grows) was refused only where the
   patches were no multiple of the width: at 64 patches and width 64, or 256 patches at width 128 or 256, it was
   trained as hidden matrices, unsaid (the up projection's LR 2x low at 128, 4x at 256, for muP's width part);
2. a bare square position table (`pos` [256, 256] at width 256, or `pe` [1, T, D] broadcast over the batch) was
   trained as a hidden matrix, unsaid, where the same table at width 512 was refused (its LR 4x low at 4x the base
   width, its init std 16x small);
3. a bare MoE router [experts, D] (`router`, `gate`) was offered the embedding's role first.
"""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import abcscale  # noqa: E402
from abcscale import torch as abctorch  # noqa: E402


def _spec(width: int):
    return abcscale.recommend("mup", "adam", width=width, base_width=64, beta=1e-3, form="multiplier_free").groups


def _groups(model: nn.Module, spec, **kw) -> dict[str, dict]:
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: g for g in abctorch.param_groups(model, spec, **kw) for p in g["params"]}


class _Mlp(nn.Module):
    def __init__(self, a: int, b: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(a, b), nn.Linear(b, a)


class _MixerBlock(nn.Module):
    def __init__(self, n: int, patches: int, tokens: str) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(n), nn.LayerNorm(n)
        if tokens == "token_mixing":  # an nn.Sequential port (the flax reference's name), 4x the patches inside
            self.token_mixing = nn.Sequential(nn.Linear(patches, 4 * patches), nn.GELU(),
                                              nn.Linear(4 * patches, patches))
        else:
            setattr(self, tokens, _Mlp(patches, n // 2))  # over the patches (applied to x.transpose(1, 2))
        self.mlp_channels = _Mlp(n, 4 * n)


class _Mixer(nn.Module):
    """timm's MlpMixer's parameters and names: a conv stem over 8x8 patches, D/2 token-mixing features."""

    def __init__(self, n: int, patches: int, tokens: str = "mlp_tokens", blocks: int = 2) -> None:
        super().__init__()
        self.stem = nn.Module()
        self.stem.proj = nn.Conv2d(3, n, 8, stride=8)
        self.blocks = nn.ModuleList([_MixerBlock(n, patches, tokens) for _ in range(blocks)])
        self.norm = nn.LayerNorm(n)
        self.head = nn.Linear(n, 10)


_STEM = (r"^stem\.proj\.weight$", "embedding")
_TOKENS = [(r"^blocks\.\d+\.mlp_tokens\.fc1\.weight$", "embedding"),
           (r"^blocks\.\d+\.mlp_tokens\.fc2\.weight$", "readout")]


@pytest.mark.parametrize(("width", "patches"), [(64, 64), (128, 256), (256, 256), (32, 64)])
def test_token_mixing_over_patches_a_multiple_of_the_width_is_asked_for(width, patches):
    spec = _spec(width)
    with pytest.raises(ValueError) as exc:
        abctorch.param_groups(_Mixer(width, patches), spec, rules=[_STEM])
    said = str(exc.value)
    assert all(rule in said for rule, _ in _TOKENS) and "'embedding')" in said and "'readout')" in said
    assert "mlp_channels" not in said  # the channel MLP is over the width: a block's MLP
    # the rules it offers place it, at every width: fc1 an input layer on the patches, fc2 an output layer
    m = _Mixer(width, patches)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        groups = _groups(m, spec, rules=[_STEM, *_TOKENS])
        drawn = abctorch.init_(m, spec, rules=[_STEM, *_TOKENS])
    assert groups["blocks.0.mlp_tokens.fc1.weight"]["lr"] == pytest.approx(spec["embedding"].lr)
    assert drawn["blocks.0.mlp_tokens.fc1.weight"] == pytest.approx(spec.init_std("embedding") * patches ** -0.5)
    assert groups["blocks.1.mlp_tokens.fc2.weight"]["lr"] == pytest.approx(spec["readout"].lr)
    assert groups["blocks.0.mlp_channels.fc1.weight"]["name"] == "hidden"


def test_an_nn_sequential_token_mixer_is_asked_for_by_its_modules_name():
    # [64 -> 256 -> 64] at width 64 reads as a block's 4x MLP: only the module's name says it mixes the patches
    spec = _spec(64)
    with pytest.raises(ValueError) as exc:
        abctorch.param_groups(_Mixer(64, 64, tokens="token_mixing"), spec, rules=[_STEM])
    said = str(exc.value)
    assert r"(r'^blocks\.\d+\.token_mixing\.0\.weight$', 'embedding')" in said
    assert r"(r'^blocks\.\d+\.token_mixing\.2\.weight$', 'readout')" in said


def test_token_mixing_at_two_widths_of_patches_is_asked_for_by_its_shapes():
    # no name says it (`mlp_a`), but 256 patches at width 128 map to 64 and back: an inner size no multiple of the
    # width, which an MLP stored [in, out] ([4D -> D -> 4D]) does not have
    with pytest.raises(ValueError, match=r"over 256 features, not the width 128 \(to 64 and back\)"):
        abctorch.param_groups(_Mixer(128, 256, tokens="mlp_a"), _spec(128), rules=[_STEM])


def test_a_users_hidden_rules_for_token_mixing_are_taken():
    spec = _spec(64)
    hidden = [(rule, "hidden") for rule, _ in _TOKENS]
    groups = _groups(_Mixer(64, 64), spec, rules=[_STEM, *hidden])
    assert groups["blocks.0.mlp_tokens.fc1.weight"]["name"] == "hidden"


def test_timms_mlp_mixer_at_the_patches_width():
    mixer = pytest.importorskip("timm.models.mlp_mixer")
    model = mixer.MlpMixer(num_classes=10, img_size=64, patch_size=8, num_blocks=2, embed_dim=64)  # 64 patches
    with pytest.raises(ValueError, match="named for the tokens"):
        abctorch.param_groups(model, _spec(64), rules=[_STEM])
    groups = _groups(model, _spec(64), rules=[_STEM, *_TOKENS])
    assert groups["blocks.0.mlp_tokens.fc1.weight"]["name"] == "embedding"


class _Bare(nn.Module):
    """A bare position table of the model's own, an nn.Parameter (no nn.Embedding), beside a named table."""

    def __init__(self, n: int, name: str, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.wte = nn.Embedding(1000, n)
        setattr(self, name, nn.Parameter(torch.zeros(*shape)))
        self.layers = nn.ModuleList([_Mlp(n, 4 * n)])
        self.lm_head = nn.Linear(n, 1000, bias=False)


@pytest.mark.parametrize(("name", "shape"), [("pos", (256, 256)), ("pe", (256, 256)), ("pos_table", (1, 256, 256)),
                                             ("pe", (1, 256, 256)), ("absolute_pos", (1, 512, 256))])
def test_a_bare_position_table_a_multiple_of_the_width_is_asked_for(name, shape):
    spec = _spec(256)
    with pytest.raises(ValueError) as exc:
        abctorch.param_groups(_Bare(256, name, shape), spec)
    said = str(exc.value)
    assert f"(r'^{name}$', 'embedding') for a table" in said and f"(r'^{name}$', 'hidden')" in said
    m = _Bare(256, name, shape)
    groups = _groups(m, spec, rules=[(f"^{name}$", "embedding")])
    drawn = abctorch.init_(m, spec, rules=[(f"^{name}$", "embedding")])
    assert groups[name]["lr"] == pytest.approx(spec["embedding"].lr)
    assert drawn[name] == pytest.approx(spec.init_std("embedding"))  # a lookup table's: the std itself


def test_a_bare_square_matrix_of_another_name_stays_hidden():
    groups = _groups(_Bare(256, "W", (256, 256)), _spec(256))
    assert groups["W"]["name"] == "hidden"


class _MoeBlock(nn.Module):
    def __init__(self, n: int, name: str, experts: int = 8) -> None:
        super().__init__()
        setattr(self, name, nn.Parameter(torch.zeros(experts, n)))  # used as F.linear(h, W): the experts' scores
        self.experts = nn.ModuleList([_Mlp(n, 4 * n) for _ in range(experts)])


class _Moe(nn.Module):
    def __init__(self, n: int, name: str) -> None:
        super().__init__()
        self.wte = nn.Embedding(1000, n)
        self.layers = nn.ModuleList([_MoeBlock(n, name) for _ in range(2)])
        self.lm_head = nn.Linear(n, 1000, bias=False)


@pytest.mark.parametrize("name", ["router", "gate", "w_gate"])
def test_a_bare_router_is_offered_the_readouts_role_first(name):
    spec = _spec(256)
    with pytest.raises(ValueError) as exc:
        abctorch.param_groups(_Moe(256, name), spec)
    said = str(exc.value)
    rule = rf"r'^layers\.\d+\.{name}$'"
    readout, embedding = said.find(f"({rule}, 'readout')"), said.find(f"({rule}, 'embedding')")
    assert -1 < readout < embedding and "router" in said
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        groups = _groups(_Moe(256, name), spec, rules=[(rf"^layers\.\d+\.{name}$", "readout")])
    assert groups[f"layers.0.{name}"]["lr"] == pytest.approx(spec["readout"].lr)


def test_a_bare_table_of_another_name_keeps_the_embedding_first_and_names_a_router():
    with pytest.raises(ValueError) as exc:
        abctorch.param_groups(_Bare(256, "W_r", (8, 256)), _spec(256))
    said = str(exc.value)
    assert "(r'^W_r$', 'embedding')" in said and "(r'^W_r$', 'readout')" not in said and "MoE router" in said
