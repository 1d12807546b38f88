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
    assert any(w.startswith("alignment: none, as the table's per-layer LR columns") for w in rec.warnings)
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
    assert any("are not the ones the fit measured" in why for why in g.prediction.unreliable)
    rec = recommend_from_fit(fit, 1024, selector=selector_from(None))
    assert any("are not the ones the fit measured" in why for why in rec.band.unreliable)


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
    if case == "global":  # a per-layer sweep's columns in a table that says global: one LR is not what it measured
        fit = fit_table(t, target_width=1024, n_boot=30)
        rec = recommend_from_fit(fit, 1024, selector=selector_from(None, alignment="none"))
        assert any("the table's lr_mode column says global" in why and "correct the column (per_layer)" in why
                   for why in rec.band.unreliable)


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
                if "are not the ones the fit measured" in w]
        assert len(said) == 1, (target, said)


def test_a_layers_own_lr_as_the_lr_column_says_nothing_of_c():
    t = _table(_c("full"))
    (g,) = prepare(t, ColumnMapping(lr_col="lr_hidden")).groups
    assert g.lr_exponents is None


def test_a_point_of_the_optimal_face_is_the_sweeps_own_answer():
    # muP + Adam at (1/2, 1/2, 1) (u > alpha): embedding c in [1/2, 1], readout in [0, 1/2] trade LR at no cost;
    # a sweep at (1, 1, 0) is as optimal as the prescription (1/2, 1, 1/2) and was refused as a contradiction
    face = {"embedding": 1.0, "hidden": 1.0, "readout": 0.0}
    fit = fit_table(_table(face, alignment="0.5,0.5,1"), target_width=1024, n_boot=30)
    (g,) = fit.groups
    assert not g.prediction.unreliable and g.lr_exponents == face
    rec = recommend_from_fit(fit, 1024, selector=selector_from(None))
    assert not rec.band.unreliable
    assert _ratios(rec) == pytest.approx({"embedding": 1 / 16, "hidden": 1 / 16, "readout": 1.0})  # the sweep's c
    assert any(w.startswith("c: the table's per-layer LR columns") and "optimal face" in w for w in rec.warnings)
    # the same table without its alignment column, the alignment given: answered, not refused
    noal = fit_table(_table(face), target_width=1024, n_boot=30)
    rec = recommend_from_fit(noal, 1024, selector=selector_from(None, alignment="0.5,0.5,1"))
    assert _ratios(rec)["readout"] == pytest.approx(1.0)


def test_the_fits_own_alignment_is_not_the_callers():
    fit = fit_table(_table(_c("full")), target_width=1024, alignment="none", n_boot=30)
    rec = recommend_from_fit(fit, 1024, selector=selector_from(None))  # nothing given: answered, said
    assert _ratios(rec)["hidden"] == pytest.approx(1 / 16)
    assert any("not as the fit's alignment none" in w for w in rec.warnings)


def test_a_swept_gamma_is_divided_out():
    t = pd.concat([_table(_c("full")).assign(gamma_hidden=g) for g in (0.5, 1.0, 2.0)], ignore_index=True)
    t["lr_hidden"] *= t["gamma_hidden"]  # the runner's gamma sweep: lr_l = beta gamma_l (n / b)^-c_l
    (g,) = prepare(t).groups
    assert g.lr_exponents == _c("full")


@pytest.mark.parametrize("digits", [6, 4, 3])
def test_a_csv_rounded_to_few_digits_still_says_the_exponents(tmp_path, digits):
    t = _table(_c("none"))
    for col in ("beta", "lr_embedding", "lr_hidden", "lr_readout"):
        t[col] = [float(f"{v:.{digits}g}") for v in t[col]]
    t.loc[3, "lr_hidden"] = np.nan  # one unreadable cell leaves the rest of its width
    (g,) = prepare(t).groups
    assert g.lr_exponents == pytest.approx(_c("none"), abs=0.02)


