"""POST /v1/recommend with ``form`` and ``rules``: the answer's ``groups`` is the use case's (and the CLI's), for
either source, served identically from the cache; bad forms and rules are a 422 naming the field."""

from __future__ import annotations

import pytest

from abcscale.schemas.api import AnalyticRecommend
from abcscale.schemas.fit import FitResult
from abcscale.schemas.groups import Form, GroupRule, GroupSpec
from abcscale.theory.groups import DEFAULT_RULES
from abcscale.usecases import recommend_analytic, recommend_from_fit

EXAMPLE = {"parameterization": "mup", "optimizer": "adamw", "width": 4096,
           "base": {"width": 256, "beta": 0.003, "weight_decay": 0.1}}
RULES = [{"pattern": r"mlp\.c_proj", "role": "hidden"}, {"pattern": "wpe", "role": "embedding"}]


@pytest.mark.parametrize("form", ["abc", "multiplier_free", "multiplier-free", "plain", "mup"])
def test_groups_are_the_use_cases_in_the_requested_form(client, form):
    body = {**EXAMPLE, "form": form, "rules": RULES}
    r = client.post("/v1/recommend", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == recommend_analytic(AnalyticRecommend.model_validate(body)).model_dump(mode="json")
    spec = GroupSpec.model_validate(r.json()["groups"])
    assert spec.form is Form.parse(form)
    assert spec.rules == [GroupRule.model_validate(x) for x in RULES] + list(DEFAULT_RULES)
    assert client.post("/v1/recommend", json=body).content == r.content  # the cached answer is the same


def test_default_is_the_abc_form_with_the_default_rules(client):
    r = client.post("/v1/recommend", json=EXAMPLE)
    assert r.status_code == 200, r.text
    spec = GroupSpec.model_validate(r.json()["groups"])
    assert spec.form is Form.abc and spec.rules == list(DEFAULT_RULES)
    # the abc groups hold the per-layer answer, plus the vector-like role
    for layer in r.json()["layers"]:
        role = spec[layer["layer"]]
        assert (role.lr, role.init_std, role.multiplier) == (layer["lr"], layer["init_std"], layer["multiplier"])
    assert spec["vector"].multiplier == 1.0 and spec["vector"].init_std is None


@pytest.mark.parametrize("patch, loc", [
    ({"form": "mupp"}, ["body", "analytic", "form"]),
    ({"rules": [{"pattern": "(", "role": "hidden"}]}, ["body", "analytic", "rules", 0, "pattern"]),
    ({"rules": [{"pattern": "x", "role": "weights"}]}, ["body", "analytic", "rules", 0, "role"]),
    ({"rules": [{"pattern": "x"}]}, ["body", "analytic", "rules", 0, "role"]),
    ({"rules": [{"pattern": "", "role": "hidden"}]}, ["body", "analytic", "rules", 0, "pattern"]),
    ({"rules": "ln_f"}, ["body", "analytic", "rules"]),
    ({"rules": [{"pattern": "x", "role": "hidden", "extra": 1}]}, ["body", "analytic", "rules", 0, "extra"]),
])
def test_bad_form_or_rules_is_422_naming_the_field(client, patch, loc):
    r = client.post("/v1/recommend", json={**EXAMPLE, **patch})
    assert r.status_code == 422, r.text
    assert [d["loc"] for d in r.json()["detail"]] == [loc]


def test_too_many_rules_is_422(client):
    rules = [{"pattern": f"p{i}", "role": "hidden"} for i in range(257)]
    r = client.post("/v1/recommend", json={**EXAMPLE, "rules": rules})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "analytic", "rules"]


def test_fit_based_groups(client, stored_fit):
    body = {"fit_id": stored_fit["id"], "width": 2048, "form": "mup", "rules": RULES[:1]}
    r = client.post("/v1/recommend", json=body)
    assert r.status_code == 200, r.text
    fit = FitResult.model_validate(stored_fit["result"])
    want = recommend_from_fit(fit, 2048, selector={}, form="mup", rules=[GroupRule.model_validate(RULES[0])])
    assert {**r.json(), "fit_id": None} == want.model_dump(mode="json")
    assert r.json()["groups"]["form"] == "mup" and r.json()["groups"]["mup"]["base_width"] == 64
    bad = client.post("/v1/recommend", json={**body, "form": "nope"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "fit", "form"]
