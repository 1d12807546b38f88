"""A sweep's table says the per-layer constants its runs trained with (gamma and, since session 64, init_scale), and
a fit of it carries them into its recommendation: one run with ``--init-scale 2,0.5,1`` was recommended at the
default init scales (every init std off by that factor, unsaid; a notebook user's review)."""

from __future__ import annotations

import abcscale
from abcscale.fitting.predict import _fill_constants
from abcscale.runner.sweep import run_sweep
from abcscale.schemas.theory import Constants, PerLayer


def test_a_fit_of_a_sweep_recommends_with_the_constants_it_trained_with(tiny_spec, tmp_path):
    constants = Constants(init_scale=PerLayer(embedding=2.0, hidden=0.5, readout=1.0))
    spec = tiny_spec.model_copy(update={"constants": constants, "gammas": [PerLayer(embedding=1.0, hidden=2.0,
                                                                                     readout=1.0)]})
    rows = run_sweep(spec, tmp_path, progress=False)
    assert {(r.init_scale_embedding, r.init_scale_hidden, r.init_scale_readout) for r in rows.itertuples()} == {
        (2.0, 0.5, 1.0)}
    fit = abcscale.fit(rows)
    (group,) = fit.groups
    assert group.trained_constants["init_scale"] == {"embedding": 2.0, "hidden": 0.5, "readout": 1.0}
    assert group.trained_constants["gamma"] == {"embedding": 1.0, "hidden": 2.0, "readout": 1.0}
    # what recommend fills from the fit where the caller leaves the constants at their defaults (its law and the
    # per-layer numbers: tests/fitting/test_review_s64.py on tables with known truth)
    filled, notes = _fill_constants(group, Constants(), spec.optimizers[0])
    assert filled.init_scale == constants.init_scale and filled.gamma == spec.gammas[0]
    assert any(n.startswith("init_scale from the fit's runs: embedding 2, hidden 0.5, readout 1") for n in notes)
