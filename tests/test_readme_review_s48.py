"""Session 48: a README accuracy review (helper): where the docs and the behaviour disagreed, the behaviour or the
docs now say the same. Each test fails on the code before it."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.schemas.sweep import SWEEP_COLUMNS

runner = CliRunner()


def test_every_bad_size_is_listed_at_once(tmp_path):
    """README: "validation lists every problem at once"; a fractional width was said only once the non-positive
    one was gone."""
    path = tmp_path / "bad.csv"
    path.write_text("width,beta,final_loss\n64,0.1,1.0\n-64,0.2,1.1\n64,abc,1.2\n64.5,0.3,1.3\n")
    res = runner.invoke(app, ["fit", str(path)])
    assert res.exit_code == 2
    said = " ".join(res.output.split())
    assert "non-positive" in said and "must be integers" in said and "beta" in said, said


def test_a_two_width_exponent_says_how_its_interval_was_made():
    """The method named Knapp-Hartung's t with 0 df; the interval is the estimate +- a normal quantile x se with
    tau assumed (two widths leave no residual)."""
    df = synthetic_sweep(widths=(64, 256), seed=0)
    g = abcscale.fit(df).groups[0]
    e = g.exponent
    assert "0 df" not in e.method and "2 widths" in e.method and "normal" in e.method
    half = (e.ci.high - e.ci.low) / 2
    assert half == pytest.approx(1.959964 * e.se, rel=1e-3)
    three = abcscale.fit(synthetic_sweep(widths=(64, 128, 256), seed=0)).groups[0].exponent
    assert "Knapp-Hartung t with 1 df" in three.method


def test_the_per_width_header_leaves_out_a_variant_equal_to_its_optimizer(tmp_path):
    df = synthetic_sweep(widths=(64, 128, 256), seed=0).assign(optimizer="adam", optimizer_variant="adam")
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    res = runner.invoke(app, ["fit", str(path)])
    assert res.exit_code in (0, 1), res.output
    header = next(line for line in res.output.splitlines() if line.startswith("per width"))
    assert "optimizer_variant" not in header and "optimizer=" in header
    df["optimizer_variant"] = "adam_scaled"
    df.to_csv(path, index=False)
    res = runner.invoke(app, ["fit", str(path)])
    assert "optimizer_variant=adam_scaled" in next(line for line in res.output.splitlines()
                                                   if line.startswith("per width"))


def test_the_documented_types_are_importable():
    from abcscale import JointPrediction  # noqa: F401  README: predict(..., at=) returns it

    assert "JointPrediction" in abcscale.__all__
    assert "optimizer_variant" in SWEEP_COLUMNS  # the contract's table lists it; its source of truth now too


def test_theory_table_takes_every_parameterization_given():
    """`theory table -p sp -p mup` kept the last -p, silently (session 47's notes); the API takes both."""
    import json

    res = runner.invoke(app, ["theory", "table", "-p", "sp", "-p", "mup", "-o", "adam", "-a", "full", "--json"])
    assert res.exit_code == 0, res.output
    assert {r["parameterization"] for r in json.loads(res.stdout)} == {"standard", "mup"}
    res = runner.invoke(app, ["theory", "table", "-p", "ntk,mf", "-o", "adam", "-a", "full", "--json"])
    assert {r["parameterization"] for r in json.loads(res.stdout)} == {"ntk", "mean_field"}
    res = runner.invoke(app, ["theory", "table", "-p", "sp,bogus"])
    assert res.exit_code == 2 and "--parameterization: unknown parameterization 'bogus'" in res.output
