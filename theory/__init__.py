r"""The abc-parameterization algebra of Everett et al. (2024), arXiv 2407.05872; maths in docs/theory.md.

A layer l of width n has a multiplier :math:`n^{-a_l}`, an init std :math:`n^{-b_l}` and a learning
rate :math:`\eta_l = \beta \gamma_l (n / b)^{-c_l}`, with beta tuned at the base width b.

Modules, by concept:

- :mod:`~abcscale.theory.tables`: the (a, b) table of each parameterization, stability at init;
- :mod:`~abcscale.theory.rules`: per-optimizer rules (update exponent, symmetry k, epsilon), one per layer for
  a mixed optimizer (Muon);
- :mod:`~abcscale.theory.solver`: the LP for the smallest stable c per layer, the exponent table;
- :mod:`~abcscale.theory.epsilon`: Adam's epsilon exponents across width;
- :mod:`~abcscale.theory.weight_decay`: AdamW's decoupled weight decay across width and under the symmetry;
- :mod:`~abcscale.theory.transfer`: concrete per-layer settings at a new width;
- :mod:`~abcscale.theory.symmetry`: converting a setting between parameterizations;
- :mod:`~abcscale.theory.groups`: the answer for a real model: roles (vector-like parameters included), name
  rules, the abc / multiplier-free / mup forms, microsoft/mup in and out.

Contract of the layer: pure functions of their arguments over numpy and scipy. It imports only
``abcscale.schemas`` (never fitting, runner, use cases, service or JAX) and returns domain objects
(:class:`ExponentSolution`, ``Transfer``, :class:`Conversion`, ``ExponentRow``), never API envelopes.
Bad input is a ValueError naming what is wrong; an optimizer or parameterization without an entry in
:data:`OPTIMIZER_RULES` or :data:`AB_TABLES` is a ValueError naming the table to extend, never a
silent fallback.
"""

from abcscale.theory.epsilon import epsilon_exponents, layer_epsilons
from abcscale.theory.groups import DEFAULT_RULES, assign, from_mup, group_spec, invariants, mup_setting, to_mup
from abcscale.theory.rules import (
    MUON_CONVENTIONS,
    OPTIMIZER_RULES,
    LayerRules,
    OptimizerRule,
    layer_rules,
    optimizer_rule,
)
from abcscale.theory.solver import ExponentSolution, solve_exponents, theory_exponent, theory_table
from abcscale.theory.symmetry import Conversion, convert
from abcscale.theory.tables import AB_TABLES, ab_table, init_stability_warnings, parameterization_of
from abcscale.theory.transfer import transfer
from abcscale.theory.weight_decay import convert_weight_decay, layer_weight_decays

__all__ = [
    "AB_TABLES",
    "DEFAULT_RULES",
    "assign",
    "from_mup",
    "group_spec",
    "invariants",
    "mup_setting",
    "to_mup",
    "MUON_CONVENTIONS",
    "OPTIMIZER_RULES",
    "LayerRules",
    "Conversion",
    "ExponentSolution",
    "OptimizerRule",
    "ab_table",
    "convert",
    "convert_weight_decay",
    "epsilon_exponents",
    "init_stability_warnings",
    "layer_epsilons",
    "layer_weight_decays",
    "layer_rules",
    "optimizer_rule",
    "parameterization_of",
    "solve_exponents",
    "theory_exponent",
    "theory_table",
    "transfer",
]
