"""Covariates (issue 14 item 1): one law across every (size, covariate values) curve of a group, with an interval
for each exponent and the constant; predictions at never-swept combinations; the joint loss law; derived and
axis-like grouping columns; a column confounded with the seed; sizes counted in parameters."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from abcscale.fitting import TableError, fit_table, prepare
from abcscale.fitting.joint import Curve, base_value, fit_joint, predict_joint
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.schemas.fit import ColumnMapping
from tests.fitting.covariate_sweeps import TRUTH, covariate_sweep

COVS = ColumnMapping(size_col="N", covariates=["D", "batch_size"])


@pytest.fixture(scope="module")
def joint_fit():
    return fit_table(covariate_sweep(seed=1), COVS, n_boot=100, target_width=2048, at={"D": 1e10, "batch_size": 64})


def test_every_exponent_and_the_constant_are_recovered_with_intervals(joint_fit):
    (law,) = joint_fit.joint
    assert law.names == ["N", "D", "batch_size"] and law.n_curves == 24
    for name, truth in TRUTH.items():
        e = law.exponents[name]
        assert abs(e.estimate - truth) < 0.06, name
        assert e.ci.low < e.estimate < e.ci.high and e.ci.high - e.ci.low < 0.25, name
    assert law.bases == {"N": 64.0, "D": 4e8, "batch_size": 32.0}  # smallest size; median swept values
    assert abs(math.log2(law.constant) - math.log2(1e-2)) < 0.15
    assert law.constant_ci.low < law.constant < law.constant_ci.high


def test_prediction_at_a_never_swept_combination(joint_fit):
    (law,) = joint_fit.joint
    p = law.prediction
    truth = (math.log2(1e-2) + TRUTH["N"] * math.log2(2048 / 64) + TRUTH["D"] * math.log2(1e10 / 4e8)
             + TRUTH["batch_size"] * math.log2(64 / 32))
    assert p.at == {"D": 1e10, "batch_size": 64.0}
    assert abs(p.log2_lr - truth) < 0.3 and p.ci.low < 2.0**truth < p.ci.high
    assert p.extrapolation["N"] == pytest.approx(2.0) and p.extrapolation["batch_size"] == 0.0
    assert any(w.startswith("D=1e+10 is") and "outside the swept range" in w for w in p.warnings)
    # a covariate left out sits at its base, and says so
    q = predict_joint(law, 128, {"D": 4e8})
    assert q.at["batch_size"] == 32.0 and any("batch_size not given" in w for w in q.warnings)
    with pytest.raises(ValueError, match="at: depth is not a fitted covariate"):
        predict_joint(law, 128, {"depth": 4})


def test_curves_of_one_size_do_not_warn_about_widths(joint_fit):
    said = [*joint_fit.warnings, *(w for g in joint_fit.groups for w in g.warnings)]
    assert not [w for w in said if "one width" in w or "widths swept" in w]
    assert all(g.prediction is None for g in joint_fit.groups)  # the prediction is the joint law's


def test_joint_loss_law_over_size_and_the_first_covariate(joint_fit):
    (law,) = joint_fit.joint
    s = law.loss_surface
    assert s is not None and s.identified
    assert abs(s.alpha.estimate - 0.5) < 0.1 and abs(s.beta.estimate - 0.3) < 0.1


def test_joint_fit_pins_the_size_exponent_where_per_group_fits_cannot():
    # every token budget is swept at one size only (a real table's groups of one size): size i of 4 ran the
    # budgets 2^(i/2) and 2^(i/2 + 2) x 1e8
    tokens = tuple(1e8 * 2 ** (k / 2) for k in range(8))
    rows = covariate_sweep(tokens=tokens, batches=(32,), seeds=1, seed=2)
    keep = {(n, tokens[i + j]) for i, n in enumerate((64, 128, 256, 512)) for j in (0, 4)}
    rows = rows[[(n, d) in keep for n, d in zip(rows["N"], rows["D"], strict=True)]]
    apart = fit_table(rows, ColumnMapping(size_col="N", group_cols=["D"]), n_boot=100)
    assert len(apart.groups) == 8 and all(g.exponent is None for g in apart.groups)  # one size: no exponent
    e = fit_table(rows, ColumnMapping(size_col="N", covariates=["D"]), n_boot=100).joint[0].exponents["N"]
    assert e.ci.low < TRUTH["N"] < e.ci.high and e.ci.high - e.ci.low < 0.6


def _simulated_law(rng: np.random.Generator, tau: float) -> tuple[list[Curve], dict[str, float]]:
    """One table's curve optima: 4 sizes x 3 token budgets x 2 batch sizes, each optimum with its own noise
    (sd 0.03-0.15 octave, reported) plus a between-curve jitter ``tau`` the fit must find itself."""
    truth = {"N": rng.normal(-0.8, 0.2), "D": rng.normal(-0.3, 0.1), "batch_size": rng.normal(0.5, 0.1)}
    curves = []
    for n in (64, 128, 256, 512):
        for d in (1e8, 4e8, 1.6e9):
            for b in (32, 128):
                sd = rng.uniform(0.03, 0.15)
                y = (-6.6 + truth["N"] * math.log2(n / 64) + truth["D"] * math.log2(d / 4e8)
                     + truth["batch_size"] * math.log2(b / 32) + rng.normal(0, math.hypot(sd, tau)))
                curves.append(Curve(float(n), (d, float(b)), y, sd**2, None))
    return curves, truth


@pytest.mark.parametrize("tau", [0.0, 0.1])
def test_intervals_cover_the_truth_in_a_seeded_simulation_of_50_tables(tau):
    rng = np.random.default_rng(14)
    hits = {k: 0 for k in TRUTH}
    for _ in range(50):
        curves, truth = _simulated_law(rng, tau)
        law, _ = fit_joint({}, curves, ["D", "batch_size"], size_col="N", size_kind="width", base_size=None,
                           level=0.95)
        for k in TRUTH:
            hits[k] += law.exponents[k].ci.contains(truth[k])
    assert all(h >= 44 for h in hits.values()), hits  # >= 88% of 50 at a nominal 95%


def test_base_is_the_median_swept_value_rounded_to_a_swept_value():
    assert base_value([1e8, 4e8, 1.6e9, 4e8]) == 4e8
    assert base_value([32, 64, 128, 256]) in (64, 128)
    assert base_value([10, 11, 1000]) == 11


def test_a_covariate_with_one_value_is_left_out_with_a_note():
    rows = covariate_sweep(batches=(32,), seeds=1, seed=3)
    (law,) = fit_table(rows, COVS, n_boot=50).joint
    assert law.names == ["N", "D"]
    assert any("batch_size: one value" in n for n in law.notes)


def test_groups_still_split_the_table_one_law_each():
    a = covariate_sweep(seeds=1, seed=4).assign(team="a")
    b = covariate_sweep(seeds=1, seed=5, truth={"N": -0.5}).assign(team="b")
    fit = fit_table(pd.concat([a, b], ignore_index=True),
                    ColumnMapping(size_col="N", group_cols=["team"], covariates=["D", "batch_size"]), n_boot=50)
    laws = {j.group["team"]: j for j in fit.joint}
    assert set(laws) == {"a", "b"}
    assert abs(laws["a"].exponents["N"].estimate + 0.8) < 0.1 and abs(laws["b"].exponents["N"].estimate + 0.5) < 0.1


@pytest.mark.parametrize(("mapping", "at", "message"), [
    (ColumnMapping(size_col="N", covariates=["tokens"]), None, "tokens: missing column (named in `covariates`)"),
    (ColumnMapping(size_col="N", covariates=["N"]), None, "N: cannot be both a covariate and the `size_col`"),
])
def test_bad_covariates_name_the_column(mapping, at, message):
    with pytest.raises(TableError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fit_table(covariate_sweep(seeds=1), mapping, n_boot=50)


def test_covariates_must_be_positive_numbers_and_at_must_name_one():
    df = covariate_sweep(seeds=1)
    with pytest.raises(TableError, match=r"D: values of a covariate \(`covariates`\) must be positive"):
        fit_table(df.assign(D=np.where(df.index == 3, 0.0, df["D"])), COVS, n_boot=50)
    with pytest.raises(TableError, match="D: not a number in row"):
        fit_table(df.assign(D=df["D"].astype(object).where(df.index != 3, "lots")), COVS, n_boot=50)
    with pytest.raises(ValueError, match="at: depth is not a covariate"):
        fit_table(df, COVS, target_width=1024, at={"depth": 4})


def test_a_column_that_changes_only_with_the_seed_is_named():
    base = synthetic_sweep(widths=(64, 128, 256), seeds=2, seed=0)
    fit = fit_table(base.assign(batch_size=np.where(base["seed"] == 0, 32, 256)), n_boot=50)
    said = [w for w in fit.warnings if "batch_size" in w]
    assert len(said) == 1 and "changes only together with the seed column seed" in said[0]
    assert "(`covariates`)" in said[0]


def test_an_axis_used_as_a_grouping_column_gets_a_warning():
    df = covariate_sweep(seeds=1)
    per_size = fit_table(df.assign(steps=df["N"] * 10), ColumnMapping(size_col="N", group_cols=["steps"]), n_boot=50)
    assert any(w.startswith("steps: a grouping column that has one value per width") and "`covariates`" in w
               for w in per_size.warnings)
    noisy = df.assign(lr_warmup=np.round(np.random.default_rng(0).uniform(0, 1, len(df)) * 10, 1) / 7)
    prep = prepare(noisy, ColumnMapping(size_col="N", group_cols=["lr_warmup"]))
    assert any(w.startswith("lr_warmup: a grouping column that takes") for w in prep.warnings)
    # the contract's own grouping columns (strings, the same at every size) say nothing
    assert not [w for w in fit_table(synthetic_sweep(widths=(64, 128), group={"optimizer": "adam"}),
                                     n_boot=50).warnings if "grouping column" in w]


def test_derived_grouping_columns_without_pandas_code():
    df = covariate_sweep(seeds=1)
    prep = prepare(df, ColumnMapping(size_col="N", derive=["tpp=D/N:log2round"], group_cols=["tpp"]))
    tpp = sorted({g.key["tpp"] for g in prep.groups})
    assert all(math.log2(t).is_integer() for t in tpp) and len(tpp) > 3
    prep = prepare(df, ColumnMapping(size_col="N", derive=["budget = N * D"], covariates=["budget"]))
    assert prep.covariates == ("budget",)
    for spec, message in (("tpp=D/", "is not NAME=A/B"), ("tpp=D/tokens", "tokens: missing column"),
                          ("N=D/N", "N is already a column"), ("x=D/N:floor", "is not NAME=A/B")):
        with pytest.raises(TableError, match=message):
            prepare(df, ColumnMapping(size_col="N", derive=[spec]))


def test_sizes_in_parameters_are_called_sizes():
    df = covariate_sweep(seeds=1, size_unit=1e6)
    with pytest.raises(TableError, match="N: NaN size in"):
        prepare(df.assign(N=np.where(df.index == 0, np.nan, df["N"])), ColumnMapping(size_col="N", size_kind="params"))
    fit = fit_table(df, ColumnMapping(size_col="N", size_kind="params", covariates=["D", "batch_size"]), n_boot=50)
    assert fit.joint[0].size_kind == "params" and fit.joint[0].bases["N"] == 64e6
    said = [*fit.warnings, *(w for g in fit.groups for w in g.warnings)]
    assert not [w for w in said if "one size" in w or "sizes swept" in w or "width" in w]


def test_size_axes_are_labelled_parameters(tmp_path, monkeypatch):
    """Sizes read as parameter counts say so on the x axis; the loss axis names the column the fit ranked (it
    said "final loss" while the fit ranked eval_loss)."""
    from abcscale.fitting import plots

    df = covariate_sweep(seeds=1, size_unit=1e6, tokens=(4e8,), batches=(32,))
    m = ColumnMapping(size_col="N", size_kind="params")
    fit = fit_table(df, m, n_boot=50)
    labels: list[str] = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: labels.extend(
        label for ax in fig.axes for label in (ax.get_xlabel(), ax.get_ylabel())))
    plots.write_plots(fit, prepare(df, m), tmp_path)
    assert labels.count("N (parameters)") == 2 and "learning rate" in labels
    assert f"{fit.mapping.loss_col} (x: diverged)" in labels and "final loss (x: diverged)" not in labels


def test_messages_say_size_for_parameter_counts():
    df = covariate_sweep(sizes=(64,), tokens=(4e8,), batches=(32,), seeds=1, size_unit=1e6)
    said = [w for g in fit_table(df, ColumnMapping(size_col="N", size_kind="params"), n_boot=50).groups
            for w in g.warnings]
    assert any(w.startswith("one size (64000000)") for w in said), said
    assert not [w for w in said if "width" in w]
    widths = [w for g in fit_table(df, ColumnMapping(size_col="N"), n_boot=50).groups for w in g.warnings]
    assert any(w.startswith("one width (64000000)") for w in widths)


@pytest.mark.slow
def test_end_to_end_intervals_cover_the_truth_in_50_seeded_tables():
    # whole tables (4 sizes x 3 token budgets, one seed, curve jitter 0.1 octave), each with its own truth:
    # the per-curve intervals become the joint fit's weights, as on a real table
    rng = np.random.default_rng(7)
    hits = {"N": 0, "D": 0}
    for i in range(50):
        truth = {"N": rng.normal(-0.8, 0.2), "D": rng.normal(-0.3, 0.1)}
        df = covariate_sweep(tokens=(1e8, 4e8, 1.6e9), batches=(32,), seeds=1, seed=100 + i, truth=truth,
                             jitter=0.1)
        law = fit_table(df, ColumnMapping(size_col="N", covariates=["D"]), n_boot=50, seed=i).joint[0]
        for k in hits:
            hits[k] += law.exponents[k].ci.contains(truth[k])
    assert all(h >= 44 for h in hits.values()), hits


def test_span_and_extrapolation_thresholds_are_in_parameters():
    """Parameters grow as width^2: a 16x span in N is only 4x in width (the advice asks for 64x), and a 100x
    extrapolation in N is about 10x in width (no far-extrapolation warning, which starts at 1024x)."""
    df = covariate_sweep(sizes=(64, 256, 1024), tokens=(4e8,), batches=(32,), seeds=1, size_unit=1e6)
    as_params = fit_table(df, ColumnMapping(size_col="N", size_kind="params"), n_boot=50,
                          target_width=102_400_000_000)
    as_width = fit_table(df, ColumnMapping(size_col="N"), n_boot=50, target_width=102_400_000_000)
    (gp,), (gw,) = as_params.groups, as_width.groups
    assert any(">= 64x pins" in w for w in gp.warnings), gp.warnings
    assert not [w for w in gw.warnings if "pins the exponent" in w]  # 16x already spans >= 8x in width
    assert gp.prediction is not None and gw.prediction is not None
    assert not [w for w in gp.prediction.warnings if "beyond 1024x" in w]
    assert [w for w in gw.prediction.warnings if "beyond 32x" in w]


def test_an_lr_axis_says_every_tick_as_a_power_of_two():
    """A range under two octaves is ticked in quarter octaves: they read 0.0442 beside 2^-5 on one axis."""
    from abcscale.fitting.plots import _pow2_label

    assert [_pow2_label(2.0 ** e) for e in (-11, -5.25, -4.5, -4.75)] == ["2^-11", "2^-5.25", "2^-4.5", "2^-4.75"]
    assert _pow2_label(3.0) == "3" and _pow2_label(2.5) == "2.5" and _pow2_label(0.0442) == "0.0442"
