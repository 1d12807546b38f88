"""`abcscale check` on invariants: a microsoft/mup run (a `mup:` table, or `form: mup` with effective LRs) and
runs in any form pass when correct; a real violation fails naming the layer (issue 13 item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from abcscale import theory
from abcscale.cli import app
from abcscale.schemas.theory import BaseConfig
from abcscale.theory.groups import group_spec

runner = CliRunner()
BETA, BASE, WIDTH = 3e-3, 256, 4096
#: microsoft/mup's ground truth at base 256, width 4096 (issue 13 item 4): the LRs that apply per role
# fixed (a readout's bias): MuAdam and MuSGD leave a parameter with no width-sized axis unscaled
TRUTH = {"adam": {"embedding": BETA, "hidden": BETA / 16, "readout": BETA, "vector": BETA, "fixed": BETA},
         "sgd": {"embedding": 16 * BETA, "hidden": BETA, "readout": 16 * BETA, "vector": 16 * BETA, "fixed": BETA}}
#: abcscale's constants for a mup setup at base 256 (what `abcscale mup import` prints)
MUP_CONSTANTS = {"multiplier_scale": {"embedding": 0.0625, "hidden": 1.0, "readout": 16.0},
                 "init_scale": {"embedding": 16.0, "hidden": 1.0, "readout": 1.0}, "epsilon_mode": "constant"}


def check(tmp_path: Path, cfg: dict, *args: str):
    p = tmp_path / "run.yaml"
    p.write_text(yaml.safe_dump(cfg))
    res = runner.invoke(app, ["check", str(p), "--json", *args])
    return res, (json.loads(res.stdout) if res.exit_code in (0, 1) else None)


def mup_table(optimizer: str, lr: float | dict = BETA) -> dict:
    return {"optimizer": optimizer, "width": WIDTH, "beta": BETA,
            "mup": {"base_width": BASE, "lr": lr, "init_std": {"embedding": 1.0, "hidden": 1 / 16, "readout": 1 / 16},
                    "epsilon": 1e-8}}


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_a_correct_microsoft_mup_run_passes_with_mups_own_numbers(tmp_path, optimizer):
    res, report = check(tmp_path, mup_table(optimizer))
    assert res.exit_code == 0, res.output
    lrs = {c["layer"]: c["yours"] for c in report["checks"] if c["setting"] == "lr"}
    assert lrs == pytest.approx(TRUTH[optimizer])  # what MuAdam/MuSGD applies: the ground truth
    readout = next(c for c in report["checks"] if c["layer"] == "readout")
    assert readout["multiplier"] == pytest.approx(1 / 16) and report["form"].startswith("mup")
    assert all(c["ratio"] == pytest.approx(1.0) for c in report["checks"] if c["setting"] != "epsilon")
    if optimizer == "adam":  # mup keeps one epsilon: said against the constant rule, not failed, with the
        # per_layer rule's ratios beside it (muP + Adam at 4096 over 256: mup's 1e-8 is 16x that rule's everywhere)
        assert any("epsilon_mode constant" in w and "embedding 4x" in w for w in report["warnings"])
        per_layer = next(w for w in report["warnings"] if "per_layer rule" in w)
        assert all(f"{r} 16x" in per_layer for r in ("embedding", "hidden", "readout", "vector"))


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_a_mup_run_with_its_hidden_lr_4x_off_fails_naming_the_hidden_layer(tmp_path, optimizer):
    lr = {"embedding": BETA, "hidden": 4 * BETA, "readout": BETA, "vector": BETA}
    res, report = check(tmp_path, mup_table(optimizer, lr))
    assert res.exit_code == 1
    assert report["failed"] == ["lr (hidden) too high"]
    res = runner.invoke(app, ["check", str(tmp_path / "run.yaml")])
    assert "lr (hidden) too high" in res.output and "mup" in res.output


def effective(optimizer: str, hidden_factor: float = 1.0) -> dict:
    lr = dict(TRUTH[optimizer], hidden=TRUTH[optimizer]["hidden"] * hidden_factor)
    return {"parameterization": "mup", "optimizer": optimizer, "width": WIDTH, "base_width": BASE, "beta": BETA,
            "form": "mup", "lr": lr, "init_std": {"embedding": 1.0, "hidden": 1 / 64, "readout": 1 / 16},
            **MUP_CONSTANTS}


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_the_same_run_written_as_effective_lrs_in_the_mup_form(tmp_path, optimizer):
    res, report = check(tmp_path, effective(optimizer))
    assert res.exit_code == 0, res.output
    assert len([c for c in report["checks"] if c["setting"] == "lr"]) == 5  # lr.vector and lr.fixed too
    res, report = check(tmp_path, effective(optimizer, hidden_factor=4.0))
    assert res.exit_code == 1 and report["failed"] == ["lr (hidden) too high"]


def test_mups_numbers_against_abcscales_default_constants_fail_on_embedding_and_readout(tmp_path):
    # the trap: a beta tuned with microsoft/mup is not abcscale's beta under the default constants
    cfg = {k: v for k, v in effective("adam").items() if k not in MUP_CONSTANTS}
    res, report = check(tmp_path, cfg)
    assert res.exit_code == 1
    # 16x off (the multiplier constants 1/16 and 16 missing); a vector-like LR takes no multiplier: it agrees
    assert {f.split(" ")[1] for f in report["failed"] if f.startswith("lr")} == {"(embedding)", "(readout)"}
    ratios = {c["layer"]: c["ratio"] for c in report["checks"] if c["setting"] == "lr"}
    assert ratios == pytest.approx({"embedding": 1 / 16, "hidden": 1.0, "readout": 16.0, "vector": 1.0, "fixed": 1.0})


@pytest.mark.parametrize("form", ["abc", "multiplier_free", "mup"])
def test_the_recommendation_in_any_form_passes(tmp_path, form):
    rec = theory.transfer("mup", "adam", BaseConfig(width=BASE, beta=BETA), WIDTH)
    spec = group_spec(rec, form)
    table = {k: {s.role.value: getattr(s, k) for s in spec.roles if s.role.value not in ("vector", "fixed")}
             for k in ("lr", "init_std", "epsilon")}
    table["lr"]["vector"] = spec["vector"].lr
    table["lr"]["fixed"] = spec["fixed"].lr
    cfg = {"parameterization": "mup", "optimizer": "adam", "width": WIDTH, "base_width": BASE, "beta": BETA,
           "form": form, **table}
    res, report = check(tmp_path, cfg)
    assert res.exit_code == 0, res.output
    assert all(c["ratio"] == pytest.approx(1.0) for c in report["checks"])
    if form != "abc":  # the raw values differ from the abc recommendation's: only the invariants agree
        assert any(c["yours"] != pytest.approx(rec[c["layer"]].lr) for c in report["checks"]
                   if c["setting"] == "lr" and c["layer"] != "vector")


def test_lr_vector_is_checked_against_the_vector_like_rule(tmp_path):
    rec = theory.transfer("mup", "adam", BaseConfig(width=BASE, beta=BETA), WIDTH)
    vector = group_spec(rec, "abc")["vector"].lr
    cfg = {"parameterization": "mup", "optimizer": "adam", "width": WIDTH, "base_width": BASE, "beta": BETA,
           "lr": {"hidden": rec["hidden"].lr, "vector": 4 * vector}}
    res, report = check(tmp_path, cfg)
    assert res.exit_code == 1 and report["failed"] == ["lr (vector) too high"]
    # the embedding's LR for a LayerNorm gain (what the runner used to do) is 4x too low at 4096
    cfg["lr"]["vector"] = rec["embedding"].lr
    assert check(tmp_path, cfg)[1]["failed"] == ["lr (vector) too low"]


def test_a_mup_run_without_beta_follows_its_own_rule(tmp_path):
    cfg = mup_table("adam", {"embedding": BETA, "hidden": 4 * BETA, "readout": BETA, "vector": BETA})
    del cfg["beta"]  # the reference is the setup's own base-width numbers, carried by theory: it passes
    assert check(tmp_path, cfg)[0].exit_code == 0


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda c: c["mup"].update(base_widht=c["mup"].pop("base_width")),
     "mup.base_widht: unknown key (did you mean 'base_width'?)"),
    (lambda c: c["mup"].update(output_mul=1.0), "mup.output_mul: unknown key (did you mean 'output_mult'?)"),
    (lambda c: c.update(fomr="mup"), "fomr: unknown key (did you mean 'form'?)"),
    (lambda c: c["mup"].update(lr={"embedding": 1e-3, "hidden": 1e-3, "readout": 1e-3}), "mup.lr: "),
    (lambda c: c["mup"].update(lr={"embedding": 1, "hidden": 1, "readout": 1, "vectr": 1}),
     "mup.lr.vectr: unknown key (did you mean 'vector'?)"),
    (lambda c: c.update(lr=1e-3), "lr: with a mup table"),
    (lambda c: c.update(parameterization="sp"), "parameterization: a mup table"),
    (lambda c: c.update(gamma=2.0), "constants: a mup table"),
    (lambda c: c["mup"].update(output_mult=-1), "mup.output_mult"),
])
def test_bad_mup_configs_exit_2_naming_the_key(tmp_path, mutate, expected):
    cfg = mup_table("adam")
    mutate(cfg)
    res, _ = check(tmp_path, cfg)
    assert res.exit_code == 2, res.output
    assert expected in res.output and "Traceback" not in res.output


def test_form_typo_and_vector_typo_at_the_top_level(tmp_path):
    cfg = effective("adam")
    cfg["lr"]["vectr"] = cfg["lr"].pop("vector")
    cfg["form"] = "mupp"
    res, _ = check(tmp_path, cfg)
    assert res.exit_code == 2
    assert "lr.vectr: unknown key (did you mean 'vector'?)" in res.output and "form" in res.output


# --- what a review of check's verdicts found (session 30) --------------------------------------------------------

@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "lion", "muon"])
def test_recommends_own_mup_setup_passes_without_beta(tmp_path, optimizer):
    """`recommend --form mup` gives the vector-like group its own LR; check, without beta, compared it with the
    embedding's rule and failed `lr (vector) too low` on the other command's own output."""
    args = ["recommend", "-p", "mup", "-o", optimizer, "--width", str(WIDTH), "--base-width", str(BASE),
            "--base-lr", str(BETA), "--form", "mup", "--json"]
    setup = json.loads(runner.invoke(app, args).stdout)["groups"]["mup"]
    table = {k: setup[k] for k in ("base_width", "lr", "output_mult", "init_std")}
    res, report = check(tmp_path, {"optimizer": optimizer, "width": WIDTH, "mup": table})
    assert res.exit_code == 0, res.output
    assert all(c["ok"] for c in report["checks"])


def test_an_epsilon_of_zero_on_both_sides_agrees_and_the_json_report_stays_json(tmp_path):
    cfg = mup_table("adam")
    cfg["mup"]["epsilon"] = 0.0
    res, report = check(tmp_path, cfg)
    assert res.exit_code == 0, res.output  # was "0 vs 0, inf x, too high" (exit 1), and --json exit 2
    assert all(c["ratio"] == 1.0 for c in report["checks"] if c["setting"] == "epsilon")


@pytest.mark.parametrize("lr", [{}, {"hidden": None}])
def test_a_learning_rate_table_with_nothing_in_it_is_an_error_not_a_pass(tmp_path, lr):
    cfg = {"parameterization": "mup", "optimizer": "adam", "width": WIDTH, "base_width": BASE, "beta": BETA,
           "lr": lr}
    res, _ = check(tmp_path, cfg)
    assert res.exit_code == 2 and "no layer's learning rate given" in res.output


@pytest.mark.parametrize(("cfg", "key"), [({"width": True}, "width"), ({"lr": {"hidden": True}}, "hidden"),
                                          ({"beta": False}, "beta")])
def test_true_or_false_where_a_number_goes_is_an_error_naming_the_key(tmp_path, cfg, key):
    """pydantic's lax mode read `width: true` as a width of 1 and gave a confident verdict on it."""
    base = {"parameterization": "mup", "optimizer": "adam", "width": WIDTH, "base_width": BASE, "beta": BETA,
            "lr": {"hidden": BETA / 16}}
    res, _ = check(tmp_path, {**base, **cfg})
    assert res.exit_code == 2 and f"{key}: a number, not true/false" in res.output


