"""What a review of the fitter against known truth found (session 32): a token budget named ``D`` grown with the
width folded into the exponent without a word, parameter counts in a column ``N`` read as widths (a right theory
called inconsistent), and a 31-octave prediction band not called unreliable because its basin was flat."""

from __future__ import annotations

import numpy as np
import pytest

from abcscale.fitting import fit_table, predict_group
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.fitting.table import is_budget_name
from abcscale.schemas.fit import ColumnMapping

WIDTHS = (64, 128, 256, 512)


def _budget_table(name: str):
    """Each width trained at its own token budget, 1e9 * width/64: a compute-optimal path, not a fixed budget."""
    df = synthetic_sweep(WIDTHS, exponent=-1.0, seeds=2, seed=4)
    return df.assign(**{name: (1e9 * df["width"] / 64).astype(np.int64)})


@pytest.mark.parametrize("name", ["D", "n_tokens", "tokens_seen", "global_batch_size", "bsz", "train_steps",
                                  "data_size", "lr_warmup_steps"])
def test_a_budget_grown_with_the_width_is_said_whatever_its_name(name):
    fit = fit_table(_budget_table(name), n_boot=50)
    assert any(w.startswith(f"{name} changes with width") for w in fit.warnings), fit.warnings


def test_columns_derived_from_the_width_or_fixed_are_not_budgets():
    df = synthetic_sweep(WIDTHS, exponent=-1.0, seeds=2, seed=4)
    df = df.assign(n_params=12 * df["width"] ** 2, d_ff=4 * df["width"], tokens=1_000_000, batch=8)
    fit = fit_table(df, n_boot=50)
    assert not [w for w in fit.warnings if "changes with width" in w], fit.warnings
    names = ("D", "Tokens", "batch-size", "data_size", "lr_warmup_steps", "depth", "n_params", "b", "c", "data_hash",
             "tokens_per_sec", "micro_batch_size")
    assert [is_budget_name(n) for n in names] == [True] * 5 + [False] * 7


def test_parameter_counts_in_a_column_n_are_not_read_as_widths_silently():
    df = synthetic_sweep((32, 64, 128), exponent=-1.0, seeds=2, seed=5)
    df = df.assign(N=48 * df["width"] ** 2).drop(columns="width")  # 49k-786k: below any size cap of 2^20
    fit = fit_table(df, ColumnMapping(size_col="N"), n_boot=50)
    assert any("N (4.92e+04 to 7.86e+05) looks like parameter counts" in w for w in fit.warnings), fit.warnings
    as_params = fit_table(df, ColumnMapping(size_col="N", size_kind="params"), n_boot=50)
    assert as_params.groups[0].exponent.estimate == pytest.approx(-0.5, abs=0.1)  # per parameter: half the width's
    widths = fit_table(synthetic_sweep((32, 64, 128), exponent=-1.0, seeds=2, seed=5), n_boot=50)
    assert not [w for w in widths.warnings if "parameter counts" in w]


def test_a_band_too_wide_to_act_on_is_unreliable_even_in_a_flat_basin():
    """Three widths, no theory columns, a flat basin: the free line's band at 8x spans tens of octaves while the
    expected loss penalty stays under 1% (the basin barely curves), so the penalty rule alone passed it."""
    df = synthetic_sweep((64, 128, 256), exponent=-1.0, seeds=2, noise=0.002, curvature=0.002, seed=7)
    g = fit_table(df, n_boot=100).groups[0]
    p = predict_group(g, 256 * 8)
    lo, hi = p.ci95
    assert np.log2(hi / lo) > 4 and p.expected_loss_penalty < 0.05
    assert any("95% band spans" in u for u in p.unreliable), p.warnings
    # a band within 4 octaves says nothing of the kind
    near = predict_group(fit_table(synthetic_sweep(WIDTHS, seeds=3, seed=1), n_boot=100).groups[0], 1024)
    assert np.log2(near.ci95[1] / near.ci95[0]) < 4 and not any("95% band spans" in u for u in near.unreliable)


@pytest.mark.parametrize("shift", ["one", "all"])
def test_losses_at_or_below_zero_are_refused_naming_the_rows(shift, tmp_path, capsys):
    """A negative log-likelihood: one negative loss made the blow-up rule (1.5x the curve's best) flag the rest of
    its width as diverged and drop it with "widen the grid"; all of them shifted below zero made every loss band
    the whole grid at a 0% penalty. Both are refused, with the fix."""
    from abcscale.cli import main
    from abcscale.fitting import TableError

    df = synthetic_sweep(WIDTHS, seeds=2, seed=2)
    if shift == "one":
        df.loc[3, "final_loss"] = -2.0
    else:
        df["final_loss"] -= 10.0
    with pytest.raises(TableError, match="final_loss: the fitter needs positive losses.*add a constant"):
        fit_table(df)
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    with pytest.raises(SystemExit) as exc:
        main(["fit", str(path)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "needs positive losses" in err and "Traceback" not in err


def test_what_the_code_review_found_in_these_rules():
    """Session 32's code review of the rules above: a diverged run logged as loss 0 or -1 beside its diverged flag
    was refused as a negative loss; a `D` column holding the model dim, and FLOPs (which grow with the width by
    construction), were called budgets; a width column named `n` (the theory's own symbol) was called parameter
    counts."""
    df = synthetic_sweep(WIDTHS, seeds=2, seed=2)
    assert df["diverged"].any()
    logged = df.assign(final_loss=np.where(df["diverged"], -1.0, df["final_loss"]))
    assert fit_table(logged, n_boot=20).groups[0].exponent is not None
    derived = df.assign(D=df["width"], flops=6 * 12 * df["width"] ** 2 * 1_000_000)
    assert not [w for w in fit_table(derived, n_boot=20).warnings if "changes with" in w]
    small = synthetic_sweep((32, 64, 128), seeds=2, seed=5)
    named_n = small.rename(columns={"width": "n"})
    assert not [w for w in fit_table(named_n, ColumnMapping(size_col="n"), n_boot=20).warnings
                if "parameter counts" in w]
