"""A 422 body says what is wrong in ``msg`` and carries no formatting leftovers: the JSON type check's message was
a template whose context (``{"path": ""}``, ``{"value": 64.5}``) every error then carried as ``ctx``."""

from __future__ import annotations

import pytest

BASE = {"width": 16, "beta": 1e-3}


@pytest.mark.parametrize(("width", "said"), [
    (True, "Input should be a number, not true/false"),
    (64.5, "expected an integer width, got 64.5"),
    ("x", "Input should be an integer, not a string"),
    ([64], "Input should be an integer, not a list"),
])
def test_a_bad_width_is_said_without_a_context(client, width, said):
    r = client.post("/v1/recommend", json={"parameterization": "mup", "optimizer": "adam", "width": width,
                                           "base": BASE})
    assert r.status_code == 422
    (e,) = r.json()["detail"]
    assert e["loc"] == ["body", "analytic", "width"] and e["msg"] == said and "ctx" not in e


def test_a_nested_field_is_named_in_the_message_not_a_context(client):
    r = client.post("/v1/recommend", json={"parameterization": "mup", "optimizer": "adam", "width": 64,
                                           "base": {"width": 16, "beta": "1"}})
    assert r.status_code == 422
    (e,) = r.json()["detail"]
    assert e["msg"] == "beta: Input should be a number, not a string" and "ctx" not in e


def test_a_key_with_braces_is_said_as_sent(client):
    # the key is the user's: formatted by us, never read as a template (``{kind}`` came out as "a string")
    rows = [{"width": w, "lr": 2.0 ** k, "loss": 1.0 + (k + 8) ** 2 / 50}
            for w in (32, 64, 128) for k in range(-12, -4)]
    r = client.post("/v1/fits", json={"rows": rows, "at": {"{kind}": "x"}})
    assert r.status_code == 422
    (e,) = r.json()["detail"]
    assert e["loc"] == ["body", "at"] and e["msg"] == "{kind}: Input should be a number, not a string"
    assert "ctx" not in e


@pytest.mark.parametrize("alignment", ["x{value}", "{reason}"])
def test_a_constants_files_alignment_is_echoed_as_written(alignment):
    from pydantic import ValidationError

    from abcscale.schemas.api import TunedFile

    with pytest.raises(ValidationError) as caught:
        TunedFile.model_validate({"kind": "abcscale.tuned-constants", "parameterization": "mup", "optimizer": "adam",
                                  "alignment": alignment, "lr_mode": "per_layer"})
    (e,) = [e for e in caught.value.errors() if e["loc"] == ("alignment",)]
    assert e["msg"].endswith(f"got {alignment}") and "ctx" not in e


# --- the review of session 82's REST bodies -------------------------------------------------------------------------

def test_a_validators_error_carries_no_empty_context(client):
    # ctx {"error": ValueError(...)} was sent as {"error": {}}: the words are msg's already
    r = client.post("/v1/recommend", json={"parameterization": "mup", "optimizer": "adam", "width": 1024,
                                           "base": {"width": 256.5, "beta": 1e-3}})
    (e,) = r.json()["detail"]
    assert r.status_code == 422 and e["msg"] == "expected an integer width, got 256.5" and "ctx" not in e, e
    kept = client.post("/v1/recommend", json={"parameterization": "mup", "optimizer": "adam", "width": 1024,
                                              "base": {"width": 0, "beta": 1e-3}}).json()["detail"][0]
    assert kept["ctx"] == {"gt": 0}  # a constraint stays


def test_a_body_that_is_no_json_echoes_nothing_it_was_not_sent(client):
    r = client.post("/v1/theory/convert", content=b'{"lr": 1e400}', headers={"content-type": "application/json"})
    (e,) = r.json()["detail"]
    assert e["type"] == "json_invalid" and e["input"] is None and "ctx" not in e, e
    assert e["msg"] == "JSON decode error: 1e400 is out of the finite float range"


@pytest.mark.parametrize("path", ["/v1/recommend", "/v1/fits", "/v1/theory/convert", "/v1/theory/from-mup",
                                  "/v1/theory/to-mup"])
@pytest.mark.parametrize(("body", "kind"), [(b"null", "null"), (b"[]", "a list"), (b'"x"', "a string"),
                                            (b"5", "an integer")])
def test_a_body_that_is_no_object_is_said_so_on_every_route(client, path, body, kind):
    r = client.post(path, content=body, headers={"content-type": "application/json"})
    (e,) = r.json()["detail"]
    assert r.status_code == 422 and e["loc"] == ["body"], e
    assert e["msg"] == f"Input should be a JSON object, not {kind}", e


def test_a_long_key_is_cut_in_what_comes_back(client):
    key = "k" * 100_000
    r = client.post("/v1/recommend", json={"parameterization": "mup", "optimizer": "adam", "width": 64,
                                           "base": BASE, key: 1})
    (e,) = r.json()["detail"]
    assert r.status_code == 422 and len(r.content) < 2_000, len(r.content)
    assert e["loc"][-1].endswith("... (100000 characters)") and e["msg"] == "Extra inputs are not permitted"
    rows = [{"width": w, "beta": 2.0 ** k, "final_loss": 1.0 + (k + 8) ** 2 / 50}
            for w in (32, 64, 128) for k in range(-12, -4)]
    r = client.post("/v1/fits", json={"rows": rows, "at": {key: "x"}})
    assert r.status_code == 422 and len(r.content) < 2_000, len(r.content)
    # the key cut inside the message, its reason kept (a cut at 2,000 characters kept 1,990 of the key alone)
    assert r.json()["detail"][0]["msg"] == f"{'k' * 200}... (100000 characters): Input should be a number, not a string"
    r = client.post("/v1/fits", json={"rows": rows, "covariates": ["z" * 5000]})
    said = [e["msg"] for e in r.json()["detail"] if "z" * 200 in e["msg"]]
    assert said == [f"{'z' * 200}... (5000 characters): missing column (named in covariates)"], r.json()


