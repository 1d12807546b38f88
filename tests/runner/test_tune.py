"""The tuner's evaluator: the same loss as a sweep's run at those constants, one compiled program for all."""

from __future__ import annotations

import math

from abcscale.runner.spec import SweepSpec
from abcscale.runner.sweep import run_cell
from abcscale.runner.tune import Evaluator
from abcscale.schemas.theory import Constants, PerLayer

SPEC = SweepSpec(model="mlp", parameterizations=["mup"], optimizers=["adam"], widths=[16], steps=6, batch=4,
                 seq_len=8, depth=1, data="synthetic", eval_batches=1)


def test_the_evaluator_matches_a_sweep_run_and_compiles_once():
    ev = Evaluator(SPEC)
    gamma = PerLayer(embedding=3.0, hidden=1.0, readout=0.2)
    loss = ev(Constants(gamma=gamma, init_scale=PerLayer(embedding=1.0, hidden=2.0, readout=0.5)), 2.0 ** -6, 0)
    spec = SPEC.with_overrides(gammas=[gamma], log2_lr=[-6.0], seeds=1, init_scale="1,2,0.5")
    row = run_cell(spec, spec.cells()[0]).rows.iloc[0]
    assert math.isclose(loss, row["eval_loss"], rel_tol=1e-5)
    ev(Constants(epsilon=1e-6), 2.0 ** -4, 1)
    assert len(ev.compiler._programs) == 1 and ev.runs == 2


def test_a_diverged_run_scores_its_loss_at_init():
    ev = Evaluator(SPEC)
    loss = ev(Constants(), 2.0 ** 6, 0)  # an absurd LR diverges
    assert math.isfinite(loss) and loss >= ev(Constants(), 2.0 ** -6, 0)


def test_the_python_api_tunes_and_writes_the_file(tmp_path):
    import abcscale
    from abcscale.usecases.tune import load_constants

    out = tmp_path / "tuned.json"
    tuned = abcscale.tune("mup", "adam", base_width=16, trials=3, reeval_seeds=2, top=1, out=out, model="mlp",
                          steps=4, batch=4, seq_len=8, depth=1, data="synthetic", eval_batches=1)
    assert load_constants(out) == tuned and tuned.training["steps"] == 4 and tuned.trials_run == 3
    assert abcscale.recommend(width=64, constants=out).base_width == 16
