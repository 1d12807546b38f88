"""A user model's code is what its files hold when a sweep starts, in a long-lived process too (session 74,
``runner.usercode``).

Until then a factory was loaded once per process by its reference's text (``runner.user.load_factory``, ``build``,
``train._jitted``): a notebook that edited its model file between two ``abcscale.sweep`` calls trained the first
version again and recorded its losses under the edited code's cell key; a relative reference read from another
working directory loaded the first folder's file; an edited sibling module (``from layers import ...``) stayed as
first imported, and so did another folder's sibling of the same name. And ``model_source`` found a model file's
sibling modules only once the file had loaded (its folder then on the import path), so a process's first cell key
left them out. ``usercode.refresh`` is what a sweep, tune or check calls as it starts (``runner.user.check``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from abcscale.runner import user, usercode
from abcscale.runner.spec import SweepSpec, model_source

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (ROOT / "examples" / "user_model.py").read_text()
LOGITS = 'return h_BxTxD @ params["lm_head.kernel"]'
assert LOGITS in EXAMPLE


def _write(path: Path, text: str) -> None:
    """Write ``text`` as an editor does, the modification time and the size unchanged where they can be: what an
    edit within the same second of the clock leaves (Python's bytecode check and a modification-time stamp both
    miss it)."""
    before = path.stat() if path.exists() else None
    path.write_text(text)
    if before is not None:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


@pytest.fixture
def restore_path(monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    # bytecode written as by default (CI and this machine set PYTHONDONTWRITEBYTECODE): a same-size edit within the
    # second must not load the old .pyc
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
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
    factory = user.load_factory(ref)
    assert usercode.refresh(ref) == usercode.refresh(ref)
    assert user.load_factory(ref) is factory


def test_an_edited_sibling_module_is_imported_again(tmp_path, restore_path):
    (tmp_path / "helpers_s74.py").write_text("K = 2\n")
    model = tmp_path / "model_s74.py"
    model.write_text("from helpers_s74 import K\n\ndef factory(width, depth, *, vocab, seq_len):\n"
                     "    return {'shapes': {'w': (width, K * width)}, 'apply': lambda p, t, r: p}\n")
    ref = f"{model}:factory"
    assert user.build(ref, 8, 1, 16, 4).shapes["w"] == (8, 16)
    key = model_source(ref)
    _write(tmp_path / "helpers_s74.py", "K = 3\n")  # the same size, the same modification time
    assert model_source(ref) != key  # the cell key saw the edit ...
    assert user.build(ref, 8, 1, 16, 4).shapes["w"] == (8, 16)  # ... which the model sees when the next run starts
    usercode.refresh(ref)
    assert user.build(ref, 8, 1, 16, 4).shapes["w"] == (8, 24)


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
    usercode.refresh(ref)
    assert user.load_factory(ref)(8, 1, vocab=4, seq_len=2) == 24
    _write(pkg / "models.py", "from pkg_s74.helpers import K\n\ndef factory(width, depth, *, vocab, seq_len):\n"
                              "    return K * width + 1\n")
    usercode.refresh(ref)
    assert user.load_factory(ref)(8, 1, vocab=4, seq_len=2) == 25


def _folder(root: Path, name: str, k: int, sibling: str = "layers_s74") -> Path:
    (root / name).mkdir(parents=True)
    (root / name / f"{sibling}.py").write_text(f"K = {k}\n")
    (root / name / "model_s74.py").write_text(f"from {sibling} import K\n\n"
                                              "def factory(width, depth, *, vocab, seq_len):\n    return K\n")
    return root / name / "model_s74.py"


@pytest.fixture
def forget_layers():
    yield
    for name in [m for m in sys.modules if m.split(".")[0] in {"layers_s74", "mymodel_s74"}]:
        del sys.modules[name]


def test_a_sibling_is_the_one_beside_the_model_not_another_folders(tmp_path, restore_path, forget_layers):
    """Two folders' model files each import their own `layers_s74`: the second loaded got the first's, which
    Python had imported already, and its key hashed the first's too."""
    a, b = _folder(tmp_path, "A", 1), _folder(tmp_path, "B", 7)
    assert user.load_factory(f"{a}:factory")(8, 1, vocab=4, seq_len=2) == 1
    key_a = model_source(f"{a}:factory")
    assert user.load_factory(f"{b}:factory")(8, 1, vocab=4, seq_len=2) == 7
    key_b = model_source(f"{b}:factory")
    assert key_b != key_a
    (tmp_path / "C").mkdir()
    (tmp_path / "C" / "model_s74.py").write_text(b.read_text())
    (tmp_path / "C" / "layers_s74.py").write_text("K = 7\n")
    assert model_source(f"{tmp_path / 'C' / 'model_s74.py'}:factory") == key_b  # the same code: the same key


