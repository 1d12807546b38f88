"""Issue 18's prepared GPU check (tests/benchmarks/device_check.sh) runs end to end, tiny, on the CPU: the
command a session with a lent accelerator runs once must not fail there on something a CPU run would catch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "benchmarks" / "device_check.sh"

pytestmark = pytest.mark.e2e


def _run(out: Path, limit_s: int, rows: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable, "WHEELS": str(out / "no-wheels"), "ROWS": rows,
           "FIT_WIDTHS": "32,64",
           "TEST_WIDTHS": "128", "STEPS": "10", "SEEDS": "1", "LIMIT_S": str(limit_s)}
    env.pop("PYTHONPATH", None)
    return subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_the_device_check_reports_its_rows_and_the_machine(tmp_path):
    done = _run(tmp_path, 240, "3")
    assert done.returncode == 0, done.stdout + done.stderr
    report = (tmp_path / "transfer_gpu.md").read_text()
    assert "Machine: " in report and "CPU only" in report  # on a GPU: the device's kind
    assert "Each row's wall time: mup / adam / per_layer" in report
    rows = [line for line in report.splitlines() if line.startswith("| mup / adam / per_layer | 128 (2x) |")]
    assert len(rows) == 1 and rows[0].count("|") == 13
    log = (tmp_path / "device_check.log").read_text()
    assert "jax " in log and "device check: " in log and "stopped" not in log


def test_a_time_limit_keeps_the_finished_rows(tmp_path):
    """Stopped at LIMIT_S, the check still exits 0 and says so; the report, if any row finished, is whole."""
    # 1 s: no row finishes in 4 s either (a row here takes 6 s and more, after 3 s of imports); the stop is the same
    done = _run(tmp_path, 1, "3,0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "stopped at LIMIT_S=1 s" in done.stdout
    report = tmp_path / "transfer_gpu.md"
    if report.exists():  # written whole after each row (through a .part file), never cut mid-table
        text = report.read_text()
        assert text.startswith("Fit widths") and text.rstrip().endswith("|")


def test_the_speed_script_times_a_sweep_cold_then_warm(tmp_path):
    """tests/benchmarks/device_speed.sh, tiny: one width, two LRs, 10 steps, a cold then a warm compilation cache."""
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable, "WHEELS": str(tmp_path / "no-wheels"),
           "SWEEPS": "tiny", "STEPS": "10"}
    env.pop("PYTHONPATH", None)
    done = subprocess.run(["bash", str(ROOT / "tests" / "benchmarks" / "device_speed.sh")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    log = (tmp_path / "device_speed.log").read_text()
    lines = [line for line in log.splitlines() if line.startswith("tiny ")]
    assert [line.split(":")[0] for line in lines] == ["tiny cold", "tiny warm"], log
    assert all(line.endswith(", 2 runs") and "wall " in line for line in lines), log
