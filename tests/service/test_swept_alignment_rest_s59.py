"""Session 59: POST /v1/recommend from a stored fit refuses an alignment whose exponents contradict the ones the
fitted table's lr_* columns show, naming the field (tests/fitting/test_swept_alignment_s59.py has the rule)."""

from __future__ import annotations

import json

from tests.fitting.test_swept_alignment_s59 import _c, _table
from tests.service.conftest import N_BOOT


def test_rest_names_the_field(client):
    rows = json.loads(_table(_c("full"), seeds=1).to_json(orient="records"))
    r = client.post("/v1/fits", json={"rows": rows, "n_boot": N_BOOT})
    assert r.status_code == 201, r.text
    fit_id = r.json()["id"]
    bad = client.post("/v1/recommend", json={"fit_id": fit_id, "width": 1024, "alignment": "none"})
    assert bad.status_code == 422, bad.text
    (err,) = bad.json()["detail"]
    assert err["loc"][-1] == "alignment" and "give alignment full" in err["msg"]
    assert client.post("/v1/recommend", json={"fit_id": fit_id, "width": 1024}).status_code == 200


def test_rest_names_lr_mode_and_group(client):
    rows = json.loads(_table(_c("full"), seeds=1).drop(columns="lr_mode").to_json(orient="records"))
    r = client.post("/v1/fits", json={"rows": rows, "n_boot": N_BOOT})
    assert r.status_code == 201, r.text
    fit_id = r.json()["id"]
    for body, loc in (({"lr_mode": "global"}, "lr_mode"), ({"group": {"lr_mode": "global"}}, "group"),
                      ({"lr_mode": "per_layer", "group": {"alignment": "none"}}, "group")):
        bad = client.post("/v1/recommend", json={"fit_id": fit_id, "width": 1024, **body})
        assert bad.status_code == 422, bad.text
        (err,) = bad.json()["detail"]
        assert err["loc"][-1] == loc, (body, err)
