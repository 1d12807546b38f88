"""Session 78's review of reruns into a sweep folder: the note on the runs a rerun no longer lists named a changed
constant as `constants {"gamma": {"embedding": 1.0, ... -> {"gamma": {"embedding": 1.0, ...`, both sides cut to the
same first characters, so it never said which constant changed."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from abcscale.cli import app

TINY = ["sweep", "--model", "mlp", "--depth", "1", "--steps", "6", "--batch", "2", "--seq-len", "8", "--widths", "8",
        "--log2-lr=-6,-5"]


def test_the_note_on_runs_no_longer_listed_names_each_changed_constant(tmp_path):
    pytest.importorskip("jax")
    runner, out = CliRunner(), str(tmp_path / "o")
    assert runner.invoke(app, [*TINY, "--out", out]).exit_code == 0
    res = runner.invoke(app, [*TINY, "--epsilon", "1e-6", "--init-scale", "1,2,1", "--out", out])
    said = " ".join(res.stderr.split())
    assert res.exit_code == 0 and "held 2 runs; it now lists this sweep's 2, without 2 of those" in said, res.output
    assert said.endswith("the folder's previous spec differs in constants.epsilon 1e-08 -> 1e-06, "
                         "constants.init_scale.hidden 1.0 -> 2.0"), said


def test_an_epsilon_sgd_never_reads_reuses_the_runs_and_says_nothing_of_them(tmp_path):
    """The sweep itself says an epsilon given to SGD "changed nothing": it trained every run again, and the note
    then said the folder's runs were no longer listed."""
    pytest.importorskip("jax")
    runner, out = CliRunner(), tmp_path / "o"
    sgd = [*TINY, "-o", "sgd", "--out", str(out)]
    assert runner.invoke(app, sgd).exit_code == 0
    parts = sorted((out / "cells").glob("*.rows.parquet"))
    res = runner.invoke(app, [*sgd, "--epsilon", "1e-6"])
    said = " ".join(res.stderr.split())
    assert res.exit_code == 0 and "epsilon: sgd uses none; the 1e-06 given changed nothing" in said, res.output
    assert "note:" not in said and sorted((out / "cells").glob("*.rows.parquet")) == parts, said
