"""Shared CLI plumbing: consoles, JSON output, flag parsing, and every error as one line with exit code 2.

Commands print results on stdout (a rich table, or JSON with ``--json``) and progress on stderr, so
``abcscale ... --json | jq`` always reads clean JSON.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable
from typer.core import TyperCommand, TyperGroup

from abcscale.schemas import errors as schema_errors
from abcscale.schemas.errors import python_limit
from abcscale.schemas.numbers import as_typed, read_whole, reads_as_zero

# Piped output (logs, CI) gets a fixed readable width instead of rich's 80-column fallback.
# emoji off: a user's value such as 'model.py:factory:' would print as 'model.py🏭'
console = Console(width=None if sys.stdout.isatty() else 140, emoji=False)
err_console = Console(stderr=True, emoji=False)

if TYPE_CHECKING:
    from abcscale.schemas.fit import FitResult

M = TypeVar("M", bound=BaseModel)


# `--service` asked and no answer came (unreachable, timed out, a 5xx): nothing was judged, so neither a gate's 1
# nor bad input's 2; a CI step can retry on 3
SERVICE_DOWN = 3

# this invocation's error lines and whether a JSON document went to stdout: a command run with --json that ends
# in an error prints one JSON object saying so (RootGroup.main), so a CI step parsing stdout reads why
_said: list[str] = []
_json_printed = False
# with --json, the stream the JSON goes to; everything else the command (or a user's model) prints to stdout goes
# to stderr meanwhile, so stdout holds the JSON alone (a model's print() made `sweep --json` unreadable)
_json_out: TextIO | None = None
# a gate's failure said through fail_gate: the keys its --json error object carries beside `errors`
_gate: dict[str, Any] = {}


def fail(message: str, code: int = 2) -> NoReturn:
    """Report bad input as one line on stderr and exit (2 unless told otherwise)."""
    _one_line(message)
    raise typer.Exit(code)


def fail_gate(message: str, failed: Sequence[str], **fields: Any) -> NoReturn:
    """A gate that fails with no answer to print (exit 1): ``message`` on stderr as :func:`fail` says it, and with
    ``--json`` the error object carries ``failed`` (and ``fields``, e.g. check's empty ``checks``) beside
    ``errors``, the keys a passing or failing report has: a CI step read ``failed`` from every exit 1 but this one
    (a review: `check --strict --json` on a fit without a law gave ``errors`` alone)."""
    _gate.clear()
    _gate.update({"failed": list(failed), **fields})
    fail(message, 1)


def verdict(failed: Sequence[str]) -> dict[str, Any]:
    """A gate's verdict as ``check --json`` gives it: ``ok``, ``exit_code`` (0 or 1) and ``failed`` (the reasons,
    empty when it passes), for the top of a command's JSON."""
    return {"ok": not failed, "exit_code": 1 if failed else 0, "failed": list(failed)}


def validation_message(exc: ValidationError, flags: dict[str, str] | None = None, *, flag: str | None = None) -> str:
    """One line naming each bad field (:func:`abcscale.schemas.errors.validation_message`).

    With ``flags`` (field path -> flag, e.g. ``{"base.width": "--base-width"}``) a field is named as the flag
    the user typed: the longest mapped prefix of the error's location, else ``--`` + the field. With ``flag``
    every error belongs to that one flag. Without either, the location is printed as a dotted path.
    """
    return schema_errors.validation_message(exc, flags, within=flag,
                                            unnamed=lambda field: "--" + field.replace("_", "-"))


def build(model: type[M], flags: dict[str, str] | None = None, /, **fields: Any) -> M:
    """Validate a request model from flag values (None = not given); errors name the flags."""
    try:
        return model.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        fail(validation_message(exc, flags or {}))


