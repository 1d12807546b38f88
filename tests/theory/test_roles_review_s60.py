"""Session 60: a user review of sweeping a team's own JAX model. A readout's bias named in one flat name
(`output_bias` beside `output`, `lm_head_b`) or only by its length ([vocab]) took the vector role, its LR grown with
the width (4x at 4x under muP + SGD); a block's matrix named `embed` took the embedding's init and LR."""

from __future__ import annotations

import pytest

from abcscale.schemas.groups import Role
from abcscale.theory.groups import DEFAULT_RULES, named_role, settle_fixed

D, V = 24, 256


@pytest.mark.parametrize(("readout", "bias"), [("output", "output_bias"), ("lm_head", "lm_head_b"),
                                               ("head.kernel", "logits_bias"), ("head.kernel", "head.bias")])
def test_a_readout_bias_however_named_is_fixed(readout, bias):
    placed = [("wte", (V, D), Role.embedding), ("fc1", (D, 4 * D), Role.hidden), ("fc1_bias", (4 * D,), Role.vector),
              (readout, (D, V), Role.readout), (bias, (V,), Role.vector), ("ln.scale", (D,), Role.vector)]
    roles = dict(zip([p[0] for p in placed], settle_fixed(placed, DEFAULT_RULES, D), strict=True))
    assert roles[bias] is Role.fixed
    # width-sized vectors stay vector-like: an MLP's bias [4D], a norm's gain [D]
    assert roles["fc1_bias"] is Role.vector and roles["ln.scale"] is Role.vector


def test_a_user_rule_keeps_its_role_for_a_vocab_long_vector():
    from abcscale.schemas.groups import GroupRule

    mine = GroupRule(pattern=r"^logits_bias$", role=Role.vector)
    placed = [("head.kernel", (D, V), Role.readout), ("logits_bias", (V,), Role.vector)]
    assert settle_fixed(placed, [mine, *DEFAULT_RULES], D)[1] is Role.vector


@pytest.mark.parametrize("name", ["block_0.embed.w", "blocks.1.embeddings", "layers.2.embedding.weight"])
def test_a_blocks_matrix_named_embed_is_not_the_embedding(name):
    assert named_role(name, (D, D), DEFAULT_RULES) is not Role.embedding


@pytest.mark.parametrize("name", ["wte", "model.embed_tokens.weight", "bert.embeddings.word_embeddings.weight",
                                  "embed.w", "transformer.wpe.weight"])
def test_the_models_own_tables_stay_embeddings(name):
    assert named_role(name, (V, D), DEFAULT_RULES) is Role.embedding
