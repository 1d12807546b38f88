"""Session 65's fixes to the service."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("optimizer", ["lion", "sgd", "adafactor"])
def test_a_from_mup_answer_posted_back_says_nothing_of_an_epsilon_nobody_gave(client, optimizer):
    # its JSON dumped epsilon's default (1e-08) for optimizers without one, and /v1/recommend, given it back, warned
    # "epsilon: lion has no epsilon; the 1e-08 given changes nothing"
    imported = client.post("/v1/theory/from-mup", json={"optimizer": optimizer, "base_width": 256, "lr": 3e-3})
    assert imported.status_code == 200, imported.text
    body = imported.json()
    assert "epsilon" not in body["constants"] and "epsilon" not in body["recommend"]["base"]
    answer = client.post("/v1/recommend", json=body["recommend"])
    assert answer.status_code == 200, answer.text
    assert not [w for w in answer.json()["warnings"] if w.startswith("epsilon")]


def test_a_from_mup_answer_for_adam_keeps_its_epsilon(client):
    body = client.post("/v1/theory/from-mup", json={"optimizer": "adam", "base_width": 256, "lr": 3e-3,
                                                    "epsilon": 1e-6}).json()
    assert body["constants"]["epsilon"] == body["recommend"]["base"]["epsilon"]
    answer = client.post("/v1/recommend", json=body["recommend"]).json()
    at_base = client.post("/v1/recommend", json={**body["recommend"], "width": 256}).json()
    assert answer["epsilon_mode"] == body["constants"]["epsilon_mode"]
    layers = ("embedding", "hidden", "readout")
    assert {r["layer"]: r["epsilon"] for r in at_base["layers"]} == dict.fromkeys(layers, 1e-6)


def test_an_analytic_answer_says_a_width_with_a_zero_too_many_over_rest_and_python(client):
    # the CLI said it alone (a code review): REST and Python carried width 1e9 from 256 in silence
    import abcscale

    body = {"parameterization": "mup", "optimizer": "adam", "width": 10**9, "base": {"width": 256, "beta": 3e-3}}
    answer = client.post("/v1/recommend", json=body)
    assert answer.status_code == 200, answer.text
    assert any("a zero too many?" in w for w in answer.json()["warnings"])
    rec = abcscale.recommend("mup", "adam", width=10**9, base_width=256, beta=3e-3)
    assert any("a zero too many?" in w for w in rec.warnings)
    assert not any("zero" in w for w in abcscale.recommend("mup", "adam", width=4096, base_width=256,
                                                            beta=3e-3).warnings)


def test_a_fit_of_one_layers_lr_is_predicted_on_its_report_page(client):
    # the report's "Predict a width" box refused every width (it asked recommend for per-layer settings) and the
    # stored band was called "the swept LR" (a service review)
    import html
    import io

    from abcscale import theory
    from abcscale.fitting.synthetic import synthetic_sweep

    df = synthetic_sweep(seed=0, exponent=0.0, group={"parameterization": "mup", "optimizer": "adam",
                                                      "lr_mode": "per_layer"})
    for layer, c_l in theory.solve_exponents("mup", "adam", "full").c.items():
        df[f"lr_{layer.value}"] = df["beta"] * (df["width"] / 64.0) ** -c_l
    r = client.post("/v1/fits", files={"file": ("t.csv", io.BytesIO(df.to_csv(index=False).encode()), "text/csv")},
                    data={"lr_col": "lr_hidden", "target_width": "4096", "n_boot": "50"})
    assert r.status_code in (200, 201), r.text
    fit_id = r.json()["id"]
    page = client.get(f"/fits/{fit_id}", params={"group": 0, "width": 8192})
    assert page.status_code == 200, page.text[:500]
    assert "LR* (the hidden layer's own LR) at width 8192" in html.unescape(page.text)
    assert "LR* (the hidden layer's own LR) at width 4096" in html.unescape(client.get(f"/fits/{fit_id}").text)
