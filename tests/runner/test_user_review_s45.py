"""Session 45: an ML engineer's own plain-JAX models (a user review): silent wrong setups now refused or fixed."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from abcscale.cli import app

pytest.importorskip("jax")
runner = CliRunner()

MLP = '''
import jax

def make(width, depth, *, vocab, seq_len):
    shapes = {"EMB": (vocab, width), "b1": (width,), "w2": (width, width), "b2": (width,), "OUT": (width, vocab)}
    def apply(p, tok, record):
        h = p["EMB"][tok] + p["b1"]
        PRINT
        h = record("h1", jax.nn.relu(h @ p["w2"] + p["b2"]))
        return READOUT
    return {"shapes": shapes, "apply": apply, "roles": ROLES}
'''


def _model(tmp_path, name="m.py", emb="w1", out="w3", roles="{}", readout=None, printing=""):
    text = (MLP.replace("READOUT", readout or f'h @ p["{out}"]').replace("EMB", emb).replace('"OUT"', f'"{out}"')
            .replace("ROLES", roles).replace("PRINT", printing or "pass"))
    (tmp_path / name).write_text(text)
    return f"{tmp_path / name}:make"


def _sweep(tmp_path, ref, *extra):
    return runner.invoke(app, ["sweep", "--model", ref, "-p", "mup", "--widths", "16,32", "--depth", "1",
                               "--log2-lr=-6", "--steps", "2", "--batch", "2", "--seq-len", "8", "--seeds", "1",
                               "--out", str(tmp_path / "out"), "-q", *extra])


def test_a_matrix_named_like_a_hidden_one_whose_vocab_axis_is_fixed_asks_for_its_role(tmp_path):
    """`w1` [vocab, width] and `w3` [width, vocab] were trained as hidden matrices (their LRs shrinking as
    1/width, the init tied to vocab/width), unsaid, and coord-check passed them."""
    res = _sweep(tmp_path, _model(tmp_path))
    said = " ".join(res.stderr.split())
    assert res.exit_code == 2, res.output
    assert "'w1' [256, 16] at width 16 ([256, 32] at 32): its name reads as a hidden matrix's" in said
    assert "'roles': {'w1': 'embedding'}" in said
    ok = _model(tmp_path, "ok.py", roles='{"w1": "embedding", "w3": "readout"}')
    assert _sweep(tmp_path, ok).exit_code == 0


def test_a_tied_embedding_is_refused(tmp_path):
    """The lookup's matrix also making the logits trained as an embedding (init std 1 under muP: eval loss 7.9 at
    width 32, 13.5 at 64), with no word."""
    ref = _model(tmp_path, emb="wte", out="w2", readout='h @ p["wte"].T')
    res = _sweep(tmp_path, ref)
    said = " ".join(res.stderr.split())
    assert res.exit_code == 2 and "no parameter is a readout" in said and "a tied embedding" in said, res.output


def test_norm_shifts_named_offset_or_beta_start_at_zero():
    from abcscale.runner.user import _default_init

    for name in ("ln.offset", "norm_beta", "ln_offset", "bias", "fc1_b"):
        assert _default_init(name, (8,)) == "zeros", name
    for name in ("ln.scale", "norm_gamma", "alphabet"):
        assert _default_init(name, (8,)) == "ones", name


def test_a_model_that_prints_leaves_json_stdout_clean(tmp_path):
    ref = _model(tmp_path, "chatty.py", roles='{"w1": "embedding", "w3": "readout"}',
                 printing='print("tracing apply")')
    (tmp_path / "chatty.py").write_text('print("importing chatty")\n' + (tmp_path / "chatty.py").read_text())
    res = _sweep(tmp_path, ref, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["runs"] == 2  # the JSON alone
    assert "importing chatty" in res.stderr and "tracing apply" in res.stderr


def test_a_model_nan_at_initialisation_is_said(tmp_path):
    """A model NaN before any step read as 'diverged 2/2', as too large an LR does."""
    ref = _model(tmp_path, "nan.py", roles='{"w1": "embedding", "w3": "readout"}',
                 readout='h @ p["w3"] * jnp.nan')
    (tmp_path / "nan.py").write_text("import jax.numpy as jnp\n" + (tmp_path / "nan.py").read_text())
    res = _sweep(tmp_path, ref)
    said = " ".join(res.stderr.split())
    assert res.exit_code == 0 and "the loss at initialisation is NaN at width(s) 16, 32" in said, res.output


def test_a_matrix_role_for_a_one_axis_parameter_is_refused(tmp_path):
    """Session 49 (a review): `roles` giving a bias the hidden role trained it with the hidden LR but no decay
    (the runner decays matrices only), `--show-roles` listed a decay for it, and abcscale.optax read it as vector:
    three answers for one parameter. Vector and fixed stay allowed."""
    ref = _model(tmp_path, "bad.py", roles='{"w1": "embedding", "w3": "readout", "b2": "hidden"}')
    res = _sweep(tmp_path, ref)
    said = " ".join(res.stderr.split())
    assert res.exit_code == 2 and "roles: 'b2' [16] has one axis: the hidden role is a matrix's" in said, res.output
    assert "give it 'vector' or 'fixed'" in said
    ok = _model(tmp_path, "ok2.py", roles='{"w1": "embedding", "w3": "readout", "b2": "vector"}')
    assert _sweep(tmp_path, ok).exit_code == 0
