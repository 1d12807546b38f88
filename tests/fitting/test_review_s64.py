"""Session 64's review of the fitter's answers (known-truth tables):

1. the constants a sweep's runs trained with (gamma_* / init_scale_* / multiplier_* columns, one value throughout a
   group: the runner writes gamma_* on every row) were ignored by recommend --fit and predict's layers, though the
   fitted beta is the optimum with each layer at beta gamma_l (n / b)^-c_l: a readout swept at gamma 0.5 got beta;
2. a wrong LR mode from the table's lr_mode column or fit(lr_mode=) gave 64x-wrong layers, not unreliable (the
   exponent's test ran only on a mode the recommend caller gave);
3. a parameter-count fit took the table's base_width column (a width) as the size reference of its constant C;
4. a group whose every run diverged was refused as "only one width (?) was swept".
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
import pytest

import abcscale
from abcscale.fitting.predict import NoLaw
from abcscale.schemas.fit import FitResult, GroupFit
from abcscale.schemas.theory import Constants
from abcscale.usecases.recommend import recommend_from_fit

from .sweeps import lr_gamma_sweep

GRID = np.arange(-13.0, -2.99, 0.5)
GAMMA = {"embedding": 2.0, "hidden": 1.0, "readout": 0.5}


def _table(exponent: float, *, widths: tuple[int, ...] = (64, 128, 256, 512), base: int = 64, lr0: float = 1e-2,
           setup: dict[str, object] | None = None, seeds: int = 2, seed: int = 0) -> pd.DataFrame:
    """LR* = lr0 (w / base)^exponent on a half-octave grid, a quadratic basin, small noise, runs 3 octaves above LR*
    diverged (NaN)."""
    rng = np.random.default_rng(seed)
    rows = []
    for w in widths:
        star = math.log2(lr0) + exponent * math.log2(w / base)
        for x in GRID:
            for s in range(seeds):
                d = x - star
                loss = math.nan if d > 3 else 3.0 + 0.05 * d * d + 0.002 * rng.standard_normal()
                rows.append({"width": w, "beta": 2.0**x, "seed": s, "final_loss": loss, "base_width": base,
                             **(setup or {})})
    return pd.DataFrame(rows)


def _lrs(layers) -> dict[str, float]:
    return {s.layer.value: s.lr for s in layers}


# --- 1. the constants the runs trained with ---------------------------------------------------------------------


def _per_layer_gamma_table() -> pd.DataFrame:
    """muP + Adam per-layer (c = 1/2, 1, 1/2 under full alignment), LR* = 1e-2 at every width, gamma (2, 1, 0.5)."""
    df = _table(0.0, setup={"parameterization": "mup", "optimizer": "adam", "lr_mode": "per_layer"})
    r = df["width"] / 64
    for layer, g in GAMMA.items():
        df[f"gamma_{layer}"] = g
    df["lr_embedding"] = df["beta"] * 2.0 * r**-0.5
    df["lr_hidden"] = df["beta"] * r**-1.0
    df["lr_readout"] = df["beta"] * 0.5 * r**-0.5
    return df


@functools.cache
def _per_layer_gamma_fit() -> FitResult:
    """The table's fit (n_boot 50), made once for the four tests that read it (a FitResult is frozen)."""
    return abcscale.fit(_per_layer_gamma_table(), n_boot=50)


def test_the_fit_keeps_the_constants_its_runs_trained_with():
    g = _per_layer_gamma_fit().groups[0]
    assert g.trained_constants == {"gamma": GAMMA}
    assert g.constants == []  # none swept
    # an older fit.json without the field still loads
    assert GroupFit.model_validate(g.model_dump(exclude={"trained_constants"})).trained_constants == {}


def test_a_per_layer_recommendation_carries_the_tables_gamma():
    fit = abcscale.fit(_per_layer_gamma_table(), target_width=4096, n_boot=50)
    rec = recommend_from_fit(fit, 4096)
    r = 4096 / 64
    want = {"embedding": 2.0 * r**-0.5, "hidden": r**-1.0, "readout": 0.5 * r**-0.5}
    got = _lrs(rec.layers)
    for layer, factor in want.items():  # each layer at beta gamma_l (n / b)^-c_l, as its runs trained
        assert got[layer] == pytest.approx(rec.beta * factor, rel=1e-9)
        assert got[layer] == pytest.approx(1e-2 * factor, rel=0.1)  # the truth: 2.5e-3, 1.5625e-4, 6.25e-4
    assert any(w.startswith("gamma from the fit's runs: embedding 2, hidden 1, readout 0.5") for w in rec.warnings)
    # the same numbers from the Python API, predict's layers and the fit's own prediction
    assert _lrs(abcscale.recommend_from_fit(fit, 4096).layers) == pytest.approx(got)
    assert _lrs(abcscale.predict(fit, 4096).layers) == pytest.approx(got)
    assert _lrs(fit.groups[0].prediction.layers) == pytest.approx(got)


