"""A possible bend (p under 0.05, not under the 1% that calls it bent) is said without making the prediction
unreliable (session 62, a review: 5-size sweeps over 50x of parameters with a true bend, the slope -0.31 to -0.77,
had p 0.003-0.17; 9 of 12 said nothing and were 1 octave off at 7B, 0 of 12 bands covering; 9 are now said, and a
straight law is said 5-7% of the time, as a 5% test is)."""

from __future__ import annotations

import numpy as np
import pytest

from abcscale.fitting.parts import BEND, BEND_HINT, bend_warning

Z = np.repeat(np.arange(5.0), 3)  # 5 sizes an octave apart, 3 curves each
JITTER = np.array([0.03, -0.04, 0.02, 0.03, -0.03])[Z.astype(int)]  # each size's shared offset
NOISE = np.tile([0.05, -0.05, 0.0], 5)


def _said(curvature: float) -> str | None:
    y = -0.5 * Z - curvature * (Z - 2) ** 2 + JITTER + NOISE
    return bend_warning(Z, y, np.full(Z.size, 0.01), "width")


@pytest.mark.parametrize(("curvature", "kind"), [(0.0, None), (0.04, None), (0.08, "hint"), (0.2, "bend")])
def test_a_possible_bend_is_said_and_a_clear_one_called(curvature, kind):
    said = _said(curvature)
    if kind is None:
        assert said is None
    elif kind == "hint":
        assert said is not None and said.startswith(BEND_HINT) and not said.startswith(BEND)
        assert "its slope would be -" in said and "compare a fit of the larger widths alone" in said
    else:
        assert said is not None and said.startswith(BEND)


def test_the_hint_leaves_the_prediction_reliable():
    import pandas as pd

    from abcscale.fitting import fit_table

    rng = np.random.default_rng(3)
    rows = []
    for i, w in enumerate((64, 128, 256, 512, 1024)):
        star = -8.0 - 0.5 * i - 0.08 * (i - 2) ** 2 + [0.03, -0.04, 0.02, 0.03, -0.03][i]
        for x in np.arange(star - 3, star + 3.01, 0.5):
            for s in range(2):
                rows.append({"width": w, "beta": 2.0**x, "seed": s, "final_loss": 2 + 0.05 * (x - star) ** 2
                             + rng.normal(0, 0.002)})
    g = fit_table(pd.DataFrame(rows), n_boot=50, target_width=8192).groups[0]
    hints = [w for w in g.warnings if w.startswith(BEND_HINT)]  # p 0.036
    assert len(hints) == 1 and not [w for w in g.warnings if w.startswith(BEND)], g.warnings
    assert g.prediction is not None and not g.prediction.unreliable  # said; the prediction is not refused for it
