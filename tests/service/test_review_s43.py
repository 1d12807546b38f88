"""A platform engineer's review of the service (session 43): unknown query parameters answered as if absent
(`?optimiser=sgd` gave every optimizer's exponents), an alignment's 422 printed its regular expression, 401/403
said nothing of which token, a mapped column's problem sat at the table's field, `--db` in a missing folder made
it (and an empty registry), settings from the environment were named by their field, and the calculator named
one bad field of three when one value was NaN; the upload form says to choose its file again."""

from __future__ import annotations

import warnings

import pytest
from typer.testing import CliRunner

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from abcscale.cli import app
from abcscale.service.app import create_app
from abcscale.service.config import Settings
from tests.service.conftest import N_BOOT, TOKEN


@pytest.mark.parametrize(("url", "name", "takes"), [
    ("/v1/theory/exponents?parameterization=mup&optimiser=sgd", "optimiser",
     "parameterization, optimizer and alignment"),
    ("/v1/fits?page=2", "page", "skip and limit"),
    ("/v1/fits?skip=0&Limit=5", "Limit", "skip and limit"),
])
def test_unknown_query_parameters_are_named(client, url, name, takes):
    r = client.get(url)
    assert r.status_code == 422, r.text
    (e,) = r.json()["detail"]
    assert e["loc"] == ["query", name] and e["msg"].endswith(f"this endpoint takes {takes}"), e
    # the parameters a route takes still answer
    assert client.get("/v1/theory/exponents?parameterization=mup&optimizer=sgd").status_code == 200
    assert client.get("/v1/fits?skip=0&limit=5").status_code == 200


def test_a_post_takes_no_query(client):
    r = client.post("/v1/recommend?width=1024", json={})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "width"], r.text
    assert "takes no query parameters" in r.json()["detail"][0]["msg"]


def test_a_bad_alignment_is_said_in_words(client):
    r = client.get("/v1/theory/exponents?alignment=2,2")
    (e,) = r.json()["detail"]
    assert r.status_code == 422 and e["loc"] == ["query", "alignment", 0], e
    assert e["msg"].startswith("must be 'full', 'none' or 'ALPHA,OMEGA,U'") and "(?:" not in e["msg"]


