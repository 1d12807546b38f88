"""Session 58: a review of the CLI across commands. An answer cut short by a full disk exited 0 (or with a
traceback at once); a symlink loop or a name too long was a traceback, exit 1 (which `check` means as "off the
rule"); `fit --out` replaced a user's own fit.json, and on a full disk left the fit before it cut short."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from abcscale.cli import app

runner = CliRunner()
TABLE = "examples/tour-sweep.parquet"


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


def test_fit_out_keeps_a_users_own_fit_json(tmp_path):
    mine = tmp_path / "fit.json"
    mine.write_text('{"mine": 1}')
    res = runner.invoke(app, ["fit", TABLE, "-q", "--summary", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "exists and is not a fit from `abcscale fit`" in _words(res), res.output
    assert mine.read_text() == '{"mine": 1}'
    mine.unlink()
    for _ in range(2):  # its own fit.json, from the run before, is replaced
        assert runner.invoke(app, ["fit", TABLE, "-q", "--summary", "--out", str(tmp_path)]).exit_code == 0
    assert json.loads(mine.read_text())["groups"] and sorted(p.name for p in tmp_path.iterdir()) == ["fit.json"]


def test_fit_out_that_cannot_be_written_leaves_the_fit_before(tmp_path, monkeypatch):
    runner.invoke(app, ["fit", TABLE, "-q", "--summary", "--out", str(tmp_path)])
    before = (tmp_path / "fit.json").read_text()
    real = Path.write_text

    def full(self, *a, **k):
        if self.name.endswith(".tmp"):
            real(self, "{ cut", **k)
            raise OSError(28, "No space left on device")
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "write_text", full)
    res = runner.invoke(app, ["fit", TABLE, "-q", "--summary", "--out", str(tmp_path), "--n-boot", "30"])
    assert res.exit_code == 2 and "No space left on device" in _words(res), res.output
    assert (tmp_path / "fit.json").read_text() == before and not (tmp_path / ".fit.json.tmp").exists()
