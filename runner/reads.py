"""The files a user's model reads as it loads, builds and traces: a config beside it, a vocabulary, saved weights.

Their bytes are not in the sweep's cell keys, which hold the model's code (``runner.spec.model_source``), so the
check before a sweep says so (``runner.user.check``), a long-lived process loads and builds the model again when
one of them changes (their digests are part of its stamp, ``runner.usercode``), and a Ray worker must read the same
bytes as the driver (``runner.sweep.model_reads``).

Reads are seen by wrapping ``builtins.open``, ``io.open`` (pathlib's) and ``os.open`` while a check's thread builds
the model, and putting back what was there after: the first version's ``sys.addaudithook`` hook could never be
removed and cost every audited event of the process for good (``id()``, ``sys._getframe``: JAX traced a third
slower afterwards, a review). Not seen: reads through C (h5py, safetensors), on other threads (a pool loading
shards), or through an ``open`` a module bound before the check (``from io import open``).
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import io
import os
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


_LOCK = threading.Lock()
#: the threads being watched
_WATCHED: dict[int, Reads] = {}
#: while watched: (module, name, what was there, its wrapper), put back when the last watch ends
_PATCHED: list[tuple[Any, str, Any, Any]] = []


def _seen(file: Any, writes: bool) -> None:
    """Note ``file`` for the calling thread, if watched. Never raises: the user's ``open`` must not fail here."""
    try:
        reads = _WATCHED.get(threading.get_ident())
        if reads is None or isinstance(file, int):  # an open descriptor, not a file of the user's
            return
        path = os.path.abspath(os.fsdecode(os.fspath(file)))  # against the working directory now, not later
        (reads.written if writes else reads.read).add(path)
    except Exception:  # noqa: BLE001, S110 - a path that is no path: the open itself says so
        pass


def _opener(original: Callable[..., Any]) -> Callable[..., Any]:
    """``open`` (``builtins.open``, ``io.open``) that notes the file first; a mode with w, x or a writes (``r+``
    reads: ``np.memmap``'s default, a review)."""

    @functools.wraps(original)
    def opened(file: Any, *args: Any, **kwargs: Any) -> Any:
        if _WATCHED:
            mode = args[0] if args else kwargs.get("mode", "r")
            _seen(file, not isinstance(mode, str) or any(c in mode for c in "wxa"))
        return original(file, *args, **kwargs)

    return opened


def _os_opener(original: Callable[..., Any]) -> Callable[..., Any]:
    """``os.open`` that notes the file first; flags that create, truncate or append write."""

    @functools.wraps(original)
    def opened(path: Any, flags: int, *args: Any, **kwargs: Any) -> Any:
        if _WATCHED and kwargs.get("dir_fd") is None:
            with contextlib.suppress(Exception):
                _seen(path, bool(flags & (os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND)))
        return original(path, flags, *args, **kwargs)

    return opened


@contextlib.contextmanager
def watch() -> Iterator[Reads]:
    """The files this thread opens meanwhile. Other threads' opens pass through untouched."""
    me = threading.get_ident()
    with _LOCK:
        if me in _WATCHED:  # a watch inside a watch: the outer one collects
            outer = True
            reads = _WATCHED[me]
        else:
            outer = False
            reads = _WATCHED[me] = Reads()
            if not _PATCHED:
                for module, name, wrap in ((builtins, "open", _opener), (io, "open", _opener),
                                           (os, "open", _os_opener)):
                    there = getattr(module, name)
                    _PATCHED.append((module, name, there, wrap(there)))
                    setattr(module, name, _PATCHED[-1][3])
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
                    _PATCHED.clear()


#: files that say nothing of a model's settings: code (read by imports, or by JAX and tracebacks for source lines;
#: the import statements cover it), and the system's
_CODE = (".py", ".pyc", ".pyi", ".so", ".pyd", ".pth")
_SYSTEM = ("/proc/", "/sys/", "/dev/", "/etc/", "/usr/", "/var/", "/run/")


def _caches() -> tuple[Path, ...]:
    """The user's cache and configuration folders (matplotlib's font list, a hub's downloads): not edits."""
    home = Path.home()
    found = [os.environ.get("XDG_CACHE_HOME") or home / ".cache", os.environ.get("XDG_CONFIG_HOME") or home / ".config"]
    out = []
    for folder in found:
        with contextlib.suppress(OSError, RuntimeError):
            out.append(Path(folder).resolve())
    return tuple(out)


def user_files(reads: Reads, skip: tuple[Path, ...] = ()) -> list[str]:
    """The files of the user's among ``reads.read``: readable files that are not code, not the system's or a cache's,
    not under ``skip`` (library roots, abcscale's own folders) and not written meanwhile (the model's own output
    read back, a temporary file); each as opened, sorted."""
    written = set()
    for path in reads.written:
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            written.add(Path(path).resolve())
    skip = (*skip, *_caches())
    out: dict[Path, str] = {}
    for path in sorted(reads.read):
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            real = Path(path).resolve()
            if real.suffix in _CODE or "__pycache__" in real.parts or real in written or real in out \
                    or str(real).startswith(_SYSTEM) or any(real.is_relative_to(folder) for folder in skip) \
                    or not real.is_file() or not os.access(real, os.R_OK):
                continue
            out[real] = path
    return sorted(out.values())
