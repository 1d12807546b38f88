"""Helpers shared by the tests and benchmarks that start a real server process."""

from __future__ import annotations

import socket
import subprocess
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Poll ``url/healthz`` until it answers 200; raise with the process's stderr if it dies or times out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            err = proc.stderr.read() if proc.stderr else ""
            err = err.decode() if isinstance(err, bytes) else (err or "")
            raise RuntimeError(f"server at {url} did not come up: {err[-2000:]}")
        time.sleep(0.1)
