"""Adam epsilon across width (theory/epsilon.py, docs/theory.md section 5)."""

from __future__ import annotations

import pytest

from abcscale import theory
from abcscale.schemas.enums import LAYERS, EpsilonMode, Layer


def test_epsilon_exponents_follow_gradient_scale():
    sol = theory.solve_exponents("mup", "adam", "full")
    e = theory.epsilon_exponents(sol.ab, sol.c)
    # muP gradients per coordinate: embedding n^-1/2, hidden n^-1, readout n^-1/2
    assert (e[Layer.embedding], e[Layer.hidden], e[Layer.readout]) == (0.5, 1.0, 0.5)


@pytest.mark.parametrize("alignment", ["full", "none"])
@pytest.mark.parametrize("pair", [("standard", "ntk"), ("mup", "mean_field")])
def test_epsilon_exponents_shift_by_theta_under_the_symmetry(pair, alignment):
    """eps -> eps t with t = n^-theta (symmetry.py) is the same statement as e_target = e_source + theta."""
    src, dst = (theory.solve_exponents(p, "adam", alignment) for p in pair)
    e_src, e_dst = theory.epsilon_exponents(src.ab, src.c), theory.epsilon_exponents(dst.ab, dst.c)
    for layer in LAYERS:
        theta = dst.ab[layer].a - src.ab[layer].a
        assert e_dst[layer] == pytest.approx(e_src[layer] + theta)


def test_layer_epsilons_modes():
    e = {Layer.embedding: 0.0, Layer.hidden: 1.0, Layer.readout: 0.5}
    per = theory.layer_epsilons(1e-8, EpsilonMode.per_layer, 16.0, e)
    assert [per[l] for l in LAYERS] == pytest.approx([1e-8, 1e-8 / 16, 1e-8 / 4])
    const = theory.layer_epsilons(1e-8, EpsilonMode.constant, 16.0, e)
    assert [const[l] for l in LAYERS] == [1e-8] * 3
