"""A fit's repr is a summary a notebook can show (a review: 31,000 characters for the tour's fit, every field), with
each group's exponent, its interval and level, theory's verdict and the prediction's band; ``model_dump`` keeps all."""

from __future__ import annotations

from pathlib import Path

import abcscale
from abcscale.fitting.synthetic import synthetic_sweep

TOUR = Path(__file__).resolve().parents[2] / "examples" / "tour-sweep.parquet"


def test_a_fits_repr_is_one_line_a_group_with_its_intervals_and_level():
    fit = abcscale.fit(TOUR, target_width=1024, confidence_level=0.9)
    text = repr(fit)
    assert len(text) < 2000 and text.startswith("FitResult(4 groups by width, 90% intervals")
    assert text == f"FitResult({fit.summary()})"
    lines = fit.summary().splitlines()[1:]
    assert len(lines) == len(fit.groups)
    for g, line in zip(fit.groups, lines, strict=True):
        e, p = g.exponent, g.prediction
        assert f"exponent {e.estimate:.3g}, 90% CI [{e.ci.low:.3g}, {e.ci.high:.3g}]" in line
        assert f"(theory {g.theory_text()}: {'consistent' if g.consistent else 'INCONSISTENT'})" in line
        assert f"LR* at 1024: {p.lr:.3g}, 90% CI [{p.ci.low:.3g}, {p.ci.high:.3g}]" in line
        assert repr(g) == f"GroupFit({line.strip()})"
    assert len(str(fit.model_dump())) > 10 * len(text)  # the fields are all still there


def test_a_group_without_a_law_and_a_table_without_theory_say_so():
    table = synthetic_sweep(widths=(64,), seeds=1, step=0.5, half_range=2.0)
    (g,) = abcscale.fit(table).groups
    assert "no exponent" in repr(g) and "LR* at" not in repr(g), repr(g)
    wide = synthetic_sweep(widths=(64, 128, 256), seeds=1, step=0.5, half_range=2.0)
    (g,) = abcscale.fit(wide).groups
    assert "(no theory)" in repr(g), repr(g)  # no parameterization column: nothing to be consistent with
