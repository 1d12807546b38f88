r"""The symmetry of abc-parameterizations: the same model written in another parameterization.

For any per-layer theta (docs/theory.md section 4),

.. math::

    (a_l, b_l, c_l) \to (a_l + \theta_l, \; b_l - \theta_l, \; c_l - k \, \theta_l)

leaves the function and the training dynamics unchanged, with k from the optimizer's rule
(:mod:`abcscale.theory.rules`: SGD 2, Adam, AdamW, Lion and Muon 1, Adafactor 0). At one width n the constants carry the
same map with the factor :math:`t_l = n^{-\theta_l}`:

.. math::

    m \to m \, t, \quad \sigma \to \sigma / t, \quad \eta \to \eta / t^k, \quad \epsilon \to \epsilon \, t^{k'}

where k' (``epsilon_k``) is 1 for Adam: epsilon sits beside :math:`\sqrt{v}`, which scales as the
gradient. AdamW's coupled weight decay maps as :math:`\lambda \to \lambda t^k`, keeping
:math:`\eta \lambda` and so the per-step shrink of W, while an independent one is unchanged
(:mod:`abcscale.theory.weight_decay`, docs/theory.md section 9). So standard ~ NTK (theta = 1/2 on hidden
and readout) and muP ~ mean-field (theta = 1/2 on every layer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from abcscale.schemas.enums import LAYERS, Layer, Parameterization, WeightDecayMode
from abcscale.schemas.theory import ABTable, Alignment, LayerSetting, Setting
from abcscale.theory.rules import layer_rules
from abcscale.theory.solver import solve_exponents
from abcscale.theory.tables import ab_table, parameterization_of
from abcscale.theory.weight_decay import convert_weight_decay


@dataclass(frozen=True)
class Conversion:
    """A setting converted between parameterizations, with the per-layer theta and factor t used.

    ``symmetric`` says whether the two (a, b) tables are related by the symmetry (then the exponent
    tables agree too: ``c_to = c_from - k theta``); ``c_from`` and ``c_to`` are the LP's exponents. ``k`` is the
    optimizer's k, shared by every layer (a mixed optimizer whose layers' k differed would map each layer with
    its own, and ``k`` would be an error; Muon's are all 1).
    """

    setting: Setting
    theta: dict[Layer, float]
    factor: dict[Layer, float]
    k: int
    symmetric: bool
    c_from: dict[Layer, float]
    c_to: dict[Layer, float]
    warnings: tuple[str, ...]


def convert(
    setting: Setting,
    source: Parameterization | str | ABTable,
    target: Parameterization | str | ABTable,
    alignment: Alignment | str | None = None,
    weight_decay_mode: WeightDecayMode | str = WeightDecayMode.coupled,
) -> Conversion:
    r"""The setting under ``target`` that computes the same function with the same training dynamics.

    Per layer theta = a_target - a_source and t = n^{-theta} at n = ``setting.width`` (module
    docstring's map). The map is exact at ``setting.width``; it is a symmetry of the whole width family
    only when b_target = b_source - theta for every layer, which ``symmetric`` reports. A layer's
    ``weight_decay`` is read in ``weight_decay_mode`` (the form the setting's numbers are in).
    """
    ab1, ab2 = ab_table(source), ab_table(target)
    opt = setting.optimizer
    rules = layer_rules(opt)
    k = rules.k
    n = setting.width
    theta = {l: ab2[l].a - ab1[l].a for l in LAYERS}
    t = {l: float(n) ** (-theta[l]) for l in LAYERS}
    layers = []
    for s in setting.layers:
        tl, rule = t[s.layer], rules[s.layer]
        eps = s.epsilon
        if eps is not None and rule.has_epsilon:
            eps = eps * tl**rule.epsilon_k
        wd = s.weight_decay
        if wd is not None:
            wd = convert_weight_decay(wd, weight_decay_mode, tl, rule.k)
        layers.append(LayerSetting(layer=s.layer, multiplier=s.multiplier * tl, init_std=s.init_std / tl,
                                   lr=s.lr / tl**rule.k, epsilon=eps, weight_decay=wd))
    out = Setting(parameterization=parameterization_of(target), optimizer=opt, width=n, layers=layers)
    off = [l.value for l in LAYERS if not math.isclose(ab2[l].b, ab1[l].b - theta[l], abs_tol=1e-12)]
    c1 = solve_exponents(ab1, opt, alignment).c
    c2 = solve_exponents(ab2, opt, alignment).c
    warnings = []
    if off:
        warnings.append(
            "source and target are not related by the symmetry (a+b differs on "
            + ", ".join(off) + "): the converted setting is exact at this width only; "
            "the two parameterizations scale differently with width"
        )
    if any(s.epsilon and rules[s.layer].has_epsilon and not math.isclose(t[s.layer] ** rules[s.layer].epsilon_k, 1.0)
           for s in setting.layers):  # said only where some epsilon changed (mup -> mup changes none)
        # "to keep the symmetry exact" beside "not related by the symmetry" contradicted itself (a review)
        warnings.append("Adam epsilon was rescaled with the layer (eps * t) to keep the symmetry exact" if not off
                        else "Adam epsilon was rescaled with the layer (eps * t), so that at this width the "
                        "converted setting trains as the source does")
    return Conversion(out, theta, t, k, not off, c1, c2, tuple(warnings))
