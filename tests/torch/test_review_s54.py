"""TransformerLens and Mamba in the torch export (session 54; the models written by hand with their libraries' names).

Before: TransformerLens's per-head W_Q [heads, d_model, d_head] was "a hidden matrix's shape for width d_head" and
refused with an input layer's role offered; given fan-ins, its W_in [d_model, d_mlp] and W_out [d_mlp, d_model]
(stored [in, out], used as x @ W) took each other's fan-ins, init 2x off at a 4x MLP. Mamba's A_log [d_inner,
d_state] was "a hidden matrix's shape for width 16", and its dt_proj [d_inner, dt_rank] was offered the embedding's
role.
"""

from __future__ import annotations

import math
import warnings

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import abcscale  # noqa: E402
from abcscale import torch as abctorch  # noqa: E402
from abcscale.schemas.groups import Role  # noqa: E402

V, C = 256, 64


def _spec(width: int, optimizer: str = "adam"):
    return abcscale.recommend("mup", optimizer, width=width, base_width=32, beta=1e-3, form="multiplier_free").groups


class _Attention(nn.Module):
    __module__ = "transformer_lens.components.abstract_attention"  # as the library's classes are (by package)

    def __init__(self, d: int, heads: int, d_head: int, kv_heads: int | None = None) -> None:
        super().__init__()
        self.W_Q = nn.Parameter(torch.empty(heads, d, d_head))
        self.W_O = nn.Parameter(torch.empty(heads, d_head, d))
        self.b_Q = nn.Parameter(torch.zeros(heads, d_head))
        self.b_O = nn.Parameter(torch.zeros(d))
        kv, pre = (heads, "") if kv_heads is None else (kv_heads, "_")  # TransformerLens's GQA: _W_K, _W_V
        for name in ("W_K", "W_V"):
            self.register_parameter(pre + name, nn.Parameter(torch.empty(kv, d, d_head)))
            self.register_parameter(pre + "b_" + name[-1], nn.Parameter(torch.zeros(kv, d_head)))


class _MLP(nn.Module):
    __module__ = "transformer_lens.components.mlps.mlp"

    def __init__(self, d: int, m: int, gated: bool = False) -> None:
        super().__init__()
        self.W_in = nn.Parameter(torch.empty(d, m))
        if gated:
            self.W_gate = nn.Parameter(torch.empty(d, m))
        self.b_in = nn.Parameter(torch.zeros(m))
        self.W_out = nn.Parameter(torch.empty(m, d))
        self.b_out = nn.Parameter(torch.zeros(d))


class _LN(nn.Module):
    __module__ = "transformer_lens.components.layer_norm"

    def __init__(self, d: int) -> None:
        super().__init__()
        self.w, self.b = nn.Parameter(torch.ones(d)), nn.Parameter(torch.zeros(d))


class _Own(nn.Module):
    """A module of one's own holding bare parameters (not TransformerLens's)."""

    def __init__(self, **shapes: tuple[int, ...]) -> None:
        super().__init__()
        for name, shape in shapes.items():
            self.register_parameter(name, nn.Parameter(torch.zeros(*shape)))


class _Param(_Own):
    __module__ = "transformer_lens.components.embed"


