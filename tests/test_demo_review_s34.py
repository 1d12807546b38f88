"""`abcscale demo`: everything it writes is under --out (its service database included), and a busy --port
fails before the pipeline runs, not after it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from tests.helpers import free_port
from tests.test_demo import quick_demo


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABCSCALE_")}
    if "ABCSCALE_JAX_CACHE" in os.environ:  # the compile cache the suite's other runs use
        env["ABCSCALE_JAX_CACHE"] = os.environ["ABCSCALE_JAX_CACHE"]
    return env | {"COLUMNS": "200"}


@pytest.mark.e2e  # the quick demo's sweeps and tuning: 10 s with a warm JAX compile cache, more cold
def test_demo_no_serve_writes_nothing_outside_out(tmp_path_factory, monkeypatch):
    # the demo run from an empty cwd with no ABCSCALE_ setting, which tests/test_demo.py's test reads too
    tmp_path, run = quick_demo(tmp_path_factory)
    cwd, out = tmp_path / "cwd", tmp_path / "demo"
    assert run.returncode == 0, run.stderr[-3000:]
    assert list(cwd.iterdir()) == []  # was ./abcscale-data/abcscale.db, the service's default database
    summary = json.loads(run.stdout)
    db = out / "service" / "abcscale.db"
    assert db.is_file() and summary["database"] == f"sqlite:///{db}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "demo"]

    # what the README says serves it later (ABCSCALE_DATA_DIR=DIR/service abcscale serve): the demo's fit
    from abcscale.service import crud
    from abcscale.service.config import Settings

    for name in ("ABCSCALE_DATABASE_URL", "ABCSCALE_PLOT_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ABCSCALE_DATA_DIR", str(out / "service"))
    with crud.open_session(Settings()) as session:
        assert crud.get_fit(session, fit_id=summary["fit_id"]) is not None


def test_demo_with_a_taken_port_fails_before_the_sweep(tmp_path):
    port = free_port()
    with socket.socket() as taken:  # another server on the port
        taken.bind(("127.0.0.1", port))
        taken.listen()
        t0 = time.monotonic()
        run = subprocess.run([sys.executable, "-m", "abcscale", "demo", "--quick", "--quiet", "--port", str(port),
                              "--out", str(tmp_path / "demo")], cwd=tmp_path, env=_env(),
                             capture_output=True, text=True, timeout=120)
        elapsed = time.monotonic() - t0
    assert run.returncode == 1, (run.returncode, run.stderr[-2000:])
    assert run.stderr.strip() == (f"error: --port: cannot listen on 127.0.0.1:{port} (Address already in use); "
                                  "pick another with --port N")
    assert run.stdout == "" and list(tmp_path.iterdir()) == []  # no sweep ran: not even --out was made
    assert elapsed < 30, elapsed  # startup only (the quick pipeline alone takes longer)
