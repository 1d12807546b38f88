"""What a review of users bringing their own JAX models found (session 31): an unnamed embedding or readout
trained as a hidden matrix (a vocabulary of 256 is a multiple of every power-of-two width up to it), a flax
``DenseGeneral`` kernel's fan-in read from its heads axis, 1-D names like ``fc1_bias`` started at ones, and a
broken ``apply`` (None, a tuple, the wrong vocabulary, integer logits, its own exception) was a traceback after
earlier widths had trained, or trained and reported a best LR."""

from __future__ import annotations

import textwrap

import pytest

from abcscale.runner import user

HEADER = "import jax, jax.numpy as jnp\n"


def _ref(tmp_path, body: str, name: str = "m") -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + textwrap.dedent(body))
    return f"{path}:factory"


FLAX_NAMES = """
def factory(width, depth, *, vocab, seq_len):
    shapes = {"Dense_0/kernel": (vocab, width), "Dense_1/kernel": (width, width), "Dense_2/kernel": (width, vocab)}
    def apply(p, t, record):
        return jnp.tanh(p["Dense_0/kernel"][t] @ p["Dense_1/kernel"]) @ p["Dense_2/kernel"]
    return {"shapes": shapes, "apply": apply%s}
"""


def test_an_unnamed_embedding_and_readout_are_not_hidden_matrices(tmp_path):
    ref = _ref(tmp_path, FLAX_NAMES % "")
    # at width 32 both axes of [256, 32] are multiples of 32: only the next width shows that 256 stays
    with pytest.raises(ValueError, match=r"'Dense_0/kernel' \[256, 32\] at width 32 \(\[256, 64\] at 64\): no rule"):
        user.check(ref, [32, 64], 1, 8)
    with pytest.raises(ValueError, match="not both its axes grow"):
        user.check(ref, [32], 1, 8)  # one width: compared with twice it
    roles = ', "roles": {"Dense_0/kernel": "embedding", "Dense_2/kernel": "readout"}'
    named = _ref(tmp_path, FLAX_NAMES % roles, "named")
    user.check(named, [32, 64], 1, 8)
    layers = {k: v.layer for k, v in user.layout(user.build(named, 32, 1, 256, 8), 32).items()}
    assert layers == {"Dense_0/kernel": 0, "Dense_1/kernel": 1, "Dense_2/kernel": 2}


DENSE_GENERAL = """
K = 8
def factory(width, depth, *, vocab, seq_len):
    D, H = width, width // K
    shapes = {"embed": (vocab, D), "attn.query.kernel": (D, H, K), "attn.out.kernel": (H, K, D),
              "lm_head": (D, vocab)}
    def apply(p, t, record):
        x = p["embed"][t]
        q = jnp.einsum("btd,dhk->bthk", x, p["attn.query.kernel"])
        x = x + jnp.einsum("bthk,hkd->btd", q, p["attn.out.kernel"])
        return x @ p["lm_head"]
    return {"shapes": shapes, "apply": apply, "roles": {"attn.out.kernel": "hidden"}%s}
"""


def test_a_dense_general_kernel_needs_its_fan_in_axes(tmp_path):
    ref = _ref(tmp_path, DENSE_GENERAL % "")
    with pytest.raises(ValueError, match="fan_in: .*'attn.query.kernel' .*fan-in is another axis or spans several"):
        user.check(ref, [32, 64], 1, 8)
    given = _ref(tmp_path, DENSE_GENERAL % ', "fan_in": {"attn.query.kernel": 0, "attn.out.kernel": (0, 1)}', "given")
    user.check(given, [32, 64, 128], 1, 8)
    for w in (32, 64, 128):  # fan-in D = H * K at every width: muP's hidden std, not growing as sqrt(width)
        specs = user.layout(user.build(given, w, 1, 256, 8), w)
        assert specs["attn.query.kernel"].std_const == specs["attn.out.kernel"].std_const == 1.0


@pytest.mark.parametrize("fan_in, needle", [({"nope": 0}, "'nope' is not a parameter"),
                                            ({"attn.query.kernel": (0, 1, 2)}, "not all of them"),
                                            ({"attn.query.kernel": 3}, "from -3 to 2"),
                                            ({"attn.query.kernel": True}, "expected an axis"),
                                            ([0], "expected a dict")])
def test_a_bad_fan_in_names_the_field(tmp_path, fan_in, needle):
    ref = _ref(tmp_path, DENSE_GENERAL % f', "fan_in": {fan_in!r}')
    with pytest.raises(ValueError, match=f"fan_in: .*{needle}"):
        user.build(ref, 32, 1, 256, 8)


@pytest.mark.parametrize("name, init", [("fc1_bias", "zeros"), ("b1", "zeros"), ("attn_b", "zeros"),
                                        ("mlp.bias2", "zeros"), ("ln.bias", "zeros"), ("b", "zeros"),
                                        ("ln.scale", "ones"), ("gain", "ones"), ("emb", "ones")])
def test_one_dimensional_bias_names_start_at_zero(name, init):
    assert user._default_init(name, (32,)) == init


BROKEN = """
def factory(width, depth, *, vocab, seq_len):
    shapes = {"embed": (vocab, width), "w": (width, width), "lm_head": (width, vocab)}
    def apply(p, t, record):
        x = p["embed"][t] @ p["w"]
        logits = x @ p["lm_head"]
        return %s
    return {"shapes": shapes, "apply": apply}
"""


@pytest.mark.parametrize("returned, needle", [
    ("None", "got NoneType"), ("(logits, 0)", "got tuple"), ("logits[..., :-1]", r"got float32 \[2, 8, 255\]"),
    ("logits.astype(jnp.int32)", r"got int32 \[2, 8, 256\]"), ("logits[:, 0]", r"got float32 \[2, 256\]"),
    ("p['missing']", "failed: KeyError: 'missing'"), ("record(3, logits)", "record\\(name, x\\): name must be a str"),
    ("logits @ p['w']", "failed: TypeError: dot_general"),
])
def test_a_broken_apply_is_refused_before_training(tmp_path, returned, needle):
    ref = _ref(tmp_path, BROKEN % returned)
    with pytest.raises(ValueError, match=f"model: apply at width 32 .*{needle}"):
        user.check(ref, [32, 64], 1, 8)


def test_the_sweep_refuses_a_broken_apply_before_any_width_trains(tmp_path):
    from abcscale.runner.spec import SweepSpec
    from abcscale.runner.sweep import run_sweep

    body = BROKEN % "logits if width < 64 else None"
    spec = SweepSpec(model=_ref(tmp_path, body), widths=[32, 64], depth=1, seq_len=8, batch=2, steps=2,
                     log2_lr=[-6], data="synthetic")
    with pytest.raises(ValueError, match="apply at width 64"):
        run_sweep(spec, tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "cells").exists() or not any((tmp_path / "out" / "cells").iterdir())