def hooked_transformer(d: int = 128, heads: int = 8, mlp: int = 4, kv_heads: int | None = None,
                       gated: bool = False) -> nn.Module:
    """HookedTransformer's parameter names and layouts (transformer_lens.components)."""
    blocks = nn.ModuleList([nn.ModuleDict({"ln1": _LN(d), "attn": _Attention(d, heads, d // heads, kv_heads),
                                           "ln2": _LN(d), "mlp": _MLP(d, mlp * d, gated)}) for _ in range(2)])
    return nn.ModuleDict({"embed": _Param(W_E=(V, d)), "pos_embed": _Param(W_pos=(C, d)), "blocks": blocks,
                          "ln_final": _LN(d), "unembed": _Param(W_U=(d, V), b_U=(V,))})


def _roles(model: nn.Module, spec) -> dict[str, str]:
    out = {}
    for g in abctorch.param_groups(model, spec):
        for p in g["params"]:
            out[next(n for n, q in model.named_parameters() if q is p)] = g["name"]
    return out


def test_transformer_lens_roles_and_fan_ins() -> None:
    model, spec = hooked_transformer(), _spec(128)
    roles = _roles(model, spec)
    assert roles["embed.W_E"] == roles["pos_embed.W_pos"] == "embedding"
    for name in ("W_Q", "W_K", "W_V", "W_O"):
        assert roles[f"blocks.0.attn.{name}"] == "hidden", name
    assert roles["blocks.1.mlp.W_in"] == "hidden"
    assert roles["blocks.1.mlp.W_out"] == "hidden (fan-in 4x width)"  # d_mlp inputs, not d_model
    assert roles["blocks.0.attn.b_Q"] == roles["blocks.0.ln1.w"] == roles["blocks.0.mlp.b_in"] == "vector"
    assert roles["unembed.W_U"] == "readout"
    assert roles["unembed.b_U"] == "fixed"


def test_transformer_lens_init_matches_linear_layers() -> None:
    """The init stds are those the same layers get as nn.Linear ([out, in]): the layout is storage only."""
    width = 128
    spec = _spec(width)
    drawn = abctorch.init_(hooked_transformer(width), spec, generator=torch.Generator().manual_seed(0))
    ref = {k: spec.init_std(Role.hidden, ratio) for k, ratio in (("q", 1.0), ("up", 1.0), ("down", 4.0))}
    assert drawn["blocks.0.attn.W_Q"] == pytest.approx(ref["q"])
    assert drawn["blocks.0.attn.W_O"] == pytest.approx(ref["q"])  # heads x d_head = d_model inputs
    assert drawn["blocks.0.mlp.W_in"] == pytest.approx(ref["up"])
    assert drawn["blocks.0.mlp.W_out"] == pytest.approx(ref["down"])
    assert drawn["blocks.0.mlp.W_out"] == pytest.approx(drawn["blocks.0.mlp.W_in"] / 2)  # sqrt(4d / d)


def test_transformer_lens_gqa_and_gated_mlp() -> None:
    """GQA's _W_K [kv_heads, d_model, d_head] ([kv x d_head, d_model] is no multiple of the width) and W_gate."""
    model = hooked_transformer(kv_heads=2, gated=True)
    roles = _roles(model, _spec(128))
    assert roles["blocks.0.attn._W_K"] == roles["blocks.0.attn._W_V"] == "hidden"
    assert roles["blocks.0.attn._b_K"] == "vector"
    assert roles["blocks.0.mlp.W_gate"] == "hidden"


def test_transformer_lens_no_stack_warning_and_muon_says_whole_matrix() -> None:
    model = hooked_transformer()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        abctorch.param_groups(model, _spec(128))
    assert not [w for w in caught if "stacks of matrices" in str(w.message)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        groups = abctorch.param_groups(model, _spec(128, "muon"))
    said = " ".join(str(w.message) for w in caught)
    assert "TransformerLens's per-head" in said and "each matrix of the stack orthogonalised alone" not in said
    assert any(g["use_muon"] for g in groups)


def test_transformer_lens_width_check_reads_its_layout() -> None:
    """A spec for another width is still caught, naming the shapes as stored (it showed W_Q's view, [256, 256], for
    a tensor [8, 256, 32]: a code review)."""
    with pytest.raises(ValueError, match="width") as err:
        abctorch.param_groups(hooked_transformer(256), _spec(128))
    assert "[256, 256]" not in str(err.value).replace("(read as [out, in] = [256, 256])", "")


def test_transformer_lens_muon_shape_factor_of_in_out_matrices() -> None:
    """torch.optim.Muon's shape factor reads [out, in]: W_in stored [D, 4D] got W_out's, unsaid (a code review)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        abctorch.param_groups(hooked_transformer(), _spec(128, "muon"))
    said = [str(w.message) for w in caught if "stored [in, out]" in str(w.message)]
    assert said and "blocks.0.mlp.W_in" in said[0] and "wrong way round" in said[0]


def test_tl_names_in_models_of_ones_own_keep_their_reading() -> None:
    """The names alone are no TransformerLens (a code review: each was misread, unsaid): a per-head model stored
    [heads, out, in], an autoencoder's W_in [D, 784] and W_out [784, D], a GNN's W_E, a recurrent cell's W_U."""
    d = 128
    per_head = nn.ModuleDict({"embed": nn.Embedding(V, d), "attn": _Own(W_Q=(8, 16, d), W_O=(8, d, 16)),
                              "lm_head": nn.Linear(d, V, bias=False)})
    with pytest.raises(ValueError, match="W_Q"):
        abctorch.param_groups(per_head, _spec(d))
    auto = nn.ModuleDict({"enc": _Own(W_in=(d, 784)), "dec": _Own(W_out=(784, d))})
    with pytest.raises(ValueError, match="W_in"):
        abctorch.param_groups(auto, _spec(d))
    gnn = nn.ModuleDict({"embed": nn.Embedding(V, d), "layers": nn.ModuleList(
        [_Own(W_E=(d, d), W_U=(d, d), b_U=(d,))]), "lm_head": nn.Linear(d, V, bias=False)})
    roles = _roles(gnn, _spec(d))
    assert roles["layers.0.W_E"] == roles["layers.0.W_U"] == "hidden" and roles["layers.0.b_U"] == "vector"


def test_hand_written_square_w_q_unchanged() -> None:
    """A model of its own with 2-D W_Q [D, D] and no W_O stack is read as before (torch's layout)."""
    model = nn.ModuleDict({"embed": nn.Embedding(V, 64), "attn": _Own(W_Q=(64, 64)),
                           "lm_head": nn.Linear(64, V, bias=False)})
    assert _roles(model, _spec(64))["attn.W_Q"] == "hidden"


class _Mixer(nn.Module):
    """Hugging Face's MambaMixer's parameters."""

    def __init__(self, d: int, state: int = 16) -> None:
        super().__init__()
        inner, rank = 2 * d, math.ceil(d / 16)
        self.in_proj = nn.Linear(d, 2 * inner, bias=False)
        self.conv1d = nn.Conv1d(inner, inner, 4, groups=inner, padding=3)
        self.x_proj = nn.Linear(inner, rank + 2 * state, bias=False)
        self.dt_proj = nn.Linear(rank, inner)
        self.A_log = nn.Parameter(torch.zeros(inner, state))
        self.D = nn.Parameter(torch.ones(inner))
        self.out_proj = nn.Linear(inner, d, bias=False)


def _mamba(d: int) -> nn.Module:
    layers = nn.ModuleList([nn.ModuleDict({"norm": nn.LayerNorm(d), "mixer": _Mixer(d)}) for _ in range(3)])
    return nn.ModuleDict({"embeddings": nn.Embedding(V, d), "layers": layers, "norm_f": nn.LayerNorm(d),
                          "lm_head": nn.Linear(d, V, bias=False)})


def test_mamba_a_log_vector_dt_proj_hidden_x_proj_asked_once() -> None:
    model = _mamba(128)
    with pytest.raises(ValueError) as err:
        abctorch.param_groups(model, _spec(128))
    said = str(err.value)
    assert "A_log" not in said and "dt_proj" not in said  # placed by name now
    # x_proj (dt_rank rows grow with the width, B and C's do not) asks once, for all three blocks, with one rule
    assert said.count("no rule names its role") == 1 and "the same in 2 more" in said
    assert r"^layers\.\d+\.mixer\.x_proj\.weight$" in said
    rules = [(r"^layers\.\d+\.mixer\.x_proj\.weight$", "hidden")]
    placed = {}
    for g in abctorch.param_groups(model, _spec(128), rules=rules):
        for p in g["params"]:
            placed[next(n for n, q in model.named_parameters() if q is p)] = g["name"]
    assert placed["layers.0.mixer.A_log"] == placed["layers.0.mixer.D"] == "vector"
    assert placed["layers.0.mixer.dt_proj.weight"] == "hidden (fan-in 0.0625x width)"  # ceil(D / 16) inputs
    assert placed["layers.0.mixer.conv1d.weight"] == "vector"  # depthwise
    drawn = abctorch.init_(model, _spec(128), rules=rules)
    assert "layers.0.mixer.A_log" not in drawn  # its S4D-real init is kept


def test_mamba_dt_proj_of_a_fixed_rank_asks() -> None:
    """dt_proj is hidden where its rank is the default ceil(D / 16), which grows with the width; a fixed rank (1)
    is an input of fixed size, trained at the hidden LR before (a code review)."""
    model = _mamba(128)
    for layer in model["layers"]:
        layer["mixer"].dt_proj = nn.Linear(1, 256)
    with pytest.raises(ValueError) as err:
        abctorch.param_groups(model, _spec(128), rules=[(r"x_proj", "hidden")])
    assert "dt_proj.weight' [256, 1]" in str(err.value)
