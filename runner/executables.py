"""The runner's compilation cache: compiled programs on disk, found without tracing.

JAX's persistent compilation cache keys a program by its lowered module, so even a hit traces and lowers the
whole training program first: about 0.6 s of Python per program (trace 0.23-0.36 s, lower 0.3 s for the demo's
transformer), holding the GIL, three times in the demo sweep. This cache keys a built-in model's executable by
what the program is made of instead, and a hit skips tracing, lowering and compiling (0.2 s to load a width-64
program).

The key is a SHA-256 over everything that decides the compiled code: the :class:`~abcscale.runner.train.Program`
(model shape, optimizer, steps, recorded steps, ...), the argument shapes and dtypes, the XLA options, the
versions of jax, jaxlib, optax and numpy, the backend and its devices, the options XLA compiles with in this
process (:func:`xla_options`: ``XLA_FLAGS`` as XLA read it), JAX's numeric settings, and the bytes of the runner's
own modules, which the trace runs. A change to any of them is another file, never
a stale program. A user model's code lives outside the runner, so its programs are keyed by their lowered
module, as JAX keys them (traced, but not compiled, on a hit).

It replaces JAX's persistent cache rather than sitting in front of it: with jaxlib 0.10.2 an XLA:CPU executable
that JAX's cache loaded serializes without some of its kernels ("Function iota.2_kernel not found" when the copy
runs), so only executables compiled in this process are written. Files are written atomically; one that fails
to load, or whose program fails to run (``train.run_program``), is compiled again and replaced.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import pickle
import threading
from pathlib import Path
from typing import Any

import jax

_MODULES = ("train", "nn", "transformer", "mlp", "optim", "draws")  # what a built-in model's trace executes
_folder: Path | None = None


def use(folder: Path | None) -> None:
    """Keep executables in ``folder`` (None: keep nothing)."""
    global _folder
    _folder = folder


def folder() -> Path | None:
    return _folder


@functools.cache
def _environment() -> str:
    """The process-wide part of the key (versions, backend, source bytes), computed once."""
    import jaxlib
    import numpy
    import optax

    here = Path(__file__).parent
    sources = hashlib.sha256(b"".join((here / f"{m}.py").read_bytes() for m in _MODULES)).hexdigest()
    dev = jax.devices()[0]
    return repr((jax.__version__, jaxlib.__version__, optax.__version__, numpy.__version__, dev.platform,
                 dev.device_kind, dev.client.platform_version, len(jax.devices()), sources))


@functools.cache
def _xla_read() -> tuple[str, str | None]:
    """(a digest of the debug options XLA compiles with in this process, as read from them (``runner._xla``);
    ``XLA_FLAGS`` as it was when XLA read it, None where JAX had started before the runner first looked, and so the
    value XLA read is not known here).

    XLA parses ``XLA_FLAGS`` once, when JAX starts its first backend (or first builds compile options), and keeps
    the result for the process: a value set later is not applied. The compile options it builds carry what it
    parsed, so their bytes say what every program of the process is compiled with."""
    env = os.environ.get("XLA_FLAGS", "")
    try:
        from jax._src import xla_bridge

        from abcscale.runner import _xla

        started = xla_bridge.backends_are_initialized()
        return _xla.digest(), None if started else env
    except Exception:  # a JAX that moved these: the variable's value, as keyed before (session 75)
        return f"XLA_FLAGS={env}", env


@functools.cache
def xla_options() -> str:
    """A digest of the options XLA compiles with in this process, ``XLA_FLAGS`` included as XLA read it, less the
    flags that only dump or log (where the process has some, the digest of a fresh process started without them:
    the bindings expose only some of the dump options). Keying kept programs by the variable's value at each compile
    filed a notebook's programs, compiled without a flag set after its first sweep, under that flag's keys, and a
    process started with it then loaded them (session 75)."""
    from abcscale.runner import _xla

    here, flags = _xla_read()[0], xla_flags_read()
    if flags and (plain := _xla.without_dumps(flags)) != _xla.without_dumps(flags, keep_all=True):
        return _fresh_options(plain) or here  # dumps or logs on: the same flags without them (0.15 s)
    return here


@functools.cache
def _fresh_options(flags: str) -> str | None:
    """The digest (``runner._xla``) a fresh process started with ``XLA_FLAGS=flags`` builds (0.15 s); None where it
    cannot say (a flag XLA refuses ends that process)."""
    import subprocess
    import sys

    try:
        done = subprocess.run([sys.executable, "-m", "abcscale.runner._xla"], env={**os.environ, "XLA_FLAGS": flags},
                              capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def _applied(flags: str) -> bool | None:
    """Whether XLA compiles with ``flags`` in this process (the value it read, or one it reads the same); None where
    that cannot be told. Asked of a fresh process only where JAX started before the runner looked, or the variable
    changed since."""
    read = _xla_read()[1]
    if read is not None and read == flags:
        return True
    fresh = _fresh_options(flags)
    return None if fresh is None else fresh == _xla_read()[0]


def options_for(flags: str) -> str | None:
    """:func:`xla_options` of a process started with ``XLA_FLAGS=flags`` (this process's where it is the same;
    else asked of a fresh process), None where that cannot be told."""
    from abcscale.runner import _xla

    return xla_options() if _applied(flags) else _fresh_options(_xla.without_dumps(flags))


def xla_flags_read() -> str | None:
    """``XLA_FLAGS`` as this process's XLA read it ('' none), or None where not known (JAX started before the runner
    looked, and the variable's value now is not what XLA compiles with)."""
    read, now = _xla_read()[1], os.environ.get("XLA_FLAGS", "")
    if read is not None:
        return read
    return now if _applied(now) else None


