"""Session 58: a library user's review. `rec["embedding"]` on a recommendation asked in the multiplier_free (or
mup) form returned the abc form's numbers in silence (a plain model's embedding LR 32x too small at 1024 over 256)."""

from __future__ import annotations

import pytest

import abcscale


@pytest.mark.parametrize("form", ["multiplier_free", "plain", "mup"])
def test_indexing_a_recommendation_in_another_form_is_refused(form):
    rec = abcscale.recommend("mup", "adamw", width=1024, base_width=256, beta=3e-3, weight_decay=0.1, form=form)
    with pytest.raises(ValueError, match=r"is in the (multiplier_free|mup) form, and rec\['embedding'\] would be"):
        rec["embedding"]
    abc = rec.abc_setting("embedding")  # the abc numbers stay reachable, by name
    assert abc == next(s for s in rec.layers if s.layer.value == "embedding")
    assert rec.groups["embedding"].lr != pytest.approx(abc.lr)  # they differ: that is the point


def test_the_abc_form_indexes_as_before():
    rec = abcscale.recommend("mup", "adam", width=1024, base_width=256, beta=3e-3)
    assert rec["hidden"].lr == pytest.approx(7.5e-4) and rec["hidden"] == rec.abc_setting("hidden")
