"""What a hostile or careless client sends: huge integers, deep nesting, booleans as numbers, duplicated
columns and keys, a decompression bomb. Each is a 4xx naming the field (or the bound), and nothing is stored."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from abcscale.schemas.api import MAX_WIDTH
from abcscale.service.config import Settings
from tests.helpers import forbid_parquet_decode
from tests.service.conftest import N_BOOT, TestClient, create_app, fit_count

ANALYTIC = {"parameterization": "mup", "optimizer": "adam", "width": 1024, "base": {"width": 64, "beta": 3e-3}}
CONVERT = {"optimizer": "adam", "from": "mup", "to": "standard", "width": 1024}


def _post_json(client, url: str, raw: str):
    return client.post(url, content=raw, headers={"content-type": "application/json"})


def _messages(r) -> str:
    detail = r.json()["detail"]
    return json.dumps(detail) if not isinstance(detail, str) else detail


# --- huge integers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [10**30, MAX_WIDTH + 1, 64 * 10**27])
def test_huge_width_in_json_rows_is_422_naming_the_bound(client, sweep_rows, width):
    rows = [dict(r) for r in sweep_rows]
    rows[3]["width"] = width
    r = client.post("/v1/fits", json={"rows": rows, "n_boot": N_BOOT})
    assert r.status_code == 422, r.text
    msg = r.json()["detail"][0]["msg"]
    assert msg.startswith("width:") and str(MAX_WIDTH) in msg and "row(s) 3" in msg
    assert fit_count(client) == 0


def test_huge_width_in_a_csv_upload_is_422(client, sweep):
    df = sweep.astype({"width": object})
    df.loc[0, "width"] = 10**30
    r = client.post("/v1/fits", files={"file": ("t.csv", df.to_csv(index=False).encode())},
                    data={"n_boot": str(N_BOOT)})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "file"] and str(MAX_WIDTH) in r.json()["detail"][0]["msg"]
    assert fit_count(client) == 0


# --- deep nesting ------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [10_000, 100_000])
@pytest.mark.parametrize("url", ["/v1/fits", "/v1/recommend", "/v1/theory/convert"])
def test_deep_nesting_is_422_naming_the_bound(client, url, depth):
    for raw in ("[" * depth + "]" * depth, '{"rows": ' + '{"a": ' * depth + "1" + "}" * depth + "}"):
        r = _post_json(client, url, raw)
        assert r.status_code == 422, r.text
        assert "levels deep, more than the bound of 64 (ABCSCALE_MAX_JSON_DEPTH)" in _messages(r)
    assert fit_count(client) == 0


def test_nesting_bound_is_a_setting_and_ignores_brackets_in_strings(tmp_path):
    with TestClient(create_app(Settings(data_dir=tmp_path, max_json_depth=4))) as c:
        r = _post_json(c, "/v1/recommend", json.dumps({**ANALYTIC, "base": {"width": 64, "beta": [[[[1]]]]}}))
        assert r.status_code == 422 and "more than the bound of 4" in _messages(r)
        # 100 brackets inside a string are text, not nesting: the body is answered (a 422 for the key only)
        r = _post_json(c, "/v1/recommend", json.dumps({**ANALYTIC, '[{"\\': "[" * 100}))
        assert r.status_code == 422 and "bound" not in _messages(r) and "extra_forbidden" in r.text


# --- booleans are not numbers ------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "body", "loc"), [
    ("/v1/recommend", {**ANALYTIC, "width": True}, ["body", "analytic", "width"]),
    ("/v1/recommend", {**ANALYTIC, "base": {"width": True, "beta": 3e-3}}, ["body", "analytic", "base", "width"]),
    ("/v1/recommend", {"fit_id": "x" * 32, "width": False}, ["body", "fit", "width"]),
    ("/v1/theory/convert", {**CONVERT, "epsilon": False}, ["body", "epsilon"]),
    ("/v1/theory/convert", {**CONVERT, "base_lr": True}, ["body", "base_lr"]),
    ("/v1/theory/convert", {**CONVERT, "lr": {"hidden": True}}, ["body", "lr", "hidden"]),
])
def test_booleans_are_not_numbers_in_requests(client, url, body, loc):
    r = client.post(url, json=body)
    assert r.status_code == 422, r.text
    err = next(e for e in r.json()["detail"] if e["loc"] == loc)
    assert "not true/false" in err["msg"]


def test_booleans_are_not_numbers_in_fit_rows_or_options(client, sweep_rows):
    rows = [dict(r) for r in sweep_rows]
    rows[2]["width"] = True
    rows[5]["beta"] = False
    r = client.post("/v1/fits", json={"rows": rows, "n_boot": N_BOOT})
    assert r.status_code == 422, r.text
    msgs = [e["msg"] for e in r.json()["detail"]]
    assert "width: true/false is not a number, in row(s) 2" in msgs
    assert "beta: true/false is not a number, in row(s) 5" in msgs
    r = client.post("/v1/fits", json={"rows": sweep_rows, "n_boot": True})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "n_boot"]
    assert fit_count(client) == 0


def test_a_boolean_group_value_is_still_a_group_value(client):
    """`group` selects by column value, and a column can hold true/false: only numbers are strict."""
    r = client.post("/v1/recommend", json={"fit_id": "0" * 32, "width": 1024, "group": {"tied": True}})
    assert r.status_code == 404  # validated; the fit does not exist


# --- duplicated columns and keys ---------------------------------------------------------------------


def test_duplicated_csv_column_is_422_by_name(client, sweep):
    text = sweep.to_csv(index=False).splitlines()
    text = [text[0] + ",beta"] + [line + ",0.5" for line in text[1:]]  # pandas would rename it beta.1
    r = client.post("/v1/fits", files={"file": ("t.csv", "\n".join(text).encode())}, data={"n_boot": str(N_BOOT)})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0] == {"type": "value_error", "loc": ["body", "file"],
                                     "msg": "beta: duplicated column in the header", "input": None}
    assert fit_count(client) == 0


def test_duplicated_json_key_is_422_by_name(client, sweep_rows):
    body = json.dumps({"rows": sweep_rows, "n_boot": N_BOOT}).replace('"width": ', '"width": 1, "width": ', 1)
    r = _post_json(client, "/v1/fits", body)
    assert r.status_code == 422 and "duplicated key 'width'" in _messages(r)
    r = _post_json(client, "/v1/recommend", json.dumps(ANALYTIC).replace('"width": 1024', '"width": 1, "width": 2'))
    assert r.status_code == 422 and "duplicated key 'width'" in _messages(r)
    assert fit_count(client) == 0


# --- decompression bomb ------------------------------------------------------------------------------


def _bomb(rows: int) -> bytes:
    """A few KB of parquet that decodes to ``rows`` rows (constant columns compress to almost nothing)."""
    buf = io.BytesIO()
    pd.DataFrame({"width": [64] * rows, "beta": 1e-3, "final_loss": 2.0}).to_parquet(buf, index=False)
    return buf.getvalue()


@pytest.fixture
def capped(tmp_path):
    with TestClient(create_app(Settings(data_dir=tmp_path, max_rows=1_000, max_cells=5_000))) as c:
        yield c


def test_parquet_bomb_is_413_from_its_metadata(capped, monkeypatch):
    data = _bomb(200_000)
    assert len(data) < 20_000
    forbid_parquet_decode(monkeypatch, "decoded a table over the cap")
    r = capped.post("/v1/fits", files={"file": ("bomb.parquet", data)}, data={"n_boot": str(N_BOOT)})
    assert r.status_code == 413, r.text
    assert "more than 1000 rows" in r.text and "ABCSCALE_MAX_ROWS" in r.text
    assert fit_count(capped) == 0


def test_cell_cap_and_csv_and_json_rows(capped, sweep_rows):
    wide = pd.DataFrame({f"c{i}": [1.0] * 500 for i in range(10)}).assign(width=64, beta=1e-3, final_loss=2.0)
    buf = io.BytesIO()
    wide.to_parquet(buf, index=False)
    r = capped.post("/v1/fits", files={"file": ("wide.parquet", buf.getvalue())})
    assert r.status_code == 413 and "more than 5000 cells" in r.text and "ABCSCALE_MAX_CELLS" in r.text
    csv = b"width,beta,final_loss\n" + b"64,0.001,2.0\n" * 5_000
    r = capped.post("/v1/fits", files={"file": ("long.csv", csv)})
    assert r.status_code == 413 and "more than 1000 rows" in r.text
    r = capped.post("/v1/fits", json={"rows": sweep_rows * 40, "n_boot": N_BOOT})
    assert r.status_code == 413 and "more than 1000 rows" in r.text
    # 200 rows of 4 keys each, but each with its own key: a table of 200 x 203 cells
    sparse = [{"width": 64, "beta": 1e-3, "final_loss": 2.0, f"k{i}": 1} for i in range(200)]
    r = capped.post("/v1/fits", json={"rows": sparse, "n_boot": N_BOOT})
    assert r.status_code == 413 and "more than 5000 cells" in r.text
    assert fit_count(capped) == 0


def test_default_caps_are_documented_settings():
    s = Settings()
    assert (s.max_rows, s.max_cells, s.max_json_depth) == (1_000_000, 20_000_000, 64)


@pytest.mark.parametrize("col", ["note", "seed", "base_width"])
def test_huge_integers_elsewhere_in_a_row_are_stored_or_named(client, sweep_rows, col):
    """Beyond 64 bits in any column: a bounded column names it (422), a free one is stored as text (201)."""
    rows = [dict(r) for r in sweep_rows]
    rows[0][col] = 10**30
    r = client.post("/v1/fits", json={"rows": rows, "n_boot": N_BOOT})
    if col == "base_width":
        assert r.status_code == 422 and r.json()["detail"][0]["msg"].startswith("base_width: must be between 1")
    else:
        assert r.status_code == 201, r.text
        assert client.get(f"/v1/fits/{r.json()['id']}").status_code == 200


# --- JSON types as the schema states them (numbers given as strings, objects given as scalars or null) -------


@pytest.mark.parametrize(("url", "body", "loc", "msg"), [
    ("/v1/recommend", {**ANALYTIC, "width": "1024"}, ["body", "analytic", "width"],
     "Input should be an integer, not a string"),
    ("/v1/recommend", {**ANALYTIC, "base": {"width": "64", "beta": 3e-3}}, ["body", "analytic", "base"],
     "width: Input should be an integer, not a string"),
    ("/v1/recommend", {**ANALYTIC, "base": {"width": 64, "beta": 3e-3, "gamma": {"hidden": "2"}}},
     ["body", "analytic", "base"], "gamma.hidden: Input should be a number, not a string"),
    ("/v1/recommend", {**ANALYTIC, "base": {"width": 64, "beta": 3e-3, "multiplier": None}},
     ["body", "analytic", "base"], "multiplier: Input should be an object, not null"),
    ("/v1/recommend", {**ANALYTIC, "base": {"width": 64, "beta": 3e-3, "gamma": "1,2,3"}},
     ["body", "analytic", "base"], "gamma: Input should be an object, not a string"),
    ("/v1/theory/convert", {**CONVERT, "epsilon": "1e-8"}, ["body", "epsilon"],
     "Input should be a number or an object or null, not a string"),
    ("/v1/theory/from-mup", {"optimizer": "adam", "base_width": "64", "lr": 1e-3}, ["body", "base_width"],
     "Input should be an integer, not a string"),
])
def test_numbers_as_strings_are_422_naming_the_field(client, url, body, loc, msg):
    r = client.post(url, json=body)
    assert r.status_code == 422, r.text
    assert any(e["loc"] == loc and msg in e["msg"] for e in r.json()["detail"]), r.text


def test_numbers_as_strings_in_json_fit_options_but_not_in_form_fields(client, sweep, sweep_rows):
    r = client.post("/v1/fits", json={"rows": sweep_rows, "n_boot": str(N_BOOT)})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "n_boot"], r.text
    assert fit_count(client) == 0
    # a multipart form is text by nature: its fields are parsed as before
    r = client.post("/v1/fits", files={"file": ("t.csv", sweep.to_csv(index=False).encode())},
                    data={"n_boot": str(N_BOOT)})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("url", ["/v1/fits", "/v1/recommend", "/v1/theory/convert", "/v1/theory/to-mup"])
def test_a_body_that_is_not_utf8_is_422_naming_the_body(client, url):
    r = client.post(url, content=b'{"width": "\xff\xfe"}', headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["loc"][0] == "body" and error["type"] == "json_invalid" and "not UTF-8" in _messages(r)


def test_allow_names_every_method_of_the_path(client, stored_fit):
    r = client.options(f"/v1/fits/{stored_fit['id']}")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, DELETE"  # HEAD: HeadAsGet answers it
    r = client.put("/v1/fits")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, POST"
    assert client.head("/v1/fits").status_code == 200


@pytest.mark.parametrize("value", ["", "FULLY", "3,1,1", "1,0.5"])
def test_alignment_query_outside_its_pattern_is_422(client, value):
    r = client.get("/v1/theory/exponents", params={"alignment": value})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "alignment", 0], r.text
    # the names in any case, as every enum field (session 66)
    assert client.get("/v1/theory/exponents", params={"alignment": "FULL"}).status_code == 200


@pytest.mark.parametrize("tokens", [True, False])
def test_openapi_lists_the_auth_and_size_answers(client, locked, tokens):
    """With a token the writes ask for it (401, 403); without one (the default) nothing asks for a token, and a
    write keeps its 403 (a cross-origin write is refused whatever the tokens)."""
    paths = (locked if tokens else client).get("/openapi.json").json()["paths"]
    for path, ops in paths.items():
        for method, op in ops.items():
            codes = set(op["responses"])
            if op.get("security"):
                assert {"401", "403"} <= codes, (method, path)
            if "requestBody" in op:
                assert "413" in codes, (method, path)
    writes = {"400", "403", "409", "413", "415", "422"}
    assert writes <= set(paths["/v1/fits"]["post"]["responses"])
    assert ("401" in paths["/v1/fits"]["post"]["responses"]) is tokens
    assert bool(paths["/v1/fits"]["post"].get("security")) is tokens
