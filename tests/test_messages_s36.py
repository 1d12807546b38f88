"""Session 36's walk through the README as a new user (Quickstart, tour, Commands, Python API, Fitting): each a
silent wrong answer or a message in the wrong words, now a test that fails on the old code."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app
from abcscale.fitting import fit_table
from tests.fitting.test_review_s35 import _sweep

runner = CliRunner()


def _said(res) -> str:
    return " ".join((res.stderr or res.output).split())


@pytest.fixture(scope="module")
def two_groups(tmp_path_factory):
    """A fit of two groups (mup / per_layer and standard / global), its folder and table."""
    d = tmp_path_factory.mktemp("fit")
    df = pd.concat([_sweep(-1.0).assign(parameterization="mup", lr_mode="per_layer"),
                    _sweep(-1.0, seed=1).assign(parameterization="standard", lr_mode="global")], ignore_index=True)
    df.to_csv(d / "table.csv", index=False)
    fit = fit_table(df, n_boot=50)
    (d / "out").mkdir()
    (d / "out" / "fit.json").write_text(fit.model_dump_json())
    return d


def test_a_flag_that_contradicts_the_group_is_refused(two_groups):
    """`-p standard --lr-mode global` with `--group parameterization=mup,lr_mode=per_layer` answered mup /
    per_layer in silence (a conflicting -o was refused)."""
    fit = str(two_groups / "out" / "fit.json")
    group = "parameterization=mup,lr_mode=per_layer"
    res = runner.invoke(app, ["recommend", "--fit", fit, "-n", "1024", "--group", group, "-p", "standard"])
    assert res.exit_code == 2
    assert _said(res) == "error: -p standard contradicts --group's parameterization=mup; give it once"
    res = runner.invoke(app, ["recommend", "--fit", fit, "-n", "1024", "--group", group, "--lr-mode", "global"])
    assert res.exit_code == 2 and "--lr-mode global contradicts --group's lr_mode=per_layer" in _said(res)
    agree = runner.invoke(app, ["recommend", "--fit", fit, "-n", "1024", "--group", group, "-p", "mup"])
    assert agree.exit_code == 0, agree.output
    with pytest.raises(ValueError, match="parameterization: 'standard' contradicts the group's parameterization=mup"):
        abcscale.recommend("standard", "adam", fit=fit, width=1024, group=group)
    # an alias is the same value
    assert abcscale.recommend("mup", "adam", fit=fit, width=1024, group=group).group["parameterization"] == "mup"


def test_an_empty_theory_cell_is_a_table_error_not_a_group(tmp_path):
    df = _sweep()
    df.loc[[5, 17], "lr_mode"] = np.nan
    df.to_csv(tmp_path / "t.csv", index=False)
    res = runner.invoke(app, ["fit", str(tmp_path / "t.csv"), "-q"])
    assert res.exit_code == 2
    assert "lr_mode: empty in row(s) 5, 17; theory reads it for every run's group" in _said(res)


def test_a_theory_column_left_out_of_the_groups_is_said_so(tmp_path):
    df = _sweep()
    df.to_csv(tmp_path / "t.csv", index=False)
    args = ["fit", str(tmp_path / "t.csv"), "-q", "--group-cols", "parameterization,optimizer"]
    res = runner.invoke(app, [*args, "--json"])
    assert "no lr_mode among the group columns (the table has no such column, or --group-cols leaves it out)" \
        in " ".join(res.output.split())
    res = runner.invoke(app, [*args, "--expect-theory"])
    assert res.exit_code == 2 and "--expect-theory: no group holds lr_mode" in _said(res)


def test_target_size_is_named_as_typed():
    res = runner.invoke(app, ["fit", "examples/axes.csv", "--size-col", "N", "--size-kind", "params",
                              "--covariates", "D,batch_size", "--target-size", "0"])
    assert res.exit_code == 2 and _said(res).startswith("error: --target-size: ")


def test_an_empty_or_misnamed_loss_column_is_said_as_such(tmp_path):
    df = _sweep().rename(columns={"final_loss": "eval_loss"})
    df.assign(eval_loss=np.nan).to_csv(tmp_path / "empty.csv", index=False)
    res = runner.invoke(app, ["fit", str(tmp_path / "empty.csv"), "-q"])
    assert res.exit_code == 2
    assert "eval_loss: no run has a loss (every cell is empty or NaN)" in _said(res)
    df.rename(columns={"eval_loss": "Eval_Loss"}).to_csv(tmp_path / "case.csv", index=False)
    res = runner.invoke(app, ["fit", str(tmp_path / "case.csv"), "-q"])
    assert "Eval_Loss looks like it: name it with --loss-col" in _said(res)


def test_recommend_fit_given_a_table_or_a_folder(two_groups):
    for path, what in ((two_groups / "table.csv", "a sweep table"), (two_groups, "a sweep's folder")):
        if what == "a sweep's folder":
            (two_groups / "spec.json").write_text("{}")
        res = runner.invoke(app, ["recommend", "--fit", str(path), "-n", "1024"])
        assert res.exit_code == 2 and f"is {what}, not a fit" in _said(res) and "abcscale fit" in _said(res)
    ok = runner.invoke(app, ["recommend", "--fit", str(two_groups / "out"), "-n", "1024", "--group",
                             "parameterization=mup,lr_mode=per_layer"])
    assert ok.exit_code == 0, ok.output  # the folder `fit --out` wrote


@pytest.mark.parametrize("constants, named", [({"gamma": -1}, "gamma.embedding, gamma.hidden, gamma.readout"),
                                              ({"init_scale": "1,-2,3"}, "init_scale.hidden"),
                                              ({"multiplier": {"readout": 0}}, "multiplier.readout")])
def test_a_bad_constant_names_its_field(constants, named):
    with pytest.raises(ValueError, match=rf"constants \({named}\): Input should be positive"):
        abcscale.recommend("mup", "adam", width=4096, base_width=256, beta=3e-3, constants=constants)


def test_messages_are_in_the_callers_words():
    res = runner.invoke(app, ["recommend", "-p", "mup", "-o", "adam", "-n", "4096", "--base-width", "256",
                              "--base-lr", "3e-3", "--weight-decay", "0.1"])  # (sgd carries its L2 since s48)
    assert res.exit_code == 2 and "weight_decay" not in _said(res).removeprefix("error: --weight-decay")


@pytest.fixture(scope="module")
def axes_fit():
    """The axes example's covariate fit predicted at 2e9 parameters and D 1e10 (read by two tests, fitted once)."""
    return abcscale.fit("examples/axes.csv", mapping={"size_col": "N", "size_kind": "params",
                                                      "covariates": ["D", "batch_size"]},
                        target_width=2_000_000_000, at={"D": 1e10}, n_boot=200)


