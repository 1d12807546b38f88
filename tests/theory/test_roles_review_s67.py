"""Session 67's review of the PyTorch path, the parts theory/groups.py decides from names and shapes (no torch):

- settle_fixed read a readout's shape as [in, out] only: beside torch's [out, in] readout, a norm over its fan-in
  (ConvNeXt's `head.norm` over 8D features before `head.fc` [10, 8D]) became `fixed` (under muP + SGD lr 0.1 where the
  vector role's is 0.4; Adam's eps 1e-8 for 2.5e-9), and a bare `logits_bias` [V] beside `lm_head` [V, D] stayed
  vector-like (its SGD LR grown 4x at 4x the width);
- MLP-Mixer's token-mixing MLP (fc1 [D/2, patches], fc2 [patches, D/2]) was trained as hidden matrices, their fan-in
  ratios changing with the width (LR 4x too small at 4x);
- refusals offered a bare lookup table (`tok` [V, D], a ViT's `pe` [1, 65, D]) the readout's role, and a bare readout
  stored [in, out] (`U` [D, V]) the embedding's; the width check told abcscale.torch to "pass layout='jax'";
- a rule making tables readouts left a model with three readouts, unsaid.
"""

from __future__ import annotations

import pytest

import abcscale
from abcscale.schemas.groups import GroupRule, Role
from abcscale.theory.groups import (
    DEFAULT_RULES,
    assign,
    check_width,
    settle_fixed,
    spec_params,
)

D, V = 256, 1000


def _roles(placed, layout):
    # the jax layout is the default (the runner's callers pass none): those cases held before and must still
    kw = {"layout": "torch"} if layout == "torch" else {}
    return dict(zip([p[0] for p in placed], settle_fixed(placed, DEFAULT_RULES, D, **kw), strict=True))


@pytest.mark.parametrize("layout", ["torch", "jax"])
def test_a_norm_over_the_readouts_fan_in_is_vector_and_its_bias_fixed(layout):
    head = (10, 2 * D) if layout == "torch" else (2 * D, 10)
    placed = [("embed.weight", (100, D), Role.embedding), ("up.weight", (2 * D, D), Role.hidden),
              ("final_norm.weight", (2 * D,), Role.vector), ("final_norm.bias", (2 * D,), Role.vector),
              ("head.weight", head, Role.readout), ("head.bias", (10,), Role.vector)]
    roles = _roles(placed, layout)
    assert roles["final_norm.weight"] is Role.vector and roles["final_norm.bias"] is Role.vector
    assert roles["head.bias"] is Role.fixed


@pytest.mark.parametrize("layout", ["torch", "jax"])
@pytest.mark.parametrize("bias", ["logits_bias", "logit_bias", "output_bias"])
def test_a_bare_logits_bias_beside_the_readout_is_fixed(layout, bias):
    head = (V, D) if layout == "torch" else (D, V)
    placed = [("wte.weight", (V, D), Role.embedding), ("mlp.0.weight", (4 * D, D), Role.hidden),
              ("ln_f.weight", (D,), Role.vector), ("lm_head.weight", head, Role.readout), (bias, (V,), Role.vector)]
    roles = _roles(placed, layout)
    assert roles[bias] is Role.fixed and roles["ln_f.weight"] is Role.vector


def test_spec_params_reads_the_readout_in_its_layout():
    spec = abcscale.recommend("mup", "sgd", width=D, base_width=64, beta=0.1, form="multiplier_free").groups
    shapes = {"embed.weight": (100, D), "up.weight": (2 * D, D), "final_norm.weight": (2 * D,),
              "head.weight": (10, 2 * D), "head.bias": (10,), "logits_bias": (10,)}
    got = {name: role for name, (role, _) in spec_params(spec, shapes, layout="torch").items()}
    assert got["final_norm.weight"] is Role.vector and got["head.bias"] is Role.fixed
    assert spec["vector"].lr == pytest.approx(0.4) and spec["fixed"].lr == pytest.approx(0.1)


def test_settle_fixed_refuses_an_unknown_layout():
    with pytest.raises(ValueError, match="layout"):
        settle_fixed([("head.bias", (10,), Role.vector)], layout="flax")


