"""What a review of abcscale as a CI gate found (session 32): a key given twice in a config silently took its later
value (and flipped a verdict), `fit --strict` without a target width passed whatever the fit, and `check --fit`
told the user to "select one with group key=value", an option check does not have."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from abcscale.cli import app
from abcscale.fitting import fit_table
from abcscale.fitting.synthetic import synthetic_sweep
from tests.usecases.test_check_service import config

runner = CliRunner()


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_key_given_twice_is_exit_2_naming_it(tmp_path, suffix):
    cfg = config()
    if suffix == ".yaml":
        import yaml

        text = yaml.safe_dump(cfg) + "width: 1024\n"  # a merge conflict's leftover: the later value used to win
    else:
        text = json.dumps(cfg)[:-1] + ', "width": 1024}'
    path = tmp_path / f"run{suffix}"
    path.write_text(text)
    res = runner.invoke(app, ["check", str(path)])
    assert res.exit_code == 2 and "the key 'width' appears twice" in res.stderr, res.output
    path.write_text(text.replace("width: 1024\n", "").replace(', "width": 1024', ""))
    assert runner.invoke(app, ["check", str(path)]).exit_code == 0  # the config itself passes


def test_yaml_merge_keys_may_still_be_overridden(tmp_path):
    from abcscale.usecases.config_map import load_yaml

    assert load_yaml("base: &b\n  width: 1\nrun:\n  <<: *b\n  width: 2\n")["run"] == {"width": 2}
    # an anchored mapping that merges and overrides, merged again (the code review's case: the first loader checked
    # mappings after PyYAML had flattened the merge into them and called the override a duplicate)
    text = "a: &a\n  x: 1\n  y: 2\nb: &b\n  <<: *a\n  x: 3\nc:\n  <<: *b\n  y: 4\n"
    import yaml

    assert load_yaml(text) == yaml.safe_load(text)


def test_a_rules_file_with_a_pattern_twice_is_refused(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text('{"lm_head": "readout", "lm_head": "embedding"}')
    res = runner.invoke(app, ["recommend", "-p", "mup", "-o", "adam", "-n", "1024", "--base-width", "256",
                              "--base-lr", "3e-3", "--rules", str(path)])
    assert res.exit_code == 2 and "'lm_head' appears twice" in res.stderr, res.output


def test_fit_strict_without_a_target_width_is_exit_2(tmp_path):
    path = tmp_path / "two.csv"
    synthetic_sweep((64, 128), seeds=1, group={"parameterization": "mup", "optimizer": "adam",
                                               "lr_mode": "global"}).to_csv(path, index=False)
    res = runner.invoke(app, ["fit", str(path), "--strict", "-q", "--n-boot", "50"])
    assert res.exit_code == 2 and "--strict" in res.stderr and "--target-width" in res.stderr
    res = runner.invoke(app, ["fit", str(path), "--strict", "-q", "--n-boot", "50", "--target-width", "4096"])
    assert res.exit_code == 1 and "from 2 widths" in res.stderr  # the gate it is meant to be


def test_check_with_a_fit_of_no_matching_group_says_to_name_it_in_the_config(tmp_path):
    group = {"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"}
    fit = fit_table(synthetic_sweep((64, 128, 256), seeds=2, group=group), n_boot=50)
    fit_path = tmp_path / "fit.json"
    fit_path.write_text(fit.model_dump_json())
    cfg = tmp_path / "run.json"
    cfg.write_text(json.dumps(config() | {"lr_mode": "per_layer"}))
    res = runner.invoke(app, ["check", str(cfg), "--fit", str(fit_path)])
    assert res.exit_code == 2 and "name it in the config (parameterization, optimizer, lr_mode" in res.stderr
    assert "select one with group key=value" not in res.stderr  # recommend's words; check's --group since s47


def test_fit_takes_the_setup_a_table_lacks_for_theory(tmp_path):
    """A team's own table without parameterization / optimizer / lr_mode columns could not be gated with
    --expect-theory (exit 2, "no lr_mode column"), and fit had no flag to say them."""
    path = tmp_path / "own.csv"
    synthetic_sweep((64, 128, 256, 512), exponent=-1.0, seeds=2, seed=3).to_csv(path, index=False)
    base = ["fit", str(path), "-q", "--n-boot", "50", "--expect-theory"]
    res = runner.invoke(app, base)
    assert res.exit_code == 2 and "no group holds parameterization, optimizer, lr_mode" in res.stderr, res.output
    ok = runner.invoke(app, [*base, "-p", "mup", "-o", "adam", "--lr-mode", "global", "--json"])
    assert ok.exit_code == 0, ok.output
    g = json.loads(ok.stdout)["groups"][0]
    assert g["group"] == {"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"}
    assert g["theory_exponent"] == -1.0 and g["consistent"] is True
    # per-layer mode: theory says 0, so the same sweep (its LR falls as 1/width) is rejected: the gate bites
    bad = runner.invoke(app, [*base, "-p", "mup", "-o", "adam", "--lr-mode", "per_layer"])
    assert bad.exit_code == 1, bad.output
    for argv, needle in ((["--lr-mode", "sideways"], "--lr-mode: "), (["-p", "xyz"], "--parameterization: unknown")):
        res = runner.invoke(app, [*base, *argv])
        assert res.exit_code == 2 and needle in res.stderr, res.output
    has = tmp_path / "has.csv"
    synthetic_sweep((64, 128), seeds=1, group={"optimizer": "adam"}).to_csv(has, index=False)
    res = runner.invoke(app, ["fit", str(has), "-o", "sgd"])
    assert res.exit_code == 2 and "--optimizer: the table has its own optimizer column" in res.stderr


def test_smaller_input_mistakes_are_said_in_the_caller_s_words(tmp_path):
    import yaml

    cfg = config()
    hidden = cfg["lr"]["hidden"]
    path = tmp_path / "run.yaml"
    # one init std for every layer (a Hugging Face config's initializer_range): checked per layer, not a class name
    path.write_text(yaml.safe_dump(cfg | {"init_std": 0.02}))  # 1.28x the rule's 1/64 at every layer here
    res = runner.invoke(app, ["check", str(path), "--json"])
    assert res.exit_code == 0 and "LayerValues" not in res.output, res.output
    checked = {(c["setting"], c["layer"]) for c in json.loads(res.stdout)["checks"]}
    assert {("init_std", "embedding"), ("init_std", "hidden"), ("init_std", "readout")} <= checked
    path.write_text(yaml.safe_dump(cfg | {"init_std": 0.2}))
    res = runner.invoke(app, ["check", str(path), "--json"])
    assert res.exit_code == 1 and len([f for f in json.loads(res.stdout)["failed"] if f.startswith("init_std")]) == 3
    # standard input, YAML or JSON
    res = runner.invoke(app, ["check", "-"], input=json.dumps(cfg))
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["check", "-"], input=yaml.safe_dump(cfg | {"lr": cfg["lr"] | {"hidden": 4 * hidden}}))
    assert res.exit_code == 1, res.output
    # a missing map file names the flag
    res = runner.invoke(app, ["check", str(path), "--map-file", str(tmp_path / "nope.toml")])
    assert res.exit_code == 2 and res.stderr.startswith("error: --map-file: ") and "no such file" in res.stderr
    # a fit given where a constants file belongs says which it is
    fit = tmp_path / "fit.json"
    fit.write_text(fit_table(synthetic_sweep((64, 128, 256), seeds=1), n_boot=20).model_dump_json())
    res = runner.invoke(app, ["recommend", "--constants", str(fit), "-n", "1024"])
    assert res.exit_code == 2 and "a fit from `abcscale fit`, not a constants file" in res.stderr
    assert "Field required" not in res.stderr
    # a check across spec fields names the flag typed (the widths here; head_dim is the default: session 57)
    res = runner.invoke(app, ["sweep", "--widths", "24,40", "--out", str(tmp_path / "o"), "-q"])
    assert res.exit_code == 2 and "--widths: head_dim 16 must divide every width" in res.stderr


def test_check_gates_a_decoupled_weight_decay(tmp_path):
    """`check` refused `weight_decay` as an unknown key, so an AdamW config had to drop it and a decay wrong at width
    N was never caught. It is checked against the transfer of the base width's tuned decay, in the run's form."""
    import yaml

    import abcscale

    def run(cfg):
        path = tmp_path / "run.yaml"
        path.write_text(yaml.safe_dump(cfg))
        res = runner.invoke(app, ["check", str(path), "--json"])
        return res.exit_code, json.loads(res.stdout) if res.exit_code < 2 else res.output

    for form in ("abc", "multiplier_free"):
        rec = abcscale.recommend("mup", "adamw", width=4096, base_width=256, beta=3e-3, weight_decay=0.1, form=form)
        roles = {s.role.value: s for s in rec.groups.roles if s.role.value not in ("vector", "fixed")}
        base = {"parameterization": "mup", "optimizer": "adamw", "width": 4096, "base_width": 256, "beta": 3e-3,
                "form": form, "lr": {r: s.lr for r, s in roles.items()},
                "init_std": {r: s.init_std for r, s in roles.items()}, "constants": {"weight_decay": 0.1}}
        if form == "multiplier_free":
            base["multiplier"] = {r: 1.0 for r in roles}
        wd = {r: s.weight_decay for r, s in roles.items()}
        code, report = run(base | {"weight_decay": wd})
        assert code == 0 and {c["layer"] for c in report["checks"] if c["setting"] == "weight_decay"} == set(wd), report
        code, report = run(base | {"weight_decay": wd | {"hidden": 8 * wd["hidden"]}})
        assert code == 1 and report["failed"] == ["weight_decay (hidden) too high"], report
    # without the tuned decay there is nothing to compare with: said, not failed; nor with an optimizer without one
    code, report = run({k: v for k, v in base.items() if k != "constants"} | {"weight_decay": 0.1})
    assert code == 0 and any(w.startswith("weight_decay: not checked") for w in report["warnings"])
    code, report = run(base | {"optimizer": "adam", "constants": {}, "weight_decay": 0.1})
    assert code == 0 and any("only checked for optimizers with a decay rule" in w for w in report["warnings"])
    code, out = run(base | {"weight_decay": -0.1})
    assert code == 2 and "weight_decay" in out


def test_a_constants_file_with_a_key_twice_is_refused(tmp_path):
    """The re-verification's variant: a second "beta" in a tuned file turned a passing check into FAIL (and made
    recommend's hidden LR 170x too large) without a word."""
    from abcscale.usecases.tune import save_constants
    from tests.usecases.test_tune import _tuned

    path = save_constants(_tuned(), tmp_path / "tuned.json")
    text = path.read_text().rstrip().removesuffix("}") + ', "beta": 1.0}\n'
    path.write_text(text)
    res = runner.invoke(app, ["recommend", "--constants", str(path), "-n", "1024"])
    assert res.exit_code == 2 and "the key 'beta' appears twice" in res.stderr, res.output


