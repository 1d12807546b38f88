"""Session 59: a covariate law's between-curve scatter tau^2 with one seed on a rounded coarse grid.

A session-58 review's tables (4 sizes x 3 token budgets x 2 batch sizes, one seed, each curve's optimum jittered
0.1 octave off the law, a rounded 1-1.5-2-3-5-7 x 10^k grid, runs above 2x LR* diverged) put tau^2 at 0 in 8 of
50 (median 0.0068 for a true 0.0100), and a new curve's 95% band covered 76% at an unswept combination inside the
ranges. Each curve's own error, what tau^2 is measured against, was its bootstrap's variance, which draws the noise
level from its posterior: with one seed that level comes from the widths' pooled residuals, about one degree of
freedom per width on such a grid (4-5 in all here), so the draws spread as a t with 4-5 df, read as a variance 1.7-2.0x
the one at the measured noise level; over those tables 0.0205 octave^2 on average for optima that erred by 0.0079,
more than the jitter's 0.0100 besides. fitting.joint.error_variance reads each curve's error back at the measured
noise level, with the dof the fitter drew it with (WidthOptimum.noise_dof: fitting.optimum's sigma_dof).
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import abcscale
from abcscale.fitting.joint import Curve, error_variance, fit_joint, group_curves
from abcscale.fitting.optimum import Cells, pooled_noise, residual_noise
from abcscale.schemas.fit import GroupFit
from tests.fitting.covariate_sweeps import covariate_sweep

JITTER = 0.1
NICE = np.array([1.0, 1.5, 2.0, 3.0, 5.0, 7.0])
GRID = np.sort(np.concatenate([NICE * 10.0**k for k in range(-6, 1)]))


def rounded_grid_table(seed: int) -> tuple[pd.DataFrame, dict[tuple[float, float, float], float]]:
    """The review's design: log2 LR* = log2 1e-2 - log2(N/64) - 0.3 log2(D/1e9) + 0.5 log2(B/64) + jitter, the loss
    L(N, D) + 0.03 (log2 lr - log2 LR*)^2 + noise (sd 0.004), on the rounded grid within +-3 octaves of a guess
    off by up to 0.75 octave; runs above 2 LR* diverged. With each curve's log2 LR*, by (N, D, B)."""
    rng = np.random.default_rng(seed)
    rows, truth = [], {}
    for n, d, b in itertools.product((64, 128, 256, 512), (2.5e8, 1e9, 4e9), (32, 128)):
        x_star = (math.log2(1e-2) - math.log2(n / 64) - 0.3 * math.log2(d / 1e9) + 0.5 * math.log2(b / 64)
                  + JITTER * rng.standard_normal())
        truth[(float(n), d, float(b))] = x_star
        guess = x_star + rng.uniform(-0.75, 0.75)
        best = 2.0 + 6.0 * (n / 64) ** -0.5 + 30.0 * (d / 1e8) ** -0.3
        for lr in GRID[np.abs(np.log2(GRID) - guess) < 3.0]:
            x = math.log2(lr)
            diverged = x > x_star + 1.0
            loss = math.nan if diverged else best + 0.03 * (x - x_star) ** 2 + 0.004 * rng.standard_normal()
            rows.append({"width": n, "D": d, "batch_size": b, "beta": float(lr), "seed": 0, "final_loss": loss,
                         "diverged": diverged})
    return pd.DataFrame(rows), truth


