"""Session 77's README review: the epsilon note of a microsoft/mup export names the wrapper the export runs
(MuAdamW for adamw, not MuAdam as for adam)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from abcscale.cli import app


@pytest.mark.parametrize(("optimizer", "wrapper"), [("adam", "MuAdam"), ("adamw", "MuAdamW")])
def test_the_epsilon_note_names_the_wrapper_that_runs(optimizer, wrapper):
    args = ["--width", "4096", "--base-width", "256", "--base-lr", "3e-3",
            *(["--weight-decay", "0.1"] if optimizer == "adamw" else [])]
    export = CliRunner().invoke(app, ["mup", "export", "-o", optimizer, *args])
    assert export.exit_code == 0, export.output
    said = " ".join(export.output.split())
    assert f"each group's eps; {wrapper} passes it to the optimizer unscaled" in said, said
    rec = CliRunner().invoke(app, ["recommend", "-p", "mup", "-o", optimizer, "--form", "mup", "-n", "4096",
                                   "--base-width", "256", "--base-lr", "3e-3",
                                   *(["--weight-decay", "0.1"] if optimizer == "adamw" else [])])
    assert rec.exit_code == 0, rec.output
    assert f"({wrapper} passes it on unscaled)" in " ".join(rec.output.split()), rec.output
