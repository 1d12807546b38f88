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