def test_a_global_sweeps_gamma_scales_each_layers_one_lr():
    # the runner's global mode: every layer at beta gamma_l, beta the one LR (falling as 1/width here)
    df = _table(-1.0, setup={"parameterization": "standard", "optimizer": "adam", "lr_mode": "global"})
    df["gamma_embedding"], df["gamma_hidden"], df["gamma_readout"] = 1.0, 1.0, 0.25
    df["lr_embedding"], df["lr_hidden"], df["lr_readout"] = df["beta"], df["beta"], df["beta"] * 0.25
    rec = recommend_from_fit(abcscale.fit(df, n_boot=50), 4096)
    got = _lrs(rec.layers)
    # the fitted one LR at 4096 (band.lr; beta is the base width's since session 65)
    assert got["embedding"] == pytest.approx(rec.band.lr, rel=1e-9) and got["hidden"] == pytest.approx(rec.band.lr)
    assert got["readout"] == pytest.approx(0.25 * rec.band.lr, rel=1e-9)
    assert got["readout"] == pytest.approx(0.25e-2 / 64, rel=0.1)


def test_constants_the_caller_gives_win_and_a_difference_is_said():
    fit = _per_layer_gamma_fit()
    rec = recommend_from_fit(fit, 4096, constants=Constants(gamma={"embedding": 1.0, "hidden": 3.0}))
    got, r = _lrs(rec.layers), 64.0
    assert got["hidden"] == pytest.approx(rec.beta * 3.0 / r, rel=1e-9)
    assert got["readout"] == pytest.approx(rec.beta * r**-0.5, rel=1e-9)  # the caller's 1 (a layer left out)
    said = [w for w in rec.warnings if w.startswith("gamma: the fit's runs trained with")]
    assert len(said) == 1 and "embedding 2, hidden 1, readout 0.5" in said[0] and "optimum" in said[0]
    assert not any(w.startswith("gamma from the fit") for w in rec.warnings)
    # the same constants as the runs': nothing to say
    same = recommend_from_fit(fit, 4096, constants=Constants(gamma=GAMMA))
    assert not any(w.startswith(("gamma:", "gamma from")) for w in same.warnings)
    assert _lrs(same.layers) == pytest.approx(_lrs(recommend_from_fit(fit, 4096).layers))


def test_a_gamma_of_ones_changes_nothing_and_says_nothing():
    df = _per_layer_gamma_table()
    df["gamma_embedding"], df["gamma_readout"] = 1.0, 1.0
    df["lr_embedding"], df["lr_readout"] = df["lr_embedding"] / 2.0, df["lr_readout"] * 2.0
    rec = recommend_from_fit(abcscale.fit(df, n_boot=50), 4096)
    assert not any("gamma" in w for w in rec.warnings)
    assert _lrs(rec.layers)["embedding"] == pytest.approx(rec.beta / 8.0, rel=1e-9)


def test_per_width_multipliers_are_not_constants_and_an_abc_tables_constant_ones_are():
    df = _per_layer_gamma_table()
    w = df["width"].astype(float)
    # the runner's abc form under muP: the embedding's multiplier M n^1/2 and the readout's M n^-1/2 move with the
    # width; M_l = m_l n^a_l with muP's a_l (session 64's code review: only the hidden one, n^0, was carried)
    df = df.assign(form="abc", multiplier_embedding=2 * w**0.5, multiplier_hidden=3.0, multiplier_readout=0.5 * w**-0.5)
    g = abcscale.fit(df, n_boot=50).groups[0]
    assert g.trained_constants["gamma"] == GAMMA
    assert g.trained_constants["multiplier"] == pytest.approx({"embedding": 2.0, "hidden": 3.0, "readout": 0.5})
    rec = recommend_from_fit(abcscale.fit(df, n_boot=50), 4096)
    assert {s.layer.value: s.multiplier for s in rec.layers} == pytest.approx(
        {"embedding": 2.0 * 64, "hidden": 3.0, "readout": 0.5 / 64})
    # a multiplier that is neither one value nor M n^-a of the group's parameterization is no constant
    odd = abcscale.fit(df.assign(multiplier_embedding=w**0.25), n_boot=50).groups[0]
    assert set(odd.trained_constants["multiplier"]) == {"hidden", "readout"}
    # a user model's multiplier_free form writes every multiplier 1 (folded into the LR and init): not its M
    free = abcscale.fit(df.assign(form="multiplier_free", multiplier_hidden=1.0), n_boot=50).groups[0]
    assert "multiplier" not in free.trained_constants
    # constants that differ between widths (one value at each) are not the runs' constants either
    per_width = _per_layer_gamma_table().assign(init_scale_hidden=lambda d: d["width"] / 64.0)
    assert "init_scale" not in abcscale.fit(per_width, n_boot=50).groups[0].trained_constants


