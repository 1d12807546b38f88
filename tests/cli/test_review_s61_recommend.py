"""Session 61, a CLI review (the recommend use case): a single {pattern, role} object in --rules read as two
rules, a key given twice in --group kept the last silently, and a constants file with a key beside `constants`
was said to hold no constants; a --base-lr that replaces a tune file's beta is said."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app

runner = CliRunner()
TABLE = str(Path(__file__).resolve().parents[2] / "examples" / "tour-sweep.parquet")


def _words(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def fit_json(tmp_path_factory):
    out = tmp_path_factory.mktemp("fit")
    assert runner.invoke(app, ["fit", TABLE, "-q", "--out", str(out)]).exit_code == 0
    return out / "fit.json"


@pytest.mark.parametrize("group", ["parameterization=mup,lr_mode=global,lr_mode=per_layer",
                                   '{"parameterization": "mup", "lr_mode": "global", "lr_mode": "per_layer"}'])
def test_recommend_group_with_a_key_given_twice_is_refused(fit_json, group):
    res = runner.invoke(app, ["recommend", "--fit", str(fit_json), "-n", "1024", "--group", group])
    assert res.exit_code == 2, res.output  # the later lr_mode won, silently
    assert _words(res.output) == ("error: --group: lr_mode: given twice ('global' and 'per_layer'); give each key "
                                  "once")


def test_check_group_with_a_key_given_twice_is_refused(fit_json, tmp_path):
    run = tmp_path / "run.yaml"
    run.write_text("parameterization: mup\noptimizer: adam\nwidth: 1024\nlr: {embedding: 1e-3, hidden: 1e-3, "
                   "readout: 1e-3}\n")
    res = runner.invoke(app, ["check", str(run), "--fit", str(fit_json), "--json", "--group",
                              "lr_mode=global,lr_mode=per_layer"])
    assert res.exit_code == 2
    assert json.loads(res.stdout)["errors"] == ["--group: lr_mode: given twice ('global' and 'per_layer'); give "
                                                "each key once"]


@pytest.mark.parametrize(("name", "text"), [("one.json", '{"pattern": "bias", "role": "readout"}'),
                                            ("one.toml", 'pattern = "bias"\nrole = "readout"\n'),
                                            ("one.yaml", "pattern: bias\nrole: readout\n")])
def test_a_rules_file_of_one_object_is_one_rule(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    res = runner.invoke(app, ["recommend", "-p", "mup", "-o", "adam", "-n", "4096", "--base-width", "256",
                              "--base-lr", "3e-3", "--format", "torch", "--rules", str(path)])
    assert res.exit_code == 0, res.output
    rules = [line for line in res.stdout.splitlines() if line.startswith("#   r\"")]
    assert rules[0] == '#   r"bias" -> readout'  # was: r"pattern" -> vector, r"role" -> readout
    assert not any('r"pattern"' in line or 'r"role"' in line for line in rules)


def test_a_rules_mapping_still_reads_as_regex_to_role(tmp_path):
    path = tmp_path / "map.json"
    path.write_text('{"bias": "readout", "norm": "vector"}')
    res = runner.invoke(app, ["recommend", "-p", "mup", "-o", "adam", "-n", "4096", "--base-width", "256",
                              "--base-lr", "3e-3", "--format", "torch", "--rules", str(path)])
    assert res.exit_code == 0 and '#   r"bias" -> readout' in res.stdout.splitlines(), res.output
    rec = abcscale.recommend("mup", "adam", width=64, base_width=32, beta=0.01, form="plain",
                             rules={"pattern": "bias", "role": "readout"})
    assert [(r.pattern, r.role.value) for r in rec.groups.rules][0] == ("bias", "readout")


def test_a_constants_file_with_a_key_beside_constants_names_it(tmp_path):
    path = tmp_path / "cc2.yaml"
    path.write_text("constants: {gamma: {embedding: 2}}\nparameterization: mup\n")
    res = runner.invoke(app, ["recommend", "-p", "mup", "-o", "adam", "--base-width", "32", "--base-lr", "0.0172",
                              "-n", "64", "--constants", str(path)])
    assert res.exit_code == 2
    assert _words(res.output).startswith(f"error: --constants: {path}: parameterization: unknown key beside "
                                         "constants"), res.output


def test_recommend_says_a_base_lr_that_replaces_the_tuned_beta(tmp_path):
    from tests.helpers import tune_file

    _, path = tune_file(tmp_path)
    notes = []
    for extra in (["--base-lr", "0.1"], [], ["--base-lr", "0.05"]):
        res = runner.invoke(app, ["recommend", "--constants", str(path), "-n", "1024", "--json", *extra])
        assert res.exit_code == 0, res.output
        notes.append([w for w in json.loads(res.stdout)["warnings"] if "replaces the beta" in w])
    assert notes[1] == notes[2] == []
    assert notes[0] == [f"--base-lr: 0.1 replaces the beta 0.05 tuned in {path}, whose gammas were tuned jointly with "
                        "it: every LR is 2x the tuned transfer's (drop --base-lr to use the file's)"]
