"""A tied model at another width than the spec's is refused though one hidden matrix has the spec's width as an
axis (session 62, a review: a tied GQA Llama 4096 wide, k/v [1024, 4096], passed a spec for width 1024, its hidden
LRs and tied logits 4x off; untied, the readout's fan-in caught it)."""

from __future__ import annotations

import warnings

import pytest

import abcscale.torch as abctorch
from tests.test_exports import _Model, _spec


def _llama(d: int, kv: int, tied: bool) -> dict[str, tuple[int, ...]]:
    ff = 256 * -(-8 * d // 3 // 256)
    shapes = {"model.embed_tokens.weight": (1000, d), "model.norm.weight": (d,)}
    for i in range(2):
        p = f"model.layers.{i}."
        shapes |= {p + "self_attn.q_proj.weight": (d, d), p + "self_attn.k_proj.weight": (kv, d),
                   p + "self_attn.v_proj.weight": (kv, d), p + "self_attn.o_proj.weight": (d, d),
                   p + "mlp.gate_proj.weight": (ff, d), p + "mlp.up_proj.weight": (ff, d),
                   p + "mlp.down_proj.weight": (d, ff), p + "input_layernorm.weight": (d,)}
    return shapes if tied else shapes | {"lm_head.weight": (1000, d)}


@pytest.mark.parametrize("tied", [True, False])
def test_a_spec_for_the_kv_width_is_refused(tied):
    model = _Model(_llama(4096, 1024, tied))
    with pytest.raises(ValueError, match=r"the model is 4096 wide .*recommend at the model's width \(width=4096\)"):
        abctorch.param_groups(model, _spec(width=1024))


def test_the_right_width_passes_tied():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tied-embedding note
        assert abctorch.param_groups(_Model(_llama(4096, 1024, True)), _spec(width=4096))
        assert abctorch.param_groups(_Model(_llama(512, 128, True)), _spec(width=512))

