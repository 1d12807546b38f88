"""`abcscale check` in local (analytic) mode: exit 0 / 1 / 2 and a stable JSON report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from abcscale import theory
from abcscale.cli import app
from abcscale.schemas.theory import BaseConfig

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "check-config.yaml"


def matching_config(width: int = 4096) -> dict:
    rec = theory.transfer("mup", "adam", BaseConfig(width=256, beta=3e-3), width)
    return {
        "parameterization": "mup", "optimizer": "adam", "width": width, "base_width": 256, "beta": 3e-3,
        "lr": {s.layer.value: s.lr for s in rec.layers},
        "init_std": {s.layer.value: s.init_std for s in rec.layers},
        "multiplier": {s.layer.value: s.multiplier for s in rec.layers},
        "epsilon": {s.layer.value: s.epsilon for s in rec.layers},
    }


def write(tmp_path: Path, data: dict, suffix: str = ".yaml") -> Path:
    p = tmp_path / f"run{suffix}"
    if suffix == ".json":
        p.write_text(json.dumps(data))
    else:
        p.write_text(yaml.safe_dump(data))
    return p


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_shipped_example_passes():
    res = invoke("check", EXAMPLE)
    assert res.exit_code == 0, res.output


def test_matching_config_exits_0_json(tmp_path):
    res = invoke("check", write(tmp_path, matching_config()), "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["ok"] is True and report["exit_code"] == 0 and report["failed"] == []
    assert {"setting", "layer", "yours", "recommended", "ratio", "tolerance", "ok", "verdict"} <= set(
        report["checks"][0])
    # lr, init std and epsilon per layer; the multipliers only say which form the numbers are in
    assert len(report["checks"]) == 9 and {c["setting"] for c in report["checks"]} == {"lr", "init_std", "epsilon"}
    assert report["form"].startswith("abc")


def test_hidden_lr_4x_too_high_exits_1_and_names_layer(tmp_path):
    cfg = matching_config()
    cfg["lr"]["hidden"] *= 4
    res = invoke("check", write(tmp_path, cfg, ".json"))
    assert res.exit_code == 1
    assert "hidden" in res.output and "too high" in res.output
    res = invoke("check", write(tmp_path, cfg, ".json"), "--json")
    assert json.loads(res.stdout)["failed"] == ["lr (hidden) too high"]


def test_tolerance_is_respected(tmp_path):
    cfg = matching_config()
    cfg["lr"]["hidden"] *= 1.8
    assert invoke("check", write(tmp_path, cfg)).exit_code == 0
    assert invoke("check", write(tmp_path, cfg), "--tolerance", "1.5").exit_code == 1


def test_global_lr_number_uses_binding_exponent(tmp_path):
    # SP + Adam global LR: ~1/width. 1e-2 at 128 -> 1.25e-3 at 1024.
    cfg = {"parameterization": "sp", "optimizer": "adam", "width": 1024, "base_width": 128, "beta": 1e-2,
           "lr": 1.25e-3}
    assert invoke("check", write(tmp_path, cfg)).exit_code == 0
    cfg["lr"] = 1e-2  # reusing the small model's LR unchanged: 8x too high
    res = invoke("check", write(tmp_path, cfg), "--json")
    assert res.exit_code == 1
    assert json.loads(res.stdout)["lr_mode"] == "global"


def test_large_epsilon_fails_high_side_only(tmp_path):
    cfg = matching_config()
    cfg["epsilon"] = 1e-4
    assert invoke("check", write(tmp_path, cfg)).exit_code == 1
    cfg["epsilon"] = 1e-20
    assert invoke("check", write(tmp_path, cfg)).exit_code == 0


def test_toml_config(tmp_path):
    p = tmp_path / "run.toml"
    p.write_text('parameterization = "mup"\noptimizer = "adam"\nwidth = 256\nbase_width = 256\nbeta = 0.003\n'
                 '[lr]\nembedding = 0.003\nhidden = 0.003\nreadout = 0.003\n')
    assert invoke("check", p).exit_code == 0


@pytest.mark.parametrize(("mutate", "key"), [
    (lambda c: c.update(learning_rate=1.0), "learning_rate"),
    (lambda c: c.pop("width"), "width"),
    (lambda c: c.pop("beta"), "beta"),
    (lambda c: c.update(width=-3), "width"),
    (lambda c: c.update(parameterization="mupp"), "parameterization"),
    (lambda c: c["lr"].update(hiden=1e-3), "lr.hiden"),
    (lambda c: c.update(alignment="sideways"), "alignment"),
    (lambda c: c.update(lr=-1.0), "lr"),
])
def test_malformed_config_exits_2_naming_the_key(tmp_path, mutate, key):
    cfg = matching_config()
    mutate(cfg)
    res = invoke("check", write(tmp_path, cfg))
    assert res.exit_code == 2, res.output
    assert key in res.output


def test_unreadable_files_exit_2(tmp_path):
    assert invoke("check", tmp_path / "missing.yaml").exit_code == 2
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert invoke("check", bad).exit_code == 2
    txt = tmp_path / "run.txt"
    shutil.copy(EXAMPLE, txt)
    assert invoke("check", txt).exit_code == 2


def test_constants_nested_or_flat_are_the_same_config(tmp_path):
    from abcscale.usecases.check import load_config

    flat = {**matching_config(), "gamma": {"hidden": 4.0}, "multiplier_scale": 0.5, "base_epsilon": 1e-6,
            "epsilon_mode": "constant"}
    nested = {**matching_config(), "constants": {"gamma": {"hidden": 4.0}, "multiplier": 0.5, "epsilon": 1e-6,
                                                 "epsilon_mode": "constant"}}
    a, b = load_config(write(tmp_path, flat)), load_config(write(tmp_path, nested, ".json"))
    assert a.constants == b.constants and a.constants.gamma.hidden == 4.0 and a.constants.multiplier.readout == 0.5
    base = a.base_config()
    assert (base.epsilon, base.epsilon_mode.value, base.width, base.beta) == (1e-6, "constant", 256, 3e-3)
    # the constants reach the recommendation: 4x the hidden LR and half the multipliers are recommended now.
    # Read with the config's own (old) multipliers: a forward scale 2x too high on every layer, updates (Adam:
    # m * lr) 2x too high on embedding and readout and 2x too low on hidden, on the edge of the default LR
    # tolerance (2): with 1.5 they fail too.
    res = invoke("check", write(tmp_path, flat), "--json")
    assert json.loads(res.stdout)["failed"] == ["init_std (embedding) too high", "init_std (hidden) too high",
                                                "init_std (readout) too high"]
    res = invoke("check", write(tmp_path, flat), "--json", "--tolerance", "1.5")
    assert res.exit_code == 1
    assert json.loads(res.stdout)["failed"] == [
        "lr (embedding) too high", "lr (hidden) too low", "lr (readout) too high", "init_std (embedding) too high",
        "init_std (hidden) too high", "init_std (readout) too high"]


def test_constants_twice_is_exit_2_naming_both(tmp_path):
    res = invoke("check", write(tmp_path, {**matching_config(), "gamma": 2.0, "constants": {"gamma": 2.0}}))
    assert res.exit_code == 2 and "constants" in res.output and "flat keys" in res.output


def test_check_request_is_the_typed_rest_body():
    from abcscale.schemas.api import AnalyticRecommend, FitRecommend
    from abcscale.usecases.check import CheckConfig, check_request

    cfg = CheckConfig.model_validate({**matching_config(), "constants": {"gamma": 2.0}})
    analytic = check_request(cfg)
    assert isinstance(analytic, AnalyticRecommend)
    assert analytic.base.gamma.hidden == 2.0 and analytic.base.width == 256 and analytic.width == 4096
    fit = check_request(cfg, "abc")
    assert isinstance(fit, FitRecommend) and fit.fit_id == "abc" and fit.constants == cfg.constants
    assert fit.alignment is None  # the config left alignment at its default: it does not narrow the fit's group
    aligned = CheckConfig.model_validate({**matching_config(), "alignment": "none"})
    assert check_request(aligned, "abc").alignment.name == "none"
