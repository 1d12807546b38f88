"""Acceptance (issue 13): the three forms of one answer train identically on the runner's transformer.

``theory.groups.group_spec`` writes a transfer as ``abc`` (the paper's multipliers), ``multiplier_free``
(folded into init std and LR) and ``mup`` (microsoft/mup's multipliers). Each form's per-layer multipliers,
init stds, LRs and epsilons (vector-like role included) go into the runner's training with the same seed;
the loss curves must agree to float tolerance. A negative control (the mup form with its readout LR left
unrescaled) must not, so the comparison can tell forms apart.
"""

from __future__ import annotations

import numpy as np
import pytest

from abcscale import theory
from abcscale.runner.nn import ModelConfig
from abcscale.runner.sweep import ROLE_NAMES
from abcscale.runner.train import Compiler, Program, run_program
from abcscale.schemas.groups import Form, GroupSpec
from abcscale.schemas.theory import BaseConfig
from abcscale.theory.groups import group_spec

WIDTH, BASE, STEPS = 32, 16, 12
LOG2_BETA = {"adam": -6.0, "sgd": 2.0}


def _arrays(gs: GroupSpec, beta: float, base_eps: float) -> tuple[np.ndarray, ...]:
    roles = [gs[r] for r in ROLE_NAMES]
    mult = np.asarray([s.multiplier or 1.0 for s in roles[:3]])
    init = np.asarray([s.init_std for s in roles[:3]])
    lr = np.asarray([[beta * s.lr for s in roles]])
    eps = np.asarray([[base_eps if s.epsilon is None else s.epsilon for s in roles]])
    return mult, init, lr, eps


def _curve(prog: Program, corpus, arrays, compiler: Compiler) -> np.ndarray:
    mult, init, lr, eps = arrays
    out = run_program(prog, corpus.train, corpus.eval, mult, init, lr, eps, np.zeros(1, np.uint32),
                      compiler=compiler)
    assert not out.diverged.any()
    return np.asarray(out.curves[0])


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_abc_multiplier_free_and_mup_forms_train_identically(optimizer):
    from abcscale.runner.data import load_corpus

    corpus = load_corpus("synthetic", 200_000, 0.1, 18)
    prog = Program(ModelConfig("transformer", WIDTH, 1, 16, head_dim=8), optimizer, steps=STEPS, batch=4,
                   schedule="constant", warmup=0.0, eval_batches=1, curves=True)
    tr = theory.transfer("mup", optimizer, BaseConfig(width=BASE, beta=1.0, epsilon=1e-8), WIDTH, "full",
                         "per_layer")
    beta = 2.0 ** LOG2_BETA[optimizer]
    specs = {f: group_spec(tr, f) for f in Form}
    compiler = Compiler()  # one program: the forms differ only in runtime arrays
    curves = {f: _curve(prog, corpus, _arrays(gs, beta, 1e-8), compiler) for f, gs in specs.items()}
    abc = curves[Form.abc]
    assert abc[-1] < abc[0] - 0.05  # it trains: the comparison is not between flat lines
    for form in (Form.multiplier_free, Form.mup):
        np.testing.assert_allclose(curves[form], abc, rtol=1e-4, err_msg=form.value)
    # The mup form's multipliers differ from abc's (readout 1/width_mult), so its LRs must be rescaled too:
    # with the abc readout LR kept, the curve parts from the others.
    mup = specs[Form.mup]
    assert mup["readout"].multiplier != pytest.approx(specs[Form.abc]["readout"].multiplier)
    mult, init, lr, eps = _arrays(mup, beta, 1e-8)
    lr[0, 2] = beta * specs[Form.abc]["readout"].lr
    wrong = _curve(prog, corpus, (mult, init, lr, eps), compiler)
    assert np.max(np.abs(wrong - abc) / abc) > 1e-2
