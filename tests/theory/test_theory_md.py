"""docs/theory.md is the reference the code cites: its tables are the solver's output, its sections exist.

Tables preceded by ``<!-- solver: KIND -->`` are parsed and compared with the solver, so the page cannot
drift from the code; every "theory.md section N" citation in the repository must name a section that
exists and is about what the citations need.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import pytest

from abcscale import theory
from abcscale.schemas.enums import LAYERS, Optimizer, Parameterization
from tests.theory.test_solver import PUBLISHED

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "theory.md").read_text()
COLUMNS = {"standard": Parameterization.standard, "NTK": Parameterization.ntk, "muP": Parameterization.mup,
           "mean-field": Parameterization.mean_field}


def _number(text: str) -> float | None:
    """A table number; ``-`` is a layer without the quantity (Muon's hidden epsilon)."""
    return None if text.strip() == "-" else float(Fraction(text.strip()))


def _cell(text: str) -> tuple[float | None, ...]:
    text = text.strip()
    if text.startswith("("):
        return tuple(_number(x) for x in text.strip("()").split(","))
    return (_number(text),)


def _marked_tables() -> list[tuple[str, list[dict[str, str]]]]:
    """(kind, rows as {header: cell}) for every table that follows a ``<!-- solver: KIND -->`` marker."""
    out = []
    for m in re.finditer(r"<!-- solver: (\w+) -->\n((?:\|.*\|\n)+)", DOC):
        lines = [[c.strip() for c in line.strip().strip("|").split("|")] for line in m.group(2).splitlines()]
        header, body = lines[0], lines[2:]
        out.append((m.group(1), [dict(zip(header, row, strict=True)) for row in body]))
    return out


def _doc_entries() -> list[tuple[str, str, str, Parameterization, tuple[float, ...]]]:
    return [(kind, row["optimizer"].lower(), row["alignment"], p, _cell(row[col]))
            for kind, rows in _marked_tables() for row in rows for col, p in COLUMNS.items()]


def _solver(kind: str, opt: str, alignment: str, p: Parameterization) -> tuple[float | None, ...]:
    sol = theory.solve_exponents(p, opt, alignment)
    if kind == "c":
        return tuple(sol.c[l] for l in LAYERS)
    if kind == "global_c":
        return (sol.global_c,)
    if kind == "epsilon":
        e = theory.layer_rules(opt).epsilon_exponents(sol.ab, sol.c)
        return tuple(e[l] for l in LAYERS)
    raise AssertionError(f"docs/theory.md marks a table with unknown kind {kind!r}")


def test_the_doc_has_the_checked_tables():
    kinds = [kind for kind, _ in _marked_tables()]
    assert kinds.count("c") >= 2 and "global_c" in kinds and "epsilon" in kinds


@pytest.mark.parametrize(("kind", "opt", "alignment", "param", "doc"), _doc_entries())
def test_doc_table_entry_equals_solver(kind, opt, alignment, param, doc):
    assert _solver(kind, opt, alignment, param) == doc


def test_doc_exponent_table_is_the_24_published_entries():
    paper = {o for o, _ in PUBLISHED}  # section 11's Lion and Muon table is checked by the test above
    doc = {(o, a, p.value): v for k, o, a, p, v in _doc_entries()
           if k == "c" and a in ("full", "none") and o in paper}
    published = {(o, a, p): tuple(float(x) for x in row[i])
                 for (o, a), row in PUBLISHED.items() for i, p in enumerate(["standard", "ntk", "mup", "mean_field"])}
    assert len(doc) == 24
    assert doc == published
    assert "24 published entries" in (ROOT / "README.md").read_text()


def test_doc_global_and_epsilon_tables_cover_every_optimizer():
    opts = {k: {o for kk, o, a, _, _ in _doc_entries() if kk == k} for k in ("global_c", "epsilon")}
    assert opts["global_c"] == {o.value for o in Optimizer}
    assert opts["epsilon"] == {o.value for o in Optimizer if theory.layer_rules(o).has_epsilon}


# What each cited section must be about (a renumbering breaks this, not the citations silently).
TOPICS = {1: "abc-parameterizations", 2: "Alignment", 3: "exponent table", 4: "symmetry", 5: "Adam epsilon",
          6: "runner", 7: "solver", 9: "Weight decay", 10: "parameter groups", 11: "Lion and Muon"}
CITATION = re.compile(r"theory\.md(?:'s)?\s+(?:section|s\.|§)\s*(\d+)")
SOURCES = [ROOT / "README.md", *sorted(p for d in ("abcscale", "schemas", "theory", "fitting", "runner", "service",
                                                  "tests", "examples") for p in (ROOT / d).rglob("*.py")
                                      if p != Path(__file__).resolve())]


def _headings() -> dict[int, str]:
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^## (\d+)\. (.+)$", DOC, re.MULTILINE)}


def test_sections_are_about_what_the_code_cites():
    headings = _headings()
    for n, topic in TOPICS.items():
        assert topic in headings.get(n, ""), f"docs/theory.md section {n} should be about {topic!r}"


def test_every_citation_names_an_existing_section():
    headings = _headings()
    cited = {(p.relative_to(ROOT).as_posix(), int(n)) for p in SOURCES if p.exists()
             for n in CITATION.findall(p.read_text(errors="replace"))}
    assert cited, "expected the code to cite docs/theory.md"
    missing = sorted((f, n) for f, n in cited if n not in headings)
    assert not missing, f"citations of sections docs/theory.md lacks: {missing}"


def test_citations_name_the_file_by_its_path():
    bare = sorted(f"{p.relative_to(ROOT).as_posix()}:{i}" for p in SOURCES if p.exists()
                  for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
                  if re.search(r"(?<![/\w])theory\.md", line))
    assert not bare, f"cite docs/theory.md, not theory.md: {bare}"
