"""Session 52's CI/service review, the REST side: an unknown parameterization's 422 lists the aliases the field
takes (``sp``, ``mf``, ...), as the CLI's message does; a body that is no JSON this API takes says why on every
route (the fits route did, the others said "JSON decode error" alone), at ("body", position), without a made-up
position for a NaN (it said "line 1 column 1 (char 0)" wherever the NaN was)."""

from __future__ import annotations

import pytest

BASE = {"width": 64, "beta": 1e-3}


def test_an_unknown_parameterization_names_the_aliases_it_takes(client):
    r = client.post("/v1/recommend", json={"parameterization": "mupp", "optimizer": "adam", "width": 4096,
                                           "base": BASE})
    assert r.status_code == 422
    (e,) = [e for e in r.json()["detail"] if e["loc"][-1] == "parameterization"]
    assert "'mean_field'" in e["msg"] and "sp=standard" in e["msg"] and "mf=mean_field" in e["msg"], e
    ok = client.post("/v1/recommend", json={"parameterization": "sp", "optimizer": "adam", "width": 4096,
                                            "base": BASE})
    assert ok.status_code == 200 and ok.json()["parameterization"] == "standard"
    bad = client.post("/v1/recommend", json={"parameterization": "mup", "optimizer": "adamm", "width": 4096,
                                             "base": BASE})
    (e,) = [e for e in bad.json()["detail"] if e["loc"][-1] == "optimizer"]
    assert "'adamw'" in e["msg"], e  # an enum without aliases says its values only


@pytest.mark.parametrize("path", ["/v1/fits", "/v1/recommend"])
@pytest.mark.parametrize(("body", "why", "pos"), [
    (b'{"rows": [{"width": 64, "beta": NaN}]}', "NaN is not valid JSON (use null or a finite number)", 0),
    (b'{"a": 1, "a": 2}', "duplicated key 'a' in an object", 0),
    (b'{"a": 1,', "Expecting property name enclosed in double quotes", 8),
])
def test_a_body_that_is_no_json_says_why_on_every_route(client, path, body, why, pos):
    r = client.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422
    (e,) = r.json()["detail"]
    assert e["type"] == "json_invalid" and e["loc"] == ["body", pos], e
    assert e["msg"].startswith(f"JSON decode error: {why}") and "char 0" not in e["msg"], e


@pytest.mark.parametrize("path", ["/v1/fits", "/v1/recommend"])
def test_a_utf16_body_is_refused_as_not_utf8(client, path):
    """json.loads on bytes takes UTF-16 and UTF-32: a UTF-16 body read as {} (a code review). A UTF-8 BOM stays."""
    r = client.post(path, content='{"a": 1}'.encode("utf-16"), headers={"content-type": "application/json"})
    (e,) = r.json()["detail"]
    assert r.status_code == 422 and e["type"] == "json_invalid" and "not UTF-8" in e["msg"], e
    body = b'{"parameterization": "mup", "optimizer": "adam", "width": 4096, "base": {"width": 64, "beta": 0.001}}'
    ok = client.post("/v1/recommend", content=b"\xef\xbb\xbf" + body, headers={"content-type": "application/json"})
    assert ok.status_code == 200


def test_the_fits_route_names_the_aliases_too(client):
    r = client.post("/v1/fits", json={"rows": [{"width": 64, "beta": 1e-3, "final_loss": 1.0}],
                                      "parameterization": "mupp"})
    (e,) = [e for e in r.json()["detail"] if e["loc"][-1] == "parameterization"]
    assert r.status_code == 422 and "sp=standard" in e["msg"], e
