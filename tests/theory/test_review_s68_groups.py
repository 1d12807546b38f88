"""Session 68's leftovers of the roles (theory.groups), which both exports read:

- MLP-Mixer's token-mixing MLP over patches that are a multiple of the width (64 at width 64, 256 at 128) read as a
  block's MLP and was trained as hidden matrices, unsaid (the check asked only where the patches were no multiple);
- a bare square position table (`pos` [D, D]) or one broadcast over the batch ([1, T, D]) took a hidden matrix's
  role, unsaid, where at another width the same table was refused;
- a bare MoE router [experts, D] was offered the embedding's role first.
"""

from __future__ import annotations

import pytest

from abcscale.schemas.groups import GroupRule, Role
from abcscale.theory.groups import DEFAULT_RULES, assign, check_width


def _mixer(width: int, patches: int, module: str = "mlp_tokens", names: tuple[str, str] = ("fc1", "fc2"),
           inner: int | None = None, layout: str = "torch", sep: str = "."):
    """timm's MlpMixer's matrices as the exports read them ([out, in] in torch's layout, [in, out] in jax's)."""
    def m(out, inp):
        return (out, inp) if layout == "torch" else (inp, out)
    inner = width // 2 if inner is None else inner
    placed = [("stem.proj.weight", m(width, 3), Role.embedding)]
    leaf = "weight" if layout == "torch" else "kernel"
    for i in range(2):
        up, down = (sep.join((f"blocks{sep}{i}", module, n, leaf)) for n in names)
        placed += [(up, m(inner, patches), Role.hidden), (down, m(patches, inner), Role.hidden),
                   (f"blocks.{i}.mlp_channels.fc1.{leaf}", m(4 * width, width), Role.hidden),
                   (f"blocks.{i}.mlp_channels.fc2.{leaf}", m(width, 4 * width), Role.hidden)]
    return placed + [("head.weight", m(10, width), Role.readout)]


@pytest.mark.parametrize("layout", ["torch", "jax"])
@pytest.mark.parametrize(("width", "patches"), [(64, 64), (128, 256), (256, 256), (32, 64)])
def test_token_mixing_over_a_multiple_of_the_width_is_asked_for(layout, width, patches):
    with pytest.raises(ValueError) as exc:
        check_width(_mixer(width, patches, layout=layout), width, layout, DEFAULT_RULES)
    said = str(exc.value)
    leaf = "weight" if layout == "torch" else "kernel"
    assert rf"(r'^blocks\.\d+\.mlp_tokens\.fc1\.{leaf}$', 'embedding')" in said
    assert rf"(r'^blocks\.\d+\.mlp_tokens\.fc2\.{leaf}$', 'readout')" in said
    assert "mlp_channels" not in said
    rules = [GroupRule(pattern=r"mlp_tokens\.fc1", role=Role.embedding),
             GroupRule(pattern=r"mlp_tokens\.fc2", role=Role.readout), *DEFAULT_RULES]
    check_width(_mixer(width, patches, layout=layout), width, layout, rules)


def test_flax_token_mixing_by_its_modules_name():
    # the Mixer's flax reference: MixerBlock_0/token_mixing/Dense_0, Dense_1 (here 4x the patches inside, which at
    # 64 patches and width 64 reads as a block's 4x MLP)
    placed = _mixer(64, 64, module="token_mixing", names=("Dense_0", "Dense_1"), inner=256, layout="jax", sep="/")
    with pytest.raises(ValueError, match=r"token_mixing\\\.Dense_0\\\.kernel\$', 'embedding'\)"):
        check_width(placed, 64, "jax", DEFAULT_RULES)


def test_a_block_mlp_stored_in_out_is_not_taken_for_token_mixing():
    # [4D -> D -> 4D] as an MLP stored [in, out] reads: the inner size is the width, no other axis
    placed = [("wte", (1000, 64), Role.embedding)]
    for i in range(2):
        placed += [(f"h.{i}.mlp.fc1.weight", (64, 256), Role.hidden), (f"h.{i}.mlp.fc2.weight", (256, 64),
                                                                       Role.hidden),
                   (f"h.{i}.attn.q.weight", (64, 64), Role.hidden)]
    check_width(placed + [("lm_head.weight", (1000, 64), Role.readout)], 64, "torch", DEFAULT_RULES)


@pytest.mark.parametrize("layout", ["torch", "jax"])
@pytest.mark.parametrize(("name", "shape"), [("pos", (256, 256)), ("pe", (256, 256)), ("model.pos", (256, 256)),
                                             ("pe", (1, 256, 256)), ("absolute_pos", (1, 512, 256))])
def test_a_bare_position_table_a_multiple_of_the_width_is_asked_for(layout, name, shape):
    with pytest.raises(ValueError) as exc:
        assign(name, shape, 256, layout=layout)
    assert "'embedding') for a table" in str(exc.value) and "'hidden') for a projection" in str(exc.value)
    assert assign(name, shape, 256, [GroupRule(pattern=name, role=Role.embedding)], layout=layout)[0] \
        is Role.embedding


@pytest.mark.parametrize("name", ["W", "fc3", "attn_bias", "layers.0.W_q"])
def test_a_bare_square_matrix_of_another_name_stays_hidden(name):
    assert assign(name, (256, 256), 256) == (Role.hidden, 1.0)
    assert assign(name, (1, 1024, 256), 256, layout="jax") == (Role.hidden, 1024 / 256)  # a lax.scan stack, depth 1


@pytest.mark.parametrize("layout", ["torch", "jax"])
@pytest.mark.parametrize("name", ["router", "gate", "layers.0.moe.w_gate", "cls_head"])
def test_a_bare_router_is_offered_the_readouts_role_first(layout, name):
    with pytest.raises(ValueError) as exc:
        assign(name, (8, 256), 256, layout=layout)
    said = str(exc.value)
    assert -1 < said.find("'readout')") < said.find("'embedding')")
