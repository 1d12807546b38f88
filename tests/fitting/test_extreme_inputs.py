"""The fitter at the edges of floating point (session 29's bad-input hunt): loss laws of losses near 1e+-154,
bands wider than a float, percentile intervals that exclude their estimate, integers beyond any float, and a
header of 200,000 columns."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from abcscale.fitting import TableError, read_table
from abcscale.fitting.losslaw import _loss_unit, fit_loss_law, fit_loss_surface
from abcscale.fitting.predict import MAX_LOG2_LR, predict_group
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.fitting.table import LOSS_RANGE, _to_number
from abcscale.schemas.api import FitOptions
from abcscale.usecases.fits import fit_sweep, plot_fit

WIDTHS = np.array([64, 128, 256, 512, 1024.0])


def _law(factor: float):
    best = (2.0 + 5.0 * WIDTHS**-0.5) * factor
    draws = best[:, None] * (1 + 0.01 * np.random.default_rng(0).standard_normal((5, 60)))
    return fit_loss_law(WIDTHS, best, draws, 200, np.random.default_rng(1))


@pytest.mark.parametrize("factor", [1e154, 1e-160, 1e300])
def test_the_loss_law_is_the_same_law_in_any_unit(factor):
    # squares of losses near 1e154 overflowed: the law came back NaN, was stored as null, and never read back
    one, far = _law(1.0), _law(factor)
    assert far.alpha.estimate == pytest.approx(one.alpha.estimate, rel=1e-9)
    assert far.E.estimate / factor == pytest.approx(one.E.estimate, rel=1e-9)
    assert far.A.estimate / factor == pytest.approx(one.A.estimate, rel=1e-9)
    assert np.isfinite([far.E.ci.low, far.E.ci.high, far.A.se, far.alpha.se]).all()
    assert far.identified == one.identified


def test_the_loss_law_of_ordinary_losses_is_bit_identical_to_before():
    # the unit is 1 for losses within 2^+-64, so ordinary fits take the path they took before; beyond, a power
    # of two near the median (dividing by it is exact)
    assert _loss_unit(np.array([3.0, 2.5])) == 1.0 and _loss_unit(np.array([2.0**60])) == 1.0
    assert _loss_unit(np.array([1e154])) == 2.0 ** round(np.log2(1e154))
    assert _law(0.25).alpha.estimate == _law(1.0).alpha.estimate


def test_the_loss_surface_is_the_same_law_in_any_unit():
    N = np.repeat([1e6, 4e6, 1.6e7, 6.4e7], 3)
    D = np.tile([1e8, 1e9, 1e10], 4)
    L = 1.7 + 400 * N**-0.3 + 600 * D**-0.28
    one = fit_loss_surface(N, D, L, n_boot=40, rng=np.random.default_rng(0))
    far = fit_loss_surface(N, D, L * 1e200, n_boot=40, rng=np.random.default_rng(0))
    assert far.alpha.estimate == one.alpha.estimate and far.beta.estimate == one.beta.estimate
    assert far.E.estimate / 1e200 == pytest.approx(one.E.estimate, rel=1e-12)


@pytest.fixture(scope="module")
def sweep() -> pd.DataFrame:
    return synthetic_sweep(seeds=2, group={"parameterization": "mup", "optimizer": "adam"})


@pytest.mark.parametrize("factor", [1e31, 1e-31])
def test_a_table_of_losses_beyond_the_fitters_range_is_refused_with_the_remedy(sweep, factor):
    # at 1e300 the per-width optima drifted (differences of squares lost to rounding): a wrong answer, silently
    with pytest.raises(TableError, match="divide the column by a constant") as exc:
        fit_sweep(sweep.assign(final_loss=sweep.final_loss * factor), FitOptions(n_boot=20))
    assert f"{LOSS_RANGE[0]:g}" in exc.value.problems[0]


def test_losses_scaled_within_the_range_give_the_same_optima(sweep):
    one = fit_sweep(sweep, FitOptions(n_boot=20))
    big = fit_sweep(sweep.assign(final_loss=sweep.final_loss * 1e20), FitOptions(n_boot=20))
    a, b = one.groups[0], big.groups[0]
    assert [w.lr_opt for w in b.per_width] == pytest.approx([w.lr_opt for w in a.per_width], rel=1e-6)
    assert b.exponent.estimate == pytest.approx(a.exponent.estimate, rel=1e-6)


def test_a_band_beyond_the_float_range_is_a_value_error_naming_the_width(sweep):
    two = sweep[sweep.width.isin([64, 128])].drop(columns=["parameterization", "optimizer"]).copy()
    two.loc[two.width == 128, "width"] = 65  # two close widths: a free line whose band explodes far out
    g = fit_sweep(two, FitOptions(n_boot=20)).groups[0]
    assert predict_group(g, 4096).lr > 0  # near enough: a (very wide) band
    with pytest.raises(ValueError, match=r"^width: at 1099511627776 the predicted LR band reaches 2\^") as exc:
        predict_group(g, 2**40)
    assert float(str(exc.value).split("2^")[1].split(",")[0]) < -MAX_LOG2_LR


def test_plots_draw_intervals_that_exclude_their_estimate(tmp_path):
    # a 10% percentile interval need not contain the point estimate; error bars (offsets) cannot draw that, and
    # matplotlib refused: "'xerr' must not contain negative values"
    # (noisier since session 36 pooled one seed's noise over the widths, which made these intervals symmetric)
    sweep = synthetic_sweep(seeds=1, noise=0.01, seed=1, group={"parameterization": "mup", "optimizer": "adam"})
    fit = fit_sweep(sweep, FitOptions(n_boot=200, confidence_level=0.1, target_width=4096))
    outside = [w for w in fit.groups[0].per_width if w.ci and not w.ci.low <= w.lr_opt <= w.ci.high]
    assert outside  # the case is real at this level
    written = plot_fit(fit, sweep, tmp_path)
    assert sorted(written) == ["loss_vs_lr", "loss_vs_width", "lr_vs_width"]
    assert all(p.stat().st_size > 1000 for p in written.values())


def test_integers_beyond_any_float_become_infinite_not_an_overflow_error():
    s = pd.Series([1, 10**400, -(10**400), "x", True, None], dtype=object)
    got = _to_number(s).tolist()
    assert got[:3] == [1.0, np.inf, -np.inf] and all(np.isnan(got[3:]))
    assert _to_number(pd.Series([1.5, 2])).tolist() == [1.5, 2.0]  # the ordinary path, as pandas reads it


def test_a_header_of_200k_columns_is_refused_before_parsing():
    header = ",".join(f"c{i}" for i in range(200_003))
    data = (header + "\n" + "\n".join([",".join(["1"] * 200_003)] * 5)).encode()
    t0 = time.perf_counter()
    with pytest.raises(TableError, match="200003 columns"):
        read_table(data, "csv", max_rows=1_000_000, max_cells=20_000_000)
    assert time.perf_counter() - t0 < 5  # the duplicate-name check alone was quadratic: minutes
    with pytest.raises(TableError, match="duplicated column"):
        read_table(b"a,b,a\n1,2,3\n", "csv")


def test_a_width_whose_every_lr_lost_one_seed_says_so_not_that_every_run_diverged():
    df = synthetic_sweep(seeds=2, group={"parameterization": "mup", "optimizer": "adam"})
    df.loc[df.seed == 1, "final_loss"] = np.nan  # seed 1 diverged everywhere, seed 0 nowhere
    fit = fit_sweep(df, FitOptions(n_boot=20))
    messages = [w.message for w in fit.groups[0].per_width]
    n = int((df.width == 64).sum())
    assert messages[0].startswith("every learning rate at this width has a diverged run")
    k = int(messages[0].split("(")[1].split(" of ")[0])
    assert n // 2 <= k < n and f"of {n} runs diverged" in messages[0]  # seed 1's, and seed 0's at its edge
    assert not any(m.startswith("every run at this width diverged") for m in messages)


# --- the Python API and real tables (session 29's second hunt) -----------------------------------------


def test_empty_diverged_cells_are_not_flagged(sweep):
    # pandas 3 keeps NaN through astype(str): a blank cell read "nan" and was refused as not true/false
    d = sweep.astype({"diverged": object})
    d["diverged"] = np.where(sweep.diverged, "True", None)
    a, b = fit_sweep(sweep, FitOptions(n_boot=20)), fit_sweep(d, FitOptions(n_boot=20))
    assert a.groups[0].n_diverged == b.groups[0].n_diverged
    assert a.groups[0].exponent.estimate == b.groups[0].exponent.estimate


def test_a_row_index_written_out_does_not_hide_repeated_runs(sweep):
    twice = pd.concat([sweep, sweep.iloc[:10]], ignore_index=True)
    twice.insert(0, "Unnamed: 0", np.arange(len(twice)))
    assert any(w.startswith("repeated runs") for w in fit_sweep(twice, FitOptions(n_boot=20)).warnings)


def test_a_diverged_or_seed_column_spelt_otherwise_is_named_not_ignored(sweep):
    # a finite last loss on the diverged runs: ignoring "Diverged" put the largest stable LR 3x too high
    d = sweep.rename(columns={"diverged": "Diverged"})
    with pytest.raises(TableError, match="Diverged: looks like the diverged column; name it with diverged_col"):
        fit_sweep(d, FitOptions(n_boot=20))
    named = fit_sweep(d, FitOptions(n_boot=20, diverged_col="Diverged"))
    assert named.groups[0].n_diverged == fit_sweep(sweep, FitOptions(n_boot=20)).groups[0].n_diverged
    with pytest.raises(TableError, match="Seed: looks like the seed column"):
        fit_sweep(sweep.rename(columns={"seed": "Seed"}), FitOptions(n_boot=20))


def test_theory_per_parameter_is_half_theorys_slope_per_width():
    # N ~ width^2: LR* ~ w^-1 is N^-0.5, and comparing it with -1 called a right sweep inconsistent
    df = synthetic_sweep(seeds=2, group={"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"})
    d = df.assign(params=12 * 8 * df.width**2).drop(columns=["width", "base_width"])
    g = fit_sweep(d, FitOptions(n_boot=50, size_col="params", size_kind="params")).groups[0]
    assert g.theory_exponent == -0.5 and g.consistent is True
    assert g.exponent.estimate == pytest.approx(-0.5, abs=0.05)


def test_negative_losses_are_refused_not_misread(sweep):
    # factor x best lies below a negative best, and the loss bands and penalties are shares of the best: since
    # session 32 such a table is refused with its fix (a constant offset) rather than fitted with bands that
    # span the grid at a 0% penalty (tests/fitting/test_fit_review_s32.py)
    with pytest.raises(TableError, match="needs positive losses"):
        fit_sweep(sweep.assign(final_loss=sweep.final_loss - 10), FitOptions(n_boot=20))
    shifted = fit_sweep(sweep.assign(final_loss=sweep.final_loss + 10), FitOptions(n_boot=20)).groups[0]
    plain = fit_sweep(sweep, FitOptions(n_boot=20)).groups[0]
    assert shifted.exponent.estimate == pytest.approx(plain.exponent.estimate, abs=0.05)  # the offset the fix adds


def test_an_unknown_name_gets_no_theory_exponent_in_per_layer_mode_too(sweep):
    d = sweep.assign(parameterization="xyz", lr_mode="per_layer")
    g = fit_sweep(d, FitOptions(n_boot=20)).groups[0]
    assert g.theory_exponent is None and any("unknown parameterization 'xyz'" in w for w in g.warnings)


def test_a_semicolon_csv_is_read_and_decimal_commas_are_named(sweep):
    semi = read_table(sweep.to_csv(index=False, sep=";").encode(), "csv")
    assert list(semi.columns) == list(sweep.columns)  # it was one column, "width;base_width;...": "missing"
    european = read_table(sweep.to_csv(index=False, sep=";", decimal=",").encode(), "csv")
    with pytest.raises(TableError, match=r"beta: not a number in .* \(the first: '0,0.*'\) \(a decimal comma"):
        fit_sweep(european, FitOptions(n_boot=20))


@pytest.mark.parametrize(("data", "what"), [(b"PK\x03\x04rest", "zip archive"), (b"\x1f\x8b\x08rest", "gzip"),
                                            ("width,beta\n".encode("utf-16"), "UTF-16")])
def test_files_of_another_format_are_named_not_parsed(data, what):
    with pytest.raises(TableError, match=f"looks like .*{what}"):
        read_table(data, "csv")


def test_group_values_differing_only_in_spaces_are_one_group(sweep):
    d = sweep.astype({"parameterization": object})
    d.loc[d.index % 2 == 0, "parameterization"] = " mup "
    fit = fit_sweep(d, FitOptions(n_boot=20))
    assert [g.group["parameterization"] for g in fit.groups] == ["mup"]
