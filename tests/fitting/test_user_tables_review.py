"""What a review of users' own sweep tables found (session 31): an Excel "CSV UTF-8" export with ';' lost its first
column (groups pooled), `recommend --fit` scaled a table's width-scaled LR again when the table named no LR mode
and read parameter counts as widths, and extrapolating below the fitted widths was not flagged."""

from __future__ import annotations

import pandas as pd
import pytest

from abcscale.fitting import TableError, fit_table, predict_group
from abcscale.fitting.reading import read_table
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.schemas.fit import ColumnMapping
from abcscale.usecases.recommend import recommend_from_fit


def _two_groups() -> pd.DataFrame:
    """Standard + global (exponent -1) and muP (0): pooled, their optima average to neither."""
    sp = synthetic_sweep(widths=(64, 128, 256, 512), exponent=-1.0, seeds=2, seed=1,
                         group={"parameterization": "standard", "optimizer": "adam", "lr_mode": "global"})
    mup = synthetic_sweep(widths=(64, 128, 256, 512), exponent=0.0, seeds=2, seed=2,
                          group={"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"})
    return pd.concat([sp, mup], ignore_index=True)


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_a_byte_order_mark_keeps_the_first_columns_name(sep):
    df = _two_groups()
    data = df.to_csv(index=False, sep=sep).encode("utf-8-sig")
    assert data.startswith(b"\xef\xbb\xbf")
    table = read_table(data, "csv")
    assert list(table.columns) == list(df.columns)  # not '\ufeffparameterization'
    fit = fit_table(table, n_boot=50)
    assert sorted(g.group["parameterization"] for g in fit.groups) == ["mup", "standard"]


def test_recommend_from_a_table_without_an_lr_mode_asks_for_it():
    df = synthetic_sweep(widths=(64, 128, 256, 512), exponent=-1.0, seeds=2, seed=3,
                         group={"parameterization": "standard", "optimizer": "adam"})
    fit = fit_table(df, n_boot=50)
    with pytest.raises(ValueError, match="lr_mode: the fit's table has no lr_mode column"):
        recommend_from_fit(fit, 8192)
    rec = recommend_from_fit(fit, 8192, selector={"lr_mode": "global"})
    # one LR for every layer, as the sweep ran: the fitted LR at 8192 itself, not scaled by (8192/64)^-1 again
    fitted = predict_group(fit.groups[0], 8192).lr
    assert {s.layer.value: round(s.lr / fitted, 9) for s in rec.layers} == {"embedding": 1, "hidden": 1,
                                                                             "readout": 1}


def test_recommend_refuses_a_fit_by_parameter_counts():
    df = synthetic_sweep(widths=(64, 128, 256, 512), exponent=-0.5, seeds=2, seed=4,
                         group={"parameterization": "ntk", "optimizer": "adam", "lr_mode": "global"})
    df["n_params"] = 12 * df["width"] ** 2
    fit = fit_table(df.drop(columns=["width", "base_width"]),
                    ColumnMapping(size_col="n_params", size_kind="params"), n_boot=50)
    assert predict_group(fit.groups[0], 12 * 4096**2, size_kind="params").lr > 0  # the fit itself answers
    with pytest.raises(ValueError, match="parameter counts"):
        recommend_from_fit(fit, 4096)


def test_extrapolating_below_the_smallest_width_is_flagged():
    g = fit_table(synthetic_sweep(widths=(64, 128, 256, 512), exponent=-1.0, seeds=2, seed=5), n_boot=50).groups[0]
    assert any("below the smallest fitted width (64)" in w for w in predict_group(g, 1).warnings)
    assert not any("below the smallest" in w for w in predict_group(g, 32).warnings)  # 2x: within reach


def test_a_list_column_reads_as_its_json_text(tmp_path):
    """A wandb export's `tags` (a parquet list column): hashing and grouping failed on arrays (a traceback, and
    a 500 from the service); each cell is now its JSON text, so the column is kept and can group."""
    df = synthetic_sweep(widths=(64, 128, 256, 512), exponent=-1.0, seeds=2, seed=6)
    df["tags"] = [["baseline", "sweep"]] * len(df)
    df["config"] = [{"depth": 2, "act": "gelu"}] * len(df)
    path = tmp_path / "t.parquet"
    df.to_parquet(path)
    table = read_table(path)
    assert set(table["tags"]) == {'["baseline", "sweep"]'} and set(table["config"]) == {'{"act": "gelu", "depth": 2}'}
    fit = fit_table(table, ColumnMapping(group_cols=["tags"]), n_boot=50)
    assert [g.group for g in fit.groups] == [{"tags": '["baseline", "sweep"]'}]


def test_a_json_file_is_named_as_json_not_read_as_csv(tmp_path):
    path = tmp_path / "runs.json"
    synthetic_sweep(widths=(64, 128), seeds=1).to_json(path, orient="records")
    with pytest.raises(TableError, match="looks like JSON"):
        read_table(path)


def test_repeated_or_collinear_covariates_are_said_as_such():
    from pydantic import ValidationError

    from abcscale.schemas.api import FitOptions
    from tests.fitting.covariate_sweeps import covariate_sweep

    for make in (lambda c: ColumnMapping(size_col="N", covariates=c), lambda c: FitOptions(covariates=c)):
        with pytest.raises(ValidationError, match="D repeated; each covariate once"):
            make(["D", "batch_size", "D"])
    rows = covariate_sweep(seeds=1, seed=7)
    rows["steps"] = rows["D"] / rows["batch_size"] / 64  # tokens = steps x batch x sequence
    fit = fit_table(rows, ColumnMapping(size_col="N", covariates=["D", "batch_size", "steps"]), n_boot=50)
    said = [*fit.warnings, *(w for g in fit.groups for w in g.warnings)]
    assert not fit.joint
    assert any("D, batch_size, steps are collinear on a log scale" in w for w in said), said
    assert not any("cannot pin" in w for w in said)  # 24 optima are plenty: the design, not the count


def test_parameter_counts_read_as_widths_are_pointed_out():
    df = synthetic_sweep(widths=(64, 128, 256, 512), exponent=-1.0, seeds=2, seed=8)
    df["n_params"] = 12 * df["width"] ** 2
    said = fit_table(df.drop(columns=["width"]), ColumnMapping(size_col="n_params"), n_boot=50).warnings
    assert any("n_params (4.92e+04 to 3.15e+06) looks like parameter counts" in w for w in said), said
    assert not any("parameter counts" in w for w in fit_table(df, n_boot=50).warnings)
