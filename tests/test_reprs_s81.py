"""The Python API's answers show as a few readable lines in a notebook, as ``FitResult`` does (scipy.stats' named
results): a recommendation was 3,500 characters of every field, ``convert``'s 1,700, ``from_mup``'s 2,000, and
``theory_table()``'s list 38,000. Every field is still in ``model_dump()``."""

from __future__ import annotations

import abcscale
from tests.helpers import TOUR_TABLE


def _layer_line(text: str, layer: str) -> str:
    return next(line.strip() for line in text.splitlines() if line.strip().startswith(f"{layer}:"))


def test_a_recommendation_shows_its_setup_and_each_layers_numbers():
    rec = abcscale.recommend("mup", "adamw", width=1024, base_width=64, beta=1e-3, constants={"weight_decay": 0.1})
    text = repr(rec)
    assert len(text) < 700 and text.startswith("Recommendation(mup + adamw (per_layer LRs, full alignment) at width "
                                                "1024, from base width 64")
    assert "from theory: base LR 0.001 at width 64" in text
    for layer in ("embedding", "hidden", "readout"):
        s = rec[layer]
        line = _layer_line(text, layer)
        assert f"lr {s.lr:.3g}" in line and f"init std {s.init_std:.3g}" in line
        assert f"multiplier {s.multiplier:.3g}" in line and f"weight decay {s.weight_decay:.3g}" in line
    assert rec.model_dump()["layers"][1]["lr"] == rec["hidden"].lr  # the fields are all there


def test_a_fits_recommendation_shows_its_band_at_its_level():
    fit = abcscale.fit(TOUR_TABLE, target_width=1024, confidence_level=0.9)
    rec = abcscale.recommend(fit=fit, width=1024, group="parameterization=mup,lr_mode=per_layer")
    text = repr(rec)
    band = rec.band
    assert f"from a fit: LR {band.lr:.3g}, 90% CI [{band.ci.low:.3g}, {band.ci.high:.3g}], safe-side " \
           f"{band.safe_lr:.3g}" in text
    assert f"{len(rec.warnings)} warning" in text and len(text) < 900


def test_convert_from_mup_and_the_theory_table_are_short():
    conv = abcscale.convert("adam", "mup", "sp", width=64, base_width=16, beta=1e-3)
    text = repr(conv)
    assert text.startswith("ConvertResponse(adam: mup -> standard at width 64") and len(text) < 600
    assert f"lr {conv.converted['readout'].lr:.3g}" in _layer_line(text, "readout")
    imported = abcscale.from_mup("adam", base_width=64, lr=1e-3, width=1024)
    text = repr(imported)
    assert imported.command in text and len(text) < 600 and "beta 0.001 at width 64" in text
    rows = abcscale.theory_table()
    row = rows[1]
    assert repr(row) == (f"ExponentRow({row.parameterization} + {row.optimizer.value}, {row.alignment.name} alignment, "
                         f"{row.layer.value}: a={row.a:g}, b={row.b:g}, c={row.c:g})")
    assert len(repr(rows)) < 15_000  # 38,000 before


def test_another_forms_recommendation_shows_that_forms_numbers():
    """In the multiplier-free or mup form the answer is ``rec.groups`` (``rec["embedding"]`` refuses the abc
    numbers there): the summary showed the abc form's, unnamed, 32x off for the embedding (the session's review)."""
    for form in ("multiplier_free", "mup"):
        rec = abcscale.recommend("mup", "adam", width=1024, base_width=32, beta=1e-3, form=form)
        text = repr(rec)
        assert f"in the {form} form (rec.groups)" in text.splitlines()[0]
        for role in ("embedding", "hidden", "readout", "vector"):
            g = rec.groups[role]
            line = _layer_line(text, role)
            assert f"lr {g.lr:.3g}" in line and (g.init_std is None or f"init std {g.init_std:.3g}" in line)
        abc = abcscale.recommend("mup", "adam", width=1024, base_width=32, beta=1e-3)
        assert f"lr {abc['embedding'].lr:.3g}," not in _layer_line(text, "embedding")  # 0.000177, not 0.00566
