"""``abcscale serve``: the REST service under uvicorn (imported only when the command runs)."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from abcscale.cli._common import console, emit_json, err_console, fail, validation_message

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
) -> None:
    """Run the REST API (OpenAPI docs at /docs) until Ctrl-C."""
    from pydantic import ValidationError
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from abcscale.service.app import create_app
    from abcscale.service.config import Settings

    try:
        settings = Settings() if db is None else Settings(database_url=db)
    except ValidationError as exc:
        fail(f"settings: {validation_message(exc)}")
    try:
        api = create_app(settings)
    except ArgumentError as exc:
        fail(f"--db: not a database URL ({exc})")
    except (SQLAlchemyError, OSError) as exc:
        fail(f"--db: cannot open {settings.resolved_database_url}: {exc}")
    if settings.api_token is None and host not in LOCAL:
        err_console.print(f"[yellow]warning:[/] serving on {host} without ABCSCALE_API_TOKEN: anyone who can "
                          "reach this port can store and delete fits", highlight=False)
    sock = bind(host, port)
    info = address_info(sock, host) | {"database": _redacted(settings.resolved_database_url),
                                       "auth": settings.api_token is not None, "log_level": log_level}
    if as_json:
        emit_json(info, indent=None)  # a client reads the first line to learn the port (useful with --port 0)
    else:
        console.print(f"serving on {info['url']} (docs at {info['docs']}); Ctrl-C to stop", highlight=False)
    run(api, sock, log_level)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free one); a taken port ends the command (exit 1)."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError as exc:
        fail(f"--port: cannot listen on {host}:{port} ({exc.strerror or exc}); pick another with --port N", code=1)
    sock.listen(128)
    return sock


def address_info(sock: socket.socket, host: str) -> dict[str, Any]:
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return {"host": host, "port": port, "url": f"http://{shown}:{port}", "docs": f"http://{shown}:{port}/docs"}


def run(api: FastAPI, sock: socket.socket, log_level: str) -> None:
    import uvicorn

    uvicorn.Server(uvicorn.Config(api, log_level=log_level.lower())).run(sockets=[sock])


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
