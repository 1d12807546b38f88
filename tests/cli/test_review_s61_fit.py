"""Session 61: a bad-input review of `abcscale fit` and `recommend --fit`. A closed standard input for `fit -` was an
AttributeError traceback; a `loss_at_init` column of 0 made every run "diverged" (advising a lower LR grid), 0 at one
width dropped it in silence, and a text column was ignored; a parquet whose setup columns pandas wrote as its index
was "width: missing column"; parameter counts were held to a width's 2**40 (a 2T-parameter target or table
refused); a fit whose table holds an invalid setup (alignment '0.5,0.9,1', parameterization 'foo') made
`recommend --fit` leak pydantic's text or name no input."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app
from abcscale.fitting import TableError, prepare, read_table
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.schemas.api import MAX_WIDTH, FitOptions
from abcscale.schemas.fit import ColumnMapping

runner = CliRunner()
N_BOOT = "50"
ABCSCALE = str(Path(sys.executable).with_name("abcscale"))


def _fit(*args: str):
    return runner.invoke(app, ["fit", *args, "--n-boot", N_BOOT, "-q"])


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """The reviewer's min.csv: widths 32-256, beta 2^-14..2^-6, 2 seeds, eval_loss and diverged."""
    rows = []
    for w in (32, 64, 128, 256):
        for l2 in np.arange(-14, -5.5, 1.0):
            for s in (0, 1):
                noise = 0.01 * np.random.RandomState(int(w * 1000 + (l2 + 20) * 10 + s)).randn()
                rows.append({"width": w, "beta": 2.0 ** l2, "seed": s, "diverged": False,
                             "eval_loss": 3 + 0.05 * (l2 - np.log2(1e-3)) ** 2 + 0.3 * 32 / w + noise})
    return pd.DataFrame(rows)


# --- 4a: a closed standard input -----------------------------------------------------------------------------------

CLOSED = ("table: standard input is closed: pipe a CSV or parquet into it (abcscale fit - < runs.csv), or give the "
          "file's path")


@pytest.mark.parametrize("as_json", [False, True])
def test_fit_dash_with_stdin_closed_is_exit_2_saying_so(as_json):
    # `abcscale fit - <&-`: Python's sys.stdin is None (an AttributeError traceback before)
    out = subprocess.run([ABCSCALE, "fit", "-", "-q", *(["--json"] if as_json else [])], capture_output=True,
                         text=True, preexec_fn=lambda: os.close(0), timeout=120)  # noqa: PLW1509
    assert out.returncode == 2, out.stderr
    assert " ".join(out.stderr.split()) == f"error: {CLOSED}", out.stderr
    assert "Traceback" not in out.stderr
    if as_json:
        assert json.loads(out.stdout) == {"ok": False, "exit_code": 2, "errors": [CLOSED]}
    else:
        assert out.stdout == ""


# --- 6: loss_at_init is validated ----------------------------------------------------------------------------------

def _problems(df: pd.DataFrame) -> list[str]:
    with pytest.raises(TableError) as exc:
        prepare(df)
    return exc.value.problems


@pytest.mark.parametrize("value", [0.0, -1.0, -np.inf])
def test_a_loss_at_init_that_is_no_positive_number_is_refused(table, value):
    problems = _problems(table.assign(loss_at_init=value))
    assert len(problems) == 1 and problems[0].startswith(
        "loss_at_init: the loss before the first update must be a positive number"), problems
    assert "72 row(s), e.g. row 0, 1, 2, 3, 4" in problems[0]
    assert "diverged" not in problems[0].split(";")[0]  # not "all 72 runs diverged ...: lower the LR grid"


def test_a_loss_at_init_of_0_at_one_width_names_its_rows_not_a_width_dropped(table):
    df = table.assign(loss_at_init=np.where(table["width"] == 64, 0.0, 6.0))
    (problem,) = _problems(df)
    assert problem.startswith("loss_at_init: ") and "18 row(s), e.g. row 18, 19, 20, 21, 22" in problem
    assert "(the first: 0)" in problem


def test_a_text_loss_at_init_is_refused_not_ignored(table):
    df = table.assign(loss_at_init="x")
    assert _problems(df) == ["loss_at_init: not a number in 72 row(s), e.g. row 0, 1, 2, 3, 4 (the first: 'x')"]
    one = table.assign(loss_at_init=6.0).astype({"loss_at_init": object})
    one.loc[5, "loss_at_init"] = "high"
    assert _problems(one) == ["loss_at_init: not a number in row(s) 5 (the first: 'high')"]


