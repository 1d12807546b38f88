"""A user review (session 50) of a team's global-LR workflow: sweep table -> fit -> recommend -> check in CI."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from abcscale.cli import app
from abcscale.fitting.synthetic import synthetic_sweep

runner = CliRunner()
GLOBAL = {"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A muP + Adam global-LR sweep whose truth is no alignment's exponent (-0.5), fitted with a target width."""
    d = tmp_path_factory.mktemp("global")
    synthetic_sweep((64, 128, 256, 512), exponent=-0.5, base_width=64, seeds=2, grid_center_exponent=-0.5,
                    group=GLOBAL, seed=11).to_csv(d / "sweep.csv", index=False)
    res = runner.invoke(app, ["fit", str(d / "sweep.csv"), "--out", str(d / "fit"), "--target-width", "8192",
                              "--n-boot", "50"])
    assert res.exit_code == 0, res.output
    return d, res.output


def test_recommend_from_a_fit_says_the_fitted_exponent_not_theorys(fitted):
    """The answer said `one global LR shrinks as n^-1` beside an LR the fit scaled as n^-0.5 (11x apart at 8192)."""
    d, _ = fitted
    out = runner.invoke(app, ["recommend", "--fit", str(d / "fit" / "fit.json"), "-n", "8192"])
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())
    assert "one global LR shrinks" not in text and "assumes full alignment" not in text
    assert "every layer's LR is the prediction's at this width, its law LR ~ width^-0.5" in text
    assert "(x0.7" in text
    # the fixed role's footnote in global mode: the one LR, not the vector row's base-width numbers
    assert "the one global LR, as every row" in text and "base-width numbers at every width" not in text
    rec = json.loads(runner.invoke(app, ["recommend", "--fit", str(d / "fit" / "fit.json"), "-n", "8192",
                                         "--json"]).stdout)
    assert not any(w.startswith("one global LR") for w in rec["warnings"])
    assert not any("scale every layer's LR by 1 " in w for w in rec["warnings"])
    # without a fit, theory's note stands
    plain = runner.invoke(app, ["recommend", "-p", "mup", "-o", "adam", "--lr-mode", "global", "--base-width", "64",
                                "--base-lr", "0.01", "-n", "8192"])
    assert "one global LR shrinks as n^-1" in " ".join(plain.output.split())


def test_a_consistent_global_fit_says_why_c_is_not_carried(fitted):
    """Consistent with the span, yet `treat the constant as width-dependent` read as a contradiction: it says C
    carried by theory's -1 misses and the fitted law's prediction holds."""
    _, output = fitted
    text = " ".join(output.split())
    assert "consistent" in text
    # the table has no alignment column: theory's -1 is the default's
    assert "C carried unchanged by theory's -1 (full alignment, the default) drifts" in text
    assert "theory's span -1..-0.5, its interval reaching it" in text and "use the prediction at that width" in text


def test_check_says_an_lr_inside_the_tolerance_but_outside_the_band(fitted, tmp_path):
    d, _ = fitted
    rec = json.loads(runner.invoke(app, ["recommend", "--fit", str(d / "fit" / "fit.json"), "-n", "8192",
                                         "--json"]).stdout)
    lr, hi = rec["band"]["lr"], rec["band"]["ci95"][1]
    assert 1.02 * hi < 1.95 * lr  # a band narrower than the 2x tolerance: above its top, yet a pass
    for name, value, said in (("inside", lr, False), ("above", 1.02 * hi, True)):
        cfg = tmp_path / f"{name}.yaml"
        cfg.write_text(yaml.safe_dump({**GLOBAL, "width": 8192, "lr": float(value)}))
        res = runner.invoke(app, ["check", str(cfg), "--fit", str(d / "fit" / "fit.json"), "--json"])
        assert res.exit_code == 0, res.output  # inside the 2x tolerance: a pass either way
        notes = [w for w in json.loads(res.stdout)["warnings"] if "outside the fit's 95% band" in w]
        assert bool(notes) is said, notes


def test_fit_names_the_option_for_a_missing_lr_mode_and_its_help_says_the_span(tmp_path):
    path = tmp_path / "bare.csv"
    synthetic_sweep((64, 128, 256), exponent=-0.5, base_width=64, seeds=2, group={"parameterization": "mup",
                                                                                  "optimizer": "adam"},
                    seed=3).to_csv(path, index=False)
    res = runner.invoke(app, ["fit", str(path), "--n-boot", "30"])
    text = " ".join(res.output.split())
    assert "no theory exponent: no lr_mode among the group columns" in text and "give --lr-mode for every run" in text
    helped = " ".join(runner.invoke(app, ["fit", "--help"]).output.replace("│", " ").split())
    assert "a global LR's theory spans full to none" in helped