FACE = {"parameterization": "standard", "optimizer": "adam", "alignment": [1.0, 0.5, 1.5], "width": WIDTH,
        "base_width": BASE, "beta": BETA}


def test_a_run_elsewhere_on_a_non_unique_optimum_passes_and_off_it_fails(tmp_path):
    """Alignment (1, 0.5, 1.5): the smallest total c is a face, embedding [0, 0.5] trading against the readout
    [1, 1.5] (hidden layers in series pin the hidden c at u = 1.5, session 51). check compared with the solver's
    vertex and failed another point of the face, as good a point."""
    on_face = {"embedding": 7.5e-4, "hidden": 4.6875e-5, "readout": 1.875e-4}  # c = (0.5, 1.5, 1) at 4096 / 256
    res, report = check(tmp_path, {**FACE, "lr": on_face})
    assert res.exit_code == 0, res.output
    assert all(c["ratio"] == pytest.approx(1.0) for c in report["checks"])
    assert any("nearest the run's" in w for w in report["warnings"])
    # both layers at their largest LRs at once is off the face (unstable): 4x beyond it each
    off = {**on_face, "embedding": 3e-3, "readout": 7.5e-4}  # c = (0, 1.5, 0.5)
    res, report = check(tmp_path, {**FACE, "lr": off})
    assert res.exit_code == 1 and set(report["failed"]) == {"lr (embedding) too high", "lr (readout) too high"}