def test_a_notebooks_own_module_of_the_same_name_is_not_the_models(tmp_path, restore_path, forget_layers):
    (tmp_path / "layers_s74.py").write_text("K = 1\n")
    sys.path.insert(0, str(tmp_path))
    import layers_s74  # the notebook's own  # noqa: F401

    model = _folder(tmp_path, "models", 7)
    assert user.load_factory(f"{model}:factory")(8, 1, vocab=4, seq_len=2) == 7
    assert sys.modules["layers_s74"].K == 7  # what a later `import layers_s74` gets is the model folder's now ...
    assert layers_s74.K == 1  # ... while the notebook's module object is left as it was


def test_a_module_reference_is_found_from_the_working_directory(tmp_path, restore_path, forget_layers, monkeypatch):
    for name, k in (("A", 1), ("B", 7)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "mymodel_s74.py").write_text(f"def make(width, depth, *, vocab, seq_len):\n    return {k}\n")
    monkeypatch.chdir(tmp_path / "A")
    assert user.load_factory("mymodel_s74:make")(8, 1, vocab=4, seq_len=2) == 1
    key_a = model_source("mymodel_s74:make")
    monkeypatch.chdir(tmp_path / "B")
    assert user.load_factory("mymodel_s74:make")(8, 1, vocab=4, seq_len=2) == 7
    assert model_source("mymodel_s74:make") != key_a


def test_an_edit_saved_during_a_sweep_waits_for_the_next_one(tmp_path, restore_path, monkeypatch):
    """The sweep keys its cells when it starts: a width that loaded the edit midway filed it under the old code's
    key (a review). It trains the code it started with, and says the file changed."""
    pytest.importorskip("jax")
    import abcscale.runner.sweep as sw
    import abcscale.runner.train as tr
    from abcscale.runner.store import SweepWarning

    monkeypatch.setattr(tr.executables, "path", lambda *a: None)  # every width traced from the files
    model = tmp_path / "model.py"
    _write(model, EXAMPLE)
    edited = EXAMPLE.replace(LOGITS, f"return 3.0 * ({LOGITS.removeprefix('return ')})")
    real = sw.commit_cell

    def commit_then_edit(*args, **kwargs):
        real(*args, **kwargs)
        model.write_text(edited)

    monkeypatch.setattr(sw, "commit_cell", commit_then_edit)
    with pytest.warns(SweepWarning, match="changed during the sweep"):
        got = _sweep_rows(f"{model}:factory", tmp_path / "a", [16, 32])
    monkeypatch.setattr(sw, "commit_cell", real)
    (tmp_path / "original.py").write_text(EXAMPLE)
    want = _sweep_rows(f"{tmp_path / 'original.py'}:factory", tmp_path / "b", [16, 32])
    assert got == want


def _sweep_rows(ref: str, out: Path, widths: list[int]) -> dict[int, float]:
    import abcscale

    spec = SweepSpec(model=ref, widths=widths, depth=1, seq_len=8, batch=4, steps=3, log2_lr=[-6.0],
                     data="synthetic", eval_batches=1)
    rows = abcscale.sweep(spec, out, progress=False)
    return dict(zip(rows["width"], rows["loss_at_init"], strict=True))