@pytest.mark.parametrize("length", [200, 201, 230])
def test_a_key_a_cut_would_not_shorten_comes_back_whole(client, length):
    r = client.post("/v1/recommend", json={"parameterization": "mup", "optimizer": "adam", "width": 64,
                                           "base": BASE, "k" * length: 1})
    (e,) = r.json()["detail"]
    assert e["loc"][-1] == "k" * length, e


@pytest.mark.parametrize(("options", "field"), [({"covariates": ["seed"]}, "covariates"),
                                                ({"size_col": "seed"}, "size_col"),
                                                ({"constant_cols": ["seed"]}, "constant_cols"),
                                                ({"size_col": "optimizer"}, "size_col"),
                                                ({"loss_col": "optimizer"}, "loss_col")])
def test_one_column_in_two_roles_is_said_at_the_option_that_set_it(client, options, field):
    # "optimizer" is a group column the table's own name makes one: "a group column and the size/LR/loss column"
    rows = [{"width": w, "beta": 2.0 ** k, "final_loss": 1.0 + (k + 8) ** 2 / 50, "seed": s, "optimizer": o}
            for w in (32, 64, 128) for k in range(-12, -4) for s in (0, 1) for o in ("adam", "sgd")]
    r = client.post("/v1/fits", json={"rows": rows, **options})
    assert r.status_code == 422
    both = [e for e in r.json()["detail"] if "cannot be both" in e["msg"]]
    assert both and all(e["loc"] == ["body", field] for e in both), r.json()


@pytest.mark.parametrize(("name", "data"), [("a.parquet", b"PAR1garbage"),
                                            ("b.parquet", b"PAR1" + b"\0" * 100 + b"PAR1"),
                                            ("c.csv", b'width,beta,final_loss\n"64,1\n'),
                                            ("d.parquet", b"PAR1" + b"\xff" * 50 + b"\x10\0\0\0PAR1")])
def test_an_unreadable_upload_is_said_without_the_parsers_class(client, name, data):
    r = client.post("/v1/fits", files={"file": (name, data)})
    detail = r.json()["detail"]
    assert r.status_code == 400 and "is not a readable" in detail and detail.isprintable(), detail
    assert not any(word in detail for word in ("ArrowInvalid", "OSError", "ParserError", "Error:")), detail


def test_a_width_past_the_fits_reach_is_said_at_width_in_the_requests_words(client):
    # a steep law (LR ~ width^-6): at width 2**40 the base LR leaves [1e-30, 1e30]; said as "a computed
    # BaseConfig is invalid (beta: ...)" at fit_id before
    rows = [{"width": w, "beta": 1e-2 * (w / 64) ** -6 * 2.0 ** k, "final_loss": 3 + 0.05 * k * k}
            for w in (64, 128, 256, 512) for k in range(-4, 5)]
    fit = client.post("/v1/fits", json={"rows": rows, "n_boot": 20})
    assert fit.status_code == 201, fit.text
    r = client.post("/v1/recommend", json={"fit_id": fit.json()["id"], "width": 2 ** 40, "parameterization": "mup",
                                           "optimizer": "adam", "lr_mode": "global"})
    (e,) = r.json()["detail"]
    assert r.status_code == 422 and e["loc"] == ["body", "width"], e
    assert "BaseConfig" not in e["msg"] and "outside [1e-30, 1e+30]" in e["msg"], e
    assert "carried to the base width 64" in e["msg"]
    # per layer the fitted LR is the base LR: said once
    r = client.post("/v1/recommend", json={"fit_id": fit.json()["id"], "width": 2 ** 30, "parameterization": "mup",
                                           "optimizer": "adam", "lr_mode": "per_layer"})
    (e,) = r.json()["detail"]
    assert e["loc"] == ["body", "width"] and "carried" not in e["msg"], e
    lr = e["msg"].split(" is ")[1].split(" ")[0]
    assert e["msg"].startswith(f"width: the fit's LR at width {2 ** 30} is {lr} outside [1e-30, 1e+30]"), e
    assert e["msg"].count(lr) == 1, e


def test_derive_given_as_a_string_is_asked_for_as_specs(client):
    rows = [{"width": w, "beta": 2.0 ** k, "final_loss": 1.0 + (k + 8) ** 2 / 50}
            for w in (32, 64, 128) for k in range(-12, -4)]
    said = {f: client.post("/v1/fits", json={"rows": rows, f: "x"}).json()["detail"][0]["msg"]
            for f in ("derive", "covariates")}
    assert said["derive"].startswith("Input should be a list of NAME=A/B, NAME=A*B or NAME=A specs"), said
    assert said["covariates"].startswith("Input should be a list of names"), said
