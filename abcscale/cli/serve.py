"""``abcscale serve``: the REST service under uvicorn (imported only when the command runs)."""

from __future__ import annotations

import errno
import logging
import os
import socket
import sys
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from abcscale.cli._common import console, emit_json, err_console, fail

if TYPE_CHECKING:
    from fastapi import FastAPI

LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]
LOCAL = ("127.0.0.1", "localhost", "::1")


def serve(
    host: Annotated[str, typer.Option(help="address to bind (0.0.0.0 exposes it to the network)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0: any free one)", min=0, max=65535)] = 8000,
    db: Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL", show_default="ABCSCALE_DATABASE_URL, else "
                                           "sqlite under ABCSCALE_DATA_DIR")] = None,
    log_level: Annotated[LogLevel, typer.Option("--log-level", help="uvicorn log level", case_sensitive=False)] = (
        "info"),
    as_json: Annotated[bool, typer.Option("--json", help="print the bound address and settings as JSON on "
                                          "start (one line)")] = False,
    header_timeout: Annotated[float, typer.Option(
        "--header-timeout", min=0.1, max=3600, envvar="ABCSCALE_HEADER_TIMEOUT_S",
        help="seconds a client has to send a request's headers (from connecting, or from its first byte on a "
             "kept-alive connection); then 408 and closed")] = 10.0,
    body_timeout: Annotated[float, typer.Option(
        "--body-timeout", min=0.1, max=3600, envvar="ABCSCALE_BODY_TIMEOUT_S",
        help="seconds a client has to send a request's whole body once its headers are in; then 408 and "
             "closed")] = 60.0,
) -> None:
    """Run the REST API (OpenAPI docs at /docs) until Ctrl-C."""
    from pydantic import ValidationError
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from abcscale.schemas import errors as schema_errors
    from abcscale.service.config import Settings, StartupRefused

    if db is not None and not db.strip():
        fail("--db: empty; give a SQLAlchemy URL (sqlite:///PATH, postgresql://...) or leave it out")
    try:
        settings = Settings() if db is None else Settings(database_url=db)
    except ValidationError as exc:  # from the environment: each field by its variable's name
        fail(schema_errors.validation_message(exc, {"database_url": "--db"} if db is not None else {},
                                              unnamed=lambda field: f"ABCSCALE_{field.upper()}"))
    check_host(host)  # a host that does not resolve is said before the database is opened (or made)
    # the setting that named the database, as the user gave it: a data folder that is a file is not --db's fault
    source = "--db" if db is not None else "ABCSCALE_DATABASE_URL" if settings.database_url else "ABCSCALE_DATA_DIR"
    url = settings.resolved_database_url
    if _in_memory(url):
        fail(f"{source}: {_redacted(url)} is an in-memory database: every fit would vanish when the server stops "
             "(and concurrent writes fail on it); give a file, sqlite:///PATH, or leave it out")
    # the port before the database: a taken one made (or migrated) the database, then exited 1 (a README review);
    # held listening meanwhile, a client that connects waits in the backlog until the service starts, as demo's
    sock = bind(host, port)
    _log_to_stderr(log_level)  # before the app: a migration at start says what it did
    # the app and the database layer imported once the settings have passed (a refused token or URL was said after
    # about a second of imports: a review of the suite's server starts, session 69)
    from abcscale.service.app import create_app, exposure_warning
    from abcscale.service.db import check_not_foreign

    try:
        check_not_foreign(url)
        api = create_app(settings)
    except StartupRefused as exc:
        fail(f"{exc.setting or source}: {_unsecret(str(exc), url)}")
    except ArgumentError as exc:
        fail(f"{source}: not a database URL ({exc})")
    except ImportError as exc:  # the dialect is SQLAlchemy's, its driver is not installed
        fail(f"{source}: no driver for {_drivername(url)} ({exc}); install it, or use sqlite:///PATH or "
             "postgresql+psycopg://... (pip install 'abcscale[postgres]')")
    except (SQLAlchemyError, OSError) as exc:
        fail(f"{source}: cannot open {_redacted(url)}: {_unsecret(str(exc), url)}{_sqlite_hint(url, str(exc))}")
    except Exception as exc:  # alembic's CommandError, say: one line, not a 100-line traceback
        if type(exc).__module__.split(".")[0] != "alembic":
            raise
        fail(f"{source}: cannot migrate {_redacted(url)}: {_unsecret(str(exc), url)}")
    if (warning := exposure_warning(host, settings)) is not None:  # once it really listens there
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    info = address_info(sock, host) | {"database": _redacted(settings.resolved_database_url),
                                       "auth": settings.api_token is not None, "log_level": log_level,
                                       "header_timeout_s": header_timeout, "body_timeout_s": body_timeout}
    if as_json:
        emit_json(info, indent=None)  # a client reads the first line to learn the port (useful with --port 0)
    else:
        console.print(f"serving on {info['url']} (docs at {info['docs']}); Ctrl-C to stop", highlight=False)
    run(api, sock, log_level, header_timeout, body_timeout)


