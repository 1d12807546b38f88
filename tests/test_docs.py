"""The README documents the contracts users rely on; keep it in step with the code."""

from __future__ import annotations

from pathlib import Path

from abcscale.schemas.sweep import SWEEP_COLUMNS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_quickstart_is_two_commands():
    assert "make run" in README and "make test" in README


def test_every_sweep_column_is_documented():
    missing = [c for c in SWEEP_COLUMNS if f"| `{c}` |" not in README]
    assert not missing, f"README's sweep-table section lacks {missing}"


def test_check_json_keys_are_documented():
    from abcscale.usecases.check import Check, CheckReport

    for key in list(CheckReport.model_fields) + list(Check.model_fields):
        assert f"`{key}`" in README, key


def test_the_commands_example_prints_what_the_cli_prints():
    """The Commands section's console block, command by command, against the CLI at 100 columns (a review found
    it showing an older, plainer table)."""
    import re
    import shlex

    from typer.testing import CliRunner

    from abcscale.cli import app

    block = re.search(r"```console\n(\$ abcscale recommend -p mup .*?)```", README, re.S)
    assert block, "the Commands example is gone"
    runs = re.split(r"^\$ abcscale ", block.group(1), flags=re.M)[1:]
    assert len(runs) == 2
    for run in runs:
        cmd, _, shown = run.partition("\n")
        got = CliRunner().invoke(app, shlex.split(cmd), env={"COLUMNS": "100"})
        assert got.exit_code == 0, got.output
        assert [line.rstrip() for line in got.stdout.rstrip().splitlines()] == shown.rstrip().splitlines(), cmd
