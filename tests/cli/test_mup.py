"""`abcscale mup import` / `export`: tables, --json, and bad flags as one line with exit 2."""

from __future__ import annotations

import json
import shlex

import pytest
from typer.testing import CliRunner

from abcscale.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})  # the export's table is 7-9 columns wide


def test_import_prints_constants_and_a_recommend_command_that_runs():
    res = invoke("mup", "import", "--optimizer", "adam", "--base-width", "256", "--lr", "3e-3",
                 "--init-std", "1,0.0625,0.0625", "--width", "4096")
    assert res.exit_code == 0, res.output
    assert "0.0625" in res.output and "16" in res.output and "epsilon_mode constant" in res.output
    line = next(x for x in res.output.splitlines() if x.startswith("equivalent: "))
    cmd = shlex.split(line.removeprefix("equivalent: "))
    assert cmd[:2] == ["abcscale", "recommend"] and "--multiplier" in cmd
    rec = invoke(*cmd[1:], "--json")  # the printed command is one abcscale takes
    assert rec.exit_code == 0, rec.output
    lrs = {x["layer"]: x["lr"] * x["multiplier"] for x in json.loads(rec.stdout)["layers"]}
    assert lrs == pytest.approx({"embedding": 3e-3, "hidden": 3e-3 / 16, "readout": 3e-3 / 16})  # m * lr