def check_host(host: str) -> tuple[Any, ...]:
    """The first address ``host`` resolves to, for a stream socket; a name that does not resolve is a usage
    error naming --host (exit 2), checked before anything runs (``abcscale demo`` serves last)."""
    try:
        return socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)[0]
    except (OSError, UnicodeError) as exc:
        fail(f"--host: cannot resolve {host!r} ({getattr(exc, 'strerror', None) or exc})")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free one); a taken port ends the command (exit 1).
    ``abcscale demo`` takes its port before the sweep: held listening (a bound socket that does not listen can
    be bound again by another process that sets SO_REUSEADDR), a client that connects meanwhile waits in the
    backlog until the service starts."""
    family, kind, proto, _, addr = check_host(host)
    addr = (addr[0], port, *addr[2:])
    try:
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError as exc:
        if exc.errno == errno.EADDRNOTAVAIL:  # no interface of this machine has that address: the host is wrong
            fail(f"--host: cannot listen on {host} ({exc.strerror or exc}); give an address of this machine "
                 "(127.0.0.1, 0.0.0.0 for all)")
        fail(f"--port: cannot listen on {host}:{port} ({exc.strerror or exc}); pick another with --port N", code=1)
    return sock


def address_info(sock: socket.socket, host: str) -> dict[str, Any]:
    port = sock.getsockname()[1]
    return {"host": host, "port": port, "url": http_url(host, port), "docs": f"{http_url(host, port)}/docs"}


def http_url(host: str, port: int) -> str:
    """``http://HOST:PORT``, an IPv6 host in brackets (``http://[::1]:8000``: unbracketed, curl refuses it)."""
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def run(api: FastAPI, sock: socket.socket, log_level: str, header_timeout: float = 10.0,
        body_timeout: float = 60.0) -> None:
    import uvicorn

    config = uvicorn.Config(api, log_level=log_level.lower(), http=guarded_protocol(header_timeout, body_timeout))
    uvicorn.Server(config).run(sockets=[sock])


def guarded_protocol(header_timeout: float, body_timeout: float) -> type:
    """uvicorn's httptools protocol with read deadlines: a request's headers must be in within
    ``header_timeout`` seconds and its body within ``body_timeout`` more, or the client gets a 408 and the
    connection is closed.

    uvicorn bounds only the idle time between kept-alive requests (``timeout_keep_alive``), so a client that
    connects and sends nothing, or half a header line, or a body one byte a minute, holds its socket and
    buffers forever (a slowloris). The deadlines are timers on the event loop: no thread, no polling.
    """
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedHttpTools(HttpToolsProtocol):
        _deadline: Any = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm(header_timeout)  # a connection that never sends a byte is a request that never ends

        def data_received(self, data: bytes) -> None:
            if self._deadline is None and (self.cycle is None or self.cycle.response_complete):
                self._arm(header_timeout)  # the first byte of the next request on a kept-alive connection
            super().data_received(data)

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self._arm(body_timeout)

        def on_message_complete(self) -> None:
            self._disarm()  # the whole request is in: what follows is the app's time, not the client's
            super().on_message_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self, seconds: float) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(seconds, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            # no response of this request begun: none yet, or the last one's is done and this is the next request on
            # a kept-alive connection, whose cycle starts only with its headers (it was closed with no 408, a review)
            if self.cycle is None or not self.cycle.response_started or self.cycle.response_complete:
                self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\n"
                                     b"content-length: 20\r\nconnection: close\r\n\r\nrequest read timeout")
            self.transport.close()  # connection_lost tells a running app: its receive() gets http.disconnect

    return GuardedHttpTools


