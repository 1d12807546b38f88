"""Session 47, a platform engineer's review: `fit --base-width` (C's reference width) moved the per-layer LRs of
a per_layer table, whose beta refers to the table's own base_width column: the hidden LR at 1024 came out 8x too
small from a table swept at base 128 and fitted with --base-width 16, and `check --fit` failed a right config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import abcscale
from abcscale.fitting import fit_table
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.fitting.table import TableError
from abcscale.schemas.fit import FitResult


def _table():
    return synthetic_sweep(widths=(64, 128, 256, 512), exponent=0.0, base_width=128, lr_base=1e-2, seeds=2,
                           group={"parameterization": "mup", "optimizer": "adam", "lr_mode": "per_layer"})


def _layers(fit):
    (g,) = fit.groups
    return {s.layer.value: s.lr for s in g.prediction.layers}, g.prediction.lr


@pytest.mark.parametrize("base", [16, 64, 512])
def test_c_s_reference_width_does_not_move_the_per_layer_lrs(base):
    table = _table()
    ref = fit_table(table, target_width=1024, n_boot=50)
    moved = fit_table(table, target_width=1024, base_width=base, n_boot=50)
    (lrs, beta), (lrs_moved, beta_moved) = _layers(ref), _layers(moved)
    assert beta_moved == pytest.approx(beta, rel=1e-9)  # the fitted LR never moved
    assert lrs_moved == pytest.approx(lrs, rel=1e-9)
    # muP + Adam per layer: lr_hidden = beta (n / 128)^-1, from the table's base width (as the runner set it),
    # whatever width C is said at
    assert lrs["hidden"] == pytest.approx(beta * (1024 / 128) ** -1, rel=1e-9)
    (g,) = moved.groups
    assert g.base_width == base and g.lr_base_width == 128
    assert ref.groups[0].lr_base_width is None  # the same width: nothing new in the file


def test_a_fit_without_the_field_reads_as_before(tmp_path):
    fit = fit_table(_table(), target_width=1024, n_boot=50)
    data = fit.model_dump(mode="json")
    for g in data["groups"]:
        g.pop("lr_base_width")
    again = FitResult.model_validate(data)
    assert _layers(again) == _layers(fit)


# --- a notebook user's review of the Python API ----------------------------------------------------------------

AXES = Path(__file__).resolve().parents[2] / "examples" / "axes.csv"
SETUP = {"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"}


def test_a_history_of_two_logged_steps_is_refused():
    """Each run at two logged steps (`_step` 1000 and 2000): the early rows were averaged with the final ones as
    seeds, 0.54 octave off at 2048, without a word (the check wanted 3 steps or more)."""
    final = synthetic_sweep(widths=(64, 128, 256, 512), exponent=-1.0, lr_base=1e-2, base_width=64, seeds=2, seed=1)
    early = final.assign(final_loss=final["final_loss"] * 1.3, diverged=False, _step=1000)
    table = pd.concat([final.assign(_step=2000), early], ignore_index=True)
    with pytest.raises(TableError, match=r"_step: the table holds each run at several steps \(2 values: 1000, 2000\)"):
        abcscale.fit(table, n_boot=30, target_width=2048, **SETUP)
    # two budgets, each its own configuration (a batch size differs too): not a history; said as a mixed setup
    two = pd.concat([final.assign(batch_size=32, _step=2000), final.assign(batch_size=64, _step=1000)])
    fitted = abcscale.fit(two, n_boot=30, target_width=2048, **SETUP)
    assert any("batch_size" in w for w in [*fitted.warnings, *fitted.groups[0].warnings])


@pytest.fixture(scope="module")
def joint():
    return abcscale.fit(pd.read_csv(AXES), mapping={"size_col": "N", "size_kind": "params",
                                                     "covariates": ["D", "batch_size"]}, n_boot=30)


def test_predict_takes_widths_and_sizes_as_every_entry_point_does(joint):
    fit = abcscale.fit(synthetic_sweep(widths=(64, 128, 256), seeds=2), n_boot=30, **SETUP)
    assert abcscale.predict(fit, 4096.0).lr == abcscale.predict(fit, 4096).lr  # "must be a whole number, got 4096.0"
    for bad in (1.5, 2**41, 0, "4096", True):
        with pytest.raises(ValueError, match="^width: "):
            abcscale.predict(fit, bad)
    with pytest.raises(ValueError, match="^width: "):  # the joint path checked nothing: LR* 1e4 at a size of 1.5
        abcscale.predict(joint, -1, at={"D": 4e8, "batch_size": 32})
    with pytest.raises(ValueError, match=r"at: D: expected a number, got '4e10'"):  # a TypeError traceback
        abcscale.predict(joint, 2_000_000_000, at={"D": "4e10"})


def test_a_joint_prediction_far_past_the_sizes_is_unreliable(joint):
    """1950x the largest swept size (a target with three zeros too many) passed `--strict`, as widths did before
    their 1024x rule; in parameters the rule is 1024^2."""
    largest = float(pd.read_csv(AXES)["N"].max())
    near = abcscale.predict(joint, largest * 100, at={"D": 4e8, "batch_size": 32})
    assert not any("beyond" in u for u in near.unreliable)
    far = abcscale.predict(joint, largest * 1024**2 * 2, at={"D": 4e8, "batch_size": 32})
    assert any("past the largest swept size" in u for u in far.unreliable)


def test_a_joint_groups_numbers_match_as_the_plain_paths_do():
    table = pd.read_csv(AXES)
    both = pd.concat([table.assign(depth=8), table.assign(depth=4, final_loss=table["final_loss"] * 1.01)])
    fit = abcscale.fit(both, mapping={"size_col": "N", "size_kind": "params", "covariates": ["D", "batch_size"],
                                      "group_cols": ["depth"]}, n_boot=20)
    at = {"D": 4e8, "batch_size": 32}
    assert abcscale.predict(fit, 2e9, at=at, group={"depth": 8.0}).lr == abcscale.predict(
        fit, 2e9, at=at, group={"depth": 8}).lr
    assert np.isfinite(abcscale.predict(fit, 2e9, at=at, group="depth=8").lr)


def test_a_constant_beta_beside_a_swept_lr_says_which_is_the_lr():
    """Adam's beta (0.9) in a `beta` column beside the swept `lr`: the fit read beta as the LR and spoke of diverged
    grids and group columns."""
    table = synthetic_sweep(widths=(64, 128, 256), seeds=2).rename(columns={"beta": "lr"}).assign(beta=0.9)
    with pytest.raises(TableError, match=r"beta: one value \(0\.9\) in every row.*lr looks like the learning rate"):
        abcscale.fit(table, n_boot=30, **SETUP)
    assert abcscale.fit(table, mapping={"lr_col": "lr"}, n_boot=30, **SETUP).groups[0].exponent is not None


def test_theory_table_names_its_arguments_and_takes_an_array():
    assert len(abcscale.theory_table("mup", "adam", np.array([0.5, 0.5, 1.0]))) == 3  # "got np.float64(0.5)"
    with pytest.raises(ValueError, match="^parameterization: unknown parameterization 'mupp'"):
        abcscale.theory_table("mupp")
    with pytest.raises(ValueError, match="^optimizer: unknown optimizer 'adamm'"):
        abcscale.theory_table("mup", "adamm")
