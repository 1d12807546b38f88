"""Session 53: an empty or whitespace-only body is said the same way on every route that reads a JSON body
("the body is empty"); before, POST /v1/fits said a bare "Field required" and /v1/recommend a JSON decode error
at the whitespace's end (or FastAPI's bare "Field required" where the body had no byte at all)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("path", ["/v1/fits", "/v1/recommend", "/v1/theory/convert", "/v1/theory/to-mup"])
@pytest.mark.parametrize("body", [b"", b"   ", b"\n\t "])
def test_an_empty_body_is_said_to_be_empty_on_every_route(client, path, body):
    r = client.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422
    (e,) = r.json()["detail"]
    assert e["loc"] == ["body"] and e["msg"].startswith("Field required: the body is empty; send a JSON object"), e
    if path == "/v1/fits":
        assert "`rows`" in e["msg"] and "multipart" in e["msg"], e


def test_a_body_of_whitespace_around_json_is_still_read(client):
    r = client.post("/v1/recommend", content=b'  {"parameterization": "mup", "optimizer": "adam", "width": 256, '
                    b'"base": {"width": 64, "beta": 0.001}}\n', headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text


def test_an_empty_body_is_judged_after_the_token(tmp_path):
    """The body's check comes after the route's dependencies: a read-protected route answers 401 to a request with
    no token and no body (a code review: an early read of the body answered 422 first)."""
    from fastapi.testclient import TestClient

    from abcscale.service.app import create_app
    from abcscale.service.config import Settings

    with TestClient(create_app(Settings(data_dir=tmp_path, api_token="w" * 32, protect_reads=True))) as c:
        for body in (b"", b" \n"):
            r = c.post("/v1/recommend", content=body, headers={"content-type": "application/json"})
            assert r.status_code == 401, r.text
            r = c.post("/v1/recommend", content=body, headers={"content-type": "application/json",
                                                                 "authorization": "Bearer " + "w" * 32})
            assert r.status_code == 422 and r.json()["detail"][0]["msg"].startswith("Field required: the body is "
                                                                                    "empty")
