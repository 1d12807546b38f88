"""The web pages without a browser: what each answers, the same numbers as the API, errors as pages, the access
model on the upload. The same pages in a real Chromium: tests/service/test_pages_browser.py."""

from __future__ import annotations

import io
import re
from html import unescape

import pytest

from abcscale.service.app import create_app
from abcscale.service.config import Settings
from tests.service.conftest import N_BOOT, TOKEN, TestClient, fit_count


def _cells(html: str, row: str, kind: str = "layer") -> dict[str, float]:
    """The ``data-field`` -> ``data-value`` numbers of the table row ``data-<kind>="<row>"`` (a layer or a role)."""
    block = re.search(rf'data-{kind}="{row}">(.*?)</tr>', html, re.S)
    assert block, f"no row {row}"
    return {k: float(v) for k, v in re.findall(r'data-field="(\w+)" data-value="([^"]+)"', block.group(1))}


def _error(html: str, field: str) -> str:
    m = re.search(rf'id="e-{field}" class="error-msg">([^<]*)<', html)
    return unescape(m.group(1)) if m else ""


def test_calculator_answers_what_the_api_answers(client):
    query = {"parameterization": "standard", "optimizer": "adamw", "alignment": "none", "lr_mode": "global",
             "base_width": "128", "base_lr": "0.002", "width": "2048", "form": "mup", "weight_decay": "0.1",
             "gamma": "1,2,0.5", "epsilon": "1e-6"}
    page = client.get("/", params=query)
    assert page.status_code == 200, page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    api = client.post("/v1/recommend", json={
        "parameterization": "standard", "optimizer": "adamw", "alignment": "none", "lr_mode": "global",
        "width": 2048, "form": "mup", "base": {"width": 128, "beta": 0.002, "weight_decay": 0.1,
                                               "gamma": {"embedding": 1, "hidden": 2, "readout": 0.5},
                                               "epsilon": 1e-6}}).json()
    for layer in api["layers"]:
        cells = _cells(page.text, layer["layer"])
        assert cells == {k: layer[k] for k in ("multiplier", "init_std", "lr", "epsilon", "weight_decay")}
    for role in api["groups"]["roles"]:
        assert _cells(page.text, role["role"], "role")["lr"] == role["lr"]
    for title in ("Multiplier-free groups", "microsoft/mup groups", "PyTorch snippet", "optax snippet"):
        assert title in page.text
    assert "torch.optim.AdamW" in unescape(page.text)


def test_the_landing_page_shows_the_readme_example(client):
    page = client.get("/")
    api = client.post("/v1/recommend", json={"parameterization": "mup", "optimizer": "adam", "width": 4096,
                                             "base": {"width": 256, "beta": 0.003}}).json()
    assert _cells(page.text, "hidden")["lr"] == api["layers"][1]["lr"]


@pytest.mark.parametrize(("query", "field", "words"), [
    ({"base_lr": "abc"}, "base_lr", "expected a number"),
    ({"base_width": "-5"}, "base_width", "greater than 0"),
    ({"width": "wide"}, "width", "whole number"),
    ({"alignment": "sideways"}, "alignment", "full"),
    ({"gamma": "1,x,3"}, "gamma", "embedding,hidden,readout"),
    ({"optimizer": "adam", "weight_decay": "0.1"}, "weight_decay", "adamw"),
    ({"source": "fit"}, "fit_id", "choose a stored fit"),
    ({"source": "fit", "fit_id": "nope"}, "fit_id", "no stored fit"),
])
def test_a_bad_field_is_marked_with_its_message(client, query, field, words):
    page = client.get("/", params=query)
    assert page.status_code == 422
    assert words in _error(page.text, field)
    assert re.search(rf'id="f-{field}"[^>]*aria-invalid="true"', page.text)
    assert "Traceback" not in page.text and 'id="result"' not in page.text


def test_calculator_from_a_fit_shows_the_band(reader, read_fit):
    page = reader.get("/", params={"source": "fit", "fit_id": read_fit["id"], "width": "2048"})
    assert page.status_code == 200, page.text
    api = reader.post("/v1/recommend", json={"fit_id": read_fit["id"], "width": 2048}).json()
    band = dict(re.findall(r'<dd data-field="(\w+)" data-value="([^"]+)"', page.text))
    assert float(band["lr"]) == api["band"]["lr"] and float(band["safe_lr"]) == api["band"]["safe_lr"]
    assert _cells(page.text, "readout")["lr"] == api["layers"][2]["lr"]
    wrong = reader.get("/", params={"source": "fit", "fit_id": read_fit["id"], "width": "2048",
                                    "group": "optimizer=sgd"})
    assert wrong.status_code == 422 and "no group matches" in _error(wrong.text, "group")


