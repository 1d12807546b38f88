"""Session 69: a JAX user model's readout given its ``fan_in`` axes. A readout sums over the width, so the axes its
logits contract grow with it (axis 0 of a [D, V] kernel; axis 0 alone of a DenseGeneral(features=(4, V / 4))'s
[D, 4, V / 4]); the runner refused every readout ``fan_in`` whose size grew with the width, so the contraction the
export's docs point to (``fan_in=``) could not be given to the sweep, and the [D, 4, V / 4] readout trained at
(4 D)^-1 where the model sums over D. A readout's axes that do not grow (the vocabulary's) are refused instead."""

from __future__ import annotations

import pytest

pytest.importorskip("jax")

from abcscale.runner import user  # noqa: E402
from tests.runner.test_review_s68_jax import BASE, SPLIT_READOUT, WIDTH, _groups, _ref, _runner_vs_export  # noqa: E402
from tests.runner.test_user_review_s63 import FLAX_MLP_WITH  # noqa: E402

HEAD = "params/head/kernel"


def test_a_split_readout_given_its_contraction_starts_as_the_export_draws_it(tmp_path):
    ref = _ref(tmp_path, SPLIT_READOUT.replace('"apply": apply}', '"apply": apply, "fan_in": {%r: [0]}}' % HEAD))
    got = _runner_vs_export(ref, fan_in=lambda w: {HEAD: w})
    for width in (BASE, WIDTH):
        drawn, exported, role, label, _ = got[(width, HEAD)]
        assert role == label == "readout"
        # what one logit sums over is D, as a [D, V] readout's: the 2-D readout's std, at every width
        assert drawn == pytest.approx(exported, rel=1e-9)
        assert drawn == pytest.approx(_groups("adam", width).init_std("readout", 1.0), rel=1e-9)
    # without it, every axis but the last (4 D): a quarter of it (muP + Adam: the readout std goes as 1 / fan-in)
    plain = _runner_vs_export(_ref(tmp_path, SPLIT_READOUT, "plain.py"))
    assert plain[(WIDTH, HEAD)][0] == pytest.approx(got[(WIDTH, HEAD)][0] / 4, rel=1e-9)


def test_a_2d_readouts_width_axis_is_taken_and_its_vocabulary_axis_refused(tmp_path):
    from abcscale.runner.sweep import _program
    from tests.runner.test_user_key_s63 import _spec

    plain = _ref(tmp_path, FLAX_MLP_WITH % "", "plain.py")
    given = _ref(tmp_path, FLAX_MLP_WITH % ', "fan_in": {"Dense_2": {"kernel": 0}}', "given.py")
    consts = []
    for ref in (plain, given):
        user.check(ref, [16, 32], 1, 8)
        spec = _spec(ref)
        consts.append([_program(spec, c, (), False).specs()["Dense_2/kernel"].std_const for c in spec.cells()])
    assert consts[1] == consts[0] == [1.0, 1.0]  # D / width: the readout's std is its role's at every width
    vocab = _ref(tmp_path, FLAX_MLP_WITH % ', "fan_in": {"Dense_2": {"kernel": 1}}', "vocab.py")
    with pytest.raises(ValueError, match=r"fan_in: 'Dense_2/kernel' \[\d+, 256\] is a readout, and its 'fan_in' "
                                         r"axes \[1\] give 256 at width \d+ but 256 at width \d+.*grows as the "
                                         r"width does"):
        user.check(vocab, [16, 32], 1, 8)


#: a bias-less 1-D depthwise conv (Mamba's, a ConvNeXt-1D's): kernel [4, 1, D], one filter per channel
DEPTHWISE_1D = '''
import jax

def make(width, depth, *, vocab, seq_len):
    D = width
    shapes = {"params": {"wte": {"embedding": (vocab, D)},
                         "blk": {"dwconv": {"kernel": (4, 1, D)}, "up": {"kernel": (D, 2 * D)},
                                 "down": {"kernel": (2 * D, D)}},
                         "lm_head": {"kernel": (D, vocab)}}}
    def apply(p, tok, record):
        p = p["params"]
        x = p["wte"]["embedding"][tok]
        x = x + jax.lax.conv_general_dilated(x, p["blk"]["dwconv"]["kernel"], (1,), ((3, 0),),
                                             dimension_numbers=("NWC", "WIO", "NWC"), feature_group_count=D)
        x = x + jax.nn.gelu(x @ p["blk"]["up"]["kernel"]) @ p["blk"]["down"]["kernel"]
        return x @ p["lm_head"]["kernel"]
    return {"shapes": shapes, "apply": apply}
'''


def test_a_bias_less_1d_depthwise_kernel_is_vector_like_in_the_sweep_and_the_export(tmp_path):
    """[4, 1, D] was refused by both, with the embedding's role suggested (the 4-axis [7, 7, 1, C] was read as
    depthwise since session 67; the 3-axis one was not)."""
    got = _runner_vs_export(_ref(tmp_path, DEPTHWISE_1D))
    for width in (BASE, WIDTH):
        drawn, exported, role, label, init = got[(width, "params/blk/dwconv/kernel")]
        assert role == label == "vector"
        # the model's own draw, lecun normal over its taps: the export keeps the leaf's values (no std of its own)
        assert init == "normal" and exported is None and drawn == pytest.approx(4 ** -0.5, rel=1e-9)
