"""The runner's compilation cache (runner.executables): a warm sweep loads its programs without tracing, trains
bit for bit as the compiled ones, and never runs a program built from anything else (other program, shapes,
options, versions, flags or runner source)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import abcscale.runner.executables as ex
import abcscale.runner.train as tr
from abcscale.runner.spec import SweepSpec
from abcscale.runner.sweep import _program, layer_hyper


@pytest.fixture
def cache_dir(tmp_path):
    """Keep executables in an empty folder for one test."""
    before = ex.folder()
    ex.use(tmp_path / "jax")
    yield tmp_path / "jax"
    ex.use(before)


def _setup(steps: int):
    spec = SweepSpec(model="mlp", widths=[16], depth=1, log2_lr=[-6], steps=steps, batch=4, seq_len=8,
                     data="synthetic", eval_batches=2, coord_steps=[0, steps - 1], curves=True)
    cell = spec.cells()[0]
    prog, h, c = _program(spec, cell, (0, steps - 1), True), layer_hyper(spec, cell), spec.corpus()
    lr = np.stack([2.0 ** g * np.asarray(h.lr_factor) for g in (-7, -5)])
    args = (c.train, c.eval, np.asarray(h.multiplier), np.asarray(h.init_std), lr,
            np.tile(np.asarray(h.epsilon), (2, 1)), np.arange(2, dtype=np.uint32))
    return prog, args


def _outcome(prog, args):
    with tr.Compiler() as compiler:
        return tr.run_program(prog, *args, compiler=compiler)


def _assert_same(a, b):
    for name in ("loss_at_init", "final_loss", "eval_loss", "diverged", "curves"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.coord.keys() == b.coord.keys()
    for kind, layers in a.coord.items():
        for layer, values in layers.items():
            np.testing.assert_array_equal(values, b.coord[kind][layer], err_msg=f"{kind} {layer}")


def _spec_of(prog, args):
    return tr._args_spec(prog, args[-1].shape[0], args[0], args[1])


def test_a_kept_program_loads_without_tracing_and_trains_bit_identically(cache_dir, monkeypatch):
    prog, args = _setup(steps=13)
    compiled = _outcome(prog, args)
    file = ex.path(prog, _spec_of(prog, args), tr.compiler_options(prog))
    assert file is not None and file.parent == cache_dir and file.stat().st_size > 0

    def no_tracing(prog):
        raise AssertionError("a kept program must not be traced again")

    monkeypatch.setattr(tr, "_jitted", no_tracing)
    loaded = _outcome(prog, args)
    _assert_same(compiled, loaded)
    assert compiled.final_loss[0] < compiled.loss_at_init[0]  # it trained


def test_a_damaged_file_is_compiled_again_and_replaced(cache_dir):
    prog, args = _setup(steps=14)
    file = ex.path(prog, _spec_of(prog, args), tr.compiler_options(prog))
    assert file is not None
    file.parent.mkdir(parents=True)
    file.write_bytes(b"not an executable")
    assert ex.load(file) is None
    first = _outcome(prog, args)  # compiles, replaces the damaged file
    assert ex.load(file) is not None
    _assert_same(first, _outcome(prog, args))


def test_a_file_holding_another_program_is_compiled_again_when_it_cannot_run(cache_dir):
    prog, args = _setup(steps=18)
    other, other_args = _setup(steps=19)
    want = _outcome(prog, args)
    file = ex.path(prog, _spec_of(prog, args), tr.compiler_options(prog))
    assert file is not None
    foreign = tr._jitted(other).lower(*tr._args_spec(other, 3, other_args[0], other_args[1])).compile(
        tr.compiler_options(other))  # as the runner compiles it: XLA's default level took twice the CPU
    ex.save(file, foreign)  # loads fine, but takes 3 runs per call: the call fails, the program compiles again
    assert ex.load(file) is not None
    _assert_same(want, _outcome(prog, args))
    _assert_same(want, _outcome(prog, args))  # and the file now holds the right program


def test_the_key_changes_with_everything_that_changes_the_program(cache_dir, monkeypatch):
    prog, args = _setup(steps=15)
    spec, opts = _spec_of(prog, args), tr.compiler_options(prog)
    base = ex.path(prog, spec, opts)
    assert base == ex.path(prog, _spec_of(*_setup(steps=15)), dict(opts))  # the same program: the same file
    other_prog, _ = _setup(steps=16)
    keys = {
        "program": ex.path(other_prog, spec, opts),
        "runs per call": ex.path(prog, tr._args_spec(prog, 3, args[0], args[1]), opts),
        "options": ex.path(prog, spec, opts | {"xla_cpu_use_fusion_emitters": True}),
    }
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=true")  # XLA read it at start: not applied now,
    assert ex.path(prog, spec, opts) == base  # so not keyed (a process started with it: test_xla_flags_s75.py)
    monkeypatch.delenv("XLA_FLAGS")
    with jax.threefry_partitionable(False):  # the random bits a kept draw program makes (runner.draws)
        keys["PRNG bits"] = ex.path(prog, spec, opts)
    ex._environment.cache_clear()
    monkeypatch.setattr(ex, "_MODULES", ex._MODULES[:-1])  # other runner source bytes
    keys["runner source"] = ex.path(prog, spec, opts)
    monkeypatch.undo()
    ex._environment.cache_clear()
    assert ex.path(prog, spec, opts) == base
    assert base not in keys.values() and len(set(keys.values())) == len(keys), keys


def test_nothing_is_kept_without_a_cache_folder(cache_dir):
    prog, args = _setup(steps=15)
    ex.use(None)
    assert ex.path(prog, _spec_of(prog, args), tr.compiler_options(prog)) is None
    _outcome(prog, args)
    ex.save(None, object())  # a no-op, not an error
    assert ex.load(None) is None and not Path(cache_dir).exists()


# A user model's program is keyed by its lowered module: each process traces it, and loads what an earlier one
# compiled.
_USER = """
import json, sys
import abcscale.runner.executables as ex
import abcscale.runner.train as tr
from abcscale.runner.spec import SweepSpec
from abcscale.runner.sweep import run_cell
tr.enable_compilation_cache()
spec = SweepSpec(model=sys.argv[1], widths=[16], depth=1, log2_lr=[-6, -4], steps=7, batch=4, seq_len=16,
                 data="synthetic", eval_batches=2)
