"""Session 78's review of the runner's "never redo finished work": a sweep under JAX's 64-bit mode
(``JAX_ENABLE_X64=1``, or ``jax.config.update`` in a notebook), whose draws of the data windows and the init take
another algorithm (``runner.draws.shared_draw``), stopped with a raw TypeError (the program takes int32 window starts;
x64 draws int64) or, from a kept program, joined a folder's runs as if they were the same runs (same cell keys, same
environment label): 0.02 apart in eval loss. Its runs are now other cells, and their parts say x64."""

from __future__ import annotations

import jax
import pandas as pd
import pyarrow.parquet as pq
import pytest

from abcscale.runner import sweep as sw
from abcscale.runner.spec import SweepSpec
from abcscale.runner.store import ENV_META, SweepWarning

# one width, SGD's shapes below: one cell shows a folder's runs kept apart (a second width compiled both modes'
# programs again, 3 CPU-s)
TINY = {"model": "mlp", "widths": [8], "depth": 1, "steps": 6, "batch": 2, "seq_len": 8, "data": "synthetic",
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
    with pytest.warns(SweepWarning, match=r"holds 1 part\(s\) of this sweep's cells trained without JAX's 64-bit mode"
                      r".*rerun without JAX_ENABLE_X64 to list them again"):  # listed in their place: said
        widened = _sorted(_x64_sweep(tmp_path / "mixed", dense))  # the TypeError, or a silent mix, before
    alone = _sorted(_x64_sweep(tmp_path / "x64", dense))
    cols = ["width", "log2_lr", "seed", "eval_loss", "final_loss"]
    pd.testing.assert_frame_equal(widened[cols], alone[cols])  # every run of its own, none of the folder's
    old = widened[widened.log2_lr.isin([-8, -6])].reset_index(drop=True)
    assert (old["eval_loss"].to_numpy() != plain["eval_loss"].to_numpy()).all()  # other draws: other runs
    # the parts say where they trained; the earlier runs' stay, and a sweep without x64 lists them again
    envs = {f.name: (pq.read_schema(f).metadata or {}).get(ENV_META, b"").decode()
            for f in (tmp_path / "mixed" / "cells").glob("*.rows.parquet")}
    assert sum(", x64;" in e for e in envs.values()) == 1 and sum(", x64" not in e for e in envs.values()) == 1, envs
    with pytest.warns(SweepWarning, match=r"holds 1 part\(s\) of this sweep's cells trained under JAX's 64-bit"):
        again = _sorted(sw.run_sweep(coarse, tmp_path / "mixed", progress=False))
    pd.testing.assert_frame_equal(again[cols], plain[cols])
    assert {c.key(coarse, "d") for c in coarse.cells()}.isdisjoint(_x64_keys(coarse))


def _x64_keys(spec: SweepSpec) -> set[str]:
    jax.config.update("jax_enable_x64", True)
    try:
        return {c.key(spec, "d") for c in spec.cells()}
    finally:
        jax.config.update("jax_enable_x64", False)


def _parts(out) -> list[str]:
    return sorted(p.name for p in (out / "cells").glob("*.rows.parquet"))


SGD = {**TINY, "widths": [8], "steps": 6, "batch": 2, "log2_lr": [-6, -5], "optimizers": ["sgd"]}


def test_settings_no_run_reads_train_nothing_again(tmp_path):
    """The data's byte cap (the tokens read are the same: data_hash) and an epsilon (or its scaling mode) SGD never
    divides by trained every run again (the sweep itself said the epsilon "changed nothing"); an epsilon Adam reads
    still does."""
    out = tmp_path / "o"
    first = _sorted(sw.run_sweep(SweepSpec(**SGD), out, progress=False))
    parts = _parts(out)
    again = _sorted(sw.run_sweep(SweepSpec(**SGD, epsilon=1e-6, epsilon_mode="constant", max_bytes=3_000_000), out,
                                 progress=False))
    assert _parts(out) == parts  # nothing trained
    pd.testing.assert_frame_equal(again[["log2_lr", "eval_loss"]], first[["log2_lr", "eval_loss"]])
    adam = {**SGD, "optimizers": ["adam"]}
    sw.run_sweep(SweepSpec(**adam), out, progress=False)
    n = len(_parts(out))
    sw.run_sweep(SweepSpec(**adam, epsilon=1e-6), out, progress=False)
    assert len(_parts(out)) == n + 1  # Adam reads it: other runs


def test_a_folder_keyed_before_session_78_resumes_without_training(tmp_path):
    """Parts tagged with the ids an older version gave (the byte cap and every epsilon in them) are this version's
    cells: nothing trains again, nothing is rewritten, and a later change of what no run reads still finds them."""
    import hashlib

    from abcscale.runner.store import committed_rows, part_cells, tag_part

    out, spec = tmp_path / "o", SweepSpec(**SGD, epsilon=1e-6)
    first = _sorted(sw.run_sweep(spec, out, progress=False))
    sha = spec.corpus().sha256
    (cell,) = spec.cells()
    old = cell.base_key(spec, sha, unread=True)
    assert old != cell.base_key(spec, sha)
    for key in part_cells(out):
        tag_part(out, key, old, committed_rows(out, key))
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (out / "cells").iterdir()}
    again = _sorted(sw.run_sweep(spec, out, progress=False))
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (out / "cells").iterdir()} == digests
    pd.testing.assert_frame_equal(again[["log2_lr", "eval_loss"]], first[["log2_lr", "eval_loss"]])
    later = _sorted(sw.run_sweep(SweepSpec(**SGD, epsilon=1e-3, max_bytes=3_000_000), out, progress=False))
    assert _parts(out) == [n for n in sorted(digests) if n.endswith(".rows.parquet")]  # still nothing trained
    pd.testing.assert_frame_equal(later[["log2_lr", "eval_loss"]], first[["log2_lr", "eval_loss"]])


