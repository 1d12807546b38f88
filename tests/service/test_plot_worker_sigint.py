"""Ctrl-C on a running service after a plot was drawn: only the server handles it, and it exits cleanly.

A terminal's Ctrl-C sends SIGINT to the whole foreground process group, plot workers included. A worker that
does not ignore it dies in its task loop and prints ``Process SpawnProcess-1: Traceback ... KeyboardInterrupt``
while the server shuts the pool down anyway.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from abcscale.fitting.synthetic import synthetic_sweep
from tests.helpers import free_port, wait_healthy

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(sys.platform == "win32", reason="process groups and SIGINT are POSIX")
def test_ctrl_c_after_a_plot_exits_cleanly_without_a_worker_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABCSCALE_")}
    env |= {"ABCSCALE_DATA_DIR": str(tmp_path / "data"), "ABCSCALE_PLOT_WAIT_S": "20"}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # its own session: the process group a terminal's Ctrl-C reaches (the server and its plot workers)
    proc = subprocess.Popen([sys.executable, "-m", "abcscale", "serve", "--port", str(port), "--log-level",
                             "warning"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        wait_healthy(url, proc, timeout=30)
        rows = synthetic_sweep(widths=(64, 128, 256), seeds=1, step=0.5, half_range=1.5,
                               group={"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"})
        created = httpx.post(f"{url}/v1/fits", json={"rows": rows.to_dict(orient="records"), "n_boot": 20},
                             timeout=30)
        assert created.status_code == 201, created.text
        plot = f"{url}/v1/fits/{created.json()['id']}/plots/loss_vs_lr.png"
        deadline = time.monotonic() + 25
        while (r := httpx.get(plot, timeout=30)).status_code == 202 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert r.status_code == 200 and r.content[:4] == b"\x89PNG", r.text[:300]
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        _, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-3000:]
    # the server shut down gracefully, then exited as Ctrl-C ends a command (130, as tune does), and said nothing
    assert proc.returncode == 130 and "Aborted" not in stderr, (proc.returncode, stderr[-3000:])
    deadline = time.monotonic() + 10
    while True:  # the pool's workers went with it: nothing of the group is left
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "a process of the server's group outlived it"
        time.sleep(0.1)
