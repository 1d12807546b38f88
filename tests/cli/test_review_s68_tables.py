"""Session 68's table review, as `abcscale fit` users meet it: a `;` CSV whose names hold commas (every column
"missing"), a `lr_mode` column of `per layer` (fitted without theory), a OneCycleLR history fitted by its step LR
(unsaid), a `--derive`d column listed among the table's. And `theory table --json`'s array, kept: it is the rows
`GET /v1/theory/exponents` answers."""

from __future__ import annotations

import json
import math

import pandas as pd
from typer.testing import CliRunner

from abcscale.cli import app

runner = CliRunner()


def _fit(*args: str):
    return runner.invoke(app, ["fit", *args, "--n-boot", "30", "-q"])


def _rows(sep: str = ",", **cols) -> list[str]:
    rows = []
    for w in (128, 256, 512, 1024):
        for lr in (1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2, 3.2e-2):
            for s in (0, 1):
                d = math.log2(lr) - math.log2(8e-3 * 128 / w)
                loss = 3.0 + 0.05 * d * d - 0.1 * math.log2(w / 128) + 0.003 * (s - 0.5) * (-1) ** int(lr * 1e4)
                rows.append(sep.join(str(x) for x in (w, lr, s, f"{loss:.5f}", *cols.values())))
    return rows


def test_fit_reads_a_semicolon_csv_whose_names_hold_commas(tmp_path):
    path = tmp_path / "runs.csv"
    header = "width;lr;seed;loss (train, final, nats, last eval)"  # more commas than semicolons
    path.write_text("\n".join([header, *_rows(";")]) + "\n")
    res = _fit(str(path), "--lr-col", "lr", "--loss-col", "loss (train, final, nats, last eval)", "-p", "mup", "-o",
               "adam", "--lr-mode", "global", "--json")
    assert res.exit_code == 0, res.output  # before: exit 2, "width: missing column ... columns are: ' final', ..."
    (group,) = json.loads(res.stdout)["groups"]
    assert group["group"] == {"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"}


def test_fit_reads_lr_mode_per_layer_with_a_space(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("\n".join(["width,beta,seed,final_loss,parameterization,optimizer,lr_mode",
                               *_rows(p="mup", o="adam", m="per layer")]) + "\n")
    res = _fit(str(path), "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    (group,) = doc["groups"]
    assert group["group"]["lr_mode"] == "per_layer" and group["theory_exponent"] is not None
    assert "lr_mode: 'per layer' read as 'per_layer' (the spelling theory reads)" in doc["warnings"]


def test_fit_refuses_a_history_by_its_step_lr_naming_the_peak(tmp_path):
    rows = []
    for w in (128, 256, 512):
        for peak in (1e-3, 4e-3, 1.6e-2):
            for step in (0, 500, 1000):
                rows.append({"width": w, "step": step, "lr": peak * (1 - step / 1000) + peak * 1e-4, "max_lr": peak,
                             "loss": 3 + (math.log2(peak) + 8) ** 2 / 50 + 2 * (1 - step / 1000)})
    path = tmp_path / "history.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    res = _fit(str(path), "--lr-col", "lr", "--loss-col", "loss")
    assert res.exit_code == 2, res.output  # before: fitted, each step's LR a run of its own
    said = " ".join(res.output.split())
    assert "step: the table holds each run at several steps" in said and "--lr-col max_lr" in said


def test_fit_lists_the_tables_own_columns_not_derived_ones(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("\n".join(["width_mult,beta,seed,val", *_rows()]) + "\n")
    res = _fit(str(path), "--derive", "width=width_mult*128")
    assert res.exit_code == 2
    said = " ".join(res.output.split())
    assert "columns are: beta, seed, val, width_mult" in said, said


def test_theory_table_json_is_the_rows_the_service_answers(tmp_path):
    # kept an array: GET /v1/theory/exponents answers the same list (response_model list[ExponentRow]), and
    # scripts index it; its alignment warnings go to stderr (an object would break both)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from abcscale.service.app import create_app
    from abcscale.service.config import Settings

    res = runner.invoke(app, ["theory", "table", "-p", "mup", "-o", "adam", "--json"])
    assert res.exit_code == 0
    rows = json.loads(res.stdout)
    with TestClient(create_app(Settings(data_dir=tmp_path, database_url=None, api_token=None))) as client:
        served = client.get("/v1/theory/exponents", params={"parameterization": "mup", "optimizer": "adam"})
    assert served.status_code == 200 and rows == served.json()


def test_the_settings_given_as_flags_are_not_listed_among_the_tables_columns(tmp_path):
    """`-p/-o/--lr-mode` add their columns to the table (abcscale.usecases.fits.with_setup); a missing column's message
    listed them as the table's own ("columns are: lr, lr_mode, optimizer, parameterization, ...")."""
    path = tmp_path / "runs.csv"
    path.write_text("width,lr,seed,val\n64,0.01,0,1.0\n128,0.01,0,1.1\n")
    res = _fit(str(path), "-p", "mup", "-o", "adam", "--lr-mode", "global")
    assert res.exit_code == 2
    said = " ".join(res.output.split())
    assert "final_loss: missing column" in said and "columns are: lr, seed, val, width" in said, said
    # a table's own setting column is still its own
    path.write_text("width,lr,seed,val,optimizer\n64,0.01,0,1.0,adam\n128,0.01,0,1.1,adam\n")
    said = " ".join(_fit(str(path), "-p", "mup", "--lr-mode", "global").output.split())
    assert "columns are: lr, optimizer, seed, val, width" in said, said
