"""theory/ is the algebra only: it imports numpy, scipy, the standard library and the domain schemas.

It must not return API envelopes, so it may not import ``schemas.api`` or ``schemas.recommend`` (a
Recommendation is a use case's answer, built in abcscale/usecases/).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

THEORY = Path(__file__).resolve().parents[2] / "theory"
ALLOWED = {"__future__", "numpy", "scipy", "abcscale.schemas.enums", "abcscale.schemas.theory",
           "abcscale.schemas.groups", "abcscale.theory"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def _allowed(module: str) -> bool:
    top = module.split(".")[0]
    return top in sys.stdlib_module_names or any(module == a or module.startswith(a + ".") for a in ALLOWED)


def test_theory_imports_only_numpy_scipy_and_domain_schemas():
    bad = {f"{p.name}: {m}" for p in sorted(THEORY.glob("*.py")) for m in _imports(p) if not _allowed(m)}
    assert not bad, f"theory/ imports outside its layer: {sorted(bad)}"


def test_the_check_would_see_an_api_import(tmp_path):
    oops = tmp_path / "oops.py"
    oops.write_text("from abcscale.schemas.recommend import Recommendation\nimport pandas\n")
    assert {m for m in _imports(oops) if not _allowed(m)} == {"abcscale.schemas.recommend", "pandas"}


def test_recommend_left_the_theory_layer():
    from abcscale import theory

    assert not hasattr(theory, "recommend")