def test_the_python_api_predicts_at_covariates_as_the_cli_does(axes_fit):
    fit = axes_fit
    res = runner.invoke(app, ["fit", "examples/axes.csv", "--size-col", "N", "--size-kind", "params", "--covariates",
                              "D,batch_size", "--target-size", "2000000000", "--at", "D=1e10", "--n-boot", "200",
                              "--json", "-q"])
    cli = json.loads(res.output)
    assert fit.joint[0].prediction.lr == pytest.approx(cli["joint"][0]["prediction"]["lr"], rel=1e-12)


def test_the_band_line_claims_no_range_below_the_fitted_widths():
    from abcscale.cli.recommend import band_line

    g = fit_table(_sweep(seeds=1), n_boot=50).groups[0]
    from abcscale.fitting import predict_group

    below = band_line(predict_group(g, 2))
    assert "at or below" not in below and below.endswith("of the largest fitted width)")
    assert "(extrapolation x" in band_line(predict_group(g, 8192))


def test_a_smaller_sweep_into_a_folder_says_what_it_replaced(tmp_path):
    pytest.importorskip("jax")
    base = ["sweep", "-p", "mup", "-o", "adam", "--widths", "32", "--steps", "3", "--out", str(tmp_path), "-q"]
    assert runner.invoke(app, [*base, "--log2-lr", "-5:-3:1"]).exit_code == 0
    res = runner.invoke(app, [*base, "--log2-lr", "-5:-4:1"])
    assert res.exit_code == 0 and f"{tmp_path / 'results.parquet'} held 3 runs; it now lists this sweep's 2, " \
        "without 1 of those" in _said(res)


def test_predict_at_covariates_uses_the_joint_law(axes_fit):
    fit = axes_fit
    p = abcscale.predict(fit, 2_000_000_000, at={"D": 1e10})
    assert p.lr == fit.joint[0].prediction.lr and p.at["D"] == 1e10
    with pytest.raises(ValueError, match="at: Q is not a fitted covariate"):
        abcscale.predict(fit, 2_000_000_000, at={"Q": 1})
    # a key no joint law has, refused by name (session 63: "group: no joint law matches" before)
    with pytest.raises(ValueError, match="group key 'parameterization': not a group column"):
        abcscale.predict(fit, 2_000_000_000, at={"D": 1e10}, group={"parameterization": "ntk"})
    plain = abcscale.fit("examples/axes.csv", mapping={"size_col": "N", "size_kind": "params"}, n_boot=50)
    with pytest.raises(ValueError, match="at: this fit has no joint law"):
        abcscale.predict(plain, 10**9, at={"D": 1e10})


