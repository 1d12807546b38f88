"""Every interval of a FitResult carries the level it was asked for, and a lower level narrows every one."""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from pydantic import BaseModel

from abcscale.fitting import fit_table
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.schemas.fit import FitResult
from abcscale.schemas.theory import Interval
from tests.fitting.sweeps import lr_gamma_sweep

MUP = {"parameterization": "mup", "optimizer": "adam", "alignment": "full", "lr_mode": "per_layer"}
SP_GLOBAL = {"parameterization": "standard", "optimizer": "adam", "alignment": "full", "lr_mode": "global"}


def _sweep_with_a_constant() -> pd.DataFrame:
    """LR x gamma_hidden at 4 widths, 2 seeds, divergence 1.5 octaves above the optimum: every part is fitted."""
    return lr_gamma_sweep(seeds=2, noise=0.002, diverge_above=1.5)


def _intervals(obj: Any, path: str = "") -> Iterator[tuple[str, Interval]]:
    """Every Interval in a result, by path (``.groups[0].exponent.ci``)."""
    if isinstance(obj, Interval):
        yield path, obj
    elif isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            yield from _intervals(getattr(obj, name), f"{path}.{name}")
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            yield from _intervals(v, f"{path}[{i}]")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _intervals(v, f"{path}[{k}]")


def _models_in(annotation: Any) -> Iterator[type]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)


def _interval_fields(model: type, path: str = "", seen: frozenset = frozenset()) -> set[str]:
    """Every place the schema can hold an Interval (list indices written ``[]``)."""
    out = set()
    for name, field in model.model_fields.items():  # type: ignore[attr-defined]
        ann = field.annotation
        listy = typing.get_origin(ann) in (list, dict) or any(typing.get_origin(a) in (list, dict)
                                                              for a in typing.get_args(ann))
        here = f"{path}.{name}" + ("[]" if listy else "")
        for sub in _models_in(ann):
            if sub is Interval:
                out.add(here)
            elif sub not in seen:
                out |= _interval_fields(sub, here, seen | {model})
    return out


def _kind(path: str) -> str:
    return re.sub(r"\[[^\]]*\]", "[]", path)  # list indices and dict keys alike


@pytest.fixture(scope="module")
def fits() -> tuple[FitResult, FitResult]:
    df = _sweep_with_a_constant()
    return (fit_table(df, target_width=2048, n_boot=300, seed=0, confidence_level=0.95),
            fit_table(df, target_width=2048, n_boot=300, seed=0, confidence_level=0.5))


@pytest.fixture(scope="module")
def joint_fits() -> tuple[FitResult, FitResult]:
    """A covariate table: the joint law's intervals (exponents, constant, prediction, loss law) at both levels."""
    from abcscale.schemas.fit import ColumnMapping
    from tests.fitting.covariate_sweeps import covariate_sweep

    df, m = covariate_sweep(seeds=1), ColumnMapping(size_col="N", covariates=["D", "batch_size"])
    return tuple(fit_table(df, m, target_width=2048, at={"D": 1e10}, n_boot=100, seed=0, confidence_level=level)
                 for level in (0.95, 0.5))  # type: ignore[return-value]


def test_the_fixture_fills_every_interval_field_of_the_schema(fits, joint_fits):
    wide, _ = fits
    found = {_kind(p) for p, _ in [*_intervals(wide), *_intervals(joint_fits[0])]}
    # if this fails, a new Interval field exists that the fixture does not fill: extend the fixture
    assert found == _interval_fields(FitResult)


def test_lower_level_narrows_every_interval_and_each_says_its_level(fits, joint_fits):
    wide, narrow = fits
    w = {**dict(_intervals(wide)), **{"joint:" + k: v for k, v in _intervals(joint_fits[0])}}
    n = {**dict(_intervals(narrow)), **{"joint:" + k: v for k, v in _intervals(joint_fits[1])}}
    assert w.keys() == n.keys() and len(w) >= 14
    for path in w:
        assert w[path].confidence_level == 0.95, path
        assert n[path].confidence_level == 0.5, path
        assert n[path].high - n[path].low < w[path].high - w[path].low, path
    assert narrow.provenance.settings["confidence_level"] == 0.5


def test_the_level_changes_intervals_only(fits):
    wide, narrow = fits
    for gw, gn in zip(wide.groups, narrow.groups, strict=True):
        assert gn.exponent.estimate == gw.exponent.estimate and gn.constant == gw.constant
        assert [o.lr_opt for o in gn.per_width] == [o.lr_opt for o in gw.per_width]
        # the prediction's 68% and 95% bands are fixed by design; only `ci` follows the level
        assert (gn.prediction.ci68, gn.prediction.ci95) == (gw.prediction.ci68, gw.prediction.ci95)
        assert gw.prediction.ci.low == pytest.approx(gw.prediction.ci95[0], rel=1e-12)
        assert gn.prediction.safe_lr == gw.prediction.safe_lr


def test_warnings_name_the_level_asked_for():
    df = synthetic_sweep(group=SP_GLOBAL, exponent=0.0, grid_center_exponent=-0.25, seed=3)
    g = fit_table(df, n_boot=200, target_width=4096, confidence_level=0.5).groups[0]
    said = [w for w in [*g.warnings, *g.prediction.warnings] if "inconsistent with theory" in w]
    assert len(said) == 2 and all("50% [" in w and "95%" not in w for w in said)


def test_width_independent_answers_only_at_a_target_width():
    df = synthetic_sweep(group=MUP, exponent=0.0, seed=2)
    without = fit_table(df, n_boot=100).groups[0]
    assert without.consistent is True and without.width_independent is None
    at = fit_table(df, n_boot=100, target_width=4096).groups[0]
    assert at.consistent is True and at.width_independent is True
