"""``abcscale serve``: the REST service under uvicorn (imported only when the command runs)."""

from __future__ import annotations

from typing import Annotated

import typer

from abcscale.cli._common import err_console, fail

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def register(app: typer.Typer, theory_app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        host: Annotated[str, typer.Option(help="address to bind (0.0.0.0 exposes it to the network)")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port", min=0, max=65535)] = 8000,
        db: Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL (default: ABCSCALE_DATABASE_URL, "
                                                            "else sqlite under ABCSCALE_DATA_DIR)")] = None,
        log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level")] = "info",
    ) -> None:
        """Run the REST API (OpenAPI docs at /docs)."""
        if log_level.lower() not in LOG_LEVELS:
            fail(f"--log-level: must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
        import uvicorn
        from pydantic import ValidationError
        from sqlalchemy.exc import ArgumentError, SQLAlchemyError

        from abcscale.cli._common import validation_message
        from abcscale.service.app import create_app
        from abcscale.service.config import Settings

        try:
            settings = Settings(**({"database_url": db} if db is not None else {}))
        except ValidationError as exc:
            fail(f"settings: {validation_message(exc)}")
        try:
            api = create_app(settings)
        except ArgumentError as exc:
            fail(f"--db: not a database URL ({exc})")
        except (SQLAlchemyError, OSError) as exc:
            fail(f"--db: cannot open {settings.resolved_database_url}: {exc}")
        if settings.api_token is None and host not in ("127.0.0.1", "localhost", "::1"):
            err_console.print(f"[yellow]warning:[/] serving on {host} without ABCSCALE_API_TOKEN: anyone who can "
                              "reach this port can store and delete fits", highlight=False)
        uvicorn.run(api, host=host, port=port, log_level=log_level.lower())
