"""What a user model's factory reference (``path/model.py:factory``, ``pkg.module:factory``) names as code, in a
long-lived process: a notebook that edits its model between two sweeps trains the edit.

A reference's *stamp* is the file it names (resolved: a relative path read from another working directory is
another file), the user's own modules that file imports where a fresh import finds them
(``runner.spec.user_imports``: the model's folder first, past ``sys.modules``, so another folder's ``layers`` or a
notebook's own is not the model's) and a digest of each file's bytes. The stamp is read when a sweep, tune,
coordinate check or roles listing starts (:func:`refresh`, through ``runner.user.check``) and held until the next
one starts: a run trains one version of the model, the one its cell keys name (``runner.spec.model_source`` hashes
the same files), whatever is saved meanwhile. ``runner.user``'s loaded factories and built models and
``runner.train``'s traced programs are cached by it.

Loading a new stamp (:func:`before_load`) first takes out of ``sys.modules`` the user's modules that changed,
those that import them, and any held from another file, and deletes the changed files' bytecode (Python trusts a
``.pyc`` whose source has the same size and second of modification).

Until session 74 the factory was cached by the reference's text: the first load served the whole process, and a
second sweep after an edit recorded the old code's losses under the edited code's cell key.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib.util
import os
import sys
import threading
from pathlib import Path
from typing import Any

#: (file, its modules: (name, file) sorted, (file, digest) of each) or, where the file is not found, (reference,)
Stamp = tuple[Any, ...]

#: held while a stamp is read or a factory loads: a sweep's threads build models, and a load edits sys.modules
LOCK = threading.RLock()
#: (reference, working directory) -> the stamp :func:`refresh` last read
_CURRENT: dict[tuple[str, str], Stamp] = {}
#: factory file -> the stamp it was last loaded at
_LOADED: dict[str, Stamp] = {}


def stamp(ref: str) -> Stamp:
    """``ref``'s stamp as last read in this working directory (read now if never)."""
    with LOCK:
        return _CURRENT.get((ref, _cwd())) or refresh(ref)


def refresh(ref: str) -> Stamp:
    """Read ``ref``'s code again: its file, the user's modules it imports and their bytes."""
    from abcscale.runner.spec import _factory_file, file_imports, first_folder

    with LOCK:
        path, package = _factory_file(ref)
        out: Stamp = (ref,)
        if path is not None and path.is_file():
            main = path.resolve()
            files = file_imports(main, package, first_folder(ref))
            out = (str(main), tuple(sorted((name, str(file)) for name, file in files.items())),
                   _digests([main, *files.values()]))
        _CURRENT[(ref, _cwd())] = out
        return out


def changed(old: Stamp) -> list[str]:
    """The files of stamp ``old`` whose bytes differ now (or that are gone)."""
    if len(old) != 3:
        return []
    now = dict(_digests([Path(file) for file, _ in old[2]]))
    return [file for file, digest in old[2] if now[file] != digest]


def before_load(target: str, new: Stamp) -> None:
    """Make ``sys.modules`` hold what loading ``target`` at stamp ``new`` must import afresh (module docstring)."""
    from abcscale.runner.spec import first_folder, fresh_spec

    main, imports, digests = new
    expected = dict(imports)  # module name -> the file a fresh import finds
    if not (target.endswith(".py") or "/" in target):  # pkg.module: the module and its packages too
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            name = ".".join(parts[:i])
            with contextlib.suppress(ImportError, ValueError):
                if (spec := fresh_spec(name, first_folder(f"{target}:_"))) is not None and spec.origin:
                    expected[name] = str(Path(spec.origin).resolve())
    before = _LOADED.get(main)
    _LOADED[main] = new
    edited = {file for file, digest in digests if before is not None and dict(before[2]).get(file) != digest}
    drop = {name for name in expected
            if (module := sys.modules.get(name)) is not None and _file_of(module) != expected[name]}
    drop |= _importers({name for name, file in expected.items() if file in edited}, expected)
    for file in edited:  # a same-size edit within a second: Python would load the old bytecode
        with contextlib.suppress(OSError, ValueError, NotImplementedError):
            os.remove(importlib.util.cache_from_source(file))
    for name in drop:
        sys.modules.pop(name, None)


def _importers(names: set[str], files: dict[str, str]) -> set[str]:
    """``names`` and the user's modules (``files``: name -> file) that import one of them, directly or through
    each other: an unchanged module that no edited one reaches stays imported (its top-level code, a pytree
    registration say, does not run twice)."""
    from abcscale.runner.spec import _imported_names

    uses: dict[str, set[str]] = {}
    for name, file in files.items():
        try:
            tree = ast.parse(Path(file).read_bytes())
        except (OSError, SyntaxError, ValueError):
            continue
        package = name if Path(file).name == "__init__.py" else name.rpartition(".")[0]
        uses[name] = set(_imported_names(tree, package or None)) & files.keys()
    out = set(names)
    while grown := {name for name, used in uses.items() if name not in out and used & out}:
        out |= grown
    return out


def _digests(files: list[Path]) -> tuple[tuple[str, str | None], ...]:
    out: list[tuple[str, str | None]] = []
    for file in files:
        try:
            out.append((str(file), hashlib.sha256(file.read_bytes()).hexdigest()[:16]))
        except OSError:
            out.append((str(file), None))
    return tuple(out)


def _file_of(module: Any) -> str | None:
    file = getattr(module, "__file__", None)
    return str(Path(file).resolve()) if file else None


def _cwd() -> str:
    try:
        return os.getcwd()
    except OSError:  # the working directory was deleted
        return ""


def findable(name: str) -> bool:
    """Whether a fresh import of module ``name`` finds it (a deleted ``pkg/module.py`` is not, though
    ``sys.modules`` still holds it)."""
    from abcscale.runner.spec import first_folder, fresh_spec

    try:
        return fresh_spec(name, first_folder(f"{name}:_")) is not None
    except (ImportError, ValueError):
        return False
