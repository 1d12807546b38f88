"""`abcscale check` on a config with one global LR (session 52, a CI review): a wrong number is one failure, not
one per layer it reaches ("lr (embedding) too high, lr (hidden) too high, lr (readout) too high" for lr: 0.003)."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from abcscale.cli import app

runner = CliRunner()
CFG = {"parameterization": "mup", "optimizer": "adam", "width": 4096, "base_width": 256, "beta": 0.003}


def _check(tmp_path, lr: float) -> tuple[int, dict]:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({**CFG, "lr": lr}))
    res = runner.invoke(app, ["check", str(path), "--json"])
    return res.exit_code, json.loads(res.stdout)


def test_one_global_lr_too_high_is_one_failure_with_its_ratio(tmp_path):
    code, report = _check(tmp_path, 0.003)
    assert code == 1 and report["lr_mode"] == "global"
    assert report["failed"] == ["lr (global, 3 layers) too high (16x)"], report["failed"]
    assert len([c for c in report["checks"] if c["setting"] == "lr"]) == 3  # the rows stay, per layer


def test_the_right_global_lr_passes(tmp_path):
    code, report = _check(tmp_path, 0.003 / 16)
    assert code == 0 and report["failed"] == []


def test_a_config_or_rules_file_without_a_suffix_reads_as_yaml(tmp_path):
    """A pipe (`--rules <(echo '[...]')`, /dev/fd/63) has no suffix: it was "unknown format" (a JAX review)."""
    from abcscale.usecases.recommend import parse_rules, read_rules

    rules = tmp_path / "rules"
    rules.write_text('[{"pattern": "fc1", "role": "hidden"}]')
    assert [(r.pattern, r.role.value) for r in read_rules(rules)] == [("fc1", "hidden")]
    cfg = tmp_path / "run"
    cfg.write_text(yaml.safe_dump({**CFG, "lr": 0.003 / 16}))
    assert runner.invoke(app, ["check", str(cfg)]).exit_code == 0
    # one (pattern, role) pair not wrapped in a list is that rule (each string was read as a rule)
    assert [(r.pattern, r.role.value) for r in parse_rules(("fc1", "hidden"))] == [("fc1", "hidden")]


def test_a_suffixless_tab_indented_json_file_reads(tmp_path):
    """jq --tab writes JSON YAML refuses (tabs): a file of no suffix that parses as JSON is read so (a code review)."""
    import json as _json

    from abcscale.usecases.recommend import parse_rules, read_rules

    cfg = tmp_path / "run"
    cfg.write_text(_json.dumps({**CFG, "lr": 0.003 / 16}, indent="\t"))
    assert runner.invoke(app, ["check", str(cfg)]).exit_code == 0
    rules = tmp_path / "rules"
    rules.write_text(_json.dumps([{"pattern": "fc1", "role": "hidden"}], indent="\t"))
    assert [r.pattern for r in read_rules(rules)] == ["fc1"]
    assert [r.pattern for r in parse_rules(["fc1", "hidden"])] == ["fc1"]  # a list pair as a tuple pair
