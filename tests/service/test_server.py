"""The real thing: ``abcscale serve`` in a subprocess on a free loopback port with a temporary SQLite file.
A fit posted before a restart is read back after it; an oversized chunked upload is refused while streaming."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port, wait_healthy
from tests.service.conftest import N_BOOT

ROOT = Path(__file__).resolve().parents[2]


class Server:
    def __init__(self, db_url: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("ABCSCALE_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "abcscale", "serve", "--port", str(self.port), "--db", db_url,
             "--log-level", "warning"],
            cwd=ROOT, env={**full_env, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        try:
            wait_healthy(self.url, self.proc, timeout=60)
        except RuntimeError:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'service.db'}"


def _send_chunked(port: int, chunk: bytes, max_chunks: int) -> tuple[bytes, int]:
    """Stream a chunked POST /v1/fits until the server answers; returns the answer and the chunks sent."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /v1/fits HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            while sent < max_chunks and not select.select([sock], [], [], 0.02)[0]:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += 1
        except OSError:
            pass  # the server may close the connection once it has answered
        return sock.recv(4096), sent


def test_fit_survives_a_restart_and_the_cap_holds_while_streaming(db_url, sweep_rows):
    server = Server(db_url)
    try:
        r = httpx.post(f"{server.url}/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT, "name": "kept"},
                       timeout=60)
        assert r.status_code == 201, r.text
        posted = r.json()
    finally:
        server.stop()
    assert server.proc.returncode is not None
    # Same database, a fresh process (and a 1 MiB cap for the streaming check below).
    server = Server(db_url, env={"ABCSCALE_MAX_UPLOAD_MB": "1"})
    try:
        got = httpx.get(f"{server.url}/v1/fits/{posted['id']}", timeout=10)
        assert got.status_code == 200 and got.json() == posted
        assert httpx.get(f"{server.url}/v1/fits", timeout=10).json()["count"] == 1
        rec = httpx.post(f"{server.url}/v1/recommend", json={"fit_id": posted["id"], "width": 1024}, timeout=30)
        assert rec.status_code == 200 and rec.json()["source"] == "fit"
        # 32 MiB offered in 256 KiB chunks: the 413 comes long before the client has sent it all.
        answer, sent = _send_chunked(server.port, b" " * 2**18, 128)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert sent < 128
        assert httpx.get(f"{server.url}/v1/fits", timeout=10).json()["count"] == 1
    finally:
        server.stop()