def test_code_review_corners_of_the_new_gates(tmp_path):
    """Session 32's code review: a layer left undecayed (0) always failed "too low"; a mup config's weight_decay was
    dropped without a word; `fit -p/-o/--lr-mode` with --group-cols did nothing; a global LR that grows or stays was
    said to shrink "as n^--0.5"."""
    import yaml

    import abcscale
    from abcscale.theory.transfer import _scaling

    rec = abcscale.recommend("mup", "adamw", width=4096, base_width=256, beta=3e-3, weight_decay=0.1)
    base = {"parameterization": "mup", "optimizer": "adamw", "width": 4096, "base_width": 256, "beta": 3e-3,
            "lr": {s.layer.value: s.lr for s in rec.layers}, "constants": {"weight_decay": 0.1}}
    wd = {s.layer.value: s.weight_decay for s in rec.layers}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(base | {"weight_decay": wd | {"embedding": 0.0}}))
    res = runner.invoke(app, ["check", str(path), "--json"])
    report = json.loads(res.stdout)
    assert res.exit_code == 0 and any("embedding left undecayed (0): not checked" in w for w in report["warnings"])
    mup = {"parameterization": "mup", "optimizer": "adamw", "width": 1024,
           "mup": {"base_width": 256, "lr": 3e-3}, "weight_decay": 1000.0}
    path.write_text(yaml.safe_dump(mup))
    res = runner.invoke(app, ["check", str(path), "--json"])
    assert any(w.startswith("weight_decay: not checked with a mup table") for w in json.loads(res.stdout)["warnings"])
    table = tmp_path / "own.csv"
    synthetic_sweep((64, 128, 256), exponent=-1.0, seeds=2, seed=3).assign(team="a").to_csv(table, index=False)
    res = runner.invoke(app, ["fit", str(table), "-q", "--n-boot", "50", "--group-cols", "team", "-p", "mup", "-o",
                              "adam", "--lr-mode", "global", "--expect-theory", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["groups"][0]["group"] == {"team": "a", "parameterization": "mup",
                                                          "optimizer": "adam", "lr_mode": "global"}
    assert [_scaling(c) for c in (0.5, -0.5, 0.0)] == ["shrinks as n^-0.5", "grows as n^0.5", "stays constant (c = 0)"]