def test_a_swept_constant_still_fills_its_layer_and_the_runs_constants_the_others():
    df = lr_gamma_sweep().assign(gamma_embedding=2.0)
    fit = abcscale.fit(df, n_boot=50)
    g = fit.groups[0]
    assert [c.name for c in g.constants] == ["gamma_hidden"]
    assert g.trained_constants == {"gamma": {"embedding": 2.0}}
    rec = recommend_from_fit(fit, 1024)
    hidden = g.constants[0].optimum.estimate
    assert hidden == pytest.approx(1.5, rel=0.1)
    r = 1024 / 64
    got = _lrs(rec.layers)
    assert got["hidden"] == pytest.approx(rec.beta * hidden / r, rel=1e-9)  # the swept optimum, as before
    assert got["embedding"] == pytest.approx(rec.beta * 2.0 * r**-0.5, rel=1e-9)  # the runs' constant
    assert any(w.startswith("gamma from the fit: hidden") for w in rec.warnings)
    assert any(w.startswith("gamma from the fit's runs: embedding 2") for w in rec.warnings)


def _runner_table(lr_mode: str, gamma: dict[str, float], multiplier: list[float] | None = None,
                  parameterization: str = "mup") -> tuple[pd.DataFrame, object, object]:
    """The runner's columns as runner/sweep.py::_tables writes them, from its own layer_hyper (no training): muP + Adam
    at widths 64-512 over base 64, gamma on every row, the abc form's effective multipliers; the loss is theory's
    (LR* = 1e-2 per-layer, 1e-2 (w / 64)^-1 global under full alignment)."""
    from abcscale.runner.spec import SweepSpec
    from abcscale.runner.sweep import ROLE_NAMES, layer_hyper

    spec = SweepSpec(model="mlp", widths=[64, 128, 256, 512], lr_modes=[lr_mode], parameterizations=[parameterization],
                     constants={"gamma": gamma, **({"multiplier": multiplier} if multiplier else {})})
    rows = []
    for cell in spec.cells():
        hyper = layer_hyper(spec, cell)
        star = math.log2(1e-2) - (math.log2(cell.width / 64) if lr_mode == "global" else 0.0)
        for x in GRID:
            beta = 2.0**x
            d = x - star
            rows.append({"parameterization": cell.parameterization, "optimizer": "adam", "alignment": cell.alignment,
                         "lr_mode": cell.lr_mode.value, "width": cell.width, "beta": beta, "seed": 0,
                         "depth": spec.depth, "base_width": spec.base,
                         **{f"gamma_{k}": v for k, v in cell.gamma.model_dump().items()},
                         **{f"lr_{r}": beta * hyper.lr_factor[i] for i, r in enumerate(ROLE_NAMES[:4])},
                         "final_loss": math.nan if d > 3 else 3.0 + 0.05 * d * d, "diverged": d > 3,
                         "form": hyper.form, "log2_lr": x,
                         **{f"multiplier_{k}": hyper.multiplier[i] for i, k in enumerate(GAMMA)},
                         **{f"init_std_{k}": hyper.init_std[i] for i, k in enumerate(GAMMA)}})
    target = spec.cells()[0].model_copy(update={"width": 4096})
    return pd.DataFrame(rows), layer_hyper(spec, target), spec


