"""Options named in the caller's words (fit_sweep's vocabulary), and the table's own warning said once."""

from __future__ import annotations

import pandas as pd
import pytest

from abcscale.fitting import TableError, fit_table
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.schemas.api import FitOptions
from abcscale.usecases import fit_sweep


def _no_theory_columns() -> pd.DataFrame:
    """Two teams, no parameterization/optimizer/lr_mode column: no group has a theory exponent."""
    one = synthetic_sweep(widths=(64, 128, 256), seeds=1, seed=1)
    return pd.concat([one.assign(team="a"), one.assign(team="b")], ignore_index=True)


def test_no_theory_exponent_is_said_once_for_the_table():
    df = _no_theory_columns()
    assert not {"parameterization", "optimizer", "lr_mode"} & set(df.columns)
    fit = fit_table(df, FitOptions(group_cols=["team"]).mapping(), n_boot=50)
    assert len(fit.groups) == 2
    said = [w for w in fit.warnings if w.startswith("no theory exponent")]
    assert len(said) == 1 and "parameterization" in said[0]
    assert not [w for g in fit.groups for w in g.warnings if "no theory exponent" in w]


def test_options_are_named_in_the_callers_words():
    df = _no_theory_columns()
    for names, said in ((None, "named in group_cols"), ({"group_cols": "--group-cols"}, "named in --group-cols")):
        with pytest.raises(TableError) as exc:
            fit_sweep(df, FitOptions(group_cols=["nope"], n_boot=50), names=names)
        assert f"nope: missing column ({said})" in exc.value.problems
    pooled = fit_sweep(df, FitOptions(group_cols=[], n_boot=50))  # the two teams averaged as seeds
    assert any("team" in w and "(group_cols)" in w for w in pooled.warnings)