def parse_flag(fn: Callable[[str], Any], value: str | None, flag: str) -> Any:
    """Run a parser on a flag's text; a ValueError becomes one line naming ``flag``, as does a file it reads
    (``--rules FILE``) nested too deeply to parse."""
    if value is None:
        return None
    try:
        return fn(value)
    except ValidationError as exc:
        fail(validation_message(exc, flag=flag))
    except ValueError as exc:
        fail(f"{flag}: {python_limit(exc, value)}")
    except RecursionError:
        fail(f"{flag}: {value}: {TOO_DEEP}")
    except MemoryError:
        fail(f"{flag}: {value}: {OUT_OF_MEMORY}")


def read_fit(path: Path, name: str = "--fit") -> FitResult:
    """The ``--fit`` flag's (or ``name``'s) FitResult; a file that is not one is one line naming the flag."""
    from abcscale.usecases import load_fit

    try:
        return load_fit(path)
    except ValueError as exc:  # load_fit's own messages start with "fit: "; a parser's (a 5000-digit number) not
        said = str(exc)
        fail(f"{name}: {said.removeprefix('fit: ')}" if said.startswith("fit: ") else
             f"{name}: {python_limit(exc, path)}")
    except RecursionError:  # a JSON document of lists in lists, thousands deep: the parser's stack, not a traceback
        fail(f"{name}: {path}: {TOO_DEEP}")
    except MemoryError:
        fail(f"{name}: {path}: {OUT_OF_MEMORY}")
    except OSError as exc:  # one load_fit does not say (a name too long for the file system)
        fail(f"{name}: {path}: {exc.strerror or exc}")


#: a document (JSON, YAML, TOML) whose lists or tables nest deeper than the parser's recursion reaches: Python's
#: parsers raise RecursionError, which printed a traceback with exit 1 (`abcscale check deep.json`, a review)
TOO_DEEP = "nested too deeply to read (lists or tables hundreds of levels deep; no config or fit is)"
#: a file that never ends (``--fit /dev/zero``) is read whole: under a memory limit, a MemoryError and a traceback
OUT_OF_MEMORY = "out of memory reading it (a file that never ends, such as /dev/zero, or one far larger than any " \
    "config or fit)"


def file_read(exc: BaseException) -> str | None:
    """The file a parser was reading when ``exc`` rose, for an error no command caught: the ``path`` of the
    innermost abcscale frame that has one naming an existing file (the config, constants or fit it reads)."""
    found: str | None = None
    tb = exc.__traceback__
    while tb is not None:
        frame, tb = tb.tb_frame, tb.tb_next
        path = frame.f_locals.get("path")
        if str(frame.f_globals.get("__name__", "")).startswith("abcscale") and isinstance(path, str | Path):
            with contextlib.suppress(OSError, ValueError):
                if str(path) and Path(path).exists():
                    found = str(path)
    return found


def to_jsonable(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json", by_alias=True)
    if isinstance(obj, list | tuple):
        return [to_jsonable(x) for x in obj]
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    return obj


def on_command_line(ctx: typer.Context, name: str) -> bool:
    """Whether parameter ``name`` was typed (not from its environment variable or default): a flag that does
    nothing without another is an error when typed, while the same variable set for a whole CI job is not."""
    source = ctx.get_parameter_source(name)  # typer vendors click: its enum, compared by name
    return source is not None and source.name == "COMMANDLINE"


def emit_json(obj: Any, indent: int | None = 2) -> None:
    global _json_printed
    _json_printed = True
    out = _json_out or sys.stdout
    out.write(json.dumps(to_jsonable(obj), indent=indent, allow_nan=False, default=str) + "\n")
    out.flush()


@contextlib.contextmanager
def status(message: str, *, quiet: bool = False) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr while a step runs; yields a function that changes its text."""
    if quiet:
        yield lambda _: None
        return
    with err_console.status(message) as s:
        yield lambda text: s.update(text)


@contextlib.contextmanager
def styled_warnings(category: type[Warning]) -> Iterator[None]:
    """Warnings of ``category`` print as one ``warning: ...`` line on stderr, each time, instead of Python's
    ``file:line: Category: message`` plus the source line (which points into abcscale, not at the user's
    input); other warnings keep Python's handling. The previous hook and filters come back on exit."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", category)
        shown, styled = warnings.showwarning, category

        def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: TextIO | None = None, line: str | None = None) -> None:
            if not issubclass(category, styled):
                shown(message, category, filename, lineno, file, line)
                return
            text = escape(" ".join(str(message).split()))
            err_console.print(f"[bold yellow]warning:[/] {text}", highlight=False, soft_wrap=True)

        warnings.showwarning = show
        yield


