"""What a review of the service as a client found (session 32): a weight decay with an optimizer that has none was a
422 at the body rather than at the field, and the two endpoints named different optimizers as the fix."""

from __future__ import annotations


def test_a_weight_decay_without_a_decaying_optimizer_is_a_422_at_the_field(client):
    r = client.post("/v1/recommend", json={"parameterization": "mup", "optimizer": "adam", "width": 4096,
                                           "base": {"width": 256, "beta": 0.003, "weight_decay": 0.1}})
    detail = r.json()["detail"][0]
    assert r.status_code == 422 and detail["loc"] == ["body", "base", "weight_decay"]
    convert = client.post("/v1/theory/convert", json={"optimizer": "adam", "from": "mup", "to": "sp",
                                                       "width": 1024, "weight_decay": 0.1})
    # both name every optimizer that decays, not adamw alone
    for msg in (detail["msg"], convert.json()["detail"][0]["msg"]):
        assert "adamw, lion, muon or sgd" in msg, msg
    ok = client.post("/v1/theory/convert", json={"optimizer": "lion", "from": "mup", "to": "sp", "width": 1024,
                                                  "base_width": 256, "weight_decay": 0.1})
    assert ok.status_code == 200, ok.text


def test_the_fit_list_names_a_query_parameter_it_does_not_take(client):
    r = client.get("/v1/fits", params={"page": "2"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "page"]
    assert "skip and limit" in r.json()["detail"][0]["msg"]
    assert client.get("/v1/fits", params={"skip": "0", "limit": "5"}).status_code == 200