def test_an_unknown_or_unread_loss_at_init_is_fine(table):
    # empty where unknown (the runner writes NaN where the model's own loss at init was NaN), and any value on a run
    # the table flags diverged, which no rule reads
    # (+inf flags nothing, as an empty cell: tests/service/test_hostile_input_more.py's 400-digit integer)
    df = table.assign(loss_at_init=6.0)
    df.loc[[3, 7], "loss_at_init"] = np.nan
    df.loc[12, "loss_at_init"] = np.inf
    df.loc[10, ["loss_at_init", "diverged"]] = [0.0, True]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # +inf's inf - inf in the stall rule said nothing on stderr either
        prep = prepare(df)
    assert prep.n_rows == 72 and prep.n_diverged == 1


def test_fit_says_loss_at_init_in_one_line_and_json(table, tmp_path):
    path = tmp_path / "lai0.csv"
    table.assign(loss_at_init=0).to_csv(path, index=False)
    res = _fit(str(path))
    assert res.exit_code == 2 and res.stderr.startswith("error: loss_at_init: ") and res.stderr.count("\n") == 1
    js = _fit(str(path), "--json")
    assert js.exit_code == 2 and json.loads(js.stdout)["errors"][0].startswith("loss_at_init: ")


# --- 7: a parquet whose setup columns are its index ----------------------------------------------------------------

def _parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf)
    return buf.getvalue()


def test_a_groupby_parquet_fits_as_its_csv_does(table, tmp_path):
    mean = table.groupby(["width", "beta"]).eval_loss.mean().to_frame()
    (tmp_path / "g.parquet").write_bytes(_parquet(mean))
    mean.reset_index().to_csv(tmp_path / "g.csv", index=False)
    got = _fit(str(tmp_path / "g.parquet"), "--json")
    assert got.exit_code == 0, got.output
    want = json.loads(_fit(str(tmp_path / "g.csv"), "--json").stdout)
    assert [g["exponent"] for g in json.loads(got.stdout)["groups"]] == [g["exponent"] for g in want["groups"]]


def test_index_levels_read_as_columns_once(table):
    back = read_table(_parquet(table.set_index(["width", "beta"])))
    assert list(back.columns) == list(table.columns) and len(back) == 72
    assert back.index.equals(pd.RangeIndex(72))
    # a level that is also a column (set_index(drop=False)) is that column once
    dup = read_table(_parquet(table.set_index("width", drop=False)))
    assert list(dup.columns) == list(table.columns)
    assert (dup["width"].to_numpy() == table["width"].to_numpy()).all()
    # an unnamed index (a filtered frame's labels) is no data
    kept = read_table(_parquet(table[table["seed"] == 1].iloc[::-1]))
    assert list(kept.columns) == list(table.columns) and kept.index.equals(pd.RangeIndex(36))


# --- 8: parameter counts have their own bound ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def params_csv(tmp_path_factory) -> Path:
    """A parameter-count table up to 2.048e12 (past a width's 2**40)."""
    df = synthetic_sweep(widths=(64, 128, 256, 512), seeds=1, step=0.5, half_range=2.0)
    path = tmp_path_factory.mktemp("p") / "params.csv"
    df.assign(N=df["width"] * 4_000_000_000).drop(columns=["width"]).to_csv(path, index=False)
    return path


def test_a_2t_parameter_table_and_target_fit(params_csv):
    res = _fit(str(params_csv), "--size-col", "N", "--size-kind", "params", "--target-size", "4e12", "--json")
    assert res.exit_code == 0, res.output
    (g,) = json.loads(res.stdout)["groups"]
    assert g["prediction"]["width"] == 4 * 10**12 and g["prediction"]["lr"] > 0


def test_the_covariate_example_predicts_at_2e12():
    res = _fit("examples/axes.csv", "--size-col", "N", "--size-kind", "params", "--covariates", "D,batch_size",
               "--target-size", "2e12", "--at", "D=4e12", "--json")
    assert res.exit_code == 0, res.output
    (law,) = json.loads(res.stdout)["joint"]
    assert law["prediction"]["size"] == 2e12 and law["prediction"]["at"]["D"] == 4e12


