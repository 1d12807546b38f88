"""An edge predicted below LR* makes the prediction unreliable (session 62, a user review: a MuAdam sweep whose
edge line through 2 widths' brackets put the edge 12x under LR* at 8x extrapolation; `unreliable` was empty and
`--strict` passed). At every swept width LR* lay under its edge, so the two lines cross on the way out and one of
them is wrong there."""

from __future__ import annotations

import numpy as np
import pytest

from abcscale.fitting import fit_table
from abcscale.fitting.predict import predict_group
from tests.fitting.test_safe_side_edge_s60 import _table


@pytest.fixture(scope="module")
def group():
    return fit_table(_table(0, setup=False), n_boot=50, target_width=4096).groups[0]


def test_an_edge_above_lr_star_leaves_the_prediction_reliable(group):
    p = group.prediction
    assert p.stability_edge_lr > p.lr
    assert not [u for u in p.unreliable if "stability edge" in u]


@pytest.mark.parametrize(("shift", "below"), [(-1.5, False), (-3.0, True), (-6.0, True)])
def test_an_edge_below_lr_star_is_unreliable_naming_both(group, shift, below):
    law = group.edge_law
    low = group.model_copy(update={"edge_law": law.model_copy(update={"log2_constant": law.log2_constant + shift})})
    p = predict_group(low, 4096)
    assert (p.stability_edge_lr < p.lr) == below  # 1.5 octaves down it is still (just) above LR*
    if not below:
        assert not [u for u in p.unreliable if "stability edge" in u]
        return
    said = [u for u in p.unreliable if "stability edge" in u]
    assert len(said) == 1, p.unreliable
    assert f"({p.stability_edge_lr:.3g})" in said[0] and f"({p.lr:.3g})" in said[0]
    assert "widths 64, 128, 256, 512" in said[0] and f"{law.exponent:+.3g}" in said[0]


def test_the_review_case_crosses():
    # the helper's numbers: an edge line through 2 widths (512, 1024), exponent -1.66, under a flat LR* law
    g = fit_table(_table(1, setup=False), n_boot=50, target_width=4096).groups[0]
    law = g.edge_law
    steep = g.model_copy(update={"edge_law": law.model_copy(update={"exponent": law.exponent - 1.0})})
    p = predict_group(steep, 4096)
    assert np.log2(p.stability_edge_lr) < np.log2(p.lr)
    assert any("lies below the predicted LR*" in u for u in p.unreliable)
