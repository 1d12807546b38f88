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
