"""POST /v1/recommend from a stored fit: the band carries its method and unreliable reasons, and ``strict``
answers 422 naming ``strict`` and those reasons (as ``abcscale recommend --fit --strict`` exits 1)."""

from __future__ import annotations

import json

import pytest

from abcscale.fitting.synthetic import synthetic_sweep
from tests.service.conftest import N_BOOT

MUP = {"parameterization": "mup", "optimizer": "adam", "alignment": "full", "lr_mode": "per_layer"}


def _store(client, widths: tuple[int, ...]) -> str:
    rows = json.loads(synthetic_sweep(widths=widths, group=MUP, exponent=0.0, seed=4).to_json(orient="records"))
    r = client.post("/v1/fits", json={"rows": rows, "n_boot": N_BOOT})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_strict_refuses_an_unreliable_band_naming_why(client):
    fit_id = _store(client, (64, 128))
    loose = client.post("/v1/recommend", json={"fit_id": fit_id, "width": 512})
    assert loose.status_code == 200, loose.text
    reasons = loose.json()["band"]["unreliable"]
    assert any("from 2 widths" in why for why in reasons)
    r = client.post("/v1/recommend", json={"fit_id": fit_id, "width": 512, "strict": True})
    assert r.status_code == 422, r.text
    (err,) = r.json()["detail"]
    assert err["loc"] == ["body", "strict"] and "strict" in err["msg"]
    assert all(why in err["msg"] for why in reasons)
    # within the fitted widths nothing is extrapolated: strict answers
    assert client.post("/v1/recommend", json={"fit_id": fit_id, "width": 96, "strict": True}).status_code == 200


def test_strict_answers_a_reliable_band_with_its_method(client):
    fit_id = _store(client, (32, 64, 128))
    r = client.post("/v1/recommend", json={"fit_id": fit_id, "width": 512, "strict": True})
    assert r.status_code == 200, r.text
    band = r.json()["band"]
    assert band["unreliable"] == [] and band["method"] == "theory_prior" and band["prior_sd"] > 0


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_strict_must_be_a_boolean(client, value):
    r = client.post("/v1/recommend", json={"fit_id": "0" * 32, "width": 512, "strict": value})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "strict", r.text
