"""POST /v1/theory/from-mup and /to-mup: the CLI's `abcscale mup import` / `export`, 422 naming the field."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from abcscale.cli import app

SETUP = {"optimizer": "adam", "base_width": 256, "width": 4096, "lr": 3e-3,
         "init_std": {"embedding": 1.0, "hidden": 0.0625, "readout": 0.0625}}


def test_from_mup_equals_cli_json_and_feeds_recommend(client):
    r = client.post("/v1/theory/from-mup", json=SETUP)
    assert r.status_code == 200, r.text
    cli = CliRunner().invoke(app, ["mup", "import", "-o", "adam", "--base-width", "256", "--width", "4096",
                                   "--lr", "3e-3", "--init-std", "1,0.0625,0.0625", "--json"])
    assert r.json() == json.loads(cli.stdout)
    assert r.json()["constants"]["init_scale"] == {"embedding": 16.0, "hidden": 1.0, "readout": 1.0}
    rec = client.post("/v1/recommend", json=r.json()["recommend"])  # the recommend body it gives is one
    assert rec.status_code == 200, rec.text
    hidden = next(x for x in rec.json()["layers"] if x["layer"] == "hidden")
    assert hidden["lr"] == pytest.approx(3e-3 / 16)


def test_to_mup_round_trips(client):
    body = client.post("/v1/theory/from-mup", json=SETUP).json()["recommend"]
    r = client.post("/v1/theory/to-mup", json=body)
    assert r.status_code == 200, r.text
    setup = r.json()["setup"]
    assert setup["lr"] == pytest.approx(dict.fromkeys(("embedding", "hidden", "readout", "vector"), 3e-3))
    assert setup["init_std"] == pytest.approx(SETUP["init_std"])
    # each param group's; the readout's bias (fixed) sits in the vector group when that gives it its epsilon
    roles = {x["role"]: x["epsilon"] for x in r.json()["roles"]}
    assert setup["epsilon"] == {k: v for k, v in roles.items() if k in setup["epsilon"]}
    assert roles["fixed"] == setup["epsilon"].get("fixed", setup["epsilon"]["vector"])


def test_from_mup_takes_each_groups_epsilon(client):
    eps = {"embedding": 4e-11, "hidden": 6e-10, "readout": 1e-8, "vector": 6e-10}
    r = client.post("/v1/theory/from-mup", json={**SETUP, "epsilon": eps})
    assert r.status_code == 200, r.text
    assert r.json()["constants"]["epsilon"] == 6e-10 and r.json()["setup"]["epsilon"] == eps
    assert any("the groups' differ" in w for w in r.json()["warnings"])


@pytest.mark.parametrize(("patch", "field"), [
    ({"base_width": 0}, "base_width"),
    ({"lr": -1}, "lr"),
    ({"lr": {"embedding": 1e-3}}, "lr"),
    ({"lr": {"embedding": 1, "hidden": 1, "readout": 1, "vectr": 1}}, "lr"),
    ({"output_mult": 0}, "output_mult"),
    ({"init_std": {"hidden": True}}, "init_std"),
    ({"epsilon": {"hiden": 1e-8}}, "epsilon"),
    ({"epsilon": {"embedding": -1, "hidden": 1, "readout": 1, "vector": 1}}, "epsilon"),
    ({"epsilon": True}, "epsilon"),
    ({"width": True}, "width"),
    ({"optimizer": "adamm"}, "optimizer"),
    ({"base_widht": 256}, "base_widht"),
])
def test_bad_from_mup_is_422_naming_the_field(client, patch, field):
    r = client.post("/v1/theory/from-mup", json={**SETUP, **patch})
    assert r.status_code == 422, r.text
    assert field in json.dumps(r.json()["detail"])


def test_bad_to_mup_is_422(client):
    r = client.post("/v1/theory/to-mup", json={"parameterization": "mup", "optimizer": "adam", "width": 0,
                                              "base": {"width": 256, "beta": 3e-3}})
    assert r.status_code == 422 and "width" in json.dumps(r.json()["detail"])
