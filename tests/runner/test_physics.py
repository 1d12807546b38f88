"""The physics (slow; ``ABCSCALE_RUN_SLOW=1``): where the optimal LR goes as the width grows.

The same check runs in ``make bench`` (tests/benchmarks/bench_runner.py), which prints the slopes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_sp_global_optimum_falls_with_width_and_mup_per_layer_does_not(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_runner import check_physics, physics_slopes

    # theory: -1 for standard + global (c_hidden = 1 binds a shared LR), 0 for muP per-layer
    check_physics(physics_slopes(tmp_path))
