"""A review of the torch export on modern LLM layers (session 53; Hugging Face-style names, written by hand).

Before: a stack of experts stored [experts, in, out] and used as ``x @ W[e]`` (GPT-OSS, Llama 4) took the last axis
as its fan-in, init stds off by sqrt(F / D) both ways, unsaid, and the torch export had no ``fan_in`` to say it;
an MoE router ``mlp.gate`` [E, D] with the experts a multiple of the width trained as a hidden matrix, unsaid; a
bare top-level position table (fairseq's ``embed_positions``, an ``nn.Parameter`` [positions, D]) trained as hidden
(LRs 8-32x too small), unsaid.
"""

from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import abcscale  # noqa: E402
from abcscale import torch as abctorch  # noqa: E402

V = 512


def _spec(width: int, optimizer: str = "adam"):
    return abcscale.recommend("mup", optimizer, width=width, base_width=64, beta=1e-2, form="multiplier_free").groups


class Experts(nn.Module):
    def __init__(self, d: int, f: int, e: int, up: str = "gate_up_proj", down: str = "down_proj") -> None:
        super().__init__()
        self.register_parameter(up, nn.Parameter(torch.zeros(e, d, 2 * f)))  # x @ W[e]: fan-in d
        self.register_parameter(down, nn.Parameter(torch.zeros(e, f, d)))  # h @ W[e]: fan-in f


def _moe(d: int, f: int, e: int = 8, router: str = "router", names: tuple[str, str] = ("w_in", "w_out")) -> nn.Module:
    """Stacks named `w_in`/`w_out` by default: no up/down name, so their layout is the user's to say."""
    block = nn.ModuleDict({"q_proj": nn.Linear(d, d, bias=False), "o_proj": nn.Linear(d, d, bias=False),
                           router: nn.Linear(d, e, bias=False), "experts": Experts(d, f, e, *names)})
    return nn.ModuleDict({"embed_tokens": nn.Embedding(V, d), "layers": nn.ModuleList([block]),
                          "lm_head": nn.Linear(d, V, bias=False)})


@pytest.mark.parametrize("d", [64, 256])
def test_fan_in_places_a_stack_of_experts_stored_in_out(d):
    f = d // 4  # fine-grained experts (F < D): refused before, with advice a torch user could not follow
    m = _moe(d, f)
    fan_in = {"layers.0.experts.w_in": d, "layers.0.experts.w_out": f}
    rules = [("router", "readout")]
    stds = abctorch.init_(m, _spec(d), rules=rules, fan_in=fan_in)
    assert stds["layers.0.experts.w_in"] == pytest.approx(d ** -0.5)
    assert stds["layers.0.experts.w_out"] == pytest.approx(f ** -0.5)
    assert float(m.layers[0].experts.w_out.detach().std()) == pytest.approx(f ** -0.5, rel=0.05)
    groups = abctorch.param_groups(m, _spec(d), rules=rules, fan_in=fan_in)
    (down,) = [g for g in groups if any(p is m.layers[0].experts.w_out for p in g["params"])]
    (q,) = [g for g in groups if any(p is m.layers[0].q_proj.weight for p in g["params"])]
    assert down["lr"] == q["lr"] and down["name"] == "hidden (fan-in 0.25x width)"  # the fan-in sets the init
    with pytest.raises(ValueError, match="fan_in: 'layers.0.experts.nope' is no parameter of the model"):
        abctorch.param_groups(m, _spec(d), rules=rules, fan_in={"layers.0.experts.nope": 4})
    with pytest.raises(ValueError, match="a positive integer"):
        abctorch.init_(m, _spec(d), rules=rules, fan_in={"layers.0.experts.w_out": 0})


