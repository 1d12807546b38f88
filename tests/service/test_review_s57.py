"""Session 57: a review of the service as API users hit it. A lone UTF-16 surrogate escape was a 500 on every route;
an explicit null for a column every table has was a 422 holding pydantic's multi-line dump; a chunked body over the
cap said only "Content Too Large"; a repeated query parameter took its last value; a null for another source's field
beside `tuned` was an extra input; a string where `POST /v1/fits` takes a list ("" from an unset variable) fitted
every setup as one group; a loss of -inf counted as a diverged run while -1 was refused."""

from __future__ import annotations

import json

import pytest

from abcscale.service.config import Settings
from tests.service.conftest import N_BOOT, TestClient, create_app, fit_count
from tests.service.test_review_s48 import TUNED

ANALYTIC = {"parameterization": "mup", "optimizer": "adam", "width": 1024, "base": {"width": 64, "beta": 3e-3}}


def _raw(client, url: str, text: str):
    return client.post(url, content=text.encode(), headers={"content-type": "application/json"})


@pytest.mark.parametrize(("url", "text", "where"), [
    ("/v1/recommend", '{"parameterization": "m\\ud800", "optimizer": "adam", "width": 1024, '
                      '"base": {"width": 64, "beta": 0.003}}', "parameterization"),
    ("/v1/recommend", json.dumps({**ANALYTIC, "rules": [{"pattern": "PAT", "role": "embedding"}]}).replace(
        "PAT", "emb\\udc00"), "rules[0].pattern"),
    ("/v1/theory/convert", '{"optimizer": "\\uDBFF"}', "optimizer"),
    ("/v1/fits", '{"name": "run \\ud800", "rows": [{"width": 64, "beta": 0.01, "final_loss": 3.0}]}', "name"),
    ("/v1/fits", '{"rows": [{"width": 64, "beta": 0.01, "final_loss": 3.0, "note": "x\\ud800"}]}', "rows[0].note"),
    ("/v1/fits", '{"rows": [{"width": 64, "beta": 0.01, "final_loss": 3.0, "n\\ud800": 1}]}', "a key of rows[0]"),
    ("/v1/recommend", '{"the body": {"x": "\\ud800"}}', "the body.x"),  # a key named like the top (a code review)
    ("/v1/recommend", '["a", {"b": "\\ud800"}]', "the body[1].b"),
])
def test_a_lone_surrogate_escape_is_a_422_naming_where(client, url, text, where):
    r = _raw(client, url, text)
    assert r.status_code == 422, r.text
    (e,) = r.json()["detail"]
    assert e["type"] == "json_invalid" and f"surrogate escape in {where}:" in e["msg"], e
    assert fit_count(client) == 0


def test_a_surrogate_pair_is_one_character_and_still_taken(client, sweep_rows):
    """An emoji escaped as its pair (as json.dumps writes it with ensure_ascii) is text: a name and a cell keep it."""
    rows = [{**r, "note": "\U0001F600"} for r in sweep_rows]
    r = _raw(client, "/v1/fits", json.dumps({"name": "run \U0001F600", "rows": rows, "n_boot": N_BOOT}))
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "run \U0001F600"


