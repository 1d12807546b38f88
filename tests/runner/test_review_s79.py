"""Session 79: the test suite runs under ``JAX_DISABLE_MOST_OPTIMIZATIONS=1`` (tests/conftest.py), which compiles
JAX's programs at LLVM level 0 without the expensive passes. The runner's own programs must not change with it:
their options set the level and the passes back, so a process with the flag trains what a user's process trains
(and the runner tests test that)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import abcscale.runner.train as tr
from abcscale.runner import sweep as sw

FLAG = "jax_disable_most_optimizations"


@pytest.fixture
def flag():
    before = jax.config.values[FLAG]
    yield lambda on: jax.config.update(FLAG, on)
    jax.config.update(FLAG, before)


@pytest.mark.parametrize("level", ["0", "1", ""])
def test_the_flag_leaves_the_runners_options_as_they_were(flag, monkeypatch, level):
    monkeypatch.setenv("ABCSCALE_XLA_OPT_LEVEL", level)
    flag(False)
    plain = tr.compiler_options()
    flag(True)
    with_it = tr.compiler_options()
    # XLA's default level (3) where the runner sets none: the flag would make it 0
    assert with_it == {"xla_backend_optimization_level": int(level or 3), **plain,
                       "xla_llvm_disable_expensive_passes": False}


def test_a_cell_trains_bit_identically_with_the_flag(flag, tiny_spec, tmp_path, monkeypatch):
    monkeypatch.setenv("ABCSCALE_JAX_CACHE", str(tmp_path))  # each compiled here, none loaded from the other
    spec = tiny_spec.with_overrides(widths=[16], optimizers=["adam"])
    losses = {}
    for on in (False, True):
        flag(on)
        rows = sw.run_cell(spec, spec.cells()[0]).rows
        losses[on] = rows.sort_values(["log2_lr", "seed"])[["final_loss", "eval_loss"]].to_numpy()
    np.testing.assert_array_equal(losses[True], losses[False])


def test_off_the_cpu_the_flag_is_set_back_too(flag, monkeypatch):
    """The flag's level 0 holds on every backend (JAX sets it in each compile's options); a GPU's options are
    XLA's defaults, so they are set back to those (a review: a GPU run under the flag compiled at level 0)."""
    monkeypatch.setattr(tr.jax, "default_backend", lambda: "gpu")
    flag(False)
    assert tr.compiler_options() == {}
    flag(True)
    assert tr.compiler_options() == {"xla_backend_optimization_level": 3, "xla_llvm_disable_expensive_passes": False}
