"""Names the default rules misread, from a review of users' own models (session 31): every matrix under a
``PreNormBlock`` module read as a norm's vector, a block's ``attn.output`` or ``head`` as the readout, an unnamed
32768-row vocabulary matrix as hidden (it is a multiple of the width), and a flax ``DenseGeneral`` kernel's heads
axis as its fan-in. Each gave a wrong init std and LR without a word."""

from __future__ import annotations

import pytest

from abcscale.schemas.groups import GroupRule, Role
from abcscale.theory.groups import HIDDEN_SHAPE_RATIO, assign, named_role


@pytest.mark.parametrize("name, shape, layout, role", [
    ("params/PreNormBlock_0/Dense_0/kernel", (1024, 4096), "jax", Role.hidden),  # 'norm' in a module's name
    ("params/PreNormBlock_0/Dense_0/bias", (4096,), "jax", Role.vector),
    ("channel_norm_proj.weight", (1024, 1024), "torch", Role.hidden),
    ("params/LayerNorm_0/scale", (1024,), "jax", Role.vector),
    ("transformer.h.0.ln_1.weight", (1024,), "torch", Role.vector),
    ("blocks.0.attn.output.kernel", (1024, 1024), "jax", Role.hidden),  # a block's output projection
    ("blocks.3.head.kernel", (1024, 1024), "jax", Role.hidden),
    ("head.kernel", (1024, 1024), "jax", Role.hidden),  # square: not a vocabulary
    ("lm_head.weight", (32000, 1024), "torch", Role.readout),
    ("output.weight", (32000, 1024), "torch", Role.readout),  # LLaMA's
    ("params/lm_head/kernel", (1024, 32000), "jax", Role.readout),
    ("stack.w1", (4, 1024, 4096), "jax", Role.hidden),  # stacked [layers, in, out]
])
def test_the_shape_settles_what_a_default_name_suggests(name, shape, layout, role):
    assert assign(name, shape, 1024, layout=layout)[0] is role


def test_an_unnamed_vocabulary_matrix_is_not_hidden_by_its_shape():
    # 32768 = 32 x 1024: a multiple of the width, but no MLP is 32 widths wide
    assert 32768 > HIDDEN_SHAPE_RATIO * 1024
    for shape in ((32768, 1024), (1024, 32768)):
        with pytest.raises(ValueError, match="no rule names its role"):
            assign("params/Dense_2/kernel", shape, 1024, layout="jax")
    assert assign("params/Dense_1/kernel", (1024, 4096), 1024, layout="jax") == (Role.hidden, 1.0)


def test_a_tensor_whose_fan_in_spans_axes_is_refused():
    with pytest.raises(ValueError, match=r"fan-in axis \(16\) is no multiple of the width"):
        assign("Block_0/attn/query/kernel", (1024, 16, 64), 1024, layout="jax")
    with pytest.raises(ValueError, match="fan-in is another axis or spans several axes"):
        assign("mlp.c_proj.weight", (1024, 1024, 3, 3), 1024, layout="torch")  # a conv: [out, in, kh, kw]
    assert assign("w.kernel", (1024, 1024), 1024, layout="jax") == (Role.hidden, 1.0)  # 2-D: [in, out]


def test_a_users_own_rule_is_taken_as_written():
    mine = [GroupRule(pattern=r"prenorm", role=Role.vector)]
    assert named_role("PreNormBlock_0/Dense_0/kernel", (1024, 4096), mine) is Role.vector
    assert named_role("PreNormBlock_0/Dense_0/kernel", (1024, 4096)) is None  # the defaults: nothing names it


def test_a_rules_file_with_another_table_names_it(tmp_path):
    """Read as a {pattern: role} mapping, such a file blamed a valid rule (`rules[0]: role: ...`)."""
    from abcscale.usecases.recommend import read_rules

    path = tmp_path / "r.toml"
    path.write_text('[[rules]]\npattern = "Dense_2"\nrole = "readout"\n[other]\nx = 1\n')
    with pytest.raises(ValueError, match="rules: a document with 'rules' holds nothing else; also has other"):
        read_rules(path)
    path.write_text('[[rules]]\npattern = "Dense_2"\nrole = "readout"\n')
    assert read_rules(path) == (GroupRule(pattern="Dense_2", role=Role.readout),)