@pytest.mark.parametrize("parameterization", ["mup", "standard", "ntk", "mean_field"])
@pytest.mark.parametrize("lr_mode", ["per_layer", "global"])
def test_a_runner_tables_recommendation_is_what_the_runner_trains_at_the_target(lr_mode, parameterization):
    # multipliers given to the runner come back as M_l whatever a_l moves the written ones by (a code review: only
    # the n^0 layers' were carried, the others recommended at M 1)
    df, at_target, _ = _runner_table(lr_mode, GAMMA, [2.0, 3.0, 0.5], parameterization)
    fit = abcscale.fit(df, n_boot=50)
    assert fit.groups[0].trained_constants["gamma"] == GAMMA
    assert fit.groups[0].trained_constants["multiplier"] == pytest.approx(
        {"embedding": 2.0, "hidden": 3.0, "readout": 0.5})
    rec = recommend_from_fit(fit, 4096)
    # the runner at 4096 with the fitted beta (its beta column: in global mode the one LR at that width, the band's
    # lr; rec.beta is the base width's since session 65): that beta x its lr factor
    for i, s in enumerate(rec.layers):
        assert s.lr == pytest.approx(rec.band.lr * at_target.lr_factor[i], rel=1e-9)
        assert s.multiplier == pytest.approx(at_target.multiplier[i], rel=1e-9)
    if parameterization == "mup":  # the synthetic loss's optimum is muP's exponents'
        truth = 1e-2 * (1.0 if lr_mode == "per_layer" else 64 / 4096)
        assert rec.band.lr == pytest.approx(truth, rel=0.1)


# --- 2. the LR mode against the fitted exponent, whatever its source ---------------------------------------------


def _mode_notes(rec) -> list[str]:
    return [u for u in rec.band.unreliable if u.startswith("lr_mode:")]


def test_a_global_sweep_whose_column_says_per_layer_is_unreliable():
    df = _table(-1.0, setup={"parameterization": "standard", "optimizer": "adam", "lr_mode": "per_layer"})
    rec = recommend_from_fit(abcscale.fit(df, n_boot=50), 4096)
    (said,) = _mode_notes(rec)
    assert "excludes theory's 0 for a per_layer sweep" in said and "recommend with lr_mode global" in said
    assert f"unreliable: {said}" in rec.warnings


def test_a_global_sweep_fitted_with_lr_mode_per_layer_is_unreliable():
    df = _table(-1.0)
    fit = abcscale.fit(df.drop(columns="base_width"), n_boot=50, parameterization="standard", optimizer="adam",
                       lr_mode="per_layer")
    assert len(_mode_notes(recommend_from_fit(fit, 4096))) == 1
    assert len(_mode_notes(abcscale.recommend(fit=fit, width=4096))) == 1


def test_a_per_layer_sweep_whose_column_says_global_is_unreliable():
    df = _table(0.0, setup={"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"})
    (said,) = _mode_notes(recommend_from_fit(abcscale.fit(df, n_boot=50), 4096))
    assert "for a global sweep" in said and "recommend with lr_mode per_layer" in said


def test_one_layers_lr_fitted_as_a_per_layer_sweeps_beta_is_refused():
    # lr_col lr_hidden: LR* falls as 1/width, which is no per-layer sweep's beta (session 64: unreliable); since
    # session 65 no per-layer settings are spread from one layer's own LR at all (tests/fitting/test_lr_layer_s65.py)
    df = _per_layer_gamma_table()
    with pytest.raises(ValueError, match="this fit measured the hidden layer's own LR"):
        recommend_from_fit(abcscale.fit(df, n_boot=50, mapping={"lr_col": "lr_hidden"}), 4096)


@pytest.mark.parametrize(("exponent", "mode", "p"), [(0.0, "per_layer", "mup"), (-1.0, "global", "mup"),
                                                     (-1.0, "global", "standard"), (-0.5, "global", "standard")])
def test_a_mode_the_exponent_agrees_with_says_nothing(exponent, mode, p):
    df = _table(exponent, setup={"parameterization": p, "optimizer": "adam", "lr_mode": mode})
    rec = recommend_from_fit(abcscale.fit(df, n_boot=50), 4096)
    assert not _mode_notes(rec)


# --- 3. a parameter-count fit's size reference ---------------------------------------------------------------------