def test_a_ray_worker_in_the_other_x64_mode_is_named_with_its_remedy():
    """A notebook's jax.config.update("jax_enable_x64", True) is not the cluster's: its workers computed other cell
    ids and the sweep failed with "another build of abcscale"."""
    spec = SweepSpec(**SGD)
    plain = sw.worker_identity(spec)
    jax.config.update("jax_enable_x64", True)
    try:
        driver = sw.worker_identity(spec)
    finally:
        jax.config.update("jax_enable_x64", False)
    assert (driver["JAX x64"], plain["JAX x64"]) == ("on", "off")
    differ = sw.identity_differs(driver, plain)
    assert differ == ["JAX x64"]
    said = str(sw.stale_worker("sweep", driver, plain, differ))
    assert said.startswith("executor: ") and "runs JAX's 64-bit mode off, the sweep's process on" in said
    assert "set JAX_ENABLE_X64 alike where the cluster starts" in said, said


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_tunes_runs_raise_a_ctrl_c_a_gc_callback_swallowed(monkeypatch):
    """`tune --verify-widths` ran its transfer check to the end and exited 0 after a Ctrl-C that landed in JAX's
    garbage-collection callback (Python prints "Exception ignored" and goes on): the search's runs and the check's
    sweeps now raise it once they end, as a sweep's chunks do."""
    from abcscale.runner import train
    from abcscale.runner import tune as rt
    from tests.runner.test_sweep_review_s57 import _swallowed_interrupt

    spec = SweepSpec(**SGD, base_width=8)
    real_cell, real_program = sw.run_cell, train.run_program

    def cell_swallowing(*a, **kw):
        _swallowed_interrupt()
        return real_cell(*a, **kw)

    def program_swallowing(*a, **kw):
        _swallowed_interrupt()
        return real_program(*a, **kw)

    monkeypatch.setattr(sw, "run_cell", cell_swallowing)
    with pytest.raises(KeyboardInterrupt):
        rt.lr_sweep(spec, spec.constants, 8, [-6.0], 1)
    monkeypatch.setattr(train, "run_program", program_swallowing)
    with pytest.raises(KeyboardInterrupt):
        rt.Evaluator(spec)(spec.constants, 2.0**-6, 0)
    monkeypatch.setattr(train, "run_program", real_program)
    assert rt.Evaluator(spec)(spec.constants, 2.0**-6, 0) > 0  # without one, the run's loss