class _Captured(Exception):
    pass


@pytest.fixture
def tuned_spec(monkeypatch):
    """The spec `abcscale tune` would search, without searching."""
    import abcscale.usecases.tune as tune_mod

    seen = {}

    def capture(spec, *args, **kwargs):
        seen["spec"] = spec
        raise _Captured

    monkeypatch.setattr(tune_mod, "tune", capture)
    return seen


def test_tune_takes_the_setup_of_its_spec(tmp_path, tuned_spec):
    """The flags' defaults (mup, adam, per_layer, base 32) overrode a SPEC's setup in silence."""
    spec = tmp_path / "spec.toml"
    spec.write_text('parameterizations = ["standard"]\noptimizers = ["sgd"]\nlr_modes = ["global"]\n'
                    "widths = [64, 128]\nsteps = 5\n")
    res = runner.invoke(app, ["tune", str(spec), "--trials", "1", "--out", str(tmp_path / "t.json")])
    assert isinstance(res.exception, _Captured), res.output
    got = tuned_spec["spec"]
    assert (got.parameterizations, got.optimizers, [m.value for m in got.lr_modes], got.widths, got.base) == (
        ["standard"], ["sgd"], ["global"], [64], 64)
    res = runner.invoke(app, ["tune", str(spec), "-p", "mup", "--base-width", "128", "--trials", "1", "--out",
                              str(tmp_path / "t.json")])
    assert isinstance(res.exception, _Captured), res.output
    assert (tuned_spec["spec"].parameterizations, tuned_spec["spec"].base) == (["mup"], 128)  # a flag wins
    spec.write_text('parameterizations = ["standard", "mup"]\n')
    res = runner.invoke(app, ["tune", str(spec), "--trials", "1", "--out", str(tmp_path / "t.json")])
    assert res.exit_code == 2 and "parameterizations lists standard, mup; tune searches one setup: give -p" \
        in _said(res)


def test_a_model_file_imports_its_sibling_modules(tmp_path, monkeypatch):
    """`model.py` doing `from layers import ...` failed ("No module named 'layers'"): the console script has neither
    the file's folder nor the working directory on the import path, as `python model.py` and `python -m` do."""
    pytest.importorskip("jax")
    import sys

    from abcscale.runner.user import load_factory

    monkeypatch.setattr(sys, "path", list(sys.path))  # restored after the test
    proj = tmp_path / "proj_s36"
    proj.mkdir()
    (proj / "layers_s36.py").write_text("def scale(x):\n    return 2 * x\n")
    (proj / "model_s36.py").write_text("from layers_s36 import scale\n\ndef make(width, depth, *, vocab, seq_len):\n"
                                       "    return scale(width)\n")
    assert load_factory(f"{proj / 'model_s36.py'}:make")(3, 1, vocab=4, seq_len=2) == 6
    monkeypatch.chdir(proj)
    assert load_factory("model_s36:make")(5, 1, vocab=4, seq_len=2) == 10  # a module of the working directory


_MLP = '''
import jax.numpy as jnp
from abcscale.runner.user import UserModel


def factory(width, depth, *, vocab, seq_len):
    shapes = {"wte": (vocab, width), "fc1": (width, width), "lm_head": (width, vocab)}

    def apply(params, tokens, record):
        x = record("embed", params["wte"][tokens])
        for _ in range(depth):
            x = x + record(NAME, x @ params["fc1"])
        x = x.reshape(BATCH, tokens.shape[1], width)
        return x @ params["lm_head"]

    return UserModel(shapes=shapes, apply=apply)
'''


@pytest.mark.parametrize("name, batch, said", [
    ('"mlp"', "tokens.shape[0]", "'mlp' is recorded twice in one forward"),
    ('"logits"', "tokens.shape[0]", "'logits' is the runner's own record of the logits"),
    ('f"mlp{_}"', "2", "apply at width 32 failed: TypeError: cannot reshape"),
])
def test_a_user_models_flaws_are_found_before_training(tmp_path, name, batch, said):
    """A loop's repeated record name kept only its last call (the coordinate check passed on it); an apply that
    breaks only at the sweep's batch passed the batch-2 check, then failed mid-sweep with a JAX traceback."""
    pytest.importorskip("jax")
    from abcscale.runner.user import check

    path = tmp_path / f"m{abs(hash((name, batch)))}.py"
    path.write_text(_MLP.replace("NAME", name).replace("BATCH", batch))
    with pytest.raises(ValueError, match=re.escape(said)):
        check(f"{path}:factory", [32], 2, 16, batch=8)
    if batch == "tokens.shape[0]" and name == '"mlp"':
        good = tmp_path / "good_s36.py"  # another file: a factory is loaded once per process
        good.write_text(_MLP.replace("NAME", 'f"mlp{_}"').replace("BATCH", batch))
        check(f"{good}:factory", [32, 64], 2, 16, batch=8)  # a name each: fine


