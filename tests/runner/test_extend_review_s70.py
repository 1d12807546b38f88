"""A review of "finished runs are never redone" (session 70) as users extend a sweep folder: a rerun with
--curves off (or no coord steps) left a partial table of the runs done before beside none of the new ones; runs
recorded at other coord steps than the default were mixed into coord.parquet unsaid; a SIGKILLed writer's
half-written temporary file stayed in the folder for good; a grid written "-0" kept the sign in log2_lr; and a
custom (a, b) table added to a sweep made every existing cell another, so all of them trained again."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest

import abcscale.runner.sweep as sw
from abcscale.runner.spec import SweepSpec
from abcscale.runner.store import SweepWarning, part_cells, tag_part
from tests.helpers import wait_for_file

#: how a run was executed (wall times), not what it computed
TIMING = ["compile_s", "run_s"]


@pytest.fixture(scope="module")
def small() -> SweepSpec:
    # one width: what these tests count is runs and cells, one width's as well as two's (a second width compiled
    # each test's programs again)
    return SweepSpec(model="mlp", widths=[8], depth=1, log2_lr=[-6, -4], steps=6, batch=2, seq_len=8,
                     data="synthetic", eval_batches=1, batching="single")


def _tables(out: Path) -> dict[str, pd.DataFrame]:
    found = {name: pd.read_parquet(out / name) for name in ("results.parquet", "coord.parquet", "curves.parquet")
             if (out / name).exists()}
    found["results.parquet"] = found["results.parquet"].drop(columns=TIMING)
    return found


def _same_as_fresh(out: Path, spec: SweepSpec, fresh: Path) -> None:
    sw.run_sweep(spec, fresh, progress=False)
    mine, theirs = _tables(out), _tables(fresh)
    assert sorted(mine) == sorted(theirs)  # the same tables: none left over from the runs before
    for name, df in theirs.items():
        pd.testing.assert_frame_equal(mine[name], df, check_exact=True, obj=name)


def _said(spec: SweepSpec, out: Path) -> str:
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        sw.run_sweep(spec, out, progress=False)
    return " | ".join(str(w.message) for w in got if issubclass(w.category, SweepWarning))


@pytest.mark.e2e
@pytest.mark.parametrize(("table", "before", "after"), [
    ("curves.parquet", {"curves": True}, {"curves": False}),
    ("coord.parquet", {"coord_steps": None}, {"coord_steps": []}),
])
def test_a_table_the_extended_spec_does_not_record_is_removed(small, tmp_path, table, before, after):
    """Widened with --curves off, curves.parquet kept the curves of the runs done before and none of the new ones,
    unsaid; one sweep of that spec writes no curves.parquet. Likewise coord.parquet with no coord steps."""
    sw.run_sweep(small.model_copy(update=before), tmp_path / "out", progress=False)
    wider = small.with_overrides(log2_lr=[-8, -6, -4], **after)
    said = _said(wider, tmp_path / "out")
    assert f"{table} removed" in said
    _same_as_fresh(tmp_path / "out", wider, tmp_path / "fresh")
    # the cell files kept them: asked for again, the 2 runs that had them (of 3) list them
    sw.run_sweep(wider.model_copy(update=before), tmp_path / "out", progress=False)
    assert len(pd.read_parquet(tmp_path / "out" / table)[["width", "beta"]].drop_duplicates()) == 2


@pytest.mark.e2e
@pytest.mark.parametrize("later", [None, [0, 1, 3, 5]])  # the default steps, left out or written out
def test_runs_recorded_at_other_coord_steps_are_said(small, tmp_path, later):
    """Runs recorded at --coord-steps 0,5 and a widening rerun at the default steps (0, 1, 3, 5): coord.parquet
    mixed the two unsaid (the check compared the table's pooled steps, and only with --coord-steps given)."""
    sw.run_sweep(small.model_copy(update={"coord_steps": [0, 5]}), tmp_path, progress=False)
    said = _said(small.with_overrides(log2_lr=[-8, -6, -4], coord_steps=later), tmp_path)
    assert "--coord-steps: 2 of 3 runs were done before and recorded steps [0, 5], not [0, 1, 3, 5]" in said
    coord = pd.read_parquet(tmp_path / "coord.parquet")
    assert sorted(coord.groupby(["width", "beta"])["step"].nunique()) == [2, 2, 4]  # what it says


@pytest.mark.e2e
def test_a_sigkilled_writers_temporary_file_is_removed_on_resume(small, tmp_path):
    """kill -9 between a part's write and its rename left `.KEY.rows.parquet.PID.tmp` in cells/, never read nor
    removed. The child stalls in that fsync (saying so in a file), and is killed there."""
    spec = small.with_overrides(widths=[8], log2_lr=[-6])
    stalled, out = tmp_path / "stalled", tmp_path / "out"
    code = f"""
import os, pathlib, time
import abcscale.runner.store as st, abcscale.runner.sweep as sw
from abcscale.runner.spec import SweepSpec
real = os.fsync
def stall(fd):
    real(fd)
    name = os.readlink(f"/proc/self/fd/{{fd}}")
    if name.endswith(".tmp") and ".rows.parquet" in name:
        pathlib.Path({str(stalled)!r}).touch()
        time.sleep(600)
st.os.fsync = stall
sw.run_sweep(SweepSpec.model_validate_json({spec.model_dump_json()!r}), {str(out)!r}, progress=False)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy())
    try:
        wait_for_file(stalled, proc, "its commit", poll=0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert [p.name for p in (out / "cells").glob(".*.tmp")], "the kill left no temporary file to clear"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SweepWarning)  # the dead sweep's lock, taken over
        sw.run_sweep(spec, out, progress=False)
    assert sorted(p.name for p in out.rglob("*tmp*")) == []
    assert len(pd.read_parquet(out / "results.parquet")) == 1


def test_a_grid_written_minus_zero_is_log2_lr_zero():
    """`--log2-lr -1,-0` trained its run at 0 (one run with 0.0), but its rows kept -0.0: widened to -1:1:0.5,
    the table differed from one sweep of it in log2_lr's sign bit."""
    for grid in ("-1,-0", [-1, -0.0], "-0", -0.0):
        assert [math.copysign(1.0, g) for g in SweepSpec(log2_lr=grid).log2_lr][-1] == 1.0


def _counting(monkeypatch) -> list[str]:
    real, calls = sw.run_cell, []

    def counted(spec, cell, **kw):
        calls.append(f"{cell.parameterization}/{cell.width}")
        return real(spec, cell, **kw)

    monkeypatch.setattr(sw, "run_cell", counted)
    return calls


#: an (a, b) table of the user's, as custom_tables takes it
MINE = {"mine": {layer: {"a": 0.0, "b": 0.5} for layer in ("embedding", "hidden", "readout")}}


@pytest.mark.e2e
def test_a_custom_table_added_trains_only_its_cells(small, tmp_path, monkeypatch):
    """A cell's id held every custom table of the spec: adding one (to sweep it) made the muP cells others, and the
    rerun trained them again."""
    sw.run_sweep(small, tmp_path / "out", progress=False)
    more = small.with_overrides(custom_tables=MINE, parameterizations=["mup", "mine"])
    calls = _counting(monkeypatch)
    sw.run_sweep(more, tmp_path / "out", progress=False)
    assert sorted(calls) == ["mine/8"]
    monkeypatch.undo()
    _same_as_fresh(tmp_path / "out", more, tmp_path / "fresh")


@pytest.mark.e2e
def test_parts_tagged_with_every_table_still_resume(small, tmp_path, monkeypatch):
    """A folder whose parts carry the ids of before (every custom table hashed): resumed, nothing trains, and the
    parts are retagged with today's ids."""
    spec = small.with_overrides(custom_tables=MINE, parameterizations=["mup", "mine"])
    sw.run_sweep(spec, tmp_path, progress=False)
    sha = spec.corpus().sha256
    old = {c.base_key(spec, sha): c.base_key(spec, sha, all_tables=True) for c in spec.cells()}
    assert sum(new != before for new, before in old.items()) == 1  # the muP cell's id changed, mine's did not
    for key, cid in part_cells(tmp_path).items():
        rows = pd.read_parquet(tmp_path / "cells" / f"{key}.rows.parquet")
        tag_part(tmp_path, key, old[cid or ""], rows)  # as the code before wrote them
    calls = _counting(monkeypatch)
    sw.run_sweep(spec, tmp_path, progress=False)
    assert calls == []
    assert sorted(part_cells(tmp_path).values()) == sorted(old)  # retagged: found without spec.json's help too


@pytest.mark.e2e
def test_coord_and_curves_rows_say_their_optimizer_variant_and_gamma(small, tmp_path):
    """`-o adam,adam_atan2` and swept gammas: coord and curves rows named only the optimizer family and no gamma,
    so two cells' rows were the same key (a review); the merged tables carry the cell's variant and gammas, filled
    at the merge, so a folder extended from parts written before gives the same tables as one sweep."""
    spec = small.with_overrides(widths=[8], optimizers=["adam", "adam_atan2"], curves=True, coord_steps=[0, 5])
    out = tmp_path / "out"
    sw.run_sweep(spec.with_overrides(log2_lr=[-6]), out, progress=False)
    sw.run_sweep(spec, out, progress=False)  # widened: the parts of both sweeps merged
    tables = _tables(out)
    for name, keys in (("coord.parquet", ["step", "layer"]), ("curves.parquet", ["step"])):
        df = tables[name]
        assert set(df["optimizer_variant"]) == {"adam", "adam_atan2"}, name
        ident = ["parameterization", "optimizer_variant", "alignment", "lr_mode", "width", "beta", "seed",
                 "gamma_embedding", "gamma_hidden", "gamma_readout", *keys]
        assert not df.duplicated(ident).any(), name
        assert df.duplicated([c for c in ident if c != "optimizer_variant"]).any(), name  # the family alone: not
    _same_as_fresh(out, spec, tmp_path / "fresh")
