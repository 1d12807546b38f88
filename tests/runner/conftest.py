"""Runner tests: tiny widths, few steps. Slow tests (``@pytest.mark.slow``) run only with
``ABCSCALE_RUN_SLOW=1`` or ``-m slow``."""

from __future__ import annotations

import os

import pytest

# Tiny programs: LLVM optimisation level 0 compiles several times faster and runs about as fast.
os.environ.setdefault("ABCSCALE_XLA_OPT_LEVEL", "0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("ABCSCALE_RUN_SLOW") == "1" or "slow" in (config.option.markexpr or ""):
        # the slow tests first: the physics check (the suite's longest: 78 CPU-s alone from a cold compilation cache
        # on the shared 2 cores, 2026-12-07) starts on the first worker at once
        # (`--dist worksteal` gives each worker a contiguous half of this order), never last beside an idle one
        items.sort(key=lambda item: "slow" not in item.keywords)  # stable: the rest keep their order
        return
    skip = pytest.mark.skip(reason="slow: set ABCSCALE_RUN_SLOW=1 or pass -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_spec():
    from abcscale.runner.spec import SweepSpec

    return SweepSpec(model="mlp", widths=[8, 16], depth=1, log2_lr="-6:-2:2", steps=12, batch=4, seq_len=8,
                     data="synthetic", eval_batches=2, batching="vmap", chunk=4)
