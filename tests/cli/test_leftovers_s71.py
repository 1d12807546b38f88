"""Session 71: two of the CLI fuzz's leftovers (session 70). ``--coord-steps ""`` (an unset variable) turned the
coordinate statistics off without a word; it is refused now, and ``none`` says it on purpose. An epsilon, weight
decay or exponent of ``-0`` printed as ``-0`` in every answer; it is read as 0."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from abcscale.cli import app
from abcscale.schemas.theory import Constants, LayerExponents

runner = CliRunner()
RECOMMEND = ["recommend", "-n", "1024", "-p", "mup", "-o", "adam", "--base-width", "32", "--base-lr", "1e-3"]


@pytest.mark.parametrize("value", ["", " ", "\t"])
def test_an_empty_coord_steps_is_refused_naming_the_flag(tmp_path, value):
    res = runner.invoke(app, ["sweep", "--coord-steps", value, "--widths", "16", "--steps", "3",
                              "--out", str(tmp_path / "out")])
    assert res.exit_code == 2, (res.output, res.exception)
    words = " ".join(res.output.split())
    assert "error: --coord-steps: empty" in words and "none to record no coordinate statistics" in words
    assert not (tmp_path / "out").exists()  # refused before the folder is made


@pytest.mark.e2e
def test_coord_steps_none_records_no_statistics(tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(app, ["sweep", "--coord-steps", "None", "--widths", "16", "--steps", "3", "--depth", "1",
                              "--log2-lr", "-6", "--seeds", "1", "--batch", "2", "--seq-len", "8",
                              "--head-dim", "8", "--no-curves", "-q", "--json", "--out", str(out)])
    assert res.exit_code == 0, (res.output, res.exception)
    assert json.loads(res.stdout)["runs"] == 1
    assert not (out / "coord.parquet").exists()


def test_negative_zero_is_read_as_zero():
    c = Constants(epsilon=-0.0, weight_decay="-0")
    assert str(c.epsilon) == "0.0" and str(c.weight_decay) == "0.0"
    e = LayerExponents(a="-0", b=-0.0, c=-0.0)
    assert (str(e.a), str(e.b), str(e.c)) == ("0.0", "0.0", "0.0")


def test_recommend_prints_an_epsilon_of_minus_zero_as_zero():
    res = runner.invoke(app, [*RECOMMEND, "--epsilon", "-0", "--json"])
    assert res.exit_code == 0, (res.output, res.exception)
    answer = json.loads(res.stdout)
    eps = [row["epsilon"] for row in answer["layers"]] + [g["epsilon"] for g in answer["groups"]["roles"]]
    assert eps and all(str(x) == "0.0" for x in eps), eps
    table = runner.invoke(app, [*RECOMMEND, "--epsilon", "-0"])
    assert table.exit_code == 0 and " -0 " not in table.output, table.output


def test_the_api_answers_an_epsilon_of_minus_zero_as_zero(tmp_path):
    from fastapi.testclient import TestClient

    from abcscale.service.app import create_app
    from abcscale.service.config import Settings

    body = {"parameterization": "mup", "optimizer": "adam", "width": 4096,
            "base": {"width": 256, "beta": 0.003, "epsilon": -0.0}}
    with TestClient(create_app(Settings(data_dir=tmp_path, database_url=None, api_token=None))) as client:
        r = client.post("/v1/recommend", json=body)
    assert r.status_code == 200, r.text
    assert '"epsilon":-0' not in r.text.replace(" ", ""), r.text
    assert [row["epsilon"] for row in r.json()["layers"]] == [0.0, 0.0, 0.0]
