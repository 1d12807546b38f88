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


def test_a_table_from_a_device_that_never_ends_is_one_line_at_the_stream_cap(monkeypatch):
    # read whole, /dev/zero ran the machine out of memory (or the system killed the process without a word)
    from abcscale.fitting import reading

    monkeypatch.setattr(reading, "STREAM_MAX_BYTES", 1 << 20)
    res = runner.invoke(app, ["fit", "/dev/zero"])
    assert res.exit_code == 2, (res.output, res.exception)
    words = " ".join(res.output.split())
    assert "table: /dev/zero holds more than 1 MiB" in words and "save the table to a file" in words, words


def test_a_table_piped_past_the_stream_cap_is_refused_and_one_under_it_is_read(monkeypatch, tmp_path):
    from abcscale.fitting import reading

    monkeypatch.setattr(reading, "STREAM_MAX_BYTES", 1 << 16)
    rows = "width,lr,loss\n" + "".join(f"{w},{2.0 ** -k},{1 + k / 10}\n" for w in (32, 64) for k in range(5))
    over = runner.invoke(app, ["fit", "-"], input=rows + "32,0.5,9\n" * 8000)
    assert over.exit_code == 2 and "standard input holds more than 0.0625 MiB" in " ".join(over.output.split())
    under = runner.invoke(app, ["fit", "-", "--lr-col", "lr", "--loss-col", "loss", "--json"], input=rows)
    assert under.exit_code == 0, under.output  # read, and fitted from its rows
    assert "holds more than" not in under.output, under.output


def test_a_sweeps_data_from_a_device_reads_only_max_bytes(tmp_path):
    from abcscale.runner.data import load_corpus

    corpus = load_corpus("/dev/zero", max_bytes=10_000)  # read whole, /dev/zero never ended
    assert len(corpus.train) + len(corpus.eval) == 10_000
