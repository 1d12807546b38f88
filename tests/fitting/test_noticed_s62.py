"""Session 61's "noticed and left", fixed: a UTF-16 CSV without a byte-order mark is named as UTF-16 (it read as "a
binary file"), and true/false inside a request's nested number block is refused at the field itself
(``[body, analytic, base, epsilon]``), not at the block with the field in the message."""

from __future__ import annotations

import warnings

import pytest

from abcscale.fitting.reading import read_table
from abcscale.fitting.table import TableError

CSV = "width,lr,loss\n64,0.1,2.0\n128,0.1,1.9\n"


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_is_named(codec):
    with pytest.raises(TableError, match=f"looks like UTF-16{codec[-2:].upper()} text without a byte-order mark"):
        read_table(CSV.encode(codec), "csv")


def test_utf16_with_bom_and_binary_keep_their_words():
    with pytest.raises(TableError, match="looks like UTF-16 text"):
        read_table(CSV.encode("utf-16"), "csv")  # with its BOM
    with pytest.raises(TableError, match="is a binary file"):
        read_table(b"width,lr,loss\n\x00\x00\x01\x02", "csv")
    assert len(read_table(CSV.encode(), "csv")) == 2


def test_a_small_int16_dump_with_nuls_every_other_byte_is_binary():
    import numpy as np

    blob = (np.arange(1, 2000) % 250 + 1).astype("<i2").tobytes()  # the review's repro: every high byte 0
    with pytest.raises(TableError, match="is a binary file"):
        read_table(blob, "csv")


@pytest.fixture
def client(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from abcscale.service.app import create_app
    from abcscale.service.config import Settings

    with TestClient(create_app(Settings(data_dir=tmp_path, database_url=None, api_token=None))) as c:
        yield c


def test_booleans_inside_a_block_are_refused_at_each_field(client):
    body = {"parameterization": "mup", "optimizer": "adam", "width": 4096, "alignment": {"alpha": True, "omega": 0.5,
            "u": 1}, "base": {"width": 256, "beta": 3e-3, "epsilon": True, "gamma": {"hidden": False}}}
    r = client.post("/v1/recommend", json=body)
    assert r.status_code == 422, r.text
    locs = {tuple(e["loc"]): e["msg"] for e in r.json()["detail"]}
    for loc in (("body", "analytic", "base", "epsilon"), ("body", "analytic", "base", "gamma", "hidden"),
                ("body", "analytic", "alignment", "alpha")):
        assert locs.get(loc) == "Input should be a number, not true/false", locs
