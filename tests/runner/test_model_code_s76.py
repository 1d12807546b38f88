"""Session 76: two ways a user model's code escaped its cell keys (session 75's notes), so a rerun after an edit kept
the runs trained before it.

- ``model = "pkg.module:factory"``: importing ``pkg.module`` runs ``pkg/__init__.py`` first, but the key read only
  what the module's import statements name; an ``__init__`` the module does not import from (one that sets a JAX
  option, patches a layer, holds a constant read through the package) was not in it, nor reloaded after an edit in
  a notebook. A package ``__init__`` holding code is now part of the model's code; an empty one stays out (it runs
  nothing, and keys written before are kept).
- A module the model imports by name at run time (``importlib.import_module``) cannot be read from the statements;
  the check before a sweep now says so, once per version of the model, naming the module and its file.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

from abcscale.runner import user, usercode
from abcscale.runner.spec import _factory_file, file_imports, first_folder, model_source
from abcscale.runner.store import SweepWarning

pytest.importorskip("jax")

FACTORY = '''
import sys

def factory(width, depth, *, vocab, seq_len):
    {body}
    def apply(p, t, record):
        return p["emb"][t] @ p["out"] * scale
    return {{"shapes": {{"emb": (vocab, width), "out": (width, vocab)}}, "apply": apply,
            "roles": {{"emb": "embedding", "out": "readout"}}, "scale": scale}}
'''


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A working directory of its own, on the path as the runner puts it; the modules it adds leave afterwards."""
    monkeypatch.chdir(tmp_path)
    held = set(sys.modules)
    path = list(sys.path)
    yield tmp_path
    for name in set(sys.modules) - held:  # the project's own (a library's submodules loaded meanwhile stay)
        try:
            file = getattr(sys.modules[name], "__file__", None)
        except Exception:  # noqa: BLE001 - the odd entries of test_odd_entries_...
            file = None
        if (isinstance(file, str) and str(tmp_path) in file) or name.startswith("abcscale_user_model_") \
                or name.endswith("76"):
            del sys.modules[name]
    sys.path[:] = path


def _package(root: Path, name: str, init: str, body: str) -> None:
    (root / name).mkdir()
    (root / name / "__init__.py").write_text(init)
    (root / name / "model.py").write_text(FACTORY.format(body=body))


def _files(ref: str) -> dict[str, Path]:
    path, package = _factory_file(ref)
    assert path is not None
    return file_imports(path, package, first_folder(ref))


def test_a_package_init_holding_code_is_part_of_the_model(project):
    _package(project, "pkgs76a", "SCALE = 1.0\n", 'scale = sys.modules[__package__].SCALE')
    ref = "pkgs76a.model:factory"
    assert set(_files(ref)) == {"pkgs76a"}
    before = model_source(ref)
    (project / "pkgs76a" / "__init__.py").write_text("SCALE = 2.0\n")
    assert model_source(ref) != before  # the same before this session: the rerun kept SCALE = 1.0's runs


def test_an_empty_package_init_stays_out_of_the_key(project):
    """It runs nothing; a key written before (the module's file alone) is kept, so no finished run is redone."""
    _package(project, "pkgs76b", "\n  \n", "scale = 1.0")
    ref = "pkgs76b.model:factory"
    assert _files(ref) == {}
    import hashlib

    assert model_source(ref) == hashlib.sha256((project / "pkgs76b" / "model.py").read_bytes()).hexdigest()[:16]
    (project / "pkgs76b" / "__init__.py").write_text("import os\n")
    assert set(_files(ref)) == {"pkgs76b"}


def test_nested_packages_and_what_their_init_imports(project):
    _package(project, "pkgs76c", "from .helpers import K\n", "scale = 1.0")
    (project / "pkgs76c" / "helpers.py").write_text("K = 3\n")
    (project / "pkgs76c" / "sub").mkdir()
    (project / "pkgs76c" / "sub" / "__init__.py").write_text("X = 1\n")
    (project / "pkgs76c" / "sub" / "model.py").write_text(FACTORY.format(body="scale = 1.0"))
    assert set(_files("pkgs76c.sub.model:factory")) == {"pkgs76c", "pkgs76c.helpers", "pkgs76c.sub"}
    before = model_source("pkgs76c.sub.model:factory")
    (project / "pkgs76c" / "helpers.py").write_text("K = 4\n")  # reached only through the package's __init__
    assert model_source("pkgs76c.sub.model:factory") != before
    # a file reference loads the file alone: its folder's __init__ never runs, so it is not the model's code
    assert _files(str(project / "pkgs76c" / "sub" / "model.py") + ":factory") == {}


