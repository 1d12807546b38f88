r"""Decoupled weight decay across width (AdamW; docs/theory.md section 9).

AdamW shrinks every weight each step on top of Adam's update. In the **coupled** form (PyTorch's
``torch.optim.AdamW``, ``optax.adamw``) the step is :math:`W \leftarrow W - \eta_l (u + \lambda_l W)`, so W is
an exponential moving average of recent updates with timescale :math:`1 / (\eta_l \lambda_l)` steps (Wang &
Aitchison 2024, arXiv 2405.13698). Their rule keeps that timescale fixed as the model grows; with
:math:`\eta_l = \beta \gamma_l (n/b)^{-c_l}` that means

.. math::

    \lambda_l = \lambda \, (n / b)^{c_l}, \qquad \eta_l \lambda_l = \beta \gamma_l \lambda \ \text{at every width.}

In the **independent** form the step is :math:`W \leftarrow W - \eta_l u - \lambda W`: the per-step shrink
:math:`\lambda` is already the timescale's inverse and stays the same at every width.

Under the symmetry (:mod:`abcscale.theory.symmetry`) the stored weight maps as :math:`W \to W / t` and the
effective weight :math:`m W` is unchanged; the shrink factor :math:`1 - \eta\lambda` (coupled) or
:math:`1 - \lambda` (independent) must not change, so a coupled decay maps as :math:`\lambda \to \lambda t^k`
(the LR maps as :math:`\eta \to \eta / t^k`) and an independent one not at all.
"""

from __future__ import annotations

from collections.abc import Mapping

from abcscale.schemas.enums import LAYERS, Layer, WeightDecayMode


def layer_weight_decays(weight_decay: float, mode: WeightDecayMode | str, ratio: float,
                        c: Mapping[Layer, float]) -> dict[Layer, float]:
    """Weight decay per layer at width ``ratio`` times the base width, from ``weight_decay`` tuned at the base.

    ``coupled``: wd * (n/b)^c_l, so lr_l * wd_l does not move with width; ``independent``:
    ``weight_decay`` on every layer at every width.
    """
    if WeightDecayMode.parse(mode) is WeightDecayMode.coupled:
        return {layer: weight_decay * ratio ** c[layer] for layer in LAYERS}
    return dict.fromkeys(LAYERS, weight_decay)


def convert_weight_decay(weight_decay: float, mode: WeightDecayMode | str, factor: float, k: int) -> float:
    """A layer's weight decay under the symmetry with factor t (module docstring): t^k times it when coupled."""
    if WeightDecayMode.parse(mode) is WeightDecayMode.coupled:
        return weight_decay * factor**k
    return weight_decay
