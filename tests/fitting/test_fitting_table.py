"""Reading tables and validating them: every problem reported at once, divergence is not an error."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abcscale.fitting import TableError, fit_table, prepare, read_table
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.schemas.fit import ColumnMapping


@pytest.fixture()
def sweep() -> pd.DataFrame:
    return synthetic_sweep(widths=(64, 128, 256), seed=0)


def test_read_csv_parquet_and_bytes(tmp_path, sweep):
    csv, pq = tmp_path / "t.csv", tmp_path / "t.parquet"
    sweep.to_csv(csv, index=False)
    sweep.to_parquet(pq, index=False)
    for source in (csv, str(pq), csv.read_bytes(), pq.read_bytes()):
        df = read_table(source)
        assert len(df) == len(sweep) and list(df.columns) == list(sweep.columns)
    odd = tmp_path / "t.data"
    sweep.to_parquet(odd, index=False)
    assert len(read_table(odd)) == len(sweep)  # sniffed by its magic bytes
    assert len(read_table(odd, fmt="parquet")) == len(sweep)


@pytest.mark.parametrize("source, match", [
    (b"", "empty"),
    (b"   \n", "empty"),
    (b"width,beta,final_loss\n", "no rows"),
    (b"PAR1garbage", "not a readable parquet"),
])
def test_unreadable_or_empty_input(source, match):
    with pytest.raises(TableError, match=match) as exc:
        read_table(source)
    assert exc.value.problems


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(TableError, match="no such file"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(TableError, match="unknown format 'xlsx'"):
        read_table(b"a,b\n1,2\n", fmt="xlsx")


def test_every_problem_is_reported_at_once(sweep):
    bad = sweep.copy()
    bad.loc[0, "beta"] = -1.0
    bad.loc[1, "beta"] = 0.0
    bad["width"] = bad["width"].astype(float)
    bad.loc[2, "width"] = np.nan
    bad.loc[3, "final_loss"] = np.nan  # a divergence, not a problem
    with pytest.raises(TableError) as exc:
        fit_table(bad)
    problems = exc.value.problems
    assert len(problems) == 2
    assert any(p.startswith("beta:") and "row(s) 0, 1" in p for p in problems)
    assert any(p.startswith("width:") and "NaN width" in p and "row(s) 2" in p for p in problems)


def test_missing_columns_are_all_named(sweep):
    with pytest.raises(TableError) as exc:
        fit_table(sweep.drop(columns=["beta", "final_loss"]))
    text = str(exc.value)
    assert "beta: missing column" in text and "final_loss: missing column" in text
    with pytest.raises(TableError, match="nope: missing column"):
        fit_table(sweep, ColumnMapping(group_cols=["nope"]))


def test_non_numeric_and_non_integer_width(sweep):
    bad = sweep.astype({"width": object, "final_loss": object})
    bad.loc[5, "final_loss"] = "oops"
    bad.loc[6, "width"] = 64.5
    with pytest.raises(TableError) as exc:
        prepare(bad)
    assert any("final_loss: not a number" in p for p in exc.value.problems)
    assert any("width: widths must be integers" in p for p in exc.value.problems)


def test_only_diverged_runs_is_a_clear_error(sweep):
    dead = sweep.assign(final_loss=np.inf, diverged=True)
    with pytest.raises(TableError, match="all .* runs diverged.*lower the learning-rate grid"):
        fit_table(dead)


def test_nan_inf_losses_and_flags_are_divergence(sweep):
    df = sweep.copy()
    df.loc[:2, "final_loss"] = [np.nan, np.inf, 3.0]
    df.loc[:2, "diverged"] = [False, False, True]
    p = prepare(df)
    first = p.groups[0].widths[0]  # the table's first rows are at its smallest width, in table order
    assert first.diverged[:3].tolist() == [True, True, True] and np.isnan(first.loss[:3]).all()
    assert p.n_diverged == int(sweep["diverged"].sum()) + 3 - int(sweep["diverged"].iloc[:3].sum())


def test_loss_above_init_counts_as_divergence(sweep):
    df = sweep.assign(loss_at_init=sweep["final_loss"].fillna(0.0) + 1.0)
    df.loc[0, "loss_at_init"] = 0.1
    assert bool(prepare(df).groups[0].widths[0].diverged[0])


def test_column_mapping_for_a_users_export(sweep):
    mine = sweep.rename(columns={"width": "d_model", "beta": "lr", "final_loss": "val/loss", "seed": "run_seed"})
    mine["team"] = "a"
    mapping = ColumnMapping(size_col="d_model", lr_col="lr", loss_col="val/loss", seed_col="run_seed",
                            group_cols=["team"])
    g = fit_table(mine, mapping, n_boot=50).groups[0]
    assert g.group == {"team": "a"}
    assert g.exponent.estimate == pytest.approx(-1.0, abs=0.1)
    assert g.theory_exponent is None and g.consistent is None
    assert any("no theory exponent" in w for w in g.warnings)
    with pytest.raises(TableError, match="run_seed: missing column"):
        fit_table(sweep, ColumnMapping(seed_col="run_seed"))


def test_tab_separated_text(sweep):
    buf = io.StringIO()
    sweep.to_csv(buf, sep="\t", index=False)
    assert list(read_table(buf.getvalue().encode()).columns) == list(sweep.columns)


def test_group_with_only_diverged_runs_is_reported_not_fatal(sweep):
    other = sweep.assign(optimizer="sgd", final_loss=np.nan, diverged=True)
    ok = sweep.assign(optimizer="adam")
    fit = fit_table(pd.concat([ok, other]), n_boot=50)
    dead = next(g for g in fit.groups if g.group["optimizer"] == "sgd")
    assert dead.exponent is None and "every run in this group diverged" in dead.warnings[0]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=20))
def test_any_lr_column_is_either_accepted_or_named(lrs):
    df = pd.DataFrame({"width": 64, "beta": lrs, "final_loss": 1.0})
    try:
        prepare(df)
    except TableError as exc:
        assert all(p.startswith("beta:") for p in exc.problems)
        assert any(not (math.isfinite(x) and x > 0) for x in lrs)
    else:
        assert all(math.isfinite(x) and x > 0 for x in lrs)


def test_prepare_returns_typed_groups_in_log2_units(sweep):
    df = pd.concat([sweep.assign(optimizer="sgd", gamma_hidden=1.0), sweep.assign(optimizer="adam", gamma_hidden=2.0)],
                   ignore_index=True)
    df.loc[df["optimizer"] == "adam", "gamma_hidden"] = np.where(np.arange(len(sweep)) % 2, 2.0, 0.5)
    p = prepare(df)
    assert p.group_cols == ("optimizer",) and p.constant_cols == ("gamma_hidden",)
    assert [g.key for g in p.groups] == [{"optimizer": "adam"}, {"optimizer": "sgd"}]  # sorted keys
    adam = p.groups[0]
    assert [r.width for r in adam.widths] == [64, 128, 256] and adam.base_width == 64
    assert adam.n_rows == len(sweep) and p.n_rows == 2 * len(sweep)
    rows = adam.widths[1]
    want = df[(df["optimizer"] == "adam") & (df["width"] == 128)]
    np.testing.assert_allclose(rows.x, np.log2(want["beta"]))
    np.testing.assert_allclose(rows.k[:, 0], np.log2(want["gamma_hidden"]))
    assert rows.coords().shape == (len(want), 2)