def test_token_errors_say_which_token(tmp_path, sweep_rows):
    settings = Settings(data_dir=tmp_path, api_token=TOKEN, read_token="r" * 24)
    body = {"rows": sweep_rows, "n_boot": N_BOOT}
    with TestClient(create_app(settings)) as c:
        r = c.post("/v1/fits", json=body)
        assert r.status_code == 401 and "needs the write token" in r.json()["detail"], r.text
        assert "--token" in r.json()["detail"]
        r = c.post("/v1/fits", json=body, headers={"Authorization": "Bearer " + "r" * 24})
        assert r.status_code == 403 and "the read token cannot write" in r.json()["detail"], r.text
        r = c.post("/v1/fits", json=body, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 403 and r.json()["detail"].startswith("Invalid token: writes need the write token")
        r = c.get("/v1/fits")
        assert r.status_code == 401 and "the read token (ABCSCALE_READ_TOKEN) or the write token" in r.text
        r = c.get("/v1/fits", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 403 and r.json()["detail"].startswith("Invalid token: reads need the read token")


def test_a_mapped_columns_problem_is_at_its_field(client, sweep, sweep_rows):
    r = client.post("/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT, "lr_col": "nope"})
    (e,) = r.json()["detail"]
    assert r.status_code == 422 and e["loc"] == ["body", "lr_col"] and e["msg"].startswith("nope: missing column")
    r = client.post("/v1/fits", files={"file": ("t.csv", sweep.to_csv(index=False))},
                    data={"lr_col": "nope", "n_boot": str(N_BOOT)})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "lr_col"], r.text
    # a column the request did not name stays the table's problem
    rows = [{**row, "final_loss": "x"} if i == 3 else row for i, row in enumerate(sweep_rows)]
    r = client.post("/v1/fits", json={"rows": rows, "n_boot": N_BOOT})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "rows"], r.text


def test_serve_refuses_a_database_in_a_missing_folder_and_names_settings_by_their_variables(tmp_path,
                                                                                             monkeypatch):
    import subprocess
    import sys

    runner = CliRunner()
    missing = tmp_path / "no" / "such"
    try:  # a process with a deadline: before the fix it served (on the new, empty database) until stopped
        res = subprocess.run([sys.executable, "-m", "abcscale", "serve", "--port", "0", "--db",
                              f"sqlite:///{missing}/x.db"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("serve started on a database in a missing folder")
    assert res.returncode == 2 and f"the folder {missing} does not exist" in res.stderr, res.stderr
    assert not (tmp_path / "no").exists()
    res = runner.invoke(app, ["serve", "--port", "0", "--db", " "])
    assert res.exit_code == 2 and res.stderr.startswith("error: --db: empty"), res.output
    monkeypatch.setenv("ABCSCALE_PROTECT_READS", "maybe")
    res = runner.invoke(app, ["serve", "--port", "0"])
    assert res.exit_code == 2 and res.stderr.startswith("error: ABCSCALE_PROTECT_READS: "), res.output
    # the data folder's own database is still made with its folder
    monkeypatch.delenv("ABCSCALE_PROTECT_READS")
    from abcscale.service.db import make_engine

    make_engine(Settings(data_dir=tmp_path / "fresh" / "data")).dispose()
    assert (tmp_path / "fresh" / "data" / "abcscale.db").is_file()


def test_the_calculator_names_every_bad_field_when_one_is_not_a_number(client):
    r = client.get("/?source=theory&parameterization=mup&optimizer=adam&base_width=0&base_lr=nan&width=-4")
    assert r.status_code == 422
    for field in ("width", "base_width", "base_lr"):
        assert f'id="e-{field}"' in r.text, field


def test_the_upload_form_asks_for_its_file_again_after_an_error(locked, sweep):
    r = locked.post("/fits", files={"file": ("t.csv", sweep.to_csv(index=False))},
                    data={"n_boot": "abc", "token": TOKEN})
    assert r.status_code == 422
    assert "choose it again" in r.text and "type it again" in r.text
    assert "choose it again" not in locked.get("/fits").text


def test_a_union_fields_error_is_said_once_at_the_field(client):
    """`"lr": 1e11` (one number or a table per role) was two errors: the bound, and "a valid dictionary"."""
    r = client.post("/v1/theory/from-mup", json={"optimizer": "adam", "base_width": 256, "lr": 1e11})
    (e,) = r.json()["detail"]
    assert r.status_code == 422 and e["loc"] == ["body", "lr"] and "less than or equal to" in e["msg"], r.text
    r = client.post("/v1/theory/from-mup", json={"optimizer": "adam", "base_width": 256, "lr": {"hidden": 1e11}})
    (e,) = r.json()["detail"]
    assert e["loc"] == ["body", "lr", "hidden"], r.text


def test_an_unknown_query_on_a_refused_write_stays_its_401_or_403(locked, sweep_rows):
    """A code review: the query check ran before the route's token check, so `POST /v1/fits?x=1` without a token
    was a 422, not the 401 it was."""
    body = {"rows": sweep_rows, "n_boot": N_BOOT}
    assert locked.post("/v1/fits?x=1", json=body).status_code == 401
    assert locked.post("/v1/fits?x=1", json=body, headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert locked.delete("/v1/fits/abc?x=1").status_code == 401
    r = locked.post("/v1/fits?x=1", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "x"]


def test_a_named_columns_data_problem_is_the_tables(client, sweep_rows):
    rows = [{**row, "final_loss": "x"} if i == 3 else row for i, row in enumerate(sweep_rows)]
    r = client.post("/v1/fits", json={"rows": rows, "n_boot": N_BOOT, "loss_col": "final_loss"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "rows"], r.text
