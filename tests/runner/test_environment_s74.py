"""A sweep folder's parts say where their runs trained (JAX's release, the device), and a sweep adding runs to a
folder whose parts trained elsewhere says so (session 74): the cell keys match across environments, so a folder
begun on a laptop's CPU and widened on a GPU (float32 products as TF32) or after a JAX upgrade mixed numbers that
are not bit-identical in one results.parquet, silently."""

from __future__ import annotations

import warnings

import pyarrow.parquet as pq
import pytest

from abcscale.runner.spec import SweepSpec
from abcscale.runner.store import ENV_META, SweepWarning, part_environment
from abcscale.runner.sweep import run_sweep

pytest.importorskip("jax")


def _spec(log2_lr: list[float]) -> SweepSpec:
    return SweepSpec(model="mlp", widths=[16], depth=1, seq_len=8, batch=4, steps=3, log2_lr=log2_lr,
                     data="synthetic", eval_batches=1, coord_steps=[])


def _parts(out):
    return sorted((out / "cells").glob("*.rows.parquet"))


def _said(log2_lr, out) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_sweep(_spec(log2_lr), out, progress=False)
    return [str(w.message) for w in caught if issubclass(w.category, SweepWarning)]


def _moved(path, env: str) -> None:
    """The part as another machine's sweep wrote it."""
    table = pq.read_table(path)
    pq.write_table(table.replace_schema_metadata({**table.schema.metadata, ENV_META: env.encode()}), path)


def test_a_part_records_where_it_trained_and_a_sweep_adding_to_another_machines_says_so(tmp_path):
    from abcscale.runner.train import environment

    out = tmp_path / "s"
    assert not [m for m in _said([-6.0], out) if "trained elsewhere" in m]
    (part,) = _parts(out)
    here = environment()
    assert part_environment(out, part.name.removesuffix(".rows.parquet")) == here
    assert here.startswith("jax ") and " on cpu" in here
    # widened where it began: nothing to say
    assert not [m for m in _said([-6.0, -5.0], out) if "trained elsewhere" in m]
    elsewhere = "jax 0.4.0 (jaxlib 0.4.0) on gpu (NVIDIA H100)"
    for path in _parts(out):
        _moved(path, elsewhere)
    # resumed with nothing to train: the folder is as it was, nothing mixed by this sweep
    assert not [m for m in _said([-6.0, -5.0], out) if "trained elsewhere" in m]
    said = [m for m in _said([-6.0, -5.0, -4.0], out) if "trained elsewhere" in m]
    assert len(said) == 1 and f"2 run(s) under {elsewhere}" in said[0] and f"this sweep trains under {here}" in said[0]
    # the new part says where it trained; the older ones keep theirs
    assert sorted(part_environment(out, p.name.removesuffix(".rows.parquet")) for p in _parts(out)) == \
        sorted([elsewhere] * (len(_parts(out)) - 1) + [here])
