"""Session 62 (a review of parameter-count tables with covariates): ``abcscale.predict`` on a fit with a joint law
and no ``at=`` says to give ``at=`` (it listed every curve as a group to choose from: 35 in the review)."""

from __future__ import annotations

from pathlib import Path

import pytest

import abcscale
from abcscale.schemas.fit import ColumnMapping

AXES = Path(__file__).resolve().parents[1] / "examples" / "axes.csv"


@pytest.fixture(scope="module")
def fit():
    mapping = ColumnMapping(size_col="N", size_kind="params", covariates=["D", "batch_size"])
    return abcscale.fit(AXES, mapping=mapping, n_boot=50)


def test_without_at_the_joint_law_is_named(fit):
    assert fit.joint and len(fit.groups) > 1
    with pytest.raises(ValueError, match=r"^at: this fit has covariates \(D, batch_size\) and a joint law .*give at="):
        abcscale.predict(fit, 2_000_000_000)


def test_with_at_or_a_group_it_predicts(fit):
    assert abcscale.predict(fit, 2_000_000_000, at={"D": 1e10}).lr > 0
    one = fit.groups[0].group
    assert abcscale.predict(fit, 2_000_000_000, group=one).lr > 0
