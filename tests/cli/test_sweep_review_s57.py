"""Session 57: a review of the sweep commands' messages. An error named the SPEC file where a flag had replaced the
file's bad key (and `--steps 0` went unsaid), a check across fields named a flag nobody typed (`--head-dim` for
`--widths 24`, `--widths` in tune, which has none), a read-only --out said an errno, and the same user model spelled
`./um/model.py` said its runs were dropped from the table."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from abcscale.cli import app

runner = CliRunner()
TINY = ["--model", "mlp", "-p", "mup", "-o", "adam", "--steps", "3", "--batch", "2", "--seq-len", "8", "--depth", "1",
        "--log2-lr", "-6:-5:1", "-q"]


def _err(res) -> str:
    return " ".join(res.stderr.split())


@pytest.mark.parametrize(("toml", "flags", "said"), [
    # the file's widths (24 with head_dim 16) replaced by --widths 32: the error left is --steps'
    ("widths = [24]\n", ["--widths", "32", "--steps", "0"], "error: --steps: Input should be greater than 0"),
    ("widths = [24]\n", [], "error: SPEC: widths: head_dim 16 must divide every width (not [24])"),
    # --widths typed beside the file's head_dim: the widths' error
    ("widths = [16]\nhead_dim = 16\n", ["--widths", "24"], "error: --widths: head_dim 16 must divide every width"),
    ("widths = [16]\nhead_dim = 16\n", ["--head-dim", "12"], "error: --head-dim: 12 must divide every width"),
    # the file's head_dim, not a flag, is what an mlp refuses
    ("widths = [16, 32]\nhead_dim = 8\n", ["--model", "mlp"], "error: SPEC: head_dim: only the transformer"),
    # a value inside a key: the file's path to it, a table of constants or a flat key alike (a code review)
    ("widths = [16]\n[constants]\ninit_scale = [1, -1, 1]\n", [],
     "error: SPEC: constants.init_scale.hidden: Input should be positive"),
    ("widths = [16]\ninit_scale = [1, -1, 1]\n", [], "error: SPEC: constants.init_scale.hidden: Input should be"),
    ("widths = [32, -64]\n", [], "error: SPEC: widths.1: widths must be positive, got -64"),
    ("widths = [16]\ngammas = [[1, 1, 1], [1, 1, -1]]\n", [], "error: SPEC: gammas.readout: Input should be"),
    ("widths = [16]\n", ["--widths", "32,-64"], "error: --widths[1]: widths must be positive, got -64"),
    # --weight-decay is the top-level decay, not the file's constants.weight_decay (a second code review)
    ("widths = [16]\n[constants]\nweight_decay = 0.5\n", ["--weight-decay", "0.01"],
     "error: SPEC: constants.weight_decay: adam has no weight decay that abcscale transfers"),
    ("widths = [true, 32]\n", [], "error: SPEC: widths[0]: true/false is not a number"),
])
def test_each_error_names_where_its_value_came_from(tmp_path, toml, flags, said):
    spec = tmp_path / "s.toml"
    spec.write_text(toml)
    res = runner.invoke(app, ["sweep", str(spec), *flags, "--out", str(tmp_path / "o"), "--show-roles"])
    assert res.exit_code == 2, res.output
    assert said.replace("SPEC", str(spec)) in _err(res), _err(res)


@pytest.mark.parametrize(("flags", "said"), [
    (["--model", "transformer", "--base-width", "7"], "error: --base-width: head_dim 16 must divide every width"),
    (["--model", "mlp", "--base-width", "2000000"], "error: --base-width: 2000000 gives the mlp a matrix"),
])
def test_tune_says_the_base_width_as_its_own_flag(tmp_path, flags, said):
    res = runner.invoke(app, ["tune", *flags, "--out", str(tmp_path / "c.json")])
    assert res.exit_code == 2, res.output
    assert said in _err(res) and "--widths" not in _err(res)


def test_tune_refuses_a_verify_width_before_the_search(tmp_path):
    res = runner.invoke(app, ["tune", "--model", "transformer", "--base-width", "32", "--verify-widths", "40",
                              "--trials", "1", "--steps", "5", "--out", str(tmp_path / "c.json")])
    assert res.exit_code == 2, res.output
    assert _err(res) == "error: --verify-widths: 40: head_dim: 16 must divide every width (not [40])"
    assert not (tmp_path / "c.json").exists()  # nothing was searched


def test_an_out_it_cannot_write_into_names_out(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "cells").write_text("not a folder")
    res = runner.invoke(app, ["sweep", *TINY, "--widths", "16", "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert _err(res).startswith(f"error: --out: cannot write into {out} (")


@pytest.mark.e2e
def test_the_same_model_spelled_otherwise_drops_no_runs(tmp_path, monkeypatch):
    (tmp_path / "um").mkdir()
    (tmp_path / "um" / "tiny.py").write_text(
        "import jax\n\n\ndef factory(width, depth, *, vocab, seq_len):\n"
        "    shapes = {'wte': (vocab, width), 'fc1': (width, width), 'lm_head': (width, vocab)}\n\n"
        "    def apply(params, tokens, record):\n"
        "        h = record('h', jax.nn.gelu(params['wte'][tokens] @ params['fc1']))\n"
        "        return h @ params['lm_head']\n"
        "    return {'shapes': shapes, 'apply': apply}\n")
    monkeypatch.chdir(tmp_path)
    args = ["-p", "mup", "--widths", "16", "--log2-lr", "-6,-5", "--steps", "3", "--batch", "2", "--seq-len", "8",
            "--depth", "1", "--out", "u", "-q"]
    first = runner.invoke(app, ["sweep", "--model", "um/tiny.py:factory", *args])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["sweep", "--model", "./um/tiny.py:factory", *args])
    assert again.exit_code == 0, again.output
    assert "note:" not in again.stderr, again.stderr
    fewer = runner.invoke(app, ["sweep", "--model", "um/tiny.py:factory", *args[:5], "-6", *args[6:]])
    assert fewer.exit_code == 0 and "held 2 runs; it now lists this sweep's 1, without 1 of those" in _err(fewer)


def test_a_user_models_roles_list_fixed(tmp_path, monkeypatch):
    (tmp_path / "bad.py").write_text(
        "def factory(width, depth, *, vocab, seq_len):\n"
        "    return {'shapes': {'w': (vocab, width), 'o': (width, vocab)}, 'apply': lambda p, t, r: t,\n"
        "            'roles': {'w': 'embeding'}}\n")
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["sweep", "--model", "bad.py:factory", "--widths", "16", "--out", "o", "--show-roles"])
    assert res.exit_code == 2 and "embedding, hidden, readout, vector or fixed" in _err(res), _err(res)


@pytest.mark.e2e
def test_an_interrupted_sweep_with_json_says_so_on_stdout(tmp_path, monkeypatch):
    import json

    from abcscale.runner import sweep as sweep_mod

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_mod, "run_cell", stop)
    res = runner.invoke(app, ["sweep", *TINY, "--widths", "16", "--out", str(tmp_path / "o"), "--json"])
    assert res.exit_code == 130, res.output
    doc = json.loads(res.stdout)
    assert doc["ok"] is False and doc["exit_code"] == 130
    assert doc["errors"][0].startswith("interrupted: 0 of this sweep's 2 runs are kept in")


def test_coord_check_names_the_flag_typed(tmp_path):
    res = runner.invoke(app, ["coord-check", "-p", "mup", "-o", "adam", "--widths", "24,40"])
    assert res.exit_code == 2 and _err(res) == "error: --widths: head_dim 16 must divide every width (not [24, 40])"
    res = runner.invoke(app, ["coord-check", "-p", "mup", "-o", "adam", "--widths", "32,64", "--head-dim", "12"])
    assert res.exit_code == 2 and _err(res).startswith("error: --head-dim: 12 must divide every width")
