"""Idempotency-Key on POST /v1/fits: a retry answers the first fit again and stores nothing; the same key with
another body, or a malformed key, is a 4xx naming the header; racing retries store one fit."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from abcscale.service import crud
from abcscale.service.db import IdempotencyKey
from tests.service.conftest import N_BOOT, fit_count

KEY = "8e03978e-40d5-43e8-bc93-6894a57f9324"


def _post(client, rows, key=KEY, **extra):
    return client.post("/v1/fits", json={"rows": rows, "n_boot": N_BOOT, **extra}, headers={"Idempotency-Key": key})


def _names_header(r) -> bool:
    return any(e["loc"] == ["header", "Idempotency-Key"] for e in r.json()["detail"])


def test_retry_answers_the_first_fit_and_stores_nothing(client, sweep_rows):
    first = _post(client, sweep_rows)
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    again = _post(client, sweep_rows)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()  # same id, same result, same creation time
    assert fit_count(client) == 1
    # the draft's structured-field spelling ("...") names the same key
    quoted = _post(client, sweep_rows, key=f'"{KEY}"')
    assert quoted.status_code == 201 and quoted.json()["id"] == first.json()["id"]
    # an explicit null seed column (no seeds) is not the omitted one (the column `seed`): another request
    assert _post(client, sweep_rows, seed_col=None).status_code == 422
    assert fit_count(client) == 1


def test_without_a_key_every_post_is_a_new_fit(client, sweep_rows):
    ids = {client.post("/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT}).json()["id"] for _ in range(2)}
    assert len(ids) == 2 and fit_count(client) == 2


def test_upload_retry_matches_on_content_not_on_the_multipart_boundary(client, sweep):
    csv = sweep.to_csv(index=False).encode()

    def upload(n_boot):
        return client.post("/v1/fits", files={"file": ("sweep.csv", csv, "text/csv")}, data={"n_boot": str(n_boot)},
                           headers={"Idempotency-Key": "upload-1"})

    first, again = upload(N_BOOT), upload(N_BOOT)
    assert first.status_code == again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"] and fit_count(client) == 1
    other = upload(N_BOOT + 1)
    assert other.status_code == 422 and _names_header(other)


def test_same_key_other_body_is_422_naming_the_header(client, sweep_rows):
    first = _post(client, sweep_rows)
    r = _post(client, sweep_rows[:-1])
    assert r.status_code == 422 and _names_header(r), r.text
    assert first.json()["id"] not in r.text  # the key alone does not reveal the fit
    assert _post(client, sweep_rows, name="another name").status_code == 422
    assert fit_count(client) == 1


@pytest.mark.parametrize("key", ["", " ", "x" * 256, '"' + "x" * 256 + '"', "caf\u00e9", '"unterminated',
                                 '""', '"a"b"', "tab\tinside"])
def test_malformed_key_is_422_naming_the_header(client, sweep_rows, key):
    r = client.post("/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT},
                    headers={"Idempotency-Key": key.encode("utf-8")})
    assert r.status_code == 422 and _names_header(r), r.text
    assert fit_count(client) == 0


def test_bounds_are_inclusive_and_escapes_unquote(client, sweep_rows):
    assert _post(client, sweep_rows, key="k" * 255).status_code == 201
    # "a\"b" as a structured-field string is the key a"b, the same as sending it bare
    a = _post(client, sweep_rows, key='"a\\"b"')
    b = _post(client, sweep_rows, key='a"b')
    assert a.status_code == 201 and b.json()["id"] == a.json()["id"] and fit_count(client) == 2


def test_two_key_headers_are_refused(client, sweep_rows):
    r = client.post("/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT},
                    headers=[("Idempotency-Key", "one"), ("Idempotency-Key", "two")])
    assert r.status_code == 422 and _names_header(r), r.text


def test_deleting_the_fit_frees_its_key(client, sweep_rows):
    first = _post(client, sweep_rows).json()["id"]
    assert client.delete(f"/v1/fits/{first}").status_code == 204
    again = _post(client, sweep_rows)
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert again.json()["id"] != first and fit_count(client) == 1


def test_a_failed_request_does_not_use_up_its_key(client, sweep_rows):
    bad = _post(client, [{**row, "width": "wide"} for row in sweep_rows])
    assert bad.status_code == 422 and not _names_header(bad)
    assert _post(client, sweep_rows).status_code == 201 and fit_count(client) == 1


def test_racing_retries_store_one_fit(client, settings, sweep_rows, monkeypatch):
    """Both requests pass the look-up before either stores (a barrier holds them): the key's primary key lets
    one fit in, and the other request answers that fit. Against the app's real SQLite file."""
    assert settings.resolved_database_url.startswith("sqlite:///") and "memory" not in settings.resolved_database_url
    race_two_retries(client, settings, sweep_rows, monkeypatch)


def race_two_retries(client, settings, sweep_rows, monkeypatch) -> None:
    """Two retries of one key that both pass the look-up before either stores: one fit, one key, both 201."""
    barrier = threading.Barrier(2, timeout=30)
    real_create = crud.create_fit

    def create_together(*args, **kwargs):
        barrier.wait()
        return real_create(*args, **kwargs)

    monkeypatch.setattr(crud, "create_fit", create_together)
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: _post(client, sweep_rows), range(2)))
    assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
    assert answers[0].json()["id"] == answers[1].json()["id"]
    assert sorted(a.headers.get("Idempotent-Replayed", "") for a in answers) == ["", "true"]
    assert fit_count(client) == 1
    with crud.open_session(settings) as session:
        assert session.scalar(select(func.count()).select_from(IdempotencyKey)) == 1


def test_key_stored_in_the_fits_transaction(settings, sweep, sweep_rows):
    """A key already taken makes create_fit store nothing at all: no fit without its key, no key without its
    fit."""
    from abcscale.fitting import fit_table
    from abcscale.schemas.fit import ColumnMapping

    fit = fit_table(sweep, ColumnMapping(), n_boot=N_BOOT)
    with crud.open_session(settings) as session:
        fit_id = crud.create_fit(session, fit, sweep, idempotency=("k", "h1"))
        with pytest.raises(crud.KeyTaken):
            crud.create_fit(session, fit, sweep, idempotency=("k", "h2"))
        assert crud.list_fits(session)[1] == 1
        assert crud.find_key(session, key="k") == crud.KeyUse(fit_id=fit_id, request_hash="h1")
        assert crud.delete_fit(session, fit_id=fit_id) and crud.find_key(session, key="k") is None
