"""Session 62, the use case behind `recommend --form mup` (a review by a microsoft/mup team): the note on whose beta
a mup-form answer read is made where every surface gets it, and only where the constants leave that open."""

from __future__ import annotations

from pathlib import Path

import pytest

from abcscale.schemas.api import AnalyticRecommend
from abcscale.schemas.fit import ConstantFit, Estimate, Interval
from abcscale.usecases.recommend import mup_beta_note, recommend_analytic, recommend_from_fit

BODY = {"parameterization": "mup", "optimizer": "adam", "width": 4096, "form": "mup",
        "base": {"width": 256, "beta": 3e-3}}


def _note(body: dict) -> str | None:
    rec = recommend_analytic(AnalyticRecommend.model_validate(body))
    notes = [w for w in rec.warnings if w.startswith("mup form: ")]
    assert len(notes) <= 1 and mup_beta_note(rec, body["base"]) == (notes[0] if notes else None)
    return notes[0] if notes else None


def test_the_note_is_made_only_where_the_constants_leave_the_beta_open():
    note = _note(BODY)  # was: none
    assert note is not None and note.startswith("mup form: the MuAdam lrs (embedding 0.048, hidden 0.003, readout "
                                                "0.0001875) read beta 0.003")
    assert _note({**BODY, "base": {**BODY["base"], "epsilon": 1e-6}}) == note  # epsilon does not set the lrs
    for constant in ({"multiplier": {"embedding": 0.0625, "hidden": 1, "readout": 16}},
                     {"gamma": {"embedding": 1, "hidden": 1, "readout": 1}}):  # given, even as the defaults
        assert _note({**BODY, "base": {**BODY["base"], **constant}}) is None
    for other in ({"form": "abc"}, {"form": "multiplier_free"}, {"lr_mode": "global"},
                  {"parameterization": "mean_field"}):
        assert _note({**BODY, **other}) is None


def test_a_fit_that_swept_the_lr_constants_is_abcscale_s_sweep(tmp_path):
    from typer.testing import CliRunner

    from abcscale.cli import app
    from abcscale.usecases import load_fit

    table = str(Path(__file__).resolve().parents[2] / "examples" / "tour-sweep.parquet")
    assert CliRunner().invoke(app, ["fit", table, "-q", "--out", str(tmp_path)]).exit_code == 0
    fit = load_fit(tmp_path / "fit.json")
    selector = {"parameterization": "mup", "lr_mode": "per_layer"}
    rec = recommend_from_fit(fit, 1024, selector=selector, form="mup")
    assert [w for w in rec.warnings if w.startswith("mup form: ")]  # was: none
    swept = ConstantFit(name="gamma_embedding", optimum=Estimate(estimate=1.0, ci=Interval(
        low=0.5, high=2.0, confidence_level=0.95)))
    groups = [g.model_copy(update={"constants": [swept]}) if g.group.get("lr_mode") == "per_layer" else g
              for g in fit.groups]
    rec = recommend_from_fit(fit.model_copy(update={"groups": groups}), 1024, selector=selector, form="mup")
    assert not [w for w in rec.warnings if w.startswith("mup form: ")]
    assert any(w.startswith("gamma from the fit") for w in rec.warnings)


@pytest.mark.parametrize("given", [(), ("epsilon", "init_scale")])
def test_the_note_takes_the_given_constants_by_name(given):
    rec = recommend_analytic(AnalyticRecommend.model_validate(BODY))
    assert mup_beta_note(rec, given) is not None and mup_beta_note(rec, (*given, "multiplier")) is None
