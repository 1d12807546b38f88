"""A factory reference or a data path written another way is the same sweep (issue 18 item 3, never redo finished
work): ``models.py:make``, ``./models.py:make``, the absolute path and ``models:make`` name one model, and two
paths to the same bytes one corpus, so a rerun spelled differently trains nothing. Until session 32 the cell id
hashed the reference and the path as written and every run was trained again; stores tagged that way still
resume, and are retagged on first use."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import abcscale.runner.sweep as sw
from abcscale.runner.data import synthetic_tokens
from abcscale.runner.spec import SweepSpec
from abcscale.runner.store import CELL_META, part_cells, tag_part

USER_MODEL = Path(__file__).resolve().parents[2] / "examples" / "user_model.py"
EXECUTION = ["compile_s", "run_s"]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A user's checkout: the example model as ``um.py``, the working directory, and on sys.path."""
    (tmp_path / "um.py").write_text(USER_MODEL.read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("um", None)  # a key now lays the model out (imports it): the next project's um is its own


def _spec(model: str, **kw) -> SweepSpec:
    kw = {"log2_lr": [-6], "data": "synthetic", "seeds": 2} | kw
    return SweepSpec(model=model, widths=[16], depth=1, steps=3, batch=2, seq_len=8, eval_batches=1,
                     batching="single", **kw)


def _cid(spec: SweepSpec, **kw) -> str:
    return spec.cells()[0].base_key(spec, "data", **kw)


def test_one_model_however_its_factory_is_written(project):
    spellings = ["um.py:factory", "./um.py:factory", f"{project / 'um.py'}:factory", "um:factory"]
    assert len({_cid(_spec(ref)) for ref in spellings}) == 1
    assert len({_cid(_spec(ref), spelled=True) for ref in spellings}) == 4  # what older stores hashed
    (project / "other.py").write_text(USER_MODEL.read_text().replace("def factory(", "def make(", 1))
    assert _cid(_spec("other.py:make")) != _cid(_spec("um.py:factory"))  # same code, another factory name
    (project / "um2.py").write_text(USER_MODEL.read_text().replace("HEAD_DIM = 8", "HEAD_DIM = 4", 1))
    assert _cid(_spec("um2.py:factory")) != _cid(_spec("um.py:factory"))  # other code


def test_the_same_code_in_two_folders_is_two_models(project):
    """A code review's case: identical factory files that each read their own file beside them (an arch.json)
    shared a cell id, so a sweep of one resumed the other's runs."""
    for sub in ("a", "b"):
        (project / sub).mkdir()
        (project / sub / "um.py").write_text(USER_MODEL.read_text())
    assert _cid(_spec("a/um.py:factory")) != _cid(_spec("b/um.py:factory"))
    assert _cid(_spec("a/um.py:factory")) == _cid(_spec(f"{project}/a/../a/um.py:factory"))


def test_built_in_models_and_data_keep_their_ids():
    """Nothing to respell there: their ids are what they were, so every existing store resumes as before."""
    for spec in (_spec("mlp"), _spec("transformer", data="default")):
        assert _cid(spec) == _cid(spec, spelled=True)
        cell = spec.cells()[0]
        assert cell.key(spec, "d") == cell.key(spec, "d", spelled=True)


def test_one_corpus_however_its_path_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "a.npy", synthetic_tokens(5000).astype(np.int64))
    shutil.copy(tmp_path / "a.npy", tmp_path / "b.npy")
    a, b = _spec("mlp", data="a.npy"), _spec("mlp", data=str(tmp_path / "b.npy"))
    assert a.corpus().sha256 == b.corpus().sha256
    assert _cid(a) == _cid(b) and _cid(a, spelled=True) != _cid(b, spelled=True)


def _rows(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "results.parquet").drop(columns=EXECUTION)


def _counting(monkeypatch) -> list[int]:
    real, calls = sw.run_cell, []

    def counted(spec, cell, **kw):
        calls.append(len(kw.get("runs") or spec.runs()))
        return real(spec, cell, **kw)

    monkeypatch.setattr(sw, "run_cell", counted)
    return calls


@pytest.mark.e2e
def test_a_respelled_factory_trains_nothing_and_its_table_names_it_as_written(project, tmp_path, monkeypatch):
    out = tmp_path / "out"
    first = _spec("um.py:factory", log2_lr=[-6, -5])
    sw.run_sweep(first, out, progress=False)
    calls = _counting(monkeypatch)
    again = first.with_overrides(model=f"{project / 'um.py'}:factory")
    sw.run_sweep(again, out, progress=False)
    assert calls == []
    before = _rows(out)
    assert set(before["model"]) == {again.model}  # the table is this sweep's: the reference as now written
    # widened under the new spelling: only the new LR trains, the old runs keep their numbers bit for bit
    sw.run_sweep(again.with_overrides(log2_lr=[-6, -5, -4]), out, progress=False)
    assert calls == [2]  # one new LR x two seeds
    wide = _rows(out)
    pd.testing.assert_frame_equal(wide[wide["log2_lr"] < -4.5].reset_index(drop=True), before, check_exact=True)


@pytest.mark.e2e
def test_a_store_tagged_by_spelling_resumes_and_is_retagged(project, tmp_path, monkeypatch):
    """A folder written before this change: its parts carry the id that hashed the reference as written."""
    out = tmp_path / "out"
    spec = _spec("um.py:factory")
    sw.run_sweep(spec, out, progress=False)
    sha = spec.corpus().sha256
    old_id = spec.cells()[0].base_key(spec, sha, spelled=True)
    for key in part_cells(out):
        tag_part(out, key, old_id, pd.read_parquet(out / "cells" / f"{key}.rows.parquet"))
    calls = _counting(monkeypatch)
    again = spec.with_overrides(model="./um.py:factory")  # and respelled on top
    sw.run_sweep(again, out, progress=False)
    assert calls == []
    new_id = spec.cells()[0].base_key(spec, sha)
    assert set(part_cells(out).values()) == {new_id}
    for path in (out / "cells").glob("*.rows.parquet"):
        assert pq.read_schema(path).metadata[CELL_META].decode() == new_id
    sw.run_sweep(again.with_overrides(model="um:factory"), out, progress=False)  # no spec.json to alias by now
    assert calls == []
