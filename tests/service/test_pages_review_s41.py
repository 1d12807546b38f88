"""Session 41's review of the pages as a team lead uses them, each finding tested (tests/service/test_pages.py
holds the pages' own tests)."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest

from tests.service.conftest import N_BOOT


def _error(html: str, field: str) -> str:
    m = re.search(rf'id="e-{field}" class="error-msg">([^<]*)<', html)
    return unescape(m.group(1)) if m else ""


def _layer_lrs(html: str) -> dict[str, float]:
    return {layer: float(v) for layer, v in re.findall(
        r'<tr data-layer="(\w+)">.*?data-field="lr" data-value="([^"]+)"', html, re.S)}


def _store(client, rows: list[dict], **options) -> str:
    r = client.post("/v1/fits", json={"rows": rows, "n_boot": N_BOOT, **options})
    assert r.status_code == 201, r.text
    return r.json()["id"]


@pytest.fixture(scope="module")
def bare_fit(reader, sweep) -> str:
    """A fit of a table with no parameterization, optimizer or lr_mode column, in the module's ``reader``
    (conftest): the tests of it only read it."""
    rows = json.loads(sweep.drop(columns=["parameterization", "optimizer", "lr_mode"]).to_json(orient="records"))
    return _store(reader, rows, name="bare")


@pytest.fixture
def no_lr_mode_fit(client, sweep) -> str:
    return _store(client, json.loads(sweep.drop(columns=["lr_mode"]).to_json(orient="records")), name="no lr_mode")


def test_the_calculator_does_not_fill_a_bare_fits_setup_with_its_theory_defaults(reader, bare_fit):
    # the theory form's defaults (mup, adam, per_layer) were taken as the fit's setup: a 200 with LRs 10-100x off
    page = reader.get("/", params={"source": "fit", "fit_id": bare_fit, "width": "4096"})
    assert page.status_code == 422, page.text
    assert 'id="result"' not in page.text
    for key in ("parameterization", "optimizer", "lr_mode"):  # all it lacks at once
        assert "no such column" in _error(page.text, f"fit_{key}")
        assert re.search(rf'id="f-fit_{key}"[^>]*aria-invalid="true"', page.text)
    api = reader.post("/v1/recommend", json={"fit_id": bare_fit, "width": 4096})
    assert api.status_code == 422  # the API's answer too


def test_the_fits_setup_chosen_on_the_page_gives_the_apis_numbers(reader, bare_fit):
    setup = {"parameterization": "standard", "optimizer": "sgd", "lr_mode": "global"}
    page = reader.get("/", params={"source": "fit", "fit_id": bare_fit, "width": "8192", **setup})
    assert page.status_code == 200, page.text
    assert "standard + sgd, global LR" in unescape(page.text)
    api = reader.post("/v1/recommend", json={"fit_id": bare_fit, "width": 8192, **setup}).json()
    assert _layer_lrs(page.text) == {s["layer"]: s["lr"] for s in api["layers"]}
    # the choice stays selected in the fit's fieldset for the next submission
    assert re.search(r'id="f-fit_optimizer"[^>]*>.*?<option value="sgd" selected', page.text, re.S)


def test_a_fit_without_an_lr_mode_column_asks_for_it(client, no_lr_mode_fit):
    page = client.get("/", params={"source": "fit", "fit_id": no_lr_mode_fit, "width": "4096"})
    assert page.status_code == 422
    assert "no such column" in _error(page.text, "fit_lr_mode")
    assert not _error(page.text, "fit_parameterization")  # the table has that column
    ok = client.get("/", params={"source": "fit", "fit_id": no_lr_mode_fit, "width": "4096", "lr_mode": "global"})
    api = client.post("/v1/recommend", json={"fit_id": no_lr_mode_fit, "width": 4096, "lr_mode": "global"}).json()
    assert ok.status_code == 200 and _layer_lrs(ok.text) == {s["layer"]: s["lr"] for s in api["layers"]}


def test_without_the_script_both_fieldsets_are_sent_and_each_source_takes_its_own(reader, bare_fit):
    # the theory fieldset comes first in the form; the fit's setup second
    theory = [("parameterization", "mup"), ("optimizer", "adam"), ("lr_mode", "per_layer"), ("base_width", "256"),
              ("base_lr", "0.003")]
    fit_setup = [("parameterization", "standard"), ("optimizer", "sgd"), ("lr_mode", "global")]
    as_fit = reader.get("/", params=[("source", "fit"), ("fit_id", bare_fit), ("width", "4096"), *theory, *fit_setup])
    assert as_fit.status_code == 200 and "standard + sgd, global LR" in unescape(as_fit.text)
    empty = [("parameterization", ""), ("optimizer", ""), ("lr_mode", "")]
    as_theory = reader.get("/", params=[("source", "theory"), ("width", "4096"), *theory, *empty])
    assert as_theory.status_code == 200 and "mup + adam, per_layer LR" in unescape(as_theory.text)


def test_the_calculator_names_every_bad_field_at_once(client):
    page = client.get("/", params={"width": "abc", "base_lr": "-1", "gamma": "1,2"})
    assert page.status_code == 422
    for field in ("width", "base_lr", "gamma"):
        assert _error(page.text, field), field


def _dd(html: str, block_id: str) -> dict[str, float]:
    block = re.search(rf'id="{block_id}">(.*?)</div>', html, re.S)
    assert block, f"no block {block_id}"
    return {k: float(v) for k, v in re.findall(r'data-field="(\w+)" data-value="([^"]+)"', block.group(1))}


def _upload(client, df, **form) -> dict:
    r = client.post("/v1/fits", files={"file": ("t.csv", df.to_csv(index=False).encode())},
                    data={"n_boot": str(N_BOOT), **form})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture(scope="module")
def token_sweep():
    """LR* = 1e-2 (w/64)^-1 (tokens / 4e8)^-0.2: one table of three token counts."""
    import pandas as pd

    from abcscale.fitting.synthetic import synthetic_sweep

    parts = []
    for tokens in (1e8, 4e8, 1.6e9):
        df = synthetic_sweep(widths=(64, 128, 256, 512), seeds=2, step=0.5, half_range=2.0,
                             lr_base=1e-2 * (tokens / 4e8) ** -0.2, seed=int(tokens) % 1000)
        parts.append(df.assign(tokens=tokens))
    return pd.concat(parts, ignore_index=True)


def test_a_covariate_fits_report_shows_its_joint_law_and_predicts_from_it(client, token_sweep):
    fit = _upload(client, token_sweep, covariates="tokens", at="tokens=1e10", target_width="4096")
    law = fit["result"]["joint"][0]
    page = client.get(f"/fits/{fit['id']}")
    assert page.status_code == 200
    text = unescape(page.text)
    assert f"{law['exponents']['tokens']['estimate']:+.3f}" in text and "Joint law across width, tokens" in text
    assert _dd(page.text, "joint-stored-0")["lr"] == law["prediction"]["lr"]  # what the upload asked for
    asked = client.get(f"/fits/{fit['id']}", params={"joint": "0", "size": "2048", "at.tokens": "3e9"})
    assert asked.status_code == 200

    from abcscale.fitting.joint import predict_joint
    from abcscale.schemas.fit import JointLaw

    want = predict_joint(JointLaw.model_validate(law), 2048, {"tokens": 3e9})
    assert _dd(asked.text, "joint-prediction-0")["lr"] == want.lr
    bad = client.get(f"/fits/{fit['id']}", params={"joint": "0", "size": "x", "at.tokens": "-1"})
    assert bad.status_code == 422 and bad.text.count('aria-invalid="true"') == 2


def test_the_target_widths_prediction_an_upload_asked_for_is_on_its_report(client, sweep):
    fit = _upload(client, sweep, target_width="4096")
    stored = fit["result"]["groups"][0]["prediction"]
    page = client.get(f"/fits/{fit['id']}")
    assert _dd(page.text, "stored-0") == {"lr": stored["lr"], "safe_lr": stored["safe_lr"]}


def test_a_parameter_count_fit_predicts_on_its_report(client, sweep):
    df = sweep.assign(params=12 * sweep["width"] ** 2)
    fit = _upload(client, df, size_col="params", size_kind="params")
    page = client.get(f"/fits/{fit['id']}", params={"group": "0", "width": "1000000000"})
    assert page.status_code == 200, _error(page.text, "width-0")
    text = unescape(page.text)
    assert "Parameter count to predict the LR at" in text and "LR*(N)" in text and "width: width:" not in text

    from abcscale.fitting import predict_group
    from abcscale.schemas.fit import GroupFit

    want = predict_group(GroupFit.model_validate(fit["result"]["groups"][0]), 10**9, size_kind="params")
    assert _dd(page.text, "prediction-0") == {"lr": want.lr, "safe_lr": want.safe_lr}
    assert "Per-layer LRs" not in re.search(r'id="prediction-0">(.*?)</div>', page.text, re.S).group(1)


def test_the_predict_box_marks_the_setup_it_needs_not_the_width(reader, bare_fit):
    page = reader.get(f"/fits/{bare_fit}", params={"group": "0", "width": "4096", "optimizer": "adam"})
    assert page.status_code == 422
    assert not re.search(r'id="width-0"[^>]*aria-invalid', page.text)
    assert re.search(r'id="parameterization-0"[^>]*aria-invalid="true"', page.text)
    assert re.search(r'id="lr_mode-0"[^>]*aria-invalid="true"', page.text)
    assert not re.search(r'id="optimizer-0"[^>]*aria-invalid', page.text)
    assert "LR mode (the table has no such column)" in page.text  # not "Lr_mode"


def _form_upload(client, df, **form):
    import io

    return client.post("/fits", data={"n_boot": str(N_BOOT), **form}, follow_redirects=False,
                       files={"file": ("sweep.csv", io.BytesIO(df.to_csv(index=False).encode()), "text/csv")})


def test_the_upload_forms_alignment_takes_alpha_omega_u_as_its_hint_says(client, sweep):
    r = _form_upload(client, sweep, alignment="0.75,0.5,0.75")
    assert r.status_code == 303, _error(r.text, "alignment")
    stored = client.get("/v1" + r.headers["location"]).json()
    assert stored["result"]["provenance"]["settings"]["alignment"] == "0.75,0.5,0.75"
    bad = _form_upload(client, sweep, alignment="foo")
    assert bad.status_code == 422 and "ALPHA,OMEGA,U" in _error(bad.text, "alignment")
    assert "dictionary" not in _error(bad.text, "alignment")  # not pydantic's union message
    out_of_range = _form_upload(client, sweep, alignment="0.5,3,1")
    assert out_of_range.status_code == 422 and "[0, 2]" in _error(out_of_range.text, "alignment")
    # a multipart POST /v1/fits is a form too
    import io

    api = client.post("/v1/fits", data={"n_boot": str(N_BOOT), "alignment": "0.75,0.5,0.75"},
                      files={"file": ("s.csv", io.BytesIO(sweep.to_csv(index=False).encode()), "text/csv")})
    assert api.status_code == 201, api.text
    # JSON keeps its object, and a string there says so in one message
    rows = json.loads(sweep.to_json(orient="records"))
    js = client.post("/v1/fits", json={"rows": rows, "n_boot": N_BOOT, "alignment": "0.75,0.5,0.75"})
    assert js.status_code == 422 and "object {alpha, omega, u}" in js.text


def test_a_column_problem_is_marked_at_the_field_that_named_the_column(client, sweep):
    df = sweep.astype({"beta": object})
    df.loc[3, "beta"] = "x"
    r = _form_upload(client, df)
    assert r.status_code == 422 and "not a number" in _error(r.text, "lr_col") and not _error(r.text, "file")
    r = _form_upload(client, sweep, loss_col="val_loss")
    assert "val_loss" in _error(r.text, "loss_col")


def test_an_uploads_file_errors_name_the_file(client):
    import io

    r = client.post("/fits", data={"n_boot": str(N_BOOT)}, files={"file": ("runs.csv", io.BytesIO(b" \n"), "text/csv")})
    assert r.status_code == 422 and "'runs.csv' is empty" in _error(r.text, "file") and "<bytes>" not in r.text
    api = client.post("/v1/fits", files={"file": ("runs.csv", io.BytesIO(b" \n"), "text/csv")})
    assert api.status_code == 400 and "'runs.csv'" in api.json()["detail"]


def test_a_parquet_file_named_csv_is_read_as_parquet(client, sweep):
    import io

    buf = io.BytesIO()
    sweep.to_parquet(buf)
    r = client.post("/fits", data={"n_boot": str(N_BOOT)}, follow_redirects=False,
                    files={"file": ("sweep.csv", io.BytesIO(buf.getvalue()), "text/csv")})
    assert r.status_code == 303, _error(r.text, "file")


def test_a_too_large_upload_from_the_form_is_a_page_and_the_apis_stays_json(tmp_path):
    import io

    from abcscale.service.app import create_app
    from abcscale.service.config import Settings
    from tests.service.conftest import TestClient

    with TestClient(create_app(Settings(data_dir=tmp_path / "d", max_upload_mb=1))) as c:
        page = c.post("/fits", files={"file": ("big.csv", io.BytesIO(b"x" * (2 << 20)))})
        assert page.status_code == 413 and page.headers["content-type"].startswith("text/html")
        assert "over the size cap of 1 MB" in unescape(page.text) and 'href="/fits"' in page.text
        api = c.post("/v1/fits", files={"file": ("big.csv", io.BytesIO(b"x" * (2 << 20)))})
        assert api.status_code == 413 and api.headers["content-type"] == "application/json"


@pytest.mark.parametrize("path", ["/fits/abc/plots/x.png", "/fits/abc/nope", "/nothing-here"])
def test_an_unknown_page_path_is_a_page(client, path):
    r = client.get(path)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "Page not found" in r.text and "Traceback" not in r.text


def test_the_apis_unknown_paths_stay_json(client):
    for path in ("/v1/nothing", "/static/nothing.js"):
        r = client.get(path)
        assert r.status_code == 404 and r.headers["content-type"] == "application/json"
    r = client.delete("/fits")
    assert r.status_code == 405 and r.headers["content-type"].startswith("text/html") and r.headers["allow"]


def test_a_registry_page_past_the_end_says_so_not_that_nothing_is_stored(client, stored_fit):
    r = client.get("/fits", params={"page": "3"})
    assert r.status_code == 404
    assert "No fits stored yet" not in r.text and "1 fit on 1 page" in unescape(r.text)
    assert client.get("/fits", params={"page": "1"}).status_code == 200


def test_the_closed_pages_401_links_to_no_page_that_is_closed_too(tmp_path):
    from abcscale.service.app import create_app
    from abcscale.service.config import Settings
    from tests.service.conftest import TestClient

    with TestClient(create_app(Settings(data_dir=tmp_path / "d", protect_reads=True, api_token="w" * 20))) as c:
        r = c.get("/fits")
        assert r.status_code == 401 and 'href="/fits"' not in r.text.split("<main")[1] and "/docs" in r.text


@pytest.mark.parametrize("text", ["1_000", "\uff14\uff10\uff19\uff16", "4096.5"])
def test_the_calculator_reads_a_width_as_the_api_does(client, text):
    # int() read "1_000" as 1000 and full-width digits as 4096; the report's box and the API refuse both (a whole
    # float, 4096.0, the API and the CLI take, and since session 60 the pages too: test_review_s60_pages.py)
    page = client.get("/", params={"width": text})
    assert page.status_code == 422 and "whole number" in _error(page.text, "width")


def test_a_long_bad_number_is_not_echoed_whole(client):
    page = client.get("/", params={"base_lr": "1" + "0" * 400 + "x"})
    assert page.status_code == 422 and len(_error(page.text, "base_lr")) < 100


def test_an_unknown_setup_value_is_marked_at_its_own_select(reader, bare_fit):
    page = reader.get(f"/fits/{bare_fit}", params={"group": "0", "width": "4096", "parameterization": "bogus",
                                                 "optimizer": "adam", "lr_mode": "global"})
    assert page.status_code == 422
    assert re.search(r'id="parameterization-0"[^>]*aria-invalid="true"', page.text)
    assert not re.search(r'id="width-0"[^>]*aria-invalid', page.text)


def test_a_long_number_is_refused_at_once_not_after_seconds_of_backtracking(client):
    import time

    start = time.perf_counter()
    page = client.get("/", params={"base_lr": "1" * 12000 + "x", "epsilon": "1" * 12000 + "x"})
    assert page.status_code == 422 and time.perf_counter() - start < 1.0  # the first regex took 4.9 s here
    assert client.get("/", params={"width": "1" * 5000}).status_code == 422  # int() refuses 4,300 digits: was a 500


def test_a_joint_prediction_out_of_a_floats_range_is_a_422_not_a_500(client, token_sweep):
    fit = _upload(client, token_sweep, covariates="tokens")
    for size in ("1e-305", "5e-324"):  # a width fit's size is a whole width (session 61): refused before the floats
        page = client.get(f"/fits/{fit['id']}", params={"joint": "0", "size": size})
        assert page.status_code == 422, size
        assert "expected a whole number from 1 to 2**40" in unescape(page.text)
    # the float-range path, through a covariate's value
    page = client.get(f"/fits/{fit['id']}", params={"joint": "0", "size": "2048", "at.tokens": "5e-324"})
    assert page.status_code == 422 and "a float" in unescape(page.text)


def test_behind_a_proxy_prefix_the_apis_errors_stay_json(settings):
    from abcscale.service.app import create_app
    from tests.service.conftest import TestClient

    with TestClient(create_app(settings), root_path="/abc") as c:
        for method, path in (("get", "/abc/v1/nope"), ("get", "/abc/v1/fits/xyz"), ("delete", "/abc/v1/fits"),
                             ("post", "/abc/healthz")):
            r = getattr(c, method)(path)
            assert r.status_code in (404, 405) and r.headers["content-type"] == "application/json", (path, r.text)
        page = c.get("/abc/nothing-here")
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")


def test_a_fit_whose_setup_column_is_empty_says_why_on_both_pages(client, sweep):
    df = sweep.drop(columns=["lr_mode"]).assign(parameterization=None)
    fit_id = _store(client, json.loads(df.to_json(orient="records")))
    page = client.get("/", params={"source": "fit", "fit_id": fit_id, "width": "4096", "optimizer": "adam",
                                   "lr_mode": "global"})
    assert page.status_code == 422 and 'id="error-summary"' in page.text
    report = client.get(f"/fits/{fit_id}", params={"group": "0", "width": "4096", "optimizer": "adam",
                                                   "lr_mode": "global"})
    assert report.status_code == 422 and 'class="error-msg"' in report.text


def test_the_json_apis_alignment_is_its_schemas(client, sweep_rows):
    for value in ("0.75,0.5,0.75", "sideways"):
        r = client.post("/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT, "alignment": value})
        assert r.status_code == 422, value
    for value in (" FULL ", "None"):  # the names in any case, as every enum field (session 66)
        r = client.post("/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT, "alignment": value})
        assert r.status_code == 201, value