@pytest.mark.parametrize("d", [64, 256])
def test_a_router_trained_as_hidden_by_its_shape_is_said(d):
    m = _moe(d, 4 * d, e=d, router="gate")  # DeepSeek-style: as many experts as the proxy is wide
    fan_in = {"layers.0.experts.w_in": d, "layers.0.experts.w_out": 4 * d}
    with pytest.warns(UserWarning, match=r"layers.0.gate.weight: named like an MoE router.*gate\\\.weight\$', "
                      r"'readout'"):
        abctorch.param_groups(m, _spec(d, "sgd"), fan_in=fan_in)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said either way, not warned
        for role in ("readout", "hidden"):
            abctorch.param_groups(m, _spec(d, "sgd"), fan_in=fan_in, rules=[(r"(^|\.)gate\.weight$", role)])


def test_a_bare_top_level_position_table_asks_for_its_role_or_is_named():
    d = 64

    class GPT(nn.Module):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.wte = nn.Embedding(V, d)
            self.register_parameter(name, nn.Parameter(torch.zeros(512, d)))
            self.fc = nn.Linear(d, d)
            self.lm_head = nn.Linear(d, V, bias=False)

    with pytest.raises(ValueError, match=r"'pos' \[512, 64\]: a bare matrix no rule names.*'embedding'"):
        abctorch.param_groups(GPT("pos"), _spec(d))
    stds = abctorch.init_(GPT("pos"), _spec(d), rules=[("pos", "embedding")])
    assert stds["pos"] == pytest.approx(1.0)
    assert abctorch.init_(GPT("embed_positions"), _spec(d))["embed_positions"] == pytest.approx(1.0)


def test_a_per_head_query_key_norm_is_fixed():
    """Qwen 3's `q_norm`/`k_norm` (head_dim entries, shared by heads whose number grows with the width) has no
    width-sized axis: fixed, as microsoft/mup's base shapes read it (its SGD LR grew as n/b as a vector); a norm over
    all of D (OLMo 2's) stays vector-like."""
    d, dh = 256, 16
    attn = nn.ModuleDict({"q_proj": nn.Linear(d, d, bias=False), "q_norm": nn.RMSNorm(dh), "k_norm": nn.RMSNorm(dh),
                          "o_proj": nn.Linear(d, d, bias=False), "full_norm": nn.RMSNorm(d)})
    m = nn.ModuleDict({"embed_tokens": nn.Embedding(V, d), "layers": nn.ModuleList([attn]),
                       "lm_head": nn.Linear(d, V, bias=False)})
    spec = _spec(d, "sgd")
    groups = abctorch.param_groups(m, spec)
    role = {id(p): g["name"] for g in groups for p in g["params"]}
    assert role[id(attn["q_norm"].weight)] == role[id(attn["k_norm"].weight)] == "fixed"
    assert role[id(attn["full_norm"].weight)] == "vector"
    (fixed,) = [g for g in groups if g["name"] == "fixed"]
    assert fixed["lr"] == spec["fixed"].lr < spec["vector"].lr  # 4x at 4x the base width under SGD


def test_muon_on_a_stack_of_experts_is_told_per_matrix_not_flattened():
    d = 64
    m = _moe(d, 2 * d)
    spec = _spec(d, "muon")
    fan_in = {"layers.0.experts.w_in": d, "layers.0.experts.w_out": 2 * d}
    with pytest.warns(UserWarning, match=r"experts.w_out \(3-D\): stacks of hidden matrices.*each matrix of the "
                      r"stack orthogonalised alone") as got:
        abctorch.param_groups(m, spec, rules=[("router", "readout")], fan_in=fan_in)
    assert not any("x kernel" in str(w.message) for w in got)  # the conv's flatten advice is not given for them


