"""Session 78's review of the runner's "never redo finished work": a sweep under JAX's 64-bit mode
(``JAX_ENABLE_X64=1``, or ``jax.config.update`` in a notebook), whose draws of the data windows and the init take
another algorithm (``runner.draws.shared_draw``), stopped with a raw TypeError (the program takes int32 window starts;
x64 draws int64) or, from a kept program, joined a folder's runs as if they were the same runs (same cell keys, same
environment label): 0.02 apart in eval loss. Its runs are now other cells, and their parts say x64."""

from __future__ import annotations

import jax
import pandas as pd
import pyarrow.parquet as pq

from abcscale.runner import sweep as sw
from abcscale.runner.spec import SweepSpec
from abcscale.runner.store import ENV_META

TINY = {"model": "mlp", "widths": [8, 16], "depth": 1, "steps": 12, "batch": 4, "seq_len": 8, "data": "synthetic",
        "seeds": 1}
KEYS = ["width", "log2_lr", "seed"]


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(KEYS).reset_index(drop=True)


def _x64_sweep(out, spec: SweepSpec) -> pd.DataFrame:
    jax.config.update("jax_enable_x64", True)
    try:
        return sw.run_sweep(spec, out, progress=False)
    finally:
        jax.config.update("jax_enable_x64", False)


def test_an_x64_sweep_trains_its_own_cells_beside_a_folders_runs_and_says_x64(tmp_path):
    coarse, dense = SweepSpec(**TINY, log2_lr=[-8, -6]), SweepSpec(**TINY, log2_lr=[-8, -7, -6])
    plain = _sorted(sw.run_sweep(coarse, tmp_path / "mixed", progress=False))
    widened = _sorted(_x64_sweep(tmp_path / "mixed", dense))  # the TypeError, or a silent mix, before
    alone = _sorted(_x64_sweep(tmp_path / "x64", dense))
    cols = ["width", "log2_lr", "seed", "eval_loss", "final_loss"]
    pd.testing.assert_frame_equal(widened[cols], alone[cols])  # every run of its own, none of the folder's
    old = widened[widened.log2_lr.isin([-8, -6])].reset_index(drop=True)
    assert (old["eval_loss"].to_numpy() != plain["eval_loss"].to_numpy()).all()  # other draws: other runs
    # the parts say where they trained; the earlier runs' stay, and a sweep without x64 lists them again
    envs = {f.name: (pq.read_schema(f).metadata or {}).get(ENV_META, b"").decode()
            for f in (tmp_path / "mixed" / "cells").glob("*.rows.parquet")}
    assert sum(", x64;" in e for e in envs.values()) == 2 and sum(", x64" not in e for e in envs.values()) == 2, envs
    again = _sorted(sw.run_sweep(coarse, tmp_path / "mixed", progress=False))
    pd.testing.assert_frame_equal(again[cols], plain[cols])
    assert {c.key(coarse, "d") for c in coarse.cells()}.isdisjoint(_x64_keys(coarse))


def _x64_keys(spec: SweepSpec) -> set[str]:
    jax.config.update("jax_enable_x64", True)
    try:
        return {c.key(spec, "d") for c in spec.cells()}
    finally:
        jax.config.update("jax_enable_x64", False)
