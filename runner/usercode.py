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

Loading a new stamp (:func:`before_load`) first takes out of ``sys.modules`` each of the user's modules held from
another file or from other bytes than the stamp's (edited since this process imported it, through any model's load
or the user's own ``import``), with the user's modules that import it, and deletes their bytecode (Python trusts a
``.pyc`` whose source has the same size and second of modification). An unchanged module stays imported: its
top-level code (a pytree registration, say) does not run twice.

Until session 74 the factory was cached by the reference's text: the first load served the whole process, and a
second sweep after an edit recorded the old code's losses under the edited code's cell key.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import importlib.util
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: (file, its modules: (name, file) sorted, (file, digest) of each) or, where the file is not found, (reference,)
Stamp = tuple[Any, ...]

#: held while a stamp is read or a factory loads: a sweep's threads build models, and a load edits sys.modules
LOCK = threading.RLock()
#: (reference, working directory) -> the stamp :func:`refresh` last read
_CURRENT: dict[tuple[str, str], Stamp] = {}
#: a user module's file -> the digest of the bytes this process last imported it from, through a model's load; one
#: table for the process, as ``sys.modules`` is (two model files sharing a ``layers.py``: the second's load after an
#: edit found it unchanged for itself and trained the first's import of it, a review)
_IMPORTED: dict[str, str | None] = {}


#: the tables of :func:`by_version` functions
_TABLES: list[dict[tuple[Any, ...], Any]] = []
#: stamps :func:`forget` dropped and no load has brought back: a build of one still running on another thread when
#: a newer version loaded keeps its answer to itself (stored, it stayed for the process: a review)
_FORGOTTEN: set[Stamp] = set()


def by_version(fn: Callable[..., T]) -> Callable[..., T]:
    """``functools.cache`` for a function one of whose (positional) arguments is a stamp: an entry lives until a
    newer version of that code loads (:func:`forget`). With ``functools.cache`` a notebook's process kept every
    version's built models and traced programs: 15 MiB an edit of a two-width sweep's model (session 75)."""
    table: dict[tuple[Any, ...], Any] = {}
    _TABLES.append(table)

    @functools.wraps(fn)
    def cached(*args: Any) -> T:
        try:
            return table[args]
        except KeyError:
            out = fn(*args)
        with LOCK:  # forget takes it too: an answer is stored only while its version is current
            if not any(part in _FORGOTTEN for part in args if isinstance(part, tuple)):
                table[args] = out
        return out

    cached.cache_clear = table.clear  # type: ignore[attr-defined]
    return cached


def forget(old: Stamp) -> None:
    """Drop what :func:`by_version` functions keep for the code of stamp ``old`` (a newer version has loaded; an
    edit undone loads and builds again, as any version does)."""
    with LOCK:
        _FORGOTTEN.add(old)
        for table in _TABLES:
            for key in [k for k in list(table) if any(part == old for part in k if isinstance(part, tuple))]:
                table.pop(key, None)


def loaded(current: Stamp) -> None:
    """The code of stamp ``current`` is loaded (again): what :func:`by_version` functions answer for it is kept."""
    with LOCK:
        _FORGOTTEN.discard(current)


#: (reference, working directory) -> (the stamp a check noted them under, the files of the user's its model read as
#: it loaded and built: ``runner.reads``); their digests are part of the reference's next stamps, so an edit to one
#: (a config) loads and builds the model again in this process (a review: a notebook's second sweep after editing the
#: config the model reads trained the first's)
_READS: dict[tuple[str, str], tuple[Stamp | None, tuple[str, ...]]] = {}


def note_reads(ref: str, files: list[str] | tuple[str, ...], under: Stamp | None = None) -> None:
    """Record the files ``ref``'s model read at a check of stamp ``under``: added to those noted under the same stamp
    (a later check of one version builds nothing, its models being kept, so it reads nothing), else replacing them;
    ``under`` None (a Ray worker, told the driver's) replaces them."""
    with LOCK:
        key = (ref, cwd())
        held = _READS.get(key)
        if under is not None and held is not None and held[0] == under:
            files = (*held[1], *files)
        _READS[key] = (under, tuple(sorted(set(files))))


