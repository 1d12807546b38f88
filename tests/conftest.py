"""What every test folder shares: Ctrl-C as a terminal gives it.

A shell without job control starts a background command with SIGINT ignored (`make test &` in a script, a CI runner's
step started that way), and every process below it inherits that: the tests that press Ctrl-C on a real sweep, a
real server or a CLI waiting on a service then see nothing happen and fail (five did, session 77). What they test is
what the program does with a Ctrl-C, not how the suite was started, so the suite takes Python's own handler back.
The processes the tests start then begin with the default action, as from a terminal (a caught signal's handler
is reset by exec; an ignored one is not)."""

from __future__ import annotations

import signal
import threading

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
