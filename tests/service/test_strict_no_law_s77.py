"""A fit whose group predicts nothing (one width swept) under a strict gate, on every face (session 77's review):
the CLI's `--strict` exits 1 on it, so the Python API raises its "strict: ..." words and REST answers at `strict`
(they raised the plain error and answered at the fit, so a gate could not tell the data's shortfall from bad
input); `predict` names the fit, not the `--group` that picked the group."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app
from abcscale.fitting.synthetic import synthetic_sweep
from tests.service.conftest import N_BOOT

SP = "parameterization=sp,lr_mode=per_layer"


@pytest.fixture(scope="module")
def no_law(tmp_path_factory) -> tuple[str, pd.DataFrame]:
    d = tmp_path_factory.mktemp("nolaw")
    setup = {"optimizer": "adam", "lr_mode": "per_layer"}
    table = pd.concat([synthetic_sweep((64, 128, 256), exponent=0.0, seeds=1, group={"parameterization": "mup",
                                                                                      **setup}),
                       synthetic_sweep((64,), exponent=0.0, seeds=1, group={"parameterization": "sp", **setup})])
    (d / "t.csv").write_text(table.to_csv(index=False))
    res = CliRunner().invoke(app, ["fit", str(d / "t.csv"), "--out", str(d / "fit"), "--n-boot", "50", "-q"])
    assert res.exit_code == 0, res.output
    return str(d / "fit" / "fit.json"), table


def test_the_python_api_fails_the_gate_in_its_words(no_law):
    fit, _ = no_law
    for call in (lambda strict: abcscale.recommend(fit=fit, width=1024, group=SP, strict=strict),
                 lambda strict: abcscale.recommend_from_fit(fit, 1024, group=SP, strict=strict)):
        with pytest.raises(ValueError, match=r"^strict: unreliable prediction: no prediction: .*only one width"):
            call(True)
        with pytest.raises(ValueError, match="only one width") as plain:
            call(False)
        assert not str(plain.value).startswith("strict")


def test_rest_answers_at_strict_for_recommend_and_predict(client, no_law):
    _, table = no_law
    rows = json.loads(table.to_json(orient="records"))  # a diverged run: null, as JSON has no NaN
    r = client.post("/v1/fits", json={"rows": rows, "n_boot": N_BOOT})
    assert r.status_code == 201, r.text
    fit_id, group = r.json()["id"], {"parameterization": "sp", "lr_mode": "per_layer"}
    for path, body in (("/v1/recommend", {"fit_id": fit_id, "width": 1024, "group": group}),
                       (f"/v1/fits/{fit_id}/predict", {"size": 1024, "group": group})):
        gated = client.post(path, json={**body, "strict": True})
        assert gated.status_code == 422 and gated.json()["detail"][0]["loc"] == ["body", "strict"], gated.text
        assert gated.json()["detail"][0]["msg"].startswith("strict: unreliable prediction: no prediction: ")
        plain = client.post(path, json=body)
        assert plain.status_code == 422 and plain.json()["detail"][0]["loc"] != ["body", "strict"], plain.text


def test_predict_names_the_fit_not_the_group_that_picked_it(no_law):
    fit, _ = no_law
    res = CliRunner().invoke(app, ["predict", fit, "--size", "1024", "--group", SP])
    assert res.exit_code == 2 and "error: fit: " in res.output and "--group" not in res.output, res.output
    assert "no law across widths" in res.output
