"""The ``abcscale`` command: typer sub-apps and commands, assembled here.

Each command parses its flags, builds the request model of :mod:`abcscale.schemas`, calls one use case
(:mod:`abcscale.usecases`, or the runner for training) and prints the answer: a rich table on stdout, JSON with
``--json``, progress on stderr. Heavy imports (JAX, pandas, the service) happen inside the commands, and a command
line that names a command imports that command's module alone (:func:`app_for`), so ``abcscale theory table`` and
``abcscale check cfg.yaml`` do not pay for the sweep spec's or the fits' imports. Every error is one ``error: ...``
line on stderr with exit code 2 (``_common.RootGroup``).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import io
import os
import sys
from collections.abc import Sequence
from typing import Annotated, NoReturn, TextIO

import typer

# a CI step run with its output closed (`abcscale check cfg.yaml >&-`) starts with sys.stdout None: the command
# still runs to its exit status, its output discarded, instead of failing at import with a traceback
for _fd, _name in ((1, "stdout"), (2, "stderr")):
    if getattr(sys, _name) is None:
        # /dev/null on the stream's own descriptor (dup2), not the lowest free one: with stdin closed too, that
        # would be 0, and the next file opened would take 1 and receive whatever writes to descriptor 1
        _null = os.open(os.devnull, os.O_WRONLY)
        if _null != _fd:
            os.dup2(_null, _fd)
            os.close(_null)
        setattr(sys, _name, open(_fd, "w", encoding="utf-8", closefd=False))  # noqa: SIM115 (the process's own)

from abcscale.cli._common import Command, RootGroup  # noqa: E402

#: every command and sub-app, in ``abcscale --help``'s order: its name -> (its module under abcscale.cli, the
#: command's function there, or None for a sub-app: the module's ``app``)
COMMANDS: dict[str, tuple[str, str | None]] = {
    "theory": ("theory", None),
    "mup": ("mup", None),
    "recommend": ("recommend", "recommend"),
    "sweep": ("runner", "sweep"),
    "tune": ("tune", "tune"),
    "coord-check": ("runner", "coord_check"),
    "fit": ("fit", "fit"),
    "predict": ("predict", "predict"),
    "check": ("check", "check"),
    "serve": ("serve", "serve"),
    "demo": ("demo", "demo"),
}

#: the whole program, every command registered (``from abcscale.cli import app``, as the tests use it): built on
#: first use by the module's ``__getattr__``, not at import, which ``abcscale <command>`` never pays for
app: typer.Typer


def _version(value: bool) -> None:
    if value:
        from abcscale.usecases import version

        typer.echo(f"abcscale {version()}")
        raise typer.Exit()


def _root(
    version: Annotated[bool, typer.Option("--version", help="print the version and exit", callback=_version,
                                          is_eager=True)] = False,
) -> None:
    """Hyperparameter transfer across width: theory, sweeps, fits and a REST service."""


_apps: dict[str | None, typer.Typer] = {}


def app_for(args: Sequence[str]) -> typer.Typer:
    """The program for a command line: where its first word names a command, with that command alone registered
    (its module alone imported: importing all of them took 0.65 s, half of it the sweep spec's and the fits'
    imports, before `abcscale check cfg.yaml` ran a line of its own); else (``--help``, ``--version``, no command,
    an unknown or misspelt one) every command, so the help lists them all and a misspelling gets its "did you mean"
    as before. A command's help, options and errors do not depend on its siblings."""
    name = args[0] if args and args[0] in COMMANDS else None
    if name not in _apps:
        root = typer.Typer(cls=RootGroup, name="abcscale", no_args_is_help=True, add_completion=False,
                           pretty_exceptions_enable=False)
        root.callback()(_root)
        for each in COMMANDS if name is None else (name,):
            module, function = COMMANDS[each]
            loaded = importlib.import_module(f"abcscale.cli.{module}")
            if function is None:
                root.add_typer(loaded.app, name=each)
            else:
                root.command(each, cls=Command)(getattr(loaded, function))
        _apps[name] = root
    return _apps[name]


def __getattr__(name: str) -> typer.Typer:
    if name == "app":  # every command: see `app` above
        return app_for(())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> None:
    """Entry point (``abcscale``, ``python -m abcscale``). As a program (``argv`` None) it ends with
    :func:`_hard_exit`; called with ``argv`` (tests, embedding) it raises ``SystemExit`` as usual."""
    if argv is not None:
        app_for(argv)(args=argv, prog_name="abcscale")
        return
    program = app_for(sys.argv[1:])
    code: object = 0
    sys.stdout, sys.stderr = _ReaderMayLeave(sys.stdout), _ReaderMayLeave(sys.stderr)
    try:
        program(prog_name="abcscale")
    except SystemExit as exc:
        code = exc.code
    _hard_exit(code)


class _ReaderMayLeave(io.TextIOBase):
    """stdout (or stderr) that its reader may close (``abcscale fit ... | head``, ``2>&1 | head``): once a write
    finds the pipe broken, later output goes nowhere and the command runs to its end, so its exit status is its own
    (a failing gate still exits 1; click ended the command at the broken pipe with status 1, before any gate was
    judged). Anything else (``buffer``, ``reconfigure``, ...) is the stream's own."""

    def __init__(self, stream: TextIO) -> None:
        self._stream, self._gone = stream, False
        #: a write that failed otherwise (a full disk under `--json > out.json`): the answer on disk is cut short,
        #: which the exit status must say (it was 0 with 8 KB of a 47 KB answer, or a traceback: a review)
        self.failed: OSError | None = None

    def write(self, text: str) -> int:
        if not self._gone:
            try:
                self._stream.write(text)
            except BrokenPipeError:
                self._gone = True
            except OSError as exc:
                self._gone, self.failed = True, exc
        return len(text)

    def flush(self) -> None:
        if not self._gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._gone = True
            except OSError as exc:
                self._gone, self.failed = True, exc

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._stream.encoding

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return self._stream.errors

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


def _hard_exit(code: object) -> NoReturn:
    """Exit without the interpreter's finalization, which after a sweep spent 0.45 s freeing XLA's programs and
    thread pools and every module's objects (issue 18's whole-process profile); mypy ends the same way. The
    atexit handlers (``ray.shutdown``, logging) still run and the streams are flushed; files are closed by now
    (results are committed atomically as they finish)."""
    if isinstance(code, str):  # sys.exit("message"): printed, status 1, as the interpreter would
        print(code, file=sys.stderr)
    status = code if isinstance(code, int) else 0 if code is None else 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, OSError):  # a reader that left (`abcscale ... | head`): nothing more to say
            pass
    for name, stream in (("stdout", sys.stdout), ("stderr", sys.stderr)):
        if isinstance(stream, _ReaderMayLeave) and stream.failed is not None:
            err = sys.__stderr__
            with contextlib.suppress(OSError):  # stderr may be the one that failed
                if err is not None:
                    err.write(f"error: {name}: the output could not be written whole "
                              f"({stream.failed.strerror or stream.failed}); it is cut short\n")
                    err.flush()
            status = status or 2
    os._exit(status)


__all__ = ["app", "main"]
