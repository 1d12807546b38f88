"""The ``abcscale`` command. Each sub-module registers its commands; heavy imports stay inside them."""

from __future__ import annotations

import sys

import typer
from pydantic import ValidationError

from abcscale.cli._common import err_console, validation_message

app = typer.Typer(
    name="abcscale",
    help="Hyperparameter transfer across width: theory, sweeps, fits and a REST service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
theory_app = typer.Typer(help="The abc-parameterization algebra (tables, conversion).", no_args_is_help=True)
app.add_typer(theory_app, name="theory")


def _register() -> None:
    import importlib

    for name in ("theory", "runner", "fit", "serve", "check", "demo"):
        try:
            module = importlib.import_module(f"abcscale.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"abcscale.cli.{name}":
                continue  # that part of the product is not built yet
            raise
        module.register(app, theory_app)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point. Typer reports usage errors itself (exit 2); bad values raised deeper exit 2 too."""
    try:
        app(args=argv, prog_name="abcscale")
    except ValidationError as exc:
        err_console.print(f"[bold red]error:[/] {validation_message(exc)}", highlight=False)
        sys.exit(2)
    except (ValueError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
