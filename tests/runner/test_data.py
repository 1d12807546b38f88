"""Offline data sources: default corpus, synthetic, text, .npy; a held-out split and a content hash."""

from __future__ import annotations

import numpy as np
import pytest

from abcscale.runner import data
from abcscale.runner.data import load_corpus, synthetic_tokens


def test_default_corpus_is_python_source_with_a_stable_hash():
    a = load_corpus("default", 200_000, 0.1)
    assert len(a.train) == 180_000 and len(a.eval) == 20_000
    text = a.train[:5000].tobytes().decode("utf-8", errors="replace")
    assert "import" in text or "def " in text
    data._load_corpus.cache_clear()
    assert load_corpus("default", 200_000, 0.1).sha256 == a.sha256


def test_a_file_edited_or_a_relative_path_elsewhere_is_read_again(tmp_path, monkeypatch):
    """Cached on the source's text alone, a notebook's second sweep after regenerating its data trained on the first
    read's tokens under the first read's hash, and `data.npy` from another folder was the first folder's."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    np.save(tmp_path / "a" / "data.npy", np.arange(1000) % 256)
    np.save(tmp_path / "b" / "data.npy", np.arange(2000) % 256)
    monkeypatch.chdir(tmp_path / "a")
    first = load_corpus("data.npy", 10_000, 0.1, 10)
    assert load_corpus("data.npy", 10_000, 0.1, 10) is first  # unchanged: the cached read
    monkeypatch.chdir(tmp_path / "b")
    assert len(load_corpus("data.npy", 10_000, 0.1, 10).train) == 1800
    np.save(tmp_path / "b" / "data.npy", np.arange(3000) % 256)  # regenerated: another size, a later time
    again = load_corpus("data.npy", 10_000, 0.1, 10)
    assert len(again.train) == 2700 and again.sha256 != first.sha256


def test_a_data_folder_is_read_again_when_a_file_below_it_changes(tmp_path):
    """The folder's stamp was its own time and size: a shard rewritten in place, or one added in a subfolder, left
    them as they were and the process kept the first read (a review, session 74)."""
    import os

    shards = tmp_path / "d" / "shards"
    shards.mkdir(parents=True)
    (shards / "a.txt").write_text("a" * 4000)
    first = load_corpus(str(tmp_path / "d"), 100_000, 0.1, 10)
    folder = os.stat(tmp_path / "d")
    (shards / "a.txt").write_text("b" * 4000)  # the same size, in place
    os.utime(tmp_path / "d", ns=(folder.st_atime_ns, folder.st_mtime_ns))
    edited = load_corpus(str(tmp_path / "d"), 100_000, 0.1, 10)
    assert edited.sha256 != first.sha256 and edited.train[:1].tobytes() == b"b"
    (shards / "b.txt").write_text("c" * 4000)
    assert len(load_corpus(str(tmp_path / "d"), 100_000, 0.1, 10).train) == 7200


def test_a_corpus_is_read_only(tmp_path):
    """The process's sweeps share the cached arrays: one writing into them changed the next one's tokens."""
    for source in ("synthetic", str(tmp_path / "t.npy")):
        np.save(tmp_path / "t.npy", np.arange(1000) % 256)
        c = load_corpus(source, 10_000, 0.1, 10)
        with pytest.raises(ValueError, match="read-only"):
            c.train[0] = 1


def test_synthetic_is_deterministic_and_learnable():
    x, y = synthetic_tokens(5000, seed=0), synthetic_tokens(5000, seed=0)
    np.testing.assert_array_equal(x, y)
    assert x.max() < 64
    # order-2 structure: the next symbol given the previous two is far from uniform
    pairs = {}
    for a, b, c in zip(x, x[1:], x[2:], strict=False):
        pairs.setdefault((a, b), []).append(c)
    top = np.mean([np.bincount(v).max() / len(v) for v in pairs.values() if len(v) >= 10])
    assert top > 3 / 64


def test_text_directory_and_npy(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b.txt").write_text("hello " * 500)
    (tmp_path / "d" / "a.txt").write_text("world " * 500)
    c = load_corpus(str(tmp_path / "d"), 10_000, 0.2, 10)
    assert c.train[:5].tobytes() == b"world"  # sorted order
    np.save(tmp_path / "t.npy", np.arange(1000) % 256)
    assert len(load_corpus(str(tmp_path / "t.npy"), 10_000, 0.1, 10).train) == 900


@pytest.mark.parametrize("arr", [np.arange(10) + 300, np.zeros((4, 4), int), np.linspace(0, 1, 100)])
def test_bad_npy_names_the_problem(tmp_path, arr):
    np.save(tmp_path / "bad.npy", arr)
    with pytest.raises(ValueError, match="data"):
        load_corpus(str(tmp_path / "bad.npy"), 10_000, 0.1)


def test_too_short_corpus(tmp_path):
    (tmp_path / "t.txt").write_text("abc")
    with pytest.raises(ValueError, match="too few"):
        load_corpus(str(tmp_path / "t.txt"), 10_000, 0.1, 64)


def test_a_sweep_reads_its_data_folders_stamp_once(tmp_path, monkeypatch):
    """Every cell's `spec.corpus()` walked the folder for its stamp: a folder of 30,000 small files took 5 s of an
    18-cell sweep's 8 (a review, session 74). A sweep holds the stamp it read as it started."""
    pytest.importorskip("jax")
    from abcscale.runner.spec import SweepSpec
    from abcscale.runner.sweep import run_sweep

    (tmp_path / "d").mkdir()
    for i in range(20):
        (tmp_path / "d" / f"{i:02}.txt").write_text("some text to learn from " * 40)
    calls = []
    real = data._stamp
    monkeypatch.setattr(data, "_stamp", lambda *a: calls.append(a) or real(*a))
    spec = SweepSpec(model="mlp", widths=[8, 16], depth=1, seq_len=8, batch=2, steps=2, log2_lr=[-6.0],
                     data=str(tmp_path / "d"), eval_batches=1, coord_steps=[])
    run_sweep(spec, tmp_path / "out", progress=False)
    assert len(calls) == 1
    load_corpus(str(tmp_path / "d"), spec.max_bytes, spec.eval_fraction)
    assert len(calls) == 2  # outside a sweep: read at each call
