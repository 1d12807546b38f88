"""An AdamW recommendation without a weight decay printed 0 at every layer, which a user review read as advice
("use 0"); abcscale carries a decay tuned at the base width, it does not choose one, and now says so."""

from __future__ import annotations

import abcscale
from abcscale.fitting import fit_table
from abcscale.fitting.synthetic import synthetic_sweep

NOTE = "weight_decay: none given, so 0 at every layer"


def _said(rec) -> bool:
    return any(w.startswith(NOTE) for w in rec.warnings)


def test_an_adamw_answer_without_a_decay_says_it_chose_none():
    rec = abcscale.recommend("mup", "adamw", width=4096, base_width=256, beta=3e-3)
    assert _said(rec) and all(s.weight_decay == 0 for s in rec.layers)
    for given in (0.0, 0.1):  # a decay the user gave, zero included, is carried without a word
        assert not _said(abcscale.recommend("mup", "adamw", width=4096, base_width=256, beta=3e-3,
                                            weight_decay=given))
    assert not _said(abcscale.recommend("mup", "adam", width=4096, base_width=256, beta=3e-3))  # no decay to give


def test_a_fits_adamw_answer_says_it_too():
    table = synthetic_sweep((128, 256, 512), seeds=2, group={"parameterization": "standard", "optimizer": "adamw",
                                                             "lr_mode": "global"})
    fit = fit_table(table, n_boot=50)
    assert _said(abcscale.recommend(fit=fit, width=4096))
    assert not _said(abcscale.recommend(fit=fit, width=4096, weight_decay=0.05))