def test_import_json():
    res = invoke("mup", "import", "-o", "sgd", "--base-width", "256", "--lr", "3e-3", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["constants"]["multiplier"] == {"embedding": 0.0625, "hidden": 1.0, "readout": 16.0}
    assert out["recommend"]["base"]["beta"] == pytest.approx(3e-3) and out["setup"]["width"] == 256


def test_export_prints_what_to_pass_to_mup():
    res = invoke("mup", "export", "-o", "adam", "-n", "4096", "--base-width", "256", "--base-lr", "3e-3",
                 "--multiplier", "0.0625,1,16", "--init-scale", "16,1,1", "--epsilon-mode", "constant")
    assert res.exit_code == 0, res.output
    assert "set_base_shapes" in res.output and "MuReadout(..., output_mult=1)" in res.output
    assert "MuAdam" in res.output
    out = json.loads(invoke("mup", "export", "-o", "adam", "-n", "4096", "--base-width", "256", "--base-lr",
                            "3e-3", "--multiplier", "0.0625,1,16", "--init-scale", "16,1,1", "--json").stdout)
    # the readout's bias (fixed) has a group of its own here: its epsilon is not the vector group's
    assert out["setup"]["lr"] == pytest.approx(dict.fromkeys(("embedding", "hidden", "readout", "vector", "fixed"),
                                                             3e-3))
    assert out["setup"]["init_std"] == pytest.approx({"embedding": 1.0, "hidden": 0.0625, "readout": 0.0625})


def test_export_gives_each_group_the_weight_decay_mu_adamw_must_be_given():
    args = ["mup", "export", "-o", "adamw", "-n", "4096", "--base-width", "256", "--base-lr", "3e-3",
            "--weight-decay", "0.1"]
    res = invoke(*args)
    assert res.exit_code == 0, res.output
    assert "MuAdamW(param_groups" in res.output and "weight_decay" in res.output and "applied decay" in res.output
    out = json.loads(invoke(*args, "--json").stdout)
    given = out["setup"]["weight_decay"]
    assert [given[r] for r in ("embedding", "hidden", "readout", "vector")] == pytest.approx([0.00625, 0.1, 1.6, 0])
    applied = {r["role"]: r["weight_decay"] for r in out["roles"]}
    assert applied["hidden"] == pytest.approx(16 * given["hidden"])  # MuAdamW multiplies it by width_mult


def test_export_gives_each_group_its_epsilon_and_import_reads_them():
    args = ["mup", "export", "-o", "adam", "-n", "4096", "--base-width", "256", "--base-lr", "3e-3"]
    res = invoke(*args)
    assert res.exit_code == 0, res.output
    assert "MuAdam(param_groups): lr, eps per group" in res.output and "eps=" not in res.output
    out = json.loads(invoke(*args, "--json").stdout)
    eps = out["setup"]["epsilon"]
    assert eps == {r["role"]: r["epsilon"] for r in out["roles"]} and len(set(eps.values())) == 3
    assert f"{eps['embedding']:.4g}" in res.output and f"{eps['hidden']:.4g}" in res.output
    # the constants of a mup run with one eps, at its base width: one number, in the call, and no column
    one = invoke("mup", "export", "-o", "adam", "-n", "256", "--base-width", "256", "--base-lr", "3e-3",
                 "--multiplier", "0.0625,1,16", "--init-scale", "16,1,1", "--epsilon-mode", "constant")
    assert "MuAdam(param_groups, eps=1e-08): lr per group" in one.output and "eps per group" not in one.output
    back = invoke("mup", "import", "-o", "adam", "--base-width", "256", "--lr", "3e-3", "--width", "4096",
                  "--epsilon", ",".join(str(eps[r]) for r in ("embedding", "hidden", "readout", "vector", "fixed")),
                  "--json")
    assert back.exit_code == 0, back.output
    imported = json.loads(back.stdout)
    assert imported["setup"]["epsilon"] == pytest.approx(eps)
    assert imported["constants"]["epsilon"] == pytest.approx(eps["hidden"])
    assert any("the groups' differ" in w for w in imported["warnings"])
    bad = invoke("mup", "import", "-o", "adam", "--base-width", "256", "--lr", "3e-3", "--epsilon", "1e-8,2e-8")
    assert bad.exit_code == 2 and "--epsilon" in bad.output and "give one number or 4" in bad.output
    assert "or 5 (e,h,r,v,f" in " ".join(bad.output.split())


def test_import_reads_mu_adamws_decay_and_says_what_it_does_not_carry():
    res = invoke("mup", "import", "-o", "adamw", "--base-width", "256", "--lr", "3e-3", "--width", "4096",
                 "--weight-decay", "0.1", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["constants"]["weight_decay"] == pytest.approx(0.1)
    assert "--weight-decay 0.1" in out["command"]
    assert any("vector-like" in w and "weight_decay" in w for w in out["warnings"])
    bad = invoke("mup", "import", "-o", "adam", "--base-width", "256", "--lr", "3e-3", "--weight-decay", "0.1")
    assert bad.exit_code == 2 and "--weight-decay" in bad.output


def test_import_of_adafactor_warns_and_prints_no_epsilon():
    res = invoke("mup", "import", "-o", "adafactor", "--base-width", "256", "--lr", "3e-3", "--width", "4096")
    assert res.exit_code == 0, res.output
    assert "epsilon 1e-08" not in res.output
    assert "width_mult^-1/2" in " ".join(res.output.split())


@pytest.mark.parametrize(("args", "flag"), [
    (["import", "-o", "adam", "--base-width", "0", "--lr", "3e-3"], "--base-width"),
    (["import", "-o", "adam", "--base-width", "256", "--lr", "3e-3,1"], "--lr"),
    (["import", "-o", "adam", "--base-width", "256", "--lr", "abc"], "--lr"),
    (["import", "-o", "adam", "--base-width", "256", "--lr", "-1"], "--lr"),
    (["import", "-o", "adam", "--base-width", "256", "--lr", "1e-3", "--output-mult", "0"], "--output-mult"),
    (["import", "-o", "adam", "--base-width", "256", "--lr", "1e-3", "--init-std", "1,2"], "--init-std"),
    (["import", "-o", "adamm", "--base-width", "256", "--lr", "1e-3"], "--optimizer"),
    (["export", "-o", "adam", "-n", "4096", "--base-width", "0", "--base-lr", "3e-3"], "--base-width"),
    (["export", "-o", "adam", "-n", "4096", "--base-width", "256", "--base-lr", "3e-3", "--gamma", "x"],
     "--gamma"),
])
def test_bad_flags_exit_2_with_one_line_naming_the_flag(args, flag):
    res = invoke("mup", *args)
    assert res.exit_code == 2, res.output
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert flag in res.output and "Traceback" not in res.output
    assert len([x for x in lines if x.startswith("error")]) == 1