def test_a_long_lived_process_reloads_an_edited_package_init(project):
    """A notebook: the edit to ``__init__`` reaches the next load (before, the package stayed imported)."""
    _package(project, "pkgs76d", "SCALE = 1.0\n", 'scale = sys.modules[__package__].SCALE')
    ref = "pkgs76d.model:factory"
    usercode.refresh(ref)
    assert user.load_factory(ref)(16, 1, vocab=8, seq_len=4)["scale"] == 1.0
    (project / "pkgs76d" / "__init__.py").write_text("SCALE = 2.5\n")
    usercode.refresh(ref)  # a sweep starting
    assert user.load_factory(ref)(16, 1, vocab=8, seq_len=4)["scale"] == 2.5


def _check(ref: str) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        user.check(ref, [16, 32], 1, 4, vocab=8)
    return [str(w.message) for w in caught if issubclass(w.category, SweepWarning)]


def test_a_module_imported_by_name_at_run_time_is_said_once_per_version(project):
    (project / "dyns76.py").write_text("K = 1.0\n")
    model = project / "model.py"
    model.write_text(FACTORY.format(body='import importlib\n    scale = importlib.import_module("dyns76").K'))
    ref = f"{model}:factory"
    said = _check(ref)
    assert len(said) == 1 and "dyns76" in said[0] and str(project / "dyns76.py") in said[0], said
    assert "cell keys" in said[0]
    assert _check(ref) == []  # the same version: said once
    # an edit of the model is another version, but the module it imports at run time is still held: nothing new
    # was imported, so nothing can be said; the warning above stands for the process
    del sys.modules["dyns76"]
    model.write_text(model.read_text() + "\n# edited\n")
    assert len(_check(ref)) == 1


def test_no_word_for_statements_libraries_or_the_models_own_package(project):
    (project / "layers76.py").write_text("K = 1.0\n")
    static = project / "static.py"
    static.write_text("import layers76\n" + FACTORY.format(body="scale = layers76.K"))
    library = project / "library.py"
    library.write_text(FACTORY.format(body='import importlib\n    scale = float(importlib.import_module("tabnanny")'
                                           '.verbose + 1)'))
    sys.modules.pop("tabnanny", None)  # imported by the check, from the standard library
    _package(project, "pkgs76e", "", "scale = 1.0")  # an empty __init__, imported with the module, is not said
    for ref in (f"{static}:factory", f"{library}:factory", "pkgs76e.model:factory"):
        assert _check(ref) == [], ref


READS = '''
import json, os, pathlib
import numpy as np

HERE = pathlib.Path(__file__).parent


def factory(width, depth, *, vocab, seq_len):
    scale = json.loads((HERE / "config.json").read_text())["scale"]  # said
    scale *= float(np.load(HERE / "gain.npy")[0])  # said
    fd = os.open(HERE / "raw.bin", os.O_RDONLY)  # said (os.open)
    os.close(fd)
    with open(HERE / "log.txt", "a") as f:  # written, not read: not said
        f.write("built\\n")
    np.save(HERE / "out.npy", np.zeros(2))  # written: not said
    r, w = os.pipe()
    with os.fdopen(w, "w") as f:  # an open of a descriptor: not a file of the user's, and no error
        f.write("x")
    os.close(r)
    def apply(p, t, record):
        return p["emb"][t] @ p["out"] * scale
    return {"shapes": {"emb": (vocab, width), "out": (width, vocab)}, "apply": apply,
            "roles": {"emb": "embedding", "out": "readout"}}
'''


