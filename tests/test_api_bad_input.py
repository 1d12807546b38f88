"""The Python API refuses what it cannot use with a ValueError naming the argument (session 29's hunt found
file descriptors opened as specs, NaN fits loaded, and widths past the cap predicted)."""

from __future__ import annotations

import json
import os

import pytest

import abcscale as A
from abcscale.fitting.synthetic import synthetic_sweep


@pytest.fixture(scope="module")
def sweep():
    return synthetic_sweep(seeds=2, group={"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"})


@pytest.fixture(scope="module")
def fit(sweep):
    return A.fit(sweep, n_boot=20)


@pytest.mark.parametrize("spec", [5, True, None, {"widths": [8]}])
def test_a_spec_that_is_not_a_path_is_never_opened_as_a_file_descriptor(spec, tmp_path):
    # open(True) is open(1): it read stdout and closed it; open(0) read stdin
    if spec is None:
        with pytest.raises(ValueError, match="spec"):
            A.sweep(spec, tmp_path)  # type: ignore[arg-type]
        return
    before = os.fstat(1)
    with pytest.raises(ValueError, match=r"^spec: expected a SweepSpec or the path of its TOML file"):
        A.sweep(spec, tmp_path)  # type: ignore[arg-type]
    assert os.fstat(1) == before
    with pytest.raises(ValueError, match="^spec: no such file"):
        A.sweep(tmp_path / "missing.toml", tmp_path)


def test_fit_takes_row_dicts_a_mapping_dict_and_blowup(sweep):
    rows = json.loads(sweep.to_json(orient="records"))
    a = A.fit(rows, n_boot=20, mapping={"size_col": "width"})
    # to_json rounds floats to 10 digits: the same fit within that
    assert a.groups[0].exponent.estimate == pytest.approx(A.fit(sweep, n_boot=20).groups[0].exponent.estimate,
                                                          rel=1e-6)
    assert A.fit(sweep, n_boot=20, blowup=0).provenance.settings["blowup_factor"] is None
    with pytest.raises(ValueError, match="^table: expected a DataFrame"):
        A.fit(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^mapping: expected a ColumnMapping"):
        A.fit(sweep, mapping=3)  # type: ignore[arg-type]


def test_a_fit_file_holding_nan_is_refused(fit, tmp_path):
    data = json.loads(fit.model_dump_json())
    data["groups"][0]["law"]["exponent"] = float("nan")
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(data))  # Python's json writes NaN
    with pytest.raises(ValueError, match="NaN is not a number a fit holds"):
        A.predict(path, 4096)
    with pytest.raises(ValueError, match="^fit: expected a FitResult"):
        A.predict(None, 4096)  # type: ignore[arg-type]


@pytest.mark.parametrize("width", [2**40 + 1, 2**70, 10**400, True])
def test_predict_has_recommends_width_cap(fit, width):
    with pytest.raises(ValueError, match=r"^width: must be a whole number from 1 to 1099511627776"):
        A.predict(fit, width)
    assert A.predict(fit, 2**20).width == 2**20