def _fit(table: pd.DataFrame, covariates: list[str], **mapping: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return abcscale.fit(table, mapping={"covariates": covariates, **mapping}, n_boot=200)


@pytest.mark.parametrize("dof", [4, 8, 13])
def test_a_t_spread_is_read_back_to_the_error_at_the_measured_noise_level(dof):
    # a bootstrap at noise level sigma * sqrt(dof / chi2_dof) (fitting.optimum._bootstrap_grid), its variance read
    # from its central 95% (fitting.optimum._interval_var): 2.0x / 1.38x / 1.22x the variance at sigma
    rng = np.random.default_rng(dof)
    draws = rng.standard_normal(400_000) * np.sqrt(dof / rng.chisquare(dof, 400_000))
    lo, hi = np.quantile(draws, [0.025, 0.975])
    read = float((hi - lo) / (2 * stats.norm.ppf(0.975))) ** 2
    assert read > 1.2
    assert error_variance(read, dof) == pytest.approx(1.0, rel=0.03)
    assert error_variance(read, 0) == read  # no noise level drawn (or not known): as read


def test_tau2_is_measured_against_each_curves_error_at_its_noise_level():
    # 24 curves whose optima err by sd 0.09 around a law with a 0.1 scatter, each error reported as a bootstrap with
    # 4 df reads it (2.0x); 200 such tables: 0.0102 on average measured against the error read back, 0.0034 (0 in 39%
    # of them) against the error as read
    rng = np.random.default_rng(59)
    sizes, d, b = (np.array(v, dtype=float).ravel() for v in np.meshgrid([64, 128, 256, 512], [2.5e8, 1e9, 4e9],
                                                                          [32, 128], indexing="ij"))
    law = -6.6 - np.log2(sizes / 64) - 0.3 * np.log2(d / 1e9) + 0.5 * np.log2(b / 64)
    kw = {"covariates": ["D", "batch_size"], "size_col": "width", "size_kind": "width", "base_size": 64,
          "level": 0.95}
    err_var = 0.09**2
    read = err_var * (stats.t.ppf(0.975, 4) / stats.norm.ppf(0.975)) ** 2
    got, as_read = [], []
    for _ in range(200):
        y = law + JITTER * rng.standard_normal(law.size) + math.sqrt(err_var) * rng.standard_normal(law.size)
        for dof, out in ((4.0, got), (0.0, as_read)):
            curves = [Curve(s, (x1, x2), yi, 0.04, None, 0.0, read, dof) for s, x1, x2, yi in zip(sizes, d, b, y,
                                                                                                  strict=True)]
            out.append(fit_joint({}, curves, **kw)[0].tau2)
    assert np.mean(got) == pytest.approx(JITTER**2, rel=0.12), np.mean(got)
    assert np.mean(as_read) < 0.5 * JITTER**2  # the old reading


@pytest.fixture(scope="module")
def rounded_fits():
    out = []
    for t in range(10):
        table, truth = rounded_grid_table(5900 + t)
        out.append((_fit(table, ["D", "batch_size"]), truth))
    return out


def _cells(table: pd.DataFrame, group: dict, size_col: str, size: float) -> Cells:
    """The cells fitting.optimum fitted one curve's optimum from (x = log2 LR)."""
    rows = table[(table[size_col] == size) & np.logical_and.reduce([table[k] == v for k, v in group.items()])]
    loss = rows["final_loss"].to_numpy(dtype=float)
    if "diverged" in rows:
        loss = np.where(rows["diverged"].to_numpy(dtype=bool), np.nan, loss)
    return Cells.of_runs(np.log2(rows["beta"].to_numpy(dtype=float)), loss, rows["seed"].to_numpy())


def test_each_curve_keeps_the_dof_its_noise_level_was_drawn_with():
    # two seeds: the seeds' spread over the stable cells (a seed less per cell, 13 on the half-octave grid); one
    # seed: the group's pooled residuals (each width's local quadratic leaves its window's cells less 3: 8 over 4
    # sizes) -- as fitting.optimum drew them, no longer inferred from the grid step and window cells (which read
    # 9 for these 8, 26 for a quarter-octave grid's 23, and 0 for a noisy one's 23)
    for seeds in (2, 1):
        table = covariate_sweep(batches=(32,), seeds=seeds, jitter=0.05, seed=5910 + seeds)
        fit = _fit(table, ["D"], size_col="N")
        checked = 0
        for g in fit.groups:
            cells = {o.width: _cells(table, g.group, "N", o.width) for o in g.per_width}
            pooled = pooled_noise(residual_noise(c) for c in cells.values())
            for o in g.per_width:
                if o.noise_sd is None:
                    assert o.noise_dof is None
                    continue
                if o.message is None:  # the plain path: no misfit, the noise level neither replaced nor assumed
                    want = cells[o.width].sd_dof if seeds == 2 else pooled.dof
                    assert o.noise_dof == want, (seeds, g.group, o.width, o.noise_dof, want)
                    checked += 1
        assert checked >= 8, (seeds, checked)
        # and the joint law reads each curve's error back with it (a curve with a misfit beside its noise, shape_sd,
        # as it is)
        by = {(o.width, float(g.group["D"])): o for g in fit.groups for o in g.per_width}
        for _, curves, _ in group_curves(fit.groups, ["D"]):
            for c in curves:
                o = by[(int(c.size), c.x[0])]
                assert c.noise_dof == (o.noise_dof if o.shape_sd is None else 0), (o, c)
        dofs = [c.noise_dof for _, cs, _ in group_curves(fit.groups, ["D"]) for c in cs]
        assert np.median(dofs) == (13.0 if seeds == 2 else 8.0), dofs


def test_a_fit_stored_before_noise_dof_reads_its_noise_as_it_is(rounded_fits):
    # the field is new: a stored fit without it still loads, and its curves' errors are read as their bootstrap's
    # (the reading before; no dof to read them back with)
    fit, _ = rounded_fits[0]
    old = []
    for g in fit.groups:
        d = g.model_dump(mode="json")
        for o in d["per_width"]:
            del o["noise_dof"]
        old.append(GroupFit.model_validate(d))
    ((_, curves, _),) = group_curves(old, ["D", "batch_size"])
    ((_, now, _),) = group_curves(fit.groups, ["D", "batch_size"])
    assert all(o.noise_dof is None for g in old for o in g.per_width)
    assert all(c.noise_dof == 0.0 for c in curves) and len(curves) == len(now)
    assert 4 <= np.median([c.noise_dof for c in now if c.noise_var is not None]) <= 5  # one seed, rounded grid


def test_each_curves_own_error_is_no_longer_twice_its_real_one(rounded_fits):
    # what tau^2 is measured against, curve by curve, against each optimum's real squared error (off its own
    # curve's LR*, the jitter left out): 2.0x before on these tables (1.5-2.8x in 6 sets of 10), 1.1x now (0.8-1.6x)
    own, real = [], []
    for fit, truth in rounded_fits:
        ((_, curves, _),) = group_curves(fit.groups, ["D", "batch_size"])
        own += [min(error_variance(c.noise_var, c.noise_dof), c.var) for c in curves if c.noise_var is not None]
        real += [(c.y - truth[(c.size, *c.x)]) ** 2 for c in curves if c.noise_var is not None]
    assert len(own) > 200
    assert 0.7 < np.mean(own) / np.mean(real) < 1.5, np.mean(own) / np.mean(real)


def test_the_scatter_of_one_seed_curves_on_a_rounded_grid_is_not_lost(rounded_fits):
    tau2 = np.array([fit.joint[0].tau2 for fit, _ in rounded_fits])
    # truth 0.0100; these 10 tables: median 0.0080 before, 0.0115 now. Over 200 of the review's own tables (n_boot
    # 1000): median 0.0066 with 27 at 0 before, 0.0107 with 3 now (0.0106 with 4 with each curve's bootstrap rerun at
    # its measured noise level); over 60 of these (n_boot 200) 0.0075 with 3 at 0 before, 0.0105 with none now
    assert 0.009 < np.median(tau2) < 0.016, tau2
    assert np.sum(tau2 == 0) <= 1, tau2


def test_without_jitter_one_seed_curves_make_no_scatter_to_speak_of():
    # a half-octave grid: 8 dof pooled over 4 sizes, read as about 9; no scatter made out of the curves' noise
    # (200 such tables: median 0.0002 octave^2, mean 0.0004; 0.0000 and 0.0003 before)
    tau2 = [_fit(covariate_sweep(batches=(32,), seeds=1, jitter=0.0, seed=590 + s), ["D"], size_col="N").joint[0].tau2
            for s in range(4)]
    assert np.median(tau2) < 0.002, tau2
