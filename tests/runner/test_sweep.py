"""Sweeps: output files, resume after a crash (including SIGKILL), and the Ray executor."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

import abcscale.runner.sweep as sw
from abcscale.schemas.sweep import SweepRow

TIMING = ["compile_s", "run_s"]


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    key = ["parameterization", "width", "beta", "seed"]
    a = a.drop(columns=TIMING).sort_values(key).reset_index(drop=True)
    b = b.drop(columns=TIMING).sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, rtol=1e-6)


@pytest.fixture(scope="module")
def full(tiny_spec, tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    return out, sw.run_sweep(tiny_spec, out, progress=False)


@pytest.mark.e2e
def test_sweep_writes_tables(tiny_spec, full):
    out, df = full
    assert len(df) == len(tiny_spec.cells()) * len(tiny_spec.log2_lr) * tiny_spec.seeds
    on_disk = pd.read_parquet(out / "results.parquet")
    pd.testing.assert_frame_equal(on_disk, df)
    for r in df.to_dict("records"):
        SweepRow.model_validate(r)
    coord = pd.read_parquet(out / "coord.parquet")
    assert {"act_rms", "update_rms", "alignment_A", "layer", "step", "width"} <= set(coord.columns)
    assert json.loads((out / "spec.json").read_text())["widths"] == tiny_spec.widths
    assert not list(out.rglob("*.tmp"))


@pytest.mark.e2e
def test_resume_skips_finished_cells_and_matches(tiny_spec, full, tmp_path, monkeypatch):
    real, calls = sw.run_cell, []

    def crash_on_second(spec, cell, **kw):
        if calls:
            raise KeyboardInterrupt  # the process dies in the middle of the second cell
        calls.append(cell)
        return real(spec, cell, **kw)

    monkeypatch.setattr(sw, "run_cell", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        sw.run_sweep(tiny_spec, tmp_path, progress=False)
    assert len(list((tmp_path / "cells").glob("*.rows.parquet"))) == 1
    (tmp_path / "cells" / ".x.rows.parquet.999.tmp").write_bytes(b"half-written")  # a killed writer's leftover

    ran = []
    monkeypatch.setattr(sw, "run_cell", lambda spec, cell, **kw: ran.append(cell) or real(spec, cell, **kw))
    resumed = sw.run_sweep(tiny_spec, tmp_path, progress=False)
    assert ran == [c for c in tiny_spec.cells() if c != calls[0]]
    _same(resumed, full[1])
    ran.clear()
    sw.run_sweep(tiny_spec, tmp_path, progress=False)
    assert ran == []  # everything finished: nothing re-runs


@pytest.mark.e2e
def test_sigkill_mid_sweep_loses_only_the_cell_in_flight(tiny_spec, full, tmp_path):
    # The child finishes one cell, then stalls inside the next; we SIGKILL it there.
    code = f"""
import time, runner.sweep as sw
from abcscale.runner.spec import SweepSpec
real, n = sw.run_cell, []
def slow(spec, cell, **kw):
    if n:
        time.sleep(600)
    n.append(1)
    return real(spec, cell, **kw)
sw.run_cell = slow
sw.run_sweep(SweepSpec.model_validate_json({tiny_spec.model_dump_json()!r}), {str(tmp_path)!r}, progress=False)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy())
    try:
        deadline = time.time() + 120
        while not list((tmp_path / "cells").glob("*.rows.parquet")) and time.time() < deadline:
            assert proc.poll() is None, "the sweep exited early"
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(list((tmp_path / "cells").glob("*.rows.parquet"))) == 1
    for p in (tmp_path / "cells").glob("*.parquet"):
        pd.read_parquet(p)  # every committed file is whole
    _same(sw.run_sweep(tiny_spec, tmp_path, progress=False), full[1])


@pytest.mark.e2e
@pytest.mark.filterwarnings("ignore:os.fork")
def test_ray_executor_gives_the_same_rows(tiny_spec, full, tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        df = sw.run_sweep(tiny_spec, tmp_path, progress=False, executor="ray")
    finally:
        ray.shutdown()
    _same(df, full[1])


def test_unknown_executor(tiny_spec, tmp_path):
    with pytest.raises(ValueError, match="executor"):
        sw.run_sweep(tiny_spec, tmp_path, progress=False, executor="slurm")


@pytest.mark.parametrize("name", ["adam_scaled", "adam_atan2"])
def test_rows_record_epsilons_exactly_when_the_variant_uses_them(tiny_spec, name):
    from abcscale.runner.optim import variant

    spec = tiny_spec.with_overrides(optimizers=name, widths=[8], log2_lr=[-4])
    rows = sw.run_cell(spec, spec.cells()[0]).rows
    cols = {"epsilon_embedding", "epsilon_hidden", "epsilon_readout"}
    assert (cols <= set(rows.columns)) == variant(name).uses_epsilon
    assert not (cols & set(rows.columns)) or (rows[sorted(cols)] > 0).all().all()


def test_an_unknown_variant_is_an_error_naming_the_registry(tiny_spec):
    cell = tiny_spec.cells()[0].model_copy(update={"optimizer": "lion"})
    with pytest.raises(ValueError, match="OPTIMIZER_VARIANTS"):
        sw.run_cell(tiny_spec, cell)
