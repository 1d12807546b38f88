"""POST /v1/fits with covariates (issue 14 item 1): the joint law round trip, the new options (size_kind, at,
blowup, strict), and bad input as a 422 naming the field, with nothing stored."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from abcscale.fitting import fit_table
from abcscale.schemas.fit import ColumnMapping
from tests.fitting.covariate_sweeps import covariate_sweep
from tests.service.conftest import N_BOOT, fit_count


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return json.loads(covariate_sweep(seeds=1, size_unit=1e6).to_json(orient="records"))


def _body(rows: list[dict], **options) -> dict:
    return {"rows": rows, "n_boot": N_BOOT, "size_col": "N", "covariates": ["D", "batch_size"], **options}


def test_joint_law_round_trip_equals_fit_table(client, rows):
    r = client.post("/v1/fits", json=_body(rows, size_kind="params", target_width=2_000_000_000,
                                            at={"D": 1e10, "batch_size": 64}, blowup=2))
    assert r.status_code == 201, r.text
    result = r.json()["result"]
    (law,) = result["joint"]
    assert law["names"] == ["N", "D", "batch_size"] and law["size_kind"] == "params"
    assert law["prediction"]["at"] == {"D": 1e10, "batch_size": 64.0}
    assert result["provenance"]["settings"]["blowup_factor"] == 2.0
    want = fit_table(pd.DataFrame.from_records(rows), ColumnMapping(size_col="N", size_kind="params",
                     covariates=["D", "batch_size"]), n_boot=N_BOOT, target_width=2_000_000_000,
                     at={"D": 1e10, "batch_size": 64}, blowup=2)
    assert law == want.joint[0].model_dump(mode="json")
    assert client.get(f"/v1/fits/{r.json()['id']}").json()["result"]["joint"] == result["joint"]


def test_form_upload_takes_covariates_and_at_as_text(client, rows, tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame.from_records(rows).to_csv(path, index=False)
    r = client.post("/v1/fits", files={"file": ("t.csv", path.read_bytes(), "text/csv")},
                    data={"n_boot": str(N_BOOT), "size_col": "N", "covariates": "D,batch_size",
                          "target_width": "1000000000", "at": "D=1e10"})
    assert r.status_code == 201, r.text
    assert r.json()["result"]["joint"][0]["prediction"]["at"]["D"] == 1e10


@pytest.mark.parametrize(("options", "field", "said"), [
    ({"covariates": ["tokens"]}, "covariates", "tokens: missing column (named in covariates)"),  # at the field (s60)
    ({"at": {"depth": 4}, "target_width": 1024}, "at", "depth is not a covariate"),  # at `at` since s36
    ({"at": {"D": -1}, "target_width": 1024}, "at", "must be positive"),
    ({"size_kind": "tokens"}, "size_kind", "'width' or 'params'"),
    ({"blowup": 0.5}, "blowup", "must be above 1"),
])
def test_bad_input_is_422_naming_the_field(client, rows, options, field, said):
    before = fit_count(client)
    r = client.post("/v1/fits", json=_body(rows, **options))
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert any(said in e["msg"] and (not field or field in e["loc"]) for e in detail), detail
    assert fit_count(client) == before


def test_a_non_numeric_covariate_is_422_naming_it(client, rows):
    bad = [dict(r) for r in rows]
    bad[3]["D"] = "lots"
    r = client.post("/v1/fits", json=_body(bad))
    assert r.status_code == 422 and any("D: not a number" in e["msg"] for e in r.json()["detail"])


def test_strict_refuses_an_unreliable_prediction_naming_the_group(client, rows):
    few = [r for r in rows if r["D"] == 4e8 and r["batch_size"] == 32 and r["N"] <= 128_000_000]
    few += [r for r in rows if r["D"] == 1e8 and r["batch_size"] == 32 and r["N"] <= 128_000_000]
    options = {"covariates": ["D"], "target_width": 2**40, "at": {"D": 1e13}}
    loose = client.post("/v1/fits", json=_body(few, **options))
    assert loose.status_code == 201, loose.text
    pred = loose.json()["result"]["joint"][0]["prediction"]
    assert pred["unreliable"] and all("unreliable: " + why in pred["warnings"] for why in pred["unreliable"])
    before = fit_count(client)
    r = client.post("/v1/fits", json=_body(few, strict=True, **options))
    assert r.status_code == 422, r.text
    errors = r.json()["detail"]  # one per reason: here extrapolating from 2 sizes, and a band too wide to act on
    assert {tuple(e["loc"]) for e in errors} == {("body", "strict")}
    assert any(e["msg"].startswith("unreliable prediction: (all rows): extrapolating from 2 sizes")
               for e in errors)
    assert fit_count(client) == before
