"""``sweep --show-roles`` (runner.roles): each parameter's role, how it was decided, and the numbers the sweep
trains it with, listed before anything trains. Checked against theory's own answer (``abcscale.recommend``) and
against the initial parameters the runner draws."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app

pytest.importorskip("jax")
runner = CliRunner()

#: an MLP whose roles come two ways: given (`first`, `last`), read from the shape (`mix`, square; `mix_bias`, 1-D)
FACTORY = '''
import jax

def make(width, depth, *, vocab, seq_len):
    shapes = {"first": (vocab, width), "mix": (width, width), "mix_bias": (width,), "last": (width, vocab)}
    def apply(p, tok, record):
        h = jax.nn.relu(p["first"][tok] @ p["mix"] + p["mix_bias"])
        return h @ p["last"]
    return {"shapes": shapes, "apply": apply, "roles": {"first": "embedding", "last": "readout"}}
'''


def _ref(tmp_path):
    (tmp_path / "m.py").write_text(FACTORY)
    return f"{tmp_path / 'm.py'}:make"


def _show(*args):
    return runner.invoke(app, ["sweep", "--show-roles", "--json", *args])


def test_built_in_numbers_are_theorys(tmp_path):
    """The built-in transformer's LR / beta, init std and multiplier per role at each width are what
    ``recommend`` gives for the same setup (abc form), and the MLP's 4D -> D projection starts 2x smaller."""
    res = _show("-p", "mup", "-o", "adam", "--widths", "32,128", "--depth", "1", "--out", str(tmp_path / "o"))
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "o").exists()  # nothing trained, nothing written
    (config,) = json.loads(res.stdout)["configurations"]
    assert config["widths"] == [32, 128] and config["form"] == "abc"
    by_name = {p["name"]: p for p in config["parameters"]}
    for i, w in enumerate((32, 128)):
        rec = {s.layer.value: s for s in abcscale.recommend("mup", "adam", width=w, base_width=32, beta=1.0).layers}
        for name, role in (("tok_embed", "embedding"), ("b0.q", "hidden"), ("readout", "readout")):
            p = by_name[name]
            assert p["role"] == role and p["source"] == "built-in"
            assert p["lr_factor"][i] == pytest.approx(rec[role].lr, rel=1e-12)
            assert p["init_std"][i] == pytest.approx(rec[role].init_std, rel=1e-12)
            assert p["multiplier"][i] == pytest.approx(rec[role].multiplier, rel=1e-12)
            assert p["epsilon"][i] == pytest.approx(rec[role].epsilon, rel=1e-12)
        assert by_name["b0.mlp_out"]["init_std"][i] == pytest.approx(by_name["b0.q"]["init_std"][i] / 2)
    assert by_name["b0.ln1"]["role"] == "vector" and by_name["b0.ln1"]["init_std"] == [None, None]
    # muP + Adam: the hidden LR falls as 1/width, the embedding's as width^-1/2 (theory's table)
    assert by_name["b0.q"]["lr_factor"][1] / by_name["b0.q"]["lr_factor"][0] == pytest.approx(0.25)
    assert by_name["tok_embed"]["lr_factor"][1] / by_name["tok_embed"]["lr_factor"][0] == pytest.approx(0.5)


def test_user_model_sources_and_multiplier_free_numbers(tmp_path):
    """Your own model: each role says how it was decided, and the numbers are theory's multiplier-free form."""
    res = _show("--model", _ref(tmp_path), "-p", "mup", "--widths", "16,64", "--depth", "1")
    assert res.exit_code == 0, res.output
    (config,) = json.loads(res.stdout)["configurations"]
    assert config["form"] == "multiplier_free"
    by_name = {p["name"]: p for p in config["parameters"]}
    assert {n: (p["role"], p["source"], p["init"]) for n, p in by_name.items()} == {
        "first": ("embedding", "roles", "normal"), "mix": ("hidden", "shape", "normal"),
        "mix_bias": ("vector", "name", "zeros"), "last": ("readout", "roles", "normal")}
    assert by_name["mix"]["shape"] == [[16, 16], [64, 64]]
    for i, w in enumerate((16, 64)):
        groups = abcscale.recommend("mup", "adam", width=w, base_width=16, beta=1.0, form="multiplier_free").groups
        for name, role in (("first", "embedding"), ("mix", "hidden"), ("last", "readout"), ("mix_bias", "vector")):
            assert by_name[name]["lr_factor"][i] == pytest.approx(groups[role].lr, rel=1e-12)
            assert by_name[name]["multiplier"][i] == 1.0


