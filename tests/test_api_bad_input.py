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


@pytest.mark.parametrize("call", [
    lambda: A.recommend("mup", "adam", width=4096, base_width=256, beta=3e-3, constants=5),
    lambda: A.recommend("mup", "adam", width=4096, base_width=256, beta=3e-3, alignment=(10**400, 0, 0)),
    lambda: A.recommend("mup", "adam", width=4096, base_width=256, beta=3e-3, alignment=(True, True, True)),
    lambda: A.convert("adam", "sp", "mup", width=4096, base_width=256, lr=True),
])
def test_bad_keywords_are_value_errors_not_tracebacks_or_ones(call):
    # OverflowError, TypeError, or True taken as 1.0 on every layer
    with pytest.raises(ValueError):
        call()


def test_predict_names_a_group_of_the_wrong_type(fit):
    with pytest.raises(ValueError, match="^group: expected"):
        A.predict(fit, 4096, group=5)  # type: ignore[arg-type]


def test_a_zero_size_parameter_is_named_not_divided_by():
    pytest.importorskip("jax")
    import jax.numpy as jnp

    from abcscale.optax import labels

    spec = A.recommend("mup", "adam", width=64, base_width=32, beta=1e-2).groups
    with pytest.raises(ValueError, match="'q' has no entries"):
        labels(spec, {"q": jnp.ones((0, 64))})
    with pytest.raises(ValueError, match="fan_in_factor"):
        spec.init_std("hidden", 0)


def test_a_filter_given_twice_is_one_filter():
    once = A.theory_table(parameterization="mup")
    assert A.theory_table(parameterization=["mup", "mup"]) == once
    assert A.theory_table(parameterization=["mup", "MuP"]) == once
    with pytest.raises(ValueError, match="parameterization"):
        A.theory_table(parameterization=5)  # type: ignore[arg-type]


@pytest.mark.parametrize("kw", [{"b1": float("nan")}, {"b2": -1.0}, {"momentum": 1.0}, {"schedule": 5}])
def test_optax_transform_refuses_what_would_give_nan_updates(kw):
    pytest.importorskip("jax")
    import jax.numpy as jnp

    from abcscale.optax import transform

    spec = A.recommend("mup", "adam", width=64, base_width=32, beta=1e-2).groups
    with pytest.raises(ValueError, match=f"^{next(iter(kw))}: must be"):
        transform(spec, {"q": jnp.ones((64, 64))}, **kw)


def test_settings_the_optimizer_has_no_use_for_are_said_not_silently_dropped():
    kw = {"width": 4096, "base_width": 256, "beta": 3e-3}
    adam = A.recommend("mup", "adam", weight_decay_mode="independent", **kw)
    assert adam.warnings == ["weight_decay_mode: adam has no weight decay that abcscale transfers; independent "
                             "changes nothing"]
    sgd = A.recommend("mup", "sgd", constants=A.Constants(epsilon=1e-3), **kw)
    assert sgd.warnings == ["epsilon: sgd has no epsilon; the 0.001 given changes nothing"]
    assert A.recommend("mup", "adam", **kw).warnings == A.recommend("mup", "sgd", **kw).warnings == []

