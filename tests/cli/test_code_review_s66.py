"""Session 66's code review of its own changes: the table's own unreliable reasons gate `predict` as they gate
`recommend --fit`, and a decay mode typed over a tune file without a decay replaces nothing."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.schemas.theory import Constants

from .test_epsilon_tune_s66 import _file

runner = CliRunner()


@pytest.fixture(scope="module")
def scheduled(tmp_path_factory):
    # the Trainer's scheduled learning_rate (1/90 of the swept peak) fitted: the table says it is unreliable
    df = synthetic_sweep(seed=1).drop(columns=["base_width"]).rename(columns={"beta": "config_learning_rate"})
    df = df.assign(learning_rate=df["config_learning_rate"] * 10 / 900, parameterization="mup", optimizer="adam",
                   lr_mode="global")
    fit = abcscale.fit(df, mapping={"lr_col": "learning_rate"}, n_boot=50)
    path = tmp_path_factory.mktemp("sched") / "fit.json"
    path.write_text(fit.model_dump_json())
    return fit, path


def test_predict_is_unreliable_for_the_tables_own_reasons(scheduled):
    fit, path = scheduled
    assert any("scheduled LR" in w for w in fit.warnings)
    p = abcscale.predict(fit, 4096)
    assert any("scheduled LR" in why for why in p.unreliable)
    res = runner.invoke(app, ["predict", str(path), "--size", "4096", "--strict"])
    assert res.exit_code == 1 and "scheduled LR" in " ".join(res.output.split()), res.output
    res = runner.invoke(app, ["predict", str(path), "--size", "4096", "--strict", "--json"])
    assert res.exit_code == 1 and json.loads(res.stdout)["ok"] is False


def test_a_decay_mode_over_a_tune_file_without_decay_replaces_nothing(tmp_path):
    path = _file(tmp_path, "adamw.json", optimizer="adamw", optimizer_variant="adamw", constants=Constants())
    rec = abcscale.recommend(width=1024, constants=path, weight_decay_mode="independent")
    assert not [w for w in rec.warnings if "replaces the weight decay" in w], rec.warnings
    res = runner.invoke(app, ["recommend", "--constants", path, "-n", "1024", "--weight-decay-mode", "independent",
                              "--json"])
    assert res.exit_code == 0, res.output
    assert not [w for w in json.loads(res.stdout)["warnings"] if "replaces the weight decay" in w]
    # a decay given still replaces the file's, and says so
    rec = abcscale.recommend(width=1024, constants=path, weight_decay=0.1)
    assert [w for w in rec.warnings if "replaces the weight decay 0 (coupled)" in w], rec.warnings