def test_shown_init_std_is_what_the_runner_draws(tmp_path):
    """The init std listed is the spread of the parameters the sweep starts from (its own draw), and ones/zeros
    inits are exactly that."""
    from abcscale.runner.draws import draw
    from abcscale.runner.roles import parameter_roles
    from abcscale.runner.spec import SweepSpec
    from abcscale.runner.sweep import _program, layer_hyper
    from abcscale.runner.train import compiler_options

    spec = SweepSpec(model="examples/user_model.py:factory", widths=[64], depth=1, parameterizations=["mup"],
                     seq_len=16)
    (config,) = parameter_roles(spec)
    (cell,) = spec.cells()
    specs = _program(spec, cell, (), False).specs()
    params, _ = draw(specs, np.asarray([0], np.uint32), np.asarray(layer_hyper(spec, cell).init_std), steps=1,
                     batch=1, high=1000, options=compiler_options())
    for p in config.parameters:
        x = np.asarray(params[p.name])[0]
        if p.init == "normal":
            # 4,096+ draws: the sample std's relative error is about 1.1%; 8% is 7 of them
            assert float(x.std()) == pytest.approx(p.init_std[0], rel=0.08), p.name
        else:
            assert p.init_std == [None] and np.all(x == (1.0 if p.init == "ones" else 0.0)), p.name
    assert {p.name for p in config.parameters} == set(specs)


def test_table_and_errors(tmp_path):
    """The table names the setup and each parameter; a model that would stop the sweep stops this (exit 2,
    naming --model); a decaying AdamW shows its per-layer decay, the independent decay is said once."""
    res = runner.invoke(app, ["sweep", "--show-roles", "--model", _ref(tmp_path), "-p", "mup,sp", "-o", "adamw",
                              "--widths", "16,32", "--depth", "1", "--weight-decay", "0.01"])
    assert res.exit_code == 0, res.output
    assert res.stdout.count("(multiplier_free form): at widths 16 / 32") == 2  # mup and standard
    assert "mix_bias" in res.stdout and "shape" in res.stdout and "roles" in res.stdout
    assert "independent weight decay (--weight-decay): each step subtracts 0.01" in res.stdout
    toml = tmp_path / "s.toml"
    toml.write_text('[sweep]\noptimizers = ["adamw"]\nparameterizations = ["mup"]\nwidths = [32, 64]\ndepth = 1\n'
                    '[sweep.constants]\nweight_decay = 0.1\n')
    decayed = runner.invoke(app, ["sweep", str(toml), "--show-roles"])
    assert decayed.exit_code == 0, decayed.output
    assert "weight decay" in decayed.stdout  # the per-layer column appears only when some decay is set
    assert "weight decay" not in res.stdout.split("independent")[0]
    (tmp_path / "bad.py").write_text(FACTORY.replace('"mix": (width, width)', '"mix": (width, 7)'))
    bad = runner.invoke(app, ["sweep", "--show-roles", "--model", f"{tmp_path / 'bad.py'}:make", "--widths", "16,32"])
    assert bad.exit_code == 2
    assert "--model" in bad.output and "'mix'" in bad.output


NESTED = '''
import jax, jax.numpy as jnp

def make(width, depth, *, vocab, seq_len):
    shapes = {"Embed_0": {"embedding": (vocab, width)},
              "Dense_0": {"kernel": (width, 4 * width), "bias": (4 * width,)},
              "Dense_1": {"kernel": jax.ShapeDtypeStruct((4 * width, width), jnp.float32), "bias": (width,)},
              "lm_head": {"kernel": (width, vocab)}, "Dropout_0": {}}
    def apply(p, tok, record):
        h = p["Embed_0"]["embedding"][tok]
        f = jax.nn.gelu(h @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"])
        h = h + record("mlp", f @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"])
        return h @ p["lm_head"]["kernel"]
    return {"shapes": shapes, "apply": apply, "roles": {"Embed_0": {"embedding": "embedding"}}, "init": INIT}
'''


