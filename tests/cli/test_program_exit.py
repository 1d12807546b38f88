"""The installed program ends with a hard exit (abcscale.cli._hard_exit): its status, output and atexit
handlers must be what a normal interpreter exit gives."""

from __future__ import annotations

import subprocess
import sys


def _run(*args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "abcscale", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_the_program_keeps_its_exit_status_and_output(tmp_path):
    ok = _run("theory", "table")
    assert ok.returncode == 0 and "mup" in ok.stdout
    bad = _run("sweep", "--steps", "0", "--out", str(tmp_path))
    assert bad.returncode == 2 and "--steps" in bad.stderr and "Traceback" not in bad.stderr


def test_atexit_handlers_run_and_a_message_exit_is_status_1():
    code = ("import atexit, sys; from abcscale.cli import _hard_exit; "
            "atexit.register(lambda: print('handler ran', flush=True)); _hard_exit('stopped: reason')")
    out = _run(code=code)
    assert out.returncode == 1 and "handler ran" in out.stdout and "stopped: reason" in out.stderr
    assert _run(code="from abcscale.cli import _hard_exit; _hard_exit(None)").returncode == 0
    assert _run(code="from abcscale.cli import _hard_exit; _hard_exit(3)").returncode == 3
