"""The suite started with SIGINT ignored (a background step of a script or CI runner) still tests Ctrl-C: a real
Ctrl-C test run that way passes (tests/conftest.py takes Python's handler back; without it this run failed)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CTRL_C_TEST = ("tests/cli/test_hostile_cli_s70.py::"
               "test_ctrl_c_while_waiting_for_a_service_says_so_and_json_gets_its_error_object")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT dispositions are POSIX")
def test_a_ctrl_c_test_passes_in_a_suite_started_with_sigint_ignored():
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "-q", "-n", "0",
                           CTRL_C_TEST], cwd=ROOT, capture_output=True, text=True, timeout=180,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]