def test_a_file_the_model_reads_is_said_once_per_version(project):
    import numpy as np

    (project / "config.json").write_text('{"scale": 1.0}')
    np.save(project / "gain.npy", np.ones(1))
    (project / "raw.bin").write_bytes(b"\0")
    model = project / "reads.py"
    model.write_text(READS)
    ref = f"{model}:factory"
    said = _check(ref)
    assert len(said) == 1, said
    for name in ("config.json", "gain.npy", "raw.bin"):
        assert str(project / name) in said[0], (name, said)
    for name in ("log.txt", "out.npy", "reads.py"):
        assert name not in said[0].partition(" reads ")[2], (name, said)
    assert "keyed by the model's code" in said[0] and "--out" in said[0]
    assert _check(ref) == []  # the same version, built already: said once
    assert set((project / "log.txt").read_text().split()) == {"built"}  # the model's own writes went through


def test_reads_elsewhere_in_the_process_are_not_the_models(project):
    """Only the checking thread's reads while the model loads, builds and traces count: a read before the check, or
    on another thread meanwhile (a notebook's), is not the model's."""
    import builtins
    import io
    import os
    import threading

    from abcscale.runner import reads

    there = builtins.open, io.open, os.open
    (project / "config.json").write_text('{"scale": 1.0}')
    (project / "other.txt").write_text("x")
    (project / "other.txt").read_text()
    model = project / "quiet.py"
    model.write_text(FACTORY.format(body="scale = 1.0"))
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            (project / "config.json").read_text()

    t = threading.Thread(target=reader)
    t.start()
    try:
        assert _check(f"{model}:factory") == []
    finally:
        stop.set()
        t.join()
    assert reads._WATCHED == {} and not reads._PATCHED  # nothing left watched once the check is over
    # and nothing left in the process's way: its own open functions back (the first version's audit hook could not
    # be removed and made every id() and JAX trace slower for good, a review)
    assert (builtins.open, io.open, os.open) == there


# --- a review's findings -------------------------------------------------------------------------------------------


def test_a_folder_reached_through_a_symlink_keys_alike(project):
    """A package __init__ re-exporting the model (``from .model import factory``) named the model file again, under
    another key, when the working directory was reached through a symlink: a rerun trained everything again."""
    real = project / "real"
    real.mkdir()
    _package(real, "pkgs76f", "from .model import factory\n", "scale = 1.0")
    (project / "work").mkdir()
    (project / "work" / "pkgs76f").symlink_to(real / "pkgs76f")
    import os

    keys = []
    for where in (real, project / "work"):
        os.chdir(where)
        keys.append(model_source("pkgs76f.model:factory"))
        assert set(_files("pkgs76f.model:factory")) == {"pkgs76f"}
    assert keys[0] == keys[1]


@pytest.mark.parametrize("init", ['"""Our models."""\n', "# a package\n", "\ufeff\n", '"""Doc."""\n# more\n\n'])
def test_an_init_running_nothing_keeps_the_key(project, init):
    """A docstring, a comment or a BOM runs nothing: most packages' __init__, whose keys must not change."""
    import hashlib

    _package(project, "pkgs76g", init, "scale = 1.0")
    ref = "pkgs76g.model:factory"
    assert _files(ref) == {}
    assert model_source(ref) == hashlib.sha256((project / "pkgs76g" / "model.py").read_bytes()).hexdigest()[:16]


def test_namespace_packages_are_the_users_code(project):
    """A folder without __init__.py (a namespace package): nothing under it was keyed, and the model's own package
    was said to be imported at run time."""
    (project / "nss76").mkdir()
    (project / "nss76" / "sub").mkdir()
    (project / "nss76" / "sub" / "__init__.py").write_text("SCALE = 1.0\n")
    (project / "nss76" / "sub" / "layers.py").write_text("K = 1\n")
    (project / "nss76" / "sub" / "model.py").write_text("from . import layers\n" + FACTORY.format(body="scale = 1.0"))
    ref = "nss76.sub.model:factory"
    assert set(_files(ref)) == {"nss76.sub", "nss76.sub.layers"}
    before = model_source(ref)
    (project / "nss76" / "sub" / "layers.py").write_text("K = 2\n")
    assert model_source(ref) != before
    assert _check(ref) == []  # its package and its sibling are its code, read from the statements


