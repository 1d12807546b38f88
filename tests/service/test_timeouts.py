"""Slow clients against the real server (``abcscale serve`` in a subprocess): connections that never finish their
headers or their body are answered 408 and closed once the read deadline passes, while other clients are
served all along. uvicorn alone holds such connections forever (it bounds only keep-alive idle time)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port, wait_healthy

ROOT = Path(__file__).resolve().parents[2]
HEADER_S, BODY_S = 3.0, 3.0  # seconds: a busy 2-core CI machine serves the 20 normal requests within them
SLOW = 50


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for both tests (a start is about 1.5 s of CPU): each opens its own connections, and the first
    test ends by checking the server is fine after its slow clients were closed."""
    tmp_path = tmp_path_factory.mktemp("timeouts")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABCSCALE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "abcscale", "serve", "--port", str(port), "--db", f"sqlite:///{tmp_path}/t.db",
         "--log-level", "warning", "--header-timeout", str(HEADER_S), "--body-timeout", str(BODY_S)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, timeout=60)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _open(port: int, data: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    if data:
        s.sendall(data)
    return s


def _closed_after(s: socket.socket, limit: float) -> tuple[float, bytes]:
    """Seconds until the server closed ``s`` (reading what it sent first), or ``limit`` if it did not."""
    start, got = time.monotonic(), b""
    s.settimeout(0.2)
    while time.monotonic() - start < limit:
        try:
            chunk = s.recv(4096)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return time.monotonic() - start, got
        if not chunk:
            return time.monotonic() - start, got
        got += chunk
    return limit, got


def test_slow_headers_and_bodies_are_closed_while_others_are_served(server):
    port = server
    half_header = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    half_body = (b"POST /v1/recommend HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n{\"width\": ")
    opened = time.monotonic()
    slow = [_open(port, half_header) for _ in range(SLOW)]
    silent = [_open(port, b"") for _ in range(5)]  # connect and send nothing at all
    bodies = [_open(port, half_body) for _ in range(5)]

    # while they hang, a normal client is answered at once, many times
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        for _ in range(20):
            assert client.get("/healthz").status_code == 200
    assert time.monotonic() - opened < HEADER_S, "the normal requests were not served while slow ones hung"

    for group, deadline in ((slow + silent, HEADER_S), (bodies, HEADER_S + BODY_S)):
        for s in group:
            waited, got = _closed_after(s, limit=deadline + 5)
            total = time.monotonic() - opened
            assert waited < deadline + 5 and total < deadline + 3, f"held {total:.1f} s (deadline {deadline} s)"
            assert got == b"" or got.startswith(b"HTTP/1.1 408 "), got[:200]
            s.close()

    # and the server is still fine afterwards
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200


def _response(s: socket.socket) -> bytes:
    """One whole response (status line to the end of its Content-Length body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    fields = dict(line.lower().split(b": ", 1) for line in head.split(b"\r\n")[1:])
    length = int(fields[b"content-length"])
    while len(body) < length:
        body += s.recv(4096)
    return head


def test_a_slow_but_steady_request_inside_the_deadline_is_answered(server):
    port = server
    with _open(port, b"GET /healthz HTTP/1.1\r\n") as s:
        time.sleep(HEADER_S / 3)
        s.sendall(b"Host: 127.0.0.1\r\n")
        time.sleep(HEADER_S / 3)
        s.sendall(b"\r\n")
        s.settimeout(5)
        assert _response(s).startswith(b"HTTP/1.1 200 ")
        # kept alive: the next request's header deadline starts at its first byte, not at the connection's
        time.sleep(HEADER_S / 2)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert _response(s).startswith(b"HTTP/1.1 200 ")


def test_a_stalled_next_request_on_a_kept_alive_connection_is_answered_408(server):
    """The deadline of a kept-alive connection's next request said nothing when it passed: the connection closed
    with no answer (the last request's response had begun, so the 408 was skipped; a review), where a fresh
    connection's stalled request gets the 408 the README promises (a retrying client reads it as retryable)."""
    port = server
    with _open(port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n") as s:
        s.settimeout(5)
        assert _response(s).startswith(b"HTTP/1.1 200 ")
        s.sendall(b"GET /healthz HTTP/1.1\r\nHo")  # and nothing more
        waited, got = _closed_after(s, limit=HEADER_S + 5)
    assert got.startswith(b"HTTP/1.1 408 "), got[:200]
    assert HEADER_S - 0.5 < waited < HEADER_S + 3
