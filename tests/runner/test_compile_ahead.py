"""Fixed costs: programs compile ahead on a background thread, cells sharing a program run back to back,
and the runs of a cell split into equal chunks."""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import abcscale.runner.sweep as sw
from abcscale.runner.spec import SweepSpec
from abcscale.runner.train import Compiler, run_program


@given(n_runs=st.integers(1, 300), chunk=st.integers(1, 64))
def test_chunks_are_as_few_as_the_cap_allows_and_pad_at_most_one_run_each(n_runs, chunk):
    spec = SweepSpec(model="mlp", widths=[16], log2_lr=[-4], batching="vmap", chunk=chunk)
    size = sw.chunk_size(spec, 16, n_runs)
    calls = math.ceil(n_runs / size)
    assert 1 <= size <= min(chunk, n_runs)
    assert calls == math.ceil(n_runs / chunk)  # no more calls than the cap forces
    assert calls * size - n_runs < calls  # padding: at most one run per call


def test_single_batching_is_one_run_per_call():
    spec = SweepSpec(model="mlp", widths=[16], log2_lr=[-4], batching="single")
    assert sw.chunk_size(spec, 16, 22) == 1


def _setup(tiny_spec, steps):
    spec = tiny_spec.with_overrides(steps=steps)  # a step count no other test uses: a program not yet compiled
    cell = spec.cells()[0]
    prog = sw._program(spec, cell, (), False)
    hyper = sw.layer_hyper(spec, cell)
    c = spec.corpus()
    lr = np.stack([2.0 ** g * np.asarray(hyper.lr_factor) for g in (-6, -3)])
    args = (c.train, c.eval, np.asarray(hyper.multiplier), np.asarray(hyper.init_std), lr, np.full((2, 3), 1e-8),
            np.arange(2, dtype=np.uint32))
    return prog, c, args


def test_a_program_compiled_ahead_trains_exactly_as_one_compiled_inline(tiny_spec):
    prog, c, args = _setup(tiny_spec, steps=7)
    with Compiler() as compiler:
        assert compiler.state(prog, 2, c.train, c.eval) == "absent"
        compiler.ahead(prog, 2, c.train, c.eval)
        assert compiler.state(prog, 2, c.train, c.eval) in ("compiling", "ready")
        ahead = run_program(prog, *args, compiler=compiler)
        assert compiler.state(prog, 2, c.train, c.eval) == "ready"  # resolved once, reused afterwards
    inline = run_program(prog, *args)  # no compiler: compiled inline for this call
    for name in ("loss_at_init", "final_loss", "eval_loss", "diverged"):
        np.testing.assert_array_equal(getattr(ahead, name), getattr(inline, name))
    assert ahead.final_loss[0] < ahead.loss_at_init[0]


def test_a_compilation_that_fails_before_tracing_releases_the_wait_for_its_trace(tiny_spec, monkeypatch):
    # A sweep's main thread waits for the first program's trace (wait_traced) before its own Python work; a
    # bad XLA setting fails the compile thread before any tracing, and that wait used to run its full timeout.
    prog, c, args = _setup(tiny_spec, steps=13)
    monkeypatch.setenv("ABCSCALE_XLA_FUSION_EMITTERS", "maybe")
    with Compiler() as compiler:
        compiler.ahead(prog, 2, c.train, c.eval)
        t0 = time.perf_counter()
        compiler.wait_traced(timeout=30)
        assert time.perf_counter() - t0 < 10
        with pytest.raises(ValueError, match="ABCSCALE_XLA_FUSION_EMITTERS"):
            run_program(prog, *args, compiler=compiler)


def test_closing_drops_queued_compilations(tiny_spec):
    prog, c, _ = _setup(tiny_spec, steps=9)
    gate, thread = threading.Event(), ThreadPoolExecutor(max_workers=1)
    blocker = thread.submit(gate.wait, 60)  # hold the compile thread so the next request stays queued
    try:
        with Compiler(thread) as compiler:
            compiler.ahead(prog, 2, c.train, c.eval)
            assert compiler.state(prog, 2, c.train, c.eval) == "compiling"
        assert compiler.state(prog, 2, c.train, c.eval) == "absent"
    finally:
        gate.set()
        blocker.result()


def test_a_cell_says_when_it_waits_for_a_compilation(tiny_spec):
    spec = tiny_spec.with_overrides(steps=11, chunk=2)  # 3 runs: two calls of 2 sharing one program
    cell, events = spec.cells()[0], []
    sw.run_cell(spec, cell, on_compile=lambda c: events.append(("compiling", c.width)),
                on_runs=lambda n: events.append(("ran", n)))
    assert events == [("compiling", cell.width), ("ran", 2), ("ran", 1)]


@pytest.mark.e2e
def test_sweep_runs_cells_of_one_width_back_to_back(tiny_spec, tmp_path, monkeypatch):
    spec = tiny_spec.with_overrides(parameterizations=["standard", "mup"], steps=5)
    real, ran = sw.run_cell, []
    monkeypatch.setattr(sw, "run_cell", lambda spec, cell, **kw: ran.append(cell) or real(spec, cell, **kw))
    df = sw.run_sweep(spec, tmp_path, progress=False)
    assert [c.width for c in ran] == sorted(c.width for c in spec.cells())
    assert sorted(ran, key=spec.cells().index) == spec.cells()
    assert len(df) == len(spec.cells()) * len(spec.log2_lr) * spec.seeds
    # results.parquet keeps the spec's cell order whatever order the cells ran in
    assert list(df.drop_duplicates(["parameterization", "width"])[["parameterization", "width"]].itertuples(
        index=False, name=None)) == [(c.parameterization, c.width) for c in spec.cells()]


def test_waiting_for_the_first_trace_returns_once_it_is_lowered(tiny_spec, monkeypatch):
    import abcscale.runner.train as tr

    prog, c, _ = _setup(tiny_spec, steps=5)
    events: list[str] = []
    real = tr._jitted

    class Traced:  # records when the first program's lowering is over
        def __init__(self, prog):
            self.jitted = real(prog)

        def lower(self, *args):
            out = self.jitted.lower(*args)
            events.append("lowered")
            return out

    monkeypatch.setattr(tr, "_jitted", Traced)
    monkeypatch.setattr(tr.executables, "path", lambda *a: None)  # nothing kept: it must trace
    with Compiler() as compiler:
        t0 = time.perf_counter()
        compiler.wait_traced(timeout=5)  # nothing queued: returns at once
        assert time.perf_counter() - t0 < 1
        compiler.ahead(prog, 2, c.train, c.eval)
        compiler.wait_traced(timeout=60)
        assert events == ["lowered"]
