"""Session 58: YAML configs read exponent numbers as YAML 1.2 does. PyYAML follows YAML 1.1, where `4.096e3` and
`1e-3` are strings (a float needs a dot and a signed exponent there): `width: 4.096e3` was refused as "unable to
parse string as an integer"."""

from __future__ import annotations

import json

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from abcscale.cli import app
from abcscale.usecases.config_map import load_yaml

runner = CliRunner()


@pytest.mark.parametrize(("text", "value"), [
    ("1e-3", 1e-3), ("4.096e3", 4096.0), ("3E+2", 300.0), ("-2e1", -20.0), ("1_000e0", 1000.0), ("7.5e-4", 7.5e-4),
    ("12", 12), ("0x1f", 31), (".inf", float("inf")), ("1e", "1e"), ("e3", "e3"), ('"1e-3"', "1e-3"), ("1.5", 1.5),
])
def test_exponent_numbers_are_numbers(text, value):
    got = load_yaml(f"x: {text}")["x"]
    assert got == value and type(got) is type(value)


def test_pyyamls_own_loader_is_left_as_it_is():  # the resolver is ours, not added to yaml.SafeLoader for everyone
    assert yaml.safe_load("x: 1e-3") == {"x": "1e-3"}


@given(st.floats(min_value=1e-12, max_value=1e12, allow_nan=False))
def test_any_float_python_writes_reads_back(x):
    assert load_yaml(f"x: {x!r}")["x"] == x


def test_a_check_config_with_exponent_numbers(tmp_path):
    text = open("examples/check-config.yaml").read()
    plain = runner.invoke(app, ["check", "examples/check-config.yaml", "--json"])
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text.replace("width: 4096 ", "width: 4.096e3 ").replace("beta: 0.003 ", "beta: 3e-3 "))
    res = runner.invoke(app, ["check", str(cfg), "--json"])
    assert res.exit_code == plain.exit_code == 0, res.output
    assert json.loads(res.stdout)["checks"] == json.loads(plain.stdout)["checks"]
    cfg.write_text(text.replace("width: 4096 ", "width: 4.0965e3 "))  # not a whole number: still refused
    res = runner.invoke(app, ["check", str(cfg)])
    assert res.exit_code == 2 and "width" in res.output and "fractional part" in res.output