def test_a_mup_run_with_each_groups_eps_reads_them_and_says_why_they_are_not_checked(tmp_path):
    """`mup export` gives each param group its own eps: the rule's for the constants it exported with, which a mup
    table does not hold (from_mup's constants have other multipliers, and one base epsilon is not invariant under
    that change), so a table of per-group eps is read, said and not checked; the LRs and stds still are."""
    from abcscale.schemas.api import AnalyticRecommend
    from abcscale.usecases.mup import mup_export

    out = mup_export(AnalyticRecommend.model_validate({"parameterization": "mup", "optimizer": "adam", "width": WIDTH,
                                                       "base": {"width": BASE, "beta": BETA}}))
    cfg = {"optimizer": "adam", "width": WIDTH,
           "mup": {"base_width": BASE, "lr": {r.value: v for r, v in out.setup.lr.items()},
                   "init_std": {r.value: v for r, v in out.setup.init_std.items()},
                   "epsilon": {r.value: v for r, v in out.setup.epsilon.items()}}}
    res, report = check(tmp_path, cfg)
    assert res.exit_code == 0, res.output
    assert not [c for c in report["checks"] if c["setting"] == "epsilon"]
    assert {c["setting"] for c in report["checks"]} == {"lr", "init_std"}
    assert all(c["ratio"] == pytest.approx(1.0) for c in report["checks"])
    assert any("per param group with a mup table, not checked" in w for w in report["warnings"])
    cfg["mup"]["epsilon"] = {"hidden": -1.0}
    res, _ = check(tmp_path, cfg)
    assert res.exit_code == 2 and "mup.epsilon" in res.output and "DecayValues" not in res.output
    cfg["mup"]["epsilon"] = 1e-8  # one eps, as microsoft/mup: checked as before
    _, report = check(tmp_path, cfg)
    assert len([c for c in report["checks"] if c["setting"] == "epsilon"]) == 4


