"""What every test folder shares: Ctrl-C as a terminal gives it.

A shell without job control starts a background command with SIGINT ignored (`make test &` in a script, a CI runner's
step started that way), and every process below it inherits that: the tests that press Ctrl-C on a real sweep, a
real server or a CLI waiting on a service then see nothing happen and fail (five did, session 77). What they test is
what the program does with a Ctrl-C, not how the suite was started, so the suite takes Python's own handler back.
The processes the tests start then begin with the default action, as from a terminal (a caught signal's handler
is reset by exec; an ignored one is not).

And a compilation cache of the suite's own. The runner keeps compiled programs in ``ABCSCALE_JAX_CACHE``, else
``~/.cache/abcscale/jax``: a suite run with neither wrote about 200 programs (130 MB) into the user's own cache each
time the runner's code changed, never removed, and every later run on that machine found them there, so a `make test`
there ran about 50 s faster than a fresh clone's (533 s against 585 s of pytest, 2026-12-07) and hid what CI pays.
Unless ``ABCSCALE_JAX_CACHE`` is set, the suite keeps them in the checkout, ``.jax_cache/tests`` (git ignores it;
`make clean` removes it): one folder for xdist's workers (they inherit the controller's environment), warm for a
developer's next run, cold in a fresh clone as in CI, emptied when it outgrows :data:`SUITE_CACHE_LIMIT`.

And JAX's ``JAX_DISABLE_MOST_OPTIMIZATIONS=1`` (unless set otherwise), for every process the suite starts: the JAX
the tests run outside the runner (optax exports, draws, eager checks, a model's init) compiles at LLVM level 0
without the expensive passes, 23% less CPU on five such files (69 -> 53 CPU-s, 2026-12-07). The runner's training
and draw programs are unchanged by it (``runner.train.compiler_options`` sets their level and passes back:
bit-identical losses), so the runner tests test what users train; the rest of the product's JAX (the optax export's
jitted step, a model's eager init) compiles at level 0 here, where a user's compiles at XLA's default."""

from __future__ import annotations

import os
import shutil
import signal
import threading
from pathlib import Path

import pytest

os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")  # read when JAX starts: before any test imports it
SUITE_CACHE = Path(__file__).resolve().parents[1] / ".jax_cache" / "tests"
SUITE_CACHE_LIMIT = 2**30  # bytes: each change of the runner's code keys every program anew (about 130 MB a run)


def pytest_configure(config: pytest.Config) -> None:
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if "ABCSCALE_JAX_CACHE" not in os.environ:  # the first process: xdist's controller, or a run without workers
        if sum(f.stat().st_size for f in SUITE_CACHE.glob("*") if f.is_file()) > SUITE_CACHE_LIMIT:
            shutil.rmtree(SUITE_CACHE, ignore_errors=True)
        os.environ["ABCSCALE_JAX_CACHE"] = str(SUITE_CACHE)
