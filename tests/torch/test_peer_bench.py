"""A smoke test of ``make bench-peer``'s driver (tests/benchmarks/peer_bench.py) on its tiny grid, one repeat:
both programs run whole-process, alternating, and the table and its JSON come out (``make test-torch``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("mup")

ROOT = Path(__file__).resolve().parents[2]
MAIN_PY = Path(os.environ.get("ABCSCALE_MAIN_PYTHON", ROOT / ".venv" / "bin" / "python"))


def test_the_driver_times_both_programs_and_prints_the_ratio(tmp_path):
    if not MAIN_PY.exists():
        pytest.skip(f"no main venv at {MAIN_PY} (make install, or set ABCSCALE_MAIN_PYTHON)")
    proc = subprocess.run([str(MAIN_PY), "tests/benchmarks/peer_bench.py", "--quick", "--repeats", "1",
                           "--torch-python", sys.executable, "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    print(proc.stdout)
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| quick")]
    assert [r.split(" | ")[1] for r in rows] == ["abcscale cold", "abcscale warm", "mup"]
    assert all("**" in r for r in rows[:2])  # a ratio on each abcscale row
    runs = json.loads((tmp_path / "peer_bench.json").read_text())["runs"]["quick"]
    assert [m["program"] for m in runs] == ["abcscale cold", "mup", "abcscale warm", "mup"]  # alternating
    for m in runs:
        assert m["wall_s"] > 0 and m["phases"]["train_s"] > 0 and list(m["train_by_width_s"]) == ["32"]
        assert sum(m["phases"].values()) == pytest.approx(m["wall_s"])  # the phases account for the wall time


def test_a_bad_flag_is_one_line_naming_it(tmp_path):
    proc = subprocess.run([str(MAIN_PY if MAIN_PY.exists() else sys.executable), "tests/benchmarks/peer_bench.py",
                           "--sweeps", "huge", "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["--sweeps: unknown huge; allowed: demo, wide"]
