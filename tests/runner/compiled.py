"""A test's own programs compiled as the runner compiles its programs in these tests (``train.compiler_options``: the
LLVM level conftest sets, 0), not at ``jax.jit``'s default level, which took about twice the CPU to compile them
(test_init's draws of a depth-2 transformer and a depth-3 MLP: 7.3 CPU-s against 4.1, 2026-12-07)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

import abcscale.runner.train as tr


def jit(f: Callable[..., Any]) -> Callable[..., Any]:
    """``jax.jit(f)``, its positional arguments' shapes and dtypes compiled once each with the runner's options."""
    jitted = jax.jit(f)
    programs: dict[Any, Any] = {}

    def call(*args: Any) -> Any:
        leaves, tree = jax.tree.flatten(args)
        key = (tree, tuple((np.shape(x), jax.dtypes.result_type(x)) for x in leaves))
        if key not in programs:
            programs[key] = jitted.lower(*args).compile(tr.compiler_options())
        return programs[key](*args)

    return call
