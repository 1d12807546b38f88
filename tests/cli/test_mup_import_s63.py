"""`abcscale mup import --epsilon-mode`, and what `mup import` / `mup export` say of a hidden matrix of fan-in r x the
width (a session-63 review: `recommend --constants IMPORT --epsilon-mode per_layer` was exit 2 "drop one", and mup
import always wrote constant, so the theory's per-layer epsilon took a hand edit of the file)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app

runner = CliRunner()
IMPORT = ("mup", "import", "-o", "adamw", "--base-width", "256", "--lr", "3e-3", "--init-std", "0.02,0.02,0.02",
          "--weight-decay", "0.1", "--epsilon", "1e-8")


def invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def _eps(path, width: int) -> dict[str, float]:
    res = invoke("recommend", "--constants", str(path), "-n", str(width), "--form", "plain", "--json")
    assert res.exit_code == 0, res.output
    return {g["role"]: g["epsilon"] for g in json.loads(res.stdout)["groups"]["roles"]}


def test_import_takes_the_epsilon_mode_and_recommend_carries_it(tmp_path):
    res = invoke(*IMPORT, "--epsilon-mode", "per_layer", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["constants"]["epsilon_mode"] == "per_layer"
    assert "--epsilon-mode" not in doc["command"]  # per_layer is recommend's default
    path = tmp_path / "per_layer.json"
    path.write_text(res.stdout)
    default = tmp_path / "constant.json"
    plain = invoke(*IMPORT, "--json")
    assert plain.exit_code == 0, plain.output
    assert json.loads(plain.stdout)["constants"]["epsilon_mode"] == "constant"  # mup's one epsilon, as before
    default.write_text(plain.stdout)
    # the theory's rule from eps 1e-8 at 256: what the same constants give recommend with the per_layer mode
    constants = {k: v for k, v in doc["constants"].items() if k not in ("width", "beta")}
    want = abcscale.recommend("mup", "adamw", width=2048, base_width=256, beta=3e-3, constants=constants,
                              form="multiplier_free").groups
    got = _eps(path, 2048)
    assert got == pytest.approx({s.role.value: s.epsilon for s in want.roles}, rel=1e-12)
    assert got != pytest.approx(_eps(default, 2048), rel=1e-3)  # the flag changes the answer
    # both agree with microsoft/mup's one epsilon at the base width, where the import holds
    assert _eps(path, 256) == pytest.approx(_eps(default, 256), rel=1e-12)


def test_import_says_how_to_take_the_per_layer_epsilon():
    res = invoke(*IMPORT, "--json")
    said = [w for w in json.loads(res.stdout)["warnings"] if w.startswith("epsilon: microsoft/mup keeps")]
    assert len(said) == 1 and "--epsilon-mode per_layer" in said[0]
    res = invoke(*IMPORT, "--epsilon-mode", "per_layer", "--json")
    said = [w for w in json.loads(res.stdout)["warnings"] if w.startswith("epsilon: microsoft/mup keeps")]
    assert len(said) == 1 and "as asked" in said[0]


def test_a_bad_epsilon_mode_is_exit_2():
    res = invoke(*IMPORT, "--epsilon-mode", "sometimes")
    assert res.exit_code == 2 and "sometimes" in res.output and "per_layer" in res.output


def test_import_warns_of_a_wide_fan_in():
    res = invoke(*IMPORT, "--json")
    said = [w for w in json.loads(res.stdout)["warnings"] if w.startswith("init_std:")]
    assert len(said) == 1 and "0.02 x r^-1/2" in said[0] and "0.01 at r = 4" in said[0] and "fan_in=" in said[0]


def test_export_table_says_a_wide_fan_in_takes_the_hidden_std_x_r():
    res = invoke("mup", "export", "-n", "1024", "-o", "adam", "--base-width", "256", "--base-lr", "3e-3")
    assert res.exit_code == 0, res.output
    row = next(line for line in res.output.splitlines() if line.strip("│┃ ").startswith("hidden"))
    base_std = abcscale.recommend("mup", "adam", width=1024, base_width=256, beta=3e-3,
                                  form="mup").groups.mup.init_std["hidden"]
    assert f"{base_std:.4g} x r^-1/2" in row