def xla_flags_note() -> str | None:
    """What to tell a user whose ``XLA_FLAGS`` is not what this process's XLA compiles with (set after JAX started:
    XLA reads it once); None where it is, or where that cannot be told."""
    now = os.environ.get("XLA_FLAGS", "")
    if _applied(now) is not False:
        return None
    read = _xla_read()[1]
    was = f"XLA read {read!r}" if read is not None else "XLA read it before this process's first sweep"
    return (f"XLA_FLAGS is {now!r} but {was} when JAX started in this process, and reads it once: programs compile "
            "with the value it read (and are kept as such); start a new process to apply the new one")


def path(program: Any, args: tuple[Any, ...], options: dict[str, Any]) -> Path | None:
    """Where the executable of ``program`` (a ``train.Program``, a ``draws.Draw``, or a lowered module's text)
    compiled for ``args`` (arrays or shape structs, a pytree's leaves) with ``options`` lives; None when nothing
    is kept."""
    if _folder is None:
        return None
    if isinstance(program, str):
        program = hashlib.sha256(program.encode()).hexdigest()
    # the random draws' settings too: a kept draw program (runner.draws) embeds the PRNG's implementation
    numerics = {k: getattr(jax.config, k) for k in ("jax_enable_x64", "jax_default_matmul_precision",
                                                     "jax_threefry_partitionable", "jax_default_prng_impl")}
    settings = (sorted(numerics.items()), xla_options())
    shapes = [(a.shape, str(a.dtype)) for a in jax.tree.leaves(args)]  # the initial parameters are a dict
    key = repr((program, shapes, sorted(options.items()), settings, _environment()))
    return _folder / f"{hashlib.sha256(key.encode()).hexdigest()}.executable"


def load(file: Path | None) -> Any | None:
    """The executable kept in ``file``, or None (absent, or unreadable: damaged, or from another build)."""
    if file is None or not file.exists():
        return None
    from jax.experimental.serialize_executable import deserialize_and_load

    try:
        payload, in_tree, out_tree = pickle.loads(file.read_bytes())
        return deserialize_and_load(payload, in_tree, out_tree)
    except Exception:  # whatever the reason, the answer is "compile it": the file is replaced
        return None


def save(file: Path | None, compiled: Any) -> None:
    """Keep ``compiled`` in ``file`` (written to a temporary name, then renamed: readers never see half a file).
    A program that cannot be serialized, or a full disk, only means the next sweep compiles again."""
    if file is None:
        return
    from jax.experimental.serialize_executable import serialize

    tmp = file.with_name(f"{file.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # writers never share one
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(pickle.dumps(serialize(compiled)))
        os.replace(tmp, file)
    except Exception:
        with contextlib.suppress(OSError):  # the folder itself may be what failed (missing_ok is ENOENT alone)
            tmp.unlink(missing_ok=True)


def drop(file: Path) -> None:
    """Delete a kept executable that failed to run."""
    file.unlink(missing_ok=True)
