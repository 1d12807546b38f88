"""Helpers shared by the tests and benchmarks that start a real server process."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Poll ``url/healthz`` until it answers 200; raise with the process's stderr if it dies or times out. One client
    for all its polls: ``httpx.get`` makes a client, and its SSL context, per call (about 25 ms of CPU), about 0.5 s
    of the test process's CPU for each server start it waited on (session 69)."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1) as client:
        while True:
            try:
                if client.get(f"{url}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read() if proc.stderr else ""
                err = err.decode() if isinstance(err, bytes) else (err or "")
                raise RuntimeError(f"server at {url} did not come up: {err[-2000:]}")
            time.sleep(0.1)


def tune_file(folder, beta: float = 0.05):
    """A constants file as `abcscale tune` writes one (muP + Adam at base width 16, gamma 0.5 / 1 / 4, ``beta``),
    without running a search: what the readers of tune files are tested on."""
    from abcscale.schemas.theory import Constants, PerLayer
    from abcscale.schemas.tune import TunedConstants, TuneSettings
    from abcscale.usecases.tune import save_constants

    tuned = TunedConstants(parameterization="mup", optimizer="adam", optimizer_variant="adam", alignment="full",
                           lr_mode="per_layer", base_width=16, beta=beta,
                           constants=Constants(gamma=PerLayer(embedding=0.5, readout=4.0)), loss=4.0, loss_std=0.05,
                           near_best={}, settings=TuneSettings(), training={"model": "transformer"}, elapsed_s=1.0,
                           trials_run=0, history=[], candidates=[], abcscale_version="test")
    return tuned, save_constants(tuned, folder / "t.json")


#: the tour's shipped sweep table (README "A tour")
TOUR_TABLE = str(Path(__file__).resolve().parents[1] / "examples" / "tour-sweep.parquet")


def tour_fit(folder) -> str:
    """``abcscale fit`` of the tour's table into ``folder``: the path of its fit.json (for a module-scoped fixture)."""
    from typer.testing import CliRunner

    from abcscale.cli import app

    res = CliRunner().invoke(app, ["fit", TOUR_TABLE, "-q", "--out", str(folder)])
    assert res.exit_code == 0, res.output
    return str(folder / "fit.json")


def wait_for_file(path: Path, proc: subprocess.Popen, what: str, timeout: float = 300.0, poll: float = 0.1) -> None:
    """Until ``proc`` (a sweep in a subprocess, stalled on purpose) has written ``path``: it must not exit first, nor
    take more than ``timeout`` seconds (``what`` says what it should have reached)."""
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, "the sweep exited early"
        assert time.time() < deadline, f"the sweep did not reach {what} in {timeout:.0f} s"
        time.sleep(poll)


def forbid_parquet_decode(monkeypatch, why: str) -> None:
    """Every way pandas and pyarrow decode a parquet file's data fails the test (reading its footer does not):
    a check "refused from the metadata" that patched ``pd.read_parquet`` alone passed a reader that decoded through
    pyarrow first and checked the cap after (session 74's audit)."""
    import pandas as pd
    import pyarrow.parquet as pq
    import pytest

    def fail(*a, **k):
        pytest.fail(why)

    monkeypatch.setattr(pd, "read_parquet", fail)
    monkeypatch.setattr(pq, "read_table", fail)
    monkeypatch.setattr(pq, "ParquetDataset", fail)
    for name in ("read", "read_row_group", "read_row_groups", "iter_batches", "scan_contents"):
        monkeypatch.setattr(pq.ParquetFile, name, fail)
