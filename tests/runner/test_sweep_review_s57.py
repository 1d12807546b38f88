"""Session 57: a review of the sweep commands. A Ctrl-C that landed in a garbage-collection callback (JAX registers
one) was lost and the sweep ran to its end; the summary's best LR was the mean of the seeds that survived an LR
where most diverged; tune's --verify-widths let widths through that the check after the search refused."""

from __future__ import annotations

import gc
import signal
import threading
import time

import pandas as pd
import pytest

from abcscale.runner import sweep as sw


def _swallowed_interrupt() -> None:
    """A SIGINT whose KeyboardInterrupt is raised inside a gc callback, where Python prints it and goes on.

    On the main thread's own collection: a collection another thread has in progress (its callbacks, JAX's among
    them, can give up the GIL mid-way) makes ``gc.collect()`` return at once without calling any callback, and the
    callback then fired later on that thread, its interrupt landing wherever the main thread was (whole-directory
    runs failed both tests below; the churning-thread test shows it, session 73)."""
    fired = threading.Event()

    def cb(phase: str, info: dict) -> None:
        if phase == "start" and threading.current_thread() is threading.main_thread() and not fired.is_set():
            fired.set()
            gc.callbacks.remove(cb)
            signal.raise_signal(signal.SIGINT)

    gc.callbacks.append(cb)
    # the youngest generation: callbacks run for any collection, and a whole one costs 50 ms and more in a worker
    # late in the suite (its heap holds thousands of tests' objects): the churning test below took 9 s there
    gc.collect(0)
    while not fired.is_set():  # skipped: let the other thread's collection end, and try again
        time.sleep(0.001)
        gc.collect(0)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_interrupt_swallowed_by_a_gc_callback_is_remembered():
    before = signal.getsignal(signal.SIGINT)
    with sw._interrupt_remembered() as interrupted:
        assert not interrupted()
        _swallowed_interrupt()  # no exception reaches here
        assert interrupted()
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_the_interrupt_is_swallowed_while_another_thread_collects():
    """The helper above under a thread that keeps a collection in progress (its callback gives up the GIL, as
    JAX's can): the main thread's collection still runs the callback, and the interrupt is remembered."""
    stop = threading.Event()

    def slow(phase: str, info: dict) -> None:
        if phase == "start" and threading.current_thread() is not threading.main_thread():
            time.sleep(0.005)

    def churn() -> None:
        while not stop.is_set():
            gc.collect(0)  # in progress while slow() sleeps; the youngest generation, as above
            time.sleep(0.001)

    gc.callbacks.append(slow)
    thread = threading.Thread(target=churn, daemon=True)
    thread.start()
    try:
        for _ in range(5):
            test_an_interrupt_swallowed_by_a_gc_callback_is_remembered()
    finally:
        stop.set()
        thread.join()
        gc.callbacks.remove(slow)


@pytest.mark.e2e
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_the_sweep_stops_on_an_interrupt_the_interpreter_swallowed(tiny_spec, tmp_path, monkeypatch):
    real = sw.run_cell

    def swallow_then_run(spec, cell, **kw):
        _swallowed_interrupt()
        return real(spec, cell, **kw)

    monkeypatch.setattr(sw, "run_cell", swallow_then_run)
    with pytest.raises(sw.SweepInterrupted) as stopped:
        sw.run_sweep(tiny_spec, tmp_path, progress=False)
    assert stopped.value.kept < stopped.value.total  # stopped early: the rest is left for a rerun
    monkeypatch.setattr(sw, "run_cell", real)
    again = sw.run_sweep(tiny_spec, tmp_path, progress=False)  # the rerun finishes what is left
    assert len(again) == stopped.value.total


def test_the_best_lr_is_one_where_every_seed_trained():
    rows = pd.DataFrame({"parameterization": "mup", "optimizer_variant": "adam", "alignment": "full",
                         "lr_mode": "per_layer", "width": 32, "log2_lr": [-2.0] * 3 + [-1.0] * 3,
                         "seed": [0, 1, 2] * 2, "eval_loss": [3.46, 3.47, 3.45, 2.92, float("nan"), float("nan")],
                         "diverged": [False, False, False, False, True, True]})
    (best,) = sw.best_lrs(rows)
    assert best.log2_lr == -2.0 and best.eval_loss == pytest.approx(3.46)
    assert best.diverged == 2 and best.runs == 6
    # no LR where every seed trained: none is best
    (none,) = sw.best_lrs(rows.assign(diverged=[True, False, False, False, True, True]))
    assert none.log2_lr is None and none.eval_loss is None


def test_verify_widths_the_sweep_refuses_are_refused_before_training():
    from abcscale.runner.spec import SweepSpec
    from abcscale.usecases.tune_verify import check_widths

    training = SweepSpec(model="transformer", widths=[32]).model_dump(mode="json", exclude={"widths", "log2_lr",
                                                                                            "gammas", "seeds"})
    check_widths(training, 32, [64, 128])  # fine
    with pytest.raises(ValueError, match=r"^verify_widths: 40: head_dim: 16 must divide every width \(not \[40\]\)$"):
        check_widths(training, 32, [64, 40])
    mlp = SweepSpec(model="mlp", widths=[16]).model_dump(mode="json", exclude={"widths", "log2_lr", "gammas", "seeds"})
    with pytest.raises(ValueError, match=r"^verify_widths: 1048576: 1048576 gives the mlp a matrix"):
        check_widths(mlp, 16, [1048576])
