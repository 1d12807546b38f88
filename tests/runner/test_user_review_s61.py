"""Session 61: a one-axis parameter of the same length at every width (a relative-position bias [2T-1]) took the
vector role by its shape alone, so its LR and epsilon scaled with the width as a norm's gain does; the sweep now
refuses it naming the role to give, and trains it as fixed when the factory says so."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from abcscale.cli import app

pytest.importorskip("jax")
runner = CliRunner()

MODEL = '''
import jax

def make(width, depth, *, vocab, seq_len):
    shapes = {"wte": (vocab, width), "w": (width, width), "rel_pos": (LENGTH,), "lm_head": (width, vocab)}
    def apply(p, tok, record):
        x = record("embed", p["wte"][tok])
        x = x + jax.nn.relu(x @ p["w"])
        x = x + p["rel_pos"][-tok.shape[-1]:][None, :, None]
        return x @ p["lm_head"]
    return {"shapes": shapes, "apply": apply, "roles": ROLES}
'''


def _model(tmp_path, name, length="2 * seq_len - 1", roles="{}"):
    (tmp_path / name).write_text(MODEL.replace("LENGTH", length).replace("ROLES", roles))
    return f"{tmp_path / name}:make"


def _sweep(tmp_path, ref, *extra, out="out"):
    return runner.invoke(app, ["sweep", "--model", ref, "-p", "mup", "--widths", "16,32", "--depth", "1",
                               "--log2-lr=-6", "--steps", "2", "--batch", "2", "--seq-len", "8", "--seeds", "1",
                               "--out", str(tmp_path / out), "-q", *extra])


def test_a_one_axis_parameter_that_does_not_grow_with_the_width_is_refused_as_vector(tmp_path):
    res = _sweep(tmp_path, _model(tmp_path, "rel.py"))
    said = " ".join(res.output.split())
    assert res.exit_code == 2, res.output
    assert "'rel_pos' [15] at width 16 ([15] at 32) has one axis, read as vector-like" in said
    assert "'roles': {'rel_pos': 'fixed'}" in said and "Traceback" not in res.output
    assert not (tmp_path / "out" / "results.parquet").exists()


def test_given_fixed_it_trains_with_the_base_width_numbers_and_a_width_sized_one_stays_vector(tmp_path):
    ref = _model(tmp_path, "relf.py", roles='{"rel_pos": "fixed"}')
    shown = _sweep(tmp_path, ref, "--show-roles", "--json")
    assert shown.exit_code == 0, shown.output
    params = {p["name"]: p for p in json.loads(shown.stdout)["configurations"][0]["parameters"]}
    assert params["rel_pos"]["role"] == "fixed"
    assert _sweep(tmp_path, ref, "--json").exit_code == 0
    # a bias as long as the width is a vector, as before: not refused
    grown = _sweep(tmp_path, _model(tmp_path, "wide.py", length="width"), "--json", out="wide")
    assert grown.exit_code == 0, grown.output
