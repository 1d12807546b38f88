"""Session 36: a JSON row's list or object cell (a wandb run's ``tags``, its ``config``) was refused by REST (422)
and raised a bare ``TypeError: unhashable type: 'list'`` from the Python API, while the same column in an
uploaded parquet file was read as its JSON text. Every path now reads it so, fits the same numbers and keeps the
cell as given (the stored rows' CSV has its JSON text)."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

import abcscale
from tests.fitting.test_review_s35 import _sweep


def _rows():
    df = _sweep(seeds=1).drop(columns=["parameterization", "optimizer", "lr_mode"])
    rows = json.loads(df.to_json(orient="records"))
    for i, r in enumerate(rows):
        r["tags"] = ["sweep", f"w{r['width']}"]
        r["config"] = {"warmup": 10, "ids": [i, i + 1]}
    return rows


def test_rest_reads_list_and_object_cells_as_json_text(client):
    rows = _rows()
    plain = client.post("/v1/fits", json={"rows": [{k: v for k, v in r.items() if k not in ("tags", "config")}
                                                   for r in rows]})
    r = client.post("/v1/fits", json={"rows": rows})
    assert plain.status_code == r.status_code == 201, r.text
    assert r.json()["result"]["groups"][0]["exponent"] == plain.json()["result"]["groups"][0]["exponent"]
    stored = pd.read_csv(io.StringIO(client.get(f"/fits/{r.json()['id']}/rows.csv").text))
    assert json.loads(stored["tags"][0]) == rows[0]["tags"]
    assert json.loads(stored["config"][3]) == rows[3]["config"]


def test_the_python_api_takes_the_same_rows():
    rows = _rows()
    fit = abcscale.fit(rows)
    plain = abcscale.fit([{k: v for k, v in r.items() if k not in ("tags", "config")} for r in rows])
    assert fit.groups[0].exponent == pytest.approx(plain.groups[0].exponent)
    frame = pd.DataFrame.from_records(rows)
    assert abcscale.fit(frame).groups[0].exponent == pytest.approx(plain.groups[0].exponent)
    assert isinstance(frame["tags"][0], list)  # the caller's frame is left as given


def _one_width():
    df = _sweep(seeds=1)
    return json.loads(df[df["width"] == 128].drop(columns=["parameterization", "optimizer", "lr_mode"])
                      .to_json(orient="records"))


def test_strict_refuses_a_group_without_a_prediction(client, tmp_path):
    """One width (or none identified) has no prediction: `strict` passed it (201, exit 0) though a gate that
    checks nothing is no pass; it is refused, as --expect-theory already was."""
    from typer.testing import CliRunner

    from abcscale.cli import app

    r = client.post("/v1/fits", json={"rows": _one_width(), "target_width": 4096, "strict": True})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "strict"] and "no prediction at width 4096" in r.text
    assert client.post("/v1/fits", json={"rows": _one_width(), "target_width": 4096}).status_code == 201
    path = tmp_path / "one.csv"
    pd.DataFrame(_one_width()).to_csv(path, index=False)
    res = CliRunner().invoke(app, ["fit", str(path), "-q", "--target-width", "4096", "--strict"])
    assert res.exit_code == 1 and "no prediction at width 4096" in " ".join(res.stderr.split())


def test_strict_without_a_target_width_is_refused_as_the_cli_does(client):
    r = client.post("/v1/fits", json={"rows": _rows(), "strict": True})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "strict"]
    assert "without target_width there is none to check" in r.text


def test_at_as_the_clis_text_over_json_says_what_json_takes(client):
    rows = [{**r, "tokens": 1e9} for r in _rows()]
    r = client.post("/v1/fits", json={"rows": rows, "covariates": ["tokens"], "target_width": 1024,
                                      "at": "tokens=1e10"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "at"]
    assert 'an object of covariate values, e.g. {"tokens": 1e10}, not a string' in r.json()["detail"][0]["msg"]


def test_a_note_the_group_and_its_prediction_both_carry_is_printed_once(tmp_path):
    from typer.testing import CliRunner

    from abcscale.cli import app

    df = _sweep(-1.5, seeds=1)  # theory (mup, adam, global) says -1: inconsistent
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    res = CliRunner().invoke(app, ["fit", str(path), "-q", "--target-width", "4096"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert text.count("inconsistent with theory") == 1


def test_a_recommend_field_that_contradicts_the_group_is_a_422(client):
    """`parameterization: standard` with a group naming mup answered mup in silence."""
    df = pd.concat([_sweep(-1.0).assign(parameterization="mup", lr_mode="per_layer"),
                    _sweep(-1.0, seed=1).assign(parameterization="standard", lr_mode="global")], ignore_index=True)
    rows = json.loads(df.to_json(orient="records"))
    fid = client.post("/v1/fits", json={"rows": rows, "n_boot": 50}).json()["id"]
    r = client.post("/v1/recommend", json={"fit_id": fid, "width": 1024, "parameterization": "standard",
                                           "group": {"parameterization": "mup", "lr_mode": "per_layer"}})
    assert r.status_code == 422 and "contradicts the group's parameterization=mup" in r.text


def test_plots_of_a_fit_whose_setup_came_with_the_request(client, tmp_path):
    """`parameterization`/`optimizer`/`lr_mode` given with the request (a table without those columns): the rows are
    stored as sent, and every plot was a 404 ("the table's groups are not the fit's")."""
    from abcscale.schemas.api import FitOptions
    from abcscale.usecases import fit_sweep, plot_fit

    df = _sweep(seeds=1).drop(columns=["parameterization", "optimizer", "lr_mode"])
    setup = {"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"}
    fit = fit_sweep(df, FitOptions(n_boot=50, **setup))
    assert sorted(plot_fit(fit, df, tmp_path)) == ["loss_vs_lr", "loss_vs_width", "lr_vs_width"]
    r = client.post("/v1/fits", json={"rows": json.loads(df.to_json(orient="records")), "n_boot": 50, **setup})
    assert r.status_code == 201, r.text
    plot = client.get(r.json()["plots"]["loss_vs_lr"])
    assert plot.status_code == 200 and plot.headers["content-type"] == "image/png", plot.text


def test_a_retry_with_a_rows_keys_in_another_order_is_the_same_request(client):
    rows = _rows()
    first = client.post("/v1/fits", json={"rows": rows, "n_boot": 50}, headers={"Idempotency-Key": "k-s36-order"})
    shuffled = [dict(reversed(list(r.items()))) for r in rows]
    again = client.post("/v1/fits", json={"n_boot": 50, "rows": shuffled}, headers={"Idempotency-Key": "k-s36-order"})
    assert first.status_code == again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"] and again.headers.get("Idempotent-Replayed") == "true"
    other = client.post("/v1/fits", json={"rows": rows[1:], "n_boot": 50}, headers={"Idempotency-Key": "k-s36-order"})
    assert other.status_code == 422  # another table under the key is still refused


def test_the_body_caps_413_is_json_naming_the_cap(tmp_path):
    """Starlette answered it as plain text ("Content Too Large"), unlike the OpenAPI and every other error."""
    from fastapi.testclient import TestClient

    from abcscale.service.app import create_app
    from abcscale.service.config import Settings

    settings = Settings(data_dir=tmp_path / "data", max_upload_mb=1)
    with TestClient(create_app(settings)) as c:
        for r in (c.post("/v1/fits", content=b"x" * (2 << 20), headers={"content-type": "application/json"}),
                  c.post("/v1/fits", files={"file": ("t.csv", b"x" * (2 << 20))})):
            assert r.status_code == 413 and r.headers["content-type"] == "application/json"
            assert r.json() == {"detail": "the request body is over the size cap of 1 MB (ABCSCALE_MAX_UPLOAD_MB)"}
        assert c.get("/healthz").status_code == 200  # the rest passes as it was


def test_a_malformed_idempotency_key_is_said_in_words(client):
    r = client.post("/v1/fits", json={"rows": _rows()}, headers={"Idempotency-Key": "x" * 300})
    assert r.status_code == 422
    (e,) = r.json()["detail"]
    assert e["loc"] == ["header", "Idempotency-Key"] and e["msg"].startswith("must be 1-255 printable ASCII")
    assert "ctx" not in e and "[!#-~]" not in r.text


def test_at_naming_no_covariate_is_said_at_at(client):
    r = client.post("/v1/fits", json={"rows": _rows(), "covariates": ["width"], "at": {"depth": 4},
                                      "target_width": 4096})
    assert r.status_code == 422
    assert any(e["loc"] == ["body", "at"] and "depth is not a covariate" in e["msg"] for e in r.json()["detail"])


def test_a_fits_rows_over_the_api_with_a_token(tmp_path):
    """With protected reads the page's /fits/{id}/rows.csv takes no bearer token, and no /v1 route served the rows
    the 409 message sent users to."""
    from fastapi.testclient import TestClient

    from abcscale.service.app import create_app
    from abcscale.service.config import Settings

    settings = Settings(data_dir=tmp_path / "data", api_token="w" * 32, read_token="r" * 32)
    with TestClient(create_app(settings)) as c:
        rows = _rows()
        fid = c.post("/v1/fits", json={"rows": rows, "n_boot": 50},
                     headers={"Authorization": "Bearer " + "w" * 32}).json()["id"]
        assert c.get(f"/v1/fits/{fid}/rows.csv").status_code == 401
        r = c.get(f"/v1/fits/{fid}/rows.csv", headers={"Authorization": "Bearer " + "r" * 32})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        back = pd.read_csv(io.StringIO(r.text))
        assert len(back) == len(rows) and json.loads(back["tags"][0]) == rows[0]["tags"]
        missing = c.get(f"/v1/fits/{'0' * 32}/rows.csv", headers={"Authorization": "Bearer " + "r" * 32})
        assert missing.status_code == 404 and "not found" in missing.json()["detail"].lower()
