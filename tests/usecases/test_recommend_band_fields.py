"""A recommendation from a fit says, as fields of its band, what made the band (theory's prior on the exponent
or the fitted widths alone) and why it should not be acted on (``band.unreliable``), the same reasons the
prediction gives; ``strict`` callers read those fields, never the warnings' text."""

from __future__ import annotations

import pytest

from abcscale.fitting import fit_table, predict_group
from abcscale.fitting.predict import UNRELIABLE
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.schemas.fit import Prediction
from abcscale.schemas.recommend import LrBand, Recommendation
from abcscale.schemas.theory import Interval
from abcscale.usecases import recommend_from_fit

MUP = {"parameterization": "mup", "optimizer": "adam", "alignment": "full", "lr_mode": "per_layer"}


@pytest.fixture(scope="module")
def two_widths():
    """Two widths: any extrapolation from them is unreliable."""
    return fit_table(synthetic_sweep(widths=(64, 128), group=MUP, exponent=0.0, seed=4), n_boot=50)


@pytest.fixture(scope="module")
def three_widths():
    """Three widths and theory's columns: the band leans on theory's exponent."""
    return fit_table(synthetic_sweep(widths=(32, 64, 128), group=MUP, exponent=0.0, seed=4), n_boot=50)


def test_two_width_band_names_why_it_is_unreliable(two_widths):
    rec = recommend_from_fit(two_widths, 512)
    band = rec.band
    assert band is not None and band.unreliable, rec.warnings
    assert any("from 2 widths" in why for why in band.unreliable)
    # the same reasons as the prediction's, and each is still a warning for readers of the text
    assert band.unreliable == predict_group(two_widths.groups[0], 512).unreliable
    assert all(UNRELIABLE + why in rec.warnings for why in band.unreliable)


def test_three_widths_with_theory_is_reliable_and_says_theory_prior(three_widths):
    band = recommend_from_fit(three_widths, 512).band
    law = three_widths.groups[0].law
    assert band is not None and band.unreliable == []
    assert band.method == "theory_prior" == law.method
    assert band.prior_exponent == law.prior_mean == three_widths.groups[0].theory_exponent
    assert band.prior_sd == law.prior_sd and band.prior_sd > 0


def test_without_theory_columns_the_band_is_free():
    fit = fit_table(synthetic_sweep(widths=(32, 64, 128), exponent=0.0, seed=4), n_boot=50)
    band = recommend_from_fit(fit, 512, selector={"parameterization": "mup", "optimizer": "adam",
                                                  "lr_mode": "per_layer"}).band
    assert band is not None and band.method == "free" and band.prior_sd is None and band.prior_exponent is None


def test_band_of_copies_the_prediction_fields():
    pred = Prediction(width=512, lr=1e-2, ci=Interval(low=5e-3, high=2e-2, confidence_level=0.9),
                      ci68=(8e-3, 1.2e-2), ci95=(5e-3, 2e-2), safe_lr=8e-3, expected_loss_penalty=0.2,
                      extrapolation_factor=4.0, method="free", unreliable=["a huge penalty"])
    band = LrBand.of(pred, {"hidden": 1e-3})
    assert (band.method, band.unreliable, band.base_lr, band.layer_lrs) == ("free", ["a huge penalty"], 1e-2,
                                                                            {"hidden": 1e-3})


def test_an_answer_stored_before_the_fields_still_reads(three_widths):
    """A band serialized without the new fields (an older client's or service's) validates: nothing recorded."""
    rec = recommend_from_fit(three_widths, 512).model_dump(mode="json")
    for key in ("method", "prior_exponent", "prior_sd", "unreliable"):
        del rec["band"][key]
    band = Recommendation.model_validate(rec).band
    assert band is not None and band.method is None and band.unreliable == []
