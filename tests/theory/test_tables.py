"""The (a, b) tables (theory/tables.py, docs/theory.md section 1)."""

from __future__ import annotations

import pytest

from abcscale import theory
from abcscale.schemas.enums import Parameterization
from abcscale.schemas.theory import ABTable, LayerExponents
from abcscale.theory.tables import AB_TABLES


def test_every_parameterization_has_a_table_stable_at_init():
    assert set(AB_TABLES) == set(Parameterization)
    assert all(theory.init_stability_warnings(ab) == [] for ab in AB_TABLES.values())


def test_aliases_and_custom_tables():
    assert theory.ab_table("sp") is AB_TABLES[Parameterization.standard]
    assert theory.ab_table("MF") is AB_TABLES[Parameterization.mean_field]
    custom = ABTable(embedding=LayerExponents(a=0, b=0), hidden=LayerExponents(a=0.25, b=0.25),
                     readout=LayerExponents(a=1, b=0))
    assert theory.ab_table(custom) is custom
    assert theory.parameterization_of(custom) is None
    assert theory.parameterization_of("mu_p") is Parameterization.mup
    # as papers and trackers write it: the micro sign or the Greek mu (a user review's table said µP)
    assert theory.parameterization_of("\u00b5P") is theory.parameterization_of("\u03bcP") is Parameterization.mup


def test_unknown_name_lists_the_allowed_ones():
    with pytest.raises(ValueError, match="unknown parameterization 'xyz'; allowed: standard, ntk, mup"):
        theory.ab_table("xyz")


def test_parameterization_without_a_table_names_the_registry(monkeypatch):
    monkeypatch.delitem(AB_TABLES, Parameterization.ntk)
    with pytest.raises(ValueError, match="no \\(a, b\\) table for parameterization 'ntk'; add one to AB_TABLES"):
        theory.solve_exponents("ntk", "adam")


def test_readout_below_half_is_flagged():
    ab = ABTable(embedding=LayerExponents(a=0, b=0), hidden=LayerExponents(a=0, b=0.5),
                 readout=LayerExponents(a=0, b=0.25))
    assert theory.init_stability_warnings(ab) == ["readout a+b = 0.25, stability at init needs >= 1/2"]