def reads(ref: str) -> tuple[str, ...]:
    """The files ``ref``'s model read at its last check in this working directory (:func:`note_reads`)."""
    held = _READS.get((ref, cwd()))
    return held[1] if held is not None else ()


def promote(ref: str, old: Stamp) -> Stamp:
    """``ref``'s stamp read again after a check noted the files its model reads (:func:`note_reads`): where only their
    digests are new (the same code), what :func:`by_version` functions keep for ``old`` is kept under the new stamp,
    having been built from those files moments ago, so the next sweep does not load and build the model again for
    their digests alone. The new stamp."""
    with LOCK:
        new = refresh(ref)
        if new != old and code_part(new) == code_part(old):
            for table in _TABLES:
                for key in [k for k in list(table) if any(part == old for part in k if isinstance(part, tuple))]:
                    table[tuple(new if isinstance(part, tuple) and part == old else part for part in key)] = \
                        table.pop(key)
            _FORGOTTEN.discard(new)
            if (held := _READS.get((ref, cwd()))) is not None and held[0] == old:
                _READS[(ref, cwd())] = (new, held[1])  # the next check of this version adds to them
        return new


def code_part(current: Stamp) -> Stamp:
    """``current`` without the digests of the files the model reads (its code alone: what a warning about the code
    is said once for)."""
    if len(current) != 3:
        return current
    code = {current[0], *(file for _, file in current[1])}
    return (current[0], current[1], tuple(d for d in current[2] if d[0] in code))


def stamp(ref: str) -> Stamp:
    """``ref``'s stamp as last read in this working directory (read now if never)."""
    with LOCK:
        return _CURRENT.get((ref, cwd())) or refresh(ref)


def refresh(ref: str) -> Stamp:
    """Read ``ref``'s code again: its file, the user's modules it imports and their bytes."""
    from abcscale.runner.spec import _factory_file, file_imports, first_folder

    with LOCK:
        out: Stamp = (ref,)  # not found, or not readable: loading it says why, as before
        try:
            path, package = _factory_file(ref)
            if path is not None and path.is_file():
                main = path.resolve()
                files = file_imports(main, package, first_folder(ref))
                side = [Path(file) for file in reads(ref) if Path(file) not in (main, *files.values())]
                out = (str(main), tuple(sorted((name, str(file)) for name, file in files.items())),
                       _digests([main, *files.values()]) + tuple((str(file), file_digest(file)) for file in side))
        except (OSError, RuntimeError, ValueError):  # a home that is not there (~nobody/), a name too long, ...
            pass
        _CURRENT[(ref, cwd())] = out
        return out


def changed(old: Stamp) -> list[str]:
    """The files of stamp ``old`` whose bytes differ now (or that are gone)."""
    if len(old) != 3:
        return []
    now = dict(_digests([Path(file) for file, _ in old[2]]))
    return [file for file, digest in old[2] if now[file] != digest]


