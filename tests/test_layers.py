"""Imports flow one way: schemas < theory < {fitting, runner} < use cases < {service, cli}; JAX only in runner.

Read from the source (every ``import``, including those inside functions), so a lazy import that breaks the
layering fails here too, not only when its code path runs.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: layer of each abcscale sub-package; a module may import its own layer's package and any lower layer.
RANK = {"schemas": 0, "theory": 1, "fitting": 2, "runner": 2, "usecases": 3, "service": 4, "cli": 4,
        # single modules of the root package: the version lookup sits below everything, the Python API on top
        "_version": 0, "_api": 4, "__init__": 4, "__main__": 4, "_entry": 4,
        # the exports: abcscale.optax names runner.export's JAX code, abcscale.torch imports no torch
        "optax": 4, "torch": 4}
#: same-rank packages that must not import each other either way, except where listed.
ALLOWED_SIDEWAYS = {("cli", "service"),  # `abcscale serve` starts the service
                    ("__init__", "_api"), ("__main__", "cli"), ("__main__", "_entry"), ("_entry", "cli")}
#: third-party packages confined to one layer.
CONFINED = {"jax": "runner", "jaxlib": "runner", "optax": "runner", "ray": "runner"}


def _package_dirs() -> dict[str, Path]:
    """abcscale.X -> the repository folder setuptools maps it from (pyproject's package-dir)."""
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    dirs = {name.split(".")[1]: ROOT / folder for name, folder in mapping.items() if name.count(".") == 1}
    dirs["cli"] = ROOT / "abcscale" / "cli"
    dirs["usecases"] = ROOT / "abcscale" / "usecases"
    for module in ("_version", "_api", "__init__", "__main__", "_entry", "optax", "torch"):
        dirs[module] = ROOT / "abcscale" / f"{module}.py"
    return dirs


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            if node.module == "abcscale":  # `from abcscale import theory`
                found += [(node.lineno, f"abcscale.{alias.name}") for alias in node.names]
    return found


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "abcscale" and len(parts) > 1 and parts[1] in RANK:
        return parts[1]
    return None


def _violations(dirs: dict[str, Path], root: Path = ROOT) -> list[str]:
    out = []
    for pkg, folder in dirs.items():
        for path in [folder] if folder.is_file() else sorted(folder.rglob("*.py")):
            rel = path.relative_to(root)
            for line, module in _imports(path):
                top = module.split(".")[0]
                if top in ("schemas", "theory", "fitting", "runner", "service"):
                    out.append(f"{rel}:{line} imports the top-level name {module!r}; use abcscale.{module}")
                if top in CONFINED and CONFINED[top] != pkg:
                    out.append(f"{rel}:{line} imports {module} outside abcscale.{CONFINED[top]}")
                dep = _layer_of(module)
                if dep is None or dep == pkg:
                    continue
                if RANK[dep] > RANK[pkg] or (RANK[dep] == RANK[pkg] and (pkg, dep) not in ALLOWED_SIDEWAYS):
                    out.append(f"{rel}:{line} (abcscale.{pkg}) imports {module}: against the layering")
    return out


def test_every_layer_exists():
    missing = [pkg for pkg, path in _package_dirs().items()
               if not (path.is_file() or (path / "__init__.py").is_file())]
    assert not missing
    modules = {p.stem for p in (ROOT / "abcscale").glob("*.py")}
    assert modules <= set(RANK), f"give {modules - set(RANK)} a rank"


def test_imports_flow_one_way():
    assert _violations(_package_dirs()) == []


def test_the_checker_sees_a_violation(tmp_path):
    """The rule is live: a theory module importing fitting is reported (guards against a vacuous pass)."""
    bad = tmp_path / "theory"
    bad.mkdir()
    (bad / "__init__.py").write_text("")
    (bad / "oops.py").write_text("def f():\n    from abcscale.fitting import fit_table\n    import jax\n")
    found = _violations({"theory": bad}, tmp_path)
    assert any("imports abcscale.fitting" in v for v in found)
    assert any("imports jax outside abcscale.runner" in v for v in found)


@pytest.mark.parametrize("module", ["abcscale", "abcscale.theory", "abcscale.schemas.api"])
def test_light_modules_do_not_import_jax(module):
    import subprocess
    import sys

    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'optax', 'ray')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
