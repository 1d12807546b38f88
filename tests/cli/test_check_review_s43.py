"""A CI engineer's review of `check` (session 43): a pass that checked less than it seemed passed silently (an LR
table without some layers, as the README's own inline map gives; a fit whose table has no optimizer column,
checked with an SGD config; a config stating neither form nor multipliers, read in the abc form), and a second
--map-file replaced the first."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from abcscale.cli import app
from abcscale.fitting import fit_table
from abcscale.fitting.synthetic import synthetic_sweep
from tests.usecases.test_check_service import config, run_check

runner = CliRunner()
INLINE = ("width=model.d_model,parameterization=scaling.parameterization,base_width=scaling.base_width,"
          "beta=scaling.base_lr,optimizer=optim.name,lr.hidden=optim.param_groups.1.lr")


def _report(*args: str) -> dict:
    res = runner.invoke(app, ["check", *args, "--json"])
    assert res.exit_code in (0, 1), res.output
    return json.loads(res.stdout)


def test_layers_left_out_of_an_lr_table_are_said():
    report = _report("examples/train-config.yaml", "--map", INLINE)
    said = [w for w in report["warnings"] if w.startswith("lr:")]
    assert report["ok"] and said == ["lr: embedding, readout not given: their learning rates are not checked (give "
                                     "every layer's LR, or map lr.embedding and lr.readout)"], report["warnings"]
    full = _report("examples/train-config.yaml", "--map-file", "examples/train-config.map.toml")
    assert full["ok"] and not [w for w in full["warnings"] if w.startswith(("lr:", "form:"))], full["warnings"]


def test_a_config_without_form_or_multipliers_is_said_to_be_read_in_the_abc_form(tmp_path):
    code, report = run_check(tmp_path, config())
    assert code == 0 and any(w.startswith("form: not given, so the run is read in the abc form") for w in
                             report["warnings"]), report["warnings"]
    code, report = run_check(tmp_path, {**config(), "form": "abc"})
    assert not any(w.startswith("form:") for w in report["warnings"])


def test_a_fit_that_records_no_setup_says_the_config_was_taken_on_trust(tmp_path):
    bare = fit_table(synthetic_sweep((64, 128, 256, 512), exponent=0.0, lr_base=3e-3, base_width=64, seeds=2),
                     n_boot=50)
    path = tmp_path / "fit.json"
    path.write_text(bare.model_dump_json())
    cfg = {k: v for k, v in config().items() if k not in ("beta", "base_width")}
    code, report = run_check(tmp_path, {**cfg, "optimizer": "sgd", "lr_mode": "per_layer"}, "--fit", str(path))
    assert any("no parameterization or optimizer column" in w and "(mup, sgd) on trust" in w
               for w in report["warnings"]), report


def test_map_files_merge_in_order(tmp_path):
    half = tmp_path / "half.toml"
    half.write_text('[values]\nalignment = "full"\n')
    both = _report("examples/train-config.yaml", "--map-file", "examples/train-config.map.toml", "--map-file",
                   str(half))
    assert both["ok"] and len(both["checks"]) == len(_report(
        "examples/train-config.yaml", "--map-file", "examples/train-config.map.toml")["checks"])


def test_a_yaml_boolean_is_said_in_its_fields_words(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("parameterization: true\noptimizer: adam\nwidth: 1024\nbase_width: 64\nbeta: 0.001\nlr: 0.001\n")
    res = runner.invoke(app, ["check", str(cfg)])
    assert res.exit_code == 2 and "parameterization: a name or a table, not true/false" in res.stderr, res.output
    assert "a number" not in res.stderr
    cfg.write_text("parameterization: mup\noptimizer: adam\nwidth: true\nbase_width: 64\nbeta: 0.001\nlr: 0.001\n")
    res = runner.invoke(app, ["check", str(cfg)])
    assert res.exit_code == 2 and "width: a number, not true/false" in res.stderr, res.output
