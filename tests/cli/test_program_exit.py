"""The installed program ends with a hard exit (abcscale.cli._hard_exit): its status, output and atexit
handlers must be what a normal interpreter exit gives."""

from __future__ import annotations

import subprocess
import sys


def _run(*args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "abcscale", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


#: a command that prints and exits 0: one row of the theory table (the whole table's solves were 0.8 of its 1.6 CPU-s
#: a process, 2026-12-07; what is tested here is the process's exit and output, not the table)
TABLE = ("theory", "table", "-p", "mup", "-o", "adam")


def test_the_program_keeps_its_exit_status_and_output(tmp_path):
    ok = _run(*TABLE)
    assert ok.returncode == 0 and "mup" in ok.stdout
    bad = _run("sweep", "--steps", "0", "--out", str(tmp_path))
    assert bad.returncode == 2 and "--steps" in bad.stderr and "Traceback" not in bad.stderr


def test_atexit_handlers_run_and_a_message_exit_is_status_1():
    code = ("import atexit, sys; from abcscale.cli import _hard_exit; "
            "atexit.register(lambda: print('handler ran', flush=True)); _hard_exit('stopped: reason')")
    out = _run(code=code)
    assert out.returncode == 1 and "handler ran" in out.stdout and "stopped: reason" in out.stderr
    assert _run(code="from abcscale.cli import _hard_exit; _hard_exit(None)").returncode == 0
    assert _run(code="from abcscale.cli import _hard_exit; _hard_exit(3)").returncode == 3


def _reader_gone(*args: str, both: bool = False) -> tuple[int, str]:
    """Run the program with a stdout pipe whose reader has already left (``abcscale ... | head`` once head
    exits; ``both``: stderr into it too, ``2>&1 | head``): its exit status and stderr."""
    p = subprocess.Popen([sys.executable, "-m", "abcscale", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT if both else subprocess.PIPE, text=True)
    assert p.stdout is not None
    p.stdout.close()  # before the program's first write: it finds the pipe broken
    err = "" if both else p.stderr.read()  # type: ignore[union-attr]
    return p.wait(timeout=120), err


def test_a_reader_that_leaves_ends_nothing_early(tmp_path):
    # was status 1 (click's broken-pipe exit) with the command cut off where the pipe broke
    code, err = _reader_gone("recommend", "-p", "mup", "-o", "adam", "-n", "4096", "--base-width", "256",
                             "--base-lr", "3e-3")
    assert code == 0 and err == "", err
    from abcscale.fitting.synthetic import synthetic_sweep

    table = tmp_path / "t.csv"
    synthetic_sweep((64, 128, 256), seeds=1, exponent=-0.5).to_csv(table, index=False)
    # a gate judged after the output still fails the command: its status is its own
    code, err = _reader_gone("fit", str(table), "-q", "--n-boot", "20", "--expect-exponent", "size=3")
    assert code == 1 and "inconsistent with size=3" in err and "Traceback" not in err, err
    code, err = _reader_gone("fit", str(table), "-q", "--n-boot", "20", "--expect-exponent", "size=-0.5")
    assert code == 0 and err == "", err
    # stderr into the same pipe: its lines after the reader left go nowhere too
    assert _reader_gone("fit", str(table), "-q", "--n-boot", "20", "--expect-exponent", "size=-0.5",
                        both=True)[0] == 0
    assert _reader_gone("fit", str(table), "-q", "--n-boot", "20", "--expect-exponent", "size=3", both=True)[0] == 1


def _closed(*args: str, close: str = ">&-") -> subprocess.CompletedProcess[str]:
    """Run the program with its stdout (``close``: and more) closed by the shell, as ``abcscale ... >&-`` does:
    Python starts with ``sys.stdout`` None. (A shell, not a ``preexec_fn``: that forks a threaded process.)"""
    import shlex

    line = " ".join(shlex.quote(a) for a in (sys.executable, "-m", "abcscale", *args))
    return subprocess.run(["bash", "-c", f"{line} {close}"], capture_output=True, text=True, timeout=120)


def test_a_closed_output_keeps_the_exit_status(tmp_path):
    """It failed at import (rich's console asked ``sys.stdout.isatty()`` of None): exit 1 and a traceback."""
    ok = _closed(*TABLE)
    assert ok.returncode == 0 and "Traceback" not in ok.stderr, ok.stderr
    bad = _closed("check", str(tmp_path / "missing.yaml"))
    assert bad.returncode == 2 and "missing.yaml" in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    assert _closed("check", str(tmp_path / "missing.yaml"), close=">&- 2>&-").returncode == 2
