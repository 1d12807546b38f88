"""/v1/theory/*: the same tables and conversions as the CLI's theory commands."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from abcscale import theory
from abcscale.schemas.enums import Optimizer, Parameterization
from abcscale.schemas.theory import Alignment


def test_exponents_filtered_equal_theory_table(client):
    r = client.get("/v1/theory/exponents", params={"parameterization": "mup", "optimizer": "adam"})
    assert r.status_code == 200
    want = theory.theory_table([Parameterization.mup], [Optimizer.adam], None)
    assert r.json() == [row.model_dump(mode="json") for row in want]
    hidden = next(x for x in r.json() if x["layer"] == "hidden" and x["alignment"]["alpha"] == 1.0)
    assert (hidden["a"], hidden["b"], hidden["c"]) == (0.0, 0.5, 1.0)  # muP + Adam, full alignment


def test_exponents_unfiltered_and_custom_alignment(client):
    everything = client.get("/v1/theory/exponents").json()
    assert len(everything) == len(Parameterization) * len(Optimizer) * 2 * 3  # x 2 alignments x 3 layers
    r = client.get("/v1/theory/exponents", params=[("alignment", "1,0.5,0.5"), ("optimizer", "sgd"),
                                                   ("parameterization", "sp")])
    assert r.status_code == 200
    assert {x["parameterization"] for x in r.json()} == {"standard"}
    assert r.json()[0]["alignment"] == Alignment(alpha=1, omega=0.5, u=0.5).model_dump()


@pytest.mark.parametrize(
    ("params", "field"),
    [({"alignment": "partial"}, "alignment"), ({"alignment": "1,2,3"}, "alignment"),
     ({"parameterization": "nope"}, "parameterization"), ({"optimizer": "shampoo"}, "optimizer")],
)
def test_bad_exponent_filters_are_422(client, params, field):
    r = client.get("/v1/theory/exponents", params=params)
    assert r.status_code == 422
    assert field in r.json()["detail"][0]["loc"]


def test_convert_equals_cli_json(client):
    from abcscale.cli import app

    out = CliRunner().invoke(app, ["theory", "convert", "-o", "adam", "--from", "mup", "--to", "sp", "-n", "1024",
                                   "--base-width", "256", "--base-lr", "0.002", "--lr", "1e-3,2e-3,3e-3", "--json"])
    assert out.exit_code == 0, out.output
    r = client.post("/v1/theory/convert", json={"optimizer": "adam", "from": "mup", "to": "sp", "width": 1024,
                                                "base_width": 256, "base_lr": 0.002,
                                                "lr": {"embedding": 1e-3, "hidden": 2e-3, "readout": 3e-3}})
    assert r.status_code == 200, r.text
    assert r.json() == json.loads(out.output)


@pytest.mark.parametrize(
    "patch",
    [{"width": 0}, {"from": "xp"}, {"to": None}, {"base_lr": -1}, {"epsilon": -1}, {"lr": {"hidden": 0}},
     {"sourcee": "mup"}, {"optimizer": "adam", "width": 2**40, "base_width": 1, "base_lr": 1e-320}],
)
def test_bad_convert_is_422(client, patch):
    body = {"optimizer": "sgd", "from": "mup", "to": "ntk", "width": 512, **patch}
    assert client.post("/v1/theory/convert", json=body).status_code == 422