def test_sizes_past_the_params_bound_say_it(params_csv, tmp_path):
    res = _fit(str(params_csv), "--size-col", "N", "--size-kind", "params", "--target-size", "2e18")
    assert res.exit_code == 2
    assert res.stderr.strip() == "error: --target-size: Input should be less than or equal to 1e18, a parameter " \
                                 "count's bound"
    big = pd.read_csv(params_csv)
    big.loc[3, "N"] = 2e18
    big.to_csv(tmp_path / "big.csv", index=False)
    res = _fit(str(tmp_path / "big.csv"), "--size-col", "N", "--size-kind", "params")
    assert res.exit_code == 2 and "error: N: sizes must be at most 1000000000000000000 (1e18), not in row(s) 3" \
        in res.stderr


def test_a_width_keeps_2_40(params_csv):
    res = _fit(str(params_csv), "--size-col", "N", "--target-width", "2e12")
    assert res.exit_code == 2
    assert res.stderr.strip() == f"error: --target-width: Input should be less than or equal to {MAX_WIDTH}"
    with pytest.raises(ValueError, match=r"less than or equal to 1099511627776"):
        FitOptions(target_width=2**41)
    assert FitOptions(target_width=2**41, size_kind="params").target_width == 2**41
    assert FitOptions(base_width=2**50, size_kind="params").base_width == 2**50
    with pytest.raises(ValueError, match=r"1e18, a parameter count's bound"):
        FitOptions(base_width=10**19, size_kind="params")
    with pytest.raises(TableError, match=r"widths must be at most 1099511627776 \(2\*\*40\)"):
        prepare(pd.read_csv(params_csv), ColumnMapping(size_col="N"))


def test_the_python_api_predicts_at_a_2t_parameter_size(params_csv):
    df = pd.read_csv(params_csv)
    fit = abcscale.fit(df, target_width=2e12, mapping={"size_col": "N", "size_kind": "params"}, n_boot=50)
    assert fit.groups[0].prediction is not None and fit.groups[0].prediction.width == 2 * 10**12
    assert abcscale.predict(fit, 4e12).width == 4 * 10**12
    with pytest.raises(ValueError, match=r"^width: must be a whole number from 1 to 1000000000000000000 \(1e18\)"):
        abcscale.predict(fit, 2e18)


def test_rest_fits_a_parameter_count_target_past_2_40(params_csv, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from abcscale.service.app import create_app
    from abcscale.service.config import Settings

    rows = json.loads(pd.read_csv(params_csv).to_json(orient="records"))
    with TestClient(create_app(Settings(data_dir=tmp_path, database_url=None))) as client:
        r = client.post("/v1/fits", json={"rows": rows, "n_boot": 50, "size_col": "N", "size_kind": "params",
                                          "target_width": 2e12})
        assert r.status_code == 201, r.text
        assert r.json()["result"]["groups"][0]["prediction"]["width"] == 2 * 10**12
        r = client.post("/v1/fits", json={"rows": rows, "n_boot": 50, "size_col": "N", "target_width": 2e12})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "target_width"]
        assert r.json()["detail"][0]["msg"] == "Input should be less than or equal to 1099511627776"


# --- 9: recommend --fit on a group whose setup columns theory cannot read -------------------------------------------

SETUPS = {"alignment": ({"parameterization": "mup", "optimizer": "adam", "lr_mode": "per_layer",
                         "alignment": "0.5,0.9,1"},
                        "the group's alignment '0.5,0.9,1' (the fit's table's alignment column): omega: Input "
                        "should be less than or equal to 0.5"),
          "parameterization": ({"parameterization": "foo", "optimizer": "adam", "lr_mode": "per_layer"},
                               "the group's parameterization 'foo' (the fit's table's parameterization column): "
                               "unknown parameterization 'foo'"),
          "lr_mode": ({"parameterization": "mup", "optimizer": "adam", "lr_mode": "sideways"},
                      "the group's lr_mode 'sideways' (the fit's table's lr_mode column): unknown lr_mode 'sideways'")}


@pytest.fixture(scope="module")
def bad_fits(tmp_path_factory) -> dict[str, Path]:
    out = {}
    for name, (group, _) in SETUPS.items():
        d = tmp_path_factory.mktemp(name)
        synthetic_sweep(widths=(64, 128, 256, 512), seeds=1, exponent=0.0, step=0.5, half_range=2.0,
                        group=group).to_csv(d / "t.csv", index=False)
        res = runner.invoke(app, ["fit", str(d / "t.csv"), "--n-boot", N_BOOT, "-q", "--out", str(d)])
        assert res.exit_code == 0, res.output  # a custom table's name is a group like another
        out[name] = d / "fit.json"
    return out