def before_load(target: str, new: Stamp) -> None:
    """Make ``sys.modules`` hold what loading ``target`` at stamp ``new`` must import afresh (module docstring): a
    module of the user's held from another file, from bytes other than the stamp's (edited since this process
    imported it, by any model's load or by the user's own ``import``) or from a file since deleted leaves, with the
    user's modules that import it, a package's submodules, and its name on its package (``from pkg import layers``
    reads that first). A module of a library (or the standard library) is never taken out: a sibling that shadows
    one fails to import as it did before."""
    from abcscale.runner.spec import _imported_names, _library_roots, first_folder, fresh_spec

    main, imports, digests = new
    roots = _library_roots()
    expected = dict(imports)  # module name -> the file a fresh import finds
    if not (target.endswith(".py") or "/" in target):  # pkg.module: the module and its packages too
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            name = ".".join(parts[:i])
            with contextlib.suppress(ImportError, ValueError, OSError, RuntimeError):
                spec = fresh_spec(name, first_folder(f"{target}:_"))
                if spec is not None and spec.origin and parts[0] != "abcscale" \
                        and not _in(str(Path(spec.origin).resolve()), roots):
                    expected[name] = str(Path(spec.origin).resolve())
    now = dict(digests)
    stale = {name for name, file in expected.items()
             if (module := sys.modules.get(name)) is not None and not _in(_file_of(module), roots)
             and (_file_of(module) != file or (file in now and _IMPORTED.get(file) != now[file]))}
    code = {main, *expected.values()}
    if any(file not in code and _IMPORTED.get(file) != digest for file, digest in digests):
        # a file the model reads changed (a config): any of the user's modules may have read it as it was imported
        # (a helper reading it at its top kept the old values, a review), so all are imported again
        stale |= {name for name in expected if name in sys.modules and not _in(_file_of(sys.modules[name]), roots)}
    # a module the files import that is no longer there (a deleted layers.py): not trained from memory
    for file in (main, *expected.values()):
        with contextlib.suppress(OSError, SyntaxError, ValueError):
            stale |= {name for name in _imported_names(ast.parse(Path(file).read_bytes()), None)
                      if gone(name) and not _in(_file_of(sys.modules[name]), roots)}
    drop = _importers(stale, expected)
    drop |= {name for name in list(sys.modules) if any(name.startswith(f"{d}.") for d in drop)}
    for name in drop:
        module = sys.modules.pop(name, None)
        if (file := _file_of(module)) is not None:  # a same-size edit within a second: the old bytecode would load
            with contextlib.suppress(OSError, ValueError, NotImplementedError):
                os.remove(importlib.util.cache_from_source(file))
        package, _, leaf = name.rpartition(".")
        if package and getattr(sys.modules.get(package), leaf, None) is module is not None:
            delattr(sys.modules[package], leaf)
    _IMPORTED.update(now)  # what the load about to run imports (the stamp was read moments ago)


def _in(file: str | None, roots: tuple[Path, ...]) -> bool:
    """Whether ``file`` lies in a library root; a module without a file (built in, frozen) counts as one."""
    return file is None or any(Path(file).is_relative_to(root) for root in roots)


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
    return tuple((str(file), file_digest(file)) for file in files)


#: (path, device, inode, size, modification and change times) -> digest, for the files of a stamp (a model may read
#: large ones, saved weights, and a sweep asks for their digests per task). The change time is the file system's
#: own, which ``cp -p``, ``touch -r`` or ``tar x`` cannot set back (keyed by the modification time alone, a file
#: replaced by one of the same size and time kept the old digest: a review); and a digest is kept only for a file
#: unchanged for 2 s, as two writes within the clock's granularity share a time (git's index rehashes such files)
_FILE_DIGESTS: dict[tuple[str, int, int, int, int, int], str] = {}


def file_digest(path: Path) -> str | None:
    """A digest of ``path``'s bytes (None where it cannot be read), read in chunks."""
    import time

    try:
        st = path.stat()
        key = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if (held := _FILE_DIGESTS.get(key)) is not None:
            return held
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > 2_000_000_000:
            _FILE_DIGESTS[key] = digest.hexdigest()[:16]
        return digest.hexdigest()[:16]
    except OSError:
        return None


def _file_of(module: Any) -> str | None:
    file = getattr(module, "__file__", None)
    return str(Path(file).resolve()) if file else None


def cwd() -> str:
    """The working directory, "" where it was deleted: part of the keys of what a relative path names."""
    try:
        return os.getcwd()
    except OSError:  # the working directory was deleted
        return ""


def gone(name: str) -> bool:
    """Whether ``sys.modules`` holds module ``name`` from a file that is no longer there (a deleted
    ``pkg/module.py``): a module without a file (``__main__`` of a notebook, one built in memory) is not gone."""
    file = getattr(sys.modules.get(name), "__file__", None)
    return isinstance(file, str) and name != "__main__" and not Path(file).exists()
