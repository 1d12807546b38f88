"""Session 51's reviews, the REST side: a bad alignment string is one error at the field (it was two, one under
the union member's class name), an omega past 1/2 is a 422 naming the field, and the mup form's caveats are in
the answer's top-level warnings."""

from __future__ import annotations

BASE = {"width": 64, "beta": 1e-3}


def test_a_bad_alignment_is_one_error_at_the_field(client):
    r = client.post("/v1/recommend", json={"parameterization": "mup", "optimizer": "adam", "width": 4096,
                                           "alignment": "ful", "base": BASE})
    detail = r.json()["detail"]
    assert r.status_code == 422 and len(detail) == 1, detail
    assert detail[0]["loc"][-1] == "alignment"


def test_omega_past_one_half_is_refused_at_the_field(client):
    r = client.post("/v1/recommend", json={"parameterization": "mup", "optimizer": "adam", "width": 4096,
                                           "alignment": {"alpha": 1, "omega": 0.75, "u": 1}, "base": BASE})
    assert r.status_code == 422
    assert any("omega" in map(str, e["loc"]) and "0.5" in e["msg"] for e in r.json()["detail"]), r.json()
    q = client.get("/v1/theory/exponents", params={"alignment": "1,0.75,1"})
    assert q.status_code == 422 and "omega in [0, 1/2]" in q.text
    assert client.get("/v1/theory/exponents", params={"alignment": "1,0.5,1"}).status_code == 200


def test_the_mup_forms_caveat_is_a_top_level_warning(client):
    r = client.post("/v1/recommend", json={"parameterization": "mup", "optimizer": "adafactor", "width": 4096,
                                           "form": "mup", "base": BASE})
    assert r.status_code == 200
    assert any("agree at one width only" in w for w in r.json()["warnings"])
