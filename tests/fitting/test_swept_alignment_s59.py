"""Session 59: a recommendation from a fit applies the alignment's per-layer exponents c_l; the fitted LR is the
optimum of beta where each layer trained at beta gamma_l (n / b)^-c_l with the sweep's own c_l, which a table's
lr_embedding / lr_hidden / lr_readout columns show. Before, `recommend --fit -a none` on a table without an
alignment column whose LR columns scale as full's answered under none's exponents in silence (the hidden LR 4x off
at width 1024 from base 64), and a table swept under none's exponents was answered under full's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from abcscale import theory
from abcscale.fitting import fit_table
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.fitting.table import prepare
from abcscale.schemas.fit import ColumnMapping
from abcscale.usecases.recommend import recommend_from_fit, selector_from

SETUP = {"parameterization": "mup", "optimizer": "adam", "lr_mode": "per_layer"}
BASE = 64


def _c(alignment: str) -> dict[str, float]:
    sol = theory.solve_exponents("mup", "adam", alignment)
    return {layer.value: sol.c[layer] for layer in sol.c}


def _table(c: dict[str, float], *, seeds: int = 2, **group):
    t = synthetic_sweep(widths=(64, 128, 256, 512), exponent=0.0, base_width=BASE, lr_base=1e-2, seeds=seeds,
                        group={**SETUP, **group})
    for layer, value in c.items():
        t[f"lr_{layer}"] = t["beta"] * (t["width"] / BASE) ** -value
    return t


def _ratios(rec) -> dict[str, float]:
    return {s.layer.value: s.lr / rec.beta for s in rec.layers}


@pytest.fixture(scope="module")
def full_fit():
    return fit_table(_table(_c("full")), target_width=1024, n_boot=30)


@pytest.fixture(scope="module")
def none_fit():
    return fit_table(_table(_c("none")), target_width=1024, n_boot=30)


def test_the_fit_keeps_the_exponents_its_lr_columns_show(full_fit, none_fit):
    assert full_fit.groups[0].lr_exponents == _c("full")
    assert none_fit.groups[0].lr_exponents == _c("none")
    assert _c("full") != _c("none")  # muP + Adam: the hidden layer's and the readout's differ


def test_a_contradicting_alignment_is_refused_naming_what_the_columns_show(full_fit):
    with pytest.raises(ValueError, match=r"^alignment: none gives c = .*columns scale as c = 0\.5 / 1 / 0\.5.*"
                                         r"give alignment full"):
        recommend_from_fit(full_fit, 1024, selector=selector_from(None, alignment="none"))
    agree = recommend_from_fit(full_fit, 1024, selector=selector_from(None, alignment="full"))
    dflt = recommend_from_fit(full_fit, 1024, selector=selector_from(None))
    # the sweep's exponents at 16x the base width: hidden (1024/64)^-1
    assert _ratios(agree) == pytest.approx(_ratios(dflt)) and _ratios(agree)["hidden"] == pytest.approx(1 / 16)
    assert not any(w.startswith("alignment") for w in dflt.warnings)


def test_a_table_swept_under_none_is_answered_under_none_and_says_so(none_fit):
    rec = recommend_from_fit(none_fit, 1024, selector=selector_from(None))
    assert _ratios(rec)["hidden"] == pytest.approx(16 ** -0.5) and _ratios(rec)["readout"] == pytest.approx(1.0)
    assert any(w.startswith("alignment: none, as the table's lr_embedding") for w in rec.warnings)
    assert rec.band is not None and not any("lr_embedding" in why for why in rec.band.unreliable)
    # the fit's own prediction applies the same exponents, and says so in the group's warnings
    (g,) = none_fit.groups
    assert {s.layer.value: s.lr / g.prediction.lr for s in g.prediction.layers} == pytest.approx(_ratios(rec))
    assert any(w.startswith("alignment: none, as") for w in g.warnings)
    with pytest.raises(ValueError, match="give alignment none"):
        recommend_from_fit(none_fit, 1024, selector=selector_from(None, alignment="full"))


def test_exponents_of_neither_end_make_the_answer_unreliable():
    odd = {"embedding": 0.0, "hidden": 1.0, "readout": 1.0}  # standard's, in a table that says mup
    fit = fit_table(_table(odd), target_width=1024, n_boot=30)
    (g,) = fit.groups
    assert g.lr_exponents == odd
    assert any("neither full's nor none's" in why for why in g.prediction.unreliable)
    rec = recommend_from_fit(fit, 1024, selector=selector_from(None))
    assert any("neither full's nor none's" in why for why in rec.band.unreliable)


def test_the_tables_own_alignment_column_against_its_lr_columns():
    fit = fit_table(_table(_c("none"), alignment="full"), target_width=1024, n_boot=30)
    rec = recommend_from_fit(fit, 1024, selector=selector_from(None))
    assert _ratios(rec)["hidden"] == pytest.approx(16 ** -0.5)  # what its runs trained with
    assert any("not as its alignment column's full" in w for w in rec.warnings)


@pytest.mark.parametrize("case", ["gamma", "form", "one_width", "global"])
def test_no_exponents_where_the_columns_do_not_say_them(case):
    t = _table(_c("full"))
    if case == "gamma":  # a swept gamma_hidden: lr_hidden / beta moves within a width
        t["lr_hidden"] *= np.where(np.arange(len(t)) % 2 == 0, 1.0, 2.0)
    elif case == "form":  # the mup form moves LR into multipliers: its slopes are not c
        t["form"] = "mup"
    elif case == "one_width":
        t = t[t["width"] == 128]
    else:
        t["lr_mode"] = "global"
    (g,) = prepare(t).groups
    assert g.lr_exponents is None or case == "global"
    if case == "global":  # one LR for every layer: the columns say nothing of c, and nothing is checked
        fit = fit_table(t, target_width=1024, n_boot=30)
        recommend_from_fit(fit, 1024, selector=selector_from(None, alignment="none"))


def test_the_runner_tables_columns_agree_with_their_alignment():
    tour = pd.read_parquet(Path(__file__).resolve().parents[2] / "examples" / "tour-sweep.parquet")
    fit = fit_table(tour, target_width=1024, n_boot=20)
    per_layer = [g for g in fit.groups if g.group["lr_mode"] == "per_layer"]
    assert len(per_layer) == 2
    for g in per_layer:
        sol = theory.solve_exponents(g.group["parameterization"], "adam", g.group["alignment"])
        assert g.lr_exponents == {layer.value: sol.c[layer] for layer in sol.c}
        assert not any("lr_embedding" in w for w in g.warnings)


def test_said_once_with_a_target_and_without():
    odd = _table({"embedding": 0.0, "hidden": 1.0, "readout": 1.0})
    for target in (1024, None):
        (g,) = fit_table(odd, target_width=target, n_boot=20).groups
        said = [w for w in [*g.warnings, *(g.prediction.warnings if g.prediction else [])]
                if "neither full's nor none's" in w]
        assert len(said) == 1, (target, said)


def test_a_layers_own_lr_as_the_lr_column_says_nothing_of_c():
    t = _table(_c("full"))
    (g,) = prepare(t, ColumnMapping(lr_col="lr_hidden")).groups
    assert g.lr_exponents is None