def test_nested_parameter_tree(tmp_path):
    """A flax/haiku-style nested 'shapes' (dicts of dicts, a leaf an array's shape or a ShapeDtypeStruct) trains:
    names are the key paths joined by '/', `apply` gets the nested tree back, and `roles`/`init` may be nested or
    flat. It was refused ("must map to a tuple of positive ints")."""
    (tmp_path / "n.py").write_text(NESTED.replace("INIT", '{"Dense_1/bias": "ones"}'))
    ref = f"{tmp_path / 'n.py'}:make"
    res = _show("--model", ref, "--widths", "16,32", "--depth", "1")
    assert res.exit_code == 0, res.output
    by_name = {p["name"]: p for p in json.loads(res.stdout)["configurations"][0]["parameters"]}
    assert set(by_name) == {"Embed_0/embedding", "Dense_0/kernel", "Dense_0/bias", "Dense_1/kernel", "Dense_1/bias",
                            "lm_head/kernel"}
    assert by_name["Embed_0/embedding"]["source"] == "roles" and by_name["Dense_1/bias"]["init"] == "ones"
    assert by_name["Dense_1/kernel"]["role"] == "hidden" and by_name["Dense_1/kernel"]["shape"][0] == [64, 16]
    out = runner.invoke(app, ["sweep", "--model", ref, "--widths", "16,32", "--depth", "1", "--log2-lr=-6",
                              "--steps", "3", "--batch", "2", "--seq-len", "8", "--out", str(tmp_path / "o"), "-q",
                              "--json"])
    assert out.exit_code == 0, out.output
    import pandas as pd

    rows = pd.read_parquet(tmp_path / "o" / "results.parquet")
    assert len(rows) == 2 and rows["final_loss"].notna().all() and not rows["diverged"].any()
    # haiku's module keys hold '/' themselves (transformer/~/mlp): apply gets them back as they were
    haiku = NESTED.replace("INIT", "{}").replace('"Dense_0"', '"net/~/Dense_0"')
    (tmp_path / "hk.py").write_text(haiku)
    hk = _show("--model", f"{tmp_path / 'hk.py'}:make", "--widths", "16,32")
    assert hk.exit_code == 0, hk.output
    assert "net/~/Dense_0/kernel" in {p["name"] for p in json.loads(hk.stdout)["configurations"][0]["parameters"]}
    # two leaves under one name ({"a/b": {"c"}} beside {"a": {"b/c"}}) are refused by name
    clash = NESTED.replace("INIT", "{}").replace('"lm_head": {"kernel": (width, vocab)}',
                                                 '"lm_head": {"kernel": (width, vocab)}, "lm_head/kernel": {}, '
                                                 '"x/y": {"z": (width,)}, "x": {"y/z": (width,)}')
    (tmp_path / "bad.py").write_text(clash)
    bad = _show("--model", f"{tmp_path / 'bad.py'}:make", "--widths", "16,32")
    assert bad.exit_code == 2 and "'x/y/z' names two leaves" in bad.stdout + bad.stderr


SCANNED = '''
import jax

def make(width, depth, *, vocab, seq_len):
    D, L = width, depth
    shapes = {"embed": (vocab, D), "blocks.ln.scale": (L, D), "blocks.ln.bias": (L, D), "blocks.GAIN": (L, D),
              "blocks.fc_in": (L, D, 4 * D), "blocks.fc_out": (L, 4 * D, D), "lm_head": (D, vocab)}
    def apply(p, tok, record):
        def body(h, blk):
            s, b, g, w1, w2 = blk
            x = (h - h.mean(-1, keepdims=True)) * s * g + b
            return h + jax.nn.gelu(x @ w1) @ w2, None
        stack = tuple(p["blocks." + k] for k in ("ln.scale", "ln.bias", "GAIN", "fc_in", "fc_out"))
        h, _ = jax.lax.scan(body, p["embed"][tok], stack)
        return h @ p["lm_head"]
    return {"shapes": shapes, "apply": apply, "roles": ROLES}
'''


