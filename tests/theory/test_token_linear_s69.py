"""Session 69: one linear layer over the tokens, [P, P] (ResMLP's ``linear_tokens``, gMLP's spatial gate, timm's
``gate.proj``), shared by every feature channel. Where P was a multiple of the width it was read as a hidden matrix
(its LR falling as 1 / width under muP + Adam, though P stays as the width grows), elsewhere refused as "a hidden
matrix's shape for width P" (the model is not P wide). Now asked by its name at every P, with a rule to paste."""

from __future__ import annotations

import re

import pytest

from abcscale.schemas.groups import Role
from abcscale.theory.groups import DEFAULT_RULES, GroupRule, assign


@pytest.mark.parametrize("layout", ["torch", "jax"])
@pytest.mark.parametrize(("name", "patches", "width"), [
    ("blocks.0.linear_tokens.weight", 64, 64),  # P = width: a hidden matrix's shape
    ("blocks.3.linear_tokens.weight", 256, 128),  # P = 2 x width: the same
    ("blocks.0.linear_tokens.weight", 196, 32),  # no multiple: "a hidden matrix's shape for width 196" before
    ("blocks.1.mlp_channels.gate.proj.weight", 196, 196),  # timm's gMLP
    ("params.Block_2.token_proj.kernel", 49, 49),
])
def test_a_linear_over_the_tokens_is_asked_with_a_rule_for_its_module(name, patches, width, layout):
    with pytest.raises(ValueError, match=r"a linear layer over the tokens .* neither axis grows: add a rule for the "
                                         r"module \(its bias too\), \(r'(.*)', 'fixed'\)") as exc:
        assign(name, (patches, patches), width, DEFAULT_RULES, layout)
    pattern = re.search(r"\(r'(.*?)', 'fixed'\)", str(exc.value)).group(1)
    bias = re.sub(r"\.(weight|kernel)$", ".bias", name)
    # the rule it gives names the module's weight and bias, in every block, and places them
    other = re.sub(r"(blocks\.|Block_)\d+", lambda m: m.group(1) + "7", name)
    for leaf, shape in ((name, (patches, patches)), (bias, (patches,)), (other, (patches, patches))):
        assert re.search(pattern, leaf)
        rules = [GroupRule(pattern=pattern, role="fixed"), *DEFAULT_RULES]
        assert assign(leaf, shape, width, rules, layout)[0] is Role.fixed


@pytest.mark.parametrize(("name", "dims"), [
    ("blocks.0.mlp.fc1.weight", (256, 64)),  # a block's MLP, named otherwise
    ("blocks.0.attn.proj.weight", (64, 64)),  # an attention's output projection: `proj`, not a tokens' linear
    ("model.layers.0.mlp.gate_proj.weight", (64, 64)),  # Llama's gate, an underscore
])
def test_the_width_s_own_matrices_stay_hidden(name, dims):
    assert assign(name, dims, 64, DEFAULT_RULES, "torch")[0] is Role.hidden


def test_a_top_level_router_made_a_readout_is_no_second_output_layer():
    """A router given the readout's role, as router_note advises, was warned as a second output layer beside the
    logits' (session 68's note); two output layers are still said."""
    from abcscale.theory.groups import several_readouts_note

    router = [("params.wte.embedding", (256, 64), Role.embedding), ("params.router.kernel", (64, 8), Role.readout),
              ("params.lm_head.kernel", (64, 256), Role.readout)]
    assert several_readouts_note(router) is None
    heads = [*router[:1], ("params.cls_head.kernel", (64, 8), Role.readout), router[2]]
    assert several_readouts_note(heads).startswith("2 readouts outside the blocks ('params.cls_head.kernel'")


def test_the_jax_export_places_a_routed_model_without_the_warning():
    import warnings

    jnp = pytest.importorskip("jax.numpy")
    import abcscale
    import abcscale.optax as abcoptax

    z = jnp.zeros
    tree = {"params": {"wte": {"embedding": z((256, 64))}, "router": {"kernel": z((64, 8))},
                       "blocks_0": {"mlp": {"up": {"kernel": z((64, 256))}, "down": {"kernel": z((256, 64))}}},
                       "lm_head": {"kernel": z((64, 256))}}}
    spec = abcscale.recommend("mup", "adam", width=64, base_width=32, beta=0.01, form="multiplier_free")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labels = abcoptax.labels(spec, tree, rules=[(r"^params\.router\.kernel$", "readout")])
    assert labels["params"]["router"]["kernel"] == "readout" == labels["params"]["lm_head"]["kernel"]
    assert not [w for w in caught if "readouts outside the blocks" in str(w.message)]