def _csv(sweep) -> bytes:
    return sweep.to_csv(index=False).encode()


def test_registry_and_report(reader, read_fit, sweep):
    listing = reader.get("/fits")
    assert listing.status_code == 200 and read_fit["id"] in listing.text and "consistent" in listing.text
    report = reader.get(f"/fits/{read_fit['id']}")
    assert report.status_code == 200
    for name in ("loss_vs_lr", "lr_vs_width", "loss_vs_width"):
        assert re.search(rf'data-src="/v1/fits/{read_fit["id"]}/plots/{name}.png" alt="[^"]+"', report.text)
    predicted = reader.get(f"/fits/{read_fit['id']}", params={"group": "0", "width": "4096"})
    api = reader.post("/v1/recommend", json={"fit_id": read_fit["id"], "width": 4096}).json()
    assert f'data-value="{api["band"]["safe_lr"]}"' in predicted.text
    bad = reader.get(f"/fits/{read_fit['id']}", params={"group": "0", "width": "-1"})
    assert bad.status_code == 422 and 'id="width-0-error"' in bad.text
    rows = reader.get(f"/fits/{read_fit['id']}/rows.csv")
    assert rows.headers["content-type"].startswith("text/csv") and len(rows.text.splitlines()) == len(sweep) + 1
    assert reader.get("/fits/nope").status_code == 404
    assert reader.get("/fits?page=x").status_code == 400


