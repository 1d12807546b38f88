"""Session 61: a user review of the pages. The report's joint-law box answered a misspelt covariate (`at.token` for
`tokens`) at the base with a 200, took the last of a field given twice and predicted a width fit at 4096.5 and 1e30;
a bad `alignment` was the only field the calculator marked, however many others were bad; the upload form marked a
`derive` spec's problem at the file (and `POST /v1/fits` at `rows`) and an `at` without a target width at no field;
large numbers were refused for the wrong reason ("not a valid integer", "expected a whole number") instead of
naming the bound."""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from abcscale.service.app import create_app
from abcscale.service.config import Settings
from tests.service.conftest import N_BOOT, PLOT_WAIT_S, TestClient

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


@pytest.fixture(scope="module")
def covariate_table(sweep) -> pd.DataFrame:
    """The width sweep at two token budgets and two batch sizes: a width fit with the covariates tokens and bs."""
    parts = [sweep.assign(tokens=tokens, bs=bs, final_loss=sweep["final_loss"] * (1 - 0.01 * i))
             for i, (tokens, bs) in enumerate([(1e6, 8), (4e6, 8), (1e6, 16), (4e6, 16)])]
    return pd.concat(parts, ignore_index=True)


def _upload(client, table: bytes, **fields: str):
    return client.post("/fits", data={"n_boot": str(N_BOOT), **fields},
                       files={"file": ("t.csv", io.BytesIO(table), "text/csv")}, follow_redirects=False)


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> Iterator[TestClient]:
    """One app for the tests that only read the reports of the two fits below (GETs: nothing they do changes what
    another reads), each fit uploaded once: 0.2-0.5 s of CPU per upload, 14 tests (session 72)."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("reports"), database_url=None, api_token=None,
                        plot_wait_s=PLOT_WAIT_S)  # conftest's settings
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
def width_fit(reports, covariate_table) -> str:
    r = _upload(reports, _csv(covariate_table), covariates="tokens,bs")
    assert r.status_code == 303, html.unescape(r.text)[:800]
    return r.headers["location"]


@pytest.fixture(scope="module")
def params_fit(reports) -> str:
    r = _upload(reports, (EXAMPLES / "axes.csv").read_bytes(), size_col="N", lr_col="beta", loss_col="final_loss",
                size_kind="params", covariates="D,batch_size")
    assert r.status_code == 303, html.unescape(r.text)[:800]
    return r.headers["location"]


def _marked(page: str) -> list[str]:
    """The names of the inputs a page marks invalid."""
    return [re.search(r'name="([^"]+)"', tag).group(1)
            for tag in re.findall(r'<(?:input|select)[^>]*aria-invalid="true"[^>]*>', page)]


def _joint_errors(page: str) -> dict[str, str]:
    """The joint box's summary at its top, as field: message."""
    box = re.search(r'<div class="alert" role="alert" id="joint-0-errors">(.*?)</div>', page, re.S)
    assert box, page
    items = re.findall(r"<li>(.*?)</li>", box.group(1), re.S)
    return dict(html.unescape(re.sub(r"<[^>]+>", "", item)).split(": ", 1) for item in items)


