"""Session 83: a sweep into a folder holding another spec's runs keeps that spec, which its note tells the user to
rerun (spec.json, which the note named, was this sweep's by then)."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from abcscale.cli import app

runner = CliRunner()
TINY = ["--model", "mlp", "-p", "mup", "-o", "adam", "--widths", "16", "--steps", "3", "--batch", "2", "--seq-len",
        "8", "--depth", "1", "-q"]


def test_the_replaced_spec_is_kept_and_rerunning_it_lists_its_runs_again(tmp_path):
    out = tmp_path / "o"
    first = runner.invoke(app, ["sweep", *TINY, "--log2-lr", "-6,-5", "--out", str(out)])
    assert first.exit_code == 0, first.output
    theirs = json.loads((out / "spec.json").read_text())
    fewer = runner.invoke(app, ["sweep", *TINY, "--log2-lr", "-6", "--out", str(out)])
    said = " ".join(fewer.stderr.split())
    assert fewer.exit_code == 0 and f"rerun their spec (kept as {out / 'spec.previous.json'})" in said, said
    assert json.loads((out / "spec.previous.json").read_text()) == theirs
    assert json.loads((out / "spec.json").read_text())["log2_lr"] == [-6.0]
    again = runner.invoke(app, ["sweep", str(out / "spec.previous.json"), "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert len(pd.read_parquet(out / "results.parquet")) == 2  # listed again, from the kept cells
    assert json.loads((out / "spec.json").read_text()) == theirs