# --- typer classes: flags without a type column, usage errors as one line ------------------------------


def _hide_flag_types(params: list[Any]) -> list[Any]:
    # Typer prints a type after every option, so flags read "--json <bool>"; a flag takes no value.
    for p in params:
        if getattr(p, "is_flag", False):
            p.metavar = ""
        _refuse_empty_path(p)
        _whole_numbers(p)
        _no_underflow(p)
    return params


def _whole_numbers(param: Any) -> None:
    """An integer option takes a whole number written as a float (``--target-size 1.6e9``, ``--width 4096.0``),
    as REST fields and table cells do; anything else stays typer's error."""
    bare = getattr(param, "bare_type", None)
    if bare is None or getattr(param, "_whole_read", False) or str(bare()) != "int":
        return
    convert = param.process_value

    def process_value(ctx: Any, value: Any) -> Any:
        if isinstance(value, str):
            try:
                int(value)
            except ValueError:
                # said as "unable to parse string as an integer" before a review where it was too large
                reading = read_whole(value, 2**63 - 1)
                if reading.too_large:
                    raise typer.BadParameter(f"{as_typed(value)} is beyond any whole number this option takes",
                                             ctx=ctx, param=param) from None
                if reading.value is not None:
                    value = str(reading.value)
        return convert(ctx, value)

    param.process_value, param._whole_read = process_value, True


def _no_underflow(param: Any) -> None:
    """A float option refuses a number too small for a float (``--blowup 1e-99999999``): it read as 0, which for
    some options means off, so a typed threshold turned the filter off in silence (a CLI fuzz, session 80)."""
    bare = getattr(param, "bare_type", None)
    if bare is None or getattr(param, "_underflow_read", False) or str(bare()) != "float":
        return
    convert = param.process_value

    def process_value(ctx: Any, value: Any) -> Any:
        for text in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(text, str) and reads_as_zero(text):
                raise typer.BadParameter(f"{as_typed(text)} is too small for a float: it would read as 0",
                                         ctx=ctx, param=param)
        return convert(ctx, value)

    param.process_value, param._underflow_read = process_value, True


def _refuse_empty_path(param: Any) -> None:
    """An empty path (``--out "$OUT"`` with OUT unset) is an error naming the flag: as ``Path("")`` it was the working
    directory, where a sweep wrote its tables and ``cells/`` among the user's files."""
    bare = getattr(param, "bare_type", None)
    if bare is None or getattr(param, "_empty_refused", False) or str(bare()) not in ("Path", "list[Path]"):
        return
    convert = param.process_value

    def blank(v: Any) -> bool:  # "" or spaces only: `--out " "` made a folder named " " (a CLI fuzz, session 70)
        return isinstance(v, str) and not v.strip()

    def process_value(ctx: Any, value: Any) -> Any:
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if any(blank(v) for v in values):
            what = "an empty path" if "" in values else "a path of spaces only"
            raise typer.BadParameter(f"{what} (an unset variable?); give a file or folder ('.' for this one)",
                                     ctx=ctx, param=param)
        return convert(ctx, value)

    param.process_value, param._empty_refused = process_value, True


