"""What a review of the running service found (session 30), each checked on a real app and SQLite file:
a database that refuses a write is a 503 naming why, not a bare 500; a listing's count and page are one
snapshot; HEAD answers wherever GET does."""

from __future__ import annotations

import html
import json
import re
import sqlite3
from datetime import timedelta

import pytest
from sqlalchemy import event

from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.service import db as service_db
from abcscale.service.app import create_app
from abcscale.service.config import Settings
from abcscale.service.db import Fit
from abcscale.usecases.recommend import group_text, selector_from
from tests.service.conftest import N_BOOT, TestClient, fit_count
from tests.service.test_pages import _cells


@pytest.fixture
def quick_lock(tmp_path, monkeypatch):
    """An app on a file whose lock another connection holds; the busy timeout shortened to keep the test fast."""
    monkeypatch.setattr(service_db, "SQLITE_BUSY_S", 0.2)
    with TestClient(create_app(Settings(data_dir=tmp_path, database_url=None, api_token=None))) as c:
        path = next(tmp_path.glob("*.db"))
        yield c, path


def test_a_write_the_database_refuses_is_a_503_naming_why_and_stores_nothing(quick_lock, sweep_rows):
    client, path = quick_lock
    other = sqlite3.connect(path)
    other.execute("BEGIN IMMEDIATE")  # another process mid-write, past the busy timeout
    try:
        r = client.post("/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT})
        assert r.status_code == 503, r.text
        assert "database is locked" in r.json()["detail"] and "nothing was stored" in r.json()["detail"]
        assert int(r.headers["Retry-After"]) > 0
        page = client.post("/fits", files={"file": ("s.csv", b"width,beta,final_loss\n64,0.01,3\n", "text/csv")})
        assert page.status_code in (422, 503) and "Internal Server Error" not in page.text
    finally:
        other.rollback()
        other.close()
    assert fit_count(client) == 0
    assert client.post("/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT}).status_code == 201  # recovered
    schema = client.get("/openapi.json").json()
    assert "503" in schema["paths"]["/v1/fits"]["post"]["responses"]
    assert "503" in schema["paths"]["/v1/fits/{fit_id}"]["delete"]["responses"]


def test_a_listing_counts_the_fits_of_its_own_snapshot(client, stored_fit):
    """The count and the page were two statements, so two snapshots: a fit committed between them was listed
    but not counted (5 of 160 listings under concurrent writes). Now one statement reads both."""
    statements: list[str] = []
    engine = client.app.state.engine
    listen = lambda conn, cursor, statement, *a: statements.append(statement)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listen)
    try:
        body = client.get("/v1/fits").json()
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert body["count"] == len(body["data"]) == 1
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
    assert client.get("/v1/fits", params={"skip": 5}).json() == {"count": 1, "data": []}


@pytest.mark.parametrize("path", ["/healthz", "/", "/fits", "/v1/fits", "/openapi.json"])
def test_head_answers_wherever_get_does_without_a_body(reader, read_fit, path):
    get, head = reader.get(path), reader.head(path)
    assert head.status_code == get.status_code == 200
    assert head.content == b"" and head.headers["content-type"] == get.headers["content-type"]
    assert reader.head(f"/fits/{read_fit['id']}").status_code == 200
    assert reader.head("/v1/fits/nope").status_code == 404
    assert reader.head("/v1/recommend").status_code == 405  # POST only: HEAD is GET's, not every method's


# --- pages ----------------------------------------------------------------------------------------------------

def _store(client, df, name: str = "t") -> str:
    r = client.post("/v1/fits", json={"rows": json.loads(df.to_json(orient="records")), "n_boot": N_BOOT,
                                      "name": name})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_a_fit_without_theory_columns_predicts_on_its_report_once_the_form_names_them(client):
    """The README's smallest table (width, beta, final_loss) fits; its report's predict box could never answer:
    the per-layer split needs a parameterization and optimizer, which the form had no field for."""
    fit_id = _store(client, synthetic_sweep(widths=(64, 128, 256, 512), seeds=2, step=0.5, half_range=2.0))
    page = client.get(f"/fits/{fit_id}", params={"group": 0, "width": 4096})
    assert page.status_code == 422
    for key in ("parameterization", "optimizer", "lr_mode"):  # each select marked (session 41)
        assert re.search(rf'id="{key}-0"[^>]*aria-invalid="true"', page.text) and "choose it" in page.text
    assert 'name="parameterization"' in page.text and 'name="lr_mode"' in page.text
    page = client.get(f"/fits/{fit_id}", params={"group": 0, "width": 4096, "parameterization": "mup",
                                                 "optimizer": "adam"})  # the LR mode left out (session 31)
    assert page.status_code == 422 and re.search(r'id="lr_mode-0"[^>]*aria-invalid="true"', page.text)
    assert not re.search(r'id="optimizer-0"[^>]*aria-invalid="true"', page.text)
    page = client.get(f"/fits/{fit_id}", params={"group": 0, "width": 4096, "parameterization": "mup",
                                                 "optimizer": "adam", "lr_mode": "per_layer"})
    assert page.status_code == 200, page.text
    api = client.post("/v1/recommend", json={"fit_id": fit_id, "width": 4096, "parameterization": "mup",
                                             "optimizer": "adam", "lr_mode": "per_layer"}).json()
    assert f'data-value="{api["band"]["lr"]}"' in page.text
    link = html.unescape(re.search(r'href="(/\?source=fit[^"]+)"', page.text).group(1))
    calc = client.get(link)  # the calculator from the fit takes the same choice
    assert calc.status_code == 200, calc.text
    assert _lrs(calc.text) == pytest.approx([s["lr"] for s in api["layers"]])


def _lrs(text: str) -> list[float]:
    """The calculator's per-layer LRs, embedding, hidden, readout (its layer table's rows)."""
    return [_cells(text, layer)["lr"] for layer in ("embedding", "hidden", "readout")]


def test_the_reports_calculator_link_names_a_group_whose_value_holds_commas_and_equals(client):
    df = synthetic_sweep(widths=(64, 128, 256, 512), seeds=2, step=0.5, half_range=2.0,
                         group={"parameterization": "mup", "optimizer": "adam", "lr_mode": "per_layer",
                                "arch": "a,b=c <i>q</i>"})
    fit_id = _store(client, df)
    page = client.get(f"/fits/{fit_id}", params={"group": 0, "width": 4096})
    assert page.status_code == 200, page.text
    link = html.unescape(re.search(r'href="(/\?source=fit[^"]+)"', page.text).group(1))
    calc = client.get(link)
    assert calc.status_code == 200, calc.text
    api = client.post("/v1/recommend", json={"fit_id": fit_id, "width": 4096}).json()
    assert _lrs(calc.text) == pytest.approx([s["lr"] for s in api["layers"]])


def test_group_text_round_trips_through_the_group_syntax():
    for group in ({"parameterization": "mup", "optimizer": "adam"}, {"arch": "a,b=c"}, {"k": " padded "}):
        assert selector_from(group_text(group)) == {k: str(v) for k, v in group.items()}
    assert group_text({"parameterization": "mup"}) == "parameterization=mup"
    with pytest.raises(ValueError, match="group: a JSON group"):
        selector_from('{"a": [1]}')


def test_the_calculator_keeps_an_older_fit_selected(client, sweep):
    old = _store(client, sweep, "the oldest")
    with client.app.state.sessionmaker() as session:  # 100 newer fits, as stored rows (no fitting needed)
        record = session.get(Fit, old)
        for k in range(100):
            session.add(Fit(id=f"newer{k:03d}", name=f"n{k}", created_at=record.created_at + timedelta(seconds=k + 1),
                            **{c: getattr(record, c) for c in ("n_rows", "n_groups", "input_hash", "result_json")
                               if hasattr(record, c)}))
        session.commit()
    page = client.get("/", params={"source": "fit", "fit_id": old, "width": 4096})
    assert page.status_code == 200, page.text
    assert re.search(rf'<option value="{old}"[^>]*selected', page.text)
