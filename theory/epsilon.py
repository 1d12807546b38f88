r"""Adam's epsilon across width (docs/theory.md section 5).

Adam divides the first moment by :math:`\sqrt{v} + \epsilon`. Once a layer's per-coordinate gradient
falls below :math:`\epsilon`, the step stops being sign-like and shrinks into a tiny SGD step; gradients
shrink with width at a rate the parameterization sets, so a fixed epsilon fails at large width. The
per-layer remedy scales epsilon with the layer's gradient size:

.. math::

    \epsilon_l = \epsilon \, (n / b)^{-e_l}, \qquad
    e_l = a_l + a_{L+1} + \min(b_{L+1}, c_{L+1}) \ (l \le L), \qquad e_{L+1} = a_{L+1},

where :math:`n^{-(a_{L+1} + \min(b_{L+1}, c_{L+1}))}` is the size of the backprop signal through the
readout and the layer's own multiplier contributes :math:`n^{-a_l}`. ``e_l`` is the *epsilon
exponent*; it is a different quantity from the SGD backprop exponent ``G`` of the LP
(:mod:`abcscale.theory.solver`).

Under the symmetry (:mod:`abcscale.theory.symmetry`) the gradient of a layer scales by the factor t,
so epsilon maps as :math:`\epsilon \to \epsilon t` to keep the update exact.
"""

from __future__ import annotations

from collections.abc import Mapping

from abcscale.schemas.enums import LAYERS, EpsilonMode, Layer
from abcscale.schemas.theory import ABTable
from abcscale.theory._round import clean

E, H, R = Layer.embedding, Layer.hidden, Layer.readout


def epsilon_exponents(ab: ABTable, c: Mapping[Layer, float]) -> dict[Layer, float]:
    r"""Adam's per-layer epsilon exponents e_l, so that :math:`\epsilon_l = \epsilon (n/b)^{-e_l}`.

    ``ab`` holds each layer's (a, b) and ``c`` its LR exponent (only the readout's is read).
    """
    back = ab[R].a + min(ab[R].b, c[R])
    return {E: clean(ab[E].a + back), H: clean(ab[H].a + back), R: clean(ab[R].a)}


def layer_epsilons(epsilon: float, mode: EpsilonMode, ratio: float,
                   exponents: Mapping[Layer, float]) -> dict[Layer, float]:
    """Epsilon per layer at width ``ratio`` times the base width.

    ``constant`` keeps ``epsilon`` at every width; ``per_layer`` scales it by ``ratio ** -e_l``.
    """
    if EpsilonMode(mode) is EpsilonMode.per_layer:
        return {layer: epsilon * ratio ** (-exponents[layer]) for layer in LAYERS}
    return {layer: epsilon for layer in LAYERS}
