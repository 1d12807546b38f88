"""A new user's walk through the README's tour and CI sections (session 70).

`fit --expect-theory` says why a group has no theory exponent ("Use in CI": `no theory exponent for this group:
unknown optimizer 'adamx'; ...`). Where every group of the table shares that reason (a whole table of one unknown
optimizer), the fitter says it once, in the result's warnings, not in each group's; the gate read the groups'
alone and fell back to "theory gives none for its parameterization, optimizer and lr_mode", losing the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from abcscale.cli import app

TOUR = Path(__file__).resolve().parents[1] / "examples" / "tour-sweep.parquet"
runner = CliRunner()


def _adamx_table(tmp_path: Path) -> Path:
    df = pd.read_parquet(TOUR)
    df = df[df["parameterization"] == "mup"].copy()
    df["optimizer"] = "adamx"  # every group: the reason is the table's, said once in FitResult.warnings
    path = tmp_path / "adamx.csv"
    df.to_csv(path, index=False)
    return path


def test_expect_theory_names_a_reason_every_group_shares(tmp_path):
    path = _adamx_table(tmp_path)
    res = runner.invoke(app, ["fit", str(path), "--expect-theory", "-q", "--n-boot", "50", "--summary"])
    assert res.exit_code == 1, res.output
    lines = [line for line in res.stderr.splitlines() if line.startswith("--expect-theory: not checked:")]
    assert len(lines) == 2, res.stderr  # mup global and mup per_layer
    for line in lines:
        assert "no theory exponent for this group: unknown optimizer 'adamx'" in line, line
        assert "theory gives none for its parameterization" not in line, line


def test_expect_theory_gate_json_carries_the_shared_reason(tmp_path):
    path = _adamx_table(tmp_path)
    res = runner.invoke(app, ["fit", str(path), "--expect-theory", "-q", "--n-boot", "50", "--summary", "--json"])
    assert res.exit_code == 1, res.output
    doc = json.loads(res.stdout)
    gate = doc["gates"]["--expect-theory"]
    assert gate["passed"] is False and len(gate["failures"]) == 2, gate
    assert all("unknown optimizer 'adamx'" in f for f in gate["failures"]), gate
    assert doc["ok"] is False and doc["exit_code"] == 1
