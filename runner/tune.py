"""Evaluate one set of base-width constants: train one seed at the base width, return its eval loss.

The tuner (:mod:`abcscale.usecases.tune`) calls an :class:`Evaluator` once per (trial, seed). Every call runs
the same compiled program: the constants change only runtime arrays (per-layer LRs, init stds,
multipliers, epsilons), so the whole search at one width compiles once. One run per call (M = 1): a
search proposes trials one at a time, and on CPU single runs are the fast path (``runner.sweep.chunk_size``).
"""

from __future__ import annotations

import numpy as np

from abcscale.runner.spec import SweepSpec
from abcscale.runner.sweep import _program, interrupt_raised, layer_hyper, record_steps, start_ray
from abcscale.schemas.theory import Constants


class Evaluator:
    """``evaluator(constants, beta, seed) -> eval loss`` at ``spec.base``; a diverged run scores its loss at
    init (no better than not training), so the search sees a finite, bad value rather than a failure."""

    def __init__(self, spec: SweepSpec) -> None:
        from abcscale.runner.sweep import check_model
        from abcscale.runner.train import Compiler, enable_compilation_cache

        enable_compilation_cache()
        self.spec = spec.with_overrides(widths=[spec.base], coord_steps=[], curves=False)
        check_model(self.spec)
        self.cell = self.spec.cells()[0]
        self.corpus = self.spec.corpus()
        self.data_hash = self.corpus.sha256
        self.program = _program(self.spec, self.cell, record_steps(self.spec), False)
        self.compiler = Compiler()
        self.runs = 0
        self.diverged = 0  # runs that diverged (or ended non-finite): all of them means the search learnt nothing

    def __call__(self, constants: Constants, beta: float, seed: int) -> float:
        loss, diverged = self.evaluate(constants, beta, seed)
        self.runs += 1
        self.diverged += diverged
        return loss

    def evaluate(self, constants: Constants, beta: float, seed: int) -> tuple[float, bool]:
        """The run's score and whether it diverged (uncounted: :meth:`__call__` counts)."""
        from abcscale.runner.train import run_program

        spec = self.spec.model_copy(update={"constants": constants})
        cell = self.cell.model_copy(update={"gamma": constants.gamma})
        hyper = layer_hyper(spec, cell)
        with interrupt_raised():  # a Ctrl-C JAX's gc callback swallowed: raised after the run, not lost
            out = run_program(self.program, self.corpus.train, self.corpus.eval, np.asarray(hyper.multiplier),
                              np.asarray(hyper.init_std), beta * np.asarray(hyper.lr_factor)[None],
                              np.asarray(hyper.epsilon)[None], np.asarray([seed]),
                              wd_3=np.asarray(hyper.weight_decay), compiler=self.compiler)
        loss = float(out.eval_loss[0])
        bad = bool(out.diverged[0]) or not np.isfinite(loss)
        return (float(out.loss_at_init[0]) if bad else loss), bad


def lr_sweep(spec: SweepSpec, constants: Constants, width: int, log2_lr: list[float], seeds: int) -> np.ndarray:
    """Eval losses [LR, seed] of ``spec``'s one cell at ``width`` with base-width ``constants`` (the transfer
    check's sweep: seeds 0..seeds-1 per beta 2^log2_lr, through :func:`~abcscale.runner.sweep.run_cell`). A
    diverged run scores its loss at init, as in :class:`Evaluator`. ``spec.base_width`` must be set: the
    constants refer to it, not to ``width``."""
    from abcscale.runner.sweep import run_cell

    if spec.base_width is None:
        raise ValueError("base_width: the transfer check needs the width the constants were tuned at")
    s = spec.with_overrides(widths=[width], constants=constants.model_dump(), gammas=[constants.gamma.model_dump()],
                            log2_lr=list(log2_lr), seeds=seeds, coord_steps=[], curves=False)
    with interrupt_raised():  # a Ctrl-C JAX's gc callback swallowed: raised after the width, not lost
        rows = run_cell(s, s.cells()[0]).rows
    loss = rows["eval_loss"].to_numpy(dtype=float)
    bad = rows["diverged"].to_numpy(dtype=bool) | ~np.isfinite(loss)
    loss = np.where(bad, rows["loss_at_init"].to_numpy(dtype=float), loss)
    index = {g: i for i, g in enumerate(log2_lr)}
    out = np.full((len(log2_lr), seeds), np.nan)
    out[[index[g] for g in rows["log2_lr"]], rows["seed"].to_numpy(dtype=int)] = loss
    return out


class _Actor:
    """One Ray worker's :class:`Evaluator` (its program compiled once, on the worker). ``expect``: the driver's
    :func:`~abcscale.runner.sweep.worker_identity`; a worker reading other data or model code refuses to start (its
    losses would enter a study named for the driver's)."""

    def __init__(self, spec: SweepSpec, expect: dict[str, str] | None = None) -> None:
        from abcscale.runner import executables
        from abcscale.runner.sweep import _read_names, identity_differs, stale_worker, worker_identity, worker_reads

        executables.xla_options()  # what XLA reads as JAX starts, before the model's import may start it
        self.refused: ValueError | None = None
        try:
            worker_reads(spec)  # a model or data file it cannot find: a field's error, not the actor's death
            self.evaluator = Evaluator(spec)
            mine = worker_identity(self.evaluator.spec, self.evaluator.cell, reads=_read_names(expect or {}))
            if expect is not None and (differ := identity_differs(expect, mine)):
                raise stale_worker("search", expect, mine, differ)
        except ValueError as exc:  # raised at each run: a failed start reaches the driver as Ray's text alone
            self.refused = exc

    def run(self, constants: Constants, beta: float, seed: int) -> tuple[float, bool]:
        if self.refused is not None:
            raise self.refused
        return self.evaluator.evaluate(constants, beta, seed)


class RayEvaluator:
    """Evaluations spread over a Ray cluster (``address``; None starts or joins a local one): ``workers`` actors,
    each holding an :class:`Evaluator`; :meth:`map` runs a batch and returns the losses in order."""

    def __init__(self, spec: SweepSpec, workers: int, address: str | None = None) -> None:
        import ray
        from ray.util import ActorPool

        from abcscale.runner.sweep import check_model, worker_identity

        start_ray(address)
        actor = ray.remote(_Actor)
        base = spec.with_overrides(widths=[spec.base], coord_steps=[], curves=False)  # as Evaluator reads it
        check_model(base)  # the model's files as they are now, as each worker's Evaluator reads them (a review)
        expect = worker_identity(base, base.cells()[0])
        self.pool = ActorPool([actor.remote(spec, expect) for _ in range(workers)])
        self.data_hash = spec.corpus().sha256
        self.runs = self.diverged = 0  # as :class:`Evaluator` counts them

    def map(self, jobs: list[tuple[Constants, float, int]]) -> list[float]:
        import ray

        from abcscale.runner.sweep import ray_value_error

        try:
            out = list(self.pool.map(lambda a, job: a.run.remote(*job), jobs))
        except ray.exceptions.RayError as exc:
            if (said := ray_value_error(exc)) is None:
                raise
            raise said from None
        self.runs += len(out)
        self.diverged += sum(bool(bad) for _, bad in out)
        return [float(loss) for loss, _ in out]