def test_a_parameter_count_fits_base_is_a_size_not_the_tables_base_width():
    df = _table(-0.5, widths=(128, 256, 512, 1024), base=128,
                setup={"parameterization": "standard", "optimizer": "adam", "lr_mode": "global"})
    df["n_params"] = 12 * df["width"] ** 2
    mapping = {"size_col": "n_params", "size_kind": "params"}
    target = 12 * 8192**2
    fits = [abcscale.fit(d, target_width=target, mapping=mapping, n_boot=50)
            for d in (df, df.drop(columns="base_width"))]
    (a,), (b,) = (f.groups for f in fits)
    assert a.base_width == b.base_width == 12 * 128**2
    assert a.constant == pytest.approx(b.constant, rel=1e-9)
    # C is LR* at the smallest size: 1e-2 there (the truth per parameter: LR* ~ N^-1/4)
    assert a.constant == pytest.approx(1e-2, rel=0.1)
    # --base-width still sets it
    c = abcscale.fit(df, target_width=target, mapping=mapping, n_boot=50, base_width=12 * 256**2).groups[0]
    assert c.base_width == 12 * 256**2 and c.constant == pytest.approx(1e-2 * 2**-0.5, rel=0.1)
    # per-layer settings scale with the width: a parameter-count prediction has none (not a count read as a width)
    assert a.prediction is not None and a.prediction.layers is None


def test_a_parameter_count_fit_reads_no_per_layer_exponents_from_the_lr_columns():
    # log2(lr_l / beta) over log2 N falls at c / 2: read as c, full alignment's per-layer table was "not full"
    df = _per_layer_gamma_table()
    df["n_params"] = 12 * df["width"] ** 2
    fit = abcscale.fit(df, target_width=12 * 8192**2, mapping={"size_col": "n_params", "size_kind": "params"},
                       n_boot=50)
    g = fit.groups[0]
    assert g.lr_exponents is None
    assert g.prediction is not None and g.prediction.unreliable == []
    assert not any("lr_embedding / lr_hidden / lr_readout" in w for w in g.warnings + g.prediction.warnings)
    assert abcscale.fit(df, n_boot=50).groups[0].lr_exponents == {"embedding": 0.5, "hidden": 1.0, "readout": 0.5}


# --- 4. a group whose every run diverged ---------------------------------------------------------------------------


def test_a_group_whose_every_run_diverged_is_refused_with_its_reason():
    setup = {"parameterization": "standard", "optimizer": "adam", "lr_mode": "global"}
    good = _table(-1.0, setup=setup)
    bad = _table(-1.0, setup={**setup, "optimizer": "sgd"}).assign(final_loss=math.nan)
    fit = abcscale.fit(pd.concat([good, bad], ignore_index=True), n_boot=50)
    for call in (lambda: abcscale.predict(fit, 4096, group={"optimizer": "sgd"}),
                 lambda: recommend_from_fit(fit, 4096, selector={"optimizer": "sgd"})):
        with pytest.raises(NoLaw) as exc:
            call()
        assert "every run in this group diverged: lower the learning-rate grid" in str(exc.value)
        assert "only one width" not in str(exc.value)


# --- session 64's code review of the above -----------------------------------------------------------------------


def test_constants_given_at_their_default_values_are_the_callers():
    """`--gamma 1,1,1` is given, not left out: it was replaced by the runs' gamma (2, 1, 0.5) with a note telling the
    caller to give gamma to say others. Given or not is the caller's fields, not their values."""
    fit = _per_layer_gamma_fit()
    ones = Constants.model_validate({"gamma": [1.0, 1.0, 1.0]})
    given = recommend_from_fit(fit, 4096, constants=ones)
    left = recommend_from_fit(fit, 4096)
    r = 4096 / 64
    assert _lrs(given.layers) == pytest.approx({"embedding": given.beta * r**-0.5, "hidden": given.beta / r,
                                                "readout": given.beta * r**-0.5})
    assert any("gamma: the fit's runs trained with embedding 2, hidden 1, readout 0.5" in w for w in given.warnings)
    assert _lrs(left.layers)["embedding"] == pytest.approx(left.beta * 2 * r**-0.5)  # left out: the runs' gamma