def test_an_unchanged_sibling_is_not_run_again_when_the_model_file_changes(tmp_path, restore_path, forget_layers):
    """Its top-level code (a pytree registration, say) ran again at every reload: only what changed, and the
    user's modules that import it, are imported afresh."""
    (tmp_path / "layers_s74.py").write_text("import sys\nsys._s74_runs = getattr(sys, '_s74_runs', 0) + 1\nK = 2\n")
    model = tmp_path / "model_s74.py"
    model.write_text("from layers_s74 import K\n\ndef factory(width, depth, *, vocab, seq_len):\n    return K\n")
    ref = f"{model}:factory"
    try:
        assert user.load_factory(ref)(8, 1, vocab=4, seq_len=2) == 2 and sys._s74_runs == 1
        _write(model, "from layers_s74 import K\n\ndef factory(width, depth, *, vocab, seq_len):\n    return K + 1\n")
        usercode.refresh(ref)
        assert user.load_factory(ref)(8, 1, vocab=4, seq_len=2) == 3 and sys._s74_runs == 1
        _write(tmp_path / "layers_s74.py", "import sys\nsys._s74_runs = getattr(sys, '_s74_runs', 0) + 1\nK = 5\n")
        usercode.refresh(ref)
        assert user.load_factory(ref)(8, 1, vocab=4, seq_len=2) == 6 and sys._s74_runs == 2
    finally:
        vars(sys).pop("_s74_runs", None)


def test_a_module_that_appears_later_is_read_when_the_next_run_starts(tmp_path, restore_path, forget_layers):
    model = tmp_path / "model_s74.py"
    model.write_text("try:\n    from layers_s74 import K\nexcept ImportError:\n    K = 2\n\n"
                     "def factory(width, depth, *, vocab, seq_len):\n    return K\n")
    ref = f"{model}:factory"
    assert user.load_factory(ref)(8, 1, vocab=4, seq_len=2) == 2
    (tmp_path / "layers_s74.py").write_text("K = 7\n")
    usercode.refresh(ref)
    assert user.load_factory(ref)(8, 1, vocab=4, seq_len=2) == 7


def test_a_deleted_module_reference_is_said_not_trained_from_memory(tmp_path, restore_path):
    pkg = tmp_path / "pkg_s74"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "gone.py").write_text("def factory(width, depth, *, vocab, seq_len):\n    return 1\n")
    sys.path.insert(0, str(tmp_path))
    ref = "pkg_s74.gone:factory"
    assert user.load_factory(ref)(8, 1, vocab=4, seq_len=2) == 1
    (pkg / "gone.py").unlink()
    usercode.refresh(ref)
    with pytest.raises(ValueError, match="model: cannot import 'pkg_s74.gone'"):
        user.load_factory(ref)


def test_a_reading_is_said_for_each_folders_model(tmp_path, restore_path, monkeypatch):
    """The sweep's readings (a kernel read as a stack of matrices, ...) were said once per reference text: another
    folder's `m.py:make` with the same reading, checked in the same process, was not warned about."""
    pytest.importorskip("jax")
    import warnings

    from tests.runner.test_review_s68_jax import BIASLESS

    for name in ("A", "B"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "m.py").write_text(BIASLESS % ("3", ""))
    said = []
    for name in ("A", "B"):
        monkeypatch.chdir(tmp_path / name)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            user.check("m.py:make", [16, 32], 2, 8)
        said.append([str(w.message) for w in caught if "stack" in str(w.message)])
    assert said[0] and said[1] == said[0]


def _model_using(path: Path, sibling: str = "layers_s74") -> None:
    path.write_text(f"from {sibling} import K\n\ndef factory(width, depth, *, vocab, seq_len):\n    return K\n")


def test_a_sibling_two_models_share_is_imported_afresh_for_the_second_after_an_edit(tmp_path, restore_path,
                                                                                    forget_layers):
    """What the second model's own last load imported was unchanged for it, so the first's import stayed (a review:
    the second sweep trained `layers` as it was under the edited code's key)."""
    (tmp_path / "layers_s74.py").write_text("K = 1\n")
    _model_using(tmp_path / "a_s74.py")
    _model_using(tmp_path / "b_s74.py")
    a, b = f"{tmp_path / 'a_s74.py'}:factory", f"{tmp_path / 'b_s74.py'}:factory"
    assert user.load_factory(a)(8, 1, vocab=4, seq_len=2) == 1
    _write(tmp_path / "layers_s74.py", "K = 2\n")
    usercode.refresh(b)
    assert user.load_factory(b)(8, 1, vocab=4, seq_len=2) == 2


def test_a_sibling_the_notebook_imported_before_editing_it_is_imported_afresh(tmp_path, restore_path, forget_layers):
    (tmp_path / "layers_s74.py").write_text("K = 1\n")
    sys.path.insert(0, str(tmp_path))
    import layers_s74  # noqa: F401

    _write(tmp_path / "layers_s74.py", "K = 2\n")
    _model_using(tmp_path / "m_s74.py")
    assert user.load_factory(f"{tmp_path / 'm_s74.py'}:factory")(8, 1, vocab=4, seq_len=2) == 2


