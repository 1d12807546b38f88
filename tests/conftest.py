"""What every test folder shares: Ctrl-C as a terminal gives it.

A shell without job control starts a background command with SIGINT ignored (`make test &` in a script, a CI runner's
step started that way), and every process below it inherits that: the tests that press Ctrl-C on a real sweep, a
real server or a CLI waiting on a service then see nothing happen and fail (five did, session 77). What they test is
what the program does with a Ctrl-C, not how the suite was started, so the suite takes Python's own handler back.
The processes the tests start then begin with the default action, as from a terminal (a caught signal's handler
is reset by exec; an ignored one is not).

And a compilation cache of the suite's own. The runner keeps compiled programs in ``ABCSCALE_JAX_CACHE``, else
``~/.cache/abcscale/jax``: a suite run with neither wrote about 200 programs (130 MB) into the user's own cache, and
every later run on that machine found them there, so a developer's `make test` ran about 50 s faster than CI's
fresh machine did (585 s against 533 s of pytest, 2026-12-07) and hid what the suite costs. Unless
``ABCSCALE_JAX_CACHE`` is set (a developer keeping a warm cache on purpose), the suite's processes share one
temporary folder, made by the first process (xdist's controller, whose environment the workers inherit) and
deleted when it ends."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading

import pytest

_OWN_CACHE: list[str] = []  # the compilation cache this process made for the suite, deleted at its end


def pytest_configure(config: pytest.Config) -> None:
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if "ABCSCALE_JAX_CACHE" not in os.environ:
        _OWN_CACHE.append(tempfile.mkdtemp(prefix="abcscale-test-jax-"))
        os.environ["ABCSCALE_JAX_CACHE"] = _OWN_CACHE[0]


def pytest_unconfigure(config: pytest.Config) -> None:
    for folder in _OWN_CACHE:
        shutil.rmtree(folder, ignore_errors=True)
