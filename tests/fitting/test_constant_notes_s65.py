"""What a table's constant columns hold that a fit does not carry is said (session 65: a constant retuned per width,
cells without a number beside filled ones, were dropped without a word)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import abcscale
from abcscale.fitting.synthetic import synthetic_sweep


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    df = synthetic_sweep(seed=0)
    df["parameterization"], df["optimizer"] = "mup", "adam"
    return df


def _notes(df: pd.DataFrame, column: str) -> list[str]:
    (g,) = abcscale.fit(df).groups
    return [w for w in g.warnings if w.startswith(f"{column}:")]


def test_a_constant_retuned_per_width_is_said_and_not_carried(table):
    df = table.assign(init_scale_hidden=np.where(table["width"] >= 256, 0.5, 1.0))
    (g,) = abcscale.fit(df).groups
    assert "hidden" not in g.trained_constants.get("init_scale", {})
    (note,) = [w for w in g.warnings if w.startswith("init_scale_hidden:")]
    assert "1 at widths 64, 128; 0.5 at widths 256, 512, 1024" in note and "not carried" in note


def test_a_constant_held_throughout_is_carried_without_a_note(table):
    (g,) = abcscale.fit(table.assign(gamma_readout=2.0)).groups
    assert g.trained_constants == {"gamma": {"readout": 2.0}}
    assert not [w for w in g.warnings if w.startswith("gamma_readout:")]


@pytest.mark.parametrize(("cell", "shown"), [("two", "'two'"), (None, "empty")])
def test_cells_without_a_number_beside_filled_ones_are_said(table, cell, shown):
    df = table.assign(gamma_embedding=1.5).astype({"gamma_embedding": object})
    df.loc[df.index[:3], "gamma_embedding"] = cell
    (g,) = abcscale.fit(df).groups
    assert "embedding" not in g.trained_constants.get("gamma", {})
    (note,) = [w for w in g.warnings if w.startswith("gamma_embedding:")]
    assert f"3 of {len(df)} rows hold no positive number ({shown})" in note


def test_a_column_empty_throughout_a_group_says_nothing_of_it(table):
    # two groups from two runners' tables, one of them without the column: nothing to say of that group
    old = table.assign(optimizer="sgd")
    new = table.assign(init_scale_readout=0.25)
    fit = abcscale.fit(pd.concat([old, new], ignore_index=True))
    by = {g.group["optimizer"]: g for g in fit.groups}
    assert by["adam"].trained_constants == {"init_scale": {"readout": 0.25}}
    assert not [w for g in fit.groups for w in g.warnings if w.startswith("init_scale_readout:")]


def test_the_runners_effective_multipliers_are_one_constant_not_a_retuned_one(table):
    # the runner writes m_l = M_l n^-a_l with the parameterization's a_l: M_l = 2 at every width
    from abcscale.theory.tables import ab_table

    df = table.assign(multiplier_readout=2.0 * table["width"].astype(float) ** -ab_table("mup")["readout"].a)
    (g,) = abcscale.fit(df).groups
    assert not [w for w in g.warnings if w.startswith("multiplier_readout:")]
    assert g.trained_constants["multiplier"]["readout"] == pytest.approx(2.0)
