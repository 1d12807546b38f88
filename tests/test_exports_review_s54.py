"""Session 54's export fixes, without torch (the duck-typed model of tests/test_exports.py; tests/torch/
test_review_s54.py has them on real nn.Modules): TransformerLens's [in, out] and per-head matrices, Mamba's A_log
and dt_proj, and one refusal per place rather than one per block."""

from __future__ import annotations

import math
import re

import pytest

import abcscale
from abcscale import torch as abctorch
from abcscale.schemas.groups import GroupRule, Role
from abcscale.theory.groups import assign, refusal
from tests.test_exports import _Model

D, V, H = 128, 256, 8


def _spec(width: int = D):
    return abcscale.recommend("mup", "adam", width=width, base_width=32, beta=1e-3, form="multiplier_free").groups


def _tl(blocks: int = 2) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {"embed.W_E": (V, D), "pos_embed.W_pos": (64, D)}
    for i in range(blocks):
        a, m = f"blocks.{i}.attn", f"blocks.{i}.mlp"
        shapes |= {f"{a}.W_Q": (H, D, D // H), f"{a}.W_K": (H, D, D // H), f"{a}.W_V": (H, D, D // H),
                   f"{a}.W_O": (H, D // H, D), f"{a}.b_Q": (H, D // H), f"{a}.b_O": (D,),
                   f"blocks.{i}.ln1.w": (D,), f"{m}.W_in": (D, 4 * D), f"{m}.b_in": (4 * D,), f"{m}.W_out": (4 * D, D)}
    return shapes | {"ln_final.w": (D,), "unembed.W_U": (D, V), "unembed.b_U": (V,)}


class _TLModule:
    __module__ = "transformer_lens.components"  # as TransformerLens's classes are (by package)


class _TLModel(_Model):
    """A duck-typed HookedTransformer: its modules are TransformerLens's by their class's package."""

    def named_modules(self):
        prefixes = {name.rpartition(".")[0] for name in self.params}
        return iter([("", object()), *((p, _TLModule()) for p in sorted(prefixes))])


def test_transformer_lens_duck_typed_fan_ins() -> None:
    spec = _spec()
    model = _TLModel(_tl())
    drawn = abctorch.init_(model, spec)
    assert drawn["blocks.0.mlp.W_in"] == pytest.approx(spec.init_std(Role.hidden, 1.0))
    assert drawn["blocks.0.mlp.W_out"] == pytest.approx(spec.init_std(Role.hidden, 4.0))
    assert drawn["blocks.1.attn.W_O"] == drawn["blocks.1.attn.W_Q"] == pytest.approx(spec.init_std(Role.hidden, 1.0))
    names = {g["name"]: len(g["params"]) for g in abctorch.param_groups(model, spec)}
    assert names == {"embedding": 2, "hidden": 10, "hidden (fan-in 4x width)": 2, "vector": 9, "readout": 1,
                     "fixed": 1}


def test_transformer_lens_names_only_in_its_modules() -> None:
    """W_in / W_out read [in, out] only in TransformerLens's modules: a model of one's own keeps torch's layout."""
    model = _Model({"embed.weight": (V, D), "mlp.W_in": (4 * D, D), "mlp.W_out": (D, 4 * D), "lm_head.weight": (V, D)})
    drawn = abctorch.init_(model, _spec(), rules=[("W_in|W_out", "hidden")])
    assert drawn["mlp.W_in"] == pytest.approx(_spec().init_std(Role.hidden, 1.0))  # [out, in]: fan-in D
    assert drawn["mlp.W_out"] == pytest.approx(_spec().init_std(Role.hidden, 4.0))


def test_mamba_names() -> None:
    inner, rank = 2 * D, math.ceil(D / 16)
    assert assign("layers.0.mixer.A_log", (inner, 16), D) == (Role.vector, 1.0)
    assert assign("backbone.layers.3.mixer.A_log", (8,), D) == (Role.vector, 1.0)  # Mamba 2's, per head
    assert assign("layers.0.mixer.dt_proj.weight", (inner, rank), D) == (Role.hidden, rank / D)
    assert assign("layers.0.mixer.dt_proj.kernel", (rank, inner), D, layout="jax") == (Role.hidden, rank / D)
    with pytest.raises(ValueError, match="dt_proj"):  # a fixed rank: an input of fixed size, not hidden
        assign("layers.0.mixer.dt_proj.weight", (inner, 4), D)
    with pytest.raises(ValueError, match="x_proj"):
        assign("layers.0.mixer.x_proj.weight", (rank + 32, inner), D)


def test_refusal_one_reason_per_place() -> None:
    """24 blocks' x_proj were 24 reasons with one rule to paste, and a sixth parameter's reason was cut off."""
    refused = []
    for i in range(24):
        name = f"layers.{i}.mixer.x_proj.weight"
        try:
            assign(name, (40, 2 * D), D)
        except ValueError as exc:
            refused.append((name, [40, 2 * D], str(exc)))
    for other in ("stem.weight", "a.weight", "b.weight", "c.weight", "d.weight"):
        try:
            assign(other, (10, D + 3), D)
        except ValueError as exc:
            refused.append((other, [10, D + 3], str(exc)))
    said = refusal(refused)
    assert said.startswith("29 parameters could not be placed")
    assert said.count("x_proj.weight' [40, 256]: no rule") == 1 and "the same in 23 more" in said
    assert "'layers.1.mixer.x_proj.weight'" in said and "'layers.23.mixer.x_proj.weight'" not in said
    assert "'c.weight' [10, 131]: no rule" in said and "and 1 more: 'd.weight'" in said


def test_refusal_keeps_two_causes_under_one_pattern_apart() -> None:
    """An MLP of blocks `layers.N.linear`, the first [D, 784] and the last [10, D]: one reason with the first's
    'embedding' rule for both (the last's shape and its 'readout' lost, and the pattern named both): a code review."""
    refused = []
    for name, dims in (("layers.0.linear.weight", (D, 784)), ("layers.3.linear.weight", (10, D)),
                       ("layers.4.linear.weight", (10, D))):
        with pytest.raises(ValueError) as err:
            assign(name, dims, D)
        refused.append((name, list(dims), str(err.value)))
    said = refusal(refused)
    assert "'layers.0.linear.weight' [128, 784]" in said and "'layers.3.linear.weight' [10, 128]" in said
    assert r"(r'^layers\.0\.linear\.weight$', 'embedding')" in said
    # the rule offered for a cause names all of its parameters (layers.4 was still refused after pasting it)
    assert r"(r'^(layers\.3\.linear\.weight|layers\.4\.linear\.weight)$', 'readout')" in said
    assert "the same in 1 more: 'layers.4.linear.weight'" in said
    offered = [GroupRule(pattern=p, role=r) for p, r in re.findall(r"\(r'([^']+)', '(\w+)'\)", said)]
    for name, dims, _ in refused:  # pasting the offered rules places every one of them
        assert assign(name, dims, D, rules=offered)[0] in (Role.embedding, Role.readout)
    assert r"\d+" not in said