def test_stacked_layers_for_scan(tmp_path):
    """Parameters stacked over the depth for ``lax.scan``: a `[depth, D]` gain or bias is vector-like by its name
    (ones / zeros), a `[depth, D, 4D]` matrix hidden; an unnamed stack is exit 2 saying its first axis is the
    depth (it said "a hidden matrix's shape for width 2"), and given the vector role it starts at ones."""
    (tmp_path / "bad.py").write_text(SCANNED.replace("ROLES", "{}"))
    bad = _show("--model", f"{tmp_path / 'bad.py'}:make", "--widths", "16,32", "--depth", "2")
    assert bad.exit_code == 2
    said = bad.stdout + bad.stderr
    assert "'blocks.GAIN' [2, 16]: its first axis (2) is the depth" in said and "width 2" not in said
    (tmp_path / "m.py").write_text(SCANNED.replace("ROLES", '{"blocks.GAIN": "vector"}'))
    ref = f"{tmp_path / 'm.py'}:make"
    res = _show("--model", ref, "--widths", "16,32", "--depth", "2")
    assert res.exit_code == 0, res.output
    by_name = {p["name"]: p for p in json.loads(res.stdout)["configurations"][0]["parameters"]}
    assert {n: (p["role"], p["init"], p["source"]) for n, p in by_name.items() if n.startswith("blocks")} == {
        "blocks.ln.scale": ("vector", "ones", "name"), "blocks.ln.bias": ("vector", "zeros", "name"),
        "blocks.GAIN": ("vector", "ones", "roles"), "blocks.fc_in": ("hidden", "normal", "name"),
        "blocks.fc_out": ("hidden", "normal", "name")}
    assert by_name["blocks.fc_out"]["init_std"][0] == pytest.approx(by_name["blocks.fc_in"]["init_std"][0] / 2)
    out = runner.invoke(app, ["sweep", "--model", ref, "--widths", "16,32", "--depth", "2", "--log2-lr=-6",
                              "--steps", "3", "--batch", "2", "--seq-len", "8", "--out", str(tmp_path / "o"), "-q"])
    assert out.exit_code == 0, out.output


def test_a_matrix_at_a_depth_equal_to_the_width_is_no_stack(tmp_path):
    """`PreNorm_0/Dense_0/kernel` [D, D] at depth == width: its first axis equals the depth, and the name rules
    read `PreNorm` as a norm's, so it was taken for a stack of gains (vector-like, all ones). A dense leaf is not;
    and a 2-D parameter given the vector role outside a stack (learned register tokens [4, D]) is refused as before
    (it started at all ones, silently)."""
    text = '''
def make(width, depth, *, vocab, seq_len):
    shapes = {"embed": (vocab, width), "PreNorm_0/Dense_0/kernel": (width, width), "lm_head": (width, vocab)}
    def apply(p, tok, record):
        return (p["embed"][tok] @ p["PreNorm_0/Dense_0/kernel"]) @ p["lm_head"]
    return {"shapes": shapes, "apply": apply, "roles": ROLES}
'''
    (tmp_path / "m.py").write_text(text.replace("ROLES", "{}"))
    res = _show("--model", f"{tmp_path / 'm.py'}:make", "--widths", "16", "--depth", "16")
    assert res.exit_code == 0, res.output
    by_name = {p["name"]: p for p in json.loads(res.stdout)["configurations"][0]["parameters"]}
    assert (by_name["PreNorm_0/Dense_0/kernel"]["role"], by_name["PreNorm_0/Dense_0/kernel"]["init"]) == (
        "hidden", "normal")
    (tmp_path / "r.py").write_text(text.replace("ROLES", '{"registers": "vector"}').replace(
        '"lm_head": (width, vocab)}', '"lm_head": (width, vocab), "registers": (4, width)}'))
    bad = _show("--model", f"{tmp_path / 'r.py'}:make", "--widths", "16,32", "--depth", "2")
    assert bad.exit_code == 2 and "'registers' is vector-like" in bad.stdout + bad.stderr