def _summary(page: str) -> str:
    box = re.search(r'<div class="alert" role="alert" id="error-summary">(.*?)</div>', page, re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", box.group(1))).split()) if box else ""


# --- finding 2: the joint box ----------------------------------------------------------------------------------

def test_the_joint_box_refuses_an_unknown_covariate_naming_it_and_the_laws(reports, width_fit):
    r = reports.get(width_fit, params={"joint": "0", "size": "4096", "at.token": "1e10", "at.bs": "16"})
    assert r.status_code == 422, r.text
    assert _joint_errors(r.text) == {"at.token": "'token' is not a covariate of this law: its covariates are "
                                                 "tokens, bs"}
    assert 'id="joint-prediction-0"' not in r.text  # no answer at the base
    ok = reports.get(width_fit, params={"joint": "0", "size": "4096", "at.tokens": "1e10", "at.bs": "16"})
    assert ok.status_code == 200 and 'id="joint-prediction-0"' in ok.text and "joint-0-errors" not in ok.text


def test_the_joint_box_refuses_a_field_given_twice(reports, width_fit):
    r = reports.get(width_fit, params=[("joint", "0"), ("size", "4096"), ("at.tokens", "1e10"),
                                      ("at.tokens", "1e11")])
    assert r.status_code == 422, r.text
    assert _marked(r.text) == ["at.tokens"]
    assert _joint_errors(r.text) == {"at.tokens": "given twice; give it once"}
    r = reports.get(width_fit, params=[("joint", "0"), ("size", "4096"), ("size", "8192")])
    assert r.status_code == 422 and _joint_errors(r.text) == {"size": "given twice; give it once"}


@pytest.mark.parametrize("size", ["4096.5", "1e30", "0", "1e-305", "4096x", "2e12"])
def test_a_width_fits_joint_size_is_a_whole_width_up_to_2_40(reports, width_fit, size):
    r = reports.get(width_fit, params={"joint": "0", "size": size})
    assert r.status_code == 422, r.text
    assert _marked(r.text) == ["size"]
    assert _joint_errors(r.text) == {"size": f"expected a whole number from 1 to 2**40, got {size!r}"}


@pytest.mark.parametrize("size", ["4096", "4096.0", "4e3"])
def test_a_width_fits_joint_size_reads_a_whole_number_as_the_width_box_does(reports, width_fit, size):
    r = reports.get(width_fit, params={"joint": "0", "size": size})
    assert r.status_code == 200 and 'id="joint-prediction-0"' in r.text, r.text


# --- finding 5: large numbers name the bound -------------------------------------------------------------------

@pytest.mark.parametrize("field, value", [("at.batch_size", "1e200"), ("size", "1e300"), ("at.D", "1e400")])
def test_a_joint_value_past_its_bound_says_the_bound(reports, params_fit, field, value):
    r = reports.get(params_fit, params={"joint": "0", "size": "1e9", field: value})
    assert r.status_code == 422, r.text
    # a parameter count's bound, as the fit's (session 61), and a whole number, as the API's (session 63)
    said = "a whole number from 1 to 1e18" if field == "size" else "a positive number up to 1e30"
    assert _joint_errors(r.text) == {field: f"expected {said}, got {value!r}"}
    assert reports.get(params_fit, params={"joint": "0", "size": "1e9", "at.D": "1e10"}).status_code == 200
    r = reports.get(params_fit, params={"joint": "0", "size": "2e18"})
    assert r.status_code == 422 and _joint_errors(r.text) == {"size": "expected a whole number from 1 to 1e18, got "
                                                                      "'2e18'"}
    r = reports.get(params_fit, params={"joint": "0", "size": "7.5"})  # a count: as the API refuses it (session 63)
    assert r.status_code == 422 and _joint_errors(r.text) == {"size": "expected a whole number from 1 to 1e18, got "
                                                                      "'7.5'"}


@pytest.mark.parametrize("width", ["1e30", "1e5000", "2e12"])
def test_the_calculators_width_past_2_40_says_the_bound(client, width):
    r = client.get("/", params={"width": width, "base_width": width})
    assert r.status_code == 422, r.text
    assert sorted(_marked(r.text)) == ["base_width", "width"]
    assert _summary(r.text).count("Input should be less than or equal to 1099511627776") == 2, _summary(r.text)


@pytest.mark.parametrize("width", ["1e30", "1e5000"])
def test_the_upload_forms_target_width_past_2_40_says_the_bound(client, sweep, width):
    r = _upload(client, _csv(sweep), target_width=width)
    assert r.status_code == 422 and _marked(r.text) == ["target_width"], r.text
    assert _summary(r.text) == ("Please correct this field Target width : Input should be less than or equal to "
                                "1099511627776")
    api = client.post("/v1/fits", data={"n_boot": str(N_BOOT), "target_width": width},
                      files={"file": ("t.csv", io.BytesIO(_csv(sweep)), "text/csv")})
    assert api.status_code == 422 and api.json()["detail"] == [{
        "type": "less_than_equal", "loc": ["body", "target_width"],
        "msg": "Input should be less than or equal to 1099511627776", "input": width}]


# --- finding 3: the calculator names every bad field, a bad alignment too --------------------------------------

def test_a_bad_alignment_does_not_hide_the_calculators_other_bad_fields(client):
    bad = {"source": "theory", "parameterization": "bogus", "optimizer": "adam", "alignment": "bad",
           "lr_mode": "per_layer", "base_width": "0", "base_lr": "0.003", "width": "-1", "form": "abc"}
    r = client.get("/", params=bad)
    assert r.status_code == 422
    assert sorted(_marked(r.text)) == ["alignment", "base_width", "parameterization", "width"]
    r = client.get("/", params={**bad, "parameterization": "mup", "base_width": "256", "width": "4096",
                                "optimizer": "bogus", "form": "bogus", "lr_mode": "bogus"})
    assert r.status_code == 422
    assert sorted(_marked(r.text)) == ["alignment", "form", "lr_mode", "optimizer"]
    assert "must be &#39;full&#39;, &#39;none&#39; or &#39;ALPHA,OMEGA,U&#39;" in r.text  # alignment's own message


# --- finding 4: the upload marks the field that caused the error -----------------------------------------------

@pytest.mark.parametrize("derive, said", [
    ("tpw=tokens/width:bogus", "derive: 'tpw=tokens/width:bogus' is not NAME=A/B"),
    ("width=tokens/bs", "derive: width is already a column"),
])
def test_a_bad_derive_spec_is_marked_at_derive(client, covariate_table, derive, said):
    r = _upload(client, _csv(covariate_table), covariates="tokens,bs", derive=derive)
    assert r.status_code == 422 and _marked(r.text) == ["derive"], r.text
    assert said in html.unescape(r.text)
    rows = json.loads(covariate_table.to_json(orient="records"))
    api = client.post("/v1/fits", json={"rows": rows, "n_boot": N_BOOT, "covariates": ["tokens", "bs"],
                                        "derive": [derive]})
    assert api.status_code == 422 and [e["loc"] for e in api.json()["detail"]] == [["body", "derive"]], api.text
    assert api.json()["detail"][0]["msg"].startswith(said)
    multipart = client.post("/v1/fits", data={"n_boot": str(N_BOOT), "covariates": "tokens,bs", "derive": derive},
                            files={"file": ("t.csv", io.BytesIO(_csv(covariate_table)), "text/csv")})
    assert multipart.status_code == 422 and multipart.json()["detail"][0]["loc"] == ["body", "derive"]


def test_at_without_a_target_width_is_marked_at_at(client, covariate_table):
    r = _upload(client, _csv(covariate_table), covariates="tokens,bs", at="tokens=1e10")
    assert r.status_code == 422 and _marked(r.text) == ["at"], r.text
    assert "Predict at : needs a target size (target_width) to predict at" in _summary(r.text)
    rows = json.loads(covariate_table.to_json(orient="records"))
    api = client.post("/v1/fits", json={"rows": rows, "n_boot": N_BOOT, "covariates": ["tokens", "bs"],
                                        "at": {"tokens": 1e10}})
    assert api.status_code == 422 and api.json()["detail"] == [{
        "type": "value_error", "loc": ["body", "at"], "msg": "at: needs a target size (target_width) to predict at",
        "input": None}]
