"""Messages a review found off the project's rule (session 34), each against the old behaviour: `--widths 0,32`
named the flag but not the item, and `32,,64` dropped the empty item silently; a fit's group selection told the CLI
to "select one with group key=value" (no such flag) and Python the same; REST 422s said "Value error, ...",
`/v1/theory/convert` put a bad `beta` at ["body"], and a JSON width of 16.0 was read as 16 where the CLI and a
constants file refuse it; `recommend(constants=FILE, optimizer="Adam")` was a conflict with the file's adam."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app
from abcscale.fitting import fit_table
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.runner.spec import SweepSpec
from abcscale.service.app import create_app
from abcscale.service.config import Settings
from abcscale.usecases.tune import save_constants
from tests.usecases.test_tune import _tuned

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

runner = CliRunner()
# small enough that a flag the old code accepted trains in seconds, not minutes
TINY = ["-q", "--model", "mlp", "--depth", "1", "--steps", "2", "--batch", "2", "--seq-len", "4", "--data",
        "synthetic", "--log2-lr=-6"]


@pytest.fixture
def client(tmp_path):
    with TestClient(create_app(Settings(data_dir=tmp_path / "svc", database_url=None, api_token=None))) as c:
        yield c


def _error(res) -> str:
    assert res.exit_code == 2 and res.stderr.startswith("error: ") and res.stderr.count("\n") == 1, res.output
    return res.stderr.removeprefix("error: ")


# --- 1. a comma list's bad or empty item is named ---------------------------------------------------------------


@pytest.mark.parametrize(("flag", "value", "said"), [
    ("--widths", "0,32", "--widths[0]: widths must be positive, got 0"),
    ("--widths", "32,,64", "--widths[1]: empty"),
    ("--widths", "32,64,", "--widths[2]: empty"),
    ("--log2-lr", "-6,,-4", "--log2-lr[1]: empty"),
    ("--optimizer", "adam,,sgd", "--optimizer[1]: empty"),
    ("--parameterization", "mup,,sp", "--parameterization[1]: empty"),
    ("--alignment", "full,,none", "--alignment[1]: empty"),
    ("--lr-mode", "global,,per_layer", "--lr-mode[1]: empty"),
    ("--coord-steps", "0,,1", "--coord-steps[1]: empty"),
])
def test_sweep_names_the_bad_item_of_a_comma_list(tmp_path, flag, value, said):
    out = tmp_path / "sw"
    widths = [] if flag == "--widths" else ["--widths", "8,16"]
    res = runner.invoke(app, ["sweep", *TINY, *widths, f"{flag}={value}", "--out", str(out)])
    assert _error(res).startswith(said)
    assert not out.exists()


def test_coord_check_names_the_empty_width():
    res = runner.invoke(app, ["coord-check", "-p", "mup", "-o", "adam", "--model", "mlp", "--depth", "1",
                              "--steps", "1", "--seeds", "1", "-q", "--widths", "16,,32"])
    assert _error(res).startswith("--widths[1]: empty")


def test_the_spec_names_the_item_and_keeps_good_lists():
    with pytest.raises(ValidationError) as exc:
        SweepSpec(widths="32,,64")
    assert exc.value.errors()[0]["loc"] == ("widths", 1)
    spec = SweepSpec(widths=" 64, 32 ", log2_lr="-6,-4", optimizers="adam,sgd")
    assert spec.widths == [32, 64] and spec.log2_lr == [-6.0, -4.0] and spec.optimizers == ["adam", "sgd"]
    assert SweepSpec(log2_lr="-6:-4:1").log2_lr == [-6.0, -5.0, -4.0]


# --- 2. a fit's group selection says how the caller picks a group ------------------------------------------------


@pytest.fixture(scope="module")
def two_groups(tmp_path_factory):
    rows = pd.concat([synthetic_sweep((64, 128, 256), seeds=1, group={"parameterization": p, "optimizer": "adam",
                                                                       "lr_mode": "global"}) for p in ("sp", "mup")],
                     ignore_index=True)
    path = tmp_path_factory.mktemp("fit") / "fit.json"
    path.write_text(fit_table(rows, n_boot=20).model_dump_json())
    return path


def test_cli_group_selection_names_the_group_flag(two_groups):
    said = _error(runner.invoke(app, ["recommend", "--fit", str(two_groups), "-n", "1024"]))
    assert said.startswith("2 groups match (no selector): select one with -p, -o, -a, --lr-mode or --group "
                           "key=value,...; available groups")
    said = _error(runner.invoke(app, ["recommend", "--fit", str(two_groups), "-n", "1024", "--group",
                                      "parameterization=ntk"]))
    assert said.startswith("no group matches --group parameterization=ntk:") and "or --group key=value" in said
    said = _error(runner.invoke(app, ["recommend", "--fit", str(two_groups), "-n", "1024", "--group", "depth=2"]))
    assert said.startswith("--group: key 'depth': not a group column of this fit")
    said = _error(runner.invoke(app, ["recommend", "--fit", str(two_groups), "-n", "1024", "--group", "depth"]))
    assert said.startswith("--group: expected key=value pairs")


def test_python_group_selection_names_the_group_argument(two_groups):
    for call in (lambda: abcscale.recommend(fit=two_groups, width=1024),
                 lambda: abcscale.recommend_from_fit(two_groups, 1024),
                 lambda: abcscale.predict(two_groups, 1024)):
        with pytest.raises(ValueError, match=r"^2 groups match \(no selector\): select one with group='key=value"):
            call()


# --- 3, 4, 5. REST 422s: no "Value error, ", the field named, widths are integers -------------------------------

CONVERT = {"optimizer": "adam", "from": "sp", "to": "mup", "width": 1024, "base_width": 256}
RECOMMEND = {"parameterization": "mup", "optimizer": "adam", "width": 1024, "base": {"width": 256, "beta": 1e-3}}


def test_rest_messages_carry_no_pydantic_prefix(client):
    r = client.post("/v1/theory/convert", json={**CONVERT, "weight_decay": 0.1})
    assert r.status_code == 422, r.text
    (e,) = r.json()["detail"]
    assert e["loc"] == ["body", "weight_decay"]
    assert e["msg"].startswith("adam has no weight decay that abcscale transfers")
    assert "Value error" not in r.text


@pytest.mark.parametrize(("extra", "said"), [
    ({"beta": -1}, "must be a number from 1e-30 to 1e+30, got -1"),
    ({"beta": "x"}, "must be a number from 1e-30 to 1e+30, got 'x'"),
    ({"beta": 1e-3, "base_lr": 1e-3}, "the same as base_lr; give one"),
])
def test_convert_names_beta_where_it_is_bad(client, extra, said):
    r = client.post("/v1/theory/convert", json={**CONVERT, **extra})
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == [{**r.json()["detail"][0], "loc": ["body", "beta"], "msg": said}]
    assert client.post("/v1/theory/convert", json={**CONVERT, "beta": 1e-3}).status_code == 200


@pytest.mark.parametrize(("path", "body", "loc", "value"), [
    ("/v1/recommend", {**RECOMMEND, "width": 1024.5}, ["body", "analytic", "width"], "1024.5"),
    ("/v1/recommend", {**RECOMMEND, "base": {"width": 16.5, "beta": 1e-3}}, ["body", "analytic", "base", "width"],
     "16.5"),
    ("/v1/theory/convert", {**CONVERT, "base_width": 16.5}, ["body", "base_width"], "16.5"),
    ("/v1/theory/convert", {**CONVERT, "width": 1024.5}, ["body", "width"], "1024.5"),
])
def test_rest_widths_are_integers(client, path, body, loc, value):
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    (e,) = r.json()["detail"]
    assert e["loc"] == loc and e["msg"] == f"expected an integer width, got {value}"
    # a whole float is that integer (session 43: the CLI's --width 4096.0 reads it, a Python client sends it)
    whole = json.loads(json.dumps(body).replace(".5,", ".0,").replace(".5}", ".0}"))
    assert client.post(path, json=whole).json() == client.post(path, json=json.loads(
        json.dumps(body).replace(".5,", ",").replace(".5}", "}"))).json()


def test_rest_integer_widths_still_answer(client):
    r = client.post("/v1/recommend", json={**RECOMMEND, "base": {"width": 16, "beta": 1e-3}})
    assert r.status_code == 200 and r.json()["base_width"] == 16 and r.json()["width"] == 1024
    assert client.post("/v1/theory/convert", json=CONVERT).status_code == 200


# --- 6. a constants file compares the optimizer as every other reader does -----------------------------------------


def test_python_constants_file_takes_the_optimizer_in_any_case(tmp_path):
    path = save_constants(_tuned(), tmp_path / "tuned.json")
    assert _tuned().optimizer == "adam"
    ref = abcscale.recommend(width=1024, constants=path)
    for name in ("Adam", "ADAM"):
        rec = abcscale.recommend(width=1024, constants=path, optimizer=name)
        assert rec.layers == ref.layers
    cli = runner.invoke(app, ["recommend", "--constants", str(path), "-n", "1024", "-o", "Adam", "--json"])
    assert cli.exit_code == 0, cli.output
    with pytest.raises(ValueError, match="optimizer: the constants file was tuned for adam, not sgd"):
        abcscale.recommend(width=1024, constants=path, optimizer="sgd")