def test_fused_projections_are_hidden_by_name():
    """Phi-3's fused GQA `qkv_proj` [(H + 2 KV) x head_dim, D] and `gate_up_proj` [2F, D] have an axis that is no
    multiple of the width: refused with "an embedding and a readout look alike" before; hidden by name now."""
    d = 64
    block = nn.ModuleDict({"qkv_proj": nn.Linear(d, 96, bias=False), "o_proj": nn.Linear(d, d, bias=False),
                           "gate_up_proj": nn.Linear(d, 2 * 172, bias=False),
                           "down_proj": nn.Linear(172, d, bias=False)})
    m = nn.ModuleDict({"embed_tokens": nn.Embedding(V, d), "layers": nn.ModuleList([block]),
                       "lm_head": nn.Linear(d, V, bias=False)})
    groups = abctorch.param_groups(m, _spec(d))
    role = {id(p): g["name"] for g in groups for p in g["params"]}
    assert role[id(block["qkv_proj"].weight)] == role[id(block["gate_up_proj"].weight)] == "hidden"


def test_fan_in_keys_read_past_a_wrapper_and_a_torch_stack_asks_for_its_fan_in():
    d, f = 64, 176  # Llama's 2.75 D
    m = _moe(d, f)

    class Wrapped(nn.Module):  # torch.compile's `_orig_mod.` prefix
        def __init__(self) -> None:
            super().__init__()
            self._orig_mod = m

    # [experts, in, out] and [experts, out, in] read alike in the torch layout: the fan-in is asked for
    with pytest.raises(ValueError, match=r"experts.w_in.*abcscale.torch's fan_in"):
        abctorch.param_groups(m, _spec(d), rules=[("router", "readout"), (r"experts\.w_", "hidden")])
    fan_in = {"layers.0.experts.w_in": d, "layers.0.experts.w_out": f}
    stds = abctorch.init_(Wrapped(), _spec(d), rules=[("router", "readout")], fan_in=fan_in)
    assert stds["_orig_mod.layers.0.experts.w_out"] == pytest.approx(f ** -0.5)


def test_a_bare_stack_read_in_torch_s_layout_is_said():
    """[experts, D, 4D] stored in-out (x @ W[e]) reads as [experts, out=D, in=4D]: its last axis a multiple of the
    width, it is taken, so the reading is said, naming fan_in (the second pass: silent, init 2x off)."""
    d = 64
    m = _moe(d, 2 * d)
    with pytest.warns(UserWarning, match=r"layers.0.experts.w_in, layers.0.experts.w_out: stacks of "
                      r"matrices read in torch's layout.*fan_in="):
        abctorch.param_groups(m, _spec(d), rules=[("router", "readout")])
    fan_in = {"layers.0.experts.w_in": d, "layers.0.experts.w_out": 2 * d}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        abctorch.param_groups(m, _spec(d), rules=[("router", "readout")], fan_in=fan_in)


@pytest.mark.parametrize("layout", ["gpt-oss", "hf-v5"])
def test_an_up_and_a_down_stack_are_read_by_their_names_and_the_width(layout):
    """GPT-OSS stores its experts [E, D, 2F] and [E, F, D] (x @ W[e]), Hugging Face's fused experts (transformers 5)
    [E, 2F, D] and [E, D, F] (F.linear): named up/down, the axis that is the width says the fan-in either way (the
    first were read from the wrong axis, the second warned or refused where F is no multiple of D)."""
    d, f, e = 64, 176, 8  # F = 2.75 D
    experts = nn.Module()
    up, down = ((e, d, 2 * f), (e, f, d)) if layout == "gpt-oss" else ((e, 2 * f, d), (e, d, f))
    experts.gate_up_proj = nn.Parameter(torch.zeros(up))
    experts.down_proj = nn.Parameter(torch.zeros(down))
    block = nn.ModuleDict({"q_proj": nn.Linear(d, d, bias=False), "router": nn.Linear(d, e, bias=False),
                           "experts": experts})
    m = nn.ModuleDict({"embed_tokens": nn.Embedding(V, d), "layers": nn.ModuleList([block]),
                       "lm_head": nn.Linear(d, V, bias=False)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stds = abctorch.init_(m, _spec(d), rules=[("router", "readout")])
    assert stds["layers.0.experts.gate_up_proj"] == pytest.approx(d ** -0.5)
    assert stds["layers.0.experts.down_proj"] == pytest.approx(f ** -0.5)