def test_odd_entries_in_sys_modules_are_no_users_module(project):
    """An object in sys.modules that raises on any attribute (a library's lazy attributes), or a module whose
    __file__ is no string: the check's scan ended the sweep with a traceback (a review)."""
    (project / "odd76.py").write_text(
        "import sys, types\n"
        "class Lazy:\n"
        "    def __getattr__(self, name):\n"
        "        raise ImportError(f'lazy attribute {name} unavailable')\n"
        "sys.modules['lazy76'] = Lazy()\n"
        "m = types.ModuleType('gen76')\n"
        "m.__file__ = 7\n"
        "sys.modules['gen76'] = m\n")
    model = project / "oddmodel.py"
    model.write_text("import odd76\n" + FACTORY.format(body="scale = 1.0"))
    assert _check(f"{model}:factory") == []


# --- a Ray worker reads the files the model reads as the driver did ---------------------------------------------

CONFIGURED = '''
import json, pathlib

def make(width, depth, vocab, seq_len):
    scale = json.loads((pathlib.Path(__file__).parent / "config.json").read_text())["scale"]

    def apply(params, tokens, record):
        return params["emb"][tokens] * scale @ params["out"]

    return {"shapes": {"emb": (vocab, width), "out": (width, vocab)}, "apply": apply,
            "roles": {"emb": "embedding", "out": "readout"}}
'''


def test_a_worker_reading_another_copy_of_a_file_the_model_reads_trains_nothing(project):
    """``runner.sweep._run_cell_task`` in this process, as a Ray worker runs it: the driver's check saw the model
    read config.json; a worker whose copy holds other bytes (edited since, another machine's) refuses, naming it,
    where before it trained its own copy's model under the driver's keys."""
    import shutil

    import abcscale.runner.sweep as sw
    from abcscale.runner.spec import SweepSpec

    (project / "config.json").write_text('{"scale": 1.0}')
    (project / "model.py").write_text(CONFIGURED)
    spec = SweepSpec(model="model.py:make", widths=[16], depth=1, log2_lr=[-6], steps=4, batch=2, seq_len=8,
                     data="synthetic", eval_batches=1, coord_steps=[])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SweepWarning)  # the check's note of config.json
        sw.check_model(spec)
    cell = spec.cells()[0]
    expect, cid = sw.worker_identity(spec, cell), cell.base_key(spec, spec.corpus().sha256)
    assert list(__import__("json").loads(expect["model reads"])) == ["config.json"]  # by its place in the folder
    args = (spec.model_dump_json(), cell.model_dump_json(), [(-6.0, 0)], cid, expect)
    trained = sw._run_cell_task(*args).rows["final_loss"]
    (project / "config.json").write_text('{"scale": 3.0}')  # same size, within the clock's granularity too
    with pytest.raises(ValueError, match=r"^model: the Ray worker .* reads other bytes than the sweep did in "
                                         r"config\.json"):
        sw._run_cell_task(*args)
    (project / "config.json").unlink()
    with pytest.raises(ValueError, match=r"^model: the Ray worker"):  # missing there: refused, not a traceback
        sw._run_cell_task(*args)
    (project / "config.json").write_text('{"scale": 1.0}')
    assert list(sw._run_cell_task(*args).rows["final_loss"]) == list(trained)
    # another machine's checkout at another place, with its own copy of the same bytes: trained
    other = project / "elsewhere"
    other.mkdir()
    for name in ("model.py", "config.json"):
        shutil.copy(project / name, other / name)
    import os

    os.chdir(other)
    assert list(sw._run_cell_task(*args).rows["final_loss"]) == list(trained)
    (other / "config.json").write_text('{"scale": 2.5}')
    with pytest.raises(ValueError, match=r"config\.json"):
        sw._run_cell_task(*args)