def _unsecret(text: str, url: str) -> str:
    """``text`` (a driver's error, which may quote the URL) with the URL's password masked where it stands as one:
    in the URL (``user:***@``, as typed or percent-encoded), as a DSN's ``password=``, as a word of its own (four
    characters or more), or anywhere (eight or more). Every occurrence of its text was replaced before, so the
    password ``p`` made "***syco***g.O***erationalError ... ***ort 1" of the driver's message (a review)."""
    import re
    from urllib.parse import quote, unquote, urlsplit

    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if not parsed.password:
        return text
    password = str(parsed.password)
    redacted = parsed.render_as_string(hide_password=True)
    for shown in sorted({url, parsed.render_as_string(hide_password=False)}, key=len, reverse=True):
        text = text.replace(shown, redacted)
    try:
        typed = urlsplit(url).password  # as the URL spells it (percent-encoded, maybe)
    except ValueError:
        typed = None
    forms = {password, quote(password, safe=""), unquote(password), *([typed] if typed else [])}
    for form in sorted(forms, key=len, reverse=True):
        pw = re.escape(form)
        text = re.sub(rf":{pw}@", ":***@", text)  # user:password@host
        text = re.sub(rf"(password\s*=\s*)(['\"]?){pw}\2(?![^\s'\"])", r"\1\2***\2", text, flags=re.IGNORECASE)
        if len(form) >= 8:  # anywhere: so long a text is the password wherever it stands
            text = text.replace(form, "***")
        elif len(form) >= 4:  # a word of its own: a shorter one cannot be told from the message's own words
            text = re.sub(rf"(?<![\w%]){pw}(?![\w%])", "***", text)
    return text


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _drivername(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).drivername  # the scheme alone: never the URL, which may hold a password


def _in_memory(url: str) -> bool:
    """Whether ``url`` is an in-memory SQLite database (``sqlite://``, ``:memory:``, ``mode=memory``)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return False  # said as not a URL where the engine is made
    database = parsed.database or ""
    return parsed.get_backend_name() == "sqlite" and (
        database in ("", ":memory:") or "mode=memory" in database or parsed.query.get("mode") == "memory")


def _sqlite_hint(url: str, message: str) -> str:
    """Why SQLite may fail in a folder where the file itself is writable: its WAL writes two files beside it."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or not (
            "readonly" in message or "unable to open" in message):
        return ""
    folder = os.path.dirname(os.path.abspath(os.path.expanduser(parsed.database)))
    return (f"; SQLite's WAL needs the folder {folder} writable too, not only the file (it keeps its -wal and "
            "-shm files there)")


def _log_to_stderr(level: str) -> None:
    """The service's own log lines (a migration, a 503's reason) on stderr, as uvicorn's look, at ``level``."""
    from uvicorn.config import LOG_LEVELS
    from uvicorn.logging import DefaultFormatter

    log = logging.getLogger("abcscale.service")
    log.setLevel(LOG_LEVELS[level.lower()])
    if not any(isinstance(h, _Stderr) for h in log.handlers):  # once, however often a process serves (tests)
        handler = _Stderr()
        handler.setFormatter(DefaultFormatter("%(levelprefix)s %(message)s"))
        log.addHandler(handler)


class _Stderr(logging.StreamHandler):
    """A handler on whatever ``sys.stderr`` is when a line is written (a test's capture, since closed, is not)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass
