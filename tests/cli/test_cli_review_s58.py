"""Session 58: a review of the CLI across commands. An answer cut short by a full disk exited 0 (or with a
traceback at once); a symlink loop or a name too long was a traceback, exit 1 (which `check` means as "off the
rule"); `fit --out` replaced a user's own fit.json, and on a full disk left the fit before it cut short."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from abcscale.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def fit_argv(tmp_path_factory) -> list[str]:
    """A fit of a small synthetic sweep (one group, 3 widths): these tests read where fit.json goes and what it
    holds, not its numbers. 30 bootstrap resamples, not 1,000; this table, not examples/tour-sweep.parquet (0.5
    CPU-s a fit there, 0.07 here; 9 fits, 2026-12-07)."""
    from abcscale.fitting.synthetic import synthetic_sweep

    table = tmp_path_factory.mktemp("s58") / "sweep.csv"
    synthetic_sweep((64, 128, 256), seeds=1, exponent=-0.5).to_csv(table, index=False)
    return ["fit", str(table), "-q", "--summary", "--n-boot", "30"]


def _words(res) -> str:
    return " ".join(res.output.split())


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
def test_an_answer_that_could_not_be_written_is_not_a_success():
    with open("/dev/full", "w") as full:
        res = subprocess.run([sys.executable, "-m", "abcscale", "theory", "table", "--json"], stdout=full,
                             stderr=subprocess.PIPE, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    assert "error: stdout: the output could not be written whole (No space left on device)" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_pipe_its_reader_left_still_ends_well():  # the broken pipe stays what it was: exit 0, no message
    res = subprocess.run(f"{sys.executable} -m abcscale theory table --json | head -c 10 > /dev/null; "
                         "exit ${PIPESTATUS[0]}", shell=True, executable="/bin/bash", capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0 and "error" not in res.stderr, res.stderr


@pytest.mark.parametrize("args", [["check", "{p}"], ["fit", "{p}"], ["recommend", "-n", "64", "--fit", "{p}"],
                                  ["check", "examples/check-config.yaml", "--map-file", "{p}"]])
def test_a_symlink_loop_is_bad_input(tmp_path, args):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    res = runner.invoke(app, [a.format(p=tmp_path / "a") for a in args])
    assert res.exit_code == 2 and "Too many levels of symbolic links" in _words(res), res.output


def test_a_name_too_long_is_bad_input(tmp_path):
    res = runner.invoke(app, ["fit", str(tmp_path / ("x" * 300 + ".csv"))])
    assert res.exit_code == 2 and "error:" in _words(res) and "Traceback" not in res.output, res.output


def test_fit_out_keeps_a_users_own_fit_json(tmp_path, fit_argv):
    mine = tmp_path / "fit.json"
    mine.write_text('{"mine": 1}')
    res = runner.invoke(app, [*fit_argv, "--out", str(tmp_path)])
    assert res.exit_code == 2 and "exists and is not a fit from `abcscale fit`" in _words(res), res.output
    assert mine.read_text() == '{"mine": 1}'
    mine.unlink()
    for _ in range(2):  # its own fit.json, from the run before, is replaced
        assert runner.invoke(app, [*fit_argv, "--out", str(tmp_path)]).exit_code == 0
    assert json.loads(mine.read_text())["groups"] and sorted(p.name for p in tmp_path.iterdir()) == ["fit.json"]


def test_fit_out_that_cannot_be_written_leaves_the_fit_before(tmp_path, fit_argv, monkeypatch):
    runner.invoke(app, [*fit_argv, "--out", str(tmp_path)])
    before = (tmp_path / "fit.json").read_text()
    real = Path.write_text

    def full(self, *a, **k):
        if self.name.endswith(".tmp"):
            real(self, "{ cut", **k)
            raise OSError(28, "No space left on device")
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "write_text", full)
    res = runner.invoke(app, [*fit_argv, "--out", str(tmp_path)])
    assert res.exit_code == 2 and "No space left on device" in _words(res), res.output
    assert (tmp_path / "fit.json").read_text() == before and not (tmp_path / ".fit.json.tmp").exists()


def test_sweep_out_keeps_a_users_files(tmp_path):
    mine = tmp_path / "curves.parquet"
    mine.write_text("mine")
    args = ["sweep", "--model", "mlp", "--widths", "32", "--log2-lr", "-6", "--steps", "2", "--batch", "2",
            "--seq-len", "8", "--data", "synthetic", "-q", "--out", str(tmp_path)]
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert "--out: " in _words(res) and "holds curves.parquet that no sweep wrote" in _words(res)
    assert mine.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["curves.parquet"]
    mine.unlink()
    for _ in range(2):  # a sweep's own folder: run, then resumed, as before
        assert runner.invoke(app, args).exit_code == 0
    assert (tmp_path / "spec.json").exists()


def test_an_unusable_compilation_cache_is_said_and_the_sweep_goes_on(tmp_path, monkeypatch):
    from abcscale.runner import executables
    from abcscale.runner.train import enable_compilation_cache

    afile = tmp_path / "afile"
    afile.write_text("x")
    monkeypatch.setenv("ABCSCALE_JAX_CACHE", str(afile / "sub"))
    before = executables.folder()
    try:
        with pytest.warns(UserWarning, match=r"ABCSCALE_JAX_CACHE: .*afile/sub cannot keep compiled programs"):
            enable_compilation_cache()
        assert executables.folder() is None
    finally:
        executables.use(before)


@pytest.mark.parametrize("flag", [["--address", "1.2.3.4:6379"], ["--workers", "3"]])
def test_tunes_ray_flags_without_ray_are_bad_input(tmp_path, flag):
    res = runner.invoke(app, ["tune", "--model", "mlp", "--steps", "2", "--batch", "2", "--seq-len", "8", "--data",
                              "synthetic", "--trials", "1", "--out", str(tmp_path / "t.json"), *flag])
    assert res.exit_code == 2 and f"{flag[0]}:" in _words(res) and "--ray" in _words(res), res.output
    assert not (tmp_path / "t.json").exists()


def test_a_port_taken_with_json_says_so_on_stdout():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = subprocess.run([sys.executable, "-m", "abcscale", "serve", "--port", str(port), "--json"],
                             capture_output=True, text=True, timeout=120)
    assert res.returncode == 1, res.stderr
    said = json.loads(res.stdout)
    assert said["ok"] is False and said["exit_code"] == 1 and "--port" in said["errors"][0]


@pytest.mark.parametrize(("text", "said"), [
    ("gamma: [1, 2\n", "not valid YAML"), ("", "empty; give the constants"), ("foo: 1\n", "no constants in it"),
])
def test_a_hand_written_constants_file_is_said_in_its_own_format(tmp_path, text, said):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    res = runner.invoke(app, ["recommend", "-n", "1024", "-p", "mup", "-o", "adam", "--base-width", "256",
                              "--base-lr", "1e-3", "--constants", str(path)])
    assert res.exit_code == 2 and said in _words(res) and "JSON" not in _words(res), res.output


def test_a_width_past_any_integer_says_so():
    res = runner.invoke(app, ["recommend", "-n", "1e40", "-p", "mup", "-o", "adam", "--base-width", "256",
                              "--base-lr", "1e-3"])
    assert res.exit_code == 2 and "1e40 is beyond any whole number this option takes" in _words(res), res.output


def test_a_narrow_terminal_folds_numbers_instead_of_cutting_them():
    # a terminal (a pty): piped output has a fixed width of 140 whatever COLUMNS says, where this table fits whole
    import pty

    leader, follower = pty.openpty()
    with os.fdopen(leader, "rb", buffering=0) as screen:
        proc = subprocess.Popen([sys.executable, "-m", "abcscale", "recommend", "-n", "64", "-p", "mup", "-o", "adam",
                                 "--base-width", "32", "--base-lr", "1e-3"], stdout=follower, stderr=subprocess.PIPE,
                                env={**os.environ, "COLUMNS": "60", "NO_COLOR": "1"})
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = screen.read(65536)
            except OSError:  # EIO: the program closed its end
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""
    out = re.sub(r"\x1b\[[0-9;]*m", "", b"".join(chunks).decode())  # NO_COLOR keeps bold and italic
    assert max(len(line) for line in out.splitlines()) <= 60, out  # the terminal's width, not the pipe's 140
    assert "…" not in out, out
    assert "7.07e" in out  # the embedding's epsilon, folded but whole (it read `7.07…`)


def test_ctrl_c_while_the_cli_loads_exits_130_without_a_traceback():
    code = ("import builtins\n"
            "real = builtins.__import__\n"
            "def stop(name, *a, **k):\n"
            "    if name == 'abcscale.cli':\n"
            "        raise KeyboardInterrupt\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = stop\n"
            "from abcscale._entry import main\n"
            "main()\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 130 and res.stderr == "interrupted\n", res.stderr


# --- a code review of the fixes above ---------------------------------------------------------------------------


def test_a_sweep_folder_whose_spec_json_was_cut_short_still_resumes(tmp_path):
    from abcscale.runner.store import refuse_foreign

    (tmp_path / "cells").mkdir()
    (tmp_path / "results.parquet").write_text("rows")
    (tmp_path / "spec.json").write_text('{"model": "mlp", "wid')  # a full disk during the rewrite
    refuse_foreign(tmp_path)  # its cells say a sweep owns it
    (tmp_path / "cells").rmdir()
    with pytest.raises(ValueError, match=r"^out_dir: .* holds results.parquet, spec.json that no sweep wrote"):
        refuse_foreign(tmp_path)  # the API's argument named as the API names it


def test_fit_out_replaces_an_older_abcscales_fit_json(tmp_path, fit_argv):
    assert runner.invoke(app, [*fit_argv, "--out", str(tmp_path)]).exit_code == 0
    old = json.loads((tmp_path / "fit.json").read_text())
    old["retired_field"] = 1  # a field this version's schema no longer has
    (tmp_path / "fit.json").write_text(json.dumps(old))
    assert runner.invoke(app, [*fit_argv, "--out", str(tmp_path)]).exit_code == 0
    (tmp_path / "fit.json").write_text(json.dumps({"id": "x", "result": old}))  # a service's stored fit
    assert runner.invoke(app, [*fit_argv, "--out", str(tmp_path)]).exit_code == 0


def test_fit_out_under_a_file_names_out(tmp_path, fit_argv):
    (tmp_path / "afile").write_text("x")
    res = runner.invoke(app, [*fit_argv, "--out", str(tmp_path / "afile" / "sub")])
    assert res.exit_code == 2 and _words(res).startswith("error: --out: cannot write"), res.output


def test_a_tune_file_saved_under_a_toml_name_still_reads(tmp_path):
    from abcscale.usecases.tune import save_constants
    from tests.usecases.test_tune import _tuned

    path = save_constants(_tuned(), tmp_path / "t.json").rename(tmp_path / "t.toml")
    res = runner.invoke(app, ["recommend", "-n", "256", "--constants", str(path), "--json"])
    assert res.exit_code == 0, res.output


@pytest.mark.e2e
def test_demo_names_out_for_its_own_services_refusal(tmp_path, monkeypatch):
    (tmp_path / "service").mkdir()
    (tmp_path / "service" / "abcscale.db").write_bytes(b"not a database" * 100)
    monkeypatch.setenv("ABCSCALE_DATABASE_URL", f"sqlite:///{tmp_path / 'elsewhere.db'}")  # not the demo's
    res = runner.invoke(app, ["demo", "--quick", "--no-serve", "-q", "--out", str(tmp_path)])
    assert res.exit_code == 2, res.output
    said = _words(res)
    assert "error: --out: " in said and "ABCSCALE_DATABASE_URL" not in said
    # said before the sweep (session 69: it ran the sweep and the fit first, then refused the file they went to)
    assert "nothing was swept yet" in said and not (tmp_path / "sweep").exists()