def test_an_interrupted_sweep_says_what_it_kept(tmp_path, monkeypatch):
    """Ctrl-C exited 130 without a word of the finished runs kept, or that a rerun resumes."""
    pytest.importorskip("jax")
    import abcscale.runner.sweep as sweep_mod

    # the finished runs are in the cell files (results.parquet is written when the sweep ends: session 43)
    (tmp_path / "cells").mkdir()
    pd.DataFrame({"width": [32, 32, 64], "beta": [0.1, 0.2, 0.1]}).to_parquet(tmp_path / "cells" / "a.rows.parquet")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_mod, "run_sweep", interrupted)
    res = runner.invoke(app, ["sweep", "-p", "mup", "--widths", "32", "--steps", "3", "--out", str(tmp_path), "-q"])
    assert res.exit_code == 130
    assert f"interrupted: 3 finished runs are kept in {tmp_path / 'cells'}" in _said(res) and "resumes" in _said(res)


def test_a_spec_files_model_and_data_are_named_by_the_file(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text('model = "nosuch_s36.py:make"\nwidths = [32]\n')
    res = runner.invoke(app, ["sweep", str(spec), "-q", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and _said(res).startswith(f"error: {spec}: model nosuch_s36.py:make: ")
    res = runner.invoke(app, ["sweep", str(spec), "--model", "other_s36.py:make", "-q", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and _said(res).startswith("error: --model other_s36.py:make: ")
    spec.write_text(f'data = "{tmp_path / "none.txt"}"\nwidths = [32]\n')
    res = runner.invoke(app, ["sweep", str(spec), "-q", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and _said(res).startswith(f"error: {spec}: data: ")


def test_ctrl_c_in_a_search_prints_no_optuna_traceback(capfd):
    """Optuna logged a 40-line "Trial N failed ... KeyboardInterrupt" traceback before tune's own one line."""
    optuna = pytest.importorskip("optuna")
    from abcscale.schemas.tune import TuneSettings
    from abcscale.usecases import tune as tune_mod

    study = optuna.create_study()
    calls = []

    def evaluate(params, seed):
        calls.append(params)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return 1.0

    with pytest.raises(KeyboardInterrupt):
        tune_mod._optimize(study, {"beta": (1e-3, 1e-1)}, evaluate, TuneSettings(trials=5), 5, None)
    err = capfd.readouterr().err
    assert "KeyboardInterrupt" not in err and "Traceback" not in err and "failed" not in err
    assert not any(f.__class__.__name__ == "_NoInterrupt" for h in optuna.logging._get_library_root_logger().handlers
                   for f in h.filters)  # removed again


@pytest.mark.parametrize("group, kw", [({"alignment": "FULL"}, {"alignment": "full"}),
                                       ({"optimizer": "Adam_Atan2"}, {"optimizer": "adam_atan2"}),
                                       ({"parameterization": "SP"}, {"parameterization": "standard"})])
def test_a_flag_agreeing_with_the_group_in_other_spelling_is_no_contradiction(group, kw):
    from abcscale.usecases.recommend import selector_from

    assert selector_from(group, **kw) == group  # compared as select_group compares them


def test_strict_with_a_bad_target_width_says_one_thing():
    from pydantic import ValidationError

    from abcscale.schemas.api import FitOptions

    with pytest.raises(ValidationError) as info:
        FitOptions.model_validate({"strict": True, "target_width": 0})
    assert [e["loc"] for e in info.value.errors()] == [("target_width",)]


def test_tune_at_a_spec_base_width_its_head_dim_refuses_names_the_spec(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text("widths = [64, 128]\nbase_width = 8\nhead_dim = 16\n")
    res = runner.invoke(app, ["tune", str(spec), "--trials", "1", "--out", str(tmp_path / "t.json")])
    assert res.exit_code == 2
    assert _said(res).startswith(f"error: {spec}: tuned at its base width 8: ") and "--base-width" in _said(res)
