"""Running a README example in the test process as a fresh interpreter would (tests/test_api.py,
tests/test_exports.py): a fresh interpreter's start and imports cost 0.8-2.5 CPU-s an example (2026-12-07)."""

from __future__ import annotations

import ast

import abcscale


def run_as_printed(code: str, where: str) -> None:
    """Execute ``code`` in a namespace of its own: a name it uses without binding it fails as in a fresh interpreter.

    A submodule reached as ``abcscale.X`` would not: an earlier test in this process may have imported
    ``abcscale.X``, which sets it on the package, where a user's fresh interpreter raises AttributeError. So every
    ``abcscale.X`` the example reads must be a name a bare ``import abcscale`` gives (``abcscale.__getattr__``'s) or a
    submodule the example imports itself (``import abcscale.X``)."""
    tree = ast.parse(code)
    aliases, imported = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "abcscale":
                    aliases.add(a.asname or "abcscale")
                elif a.name.startswith("abcscale.") and a.asname is None:
                    aliases.add("abcscale")  # `import abcscale.optax` binds abcscale, with its optax set
                    imported.add(a.name.split(".")[1])
    given = {*abcscale.__all__, "__version__"}
    unbound = sorted({n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
                      and n.value.id in aliases and n.attr not in given | imported})
    assert not unbound, f"{where} reads abcscale.{unbound[0]} without importing it (a fresh interpreter fails)"
    exec(compile(tree, where, "exec"), {"__name__": "__main__"})
