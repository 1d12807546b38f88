"""A fit of one layer's own LR column (`--lr-col lr_hidden`): its prediction is that layer's LR, not the sweep's beta,
and no per-layer settings follow from it (session 65, a code review: the CLI called it beta and spread it again,
the hidden LR 64x low)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app
from abcscale.fitting.synthetic import synthetic_sweep


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    # a per-layer muP + Adam sweep as theory has it: beta flat over width, each layer's LR beta (n/b)^-c_l
    from abcscale import theory

    df = synthetic_sweep(seed=0, exponent=0.0)
    df["parameterization"], df["optimizer"], df["lr_mode"] = "mup", "adam", "per_layer"
    c = theory.solve_exponents("mup", "adam", "full").c
    for layer, c_l in c.items():
        df[f"lr_{layer.value}"] = df["beta"] * (df["width"] / 64.0) ** -c_l
    path = tmp_path_factory.mktemp("lrcol") / "t.csv"
    df.to_csv(path, index=False)
    return path


def test_a_fit_of_one_layers_lr_predicts_that_layers_lr_and_no_spread(table):
    fit = abcscale.fit(table, mapping={"lr_col": "lr_hidden"}, target_width=4096)
    (g,) = fit.groups
    assert g.lr_layer == "hidden" and g.prediction is not None
    assert g.prediction.lr_layer == "hidden" and g.prediction.layers is None
    with pytest.raises(ValueError, match="this fit measured the hidden layer's own LR"):
        abcscale.recommend(fit=fit, width=4096)
    assert abcscale.fit(table, target_width=4096).groups[0].prediction.lr_layer is None


def test_the_cli_says_the_layers_own_lr_not_beta(table, tmp_path):
    run = CliRunner().invoke
    res = run(app, ["fit", str(table), "--lr-col", "lr_hidden", "--target-width", "4096", "--summary"])
    assert res.exit_code == 0, res.output
    assert "LR* (hidden layer's own LR)" in res.output and "beta (base LR)" not in res.output
    assert "layer LRs" not in res.output
    res = run(app, ["fit", str(table), "--lr-col", "lr_hidden", "--target-width", "4096", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    res = run(app, ["predict", str(tmp_path / "fit.json"), "--size", "4096"])
    assert res.exit_code == 0, res.output
    assert "the hidden layer's own LR" in res.output and "beta (base LR)" not in res.output
    res = run(app, ["recommend", "--fit", str(tmp_path / "fit.json"), "-n", "4096"])
    assert res.exit_code == 2 and "this fit measured the hidden layer's own LR" in " ".join(res.output.split())


@pytest.mark.parametrize("layer", ["hidden", "embedding"])
def test_one_layers_lr_is_checked_against_that_layers_theory_exponent(table, layer):
    # beta's (0) made an exactly-theory table "inconsistent" (a service review): the layer's own LR falls as n^-c_l
    from abcscale import theory

    (g,) = abcscale.fit(table, mapping={"lr_col": f"lr_{layer}"}).groups
    c = theory.solve_exponents("mup", "adam", "full").c
    assert g.theory_exponent == pytest.approx(-c[next(k for k in c if k.value == layer)])
    assert g.consistent is True
    assert not [w for w in g.warnings if "inconsistent" in w or "lr_mode global" in w]