@pytest.mark.parametrize("name", list(SETUPS))
def test_recommend_from_a_fit_with_a_bad_setup_column_names_fit(bad_fits, name):
    res = runner.invoke(app, ["recommend", "--fit", str(bad_fits[name]), "-n", "1024"])
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith(f"error: --fit: {SETUPS[name][1]}"), res.stderr
    assert res.stderr.count("\n") == 1 and "pydantic" not in res.stderr and "validation error" not in res.stderr
    js = runner.invoke(app, ["recommend", "--fit", str(bad_fits[name]), "-n", "1024", "--json"])
    assert js.exit_code == 2
    (error,) = json.loads(js.stdout)["errors"]
    assert error.startswith(f"--fit: {SETUPS[name][1]}")


def test_the_python_api_names_the_fits_column(bad_fits):
    with pytest.raises(ValueError, match=r"^the group's alignment '0.5,0.9,1' \(the fit's table's alignment column\): "
                       r"omega: ") as exc:
        abcscale.recommend(fit=str(bad_fits["alignment"]), width=1024)
    assert "\n" not in str(exc.value) and "pydantic" not in str(exc.value)


def test_check_and_rest_name_the_fit_once(bad_fits, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("parameterization: mup\noptimizer: adam\nwidth: 1024\nlr_mode: per_layer\n"
                      "lr: {embedding: 0.001, hidden: 0.001, readout: 0.001}\n")
    res = runner.invoke(app, ["check", str(config), "--fit", str(bad_fits["alignment"])])
    assert res.exit_code == 2 and res.stderr.startswith(f"error: --fit: {SETUPS['alignment'][1]}"), res.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from abcscale.service.app import create_app
    from abcscale.service.config import Settings

    rows = json.loads(synthetic_sweep(widths=(64, 128, 256, 512), seeds=1, exponent=0.0, step=0.5, half_range=2.0,
                                      group=SETUPS["alignment"][0]).to_json(orient="records"))
    with TestClient(create_app(Settings(data_dir=tmp_path, database_url=None))) as client:
        stored = client.post("/v1/fits", json={"rows": rows, "n_boot": 50})
        assert stored.status_code == 201, stored.text
        r = client.post("/v1/recommend", json={"fit_id": stored.json()["id"], "width": 1024})
        assert r.status_code == 422, r.text
        (detail,) = r.json()["detail"]
        assert detail["loc"] == ["body", "fit_id"] and detail["msg"].startswith(SETUPS["alignment"][1])


def test_the_report_page_predicts_a_parameter_count_past_2_40(tmp_path):
    """The report's box held a parameter-count fit to a width's 2**40 (the CLI, REST and Python take 1e18)."""
    from abcscale.service.app import create_app
    from abcscale.service.config import Settings
    from tests.service.conftest import TestClient

    settings = Settings(data_dir=tmp_path)
    data = (Path(__file__).resolve().parents[2] / "examples" / "axes.csv").read_bytes()
    with TestClient(create_app(settings)) as client:
        r = client.post("/fits", data={"size_col": "N", "size_kind": "params", "covariates": "D,batch_size"},
                        files={"file": ("axes.csv", data, "text/csv")}, follow_redirects=False)
        assert r.status_code == 303, r.text
        page = r.headers["location"]
        ok = client.get(page, params={"group": "0", "width": "2e12"})
        assert ok.status_code == 200, ok.text
        bad = client.get(page, params={"group": "0", "width": "2e18"})
        assert bad.status_code == 422 and "expected a whole number from 1 to 1e18" in bad.text


@pytest.mark.parametrize("at", ["", " ", ","])
def test_an_empty_at_is_refused_as_an_empty_derive_is(at):
    """`--at "$AT"` with AT unset predicted at the covariates' bases, silently."""
    from typer.testing import CliRunner

    from abcscale.cli import app

    table = str(Path(__file__).resolve().parents[2] / "examples" / "axes.csv")
    res = CliRunner().invoke(app, ["fit", table, "--size-col", "N", "--size-kind", "params", "--covariates",
                                   "D,batch_size", "--target-size", "2e9", "--at", at, "-q"])
    assert res.exit_code == 2 and "--at: empty (an unset variable?)" in res.output, res.output
