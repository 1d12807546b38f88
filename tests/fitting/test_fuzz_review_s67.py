"""A fuzzing review of table ingestion (session 67): a width of 1e-10 fitted as width 0; pandas' NA in an object
column a bare TypeError; empty cells of a base width, step count or depth splitting their rows off as a group of
their own, unsaid; a parquet's repeated column Arrow's message; a CSV's `sep=,` or comment line said as "one field
more than the header"; a column flag with a stray space echoed without it."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from abcscale.fitting.reading import read_table
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.fitting.table import TableError, prepare
from abcscale.schemas.fit import ColumnMapping


def _sweep() -> pd.DataFrame:
    return synthetic_sweep(widths=(64, 128, 256, 512), base_width=64, seeds=2)


def _problems(df: pd.DataFrame, **mapping) -> list[str]:
    with pytest.raises(TableError) as exc:
        prepare(df, ColumnMapping(**mapping))
    return exc.value.problems


@pytest.mark.parametrize("tiny", [1e-10, 0.3, 1e-300])
def test_a_width_that_rounds_to_zero_is_refused(tiny):
    df = _sweep().astype({"width": float})
    df.loc[3, "width"] = tiny
    said = _problems(df)
    assert any(p.startswith("width: widths must be whole counts of at least 1, not in row(s) 3") for p in said), said


def test_pandas_na_in_an_object_group_column_is_an_empty_cell_not_a_type_error():
    df = _sweep()
    df["base_width"] = df["base_width"].astype("Int64")
    df.loc[3, "base_width"] = pd.NA
    said = _problems(df.astype({"base_width": object}))
    assert any(p.startswith("base_width: empty in row(s) 3") for p in said), said


@pytest.mark.parametrize("column", ["base_width", "steps", "depth"])
def test_empty_cells_of_a_group_setting_are_refused_not_a_group_of_their_own(column):
    df = _sweep().assign(steps=1000, depth=4).astype(object)
    df.loc[df["width"] == 512, column] = None
    said = _problems(df)
    assert any(p.startswith(f"{column}: empty in ") and "group of their own" in p for p in said), said
    # a column empty in every row is no setting (the contract's columns may be absent)
    whole = _sweep().assign(steps=None)
    assert prepare(whole).groups


def test_a_parquets_repeated_column_is_said_as_a_csvs():
    import pyarrow as pa
    import pyarrow.parquet as pq

    df = _sweep()
    table = pa.Table.from_arrays([pa.array(df[c]) for c in df.columns] + [pa.array(df["beta"])],
                                 names=[*map(str, df.columns), "beta"])
    buf = io.BytesIO()
    pq.write_table(table, buf)
    with pytest.raises(TableError) as exc:
        read_table(buf.getvalue(), "parquet")
    assert exc.value.problems == ["beta: duplicated column in the table"]


@pytest.mark.parametrize("first", ["sep=,", "# exported from wandb, 2026-12-01"])
def test_a_line_before_the_header_is_named(first):
    text = first + "\n" + _sweep().to_csv(index=False)
    with pytest.raises(TableError) as exc:
        read_table(text.encode(), "csv")
    [said] = exc.value.problems
    assert said.startswith(f"table: its first line ({first!r}) is no header: delete it"), said


@pytest.mark.parametrize(("role", "given"), [("size_col", " width"), ("lr_col", "beta "), ("seed_col", "seed\t")])
def test_a_column_name_with_a_stray_space_is_shown_quoted_once(role, given):
    from abcscale.schemas.api import FitOptions
    from abcscale.usecases.fits import fit_sweep  # the seed column's own check runs on the request

    df = _sweep()
    try:
        fit_sweep(df, FitOptions(**{role: given}, n_boot=20))
    except TableError as exc:
        said = exc.problems
    else:
        raise AssertionError("fitted")
    missing = [p for p in said if "missing column" in p]
    assert len(missing) == 1 and missing[0].startswith(f"{given!r}: missing column"), said
