"""Session 83's review of the service and the fitter's front door."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("n", [1, 3])
def test_rows_that_are_all_empty_objects_are_said_as_rows_without_columns(client, n):
    # from_records made [{}] a table of no rows, said "table: no rows" of a body that sent one
    r = client.post("/v1/fits", json={"rows": [{}] * n})
    assert r.status_code == 422
    (e,) = r.json()["detail"]
    assert e["loc"] == ["body", "rows"] and e["msg"] == f"table: no columns ({n} row(s), each empty)"


def test_one_empty_object_among_rows_is_a_row_of_empty_cells(client):
    rows = [{}, {"width": 32, "lr": 1e-3}]
    r = client.post("/v1/fits", json={"rows": rows})
    assert r.status_code == 422
    said = [e["msg"] for e in r.json()["detail"]]
    assert not any("no columns" in m or "no rows" in m for m in said), said
    assert any("loss" in m for m in said), said


def test_the_python_api_says_the_same_of_empty_rows():
    import abcscale
    from abcscale.fitting import TableError

    with pytest.raises(TableError, match=r"table: no columns \(2 row\(s\), each empty\)"):
        abcscale.fit([{}, {}])
    with pytest.raises(TableError, match="table: no rows"):
        abcscale.fit([])


def test_a_killed_renders_folder_is_removed_at_start_and_a_live_ones_kept(settings, plot_workers, empty_database):
    # a kill -9 mid-render left `.<fit id>-xxxxxxxx` in the plot cache for good (a review)
    import os
    import time

    from fastapi.testclient import TestClient

    from abcscale.service.app import create_app
    from abcscale.service.plots import STALE_RENDER_S
    from tests.service.conftest import _on_a_copy

    root = settings.resolved_plot_dir
    stale, live = root / ".0123abcd-k3j_x9q2", root / ".4567abcd-abcdefgh"
    for folder in (stale, live):
        folder.mkdir(parents=True)
        (folder / "loss_vs_lr.png").write_bytes(b"x")
    old = time.time() - STALE_RENDER_S - 60
    os.utime(stale, (old, old))
    with TestClient(create_app(_on_a_copy(settings, empty_database))) as c:
        plot_workers.attach(c.app)
        assert c.get("/healthz").status_code == 200
    assert not stale.exists() and live.is_dir()


def test_a_created_fit_is_located_by_its_url(client, sweep_rows):
    # 201 without Location: the fit's URL was only in the body (a review)
    first = client.post("/v1/fits", json={"rows": sweep_rows, "n_boot": 20}, headers={"Idempotency-Key": "s83"})
    again = client.post("/v1/fits", json={"rows": sweep_rows, "n_boot": 20}, headers={"Idempotency-Key": "s83"})
    assert first.status_code == again.status_code == 201
    fit_id = first.json()["id"]
    assert first.headers["location"] == again.headers["location"] == f"/v1/fits/{fit_id}"
    assert client.get(first.headers["location"]).json()["id"] == fit_id


def test_a_fits_rows_csv_refits_with_its_labels_kept_apart(client, sweep_rows):
    # `007` and `7`, two tags, read back from rows.csv as one number: one group of both tags' runs (a review)
    rows = [{**r, "tag": t} for t in ("007", "7") for r in sweep_rows]
    made = client.post("/v1/fits", json={"rows": rows, "group_cols": ["tag"], "n_boot": 20})
    assert made.status_code == 201, made.text
    assert sorted(g["group"]["tag"] for g in made.json()["result"]["groups"]) == ["007", "7"]
    table = client.get(f"/v1/fits/{made.json()['id']}/rows.csv").content
    again = client.post("/v1/fits", files={"file": ("rows.csv", table, "text/csv")},
                        data={"group_cols": "tag", "n_boot": "20"})
    assert again.status_code == 201, again.text
    assert sorted(str(g["group"]["tag"]) for g in again.json()["result"]["groups"]) == ["007", "7"]


def test_numbers_written_two_ways_stay_numbers():
    from abcscale.fitting.reading import read_table

    df = read_table(b"width,lr,loss,seed\n064,0.001,2.5,01\n128,1e-3,2.4,02\n", "csv")
    assert df["lr"].tolist() == [0.001, 0.001] and df["width"].tolist() == [64, 128] and df["seed"].tolist() == [1, 2]
