"""The LP solver (theory/solver.py) reproduces docs/theory.md section 3 and reports non-unique cases."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abcscale import theory
from abcscale.schemas.enums import LAYERS, LrMode, Parameterization
from abcscale.schemas.theory import ABTable, Alignment, LayerExponents

H = 0.5
# The paper's table (docs/theory.md section 3), (c_emb, c_hid, c_out), columns standard, NTK, muP, mean-field.
PUBLISHED = {
    ("sgd", "full"): [(-H, H, 1), (-H, -H, 0), (0, 0, 0), (-1, -1, -1)],
    ("sgd", "none"): [(-H, 0, H), (-H, -1, -H), (0, -H, 0), (-1, -1.5, -1)],
    ("adam", "full"): [(0, 1, 1), (0, H, H), (H, 1, H), (0, H, 0)],
    ("adam", "none"): [(0, H, H), (0, 0, 0), (H, H, 0), (0, 0, -H)],
    ("adafactor", "full"): [(0, H, H), (0, H, H), (0, H, 0), (0, H, 0)],
    ("adafactor", "none"): [(0, 0, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0)],
}
PARAMS = ["standard", "ntk", "mup", "mean_field"]
CASES = [(o, a, p, c) for (o, a), row in PUBLISHED.items() for p, c in zip(PARAMS, row, strict=True)]


def test_published_entries_cover_the_default_theory_table():
    """The 24 published entries are exactly the grid `theory table` prints without filters."""
    grid = {(r.optimizer.value, r.alignment.name, r.parameterization) for r in theory.theory_table()}
    published = {(o, a, p) for o, a, p, _ in CASES}
    # AdamW, Lion and Muon are not in the paper (tests/theory/test_weight_decay.py, test_lion_muon.py)
    new = ("adamw", "lion", "muon")
    assert grid == published | {(n, a, p) for o, a, p in published if o == "adam" for n in new}


@pytest.mark.parametrize(("optimizer", "alignment", "param", "expected"), CASES)
def test_reproduces_published_entry_exactly(optimizer, alignment, param, expected):
    sol = theory.solve_exponents(param, optimizer, alignment)
    assert tuple(sol.c[layer] for layer in LAYERS) == tuple(float(x) for x in expected)
    assert sol.unique


@pytest.mark.parametrize(("optimizer", "alignment", "param", "expected"), CASES)
def test_global_exponent_is_binding_layer(optimizer, alignment, param, expected):
    assert theory.solve_exponents(param, optimizer, alignment).global_c == max(expected)


def test_global_lr_predictions_quoted_in_theory_md():
    # SP + Adam: global optimum ~ n^-1 (full) and n^-1/2 (none)
    assert theory.theory_exponent("sp", "adam", "full", "global") == -1.0
    assert theory.theory_exponent("sp", "adam", "none", "global") == -0.5
    assert theory.theory_exponent("mup", "adam", "full", LrMode.per_layer) == 0.0


def test_explicit_alignment_lp_answer():
    sol = theory.solve_exponents("standard", "adam", "0.75,0.5,0.75")
    assert [sol.c[l] for l in LAYERS] == [0.0, 0.75, 0.75]
    assert sol.unique


def test_non_unique_when_u_exceeds_alpha_is_reported():
    sol = theory.solve_exponents("standard", "adam", Alignment(alpha=0.5, omega=0.5, u=1.0))
    assert not sol.unique
    assert any("not unique" in w for w in sol.warnings)
    # every layer's own minimum is below what it gets at the reported point for at least one layer
    assert any(sol.lower_bounds[l] < sol.c[l] for l in LAYERS)


@settings(max_examples=40, deadline=None)
@given(alpha=st.sampled_from([0.5, 0.625, 0.75, 0.875, 1.0]), omega=st.sampled_from([0.25, 0.5]),
       du=st.sampled_from([0.0, 0.125, 0.25, 0.5]), p=st.sampled_from(PARAMS),
       o=st.sampled_from(["sgd", "adam", "adafactor"]))
def test_unique_whenever_u_at_most_alpha(alpha, omega, du, p, o):
    u = max(0.0, alpha - du)
    sol = theory.solve_exponents(p, o, Alignment(alpha=alpha, omega=omega, u=u))
    assert sol.unique


def test_custom_ab_table_equals_named_table():
    mup = theory.AB_TABLES[Parameterization.mup]
    custom = ABTable(embedding=LayerExponents(a=-0.5, b=0.5), hidden=LayerExponents(a=0, b=0.5),
                     readout=LayerExponents(a=0.5, b=0.5))
    assert custom == mup
    assert theory.solve_exponents(custom, "adam").c == theory.solve_exponents("mup", "adam").c


def test_unstable_custom_table_is_flagged():
    bad = ABTable(embedding=LayerExponents(a=0, b=0), hidden=LayerExponents(a=0, b=0),
                  readout=LayerExponents(a=0, b=0))
    sol = theory.solve_exponents(bad, "adam")
    assert any("hidden a+b = 0" in w for w in sol.warnings)
    assert any("readout a+b = 0" in w for w in sol.warnings)


def test_an_answer_changed_by_its_caller_leaves_the_next_one_as_it_was():
    """The cached answer itself was returned: a caller's `sol.c[hidden] = 0.0` changed every later answer of the
    process (and `abcscale.recommend`'s LRs), a review of session 74."""
    import abcscale
    from abcscale.schemas.enums import Layer
    from abcscale.theory.solver import solve_exponents

    lr = abcscale.recommend(width=1024, parameterization="mup", optimizer="adam", base_width=64, beta=1e-3)
    sol = solve_exponents("mup", "adam")
    want = dict(sol.c), dict(sol.lower_bounds), dict(sol.c_ranges)
    sol.c[Layer.hidden] = 0.0
    sol.lower_bounds[Layer.hidden] = -5.0
    sol.c_ranges.clear()
    again = solve_exponents("mup", "adam")
    assert (again.c, again.lower_bounds, again.c_ranges) == want
    assert abcscale.recommend(width=1024, parameterization="mup", optimizer="adam", base_width=64,
                              beta=1e-3) == lr
