"""The theory commands as a user runs them: JSON shape and exit code 2 on bad input."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from abcscale.cli import app, main
from abcscale.schemas.api import AnalyticRecommend, ConvertRequest
from abcscale.schemas.theory import BaseConfig
from abcscale.usecases import convert_setting, recommend_analytic

runner = CliRunner()


def _program(argv: list[str], capsys: pytest.CaptureFixture[str]) -> SimpleNamespace:
    """The command line as the program reads it (``main(argv)``: its parsing and its one-line errors), in this
    process: its exit status, stdout and stderr, as a subprocess's ``returncode``, ``stdout`` and ``stderr``. A
    process each cost 0.4 CPU-s of imports (2026-12-07); tests/cli/test_program_exit.py runs the program itself."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return SimpleNamespace(returncode=exc.value.code, stdout=out.out, stderr=out.err)


def run(*args: str):
    return runner.invoke(app, list(args))


def test_table_json_all_combinations():
    res = run("theory", "table", "--json")
    assert res.exit_code == 0
    rows = json.loads(res.stdout)
    assert len(rows) == 4 * 6 * 2 * 3  # parameterizations x 6 optimizers (sgd ... lion, muon) x 2 x layers
    keys = {"parameterization", "optimizer", "alignment", "layer", "a", "b", "c", "unique"}
    assert keys <= set(rows[0])
    assert set(rows[0]["alignment"]) == {"alpha", "omega", "u"}


def test_table_explicit_alignment_gives_lp_answer():
    res = run("theory", "table", "-p", "standard", "-o", "adam", "-a", "0.75,0.5,0.75", "--json")
    assert res.exit_code == 0
    c = {r["layer"]: r["c"] for r in json.loads(res.stdout)}
    assert c == {"embedding": 0.0, "hidden": 0.75, "readout": 0.75}


def test_recommend_json_matches_engine():
    res = run("recommend", "-p", "mup", "-o", "adam", "-n", "4096", "--base-width", "256", "--base-lr", "3e-3",
              "--json")
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    want = recommend_analytic(AnalyticRecommend(parameterization="mup", optimizer="adam", width=4096,
                                                base=BaseConfig(width=256, beta=3e-3)))
    assert got == want.model_dump(mode="json")
    assert got["source"] == "theory"


def test_convert_json_round_trip_and_symmetry():
    res = run("theory", "convert", "-o", "adam", "--from", "mup", "--to", "mf", "--width", "1024",
              "--base-width", "256", "--base-lr", "1e-3", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    req = ConvertRequest.model_validate({"optimizer": "adam", "from": "mup", "to": "mean_field", "width": 1024,
                                         "base_width": 256, "base_lr": 1e-3})
    assert out == convert_setting(req).model_dump(mode="json", by_alias=True)  # the REST answer, by construction
    assert out["symmetric"] is True and out["from"] == "mup" and out["to"] == "mean_field"
    src = {s["layer"]: s for s in out["source"]["layers"]}
    dst = {s["layer"]: s for s in out["converted"]["layers"]}
    for layer in ("embedding", "hidden", "readout"):
        assert dst[layer]["multiplier"] * dst[layer]["init_std"] == pytest.approx(
            src[layer]["multiplier"] * src[layer]["init_std"])


@pytest.mark.parametrize("args", [
    ["recommend", "-p", "bogus", "-o", "adam", "-n", "64", "--base-width", "32", "--base-lr", "1e-3"],
    ["recommend", "-p", "mup", "-o", "adam", "-n", "-64", "--base-width", "32", "--base-lr", "1e-3"],
    ["recommend", "-p", "mup", "-o", "adam", "-n", "64", "--base-width", "32", "--base-lr", "-1"],
    ["recommend", "-p", "mup", "-o", "adam", "-n", "64", "--base-width", "32", "--base-lr", "nan"],
    ["recommend", "-p", "mup", "-o", "adam", "-n", "64"],
    ["recommend", "-p", "mup", "-o", "rmsprop", "-n", "64", "--base-width", "32", "--base-lr", "1e-3"],
    ["theory", "table", "--alignment", "1,2"],
    ["theory", "table", "--alignment", "full,x,y"],
    ["theory", "table", "--parameterization", "spp"],
    ["recommend", "-p", "mup", "-o", "adam", "-n", "ten"],
    ["recommend", "-p", "mup", "-o", "adam", "-n", "64", "--base-width", "32", "--base-lr", "1e-3", "--gamma", "1,2"],
])
def test_bad_input_exits_2_with_one_line(args, capsys):
    proc = _program(args, capsys)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("mode", ["coupled", "independent"])
def test_convert_takes_adamw_weight_decay(mode):
    res = run("theory", "convert", "-o", "adamw", "--from", "mup", "--to", "sp", "-n", "1024", "--base-width", "256",
              "--weight-decay", "0.1", "--weight-decay-mode", mode, "--json")
    assert res.exit_code == 0, res.output
    req = ConvertRequest.model_validate({"optimizer": "adamw", "from": "mup", "to": "standard", "width": 1024,
                                         "base_width": 256, "weight_decay": 0.1, "weight_decay_mode": mode})
    assert json.loads(res.stdout) == convert_setting(req).model_dump(mode="json", by_alias=True)
    out = json.loads(res.stdout)
    assert out["weight_decay_mode"] == mode
    assert all(s["weight_decay"] is not None for s in out["converted"]["layers"])
    table = run("theory", "convert", "-o", "adamw", "--from", "mup", "--to", "sp", "-n", "1024",
                "--weight-decay", "0.1", "--weight-decay-mode", mode)
    assert table.exit_code == 0 and f"weight decay ({mode})" in table.stdout


@pytest.mark.parametrize("args, flag", [
    (["-o", "adam", "--weight-decay", "0.1"], "--weight-decay: adam has no weight decay that abcscale transfers"),
    (["-o", "adamw", "--weight-decay", "-1"], "--weight-decay"),
    (["-o", "adamw", "--weight-decay", "0.1", "--weight-decay-mode", "often"], "--weight-decay-mode"),
])
def test_convert_bad_weight_decay_exits_2_naming_the_flag(args, flag, capsys):
    proc = _program(["theory", "convert", "--from", "mup", "--to", "sp", "-n", "1024", *args], capsys)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0], proc.stderr
