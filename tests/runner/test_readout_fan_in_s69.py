"""Session 69: a JAX user model's readout given its ``fan_in`` axes. A readout sums over the width, so the axes its
logits contract grow with it (axis 0 of a [D, V] kernel; axis 0 alone of a DenseGeneral(features=(4, V / 4))'s
[D, 4, V / 4]); the runner refused every readout ``fan_in`` whose size grew with the width, so the contraction the
export's docs point to (``fan_in=``) could not be given to the sweep, and the [D, 4, V / 4] readout trained at
(4 D)^-1 where the model sums over D. A readout's axes that do not grow (the vocabulary's) are refused instead."""

from __future__ import annotations

import pytest

pytest.importorskip("jax")

from abcscale.runner import user  # noqa: E402
from abcscale.schemas.groups import SPEC_ROLES  # noqa: E402
from tests.runner.test_review_s68_jax import BASE, SPLIT_READOUT, WIDTH, _groups, _ref, _runner_vs_export  # noqa: E402
from tests.runner.test_user_review_s63 import FLAX_MLP_WITH  # noqa: E402

HEAD = "params/head/kernel"


def test_a_split_readout_given_its_contraction_starts_as_the_export_draws_it(tmp_path):
    given = '"apply": apply, "fan_in": {' + repr(HEAD) + ': [0]}}'
    ref = _ref(tmp_path, SPLIT_READOUT.replace('"apply": apply}', given))
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


# --- what the export warns of, said by the sweep too (session 68's note: the export warned, the sweep was silent)

#: a bias-less kernel [3, 1, D, D] under no conv name (`proj`): a 2-D conv, or a stack of 3 x 1 matrices?
UNSAID = DEPTHWISE_1D.replace('"dwconv": {"kernel": (4, 1, D)}',
                              '"dwconv": {"kernel": (4, 1, D)}, "proj": {"kernel": (3, 1, D, D)}').replace(
    "        x = x + jax.nn.gelu(", """        k = p["blk"]["proj"]["kernel"]
        x = x + jax.lax.conv_general_dilated(x[:, :, None, :], k, (1, 1), ((2, 0), (0, 0)),
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))[:, :, 0, :]
        x = x + jax.nn.gelu(""")
PROJ = "params/blk/proj/kernel"


def _sweep_warnings(ref, times=2):
    import warnings

    from abcscale.runner.store import SweepWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(times):  # the CLI checks the model, then the sweep checks it again
            user.check(ref, [BASE, WIDTH], 1, 8)
    return [str(w.message) for w in caught if issubclass(w.category, SweepWarning)]


def test_the_sweep_says_a_lone_depthwise_kernel_and_an_unsaid_4_axis_kernel_once(tmp_path):
    said = _sweep_warnings(_ref(tmp_path, UNSAID))
    assert len(said) == 2, said
    assert said[0].startswith("params/blk/dwconv/kernel: one input channel, read as a depthwise convolution") \
        and "'roles': {'params/blk/dwconv/kernel': 'embedding'}" in said[0]
    assert said[1].startswith(f"{PROJ}: 4 axes [3, 1, {BASE}, {BASE}], read as a stack of [in, out] matrices") \
        and f"'fan_in': {{'{PROJ}': [0, 1, 2]}} (every axis but the last)" in said[1] \
        and f"'fan_in': {{'{PROJ}': [2]}} says so" in said[1]


def test_the_advice_given_silences_it_and_trains_the_conv_as_the_export_draws_it(tmp_path):
    given = UNSAID.replace('"apply": apply}', '"apply": apply, "fan_in": {' + repr(PROJ) + ': [0, 1, 2]}, '
                                              '"roles": {"params/blk/dwconv/kernel": "vector"}}')
    ref = _ref(tmp_path, given)
    assert _sweep_warnings(ref) == []
    got = _runner_vs_export(ref, fan_in=lambda w: {PROJ: 3 * w})
    for width in (BASE, WIDTH):
        drawn, exported, role, label, _ = got[(width, PROJ)]
        assert role == label == "hidden" and drawn == pytest.approx(exported, rel=1e-9)


def test_the_cli_prints_each_once_as_a_warning_line(tmp_path, capsys):
    from abcscale.cli import main

    argv = ["sweep", "--model", _ref(tmp_path, UNSAID, "cli.py"), "--widths", f"{BASE},{WIDTH}", "--depth", "1",
            "--steps", "2", "--batch", "2", "--seq-len", "8", "--data", "synthetic", "--eval-batches", "1",
            "--log2-lr", "-6:-6:1", "-p", "mup", "--out", str(tmp_path / "o"), "-q"]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    err = " ".join(capsys.readouterr().err.split())
    assert err.count("warning: params/blk/dwconv/kernel: one input channel") == 1, err
    assert err.count(f"warning: {PROJ}: 4 axes") == 1, err


# --- a linear over the tokens in a sweep factory (theory.groups: asked at every P, session 69)

TOKENS = '''
import jax
import jax.numpy as jnp

def make(width, depth, *, vocab, seq_len):
    D, P = width, seq_len
    shapes = {"params": {"wte": {"embedding": (vocab, D)},
                         "blk": {"linear_tokens": {"kernel": (P, P), "bias": (P,)},
                                 "up": {"kernel": (D, 2 * D)}, "down": {"kernel": (2 * D, D)}},
                         "lm_head": {"kernel": (D, vocab)}}}
    def apply(p, tok, record):
        p = p["params"]
        x = p["wte"]["embedding"][tok]
        t = p["blk"]["linear_tokens"]
        x = x + jnp.einsum("btd,ts->bsd", x, t["kernel"]) + t["bias"][None, :, None]
        x = x + jax.nn.gelu(x @ p["blk"]["up"]["kernel"]) @ p["blk"]["down"]["kernel"]
        return x @ p["lm_head"]["kernel"]
    return {"shapes": shapes, "apply": apply%s}
'''
LT = "params/blk/linear_tokens"


def test_a_sweep_asks_a_token_linears_roles_and_init_in_the_factorys_words_and_takes_them(tmp_path):
    # seq_len 16 = the base width: its shapes alone read as a hidden matrix's
    with pytest.raises(ValueError, match=rf"roles: parameter '{LT}/kernel' \[16, 16\]: a linear layer over the "
                                         r"tokens .*give the factory's 'roles' for it and its bias, each "
                                         rf"\{{'{LT}/kernel': 'fixed'\}} .*its init std the factory's 'init' gives"):
        user.check(_ref(tmp_path, TOKENS % ""), [BASE, WIDTH], 1, 16)
    kernel, bias = repr(f"{LT}/kernel"), repr(f"{LT}/bias")
    given = ', "roles": {' + kernel + ': "fixed", ' + bias + ': "fixed"}, "init": {' + kernel + ": 0.25}"
    ref = _ref(tmp_path, TOKENS % given, "given.py")
    user.check(ref, [BASE, WIDTH], 1, 16)
    from abcscale.runner.nn import ModelConfig

    for width in (BASE, WIDTH):
        specs = user.param_specs(ModelConfig("user", width, 1, 16, factory=ref))
        kernel = specs[f"{LT}/kernel"]
        assert SPEC_ROLES[kernel.layer].value == "fixed" and kernel.init == "normal" and kernel.std_const == 0.25
