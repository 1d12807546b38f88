"""The ``abcscale`` command as a typer user expects it: --version, one-line usage errors (exit 2), --json on
every command the README lists, and defaults and choices in --help."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from abcscale.cli import app, main
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.usecases import version

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


@functools.cache
def help_of(name: str):
    """``abcscale NAME --help`` (``""``: the root's), rendered once for the tests that read it (the two README
    tests rendered the same dozen pages each, 0.8 CPU-s apiece, 2026-12-07)."""
    return run(*name.split(), "--help")


def readme_commands() -> list[str]:
    """The commands of the README's command table, e.g. ``theory convert``, ``sweep``."""
    text = (ROOT / "README.md").read_text()
    table = text.split("## Commands", 1)[1].split("\n## ", 1)[0]
    names = re.findall(r"^\| `abcscale ((?:theory |mup )?[a-z-]+)", table, flags=re.M)
    return list(dict.fromkeys(names))


def test_version():
    res = run("--version")
    assert res.exit_code == 0 and res.stdout.strip() == f"abcscale {version()}"


@pytest.mark.parametrize(("argv", "needle"), [
    (["nosuchcommand"], "No such command"),
    (["recommend", "--nosuchflag"], "--nosuchflag"),
    (["recommend", "-n", "64", "-p", "mup", "-o", "shampoo"], "--optimizer"),  # a choice
    (["theory", "convert", "--from", "mup", "--to", "sp", "-n", "8"], "--optimizer"),  # a missing option
    (["sweep", "--model", "cnn"], "--model"),
    (["sweep", "--steps", "many"], "--steps"),
    (["serve", "--port", "70000"], "--port"),
    (["check", "--tolerance", "0.5", "examples/check-config.yaml"], "--tolerance"),
])
def test_usage_errors_are_one_line_and_exit_2(argv, needle, capsys, monkeypatch):
    # the command line as the program reads it (main(argv)), in this process: a process each cost 0.4 CPU-s of
    # imports (2026-12-07); tests/cli/test_program_exit.py runs the program itself
    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    proc = SimpleNamespace(returncode=exc.value.code, stderr=capsys.readouterr().err)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], proc.stderr
    assert "╭" not in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(("argv", "named"), [
    (["sweep", "--widths", "32,abc"], "--widths[1]: "),  # the second width
    (["sweep", "--coord-steps", "x"], "--coord-steps[0]: "),
    (["recommend", "-p", "mup", "-o", "adam", "-n", "4096", "--base-width", "256", "--base-lr", "3e-3",
      "--init-scale", "-1"], "--init-scale (embedding, hidden, readout): "),
    (["sweep", "--init-scale", "1,-1,1"], "--init-scale (hidden): "),
    (["sweep", "--gamma", "1,1,1;1,-1,1"], "--gamma[1] (hidden): "),
    (["sweep", "--epsilon", "-1"], "--epsilon: "),
])
def test_a_bad_item_inside_a_flag_names_the_flag_then_the_item(argv, named, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--out", str(tmp_path / "o")] if argv[0] == "sweep" else argv)
    err = " ".join(capsys.readouterr().err.split())
    assert exc.value.code == 2 and err.startswith(f"error: {named}"), err
    assert not (tmp_path / "o").exists()  # refused before anything ran


def test_every_readme_command_has_json():
    commands = readme_commands()
    assert {"theory table", "theory convert", "recommend", "sweep", "coord-check", "fit", "check", "serve",
            "demo"} <= set(commands)
    for name in commands:
        res = help_of(name)
        assert res.exit_code == 0 and "--json" in res.stdout, name


@pytest.fixture(scope="module")
def csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "sweep.csv"
    synthetic_sweep(group={"parameterization": "mup", "optimizer": "adam", "lr_mode": "per_layer"}, exponent=0.0,
                    lr_base=3e-3, seed=2).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("argv", [
    ["theory", "table", "-p", "mup", "--json"],
    ["theory", "convert", "-o", "adam", "--from", "mup", "--to", "sp", "-n", "1024", "--json"],
    ["recommend", "-p", "mup", "-o", "adam", "-n", "4096", "--base-width", "256", "--base-lr", "3e-3", "--json"],
    ["check", str(ROOT / "examples" / "check-config.yaml"), "--json"],
    ["fit", "CSV", "--n-boot", "50", "--json"],
])
def test_json_output_is_valid_json_and_nothing_else(argv, csv):
    res = run(*[str(csv) if a == "CSV" else a for a in argv])
    assert res.exit_code == 0, res.output
    assert isinstance(json.loads(res.stdout), dict | list)


def test_serve_prints_its_bound_address_as_json(tmp_path):
    env = {"ABCSCALE_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, "-m", "abcscale", "serve", "--port", "0", "--json"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        assert info["port"] > 0 and info["url"] == f"http://127.0.0.1:{info['port']}"
        import httpx

        assert httpx.get(info["url"] + "/healthz", timeout=30).json()["version"] == version()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_sweep_help_shows_defaults_and_choices():
    res = help_of("sweep")
    assert res.exit_code == 0
    text = " ".join(res.stdout.split())
    for shown in ("[default: sweep-out]", "<transformer|mlp|MODULE:FACTORY>", "(transformer)", "(200)", "(-12:-4:1)",
                  "<auto|vmap|single>", "<local|ray>"):
        assert shown in text, shown


def test_flags_show_no_type():
    for name in ("", "sweep", "fit"):
        out = help_of(name).stdout
        assert "<bool>" not in out and re.search(r"--help\s+Show this message", out), name


def readme_command_lines() -> list[str]:
    """Every ``abcscale ...`` command the README shows: code-block lines (continuations joined) and table cells."""
    text = (ROOT / "README.md").read_text().replace("\\\n", " ")
    blocks = "\n".join(re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.M | re.S))
    lines = re.findall(r"^\s*(?:\$ |- run: |- )?(abcscale [^\n#]*)", blocks, flags=re.M)
    cells = re.findall(r"`(abcscale [^`]+)`", text)
    return lines + cells


def test_every_flag_the_readme_shows_exists():
    helps: dict[str, str] = {}
    for line in readme_command_lines():
        words = line.replace("\\|", " ").split()
        name = " ".join(words[1:3]) if words[1] in ("theory", "mup") and len(words) > 2 else words[1]
        name = "" if name.startswith("-") else name  # a root option (--version)
        if name not in helps:
            res = help_of(name)
            assert res.exit_code == 0, line
            helps[name] = res.stdout
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])", line):
            # a whole option, not a part of one: `-p` is in `--parameterization`, `--batch` in `--batching`
            assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", helps[name]), f"{line!r}: {name} has no {flag}"