def test_upload_stores_and_redirects_to_the_report(client, sweep):
    r = client.post("/fits", data={"name": "page-upload", "n_boot": str(N_BOOT)},
                    files={"file": ("sweep.csv", io.BytesIO(_csv(sweep)), "text/csv")}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/fits/")
    report = client.get(r.headers["location"])
    assert "page-upload" in report.text


def test_upload_errors_are_marked(client, sweep):
    before = fit_count(client)
    r = client.post("/fits", data={"n_boot": "5"}, files={"file": ("s.csv", io.BytesIO(_csv(sweep)), "text/csv")})
    assert r.status_code == 422 and "greater than or equal to 20" in _error(r.text, "n_boot")
    r = client.post("/fits", data={"lr_col": "nope", "n_boot": str(N_BOOT)},
                    files={"file": ("s.csv", io.BytesIO(_csv(sweep)), "text/csv")})
    assert r.status_code == 422 and "nope" in _error(r.text, "lr_col")  # the field that named it (session 41)
    r = client.post("/fits", data={"name": "x"}, files={"file": ("", io.BytesIO(b""), "text/csv")})
    assert r.status_code == 422 and "choose a CSV" in _error(r.text, "file")
    assert fit_count(client) == before


def test_upload_needs_the_write_token(tmp_path, sweep):
    with TestClient(create_app(Settings(data_dir=tmp_path, api_token=TOKEN))) as locked:
        files = {"file": ("s.csv", io.BytesIO(_csv(sweep)), "text/csv")}
        r = locked.post("/fits", data={"n_boot": str(N_BOOT)}, files=files)
        assert r.status_code == 401 and "write token" in _error(r.text, "token")
        r = locked.post("/fits", data={"n_boot": str(N_BOOT), "token": "wrong"}, files=files)
        assert r.status_code == 403 and "not this service's write token" in _error(r.text, "token")
        assert fit_count(locked) == 0
        r = locked.post("/fits", data={"n_boot": str(N_BOOT), "token": TOKEN}, follow_redirects=False,
                        files={"file": ("s.csv", io.BytesIO(_csv(sweep)), "text/csv")})
        assert r.status_code == 303 and fit_count(locked) == 1


def test_a_cross_site_upload_is_refused(client, sweep):
    r = client.post("/fits", data={"n_boot": str(N_BOOT)}, headers={"Sec-Fetch-Site": "cross-site"},
                    files={"file": ("s.csv", io.BytesIO(_csv(sweep)), "text/csv")})
    assert r.status_code == 403 and "Cross-origin write refused" in r.text
    same = client.post("/fits", data={"n_boot": str(N_BOOT)}, headers={"Sec-Fetch-Site": "same-origin"},
                       files={"file": ("s.csv", io.BytesIO(_csv(sweep)), "text/csv")}, follow_redirects=False)
    assert same.status_code == 303
    assert fit_count(client) == 1


def test_protected_reads_close_the_pages(tmp_path):
    with TestClient(create_app(Settings(data_dir=tmp_path, api_token=TOKEN, protect_reads=True))) as c:
        for path in ("/", "/fits", "/fits/x", "/fits/x/rows.csv"):
            r = c.get(path)
            assert r.status_code == 401 and "Reads are protected" in r.text, path
        assert c.get("/static/style.css").status_code == 200


def test_pages_stay_out_of_the_openapi(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert all(p.startswith(("/v1/", "/healthz", "/readyz")) for p in paths)


def test_upload_takes_the_apis_other_options_and_refuses_unknown_fields(client, sweep):
    """The form had only the basic mapping: a table with a ``Diverged`` column could not be stored from the page,
    whose own error asked for diverged_col, and covariates posted anyway were dropped (session 32)."""
    renamed = sweep.rename(columns={"diverged": "Diverged"})
    files = {"file": ("s.csv", io.BytesIO(_csv(renamed)), "text/csv")}
    r = client.post("/fits", data={"n_boot": str(N_BOOT)}, files=files)
    assert r.status_code == 422 and "diverged_col" in unescape(r.text)
    r = client.post("/fits", data={"n_boot": str(N_BOOT), "diverged_col": "Diverged", "confidence_level": "0.9"},
                    files={"file": ("s.csv", io.BytesIO(_csv(renamed)), "text/csv")}, follow_redirects=False)
    assert r.status_code == 303, _error(r.text, "file") or r.text[:500]
    stored = client.get("/v1/fits/" + r.headers["location"].rsplit("/", 1)[1]).json()["result"]
    assert stored["groups"][0]["exponent"]["ci"]["confidence_level"] == 0.9
    # two token budgets at every width, fitted as one law across them
    import pandas as pd

    two = pd.concat([sweep.assign(tokens=1_000_000),
                     sweep.assign(tokens=4_000_000, final_loss=sweep["final_loss"] * 0.99)], ignore_index=True)
    options = {"n_boot": str(N_BOOT), "covariates": "tokens", "at": "tokens=2e6", "target_width": "2048"}
    r = client.post("/fits", data=options,
                    files={"file": ("t.csv", io.BytesIO(_csv(two)), "text/csv")}, follow_redirects=False)
    assert r.status_code == 303, unescape(r.text)[:800]
    stored = client.get("/v1/fits/" + r.headers["location"].rsplit("/", 1)[1]).json()["result"]
    assert stored["mapping"]["covariates"] == ["tokens"] and stored["joint"]
    before = fit_count(client)
    r = client.post("/fits", data={"n_boot": str(N_BOOT), "covariate": "tokens"},
                    files={"file": ("t.csv", io.BytesIO(_csv(two)), "text/csv")})
    assert r.status_code == 422 and "unknown field(s) 'covariate'" in unescape(r.text)
    assert fit_count(client) == before
    page = client.get("/fits")
    assert 'name="diverged_col"' in page.text and 'name="covariates"' in page.text


def test_upload_errors_without_a_field_are_the_form_s_not_a_500(client, sweep):
    """An `at` naming no covariate fails a check across fields (no location): the page answered 500 (session 32's
    re-verification); a field given twice is joined, as the API's list, not its last value."""
    files = {"file": ("s.csv", io.BytesIO(_csv(sweep)), "text/csv")}
    r = client.post("/fits", data={"n_boot": str(N_BOOT), "target_width": "2048", "at": "tokens=1e6"}, files=files)
    assert r.status_code == 422 and "tokens is not a covariate" in unescape(r.text) and "Traceback" not in r.text
    import pandas as pd

    two = pd.concat([sweep.assign(tokens=1_000_000, bs=8),
                     sweep.assign(tokens=4_000_000, bs=16, final_loss=sweep["final_loss"] * 0.99)], ignore_index=True)
    r = client.post("/fits", data={"n_boot": str(N_BOOT), "covariates": ["tokens", "bs"]},
                    files={"file": ("t.csv", io.BytesIO(_csv(two)), "text/csv")}, follow_redirects=False)
    assert r.status_code == 303, unescape(r.text)[:600]
    stored = client.get("/v1/fits/" + r.headers["location"].rsplit("/", 1)[1]).json()["result"]
    assert stored["mapping"]["covariates"] == ["tokens", "bs"]
