"""The files a user's model reads as it loads, builds and traces: a config beside it, a vocabulary, saved weights.

Their bytes are not in the sweep's cell keys, which hold the model's code (``runner.spec.model_source``), so the
check before a sweep says so (``runner.user.check``), a long-lived process loads and builds the model again when
one of them changes (their digests are part of its stamp, ``runner.usercode``), and a Ray worker must read the same
bytes as the driver (``runner.sweep.model_reads``).

Reads are seen by wrapping ``builtins.open``, ``io.open`` (pathlib's) and ``os.open`` while a check's thread builds
the model, and putting back what was there after: the first version's ``sys.addaudithook`` hook could never be
removed and cost every audited event of the process for good (``id()``, ``sys._getframe``: JAX traced a third
slower afterwards, a review). A module first imported meanwhile that binds ``open`` at its top gets the real one
back when the watch ends. Not seen: reads through C (h5py, safetensors), on other threads (a pool loading shards),
or through an ``open`` a module bound before the check (``from io import open``). A file read meanwhile whose bytes
changed by the end is :func:`changed`: the check stops, as for an edit of the code.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import io
import os
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Reads:
    """What one thread opened while watched: absolute paths as opened (not resolved: a link's name, not its
    target's), for reading and for writing."""

    read: set[str] = field(default_factory=set)
    written: set[str] = field(default_factory=set)
    #: a digest of each read file's bytes as it was first opened (``usercode.file_digest``)
    digests: dict[str, str | None] = field(default_factory=dict)
    #: folders whose files are not the user's (:func:`watch`'s ``skip`` and the caches): not hashed as they open
    skip: tuple[Path, ...] = ()


_LOCK = threading.Lock()
#: the threads being watched
_WATCHED: dict[int, Reads] = {}
#: while watched: (module, name, what was there, its wrapper), put back when the last watch ends
_PATCHED: list[tuple[Any, str, Any, Any]] = []
#: while watched: the modules imported before the first watch began
_BEFORE: list[set[str]] = []


def _seen(file: Any, writes: bool) -> None:
    """Note ``file`` for the calling thread, if watched. Never raises: the user's ``open`` must not fail here."""
    try:
        reads = _WATCHED.get(threading.get_ident())
        if reads is None or isinstance(file, int):  # an open descriptor, not a file of the user's
            return
        path = os.path.abspath(os.fsdecode(os.fspath(file)))  # against the working directory now, not later
        (reads.written if writes else reads.read).add(path)
        if not writes and path not in reads.digests and _maybe_users(path, reads.skip) and os.path.isfile(path):
            from abcscale.runner.usercode import file_digest

            reads.digests[path] = None  # the digest's own read passes through
            if (digest := file_digest(Path(path))) is None:  # unreadable now: the next open takes it
                del reads.digests[path]
            else:
                reads.digests[path] = digest
    except Exception:  # noqa: BLE001, S110 - a path that is no path: the open itself says so
        pass


def _maybe_users(path: str, skip: tuple[Path, ...]) -> bool:
    """:func:`user_files`' cheap tests on a path as opened, before it is hashed (a header read from a checkpoint in a
    hub's cache hashed all of it, for nothing: a review)."""
    return not (path.endswith(_CODE) or "__pycache__" in path or path.startswith(_SYSTEM)
                or any(Path(path).is_relative_to(folder) for folder in skip))


def changed(reads: Reads, files: list[str]) -> list[str]:
    """Those of ``files`` (read while watched) whose bytes differ now from when they were first opened: an edit saved
    while the model was being built, whose bytes the builds may or may not hold. By content, not the file's state:
    a model touching or atomically rewriting a file with the same bytes changes nothing (a review)."""
    from abcscale.runner.usercode import file_digest

    return [path for path in files if path in reads.digests and file_digest(Path(path)) != reads.digests[path]]


class _Opener:
    """``open`` (``builtins.open``, ``io.open``) or ``os.open`` (``os_call``) that notes the file first and calls what
    was there with the arguments as given (its errors are its own). A callable object, not a function: a function
    stored as a class attribute (``reader = open``) becomes a method and gets the instance as its file (a review);
    it hashes and compares as what it wraps (``os.open in os.supports_dir_fd`` holds, as shutil asks) and pickles as
    it does while it stands in for it."""

    def __init__(self, original: Callable[..., Any], module: str) -> None:
        functools.update_wrapper(self, original)
        self.__wrapped__ = original
        self._module = module
        self._os = module == "os"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _WATCHED:
            if self._os:  # os.open(path, flags, mode=0o777, *, dir_fd=None): flags that create, truncate or append
                if kwargs.get("dir_fd") is None:
                    flags = args[1] if len(args) > 1 else kwargs.get("flags", 0)
                    _seen(args[0] if args else kwargs.get("path"), not isinstance(flags, int) or bool(
                        flags & (os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND)))
            else:  # open(file, mode="r", ...): a mode with w, x or a writes (r+ reads: np.memmap's default)
                mode = args[1] if len(args) > 1 else kwargs.get("mode", "r")
                writes = not isinstance(mode, str) or any(c in mode for c in "wxa")
                _seen(args[0] if args else kwargs.get("file"), writes)
        return self.__wrapped__(*args, **kwargs)

    def __hash__(self) -> int:
        return hash(self.__wrapped__)

    def __eq__(self, other: object) -> bool:
        return other is self or other is self.__wrapped__  # identity: an array's == would answer with an array

    def __reduce__(self) -> Any:
        return _named, (self._module,)

    def __repr__(self) -> str:
        return repr(self.__wrapped__)


def _named(module: str) -> Any:
    """``open`` of ``module`` as it is now (what a pickled stand-in loads as)."""
    return {"builtins": builtins, "io": io, "os": os}[module].open


@contextlib.contextmanager
def watch(skip: tuple[Path, ...] = ()) -> Iterator[Reads]:
    """The files this thread opens meanwhile (``skip``: folders whose files are not the user's, not hashed). Other
    threads' opens pass through untouched."""
    me = threading.get_ident()
    with _LOCK:
        if me in _WATCHED:  # a watch inside a watch: the outer one collects
            outer = True
            reads = _WATCHED[me]
        else:
            outer = False
            reads = _WATCHED[me] = Reads(skip=(*skip, *_caches()))
            if not _PATCHED:
                _BEFORE[:] = [set(sys.modules)]
                shared = _Opener(io.open, "io")  # builtins.open is io.open: one stand-in keeps `open is io.open`
                own = shared if builtins.open is io.open else _Opener(builtins.open, "builtins")
                for module, name, there, wrapper in ((builtins, "open", builtins.open, own),
                                                     (io, "open", io.open, shared),
                                                     (os, "open", os.open, _Opener(os.open, "os"))):
                    _PATCHED.append((module, name, there, wrapper))
                    setattr(module, name, wrapper)
    try:
        yield reads
    finally:
        if not outer:
            with _LOCK:
                _WATCHED.pop(me, None)
                if not _WATCHED:
                    for module, name, there, wrapper in _PATCHED:
                        if getattr(module, name) is wrapper:  # another's patch made meanwhile stays
                            setattr(module, name, there)
                    _unbind(set(sys.modules) - (_BEFORE[0] if _BEFORE else set()))
                    _PATCHED.clear()
                    _BEFORE.clear()


def _unbind(names: set[str]) -> None:
    """Put what was there back in place of a stand-in that a module imported meanwhile bound at its top
    (``tarfile``'s ``bltn_open = open``: it kept the stand-in for good, a review). A class attribute holding one is not
    reached (it stays, and passes every call through)."""
    originals = {id(wrapper): there for _, _, there, wrapper in _PATCHED}
    for name in names:
        try:
            namespace = object.__getattribute__(sys.modules[name], "__dict__")
            for key, value in list(namespace.items()):
                if isinstance(value, _Opener) and id(value) in originals:
                    namespace[key] = originals[id(value)]
        except Exception:  # noqa: BLE001, S112 - an odd entry in sys.modules: nothing of ours there
            continue


#: files that say nothing of a model's settings: code (read by imports, or by JAX and tracebacks for source lines;
#: the import statements cover it), and the system's
_CODE = (".py", ".pyc", ".pyi", ".so", ".pyd", ".pth")
_SYSTEM = ("/proc/", "/sys/", "/dev/", "/etc/", "/usr/", "/var/", "/run/",
           "/private/etc/", "/private/var/", "/System/", "/Library/")  # macOS's /etc and /var resolve under /private


def _caches() -> tuple[Path, ...]:
    """The user's cache and configuration folders (matplotlib's font list, a hub's downloads): not edits."""
    home = Path.home()
    found = [os.environ.get("XDG_CACHE_HOME") or home / ".cache", os.environ.get("XDG_CONFIG_HOME") or home / ".config"]
    out = []
    for folder in found:
        with contextlib.suppress(OSError, RuntimeError):
            out.append(Path(folder).resolve())
    return tuple(out)


def user_files(reads: Reads) -> list[str]:
    """The files of the user's among ``reads.read``: readable files that are not code, not the system's, not under
    ``reads.skip`` (:func:`watch`'s folders and the caches) and not written meanwhile (the model's own output read
    back, a temporary file); each as opened, sorted."""
    written = set()
    for path in reads.written:
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            written.add(Path(path).resolve())
    skip = reads.skip
    out: dict[Path, str] = {}
    for path in sorted(reads.read):
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            real = Path(path).resolve()
            if real.suffix in _CODE or "__pycache__" in real.parts or real in written or real in out \
                    or str(real).startswith(_SYSTEM) or path.startswith(_SYSTEM) \
                    or any(real.is_relative_to(folder) for folder in skip) \
                    or not real.is_file() or not os.access(real, os.R_OK):
                continue
            out[real] = path
    return sorted(out.values())
