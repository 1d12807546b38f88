"""`abcscale fit --expect-exponent NAME=VALUE`: a published law's exponent tested like --expect-theory, on a table
without theory columns (whose "no theory exponent" is said once, not per group)."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from abcscale.cli import app
from abcscale.fitting.synthetic import synthetic_sweep

runner = CliRunner()


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """Two teams whose LR* falls as width^-0.5; no parameterization/optimizer/lr_mode column."""
    one = synthetic_sweep(widths=(64, 128, 256, 512), seeds=2, exponent=-0.5, seed=3)
    path = tmp_path_factory.mktemp("t") / "teams.csv"
    pd.concat([one.assign(team="a"), one.assign(team="b")], ignore_index=True).to_csv(path, index=False)
    return path


def _fit(table, *extra):
    return runner.invoke(app, ["fit", str(table), "--n-boot", "100", "--group-cols", "team", *extra])


def test_a_published_exponent_in_the_interval_passes(table):
    res = _fit(table, "--expect-exponent", "size=-0.5")
    assert res.exit_code == 0, res.output
    assert res.stdout.count("no theory exponent") == 1  # the table's, said once for both teams


def test_an_exponent_off_the_interval_exits_1_naming_each_group(table):
    res = _fit(table, "--expect-exponent", "width=-1.5")  # the size column's name works too
    assert res.exit_code == 1, res.output
    assert "inconsistent with width=-1.5" in res.stderr
    assert "team=a" in res.stderr and "team=b" in res.stderr


@pytest.mark.parametrize(("spec", "said"), [("size", "NAME=VALUE"), ("depth=-1", "'depth' is no fitted exponent"),
                                            ("size=abc", "VALUE must be a number"), ("size=nan", "finite")])
def test_a_bad_expectation_is_exit_2_naming_the_flag(table, spec, said):
    res = _fit(table, "--expect-exponent", spec)
    assert res.exit_code == 2 and "--expect-exponent" in res.stderr and said in res.stderr
