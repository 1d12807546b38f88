"""What a statistical review of the fitter found (session 30), each on synthetic sweeps with known truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import abcscale
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.schemas.fit import ColumnMapping

GROUP = {"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"}


def test_the_python_api_keeps_eval_loss_when_a_mapping_names_other_columns():
    """``abcscale.fit(df, mapping=...)`` wrote every mapping default out as if set, so naming the seed column
    pinned the loss to final_loss where the table's eval_loss is the default (the CLI keeps eval_loss)."""
    base = synthetic_sweep(widths=(64, 128, 256, 512), seeds=2, group=GROUP, lr_base=1e-2)
    # eval_loss: the same curves tilted by a term linear in x = log2 beta, which moves their optimum down
    x, z = np.log2(base["beta"]), np.log2(base["width"] / 64)
    a, b = np.log2(4e-3) - z, np.log2(1e-2) - z
    df = base.assign(eval_loss=base["final_loss"] + 0.02 * ((x - a) ** 2 - (x - b) ** 2))
    plain = abcscale.fit(df, n_boot=50)
    for mapping in ({"seed_col": "seed"}, ColumnMapping(size_col="width")):
        named = abcscale.fit(df, mapping=mapping, n_boot=50)
        assert named.mapping.loss_col == plain.mapping.loss_col == "eval_loss"
        assert named.groups[0].exponent.estimate == plain.groups[0].exponent.estimate
    train = abcscale.fit(df, mapping={"loss_col": "final_loss"}, n_boot=50)
    assert train.mapping.loss_col == "final_loss"
    # the eval loss's optimum, not the train loss's: the two fits are apart
    assert plain.groups[0].law.log2_constant < train.groups[0].law.log2_constant - 0.2


# --- basins that are not quadratic ----------------------------------------------------------------------------

def _asym(seed: int, asymmetry: float, **kw):
    return synthetic_sweep(widths=(64, 128, 256, 512, 1024), asymmetry=asymmetry, seed=seed, **kw)


def test_asymmetric_basins_get_intervals_that_cover_and_a_shared_error_for_the_level():
    """Overshooting 2.5x costlier than undershooting, 3 seeds, a half-octave grid: the quadratic's vertex sits
    0.19 octave low at every width and the seed spread never saw it, so the per-width 95% intervals covered 5%
    of the time and the constant's 29%. A lack-of-fit test now hands the interval the fit's residuals, the
    wider window lets the asymmetric model in (bias 0.19 -> 0.12 octave), and the error the widths share
    enters the constant and the predictions, not the exponent."""
    hits, n, shared, const_hits, exp_hits = 0, 0, 0, 0, 0
    for r in range(16):
        g = abcscale.fit(_asym(100 + r, 2.5), n_boot=200, seed=r, target_width=4096).groups[0]
        for w in g.per_width:
            truth = np.log2(1e-2) - np.log2(w.width / 64)
            hits += np.log2(w.ci.low) <= truth <= np.log2(w.ci.high)
            n += 1
        shared += g.law.shared_var > 0
        const_hits += g.constant_ci.low <= 1e-2 <= g.constant_ci.high
        exp_hits += g.exponent.ci.low <= -1.0 <= g.exponent.ci.high
    assert hits / n >= 0.85, (hits, n)
    # the exponent's interval is a calibrated 95% one (the residuals' own scale): 13 of 16 or more in 99% of runs
    assert shared >= 14 and const_hits >= 14 and exp_hits >= 13
    assert any("not quadratic" in w for w in g.warnings)


def test_a_quadratic_basin_keeps_its_sharp_intervals():
    """No lack of fit beyond what the test's level makes by chance: no shared error, the law as before."""
    shared = said = 0
    for r in range(12):
        g = abcscale.fit(_asym(200 + r, 1.0), n_boot=100, seed=r).groups[0]
        shared += g.law.shared_var > 0
        said += any("not quadratic" in w for w in g.warnings)
    # a false alarm is a binomial tail: with the asymmetry test beside the lack-of-fit one (session 51) 3 of 40
    # fits measured (1 of 40 before); 3 or more of 12 has about 2% chance at that rate
    assert shared <= 2 and said <= 2