def test_a_long_lived_process_trains_the_file_as_it_is_now(project):
    """A notebook: sweep, edit the config the model reads, sweep into a new folder, as the warning advises. The second
    sweep builds the model again (the file's digest is in the model's stamp): before, the kept build trained the
    first config, without a word (a review)."""
    import abcscale
    from abcscale.runner.spec import SweepSpec

    (project / "config.json").write_text('{"scale": 1.0}')
    (project / "model.py").write_text(CONFIGURED)
    spec = SweepSpec(model="model.py:make", widths=[16], depth=1, log2_lr=[-6], steps=3, batch=2, seq_len=8,
                     data="synthetic", eval_batches=1, coord_steps=[])
    counted = CONFIGURED.replace("    scale = json", "    BUILT.append(width)\n    scale = json")
    (project / "model.py").write_text(counted.replace("import json, pathlib", "import json, pathlib\nBUILT = []"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = abcscale.sweep(spec, project / "a", progress=False)["loss_at_init"].iloc[0]
        built = user.load_factory(spec.model).__globals__["BUILT"]
        assert abcscale.sweep(spec, project / "a2", progress=False)["loss_at_init"].iloc[0] == first
        # built once (at 16, and at 32 for the check's reading of what grows with the width): the file's digest
        # joining the stamp rebuilt nothing (a review)
        assert sorted(built) == [16, 32], built
        (project / "config.json").write_text('{"scale": 4.0}')
        second = abcscale.sweep(spec, project / "b", progress=False)["loss_at_init"].iloc[0]
        again = abcscale.sweep(spec, project / "c", progress=False)["loss_at_init"].iloc[0]
        assert sorted(user.load_factory(spec.model).__globals__["BUILT"]) == [16, 32]  # reloaded for the edit, once
    assert second != first and again == second
    said = [str(w.message) for w in caught if issubclass(w.category, SweepWarning) and "config.json" in str(w.message)]
    assert len(said) == 1, said  # once for the model's code, not again for each version of the file
    assert "that file's bytes" in said[0] and "loads, builds or traces" in said[0]


def test_which_reads_are_the_users(project, monkeypatch):
    """Not said: the system's files, a cache's, a file the model wrote and read back (a temporary file), a code file.
    Said: a file opened with a relative path after a change of directory (as it was opened, not as the path reads
    afterwards), a memory map (``np.memmap``'s default mode r+ reads), a read inside ``apply`` while it is traced."""
    import numpy as np

    cache = project / "cache"
    (cache / "lib").mkdir(parents=True)
    (cache / "lib" / "fonts.json").write_text("{}")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    (project / "sub").mkdir()
    (project / "sub" / "cfg.json").write_text("{}")
    (project / "cfg.json").write_text("{}")  # the same name where the working directory is afterwards: not it
    np.save(project / "w.npy", np.zeros(3, np.float32))
    (project / "traced.txt").write_text("1")
    body = ("import contextlib, os, tempfile, numpy as np\n"
            f"    open('/etc/passwd').read()\n"
            f"    open({str(cache / 'lib' / 'fonts.json')!r}).read()\n"
            "    fd, tmp = tempfile.mkstemp(suffix='.json'); os.close(fd)\n"
            "    open(tmp, 'w').write('{}'); open(tmp).read(); os.remove(tmp)\n"
            f"    with contextlib.chdir({str(project / 'sub')!r}):\n"
            "        open('cfg.json').read()\n"
            f"    np.memmap({str(project / 'w.npy')!r}, dtype=np.uint8)\n"
            "    scale = 1.0")
    model = project / "which.py"
    model.write_text(FACTORY.format(body=body).replace(
        "        return p[", f"        open({str(project / 'traced.txt')!r}).read()\n        return p["))
    said = _check(f"{model}:factory")
    assert len(said) == 1, said
    files = said[0].partition(" reads ")[2].partition(" as it loads")[0].split(", ")
    assert files == [str(project / "sub" / "cfg.json"), str(project / "traced.txt"), str(project / "w.npy")], files


# --- a third review's findings -------------------------------------------------------------------------------------


def test_a_helper_reading_the_file_as_it_is_imported_reads_the_edit(project):
    """The config read at the top of a module the model imports (unchanged code): after an edit, the module was kept
    imported and the old values trained, and the file's read was forgotten. A changed file imports the user's
    modules again."""
    import abcscale
    from abcscale.runner.spec import SweepSpec

    (project / "config.json").write_text('{"scale": 1.0}')
    (project / "helper76.py").write_text(
        "import json, pathlib\nSCALE = json.loads((pathlib.Path(__file__).parent / 'config.json').read_text())"
        "['scale']\n")
    (project / "model.py").write_text("import helper76\n" + FACTORY.format(body="scale = helper76.SCALE"))
    spec = SweepSpec(model="model.py:factory", widths=[16], depth=1, log2_lr=[-6], steps=3, batch=2, seq_len=8,
                     data="synthetic", eval_batches=1, coord_steps=[])
    losses = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SweepWarning)
        for i, scale in enumerate((1.0, 9.0, 9.0, 5.0)):
            (project / "config.json").write_text(f'{{"scale": {scale}}}')
            losses.append(abcscale.sweep(spec, project / f"out{i}", progress=False)["loss_at_init"].iloc[0])
            assert usercode.reads(spec.model) == (str(project / "config.json"),)
    assert losses[0] != losses[1] == losses[2] != losses[3] != losses[0], losses


def test_a_file_replaced_by_one_of_the_same_size_and_time_is_read_again(project):
    """``cp -p``, ``tar x``, ``touch -r``: the same size and modification time. The kept digest said the old bytes,
    and every later sweep of the process failed with "changed while the model was being checked"."""
    import os
    import shutil

    import abcscale
    from abcscale.runner.spec import SweepSpec

    for name, scale in (("a.json", "1.0"), ("b.json", "9.0")):
        (project / name).write_text(f'{{"scale": {scale}}}')
        os.utime(project / name, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    shutil.copy2(project / "a.json", project / "config.json")
    (project / "model.py").write_text(CONFIGURED)
    spec = SweepSpec(model="model.py:make", widths=[16], depth=1, log2_lr=[-6], steps=3, batch=2, seq_len=8,
                     data="synthetic", eval_batches=1, coord_steps=[])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SweepWarning)
        a = abcscale.sweep(spec, project / "a", progress=False)["loss_at_init"].iloc[0]
        assert abcscale.sweep(spec, project / "a2", progress=False)["loss_at_init"].iloc[0] == a
        shutil.copy2(project / "b.json", project / "config.json")
        b = abcscale.sweep(spec, project / "b", progress=False)["loss_at_init"].iloc[0]
    assert b != a


def test_open_stands_in_without_changing_what_open_is():
    """While watched: a class attribute ``reader = open`` stays a plain function (a function stand-in became a
    method and got the instance as its file), ``open is io.open``, ``os.open in os.supports_dir_fd`` (shutil asks),
    ``open`` pickles, and its own errors are its own; afterwards such an attribute still opens files."""
    import builtins
    import io
    import os
    import pickle

    from abcscale.runner import reads

    there = (builtins.open, io.open, os.open)
    with reads.watch() as seen:
        class Reader:
            opener = open

        assert open is io.open and os.open in os.supports_dir_fd
        assert pickle.loads(pickle.dumps(open)) is open and pickle.loads(pickle.dumps(os.open)) is os.open
        with pytest.raises(TypeError, match=r"^open\(\) missing required argument 'file'"):
            open()  # noqa: SIM115
        with Reader().opener(__file__) as f:
            assert f.readline()
        fd = os.open(__file__, os.O_RDONLY)
        os.close(fd)
    assert seen.read == {__file__}
    assert (builtins.open, io.open, os.open) == there
    with Reader().opener(__file__) as f:
        assert f.readline()


def test_a_model_folder_reached_through_a_symlink_names_its_files_in_it(project):
    """The driver named the file by its absolute path (the path as opened, through the link, against the resolved
    folder): a worker elsewhere checked the driver's file instead of its own copy, and trained another config."""
    import json as json_module
    import shutil

    import abcscale.runner.sweep as sw
    from abcscale.runner.spec import SweepSpec

    (project / "real").mkdir()
    (project / "real" / "config.json").write_text('{"scale": 1.0}')
    (project / "real" / "model.py").write_text(CONFIGURED)
    (project / "link").symlink_to(project / "real")
    spec = SweepSpec(model="link/model.py:make", widths=[16], depth=1, log2_lr=[-6], steps=3, batch=2, seq_len=8,
                     data="synthetic", eval_batches=1, coord_steps=[])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SweepWarning)
        sw.check_model(spec)
    cell = spec.cells()[0]
    expect = sw.worker_identity(spec, cell)
    assert list(json_module.loads(expect["model reads"])) == ["config.json"]
    other = project / "other"
    (other / "real").mkdir(parents=True)
    for name in ("model.py", "config.json"):
        shutil.copy(project / "real" / name, other / "real" / name)
    (other / "link").symlink_to(other / "real")
    (other / "real" / "config.json").write_text('{"scale": 3.0}')
    import os

    os.chdir(other)
    with pytest.raises(ValueError, match=r"^model: the Ray worker .* in config\.json"):
        sw._run_cell_task(spec.model_dump_json(), cell.model_dump_json(), [(-6.0, 0)],
                          cell.base_key(spec, spec.corpus().sha256), expect)