def test_one_layers_lr_column_fitted_in_a_global_sweep_keeps_its_gamma_once():
    """`lr_col=lr_readout` is that layer's LR, beta x gamma_readout: carrying the runs' gamma_readout again made the
    readout's recommendation 4x low, with a note that the fitted LR was the optimum under it."""
    df = _table(-1.0, setup={"parameterization": "standard", "optimizer": "adam", "lr_mode": "global"})
    df["gamma_embedding"], df["gamma_hidden"], df["gamma_readout"] = 1.0, 1.0, 0.25
    df["lr_embedding"], df["lr_hidden"], df["lr_readout"] = df["beta"], df["beta"], df["beta"] * 0.25
    fit = abcscale.fit(df, n_boot=30, mapping={"lr_col": "lr_readout"})
    assert "gamma" not in fit.groups[0].trained_constants
    truth = 1e-2 * 64 / 4096 * 0.25  # the readout's optimal LR at 4096
    assert abcscale.predict(fit, 4096).lr == pytest.approx(truth, rel=0.1)
    # the other layers' LRs do not follow from the readout's (they were given the readout's, 4x low): refused since
    # session 65
    with pytest.raises(ValueError, match="this fit measured the readout layer's own LR"):
        recommend_from_fit(fit, 4096)


# --- session 64's end-to-end review: epsilon, and numbers copied from the notes ----------------------------------


def test_the_epsilon_the_runs_trained_with_is_carried_and_a_different_one_said():
    """A sweep at `--epsilon 1e-6` was recommended at the default 1e-8 (every layer 100x low) and failed `check
    --fit` as too high; its epsilon_mode the same way."""
    df = _per_layer_gamma_table().assign(epsilon=1e-6, epsilon_mode="constant")
    fit = abcscale.fit(df, n_boot=50)
    g = fit.groups[0]
    assert (g.trained_epsilon, g.trained_epsilon_mode) == (1e-6, "constant")
    rec = recommend_from_fit(fit, 4096)
    assert [s.epsilon for s in rec.layers] == pytest.approx([1e-6] * 3)  # constant mode: the base's at every width
    assert any(w.startswith("epsilon from the fit's runs: 1e-06") for w in rec.warnings)
    assert any(w.startswith("epsilon_mode from the fit's runs: constant") for w in rec.warnings)
    per_layer = recommend_from_fit(abcscale.fit(df.assign(epsilon_mode="per_layer"), n_boot=50), 4096)
    r = 4096 / 64
    assert [s.epsilon for s in per_layer.layers] == pytest.approx([1e-6 * r**-0.5, 1e-6 / r, 1e-6 * r**-0.5])
    given = recommend_from_fit(fit, 4096, constants=Constants.model_validate({"epsilon": 1e-8}))
    assert [s.epsilon for s in given.layers] == pytest.approx([1e-8] * 3)  # the caller's, said
    assert any(w.startswith("epsilon: the fit's runs trained with 1e-06; yours (1e-08)") for w in given.warnings)
    # a table without the columns (or mixing epsilons) says nothing, and nothing is carried
    assert _per_layer_gamma_fit().groups[0].trained_epsilon is None
    mixed = df.assign(epsilon=np.where(df["width"] == 64, 1e-6, 1e-7))
    assert abcscale.fit(mixed, n_boot=50).groups[0].trained_epsilon is None


def test_a_constant_copied_from_a_note_is_the_same_constant():
    """The carry note prints 3 digits; given back (`--gamma 7.26,1,2.58` for 7.2573, 1, 2.5766) they warned that
    the caller's constants differed, printing the same numbers on both sides."""
    df = _per_layer_gamma_table().assign(gamma_embedding=7.2573, gamma_readout=2.5766)
    fit = abcscale.fit(df, n_boot=50)
    copied = Constants.model_validate({"gamma": [7.26, 1.0, 2.58]})
    assert not [w for w in recommend_from_fit(fit, 4096, constants=copied).warnings if w.startswith("gamma:")]
    other = Constants.model_validate({"gamma": [7.3, 1.0, 2.58]})
    assert [w for w in recommend_from_fit(fit, 4096, constants=other).warnings if w.startswith("gamma:")]


def test_a_carried_epsilon_mode_is_the_vector_and_fixed_roles_too():
    """The runs' constant mode reached the three layers while the vector and fixed roles (the groups, the exports,
    check's reference) were still per_layer: 16x apart at 8192 from a base of 32 (a code review)."""
    from abcscale.schemas.groups import Role

    fit = abcscale.fit(_per_layer_gamma_table().assign(epsilon=1e-6, epsilon_mode="constant"), n_boot=50)
    rec = recommend_from_fit(fit, 4096)
    assert rec.epsilon_mode is not None and rec.epsilon_mode.value == "constant"
    eps = {s.role: s.epsilon for s in rec.groups.roles}
    assert eps[Role.vector] == pytest.approx(1e-6) and eps[Role.embedding] == pytest.approx(1e-6)
    given = recommend_from_fit(fit, 4096, constants=Constants.model_validate({"epsilon_mode": "per_layer"}))
    assert given.epsilon_mode.value == "per_layer"
    assert {s.role: s.epsilon for s in given.groups.roles}[Role.vector] < 1e-6


