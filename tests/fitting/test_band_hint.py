"""The unreliable-band warning's advice fits the table: "give the theory columns" only where the table has none;
where it has them and the data put the exponent too far from theory's to lean on it, the advice says so (a README
review, session 33, was told to add columns its table already had)."""

from __future__ import annotations

from abcscale.fitting import fit_table
from abcscale.fitting.synthetic import synthetic_sweep

GROUP = {"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"}  # theory's exponent: -1


def _wide(group):
    # the truth 0 on 3 widths with one width 0.25 octave off the line: the free fit (1 df) is wide and does not
    # reject theory's span (-1 to -0.5, full to no alignment), but the prior test does (0.15 octave off did, until
    # session 51's sharper slope bounds made the free fit reject the span outright)
    sw = synthetic_sweep(widths=(32, 64, 128), base_width=32, exponent=0.0, seeds=2, step=0.5, half_range=2.5,
                         group=group, offsets={64: 0.25})
    g = fit_table(sw, target_width=1024, n_boot=20).groups[0]
    return g, next(w for w in g.prediction.warnings if "octaves of LR: too wide" in w)


def test_with_theory_columns_the_hint_says_why_the_band_is_free():
    g, warning = _wide(GROUP)
    assert g.law.method == "free" and g.consistent is True and g.theory_exponent == -1.0
    assert "fit with the theory setup" not in warning
    assert "could not lean on theory's exponent" in warning
    assert any(w.startswith("the data put the exponent") for w in g.prediction.warnings)


def test_without_theory_columns_the_hint_asks_for_them():
    g, warning = _wide(None)
    assert g.theory_exponent is None and "fit with the theory setup" in warning