# --- what a CI user's review found (session 41) -------------------------------------------------------------------

def test_a_mup_table_without_beta_says_that_nothing_of_its_lrs_is_checked(tmp_path):
    cfg = mup_table("adam", {"embedding": 1e-9, "hidden": 50.0, "readout": 3e-3, "vector": 7.0})
    del cfg["beta"]
    res, report = check(tmp_path, cfg)
    assert res.exit_code == 0 and any(w.startswith("beta: not given") for w in report["warnings"])
    cfg["beta"] = BETA
    assert not any(w.startswith("beta: not given") for w in check(tmp_path, cfg)[1]["warnings"])


def test_a_layers_learning_rate_given_as_null_is_an_error_not_a_skipped_row(tmp_path):
    rec = theory.transfer("mup", "adam", BaseConfig(width=BASE, beta=BETA), WIDTH)
    lr = {s.layer.value: s.lr for s in rec.layers} | {"hidden": None}
    cfg = {"parameterization": "mup", "optimizer": "adam", "width": WIDTH, "base_width": BASE, "beta": BETA,
           "lr": lr}
    res, _ = check(tmp_path, cfg)
    assert res.exit_code == 2 and "lr.hidden" in res.output and "null" in res.output
    del cfg["lr"]["hidden"]  # left out of the table: the layers given are checked, as before
    assert check(tmp_path, cfg)[0].exit_code == 0
