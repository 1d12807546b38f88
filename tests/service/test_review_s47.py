"""Session 47, a platform engineer's review of the service: a JSON body sent without a Content-Type header
(``requests.post(url, data=json.dumps(body))``) is read as JSON on every route, as POST /v1/fits read it; the
recommend and theory routes answered a 422 blaming the body ("give exactly one of base ... fit_id", "Input should
be a valid dictionary")."""

from __future__ import annotations

import json

import pytest

BODY = {"parameterization": "mup", "optimizer": "adam", "width": 1024, "base": {"width": 64, "beta": 3e-3}}


@pytest.mark.parametrize(("url", "body"), [
    ("/v1/recommend", BODY),
    ("/v1/theory/convert", {"optimizer": "adam", "from": "mup", "to": "standard", "width": 1024,
                            "base_width": 64, "base_lr": 3e-3}),
])
def test_a_json_body_without_a_content_type_is_json(client, url, body):
    bare = client.post(url, content=json.dumps(body).encode())
    assert "content-type" not in {k.lower() for k in bare.request.headers}  # sent as requests' data= sends it
    typed = client.post(url, json=body)
    assert typed.status_code == 200, typed.text
    assert bare.status_code == 200, bare.text
    assert bare.json() == typed.json()


def test_a_body_that_is_no_json_still_says_so(client):
    r = client.post("/v1/recommend", content=b"parameterization=mup")
    assert r.status_code == 422 and "json" in r.text.lower(), r.text
