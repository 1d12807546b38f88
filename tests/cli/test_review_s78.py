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
