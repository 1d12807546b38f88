"""The theory's LP answers shipped with the package (theory/solutions.json): each is the LP's, every built-in
combination has one, and answering from them imports no scipy (session 81: `abcscale recommend` 0.6 -> 0.4 s)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from abcscale.schemas.theory import Alignment
from abcscale.theory import solver
from abcscale.theory.rules import layer_rules
from abcscale.theory.tables import ab_table

REGENERATE = "the theory changed: run `make theory-solutions` and commit theory/solutions.json"


def test_every_shipped_answer_is_the_lps_and_every_builtin_has_one():
    shipped = json.loads(solver.SHIPPED.read_text())
    assert shipped == solver.shipped_solutions(), REGENERATE
    assert len(shipped) >= 40  # 4 parameterizations x 6 optimizers x 2 alignments, less those with no answer


def test_a_shipped_answer_is_the_lps_field_by_field():
    ab, opt, al = ab_table("mup"), solver.Optimizer.parse("sgd"), Alignment.none()
    assert solver._solve(ab, opt, layer_rules(opt), al) == solver._solve_lp(ab, opt, layer_rules(opt), al)


@pytest.mark.parametrize("alignment", [None, "none"])
def test_answers_from_the_shipped_file_import_no_scipy(alignment):
    code = ("import sys, abcscale; from abcscale.theory import solve_exponents, theory_table; "
            f"solve_exponents('mean_field', 'muon', {alignment!r}); theory_table(); "
            "abcscale.recommend('mup', 'adam', width=1024, base_width=64, beta=1e-3); "
            "print(sorted(m for m in sys.modules if m.startswith('scipy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_another_alignment_is_solved():
    sol = solver.solve_exponents("standard", "sgd", "0.25,0.5,0.25")  # no shipped answer: the LP's
    assert sol.c == solver._solve_lp(ab_table("standard"), sol.optimizer, layer_rules("sgd"), sol.alignment).c


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "null", '{"x": 1}'])
def test_a_damaged_shipped_file_or_one_of_another_shape_is_solved(monkeypatch, tmp_path, text):
    (tmp_path / "solutions.json").write_text(text)
    monkeypatch.setattr(solver, "SHIPPED", tmp_path / "solutions.json")
    solver._shipped.cache_clear()
    solver._solve.cache_clear()
    try:
        for p, o in (("mup", "adam"), ("ntk", "sgd")):
            assert solver.solve_exponents(p, o).c == solver._solve_lp(
                ab_table(p), solver.Optimizer.parse(o), layer_rules(o), Alignment.full()).c
    finally:
        solver._shipped.cache_clear()
        solver._solve.cache_clear()


def test_a_rule_of_other_number_types_or_a_callable_object_still_gets_an_answer(monkeypatch):
    """The key read every field of a rule: a functools.partial as its epsilon rule raised AttributeError, a
    Fraction or numpy number a TypeError, out of every theory entry point (the session's review). It reads what
    the LP reads, as numbers."""
    import dataclasses
    import functools
    from fractions import Fraction

    import numpy as np

    from abcscale.theory import rules as rules_mod

    real = rules_mod.layer_rules("adam")
    odd = rules_mod.LayerRules(tuple(dataclasses.replace(
        r, update_a=Fraction(r.update_a), update_b=np.float32(r.update_b),
        epsilon_rule=functools.partial(r.epsilon_rule) if r.epsilon_rule else None) for r in real.rules))
    ab, opt, al = ab_table("mup"), solver.Optimizer.adam, Alignment.full()
    assert solver._solve(ab, opt, odd, al).c == solver._solve(ab, opt, real, al).c
