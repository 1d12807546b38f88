"""Never redo finished work (issue 18 item 3): a rerun with a wider or denser LR grid, more seeds or more
widths trains only the runs it lacks, and its tables are the tables of one sweep of the larger spec. Stores
written before runs were addressed one by one still resume, and widen."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import abcscale.runner.sweep as sw
from abcscale.runner.spec import SweepSpec
from abcscale.runner.store import CELL_META

#: columns that say how a run was executed, not what it computed
EXECUTION = ["compile_s", "run_s"]


@pytest.fixture(scope="module")
def small() -> SweepSpec:
    # one run per call (the CPU default beyond width 64): a run's numbers do not depend on its neighbours
    return SweepSpec(model="mlp", widths=[8, 16], depth=1, log2_lr=[-6, -4], steps=10, batch=4, seq_len=8,
                     data="synthetic", eval_batches=2, batching="single", curves=True, coord_steps=[0, 9])


def _counting(monkeypatch) -> list[tuple[int, tuple]]:
    """Patch run_cell to record (width, runs) of every call."""
    real, calls = sw.run_cell, []

    def counted(spec, cell, **kw):
        calls.append((cell.width, tuple(kw.get("runs") or spec.runs())))
        return real(spec, cell, **kw)

    monkeypatch.setattr(sw, "run_cell", counted)
    return calls


def _tables(out: Path) -> dict[str, pd.DataFrame]:
    rows = pd.read_parquet(out / "results.parquet").drop(columns=EXECUTION)
    return {"rows": rows, "coord": pd.read_parquet(out / "coord.parquet"),
            "curves": pd.read_parquet(out / "curves.parquet")}


def _identical(a: Path, b: Path) -> None:
    """Same rows, same order, same values (exact), in every merged table."""
    ta, tb = _tables(a), _tables(b)
    for kind in ta:
        pd.testing.assert_frame_equal(ta[kind], tb[kind], check_exact=True, obj=kind)


@pytest.fixture(scope="module")
def fresh(small, tmp_path_factory):
    """One sweep of each larger spec, from nothing: what an incremental rerun must reproduce."""
    cache: dict[str, Path] = {}

    def get(spec: SweepSpec) -> Path:
        name = spec.model_dump_json()
        if name not in cache:
            cache[name] = tmp_path_factory.mktemp("fresh")
            sw.run_sweep(spec, cache[name], progress=False)
        return cache[name]

    return get


@pytest.mark.e2e
def test_a_wider_denser_grid_runs_only_the_new_learning_rates(small, fresh, tmp_path, monkeypatch):
    first = sw.run_sweep(small, tmp_path, progress=False)
    assert first.attrs == {"trained": 4, "reused": 0}  # what it trained, said to the CLI
    wider = small.with_overrides(log2_lr=[-8, -6, -5, -4, -2])
    calls = _counting(monkeypatch)
    rows = sw.run_sweep(wider, tmp_path, progress=False)
    new = ((-8.0, 0), (-5.0, 0), (-2.0, 0))
    assert sorted(calls) == [(8, new), (16, new)]  # 6 runs, not 10
    assert rows.attrs == {"trained": 6, "reused": 4}
    _identical(tmp_path, fresh(wider))
    calls.clear()
    back = sw.run_sweep(small, tmp_path, progress=False)  # back to the narrower grid: all there
    assert calls == [] and back.attrs == {"trained": 0, "reused": 4}
    _identical(tmp_path, fresh(small))


@pytest.mark.e2e
def test_more_seeds_and_widths_run_only_what_is_new(small, fresh, tmp_path, monkeypatch):
    sw.run_sweep(small.with_overrides(widths=[8]), tmp_path, progress=False)
    larger = small.with_overrides(seeds=2)
    calls = _counting(monkeypatch)
    sw.run_sweep(larger, tmp_path, progress=False)
    assert sorted(calls) == [(8, ((-6.0, 1), (-4.0, 1))), (16, tuple(larger.runs()))]
    _identical(tmp_path, fresh(larger))


def _as_old_code_wrote(out: Path) -> None:
    """Rewrite each committed rows file as the code before cell ids did (``DataFrame.to_parquet``, no
    cell id in its metadata)."""
    for path in (out / "cells").glob("*.rows.parquet"):
        pd.read_parquet(path).to_parquet(path, index=False)
        assert CELL_META not in (pq.read_schema(path).metadata or {})


@pytest.mark.e2e
def test_an_old_store_resumes_and_widens(small, fresh, tmp_path, monkeypatch):
    sw.run_sweep(small, tmp_path, progress=False)
    # every cell file is named by the cell's old key, as before
    sha = small.corpus().sha256
    assert sorted(p.name for p in (tmp_path / "cells").glob("*.rows.parquet")) == sorted(
        f"{c.key(small, sha)}.rows.parquet" for c in small.cells())
    _as_old_code_wrote(tmp_path)
    calls = _counting(monkeypatch)
    wider = small.with_overrides(log2_lr=[-6, -4, -2])  # the old parts are found through spec.json's spec
    sw.run_sweep(wider, tmp_path, progress=False)
    assert sorted(calls) == [(8, ((-2.0, 0),)), (16, ((-2.0, 0),))]
    _identical(tmp_path, fresh(wider))
    # the old parts were tagged on first use: found again although spec.json now names the wider spec
    for path in (tmp_path / "cells").glob("*.rows.parquet"):
        assert CELL_META in (pq.read_schema(path).metadata or {})
    calls.clear()
    sw.run_sweep(small, tmp_path, progress=False)
    assert calls == []


@pytest.mark.e2e
def test_an_old_store_of_the_same_spec_resumes_without_spec_json(small, tmp_path, monkeypatch):
    sw.run_sweep(small, tmp_path, progress=False)
    before = _tables(tmp_path)
    _as_old_code_wrote(tmp_path)
    (tmp_path / "spec.json").unlink()
    calls = _counting(monkeypatch)
    sw.run_sweep(small, tmp_path, progress=False)
    assert calls == []
    for kind, df in _tables(tmp_path).items():
        pd.testing.assert_frame_equal(df, before[kind], check_exact=True, obj=kind)


@pytest.mark.e2e
def test_vmapped_runs_added_later_agree_within_float_tolerance(small, tmp_path):
    """Under vmap a run's numbers depend on how many runs share its call (XLA picks other kernels), so
    runs added later agree with one larger sweep to float tolerance, not bit for bit."""
    # one width's calls show it (a second width compiled every program again: 1.6 CPU-s)
    spec = small.with_overrides(batching="vmap", chunk=4, widths=[8])
    sw.run_sweep(spec, tmp_path / "inc", progress=False)
    wider = spec.with_overrides(log2_lr=[-8, -6, -5, -4])
    inc = sw.run_sweep(wider, tmp_path / "inc", progress=False)
    one = sw.run_sweep(wider, tmp_path / "one", progress=False)
    cols = ["final_loss", "eval_loss", "loss_at_init"]
    assert inc[["width", "log2_lr", "seed"]].equals(one[["width", "log2_lr", "seed"]])
    pd.testing.assert_frame_equal(inc[cols], one[cols], rtol=1e-5)