class Table(RichTable):
    """rich's Table whose columns fold a value too wide for a narrow terminal onto more lines, instead of cutting
    it short with an ellipsis: the numbers are the answer (at 60 columns every LR read ``0.00…``: a review)."""

    def add_column(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("overflow", "fold")
        super().add_column(*args, **kwargs)


def reflowed(text: str | None) -> str | None:
    """A command's docstring with each paragraph on one line. typer (0.29) keeps a docstring's line breaks, so a
    terminal narrower than the source's lines (80 columns) showed every help as ragged half-lines (``--fit, whose
    group`` alone on one, and the command list's descriptions broken mid-sentence); rich wraps the joined text to
    the terminal instead. A paragraph opening with ``\\b`` keeps its lines, as click's help does."""
    if not text:
        return text
    return "\n\n".join(p if p.startswith("\b") else " ".join(line.strip() for line in p.splitlines())
                       for p in inspect.cleandoc(text).split("\n\n"))


class Command(TyperCommand):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help, self.short_help = reflowed(self.help), reflowed(self.short_help)

    def get_params(self, ctx: Any) -> list[Any]:
        return _hide_flag_types(super().get_params(ctx))


class Group(TyperGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help, self.short_help = reflowed(self.help), reflowed(self.short_help)

    def get_params(self, ctx: Any) -> list[Any]:
        return _hide_flag_types(super().get_params(ctx))


class RootGroup(Group):
    """The ``abcscale`` group: usage errors, bad values raised by the use cases and file errors all end
    as ``error: ...`` on one line with exit code 2, like the commands' own checks (never a panel or a
    traceback)."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, windows_expand_args: bool = True, **extra: Any) -> Any:
        global _json_printed, _json_out
        code, _json_printed = 0, False
        _said.clear()
        _gate.clear()
        _sigterm[0] = False  # an earlier in-process command's SIGTERM is not this one's (a review)
        asked = _asked_json(args)
        if asked:
            _json_out, sys.stdout = sys.stdout, sys.stderr
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False,
                                windows_expand_args=windows_expand_args, **extra) or 0
        except typer.TyperException as exc:  # typer's usage errors (typer >= 0.29 vendors click)
            code = _usage_error(exc)
        except typer.Abort:
            err_console.print("aborted")
            code = 1
        except ValidationError as exc:
            code = _one_line(validation_message(exc))
        except ValueError as exc:
            code = _one_line(python_limit(exc, file_read(exc)))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
            code = _one_line(str(exc))
        except RecursionError as exc:  # a parser's, on a document nested thousands deep (a command's own catch
            # names its flag; this is the rest: `check deep.yaml`, `tune --constants deep.json`)
            where = file_read(exc)
            code = _one_line(f"{where}: {TOO_DEEP}" if where else "an input nested too deeply to process (past "
                             "Python's recursion limit)")
        except MemoryError as exc:  # a file that never ends (`--fit /dev/zero`) read whole, under a memory limit
            code = _one_line(f"{file_read(exc) or 'an input'}: {OUT_OF_MEMORY}")
        except OSError as exc:  # a path no file can be read at: a symlink loop, a name too long (a traceback, exit 1,
            # which `check` means as "off the rule": a review)
            code = _one_line(f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc))
        finally:
            if asked and _json_out is not None:
                sys.stdout, _json_out = _json_out, None
        if code == 130 and not _said:  # Ctrl-C where the command has no words of its own (typer's exit 130 said
            # nothing, and with --json stdout stayed empty: a CI step's parser read nothing, as interrupted() says)
            _said.append("interrupted")
            err_console.print("interrupted", highlight=False)
        if isinstance(code, int) and code >= 1 and _said and not _json_printed and asked:  # 1: serve, demo (port taken)
            gate = _gate if code == 1 else {}  # a gate's failure: its `failed` too, as a report's
            emit_json({"ok": False, "exit_code": code, **gate, "errors": list(_said)})
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


def _asked_json(args: Sequence[str] | None) -> bool:
    """Whether ``--json`` is among the command line's options (before a ``--``)."""
    words = list(sys.argv[1:] if args is None else args)
    return "--json" in (words[:words.index("--")] if "--" in words else words)


def interrupted(message: str) -> NoReturn:
    """Ctrl-C: ``message`` (what was kept, how to go on) on stderr, and exit 130; with ``--json`` stdout gets the
    error object too (``{"ok": false, "exit_code": 130, "errors": [message]}``), as for any other failure: it was
    empty, a CI step's parser read nothing (a review). Stopped by SIGTERM (:func:`sigterm_stops`): said so, exit
    143."""
    if _sigterm[0]:
        message = f"SIGTERM: {message}"
    _said.append(" ".join(message.split()))
    err_console.print(escape(message), highlight=False, soft_wrap=True)
    raise typer.Exit(143 if _sigterm[0] else 130)


#: whether SIGTERM stopped the command (:func:`sigterm_stops`)
_sigterm = [False]


@contextlib.contextmanager
def sigterm_stops() -> Iterator[None]:
    """Inside, SIGTERM (a CI job cancelled, ``timeout``, ``kill``) stops a sweep or a search as Ctrl-C does: what
    was kept is said with how to go on, and the exit status is 143 (128 + 15), as the signal's own. It ended the
    process in silence, ``--json`` printing nothing (a review, session 83). A second SIGTERM ends it at once. Signals
    reach the main thread only: elsewhere nothing changes."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        _sigterm[0] = True
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        # through Ctrl-C's own handler: a sweep's remembers an interrupt a garbage-collection callback swallows
        if callable(ctrl_c := signal.getsignal(signal.SIGINT)):
            ctrl_c(signal.SIGINT, frame)
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:  # whether it fired (SIG_DFL then) or not: the process's own handler back (a notebook's, an app's)
        signal.signal(signal.SIGTERM, before)


def _one_line(message: str, code: int = 2) -> int:
    _said.append(" ".join(message.split()))
    text = escape(" ".join(message.split()))
    err_console.print(f"[bold red]error:[/] {text}", highlight=False, soft_wrap=True)
    return code


def _usage_error(exc: typer.TyperException) -> int:
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":  # bare `abcscale` / `abcscale theory`: typer printed the help
        return getattr(exc, "exit_code", 2)
    message = exc.format_message().replace("Value error, ", "")
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    if ctx is not None and message.startswith("No such command '") and (nested := _nested(ctx, message)):
        hint = f"; it is '{ctx.command_path} {nested}'"  # `abcscale convert`: theory's
    return _one_line(message.rstrip(".") + hint, getattr(exc, "exit_code", 2))


def _nested(ctx: Any, message: str) -> str | None:
    """The sub-group path of a command named at the wrong level (``convert`` -> ``theory convert``)."""
    name = message.removeprefix("No such command '").split("'", 1)[0]
    commands = getattr(ctx.command, "commands", {})
    return next((f"{group} {name}" for group, sub in commands.items()
                 if name in getattr(sub, "commands", {})), None)


#: a service's answers a retry may pass: a request that timed out at the service or a proxy, a rate limit
RETRYABLE = frozenset({408, 429})


def service_url(url: str | None) -> str | None:
    """``--service``'s URL checked before anything is asked: an empty one (an unset variable: the check passed
    against theory alone, exit 0, a CI review) and one no request can use (no http/https scheme, no host: it was
    exit 3, "unreachable", which a retry loop retries) are bad input, exit 2."""
    if url is None:
        return None
    from urllib.parse import urlsplit

    if not url.strip():
        fail("--service: empty (an unset variable?); give the service's URL, e.g. http://127.0.0.1:8000")
    try:  # a port that is no number or out of range, an unclosed [IPv6 literal: a traceback (httpx's InvalidURL,
        # exit 1) or "unreachable" (exit 3, which a retry loop retries), never a URL a request could use
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 (parsed on access)
    except ValueError as exc:
        fail(f"--service: not a URL: {exc}, got {url!r}")
    if any(c.isspace() or not c.isprintable() for c in parts.netloc):
        fail(f"--service: the host part holds a space or a control character, got {url!r}")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        fail(f"--service: expected an http:// or https:// URL with a host, e.g. http://127.0.0.1:8000, got {url!r}")
    if parts.query or parts.fragment:
        fail(f"--service: the service's base URL takes no query or fragment, got {url!r}")
    return url.strip()


def service_token(ctx: typer.Context, token: str | None, envvars: Sequence[str], name: str = "token") -> str | None:
    """``--token`` as it can go in an ``Authorization: Bearer`` header, checked before anything is asked.

    Surrounding whitespace is stripped: a secret file's or a pasted CI secret's trailing newline made httpx refuse
    the header, and its error, which quotes the header, printed the token on stderr and in --json, as exit 3 (a
    review). One of only whitespace is no token, as an empty one. A control character or non-ASCII inside (no
    HTTP client can send it, no service can hold it) is bad input, exit 2, naming the flag or the variable it came
    from (``envvars``, in the order the option reads them), never the token."""
    import os

    from abcscale.service.config import token_problem  # the service's own rule for its tokens

    if token is None:
        return None
    token = token.strip()
    if (why := token_problem(token)) is not None:
        source = f"--{name}" if on_command_line(ctx, name) else next(
            (v for v in envvars if os.environ.get(v)), f"--{name}")
        fail(f"{source}: {why}")
    return token or None


def redact(text: str, secret: str | None) -> str:
    """``text`` without ``secret`` (a token a driver's or client's error may quote): each occurrence as ***."""
    return text.replace(secret, "***") if secret else text


def service_deadline(default_s: float) -> float:
    """The whole-exchange deadline for a ``--service`` request: ``default_s``, or ``ABCSCALE_SERVICE_DEADLINE``
    (seconds) where set."""
    import math
    import os

    text = os.environ.get("ABCSCALE_SERVICE_DEADLINE", "").strip()
    if not text:
        return default_s
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        fail(f"ABCSCALE_SERVICE_DEADLINE: expected a positive number of seconds, got {text!r}")
    return value


def post_service(url: str, path: str, deadline_s: float, **kwargs: Any) -> Any:
    """``httpx.post(url + path, **kwargs)`` with a deadline for the whole exchange, and a redirect said as one.

    httpx's timeouts bound each read, so a service (or proxy) that sends a byte now and then never times out: a
    CI step waited forever (a review). The request runs on a daemon thread, abandoned at the deadline (exit 3:
    nothing was judged, a retry may pass). A redirect is not followed (a POST's body would be dropped or resent
    to another host); it is bad input naming where it points, exit 2. Errors reaching the service re-raise as
    httpx's, for the caller's message."""
    import threading

    import httpx

    box: dict[str, Any] = {}

    def ask() -> None:
        try:
            box["resp"] = httpx.post(url.rstrip("/") + path, **kwargs)
        except BaseException as exc:  # noqa: BLE001 (handed to the main thread, which says it)
            box["exc"] = exc

    deadline_s = service_deadline(deadline_s)
    worker = threading.Thread(target=ask, name="abcscale-service", daemon=True)
    worker.start()
    worker.join(deadline_s)
    if worker.is_alive():
        fail(f"--service: {url} sent no whole answer within {deadline_s:g} s (a stalled or overloaded service or "
             "proxy); nothing was judged, a retry may pass", SERVICE_DOWN)
    if "exc" in box:
        raise box["exc"]
    resp = box["resp"]
    if resp.is_redirect:
        where = resp.headers.get("location", "")
        fail(f"--service: {url} answered {resp.status_code}, a redirect to {where or '(no location)'}; give the "
             "service's own URL as --service (redirects are not followed: a POST would not reach it as sent)")
    return resp


def service_detail(resp: Any) -> str:
    """The service's message: FastAPI's ``detail``, a string or a list of field errors (loc + msg)."""
    try:
        detail = resp.json().get("detail")
    except (ValueError, AttributeError):
        return resp.text[:300] or resp.reason_phrase
    if isinstance(detail, list):  # FastAPI's field errors; a proxy's or another program's list said as it is
        return "; ".join(_field_error(e) for e in detail)
    return str(detail) if detail is not None else resp.text[:300] or resp.reason_phrase


def _field_error(e: Any) -> str:
    if not isinstance(e, dict):
        return str(e)
    loc = e.get("loc", ())
    where = ".".join(str(p) for p in loc) if isinstance(loc, list | tuple) else str(loc)
    return f"{where}: {e.get('msg')}" if where else str(e.get("msg"))
