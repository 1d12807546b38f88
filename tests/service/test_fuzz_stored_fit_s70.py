"""Session 70: the fuzzing of tests/service/test_schemathesis.py never reached a stored fit. POST /v1/fits needs a
table that really fits and random data never is one, so GET, DELETE, rows, plots and predict of a fit's id only
ever answered 404: a DELETE of a stored fit answering 500 went unseen. POST /v1/fits's OpenAPI now has a JSON
example that fits (what /docs' "Try it out" sends, and schemathesis's examples phase) and links from its 201's
``id`` to every operation on the fit (what the stateful phase follows). Both are checked here from the served
OpenAPI alone, as a client reads them; test_schemathesis.py asserts that its fuzzing reaches stored fits."""

from __future__ import annotations

import warnings

import jsonschema
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's note on httpx, as in conftest
    from fastapi.testclient import TestClient

from abcscale.service.app import create_app
from abcscale.service.config import Settings


@pytest.fixture
def client(tmp_path, plot_workers):
    # plot_wait_s 0: a plot's first GET answers 202 at once (its render is not what this is about)
    with TestClient(create_app(Settings(data_dir=tmp_path, plot_wait_s=0))) as c:
        plot_workers.attach(c.app)  # the app's close waits for that render: on a warm worker, not a fresh one
        yield c


def _example(spec: dict) -> dict:
    media = spec["paths"]["/v1/fits"]["post"]["requestBody"]["content"]["application/json"]
    (example,) = media["examples"].values()
    # valid per the schema the OpenAPI gives it (schemathesis drops an example its schema refuses)
    jsonschema.Draft202012Validator({**media["schema"], "components": spec["components"]}).validate(example["value"])
    return example["value"]


def test_the_create_example_fits_without_a_warning(client):
    r = client.post("/v1/fits", json=_example(client.get("/openapi.json").json()))
    assert r.status_code == 201, r.text
    (group,) = r.json()["result"]["groups"]
    assert group["warnings"] == [], group["warnings"]  # the example a user copies shows a clean fit
    assert group["exponent"]["estimate"] == pytest.approx(-1.0, abs=0.05)  # LR* ~ 1/width, as built
    assert group["prediction"]["width"] == 4096 and group["prediction"]["lr"] > 0


def test_the_links_of_a_created_fit_reach_every_operation_on_it(client):
    spec = client.get("/openapi.json").json()
    operations = {op["operationId"]: (method, path) for path, ops in spec["paths"].items()
                  for method, op in ops.items()}
    links = spec["paths"]["/v1/fits"]["post"]["responses"]["201"]["links"]
    targets = {name: operations[link["operationId"]] for name, link in links.items()}
    # every operation on a fit's id has a link: one added later without it is fuzzed with unknown ids only
    assert sorted(targets.values()) == sorted((m, p) for m, p in operations.values() if "{fit_id}" in p)
    fit_id = client.post("/v1/fits", json=_example(spec)).json()["id"]
    answers = {}
    for name, (method, path) in sorted(targets.items(), key=lambda t: t[1][0] == "delete"):  # the delete last
        assert links[name]["parameters"] == {"fit_id": "$response.body#/id"}, links[name]
        url = path.format(fit_id=fit_id, name="loss_vs_lr")
        r = client.request(method, url, json={"size": 4096} if method == "post" else None)
        answers[name] = r.status_code
    assert answers.pop("ReadPlot") in (200, 202)  # a PNG, or being drawn: not a 404
    assert answers == {"ReadFit": 200, "Predict": 200, "ReadRows": 200, "DeleteFit": 204}
    assert client.get(f"/v1/fits/{fit_id}").status_code == 404  # the link's DELETE deleted it
