"""The ``abcscale`` command: typer sub-apps and commands, assembled here.

Each command parses its flags, builds the request model of :mod:`abcscale.schemas`, calls one use case
(:mod:`abcscale.usecases`, or the runner for training) and prints the answer: a rich table on stdout, JSON with
``--json``, progress on stderr. Heavy imports (JAX, pandas, the service) happen inside the commands, so
``abcscale --help`` and ``abcscale theory table`` start fast. Every error is one ``error: ...`` line on
stderr with exit code 2 (``_common.RootGroup``).
"""

from __future__ import annotations

from functools import partial
from typing import Annotated

import typer

from abcscale.cli import check, demo, fit, mup, recommend, runner, serve, theory, tune
from abcscale.cli._common import Command, RootGroup

app = typer.Typer(
    cls=RootGroup,
    name="abcscale",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from abcscale.usecases import version

        typer.echo(f"abcscale {version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="print the version and exit", callback=_version,
                                          is_eager=True)] = False,
) -> None:
    """Hyperparameter transfer across width: theory, sweeps, fits and a REST service."""


command = partial(app.command, cls=Command)
app.add_typer(theory.app, name="theory")
app.add_typer(mup.app, name="mup")
command("recommend")(recommend.recommend)
command("sweep")(runner.sweep)
command("tune")(tune.tune)
command("coord-check")(runner.coord_check)
command("fit")(fit.fit)
command("check")(check.check)
command("serve")(serve.serve)
command("demo")(demo.demo)


def main(argv: list[str] | None = None) -> None:
    """Entry point (``abcscale``, ``python -m abcscale``)."""
    app(args=argv, prog_name="abcscale")


__all__ = ["app", "main"]
