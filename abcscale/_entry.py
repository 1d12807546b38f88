"""The ``abcscale`` program's entry point: the CLI's imports (typer, rich, the command's module) take a second or
two, and a Ctrl-C meanwhile printed a KeyboardInterrupt traceback and died of the signal, where the same Ctrl-C a
moment later exits 130 (a review). Nothing here but that."""

from __future__ import annotations

import os
import sys


def main() -> None:
    try:
        from abcscale.cli import app_for
        from abcscale.cli import main as cli_main

        app_for(sys.argv[1:])  # the command's own modules (abcscale.cli imports them as the command line names one)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.stderr.flush()
        os._exit(130)
    cli_main()
