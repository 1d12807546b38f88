"""Evaluate one set of base-width constants: train one seed at the base width, return its eval loss.

The tuner (:mod:`abcscale.usecases.tune`) calls an :class:`Evaluator` once per (trial, seed). Every call runs
the same compiled program: the constants change only runtime arrays (per-layer LRs, init stds,
multipliers, epsilons), so the whole search at one width compiles once. One run per call (M = 1): a
search proposes trials one at a time, and on CPU single runs are the fast path (``runner.sweep.chunk_size``).
"""

from __future__ import annotations

import numpy as np

from abcscale.runner.spec import SweepSpec
from abcscale.runner.sweep import _program, layer_hyper, record_steps
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

    def __call__(self, constants: Constants, beta: float, seed: int) -> float:
        from abcscale.runner.train import run_program

        spec = self.spec.model_copy(update={"constants": constants})
        cell = self.cell.model_copy(update={"gamma": constants.gamma})
        hyper = layer_hyper(spec, cell)
        out = run_program(self.program, self.corpus.train, self.corpus.eval, np.asarray(hyper.multiplier),
                          np.asarray(hyper.init_std), beta * np.asarray(hyper.lr_factor)[None],
                          np.asarray(hyper.epsilon)[None], np.asarray([seed]),
                          wd_3=np.asarray(hyper.weight_decay), compiler=self.compiler)
        self.runs += 1
        loss = float(out.eval_loss[0])
        return float(out.loss_at_init[0]) if bool(out.diverged[0]) or not np.isfinite(loss) else loss