# --- a fourth review's findings ------------------------------------------------------------------------------------


def test_a_file_edited_while_the_check_builds_the_model_stops_the_check(project):
    """The model read the config, the check went on tracing, the config was saved meanwhile: the builds (from the old
    bytes) were kept under the new bytes' digest, and every later sweep of the process trained the old config
    without a word. Now the check stops, as it does for an edit of the code."""
    (project / "config.json").write_text('{"scale": 1.0}')
    (project / "saved.json").write_text('{"scale": 5.0}')
    model = project / "slow.py"
    model.write_text(CONFIGURED.replace("    def apply(params, tokens, record):",
                                        "    def apply(params, tokens, record):\n"
                                        "        import os\n"
                                        "        here = pathlib.Path(__file__).parent\n"
                                        "        if (here / 'saved.json').exists():  # an editor, as it traces\n"
                                        "            os.replace(here / 'saved.json', here / 'config.json')"))
    ref = f"{model}:make"
    with pytest.raises(ValueError, match=r"^model: .*config\.json changed while the model was being checked"):
        _check(ref)
    # run again, as the error says: everything is loaded and built again from the saved bytes (a review: the
    # builds of the failed check were kept and trained, and the file no longer watched)
    said = _check(ref)
    assert user.build(ref, 16, 1, 8, 4).apply.__closure__ is not None
    assert any("config.json" in note for note in said), said
    scale = [c.cell_contents for c in user.build(ref, 16, 1, 8, 4).apply.__closure__
             if isinstance(c.cell_contents, float)]
    assert scale == [5.0], scale
    (project / "config.json").write_text('{"scale": 7.0}')  # and a later edit is seen
    _check(ref)
    assert [c.cell_contents for c in user.build(ref, 16, 1, 8, 4).apply.__closure__
            if isinstance(c.cell_contents, float)] == [7.0]


