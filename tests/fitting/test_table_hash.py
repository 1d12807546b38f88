"""`input_hash` is the table's content as JSON rows carry it: a local fit of a typed file (parquet's nullable
integers, timestamps, categories, an infinite loss) and the service's fit of the rows `fit --service` sends hash
alike; row order and any cell's value change it, column order does not."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from abcscale.fitting.table import json_rows, table_hash

_FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64) | st.none()


@st.composite
def typed_tables(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(1, 8))
    cols: dict[str, object] = {
        "width": np.array(draw(st.lists(st.integers(1, 2**20), min_size=n, max_size=n)), dtype="int64"),
        "loss": pd.array(draw(st.lists(_FLOATS, min_size=n, max_size=n)), dtype="Float64"),
        "seed": pd.array(draw(st.lists(st.integers(0, 9) | st.none(), min_size=n, max_size=n)), dtype="Int64"),
        "diverged": pd.array(draw(st.lists(st.booleans() | st.none(), min_size=n, max_size=n)), dtype="boolean"),
        "team": pd.Categorical(draw(st.lists(st.sampled_from(["a", "b"]), min_size=n, max_size=n))),
        "size": pd.Categorical(draw(st.lists(st.sampled_from([64, 128]), min_size=n, max_size=n))),
        "mixed": draw(st.lists(st.integers(-5, 5) | st.floats(allow_nan=False, allow_infinity=False) | st.none(),
                               min_size=n, max_size=n)),
        "when": pd.to_datetime(draw(st.lists(st.integers(0, 10**9), min_size=n, max_size=n)), unit="s"),
        "note": draw(st.lists(st.text(max_size=5) | st.none(), min_size=n, max_size=n)),
    }
    return pd.DataFrame(cols)


def _as_the_service_reads(df: pd.DataFrame) -> pd.DataFrame:
    body = json.dumps({"rows": json_rows(df)}, sort_keys=True, allow_nan=False)  # as `fit --service` sends it
    return pd.DataFrame.from_records(json.loads(body)["rows"])


@settings(max_examples=150, deadline=None)
@given(typed_tables())
def test_a_table_and_its_json_rows_hash_alike(df):
    assert table_hash(df) == table_hash(_as_the_service_reads(df))
    assert table_hash(df) == table_hash(df[df.columns[::-1]])


def test_a_changed_cell_or_row_order_is_another_hash():
    df = pd.DataFrame({"width": [64, 128], "lr": [1e-3, 2e-3], "loss": [3.0, math.inf], "tag": ["a", "b"]})
    h = table_hash(df)
    assert table_hash(df.iloc[::-1].reset_index(drop=True)) != h
    assert table_hash(df.assign(tag=["a", "c"])) != h
    assert table_hash(df.assign(lr=[1e-3, 2.0000001e-3])) != h
    assert table_hash(df.rename(columns={"tag": "team"})) != h
    # a diverged run's loss logged as inf or as a missing cell is one table (JSON carries inf as null)
    assert table_hash(df.assign(loss=[3.0, None])) == h