def test_a_module_held_in_memory_is_still_a_model(tmp_path, restore_path):
    """`__main__:factory` (a script's own factory) and a module registered by hand were refused after session 74's
    first version ("cannot import"), which also took `__main__` out of sys.modules (a review)."""
    import importlib.util
    import types

    main = sys.modules["__main__"]
    fake = types.ModuleType("__main__")
    fake.factory = lambda width, depth, *, vocab, seq_len: 3  # type: ignore[attr-defined]
    sys.modules["__main__"] = fake
    try:
        assert user.load_factory("__main__:factory")(8, 1, vocab=4, seq_len=2) == 3
        assert sys.modules["__main__"] is fake
    finally:
        sys.modules["__main__"] = main
    (tmp_path / "somewhere_s74.py").write_text("def factory(width, depth, *, vocab, seq_len):\n    return 4\n")
    spec = importlib.util.spec_from_file_location("handmade_s74", tmp_path / "somewhere_s74.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["handmade_s74"] = module
    try:
        assert user.load_factory("handmade_s74:factory")(8, 1, vocab=4, seq_len=2) == 4
        assert model_source("handmade_s74:factory")  # its file's code still keys its runs
    finally:
        del sys.modules["handmade_s74"]


@pytest.mark.parametrize("ref", ["~nobody_s74_zz/model.py:factory", "x" * 300 + ".py:factory"])
def test_a_reference_that_cannot_be_read_is_said_as_a_model_error(ref):
    """A home that is not there or a name too long escaped `usercode.refresh` as a traceback (a review)."""
    with pytest.raises(ValueError, match="^model: "):
        user.check(ref, [16], 1, 8)


def test_a_module_reference_from_a_deleted_working_directory_is_a_model_error(tmp_path, monkeypatch):
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    assert model_source("nowhere_s74.models:factory") == ""
    with pytest.raises(ValueError, match="^model: "):
        user.check("nowhere_s74.models:factory", [16], 1, 8)


# A fourth review's findings (session 74): each failed on the code before its fix.

@pytest.fixture
def forget_pkgs():
    yield
    for name in [m for m in sys.modules if m.split(".")[0] in {"pkgf_s74", "libpkg_s74", "brokenpkg_s74"}]:
        del sys.modules[name]


def _answer(ref: str, file: Path | None = None, text: str = "") -> object:
    """The factory's answer, after ``file`` is edited to ``text`` and the next run starts (``usercode.refresh``)."""
    if file is not None:
        _write(file, text)
        usercode.refresh(ref)
    return user.load_factory(ref)(8, 1, vocab=4, seq_len=2)


def _package(root: Path, init: str = "") -> None:
    (root / "pkgf_s74").mkdir()
    (root / "pkgf_s74" / "__init__.py").write_text(init)
    (root / "pkgf_s74" / "layers.py").write_text("K = 2\n")


def test_a_packages_edited_submodule_is_read_through_its_package_too(tmp_path, restore_path, forget_pkgs):
    """`from pkg import layers` reads the package's attribute first: the edited `pkg.layers`, out of sys.modules,
    was still the package's `layers`."""
    _package(tmp_path)
    model = tmp_path / "m_s74.py"
    model.write_text("from pkgf_s74 import layers\n\ndef factory(width, depth, *, vocab, seq_len):\n"
                     "    return layers.K\n")
    ref = f"{model}:factory"
    assert _answer(ref) == 2 and _answer(ref, tmp_path / "pkgf_s74" / "layers.py", "K = 3\n") == 3


def test_an_edited_package_init_keeps_its_submodules_loadable(tmp_path, restore_path, forget_pkgs):
    _package(tmp_path, "X = 1\n")
    model = tmp_path / "m_s74.py"
    model.write_text("import pkgf_s74\nimport pkgf_s74.layers\n\ndef factory(width, depth, *, vocab, seq_len):\n"
                     "    return pkgf_s74.layers.K + pkgf_s74.X\n")
    ref = f"{model}:factory"
    assert _answer(ref) == 3 and _answer(ref, tmp_path / "pkgf_s74" / "__init__.py", "X = 5\n") == 7


def test_a_library_target_is_not_imported_again(tmp_path, restore_path, forget_pkgs, monkeypatch):
    from abcscale.runner import spec as spec_module

    lib = tmp_path / "site"
    (lib / "libpkg_s74").mkdir(parents=True)
    (lib / "libpkg_s74" / "__init__.py").write_text("class Block:\n    pass\n\n\n"
                                                     "from libpkg_s74 import models  # noqa\n")
    (lib / "libpkg_s74" / "models.py").write_text("from libpkg_s74 import Block\n\n"
                                                   "def make(width, depth, *, vocab, seq_len):\n    return Block()\n")
    real = spec_module._library_roots
    monkeypatch.setattr(spec_module, "_library_roots", lambda: (*real(), lib.resolve()))
    sys.path.insert(0, str(lib))
    import libpkg_s74

    assert isinstance(user.load_factory("libpkg_s74.models:make")(8, 1, vocab=4, seq_len=2), libpkg_s74.Block)
    assert sys.modules["libpkg_s74"] is libpkg_s74


def test_an_edit_saved_while_the_model_is_checked_stops_the_run(tmp_path, restore_path, monkeypatch):
    """The cell keys are read from the files after the check: an edit saved meanwhile was keyed, not trained."""
    pytest.importorskip("jax")
    model = tmp_path / "model.py"
    model.write_text(EXAMPLE)
    real = user._trace

    def trace_then_edit(*args, **kwargs):
        out = real(*args, **kwargs)
        model.write_text(EXAMPLE.replace(LOGITS, f"return 3.0 * ({LOGITS.removeprefix('return ')})"))
        return out

    monkeypatch.setattr(user, "_trace", trace_then_edit)
    with pytest.raises(ValueError, match="changed while the model was being checked"):
        user.check(f"{model}:factory", [16], 1, 8)


def test_a_mistyped_module_in_a_package_that_fails_to_import_is_a_model_error(tmp_path, restore_path, forget_pkgs):
    (tmp_path / "brokenpkg_s74").mkdir()
    (tmp_path / "brokenpkg_s74" / "__init__.py").write_text("1 / 0\n")
    sys.path.insert(0, str(tmp_path))
    with pytest.raises(ValueError, match="^model: "):
        user.check("brokenpkg_s74.modles:factory", [16], 1, 8)


def test_an_edit_undone_trains_the_undone_code(tmp_path, restore_path, forget_layers):
    """Back to the first stamp, the first load's factory came back without its modules: its body's import read the
    edit still in sys.modules."""
    (tmp_path / "layers_s74.py").write_text("K = 1\n")
    model = tmp_path / "m_s74.py"
    model.write_text("def factory(width, depth, *, vocab, seq_len):\n    import layers_s74\n    return layers_s74.K\n")
    ref = f"{model}:factory"
    assert user.load_factory(ref)(8, 1, vocab=4, seq_len=2) == 1
    for k in (2, 1):
        _write(tmp_path / "layers_s74.py", f"K = {k}\n")
        usercode.refresh(ref)
        assert user.load_factory(ref)(8, 1, vocab=4, seq_len=2) == k


def test_a_sibling_named_as_a_standard_module_leaves_the_standard_one(tmp_path, restore_path):
    import colorsys

    (tmp_path / "colorsys.py").write_text("K = 1\n")
    model = tmp_path / "m_s74.py"
    model.write_text("from colorsys import K\n\ndef factory(width, depth, *, vocab, seq_len):\n    return K\n")
    with pytest.raises(ValueError, match="^model: "):
        user.load_factory(f"{model}:factory")
    assert sys.modules["colorsys"] is colorsys


def test_a_deleted_sibling_is_not_trained_from_memory(tmp_path, restore_path, forget_layers):
    (tmp_path / "layers_s74.py").write_text("K = 1\n")
    model = tmp_path / "m_s74.py"
    model.write_text("from layers_s74 import K\n\ndef factory(width, depth, *, vocab, seq_len):\n    return K\n")
    ref = f"{model}:factory"
    assert user.load_factory(ref)(8, 1, vocab=4, seq_len=2) == 1
    (tmp_path / "layers_s74.py").unlink()
    _write(model, "from layers_s74 import K\n\ndef factory(width, depth, *, vocab, seq_len):\n    return K + 1\n")
    usercode.refresh(ref)
    with pytest.raises(ValueError, match="^model: "):
        user.load_factory(ref)
