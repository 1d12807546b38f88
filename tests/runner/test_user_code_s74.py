"""A user model's code is what its files hold now, in a long-lived process too (session 74).

Until then a factory was loaded once per process by its reference's text (``runner.user.load_factory``, ``build``,
``train._jitted``): a notebook that edited its model file between two ``abcscale.sweep`` calls trained the first
version again and recorded its losses under the edited code's cell key; a relative reference read from another
working directory loaded the first folder's file; an edited sibling module (``from layers import ...``) stayed as
first imported. And ``model_source`` found a model file's sibling modules only once the file had loaded (its folder
then on the import path), so a process's first cell key left them out.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from abcscale.runner import user
from abcscale.runner.spec import SweepSpec, model_source

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (ROOT / "examples" / "user_model.py").read_text()
LOGITS = 'return h_BxTxD @ params["lm_head.kernel"]'
assert LOGITS in EXAMPLE


def _write(path: Path, text: str) -> None:
    """Write ``text`` and move the file's mtime on by a second, as an edit some time later does (a test's two
    writes may share one tick of the file system's clock)."""
    before = path.stat().st_mtime_ns if path.exists() else None
    path.write_text(text)
    if before is not None:
        os.utime(path, ns=(before + 10**9, before + 10**9))


@pytest.fixture
def restore_path(monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.split(".")[0] in {"helpers_s74", "pkg_s74"}:
            del sys.modules[name]


def _sweep_loss(ref: str, out: Path) -> float:
    import abcscale

    spec = SweepSpec(model=ref, widths=[16], depth=1, seq_len=8, batch=4, steps=3, log2_lr=[-6.0],
                     data="synthetic", eval_batches=1)
    rows = abcscale.sweep(spec, out, progress=False)
    return float(rows["loss_at_init"].iloc[0])


def test_an_edited_model_file_is_trained_as_edited_in_the_same_process(tmp_path, restore_path):
    pytest.importorskip("jax")
    model = tmp_path / "model.py"
    _write(model, EXAMPLE)
    first = _sweep_loss(f"{model}:factory", tmp_path / "a")
    edited = EXAMPLE.replace(LOGITS, f"return 3.0 * ({LOGITS.removeprefix('return ')})")
    _write(model, edited)
    second = _sweep_loss(f"{model}:factory", tmp_path / "b")
    # the same edited code under a name this process never loaded: what a fresh process trains
    (tmp_path / "fresh.py").write_text(edited)
    fresh = _sweep_loss(f"{tmp_path / 'fresh.py'}:factory", tmp_path / "c")
    assert second != first  # logits x3 at init: another loss
    assert second == fresh


def test_an_unchanged_file_is_not_loaded_again(tmp_path, restore_path):
    model = tmp_path / "same_s74.py"
    _write(model, "def factory(width, depth, *, vocab, seq_len):\n    return object()\n")
    ref = f"{model}:factory"
    assert user.load_factory(ref) is user.load_factory(ref)
    assert user.code_stamp(ref) == user.code_stamp(ref)


def test_an_edited_sibling_module_is_imported_again(tmp_path, restore_path):
    (tmp_path / "helpers_s74.py").write_text("K = 2\n")
    model = tmp_path / "model_s74.py"
    model.write_text("from helpers_s74 import K\n\ndef factory(width, depth, *, vocab, seq_len):\n"
                     "    return {'shapes': {'w': (width, K * width)}, 'apply': lambda p, t, r: p}\n")
    ref = f"{model}:factory"
    assert user.build(ref, 8, 1, 16, 4).shapes["w"] == (8, 16)
    key = model_source(ref)
    _write(tmp_path / "helpers_s74.py", "K = 3\n")
    assert model_source(ref) != key  # the cell key saw the edit ...
    assert user.build(ref, 8, 1, 16, 4).shapes["w"] == (8, 24)  # ... and so does the model trained under it


def test_the_first_cell_key_counts_the_sibling_modules(tmp_path, restore_path):
    """Before any load the model's folder is not on the import path: its siblings must count all the same."""
    (tmp_path / "helpers_s74.py").write_text("K = 2\n")
    model = tmp_path / "model_s74.py"
    model.write_text("from helpers_s74 import K\n\ndef factory(width, depth, *, vocab, seq_len):\n    return K\n")
    ref = f"{model}:factory"
    folder = str(tmp_path.resolve())
    assert folder not in sys.path
    before = model_source(ref)
    assert folder not in sys.path  # keying a model does not change the import path
    user.load_factory(ref)  # puts the folder on the path, as a sweep's load does
    assert folder in sys.path and model_source(ref) == before
    _write(tmp_path / "helpers_s74.py", "K = 3\n")
    assert model_source(ref) != before


def test_a_relative_reference_reads_the_working_directorys_file(tmp_path, restore_path, monkeypatch):
    for name, k in (("one", 2), ("two", 5)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "rel_s74.py").write_text(f"def factory(width, depth, *, vocab, seq_len):\n    return {k}\n")
    monkeypatch.chdir(tmp_path / "one")
    assert user.load_factory("rel_s74.py:factory")(8, 1, vocab=4, seq_len=2) == 2
    monkeypatch.chdir(tmp_path / "two")
    assert user.load_factory("rel_s74.py:factory")(8, 1, vocab=4, seq_len=2) == 5


def test_an_edited_module_reference_is_imported_again(tmp_path, restore_path):
    pkg = tmp_path / "pkg_s74"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "models.py").write_text("from pkg_s74.helpers import K\n\ndef factory(width, depth, *, vocab, seq_len):\n"
                                   "    return K * width\n")
    (pkg / "helpers.py").write_text("K = 2\n")
    sys.path.insert(0, str(tmp_path))
    ref = "pkg_s74.models:factory"
    assert user.load_factory(ref)(8, 1, vocab=4, seq_len=2) == 16
    _write(pkg / "helpers.py", "K = 3\n")
    assert user.load_factory(ref)(8, 1, vocab=4, seq_len=2) == 24
    _write(pkg / "models.py", "from pkg_s74.helpers import K\n\ndef factory(width, depth, *, vocab, seq_len):\n"
                              "    return K * width + 1\n")
    assert user.load_factory(ref)(8, 1, vocab=4, seq_len=2) == 25
