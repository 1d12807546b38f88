"""Sweeps: output files, resume after a crash (including SIGKILL), damaged cell files, one sweep per folder,
and the Ray executor."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys

import pandas as pd
import pytest

import abcscale.runner.sweep as sw
from abcscale.cli import main
from abcscale.runner.store import SweepBusy, SweepWarning, folder_lock
from abcscale.schemas.sweep import SweepRow
from tests.helpers import wait_for_file

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
    # The table is the cells' rows in the spec's cell order, as every partial rewrite is.
    pd.testing.assert_frame_equal(df, pd.concat(_cell_rows(tiny_spec, out), ignore_index=True))
    assert (out / ".sweep.lock").read_text() == ""  # released: no pid left for the next sweep to call stale


def _cell_rows(spec, out) -> list[pd.DataFrame]:
    """The committed rows files of ``spec``'s cells, in the spec's cell order (uncommitted cells left out)."""
    sha = spec.corpus().sha256
    paths = [out / "cells" / f"{c.key(spec, sha)}.rows.parquet" for c in spec.cells()]
    return [pd.read_parquet(p) for p in paths if p.exists()]


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
    # A first run that dies still leaves a readable table: the finished cell's rows.
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "results.parquet"), _cell_rows(tiny_spec, tmp_path)[0])
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
def test_sigkill_mid_sweep_loses_only_the_cell_in_flight(tiny_spec, full, tmp_path, capsys):
    # The child finishes one cell, then stalls inside the next (saying so in a file: the first cell's commit is done
    # by then, on any machine's speed); we SIGKILL it there.
    stalled = tmp_path.parent / f"{tmp_path.name}.stalled"
    code = f"""
import pathlib, time, runner.sweep as sw
from abcscale.runner.spec import SweepSpec
real, n = sw.run_cell, []
def slow(spec, cell, **kw):
    if n:
        pathlib.Path({str(stalled)!r}).touch()
        time.sleep(600)
    n.append(1)
    return real(spec, cell, **kw)
sw.run_cell = slow
sw.run_sweep(SweepSpec.model_validate_json({tiny_spec.model_dump_json()!r}), {str(tmp_path)!r}, progress=False)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy())
    try:
        wait_for_file(stalled, proc, "its second cell", poll=0.2)
        # A second sweep into the folder refuses while the first lives, naming the folder and its pid...
        with pytest.raises(SweepBusy, match=f"{re.escape(str(tmp_path))}.*pid {proc.pid}"):
            sw.run_sweep(tiny_spec, tmp_path, progress=False)
        # ... and on the command line that is one line and exit 2.
        with pytest.raises(SystemExit) as exc:
            main(["sweep", "--model", "mlp", "--widths", "8", "--data", "synthetic", "--out", str(tmp_path), "-q"])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and len(err.strip().splitlines()) == 1
        assert str(tmp_path) in err and f"pid {proc.pid}" in err and "Traceback" not in err
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(list((tmp_path / "cells").glob("*.rows.parquet"))) == 1
    for p in (tmp_path / "cells").glob("*.parquet"):
        pd.read_parquet(p)  # every committed file is whole
    # The killed first run left a readable results.parquet with the finished cell's rows.
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "results.parquet"), _cell_rows(tiny_spec, tmp_path)[0])
    with pytest.warns(SweepWarning, match=f"lock of sweep pid {proc.pid}"):  # the dead sweep's lock
        resumed = sw.run_sweep(tiny_spec, tmp_path, progress=False)
    _same(resumed, full[1])


@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["rows", "coord"])
def test_a_damaged_cell_file_is_moved_aside_and_its_cell_recomputed(tiny_spec, full, tmp_path, monkeypatch, kind):
    out = tmp_path / "o"
    shutil.copytree(full[0], out)
    cell = tiny_spec.cells()[1]
    bad = out / "cells" / f"{cell.key(tiny_spec, tiny_spec.corpus().sha256)}.{kind}.parquet"
    whole = bad.read_bytes()
    bad.write_bytes(whole[: len(whole) // 2])  # a disk that filled up, a copy cut short
    real, ran = sw.run_cell, []
    monkeypatch.setattr(sw, "run_cell", lambda spec, c, **kw: ran.append(c) or real(spec, c, **kw))
    with pytest.warns(SweepWarning, match=f"{re.escape(bad.name)}.*moved aside") as record:
        df = sw.run_sweep(tiny_spec, out, progress=False)
    assert str(bad) in str(record[0].message)
    assert ran == [cell]  # only the damaged cell runs again
    _same(df, full[1])
    assert df["width"].tolist() == full[1]["width"].tolist()  # same row order as the uninterrupted run
    kept = bad.with_name(bad.name + ".damaged")
    assert kept.read_bytes() == whole[: len(whole) // 2]  # the damaged file is kept as it was, not deleted
    pd.read_parquet(bad)  # and a whole one stands in its place
    ran.clear()
    sw.run_sweep(tiny_spec, out, progress=False)
    assert ran == []


def test_a_held_folder_refuses_a_second_sweep(tiny_spec, tmp_path):
    busy = re.escape(f"sweep folder {tmp_path} is in use by another sweep (pid {os.getpid()})")
    with folder_lock(tmp_path):
        with pytest.raises(SweepBusy, match=busy):
            sw.run_sweep(tiny_spec, tmp_path, progress=False)
        assert not (tmp_path / "spec.json").exists()  # refused before writing anything
    assert (tmp_path / ".sweep.lock").read_text() == ""


def test_a_stale_lock_is_taken_over_with_a_warning(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".sweep.lock").write_text(f"{dead.pid}\n")  # what a killed sweep leaves
    with pytest.warns(SweepWarning, match=f"lock of sweep pid {dead.pid}"), folder_lock(tmp_path):
        assert (tmp_path / ".sweep.lock").read_text() == f"{os.getpid()}\n"


@pytest.mark.e2e
@pytest.mark.filterwarnings("ignore:os.fork")
def test_ray_executor_gives_the_same_rows(tiny_spec, full, tmp_path):
    ray = pytest.importorskip("ray")
    # One CPU: Ray starts a worker process per CPU (each imports JAX, 2.5 CPU-s); the one worker runs both cells
    # (the second in a worker reused, as a cluster's are), and the rows come back through the same path.
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
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
    cell = tiny_spec.cells()[0].model_copy(update={"optimizer": "sophia"})
    with pytest.raises(ValueError, match="OPTIMIZER_VARIANTS"):
        sw.run_cell(tiny_spec, cell)
