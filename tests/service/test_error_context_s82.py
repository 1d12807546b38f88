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