def test_a_model_touching_a_file_it_reads_is_no_edit(project):
    """By content, not by the file's times: a model that marks its config used (``os.utime``) or saves the same bytes
    atomically failed every check (a review)."""
    (project / "config.json").write_text('{"scale": 1.0}')
    model = project / "touch.py"
    model.write_text(CONFIGURED.replace(
        "    def apply(params, tokens, record):",
        "    import os, time\n"
        "    here = pathlib.Path(__file__).parent\n"
        "    os.utime(here / 'config.json', ns=(time.time_ns(), time.time_ns()))\n"
        "    (here / 'copy.tmp').write_text((here / 'config.json').read_text())\n"
        "    os.replace(here / 'copy.tmp', here / 'config.json')\n"
        "    def apply(params, tokens, record):"))
    said = _check(f"{model}:make")
    assert len(said) == 1 and "config.json" in said[0], said


def test_ray_workers_are_held_to_the_bytes_the_check_read(project):
    """The driver hashed the files as cells were sent, not as the check read them: a config edited after the check
    was trained by the workers while the sweep said it trained the code it started with. The driver's identity now
    holds the check's digests, so a worker reading the edit refuses."""
    import abcscale.runner.sweep as sw
    from abcscale.runner.spec import SweepSpec

    (project / "config.json").write_text('{"scale": 1.0}')
    (project / "model.py").write_text(CONFIGURED)
    spec = SweepSpec(model="model.py:make", widths=[16], depth=1, log2_lr=[-6], steps=3, batch=2, seq_len=8,
                     data="synthetic", eval_batches=1, coord_steps=[])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SweepWarning)
        sw.check_model(spec)
    (project / "config.json").write_text('{"scale": 5.0}')  # after the check, before the cells are sent
    cell = spec.cells()[0]
    expect = sw.worker_identity(spec, cell)
    with pytest.raises(ValueError, match=r"^model: the Ray worker .* in config\.json"):
        sw._run_cell_task(spec.model_dump_json(), cell.model_dump_json(), [(-6.0, 0)],
                          cell.base_key(spec, spec.corpus().sha256), expect)


