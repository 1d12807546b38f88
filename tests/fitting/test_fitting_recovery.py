"""The fitter on synthetic sweeps with a known truth: exponent, constant, intervals, LOO, edges, censoring."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abcscale.fitting import fit_table
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.schemas.fit import FitResult
from tests.fitting.sweeps import lr_gamma_sweep

SP_GLOBAL = {"parameterization": "standard", "optimizer": "adam", "alignment": "full", "lr_mode": "global"}
MUP = {"parameterization": "mup", "optimizer": "adam", "alignment": "full", "lr_mode": "per_layer"}


@pytest.fixture(scope="module")
def two_groups() -> tuple[pd.DataFrame, FitResult]:
    df = pd.concat([
        synthetic_sweep(group=SP_GLOBAL, exponent=-1.0, lr_base=1e-2, seed=1),
        synthetic_sweep(group=MUP, exponent=0.0, lr_base=3e-3, seed=2),
    ], ignore_index=True)
    return df, fit_table(df, target_width=4096, n_boot=200, seed=0)


def _group(fit: FitResult, **kv) -> object:
    return next(g for g in fit.groups if all(g.group[k] == v for k, v in kv.items()))


def test_recovers_exponent_constant_and_theory_verdict(two_groups):
    _, fit = two_groups
    sp = _group(fit, parameterization="standard")
    assert sp.exponent.estimate == pytest.approx(-1.0, abs=0.05)
    assert sp.constant == pytest.approx(1e-2, rel=0.05)
    assert sp.base_width == 64
    assert sp.theory_exponent == -1.0 and sp.consistent is True and sp.width_independent is True
    mup = _group(fit, parameterization="mup")
    assert mup.exponent.estimate == pytest.approx(0.0, abs=0.05)
    assert mup.constant == pytest.approx(3e-3, rel=0.05)
    assert mup.theory_exponent == 0.0 and mup.consistent is True
    assert mup.constant_ci.low < 3e-3 < mup.constant_ci.high


def test_per_width_optima_and_loo_are_reported(two_groups):
    _, fit = two_groups
    sp = _group(fit, parameterization="standard")
    assert [w.width for w in sp.per_width] == [64, 128, 256, 512, 1024]
    for w in sp.per_width:
        truth = 1e-2 * (w.width / 64) ** -1.0
        assert w.identified and not w.on_edge
        assert w.lr_opt == pytest.approx(truth, rel=0.1)
        assert w.ci.low < w.lr_opt < w.ci.high
        assert w.band_0p1[0] < w.lr_opt < w.band_0p1[1]
        assert w.band_0p5[0] <= w.band_0p1[0] and w.band_0p5[1] >= w.band_0p1[1]
        # synthetic basin: 2% per octave^2 relative, loss ~2.x -> curvature ~0.05 loss/octave^2
        assert 0.02 < w.curvature < 0.1
        assert w.loo_error_octaves is not None and abs(w.loo_error_octaves) < 0.3
        assert w.n_diverged > 0 and w.largest_stable_lr is not None
    assert 0 <= sp.loo_error_octaves < 0.2


def test_stability_edge_and_loss_law(two_groups):
    _, fit = two_groups
    sp = _group(fit, parameterization="standard")
    # divergence starts 2 octaves above the optimum, so the edge moves with the same exponent
    assert sp.stability_edge.estimate == pytest.approx(-1.0, abs=0.25)
    law = sp.loss_law
    assert law is not None
    assert law.alpha.ci.low <= 0.5 <= law.alpha.ci.high
    assert law.E.estimate == pytest.approx(2.0, abs=0.15)


def test_prediction_band_and_safe_side(two_groups):
    _, fit = two_groups
    p = _group(fit, parameterization="standard").prediction
    truth = 1e-2 * (4096 / 64) ** -1.0
    assert p.width == 4096 and p.extrapolation_factor == 4.0
    assert p.ci95[0] < p.ci68[0] < p.lr < p.ci68[1] < p.ci95[1]
    assert p.ci95[0] < truth < p.ci95[1]
    # a symmetric fitted basin still shades low: overshooting is assumed to cost 2x
    assert p.safe_lr < p.lr
    assert p.expected_loss_penalty > 0
    assert p.stability_edge_lr > p.lr


def test_asymmetric_basin_shades_low_and_reports_asymmetry():
    df = synthetic_sweep(group=SP_GLOBAL, asymmetry=4.0, step=0.25, noise=0.001, seed=5)
    g = fit_table(df, target_width=8192, n_boot=200).groups[0]
    assert g.basin.k_right > 1.5 * g.basin.k_left
    assert g.prediction.safe_lr < g.prediction.lr
    assert g.exponent.ci.low <= -1.0 <= g.exponent.ci.high


def test_interval_coverage_over_seeded_simulations():
    """95% intervals cover the truth in >= 90% of 60 simulations (production code path, small n_boot).

    Checked for the exponent, each width's optimum, and the predicted LR* 4x past the largest width.
    """
    n, hits, width_hits, width_n, pred_hits = 60, 0, 0, 0, 0
    for s in range(n):
        df = synthetic_sweep(widths=(64, 128, 256, 512), group=SP_GLOBAL, seeds=2, noise=0.004, seed=100 + s)
        g = fit_table(df, n_boot=100, seed=s, target_width=2048).groups[0]
        hits += g.exponent.ci.low <= -1.0 <= g.exponent.ci.high
        for w in g.per_width:
            width_n += 1
            width_hits += w.ci.low <= 1e-2 * 64 / w.width <= w.ci.high
        pred_hits += g.prediction.ci95[0] <= 1e-2 * 64 / 2048 <= g.prediction.ci95[1]
    assert hits / n >= 0.90
    assert width_hits / width_n >= 0.90
    assert pred_hits / n >= 0.90


def test_shifted_exponent_is_inconsistent_with_theory():
    # beyond theory's span for a global LR (-1 full alignment to -0.5 none)
    df = synthetic_sweep(group=SP_GLOBAL, exponent=0.0, grid_center_exponent=-0.25, seed=3)
    g = fit_table(df, n_boot=200, target_width=4096).groups[0]
    assert g.consistent is False and g.width_independent is False
    assert g.exponent.ci.low > -0.3 and g.theory_span == [-1.0, -0.5]  # the whole interval above the span
    assert any("inconsistent with theory" in w for w in g.warnings)


def test_alignment_override_changes_theory():
    df = synthetic_sweep(group=SP_GLOBAL, seed=4)
    g = fit_table(df, n_boot=100, alignment="none").groups[0]
    from abcscale.theory import theory_exponent

    assert g.theory_exponent == theory_exponent("standard", "adam", "none", "global")
    # the fitting layer names the option (`alignment`); the CLI and REST render it as --alignment / alignment
    assert any("`alignment` none" in w for w in g.warnings)


def test_deterministic_and_json_round_trip(two_groups):
    df, fit = two_groups
    again = fit_table(df, target_width=4096, n_boot=200, seed=0)
    a, b = fit.model_dump(mode="json"), again.model_dump(mode="json")
    a["provenance"].pop("created_at"), b["provenance"].pop("created_at")
    assert a == b
    text = json.dumps(fit.model_dump(mode="json"), allow_nan=False)  # raises on NaN/inf
    assert FitResult.model_validate(json.loads(text)) == fit
    g = json.loads(text)["groups"][0]
    for key in ("group", "exponent", "constant", "base_width", "theory_exponent", "consistent", "per_width",
                "loo_error_octaves", "prediction"):
        assert key in g
    assert set(g["exponent"]) >= {"estimate", "ci"}
    assert set(g["exponent"]["ci"]) == {"low", "high", "confidence_level"}
    assert set(g["per_width"][0]) >= {"width", "lr_opt", "ci", "on_edge"}
    assert set(g["prediction"]) >= {"width", "lr", "ci", "ci68", "ci95", "safe_lr", "expected_loss_penalty"}


def test_other_seed_changes_intervals_only_slightly(two_groups):
    df, fit = two_groups
    other = fit_table(df, n_boot=200, seed=7)
    for g1, g2 in zip(fit.groups, other.groups, strict=True):
        # only the weights (bootstrap variances per width) are random: the estimate barely moves
        assert g1.exponent.estimate == pytest.approx(g2.exponent.estimate, abs=0.01)
        assert g1.exponent.ci != g2.exponent.ci


def test_single_seed_uses_residual_noise():
    df = synthetic_sweep(group=MUP, exponent=0.0, seeds=1, noise=0.003, step=0.25, seed=9)
    g = fit_table(df, n_boot=200).groups[0]
    assert g.exponent.ci.low <= 0.0 <= g.exponent.ci.high
    assert any("one seed" in w for w in g.warnings)


def test_grid_edge_is_flagged_and_never_extrapolated():
    # the grid follows exponent 0 but the optimum moves as w^-1: at large widths it falls off the low end
    df = synthetic_sweep(group=SP_GLOBAL, exponent=-1.0, grid_center_exponent=0.0, half_range=2.0, seed=11)
    g = fit_table(df, target_width=4096, n_boot=100).groups[0]
    edge = [w for w in g.per_width if w.on_edge]
    assert edge and all(w.lr_opt is None and "widen the grid downward" in w.message for w in edge)
    assert all(not w.identified for w in edge)
    assert any("left out" in w for w in g.warnings)


def test_all_widths_on_edge_gives_no_prediction():
    # the whole grid sits 1-5 octaves above the optimum
    df = synthetic_sweep(group=SP_GLOBAL, grid_offset=3.0, half_range=2.0, edge_octaves=None, seed=12)
    g = fit_table(df, target_width=4096, n_boot=100).groups[0]
    assert g.exponent is None and g.prediction is None
    assert all(w.on_edge for w in g.per_width)
    assert any("widen the learning-rate grid" in w for w in g.warnings)


def test_single_width_has_a_clear_message():
    df = synthetic_sweep(widths=(256,), group=MUP, exponent=0.0, seed=13)
    g = fit_table(df, target_width=1024, n_boot=100).groups[0]
    assert g.exponent is None and g.prediction is None
    assert g.per_width[0].identified
    assert any("one width (256)" in w and "at least 2 widths" in w for w in g.warnings)


def test_divergent_cells_are_censored_not_fitted():
    df = synthetic_sweep(group=MUP, exponent=0.0, lr_base=3e-3, edge_octaves=0.75, seed=14)
    g = fit_table(df, n_boot=100).groups[0]
    for w in g.per_width:
        assert w.identified
        assert w.lr_opt < 3e-3 * 2**0.75 * 1.01  # never above the first diverged LR
        assert w.largest_stable_lr <= 3e-3 * 2**0.75 * 1.2
    assert g.exponent.ci.low <= 0.0 <= g.exponent.ci.high


def test_swept_constant_optimum_and_drift():
    g = fit_table(lr_gamma_sweep(), n_boot=100).groups[0]
    c = {k.name: k for k in g.constants}["gamma_hidden"]
    assert c.optimum.estimate == pytest.approx(1.5, rel=0.15)
    assert c.drift_exponent.ci.low <= 0.0 <= c.drift_exponent.ci.high
    assert g.exponent.estimate == pytest.approx(0.0, abs=0.1)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exponent=st.floats(-1.5, 0.5), lr_base=st.floats(1e-4, 1e-1), seed=st.integers(0, 10_000))
def test_recovery_for_any_exponent(exponent, lr_base, seed):
    df = synthetic_sweep(group=SP_GLOBAL, exponent=exponent, lr_base=lr_base, seed=seed)
    g = fit_table(df, n_boot=50, seed=seed).groups[0]
    assert g.exponent.estimate == pytest.approx(exponent, abs=0.1)
    assert g.constant == pytest.approx(lr_base, rel=0.15)


def test_the_law_needs_two_widths():
    from abcscale.fitting.scaling import fit_law

    with pytest.raises(ValueError, match="at least 2 widths"):
        fit_law(np.array([64.0]), np.array([-7.0]), np.array([0.01]), None, 64, 0, np.random.default_rng(0))
