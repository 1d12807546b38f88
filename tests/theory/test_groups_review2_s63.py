"""Session 63, a second code review of ``settle_fixed``'s length rule (theory/groups.py ``_free_vector``): a
vocab-long bias in a sibling module of the readout, or at a level above a nested readout, became vector-like (its
LR grown 4x at 4x the width under muP + SGD, the bug the length rule was for). Only a bias of another matrix, one in
a module holding a hidden matrix, or one inside a numbered block stays out of the rule."""

from __future__ import annotations

import pytest

from abcscale.schemas.groups import Role
from abcscale.theory.groups import settle_fixed

D, V = 64, 256  # a hidden layer's 4D is the vocabulary's length


def _role(readout: str, bias: str, *extra: tuple[str, tuple[int, ...], Role]) -> Role:
    placed = [("embed.embedding", (V, D), Role.embedding), ("blocks.0.fc.kernel", (D, D), Role.hidden),
              (readout, (D, V), Role.readout), (bias, (V,), Role.vector), *extra]
    return dict(zip([p[0] for p in placed], settle_fixed(placed, width=D), strict=True))[bias]


@pytest.mark.parametrize(("readout", "bias"), [("decoder.head.kernel", "logit_bias"),
                                               ("model.lm_head.weight", "final_logits_bias"),
                                               ("Decoder_0/head/kernel", "Decoder_0/logits/bias")])
def test_a_vocab_long_bias_beside_or_above_the_readout_is_fixed(readout, bias):
    assert _role(readout, bias) is Role.fixed


def test_a_hidden_layers_bias_is_still_vector():
    assert _role("head.kernel", "blocks.0.mlp.b_in") is Role.vector  # inside a numbered block
    assert _role("head.kernel", "mlp.b_in", ("mlp.w_in", (D, V), Role.hidden)) is Role.vector  # beside w_in
    assert _role("head.kernel", "fc_in.bias", ("fc_in.kernel", (D, V), Role.hidden)) is Role.vector  # its own
