"""SIGTERM (a CI job cancelled, ``timeout``) stops a sweep as Ctrl-C does: what was kept said, exit 143, and the
same command resumes. It ended the process in silence, ``--json`` printing nothing (a review, session 83)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.e2e
ARGS = ["sweep", "--model", "mlp", "-p", "mup", "-o", "adam", "--widths", "16,32,64", "--steps", "400", "--batch", "4",
        "--seq-len", "8", "--depth", "1", "--data", "synthetic", "--log2-lr=-8:-3:0.5", "-q", "--json"]


def test_sigterm_mid_sweep_says_what_was_kept_and_the_rerun_resumes(tmp_path):
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "abcscale", *ARGS, "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    deadline = time.monotonic() + 120
    # the first width's runs on disk, two widths to go
    while not list(Path(out / "cells").glob("*.rows.parquet")) and time.monotonic() < deadline \
            and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    said = json.loads(stdout)
    assert said["exit_code"] == 143 and said["errors"][0].startswith("SIGTERM: interrupted: "), said
    assert "the same command resumes" in said["errors"][0] and "Traceback" not in stderr
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["reused"] >= 1
    assert len(pd.read_parquet(out / "results.parquet")) == 33


def test_the_handler_and_the_flag_do_not_outlive_the_command():
    # in-process (a notebook, CliRunner): the host's SIGTERM handler was left at SIG_DFL after a stop, and a later
    # Ctrl-C was said as SIGTERM with exit 143
    from abcscale.cli import _common, main

    seen = []
    host = signal.signal(signal.SIGTERM, lambda *_: seen.append(1))
    try:
        own = signal.getsignal(signal.SIGTERM)
        with pytest.raises(KeyboardInterrupt), _common.sigterm_stops():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        assert signal.getsignal(signal.SIGTERM) is own and _common._sigterm[0]
        with pytest.raises(SystemExit):
            main(["theory", "table", "-p", "mup", "-o", "adam", "--json"])
        assert not _common._sigterm[0]
    finally:
        signal.signal(signal.SIGTERM, host)