@pytest.mark.parametrize(("asymmetry", "least"), [(1.0, 0.9), (2.5, 0.85)])
def test_a_covariate_laws_band_carries_the_error_its_curves_share(asymmetry, least):
    """24 curve optima pooled shrank the band to +-0.085 octave, below the bias every curve shares in a 2.5x
    asymmetric basin: it covered 0%. The shared error is not divided by the number of curves."""
    from tests.fitting.covariate_sweeps import covariate_sweep

    mapping = ColumnMapping(size_col="N", covariates=["D", "batch_size"])
    hits = 0
    for r in range(12):
        law = abcscale.fit(covariate_sweep(seed=300 + r, asymmetry=asymmetry), mapping=mapping, n_boot=100, seed=r,
                           target_width=1024).joint[0]
        p = law.prediction
        truth = (np.log2(1e-2) - 0.8 * np.log2(1024 / 64) - 0.3 * np.log2(p.at["D"] / 4e8)
                 + 0.5 * np.log2(p.at["batch_size"] / 32))
        hits += np.log2(p.ci.low) <= truth <= np.log2(p.ci.high)
        if asymmetry > 1:  # the error every curve shares is said, and carried
            assert law.shared_var > 0
    assert hits / 12 >= least


# --- tables that say less than they seem to -------------------------------------------------------------------

def test_runs_copied_under_new_seed_ids_fit_as_one_seed_and_are_named():
    one = synthetic_sweep(widths=(64, 128, 256, 512), seeds=1, seed=5)
    copied = pd.concat([one, one.assign(seed=1)], ignore_index=True)
    a, b = abcscale.fit(one, n_boot=100, seed=0), abcscale.fit(copied, n_boot=100, seed=0)
    ca, cb = a.groups[0].exponent.ci, b.groups[0].exponent.ci
    assert (cb.low, cb.high) == pytest.approx((ca.low, ca.high), rel=1e-9)  # was 3.7x narrower
    assert any("identical" in w and "copies" in w for w in b.warnings)


def test_two_batch_sizes_on_grids_that_share_no_lr_are_named():
    small = synthetic_sweep(widths=(64, 128, 256), seeds=2, seed=1, lr_base=1e-2)
    large = synthetic_sweep(widths=(64, 128, 256), seeds=2, seed=2, lr_base=2e-2, grid_offset=0.585)
    df = pd.concat([small.assign(batch_size=32), large.assign(batch_size=128)], ignore_index=True)
    assert not set(np.round(np.log2(small["beta"]), 6)) & set(np.round(np.log2(large["beta"]), 6))
    fit = abcscale.fit(df, n_boot=50)
    assert any("batch_size take(s) several values, each on its own learning rates" in w for w in fit.warnings)
    same_grid = pd.concat([small.assign(batch_size=32), small.assign(batch_size=128)], ignore_index=True)
    said = [w for w in abcscale.fit(same_grid, n_boot=50).warnings if "batch_size" in w]
    assert len(said) == 1 and "averaged as if they were seeds" in said[0]  # the other warning, not both


def test_tokens_that_grow_with_width_are_named():
    df = synthetic_sweep(widths=(64, 128, 256, 512), seeds=2, seed=3)
    fit = abcscale.fit(df.assign(tokens=df["width"] ** 2 * 1000), n_boot=50)
    assert any(w.startswith("tokens changes with width") for w in fit.warnings)
    assert not any("tokens" in w for w in abcscale.fit(df.assign(tokens=10**6), n_boot=50).warnings)


def test_a_run_diverging_next_to_the_optimum_is_said_to_be_the_stability_edge():
    """Loss still falling where one of three seeds diverged: "add seeds" was the advice, and more seeds censor
    more cells (a learning rate is stable only when all its seeds are)."""
    df = synthetic_sweep(widths=(64, 128, 256), seeds=3, seed=4, edge_octaves=None)
    x = np.log2(df["beta"]) - (np.log2(1e-2) - np.log2(df["width"] / 64))
    hit = (x > -0.2) & (df["seed"] == 0)  # one seed diverges from the optimum up
    df = df.assign(final_loss=df["final_loss"].where(~hit), diverged=hit | (x > 0.3))
    df.loc[df["diverged"], "final_loss"] = np.nan
    messages = [w.message or "" for w in abcscale.fit(df, n_boot=50).groups[0].per_width]
    assert any("up to the stability edge" in m and "more seeds would not help" in m for m in messages), messages
    assert not any("add seeds" in m for m in messages)


def test_two_widths_assume_the_typical_scatter_between_widths():
    """With two widths nothing estimates the scatter of the optima off the line: a "95%" interval that
    assumed none covered 70% (0.15-octave scatter) and rejected a right theory 30% of the time."""
    from abcscale.fitting.synthetic import misspecified_sweep

    rng = np.random.default_rng(42)
    group = {"parameterization": "mup", "optimizer": "adam", "alignment": "full", "lr_mode": "per_layer"}
    wrong = 0
    for r in range(40):
        df, truth = misspecified_sweep(rng, theory_exponent=0.0, group=group, exponent_sd=0.0, widths=(32, 256),
                                       targets=(1024,))
        g = abcscale.fit(df, n_boot=100, seed=r).groups[0]
        wrong += g.consistent is False
    assert wrong <= 4
    assert any("typical between-width scatter" in w for w in g.warnings)