def test_a_module_imported_during_the_watch_keeps_the_real_open(project):
    """A module first imported while the check ran, binding ``open`` at its top (tarfile's ``bltn_open = open``),
    kept the stand-in for good."""
    import builtins
    import io

    from abcscale.runner import reads

    (project / "binds76.py").write_text("import io\nmy_open = open\nmy_io_open = io.open\n")
    sys.path.insert(0, str(project))
    with reads.watch():
        import binds76  # noqa: F401
    assert sys.modules["binds76"].my_open is builtins.open and sys.modules["binds76"].my_io_open is io.open


# --- a sixth review's findings -------------------------------------------------------------------------------------


def test_files_that_are_not_the_users_are_not_hashed_as_they_open(project, monkeypatch):
    """A header read from a checkpoint in a hub's cache hashed the whole file, only for it to be left out."""
    from abcscale.runner import reads

    cache = project / "cache"
    (cache / "hub").mkdir(parents=True)
    (cache / "hub" / "big.bin").write_bytes(b"\0" * 1000)
    (project / "config.json").write_text("{}")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    hashed = []
    real = usercode.file_digest
    monkeypatch.setattr(usercode, "file_digest", lambda path: hashed.append(str(path)) or real(path))
    with reads.watch() as seen:
        with open(cache / "hub" / "big.bin", "rb") as f:
            f.read(10)
        with open(project / "config.json") as f:
            f.read()
    assert hashed == [str(project / "config.json")], hashed
    assert seen.read == {str(cache / "hub" / "big.bin"), str(project / "config.json")}


def test_a_file_unreadable_at_its_first_open_is_hashed_at_the_next(project, monkeypatch):
    """Its digest stayed None, and the check stopped with "changed while the model was being checked"."""
    from abcscale.runner import reads

    (project / "config.json").write_text("{}")
    real, calls = usercode.file_digest, []

    def flaky(path):
        calls.append(path)
        return None if len(calls) == 1 else real(path)

    monkeypatch.setattr(usercode, "file_digest", flaky)
    with reads.watch() as seen:
        for _ in range(2):
            with open(project / "config.json") as f:
                f.read()
    monkeypatch.setattr(usercode, "file_digest", real)
    assert seen.digests[str(project / "config.json")] == real(project / "config.json")
    assert reads.changed(seen, [str(project / "config.json")]) == []


def test_the_changed_error_names_three_files_and_counts_the_rest(project):
    """1,000 shards edited while the check ran made a 39,000-character message."""
    import os

    for i in range(6):
        (project / f"shard{i}.txt").write_text("a")
        (project / f"next{i}.txt").write_text("bb")
    model = project / "shards.py"
    model.write_text(FACTORY.format(body=(
        "import os, pathlib\n"
        "    here = pathlib.Path(__file__).parent\n"
        "    for i in range(6):\n"
        "        (here / f'shard{i}.txt').read_text()\n"
        "        if (here / f'next{i}.txt').exists():\n"
        "            os.replace(here / f'next{i}.txt', here / f'shard{i}.txt')\n"
        "    scale = 1.0")))
    with pytest.raises(ValueError) as caught:
        _check(f"{model}:factory")
    assert str(caught.value).count("shard") == 3 and "and 3 more changed while" in str(caught.value), caught.value
    assert not os.path.exists(project / "next0.txt")