@pytest.mark.parametrize("col", ["size_col", "lr_col", "loss_col"])
def test_a_null_column_is_the_contracts_name(client, sweep_rows, col):
    plain = client.post("/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT}).json()["result"]
    r = client.post("/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT, col: None})
    assert r.status_code == 201, r.text
    assert r.json()["result"]["groups"] == plain["groups"]
    assert r.json()["result"]["mapping"][col] == plain["mapping"][col]


def test_an_empty_column_form_field_is_the_contracts_name(client, sweep):
    r = client.post("/v1/fits", files={"file": ("t.csv", sweep.to_csv(index=False).encode())},
                    data={"n_boot": str(N_BOOT), "lr_col": ""})
    assert r.status_code == 201, r.text
    assert r.json()["result"]["mapping"]["lr_col"] == "beta"


def test_a_chunked_body_over_the_cap_names_the_cap(tmp_path):
    def chunks():
        for _ in range(3):
            yield b" " * 2**20

    with TestClient(create_app(Settings(data_dir=tmp_path, max_upload_mb=2))) as c:
        for url in ("/v1/fits", "/v1/recommend"):
            r = c.post(url, content=chunks(), headers={"content-type": "application/json"})
            assert r.status_code == 413, r.text
            assert r.json() == {"detail": "the request body is over the size cap of 2 MB (ABCSCALE_MAX_UPLOAD_MB)"}
        assert fit_count(c) == 0


@pytest.mark.parametrize("query", ["limit=1&limit=2", "skip=0&skip=3", "skip=1&limit=5&skip=1"])
def test_a_scalar_query_parameter_given_twice_is_refused(reader, read_fit, query):
    r = reader.get(f"/v1/fits?{query}")
    assert r.status_code == 422, r.text
    (e,) = r.json()["detail"]
    name = e["loc"][1]
    assert e["loc"] == ["query", name] and f"{name!r} given 2 times" in e["msg"]


def test_a_list_query_parameter_may_repeat(client):
    both = client.get("/v1/theory/exponents?optimizer=sgd&optimizer=adam")
    assert both.status_code == 200, both.text
    assert {row["optimizer"] for row in both.json()} == {"sgd", "adam"}
    assert client.get("/v1/fits?limit=2").status_code == 200


@pytest.mark.parametrize("nulls", [{"base": None}, {"fit_id": None}, {"base": None, "fit_id": None, "group": None,
                                                                      "constants": None}])
def test_a_tuned_body_takes_the_other_sources_as_null(client, nulls):
    plain = client.post("/v1/recommend", json={"width": 1024, "tuned": TUNED})
    r = client.post("/v1/recommend", json={"width": 1024, "tuned": TUNED, **nulls})
    assert r.status_code == 200, r.text
    assert r.json() == plain.json()


def test_the_other_sources_take_tuned_as_null(reader, read_fit):
    plain = reader.post("/v1/recommend", json=ANALYTIC)
    r = reader.post("/v1/recommend", json={**ANALYTIC, "tuned": None})
    assert r.status_code == 200, r.text
    assert r.json() == plain.json()
    body = {"fit_id": read_fit["id"], "width": 1024}
    assert reader.post("/v1/recommend", json={**body, "tuned": None}).json() == reader.post(
        "/v1/recommend", json=body).json()


@pytest.mark.parametrize("field", ["group_cols", "constant_cols", "covariates", "derive"])
@pytest.mark.parametrize("value", ["", "parameterization,optimizer"])
def test_a_json_string_where_a_list_goes_is_a_422(client, sweep_rows, field, value):
    r = client.post("/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT, field: value})
    assert r.status_code == 422, r.text
    (e,) = r.json()["detail"]
    assert e["loc"] == ["body", field] and e["type"] == "json_type" and "([] for none)" in e["msg"]
    assert fit_count(client) == 0


def test_the_form_and_a_list_keep_their_forms(client, sweep, sweep_rows):
    listed = client.post("/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT, "group_cols": []})
    assert listed.status_code == 201 and listed.json()["result"]["groups"][0]["group"] == {}
    form = client.post("/v1/fits", files={"file": ("t.csv", sweep.to_csv(index=False).encode())},
                       data={"n_boot": str(N_BOOT), "group_cols": "parameterization,optimizer"})
    assert form.status_code == 201, form.text
    assert form.json()["result"]["mapping"]["group_cols"] == ["parameterization", "optimizer"]


def test_a_negative_infinite_loss_is_refused_as_a_negative_one_is(client, sweep_rows):
    for bad in ("-inf", -1.0):
        rows = [dict(r) for r in sweep_rows]
        rows[0]["final_loss"] = bad
        r = client.post("/v1/fits", json={"rows": rows, "n_boot": N_BOOT})
        assert r.status_code == 422, r.text
        assert "needs positive losses" in r.json()["detail"][0]["msg"] and "row(s) 0" in r.json()["detail"][0]["msg"]
    # +inf stays a divergence, as NaN and null are; -inf flagged diverged by the table's column is one too
    rows = [dict(r) for r in sweep_rows]
    rows[0]["final_loss"] = "inf"
    assert client.post("/v1/fits", json={"rows": rows, "n_boot": N_BOOT}).status_code == 201
    rows = [{**r, "diverged": False} for r in sweep_rows]
    rows[0] |= {"final_loss": "-inf", "diverged": True}
    assert client.post("/v1/fits", json={"rows": rows, "n_boot": N_BOOT}).status_code == 201
    assert fit_count(client) == 2


def test_a_form_at_names_each_covariate_once(client):
    from tests.fitting.covariate_sweeps import covariate_sweep

    csv = covariate_sweep(seeds=1).to_csv(index=False).encode()
    r = client.post("/v1/fits", files={"file": ("t.csv", csv)},
                    data={"n_boot": str(N_BOOT), "size_col": "N", "covariates": "D,batch_size",
                          "target_width": "2048", "at": "D=1e10,D=2e10"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "at"] and "D: given twice" in r.json()["detail"][0]["msg"]


# --- the pages (a review of the web pages and the demo) ------------------------------------------------------


def _selected(html: str, field: str) -> list[str]:
    import re

    select = re.search(rf'<select id="f-{field}".*?</select>', html, re.S)
    assert select is not None, field
    return re.findall(r'<option value="([^"]*)" selected', select.group(0))


def test_a_fit_answer_keeps_the_theory_fieldsets_setup(reader, read_fit):
    """With the script, a fit's submission sends the fit fieldset's setup only (empty: from the fit's table); the
    theory fieldset came back with nothing selected, which a browser shows as standard + sgd + global."""
    url = (f"/?source=fit&fit_id={read_fit['id']}&group=&parameterization=&optimizer=&lr_mode=&width=2048&form=abc"
           "&gamma=&init_scale=&multiplier=&epsilon=&epsilon_mode=per_layer&weight_decay=&weight_decay_mode=coupled")
    html = reader.get(url).text
    assert (_selected(html, "parameterization"), _selected(html, "optimizer"), _selected(html, "lr_mode")) == (
        ["mup"], ["adam"], ["per_layer"])
    # without the script both fieldsets are sent, the theory one's first: it keeps what was chosen there
    both = reader.get(f"/?source=fit&fit_id={read_fit['id']}&parameterization=ntk&parameterization=&optimizer=sgd"
                      "&optimizer=&lr_mode=global&lr_mode=&width=2048").text
    assert (_selected(both, "parameterization"), _selected(both, "optimizer")) == (["ntk"], ["sgd"])


def test_setup_options_the_table_has_are_each_marked(client, sweep):
    data = {"n_boot": str(N_BOOT), "parameterization": "mup", "optimizer": "adam", "lr_mode": "global"}
    r = client.post("/v1/fits", files={"file": ("t.csv", sweep.to_csv(index=False).encode())}, data=data)
    assert r.status_code == 422
    assert [e["loc"] for e in r.json()["detail"]] == [["body", k] for k in ("parameterization", "optimizer", "lr_mode")]
    page = client.post("/fits", files={"file": ("t.csv", sweep.to_csv(index=False).encode())}, data=data)
    assert page.status_code == 422
    for k in ("parameterization", "optimizer", "lr_mode"):
        assert f'id="e-{k}"' in page.text, k  # the message beside the field
    assert fit_count(client) == 0


@pytest.mark.parametrize(("field", "value"), [("target_width", "1_024"), ("confidence_level", "0_0.9")])
def test_a_form_number_with_digit_separators_is_refused(client, sweep, field, value):
    r = client.post("/v1/fits", files={"file": ("t.csv", sweep.to_csv(index=False).encode())},
                    data={"n_boot": str(N_BOOT), field: value})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", field]
    assert "without `_` separators" in r.json()["detail"][0]["msg"]


def test_the_registry_page_given_twice_is_refused(client):
    r = client.get("/fits?page=1&page=2")
    assert r.status_code == 400 and "page given 2 times" in r.text


def test_an_ipv6_host_is_bracketed_in_urls():
    from abcscale.cli.serve import http_url

    assert http_url("::1", 8000) == "http://[::1]:8000" and http_url("127.0.0.1", 80) == "http://127.0.0.1:80"


def test_the_upload_page_says_how_rows_count(client, sweep):
    from abcscale.service.pages import ROWS_COUNTED

    bad = sweep.astype({"beta": object})
    bad.loc[3, "beta"] = "abc"
    page = client.post("/fits", files={"file": ("t.csv", bad.to_csv(index=False).encode())},
                       data={"n_boot": str(N_BOOT)})
    assert page.status_code == 422
    text = " ".join(page.text.split())
    assert "not a number in row(s) 3" in text and ROWS_COUNTED.replace("'", "&#39;") in text