def _mixer(width, patches=64, blocks=2, layout="torch"):
    """timm's MlpMixer's matrices as abcscale.torch reads them ([out, in]; a conv stem by its channels)."""
    def m(out, inp):
        return (out, inp) if layout == "torch" else (inp, out)
    placed = [("stem.proj.weight", m(width, 3), Role.embedding)]
    for i in range(blocks):
        placed += [(f"blocks.{i}.mlp_tokens.fc1.weight", m(width // 2, patches), Role.hidden),
                   (f"blocks.{i}.mlp_tokens.fc2.weight", m(patches, width // 2), Role.hidden),
                   (f"blocks.{i}.mlp_channels.fc1.weight", m(4 * width, width), Role.hidden),
                   (f"blocks.{i}.mlp_channels.fc2.weight", m(width, 4 * width), Role.hidden)]
    return placed + [("head.weight", m(10, width), Role.readout)]


@pytest.mark.parametrize("layout", ["torch", "jax"])
def test_an_mlp_over_the_patches_is_not_taken_for_a_hidden_one(layout):
    with pytest.raises(ValueError) as exc:
        check_width(_mixer(D, layout=layout), D, layout, DEFAULT_RULES)
    said = str(exc.value)
    assert r"(r'^blocks\.\d+\.mlp_tokens\.fc1\.weight$', 'embedding')" in said
    assert r"(r'^blocks\.\d+\.mlp_tokens\.fc2\.weight$', 'readout')" in said
    assert "mlp_channels" not in said  # the channel MLP is over the width: a block's MLP
    # the rules it offers place it, at the width of the patches too (session 68: its module name says it there,
    # where the shapes alone read as a block MLP's)
    rules = [GroupRule(pattern=r"^blocks\.\d+\.mlp_tokens\.fc1\.weight$", role=Role.embedding),
             GroupRule(pattern=r"^blocks\.\d+\.mlp_tokens\.fc2\.weight$", role=Role.hidden), *DEFAULT_RULES]
    check_width(_mixer(D, layout=layout), D, layout, rules)
    check_width(_mixer(64, layout=layout), 64, layout, rules)
    with pytest.raises(ValueError, match="mlp_tokens"):
        check_width(_mixer(64, layout=layout), 64, layout, DEFAULT_RULES)


def test_a_block_mlp_whose_outer_size_other_matrices_share_is_left_alone():
    # a stage 1.5 widths wide (its MLP over 384 at width 256) whose downsampling conv has that size too
    placed = [("stem.weight", (D, 3), Role.embedding), ("down.weight", (384, D), Role.hidden),
              ("stages.0.mlp.fc1.weight", (1536, 384), Role.hidden), ("stages.0.mlp.fc2.weight", (384, 1536),
                                                                      Role.hidden),
              ("blocks.0.mlp.fc1.weight", (4 * D, D), Role.hidden), ("blocks.0.mlp.fc2.weight", (D, 4 * D),
                                                                     Role.hidden),
              ("head.weight", (10, 384), Role.readout)]
    check_width(placed, D, "torch", DEFAULT_RULES)


@pytest.mark.parametrize(("name", "shape"), [("tok", (V, D)), ("pe", (1, 65, D)), ("P", (64, D))])
@pytest.mark.parametrize("layout", ["torch", "jax"])
def test_a_bare_table_is_offered_the_embeddings_role(name, shape, layout):
    with pytest.raises(ValueError) as exc:
        assign(name, shape, D, layout=layout)
    said = str(exc.value)
    assert f"(r'^{name}$', 'embedding')" in said and f"(r'^{name}$', 'readout')" not in said


@pytest.mark.parametrize("layout", ["torch", "jax"])
def test_a_bare_matrix_with_the_width_first_is_offered_the_readouts_role(layout):
    with pytest.raises(ValueError) as exc:
        assign("U", (D, V), D, layout=layout)
    said = str(exc.value)
    assert "(r'^U$', 'readout')" in said and "(r'^U$', 'embedding')" not in said
    assert ("fan_in={'U': 256}" in said) is (layout == "torch")  # the torch layout reads it [out, in]
    # a vocabulary that is a multiple of the width: a bare matrix's shape reads as hidden; the readout is offered too
    with pytest.raises(ValueError, match=r"\(r'\^U\$', 'readout'\) for an output layer used as h @ W"):
        assign("U", (D, 4 * D), D)


def test_a_layers_weight_keeps_its_layouts_reading():
    # nn.Linear's [out, in]: a classifier's head of 500 outputs, readout-like (unchanged)
    with pytest.raises(ValueError) as exc:
        assign("out.weight", (500, D), D)
    assert r"(r'^out\.weight$', 'readout')" in str(exc.value) and "bare" not in str(exc.value)


def test_the_width_check_offers_abctorch_fan_in_not_a_layout():
    placed = [("E", (V, D), Role.embedding), ("layers.0.W1", (4 * D, D), Role.hidden), ("U", (D, V), Role.readout)]
    with pytest.raises(ValueError) as exc:
        check_width(placed, D, "torch", DEFAULT_RULES, layout_option=False)
    said = str(exc.value)
    assert "fan_in={'U': 256}" in said and "layout=" not in said
    with pytest.raises(ValueError, match="pass layout='jax'"):  # the exports that take a layout still say it
        check_width(placed, D, "torch", DEFAULT_RULES)


def test_several_readouts_outside_the_blocks_are_said():
    from abcscale.theory.groups import several_readouts_note

    placed = [("tok", (V, D), Role.readout), ("pe", (1, 65, D), Role.readout), ("blocks.0.fc1.weight", (4 * D, D),
                                                                                 Role.hidden),
              ("lm_head.weight", (V, D), Role.readout)]
    note = several_readouts_note(placed)
    assert note is not None and "3 readouts" in note and "'tok'" in note
    assert several_readouts_note(placed[2:]) is None
    # a block's readouts (MLP-Mixer's token-mixing outputs, given the role) beside the head: one place outside
    mixer = [(n, s, Role.readout if "mlp_tokens.fc2" in n or n == "head.weight" else r) for n, s, r in _mixer(D)]
    assert several_readouts_note(mixer) is None
