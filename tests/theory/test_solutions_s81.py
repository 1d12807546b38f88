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


def test_another_alignment_or_a_damaged_file_is_solved(monkeypatch, tmp_path):
    sol = solver.solve_exponents("standard", "sgd", "0.25,0.5,0.25")  # no shipped answer: the LP's
    assert sol.c == solver._solve_lp(ab_table("standard"), sol.optimizer, layer_rules("sgd"), sol.alignment).c
    (tmp_path / "solutions.json").write_text("{not json")
    monkeypatch.setattr(solver, "SHIPPED", tmp_path / "solutions.json")
    solver._shipped.cache_clear()
    solver._solve.cache_clear()
    try:
        assert solver.solve_exponents("mup", "adam").c == solver._solve_lp(
            ab_table("mup"), solver.Optimizer.adam, layer_rules("adam"), Alignment.full()).c
    finally:
        solver._shipped.cache_clear()
        solver._solve.cache_clear()
