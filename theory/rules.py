r"""Per-optimizer rules: everything the theory needs to know about an optimizer, in one table.

An optimizer enters the theory only through the exponent of the update it makes to a layer
(docs/theory.md section 2). For layer l with exponents (a_l, b_l, c_l) that exponent is

.. math::

    U_l = p_a \, a_l + p_b \, b_l + c_l \; [+ \, G \ \text{for } l \le L \text{ if the gradient carries a
    backprop scale}]

====================  =====  =====  =======  ====================================================
optimizer             p_a    p_b    G        why
====================  =====  =====  =======  ====================================================
sgd                   2      0      yes      the gradient carries a_l and the backprop scale G + a_l
adam                  1      0      no       the normalised step is O(1) per coordinate
adamw                 1      0      no       Adam's step; the decoupled decay is scaled separately
adafactor             1      1      no       parameter scaling: the step is proportional to rms(W)
====================  =====  =====  =======  ====================================================

The symmetry (a, b, c) -> (a + theta, b - theta, c - k theta) (docs/theory.md section 4) leaves
every U_l unchanged exactly when :math:`k = p_a - p_b`, which the tests check for every rule.
Adafactor additionally keeps c_l >= 0 (the paper's constraint). Only Adam has an epsilon; its
epsilon exponents and the way epsilon maps under the symmetry live in :mod:`abcscale.theory.epsilon`.
AdamW is Adam's rule with ``weight_decay``: each step its decoupled decay removes a fraction of W that
the rule of :mod:`abcscale.theory.weight_decay` keeps the same at every width (docs/theory.md section 9),
so it changes no U_l, and its exponents and epsilon are Adam's.

To add an optimizer (e.g. Lion, whose sign update is Adam-like): add the member to
``schemas.enums.Optimizer`` and a rule here. Without a rule every theory entry point raises a
ValueError naming this table; nothing falls back silently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from abcscale.schemas.enums import Layer, Optimizer
from abcscale.schemas.theory import ABTable
from abcscale.theory.epsilon import epsilon_exponents

#: (a, b) table and per-layer c -> per-layer epsilon exponents e_l.
EpsilonRule = Callable[[ABTable, Mapping[Layer, float]], dict[Layer, float]]


@dataclass(frozen=True)
class OptimizerRule:
    """How one optimizer's update scales with width (see the module docstring for the maths).

    ``k``: the symmetry exponent, c -> c - k theta. ``update_a``, ``update_b``: p_a and p_b in U_l.
    ``backprop_scale``: the update of the embedding and hidden layers carries the backprop exponent
    G = min(a_{L+1} + b_{L+1}, 2 a_{L+1} + c_{L+1}) (SGD). ``c_min``: a lower bound on every c_l, or
    None. ``epsilon_rule``: the per-layer epsilon exponents, None for an optimizer without epsilon.
    ``epsilon_k``: epsilon maps as eps -> eps t^epsilon_k under the symmetry. ``weight_decay``: the
    optimizer has a decoupled weight decay (AdamW) that the theory transfers per layer.
    """

    k: int
    update_a: float
    update_b: float
    backprop_scale: bool = False
    c_min: float | None = None
    epsilon_rule: EpsilonRule | None = None
    epsilon_k: int = 0
    weight_decay: bool = False

    @property
    def has_epsilon(self) -> bool:
        """Whether the optimizer has an epsilon that the theory scales (Adam)."""
        return self.epsilon_rule is not None


OPTIMIZER_RULES: dict[Optimizer, OptimizerRule] = {
    Optimizer.sgd: OptimizerRule(k=2, update_a=2, update_b=0, backprop_scale=True),
    Optimizer.adam: OptimizerRule(k=1, update_a=1, update_b=0, epsilon_rule=epsilon_exponents, epsilon_k=1),
    Optimizer.adafactor: OptimizerRule(k=0, update_a=1, update_b=1, c_min=0.0),
    Optimizer.adamw: OptimizerRule(k=1, update_a=1, update_b=0, epsilon_rule=epsilon_exponents, epsilon_k=1,
                                   weight_decay=True),
}


def optimizer_rule(optimizer: Optimizer | str) -> OptimizerRule:
    """The rule of ``optimizer``; a ValueError naming :data:`OPTIMIZER_RULES` if it has none."""
    opt = Optimizer.parse(optimizer)
    try:
        return OPTIMIZER_RULES[opt]
    except KeyError:
        known = ", ".join(o.value for o in OPTIMIZER_RULES)
        raise ValueError(
            f"no theory rule for optimizer {opt.value!r}; add one to OPTIMIZER_RULES in theory/rules.py"
            f" (rules exist for {known})"
        ) from None
