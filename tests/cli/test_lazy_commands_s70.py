"""A command line that names a command imports that command's module alone (abcscale.cli.app_for): every module
took 0.65 s, the sweep spec's and the fits' imports among it, before `abcscale check cfg.yaml` ran a line of its
own. The help, the "did you mean" of a misspelt command and ``from abcscale.cli import app`` still see them all."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from typer.testing import CliRunner

#: every command and sub-app, in the help's order (written out: the test does not read abcscale.cli.COMMANDS)
EVERY = ("recommend", "sweep", "tune", "coord-check", "fit", "predict", "check", "serve", "demo", "theory", "mup")
#: what a command of the theory, or the server's, never needs: the sweep spec (JAX's settings), the fits' use cases
HEAVY = ("abcscale.runner.spec", "abcscale.usecases", "abcscale.cli.fit", "abcscale.cli.runner")


#: the program's entry point (``abcscale``'s console script), with its modules printed by an atexit handler, as
#: the program ends (its hard exit runs them): the last line of stderr
_ENTRY = ("import atexit, json, sys\n"
          "atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.__stderr__, flush=True))\n"
          "sys.argv = ['abcscale', *sys.argv[1:]]\n"
          "from abcscale._entry import main\n"
          "main()\n")


def _modules(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    run = subprocess.run([sys.executable, "-c", _ENTRY, *args], capture_output=True, text=True, timeout=120)
    return run, set(json.loads(run.stderr.splitlines()[-1]))


def test_a_named_command_imports_its_own_module_alone():
    # one row of the table: all of it was 0.8 CPU-s more of solves (2026-12-07), and the same modules
    table, loaded = _modules("theory", "table", "-p", "mup", "-o", "adam")
    assert table.returncode == 0 and "mup" in table.stdout, table.stderr[-2000:]
    assert "abcscale.cli.theory" in loaded
    assert not loaded & {*HEAVY, "abcscale.cli.check", "abcscale.cli.serve"}, sorted(loaded & {*HEAVY})
    served, loaded = _modules("serve", "--help")
    assert served.returncode == 0 and "--port" in served.stdout, served.stderr[-2000:]
    assert "abcscale.cli.serve" in loaded and not loaded & {*HEAVY, "abcscale.cli.theory"}, sorted(loaded)
    every, loaded = _modules("--help")  # the help lists every command: all their modules, as before
    assert every.returncode == 0 and {"abcscale.cli.runner", "abcscale.cli.fit"} <= loaded, every.stderr[-2000:]


def _in_process(*args: str):
    """The program for ``args`` as main(argv) builds it (app_for), run in this process: the messages are the
    program's (a subprocess a case cost 0.5-1 s for the same text)."""
    from abcscale.cli import app_for

    return CliRunner().invoke(app_for(list(args)), list(args), prog_name="abcscale")


def test_the_help_still_lists_every_command_in_its_order():
    out = _in_process("--help")
    assert out.exit_code == 0, out.output
    panel = out.stdout.split("─ Commands ─", 1)[1].splitlines()
    listed = [m.group(1) for line in panel if (m := re.match(r"│ (\S+) ", line))]
    assert listed == list(EVERY), out.stdout


def test_an_unknown_command_is_refused_as_before():
    misspelt = _in_process("chek", "cfg.yaml")
    assert misspelt.exit_code == 2 and misspelt.stdout == ""
    assert misspelt.stderr.strip() == "error: No such command 'chek'. Did you mean 'check'? (see 'abcscale --help')"
    nested = _in_process("convert")  # theory's command, named at the top: where it is
    assert nested.exit_code == 2
    assert nested.stderr.strip() == "error: No such command 'convert'; it is 'abcscale theory convert'"
    option_first = _in_process("--version", "check")  # an option before the command: the whole program, as before
    assert option_first.exit_code == 0 and option_first.stdout.startswith("abcscale "), option_first.output


def test_the_app_has_every_command_and_a_command_reads_the_same_alone():
    import typer

    from abcscale.cli import app, app_for

    group = typer.main.get_command(app)
    assert list(group.commands) == list(EVERY)  # type: ignore[attr-defined]
    whole = CliRunner().invoke(app, ["check", "--help"], prog_name="abcscale")
    alone = CliRunner().invoke(app_for(["check", "--help"]), ["check", "--help"], prog_name="abcscale")
    assert whole.exit_code == alone.exit_code == 0 and "--strict" in whole.output
    assert alone.output == whole.output
    assert list(typer.main.get_command(app_for(["check"])).commands) == ["check"]  # type: ignore[attr-defined]
