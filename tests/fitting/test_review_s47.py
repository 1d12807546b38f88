"""Session 47, a platform engineer's review: `fit --base-width` (C's reference width) moved the per-layer LRs of
a per_layer table, whose beta refers to the table's own base_width column: the hidden LR at 1024 came out 8x too
small from a table swept at base 128 and fitted with --base-width 16, and `check --fit` failed a right config."""

from __future__ import annotations

import pytest

from abcscale.fitting import fit_table
from abcscale.fitting.synthetic import synthetic_sweep
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