def test_an_epsilon_is_carried_only_where_the_runs_shared_one():
    base = _per_layer_gamma_table().assign(epsilon_mode="constant")
    w = base["width"]
    cases = [(base.assign(epsilon=np.where(w == 64, 0.0, 1e-6)), None),  # swept {0, 1e-6}: no one epsilon
             (base.assign(epsilon=0.0), 0.0),  # 0 is an epsilon
             (base.assign(epsilon=np.where(w == 64, "default", "1e-6")), None),  # an unreadable cell
             (base.assign(epsilon=1e-6, optimizer_variant="adam_atan2"), None)]  # a variant that takes none
    for table, expected in cases:
        assert abcscale.fit(table, n_boot=50).groups[0].trained_epsilon == expected


# --- a review with users' own tables --------------------------------------------------------------------------------


def _drifting_global_table(seed: int) -> pd.DataFrame:
    """An honest global muP + Adam sweep with an lr_mode column, 3 widths, 1 seed, its optimum drifting at -0.35."""
    rng = np.random.default_rng(seed)
    rows = []
    for w in (64, 128, 256):
        star = -7 - 0.35 * math.log2(w / 64)
        for x in np.arange(round(star) - 4, round(star) + 4.01, 0.5):
            rows.append({"parameterization": "mup", "optimizer": "adam", "lr_mode": "global", "width": w,
                         "base_width": 64, "seed": 0, "beta": 2.0**x,
                         "final_loss": 3 - 0.1 * math.log2(w) + 0.02 * (x - star) ** 2 + rng.normal(0, 0.02)})
    return pd.DataFrame(rows)


def test_the_lr_mode_check_uses_the_exponents_own_interval():
    """With the table's lr_mode column the law leans on theory's prior (df 0), and the check's 95% interval took a
    normal quantile over the free line's standard error: 6x too narrow with 3 widths, so honest drifting sweeps were
    unreliable 4-10% of the time, the fit itself calling the exponent consistent (a review's repro, seed 1021)."""
    fit = abcscale.fit(_drifting_global_table(1021), n_boot=50)
    assert fit.groups[0].consistent and fit.groups[0].law.method == "theory_prior"
    assert not _mode_notes(recommend_from_fit(fit, 1024))
    flagged = sum(bool(_mode_notes(recommend_from_fit(abcscale.fit(_drifting_global_table(s), n_boot=30), 1024)))
                  for s in range(12))
    assert flagged == 0


def test_a_predictions_layers_say_the_constants_they_carry():
    """`fit --target-width` and `predict` gave per-layer settings with a table's constants in them (a StepLR's
    `gamma_hidden` 0.1: the hidden LR 10x low) and no word; `recommend` said it. They say it now, naming the columns."""
    df = _per_layer_gamma_table()
    fit = abcscale.fit(df, n_boot=50, target_width=1024)
    said = [w for w in fit.groups[0].prediction.warnings if w.startswith("gamma from the fit's runs")]
    assert said and "the table's gamma_* columns" in said[0], fit.groups[0].prediction.warnings
    assert [w for w in abcscale.predict(fit, 1024).warnings if w.startswith("gamma from the fit's runs")] == said


def test_an_epsilon_held_by_a_few_rows_is_not_the_groups():
    df = _per_layer_gamma_table().assign(epsilon_mode="constant")
    df["epsilon"] = np.where(np.arange(len(df)) < 3, 1e-6, np.nan)
    assert abcscale.fit(df, n_boot=50).groups[0].trained_epsilon is None


def test_constants_out_of_range_are_not_carried():
    """A service review: a table's gamma_embedding 1e300 (or epsilon 1e300) was stored as a constant the runs trained
    with, and every recommendation from the fit was a 422 ("inputs too extreme")."""
    df = _per_layer_gamma_table().assign(gamma_embedding=1e300, epsilon=1e300, epsilon_mode="constant")
    fit = abcscale.fit(df, n_boot=50)
    g = fit.groups[0]
    assert "embedding" not in g.trained_constants["gamma"] and g.trained_epsilon is None
    assert recommend_from_fit(fit, 4096).layers  # an answer, not a 422's ValueError
