"""Session 58: the CI gates' client of a service. httpx's timeouts bound each read, so a service (or proxy) that
sent a byte every few seconds held `check --service` and `fit --service` forever; a redirect (http -> https, a
moved service) was said as "answered 307 without a recommendation (is it an abcscale service?)"."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from abcscale.cli import app

runner = CliRunner()
CONFIG = "examples/check-config.yaml"
TABLE = "examples/tour-sweep.parquet"


def _err(res) -> str:
    return " ".join(res.output.split())


def _serve(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


class _Dripping(http.server.BaseHTTPRequestHandler):
    """Answers 200 with a long body, one byte every 0.2 s: no single read waits long enough to time out."""

    def do_POST(self):  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            for _ in range(100000):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:  # the client gave up
            pass

    def log_message(self, *args):
        pass


class _Moved(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(307)
        self.send_header("Location", "https://abcscale.example/v1/recommend")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def dripping() -> Iterator[str]:
    yield from _serve(_Dripping)


@pytest.fixture
def moved() -> Iterator[str]:
    yield from _serve(_Moved)


@pytest.mark.parametrize("command", [["check", CONFIG], ["fit", TABLE]])
def test_a_dripping_service_meets_the_whole_exchange_deadline(dripping, monkeypatch, command):
    monkeypatch.setenv("ABCSCALE_SERVICE_DEADLINE", "1.5")
    t0 = time.monotonic()
    res = runner.invoke(app, [*command, "--service", dripping])
    took = time.monotonic() - t0
    assert res.exit_code == 3, res.output
    assert "sent no whole answer within 1.5 s" in _err(res) and "a retry may pass" in _err(res)
    assert took < 20, took  # the fit itself is read first; the wait is the 1.5 s deadline, not the body's 5.5 hours


@pytest.mark.parametrize("command", [["check", CONFIG], ["fit", TABLE]])
def test_a_redirect_is_said_with_where_it_points(moved, command):
    res = runner.invoke(app, [*command, "--service", moved])
    assert res.exit_code == 2, res.output
    assert "answered 307, a redirect to https://abcscale.example/v1/recommend" in _err(res), res.output


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan", "inf"])
def test_a_bad_deadline_variable_is_bad_input(monkeypatch, value):
    monkeypatch.setenv("ABCSCALE_SERVICE_DEADLINE", value)
    res = runner.invoke(app, ["check", CONFIG, "--service", "http://127.0.0.1:9"])
    assert res.exit_code == 2 and "ABCSCALE_SERVICE_DEADLINE: expected a positive number of seconds" in _err(res)