def test_an_lr_mode_that_contradicts_the_columns():
    per_layer = _table(_c("full")).drop(columns="lr_mode")
    fit = fit_table(per_layer, target_width=1024, n_boot=30)
    with pytest.raises(ValueError, match=r"^lr_mode: global gives every layer the one LR.*give lr_mode per_layer"):
        recommend_from_fit(fit, 1024, selector=selector_from(None, lr_mode="global"))
    assert _ratios(recommend_from_fit(fit, 1024, selector=selector_from(None, lr_mode="per_layer")))["hidden"] == \
        pytest.approx(1 / 16)
    zeros = {"embedding": 0.0, "hidden": 0.0, "readout": 0.0}
    one_lr = _table(zeros)  # a global sweep's columns in a table whose lr_mode column says per_layer
    rec = recommend_from_fit(fit_table(one_lr, target_width=1024, n_boot=30), 1024, selector=selector_from(None))
    assert any("the table's lr_mode column is wrong: correct it (global)" in why for why in rec.band.unreliable)
    # the same columns, per_layer given by the caller where the table has no lr_mode column: refused
    fit = fit_table(one_lr.drop(columns="lr_mode"), target_width=1024, n_boot=30)
    with pytest.raises(ValueError, match=r"^lr_mode: per_layer scales each layer's LR.*give lr_mode global"):
        recommend_from_fit(fit, 1024, selector=selector_from(None, lr_mode="per_layer"))


@pytest.mark.parametrize(("parameterization", "optimizer", "swept_at", "column"),
                         [("ntk", "adam", "none", None), ("mup", "sgd", "full", "none")])
def test_a_per_layer_sweep_whose_exponents_are_all_0_is_answered_at_its_alignment(parameterization, optimizer,
                                                                                swept_at, column):
    # ntk + Adam under none and muP + SGD under full give every layer c = 0: one LR at every width, yet a per-layer
    # sweep's; answered under the alignment its columns show (muP + SGD's hidden LR was 4x off under none), not
    # called a global sweep
    sol = theory.solve_exponents(parameterization, optimizer, swept_at)
    assert all(v == 0 for v in sol.c.values())
    group = {"parameterization": parameterization, "optimizer": optimizer,
             **({"alignment": column} if column else {})}
    fit = fit_table(_table({layer.value: 0.0 for layer in sol.c}, **group), target_width=1024, n_boot=30)
    rec = recommend_from_fit(fit, 1024, selector=selector_from(None))
    assert rec.alignment.name == swept_at and not rec.band.unreliable
    assert _ratios(rec) == pytest.approx({"embedding": 1.0, "hidden": 1.0, "readout": 1.0})


def test_a_face_point_is_answered_at_the_face_not_at_the_raw_slope():
    # (0.99, 1, 0) is 0.01 off the face, where c_embedding + c_readout = 1: answered at its nearest point of it
    near = {"embedding": 0.99, "hidden": 1.0, "readout": 0.0}
    fit = fit_table(_table(near, alignment="0.5,0.5,1"), target_width=1024, n_boot=30)
    rec = recommend_from_fit(fit, 1024, selector=selector_from(None))
    c = {name: e.c for name, e in rec.exponents.items()}
    assert c["embedding"] + c["readout"] == pytest.approx(1.0) and c["embedding"] == pytest.approx(0.995, abs=1e-6)


def test_a_fits_alignment_beside_a_per_layer_tables_own_says_it_changes_nothing():
    # it said "theory uses --alignment full, not the table's none" while the per-layer split (rightly) stayed none's
    t = _table(_c("none"), alignment="none")
    (g,) = fit_table(t, target_width=1024, alignment="full", n_boot=20).groups
    assert any("changes nothing in a per-layer group" in w for w in g.warnings)
    assert not any(w.startswith("theory uses") for w in g.warnings)
    assert {s.layer.value: s.lr / g.prediction.lr for s in g.prediction.layers}["hidden"] == pytest.approx(16 ** -0.5)
    glob = _table({"embedding": 0.0, "hidden": 0.0, "readout": 0.0}, alignment="none", lr_mode="global")
    (g,) = fit_table(glob, target_width=1024, alignment="full", n_boot=20).groups
    assert any(w.startswith("theory uses `alignment` full") for w in g.warnings)  # a global LR's exponent: it does
