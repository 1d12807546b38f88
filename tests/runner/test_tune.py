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
                          steps=4, batch=4, seq_len=8, depth=1, data="synthetic", eval_batches=1,
                          gamma_range=(0.5, 2.0))  # as the CLI's --gamma-range (the API had none until session 80)
    assert load_constants(out) == tuned and tuned.training["steps"] == 4 and tuned.trials_run == 3
    assert abcscale.recommend(width=64, constants=out).base_width == 16
    assert tuned.settings.gamma_range == (0.5, 2.0)
    assert all(0.5 <= v <= 2.0 for t in tuned.history for k, v in t.params.items() if k.startswith("gamma"))


def test_the_python_api_refuses_a_range_of_constants_not_searched():
    import pytest

    import abcscale

    with pytest.raises(ValueError, match=r"^scale_range: no init_scale or multiplier is searched \(search "
                                         r"\['gamma'\]\); add init_scale to search or drop scale_range$"):
        abcscale.tune("mup", "adam", base_width=16, search=["gamma"], scale_range=(0.5, 2.0), model="mlp")
    with pytest.raises(ValueError, match=r"^epsilon_range: expected finite 0 < LOW < HIGH"):
        abcscale.tune("mup", "adam", base_width=16, search=["epsilon"], epsilon_range=(1e-6, 1e-9), model="mlp")


def test_lr_sweep_trains_at_the_width_with_the_base_widths_constants():
    from abcscale.runner.tune import lr_sweep

    gamma = PerLayer(embedding=2.0, hidden=1.0, readout=0.5)
    spec = SPEC.with_overrides(base_width=16)
    losses = lr_sweep(spec, Constants(gamma=gamma), 32, [-7.0, -5.0], 2)
    ref = SPEC.with_overrides(widths=[32], base_width=16, gammas=[gamma], log2_lr=[-7.0, -5.0], seeds=2)
    rows = run_cell(ref, ref.cells()[0]).rows.set_index(["log2_lr", "seed"])["eval_loss"]
    assert losses.shape == (2, 2)
    for i, g in enumerate([-7.0, -5.0]):
        for s in range(2):
            assert math.isclose(losses[i, s], rows[(g, s)], rel_tol=1e-5)
    import pytest

    with pytest.raises(ValueError, match="^base_width: "):
        lr_sweep(SPEC, Constants(), 32, [-6.0], 2)


def test_verify_adds_one_transfer_check_per_width(tmp_path):
    import abcscale
    from abcscale.usecases.tune_verify import verify

    tuned = abcscale.tune("mup", "adam", base_width=16, trials=2, reeval_seeds=2, top=1, model="mlp",
                          steps=4, batch=4, seq_len=8, depth=1, data="synthetic", eval_batches=1)
    checked = verify(tuned, [32], lrs=3, seeds=2)
    (c,) = checked.transfer
    assert (c.width, c.ratio, c.seeds, len(c.log2_lr)) == (32, 2.0, 2, 3)
    assert math.isclose(c.log2_lr[1], math.log2(tuned.beta), abs_tol=1e-9)  # per layer: centred on the tuned beta
    lo, hi = c.interval
    # no win over an optimum on the grid's edge: it may do better past it (session 31)
    assert lo <= c.difference <= hi and c.tuned_wins == (True if lo > 0 and not c.default_at_edge else
                                                         False if hi < 0 and not c.tuned_at_edge else None)
    assert checked.model_copy(update={"transfer": []}) == tuned  # nothing else changed
