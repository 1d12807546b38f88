"""``abcscale serve``: the REST service under uvicorn (imported only when the command runs)."""

from __future__ import annotations

import socket
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
    from abcscale.service.app import create_app, exposure_warning
    from abcscale.service.config import Settings

    if db is not None and not db.strip():
        fail("--db: empty; give a SQLAlchemy URL (sqlite:///PATH, postgresql://...) or leave it out")
    try:
        settings = Settings() if db is None else Settings(database_url=db)
    except ValidationError as exc:  # from the environment: each field by its variable's name
        fail(schema_errors.validation_message(exc, {"database_url": "--db"} if db is not None else {},
                                              unnamed=lambda field: f"ABCSCALE_{field.upper()}"))
    try:
        api = create_app(settings)
    except ArgumentError as exc:
        fail(f"--db: not a database URL ({exc})")
    except (SQLAlchemyError, OSError) as exc:
        url = settings.resolved_database_url
        fail(f"--db: cannot open {_redacted(url)}: {_unsecret(str(exc), url)}")
    sock = bind(host, port)
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
            if self.cycle is None or not self.cycle.response_started:
                self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\n"
                                     b"content-length: 20\r\nconnection: close\r\n\r\nrequest read timeout")
            self.transport.close()  # connection_lost tells a running app: its receive() gets http.disconnect

    return GuardedHttpTools


def _unsecret(text: str, url: str) -> str:
    """``text`` (a driver's error, which may quote the URL) with the URL's password masked."""
    from sqlalchemy.engine import make_url

    password = make_url(url).password
    return text.replace(str(password), "***") if password else text


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
