"""Session 71: a Ray run (`sweep --executor ray`, `tune --ray`) printed two notes that ask nothing of the user on
every start: Ray's "Token authentication is enabled for this Ray cluster" (its default) and JAX's "os.fork() was
called ... will likely lead to a deadlock" (Ray starts its processes by fork and exec, which inherits no lock).
``runner.sweep.start_ray`` drops exactly those two; Ray's other messages stay."""

from __future__ import annotations

import logging
import warnings

import pytest

ray = pytest.importorskip("ray")


def test_starting_ray_drops_the_two_false_alarms_and_nothing_else(capfd):
    import jax

    from abcscale.runner.sweep import start_ray

    jax.numpy.zeros(3).block_until_ready()  # a live backend (its threads) is what JAX's at-fork hook warns of

    if ray.is_initialized():  # another test's cluster in this worker
        ray.shutdown()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start_ray(None)
            assert ray.is_initialized()
            start_ray(None)  # once per process: a second call joins what is there
    finally:
        ray.shutdown()
    forks = [str(w.message) for w in caught if "os.fork" in str(w.message)]
    assert not forks, forks
    err = capfd.readouterr().err
    assert "Token authentication is enabled" not in err, err
    # the filter is that one note's: a warning that authentication is off still shows
    logger = logging.getLogger("ray._private.authentication.authentication_token_setup")
    assert not logger.filters[-1].filter(logging.makeLogRecord({"msg": "Token authentication is enabled for x"}))
    assert logger.filters[-1].filter(logging.makeLogRecord({"msg": "Token authentication is disabled for x"}))
