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


def test_the_tour_s_shipped_table_is_what_its_command_makes_and_fits():
    """examples/tour-sweep.parquet is the tour's step 1 output (a newcomer's review: no table to try steps 2-3 on):
    its runs are the command's grid, and it fits every group."""
    import re

    import pandas as pd

    from abcscale import fit

    table = pd.read_parquet(Path(__file__).resolve().parents[1] / "examples" / "tour-sweep.parquet")
    cmd = re.search(r"abcscale sweep -p (\S+) -o adam --lr-mode (\S+) --widths (\S+) \\\n\s+"
                    r"--log2-lr (\S+) --seeds (\d+)", README)
    assert cmd, "the tour's sweep command is gone"
    lo, hi, step = (float(x) for x in cmd.group(4).split(":"))
    assert set(table.parameterization) == set(cmd.group(1).split(","))
    assert set(table.lr_mode) == set(cmd.group(2).split(","))
    assert sorted(set(table.width)) == [int(w) for w in cmd.group(3).split(",")]
    assert table.log2_lr.min() == lo and table.log2_lr.max() == hi and table.seed.nunique() == int(cmd.group(5))
    assert len(table) == 4 * 5 * int((hi - lo) / step + 1) * int(cmd.group(5))
    result = fit(table)
    assert len(result.groups) == 4 and all(len(g.per_width) == 5 for g in result.groups)