res = run_cell(spec, spec.cells()[0])
print(json.dumps({"final": res.rows["final_loss"].tolist(), "compile_s": float(res.rows["compile_s"].max()),
                  "files": {p.name: p.stat().st_mtime_ns for p in ex.folder().iterdir()}}))
"""


def _user_run(cache: Path) -> dict:
    root = Path(__file__).parents[2]
    env = os.environ | {"ABCSCALE_JAX_CACHE": str(cache)}
    res = subprocess.run([sys.executable, "-c", _USER, f"{root / 'examples' / 'user_model.py'}:factory"], env=env,
                         capture_output=True, text=True, cwd=root)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_a_user_model_program_is_kept_by_its_lowered_module(tmp_path):
    first = _user_run(tmp_path)
    second = _user_run(tmp_path)
    # the same key in another process, and the files were loaded, not written again: the training program's and
    # the draw program's (runner.draws)
    assert len(first["files"]) == 2 and second["files"] == first["files"]
    assert second["final"] == first["final"]


def test_the_cache_variable_is_read_at_each_call(monkeypatch, tmp_path):
    """Read once per process, a notebook's ABCSCALE_JAX_CACHE emptied (or moved) between two sweeps was not heard,
    and a relative folder followed the process's working directory (a review, session 74)."""
    before = ex.folder()
    try:
        monkeypatch.setenv("ABCSCALE_JAX_CACHE", "")
        tr.enable_compilation_cache()
        assert ex.folder() is None
        monkeypatch.setenv("ABCSCALE_JAX_CACHE", str(tmp_path / "somewhere"))
        tr.enable_compilation_cache()
        assert ex.folder() == tmp_path / "somewhere"
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("ABCSCALE_JAX_CACHE", "relative")
        tr.enable_compilation_cache()
        monkeypatch.chdir(tmp_path / "somewhere")
        assert ex.folder() == tmp_path.resolve() / "relative"
        monkeypatch.setenv("ABCSCALE_JAX_CACHE", "")
        tr.enable_compilation_cache()
        assert ex.folder() is None
    finally:
        ex.use(before)


def test_writers_racing_on_one_file_leave_a_whole_executable(cache_dir):
    from concurrent.futures import ThreadPoolExecutor

    prog, args = _setup(steps=15)
    spec = _spec_of(prog, args)
    compiled = tr._jitted(prog).lower(*spec).compile(tr.compiler_options(prog))
    file = ex.path(prog, spec, tr.compiler_options(prog))
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: ex.save(file, compiled), range(8)))
    assert [p.name for p in cache_dir.iterdir()] == [file.name]  # no temporary file left behind
    assert ex.load(file) is not None
