"""A notebook user's review of the Python API (session 78): numbers read from a DataFrame (numpy scalars and arrays)
refused where plain ones pass, and a fit's one-line summary saying other counts and levels in Python than
`abcscale fit --summary` for the same fit."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def axes_fit():
    table = pd.read_csv(EXAMPLES / "axes.csv")
    fit = abcscale.fit(table, mapping={"size_col": "N", "size_kind": "params", "covariates": ["D", "batch_size"]},
                       n_boot=50)
    return table, fit


def test_predict_at_takes_numpy_numbers_as_fit_does(axes_fit):
    table, fit = axes_fit
    batch = table["batch_size"].max()  # np.int64, as a DataFrame gives it
    assert isinstance(batch, np.integer)
    plain = abcscale.predict(fit, 2e9, at={"D": 4e10, "batch_size": int(batch)})
    for d, b in ((np.float32(4e10), batch), (np.float64(4e10), np.int32(batch))):
        got = abcscale.predict(fit, 2e9, at={"D": d, "batch_size": b})
        assert got.lr == pytest.approx(plain.lr, rel=1e-6)  # float32's 4e10 is 4e10 to 7 digits
    for bad in (True, np.bool_(True), "4e10", np.float64("nan")):
        with pytest.raises(ValueError, match=r"at: D: expected a (positive )?number"):
            abcscale.predict(fit, 2e9, at={"D": bad})


def test_from_mup_takes_a_numpy_array_per_role_as_a_list():
    as_list = abcscale.from_mup("adam", base_width=256, lr=[1e-3, 2e-3, 3e-3, 4e-3], init_std=[1.0, 0.02, 0.02])
    as_array = abcscale.from_mup("adam", base_width=256, lr=np.array([1e-3, 2e-3, 3e-3, 4e-3]),
                                 init_std=np.array([1.0, 0.02, 0.02]))
    assert as_array.model_dump() == as_list.model_dump()
    one = abcscale.from_mup("adam", base_width=256, lr=np.float64(1e-3))
    assert one.model_dump() == abcscale.from_mup("adam", base_width=256, lr=1e-3).model_dump()


@pytest.fixture(scope="module")
def tour_fits():
    table = str(EXAMPLES / "tour-sweep.parquet")
    return {level: abcscale.fit(table, target_width=1024, n_boot=100, confidence_level=level) for level in (0.95, 0.9)}


def _cli_summary(level: float) -> list[str]:
    res = CliRunner().invoke(app, ["fit", str(EXAMPLES / "tour-sweep.parquet"), "--target-width", "1024", "--n-boot",
                                   "100", "--confidence-level", str(level), "--summary"])
    assert res.exit_code == 0, res.output
    return res.stdout.splitlines()


def test_a_groups_summary_counts_its_warnings_as_the_cli_does(tour_fits):
    fit = tour_fits[0.95]
    # the group whose prediction restates its own "no identified optimum" note: counted twice before
    restating = [g for g in fit.groups if g.prediction is not None and len(g.said_warnings())
                 < len(g.warnings) + len(g.prediction.warnings)]
    assert restating, "the example no longer has a group whose prediction restates a note"
    lines = _cli_summary(0.95)
    for g in fit.groups:
        n = len(g.said_warnings())
        assert g.summary().endswith(f"; {n} warning{'' if n == 1 else 's'}")
        label = " ".join(str(v) for k, v in g.group.items() if k != "optimizer_variant")  # the CLI's label
        row = next(line for line in lines if line.startswith(label) and "theory" in line)
        assert re.search(rf"\b{n} warnings?$", row.rstrip()), (row, n)


def test_the_cli_summary_gives_the_prediction_at_the_fits_level(tour_fits):
    fit = tour_fits[0.9]
    lines = _cli_summary(0.9)
    answers = [line for line in lines if "at width 1024:" in line]
    assert answers and all(", 90% [" in line and "95%" not in line for line in answers), answers
    for g in fit.groups:
        if g.prediction is not None:
            p = g.prediction
            assert "90% CI" in g.summary()
            assert any(f"{p.lr:.4g}, 90% [{p.ci.low:.4g}, {p.ci.high:.4g}]" in line for line in answers), answers
