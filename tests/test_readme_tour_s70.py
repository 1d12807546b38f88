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


def test_serve_on_a_taken_port_makes_no_database(tmp_path):
    """`abcscale serve --port N` with N taken exits 1 naming --port, and leaves the data folder as it was: it made
    (and migrated) ./abcscale-data/abcscale.db first, then found the port taken (a README review, session 70)."""
    import os
    import socket
    import subprocess
    import sys

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        port = taken.getsockname()[1]
        data = tmp_path / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ABCSCALE_")}
        out = subprocess.run([sys.executable, "-m", "abcscale", "serve", "--port", str(port)], cwd=tmp_path,
                             env=env | {"ABCSCALE_DATA_DIR": str(data)}, capture_output=True, text=True, timeout=60)
    finally:
        taken.close()
    assert out.returncode == 1 and f"--port: cannot listen on 127.0.0.1:{port}" in out.stderr, out.stderr
    assert not (data / "abcscale.db").exists() and not (tmp_path / "abcscale-data").exists()
