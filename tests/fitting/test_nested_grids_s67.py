"""A coarse LR grid and a refined one nested in it under a `stage` label (session 66's note): each holds its own
basin, so both were taken for two configurations and the fit was unreliable (`--strict` exit 1). One setup's two grids
agree where they overlap and share their best LR; two configurations do not, and stay a mix."""

from __future__ import annotations

import pandas as pd
import pytest

import abcscale
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.fitting.table import prepare
from abcscale.usecases.fits import unreliable

WIDTHS = (128, 256, 512, 1024)


def _coarse_and_refine(*, refine_lr_base: float = 0.01, refine_loss: float = 1.0) -> pd.DataFrame:
    coarse = synthetic_sweep(widths=WIDTHS, base_width=128, seeds=2).assign(stage="coarse")
    refine = synthetic_sweep(widths=WIDTHS, base_width=128, seeds=2, step=0.25, half_range=0.75, seed=1,
                             lr_base=refine_lr_base).assign(stage="refine")
    refine["final_loss"] *= refine_loss
    return pd.concat([coarse, refine], ignore_index=True)


def test_a_refined_grid_nested_in_a_coarse_one_is_one_setup():
    df = _coarse_and_refine()
    assert [g.mixed for g in prepare(df).groups] == [()]
    assert not unreliable(abcscale.fit(df, target_width=4096, n_boot=20))


@pytest.mark.parametrize(("lr_base", "loss", "why"), [
    (0.005, 1.0, "the refined basin an octave below the coarse one's"),
    (0.01, 1.03, "the same best LR, 3% more loss: another configuration (a batch size)"),
])
def test_two_configurations_on_nested_grids_stay_a_mix(lr_base, loss, why):
    df = _coarse_and_refine(refine_lr_base=lr_base, refine_loss=loss)
    assert [g.mixed for g in prepare(df).groups] == [("stage",)], why
    assert [r for r in unreliable(abcscale.fit(df, target_width=4096, n_boot=20)) if "differ in stage" in r[1]], why
