r"""Per-optimizer rules: everything the theory needs to know about an optimizer, in one table.

An optimizer enters the theory only through the exponent of the update it makes to a layer
(docs/theory.md section 2). For layer l with exponents (a_l, b_l, c_l) that exponent is

.. math::

    U_l = p_a \, a_l + p_b \, b_l + c_l + s_l \; [+ \, G \ \text{for } l \le L \text{ if the gradient carries a
    backprop scale}]

====================  =====  =====  =======  ====================================================
optimizer             p_a    p_b    G        why
====================  =====  =====  =======  ====================================================
sgd                   2      0      yes      the gradient carries a_l and the backprop scale G + a_l
adam                  1      0      no       the normalised step is O(1) per coordinate
adamw                 1      0      no       Adam's step; the decoupled decay is scaled separately
adafactor             1      1      no       parameter scaling: the step is proportional to rms(W)
lion                  1      0      no       a sign step: O(1) per coordinate, like Adam
muon (hidden)         1      0      no       s = 1: an orthogonalised step, operator norm O(1) (below)
====================  =====  =====  =======  ====================================================

s_l (``update_shift``) is 0 except on Muon's hidden matrices.

The symmetry (a, b, c) -> (a + theta, b - theta, c - k theta) (docs/theory.md section 4) leaves
every U_l unchanged exactly when :math:`k = p_a - p_b`, which the tests check for every rule.
Adafactor additionally keeps c_l >= 0 (the paper's constraint). Only Adam has an epsilon; its
epsilon exponents and the way epsilon maps under the symmetry live in :mod:`abcscale.theory.epsilon`.
AdamW is Adam's rule with ``weight_decay``: each step its decoupled decay removes a fraction of W that
the rule of :mod:`abcscale.theory.weight_decay` keeps the same at every width (docs/theory.md section 9),
so it changes no U_l, and its exponents and epsilon are Adam's.

Lion (Chen et al. 2023) steps by a sign, O(1) per coordinate like Adam: Adam's exponents, no epsilon, a
coupled decoupled weight decay (docs/theory.md section 11). SGD's weight decay is its L2 term, W -= lr (g + wd W):
without momentum the coupled form itself, carried by the same rule (docs/theory.md section 9).

**Mixed optimizers.** An entry is one rule, or one rule per layer type: Muon orthogonalises the momentum of
the hidden matrices and runs AdamW on the embedding, the readout and the vector-like parameters. Its hidden
rule has ``update_shift = 1`` (an orthogonalised step has operator norm O(1) where Adam's aligned, rank-one-like
sign step has n: U_l counts the entries of the rank-one step with the same operator norm) and
``always_aligned`` (a full-rank orthogonal step meets every input at its operator norm), so under full
alignment its hidden c is Adam's minus 1 (docs/theory.md section 11 derives it). :func:`layer_rules` reads any
entry per layer; :func:`optimizer_rule` serves single-rule optimizers.

To add an optimizer: add the member to ``schemas.enums.Optimizer`` (the vocabulary every schema, CLI flag and
OpenAPI document validates against) and one entry here. Without an entry every theory entry point raises a
ValueError naming this table; nothing falls back silently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from abcscale.schemas.enums import LAYERS, Layer, Optimizer
from abcscale.schemas.theory import ABTable
from abcscale.theory.epsilon import epsilon_exponents

#: (a, b) table and per-layer c -> per-layer epsilon exponents e_l.
EpsilonRule = Callable[[ABTable, Mapping[Layer, float]], dict[Layer, float]]


@dataclass(frozen=True)
class OptimizerRule:
    """How one optimizer's update to one layer scales with width (see the module docstring for the maths).

    ``k``: the symmetry exponent, c -> c - k theta. ``update_a``, ``update_b``: p_a and p_b in U_l;
    ``update_shift``: a constant added to U_l (Muon's 1). ``backprop_scale``: the update of the embedding and
    hidden layers carries the backprop exponent G = min(a_{L+1} + b_{L+1}, U_{L+1}) (SGD). ``c_min``: a lower
    bound on c_l, or None. ``epsilon_rule``: the per-layer epsilon exponents, None for an optimizer without
    epsilon. ``epsilon_k``: epsilon maps as eps -> eps t^epsilon_k under the symmetry. ``weight_decay``: the
    optimizer has a decoupled weight decay (AdamW, Lion, Muon) that the theory transfers per layer.
    ``always_aligned``: the step meets every input at its operator norm (a full-rank orthogonalised step), so
    the layer's alpha and u are the full alignment's whatever the activations do. ``step``: the update this
    layer's parameters take inside a mixed optimizer (Muon's ``muon`` and ``adamw``), which a parameter group
    names; empty for a single-rule optimizer (its own name).
    """

    k: int
    update_a: float
    update_b: float
    backprop_scale: bool = False
    c_min: float | None = None
    epsilon_rule: EpsilonRule | None = None
    epsilon_k: int = 0
    weight_decay: bool = False
    update_shift: float = 0.0
    always_aligned: bool = False
    step: str = ""

    @property
    def has_epsilon(self) -> bool:
        """Whether the optimizer has an epsilon that the theory scales (Adam)."""
        return self.epsilon_rule is not None


@dataclass(frozen=True)
class LayerRules:
    """The rule of each layer type, in ``LAYERS`` order (hashable, so the solver caches on it).

    The summaries (``has_epsilon``, ``weight_decay``, ``k``) answer for the optimizer as a whole: any layer
    has an epsilon / a decoupled decay; the symmetry's k when every layer shares it.
    """

    rules: tuple[OptimizerRule, ...]

    def __getitem__(self, layer: Layer) -> OptimizerRule:
        return self.rules[LAYERS.index(Layer(layer))]

    def items(self) -> list[tuple[Layer, OptimizerRule]]:
        return list(zip(LAYERS, self.rules, strict=True))

    @property
    def mixed(self) -> bool:
        return len(set(self.rules)) > 1

    @property
    def has_epsilon(self) -> bool:
        return any(r.has_epsilon for r in self.rules)

    @property
    def weight_decay(self) -> bool:
        return any(r.weight_decay for r in self.rules)

    @property
    def k(self) -> int:
        """The symmetry's k shared by every layer; a ValueError if the layers' k differ (then use ``[layer].k``)."""
        ks = {r.k for r in self.rules}
        if len(ks) != 1:
            raise ValueError(f"the layers' symmetry exponents differ ({sorted(ks)}); read k per layer")
        return ks.pop()

    @property
    def epsilon_k(self) -> int:
        """The epsilon map's exponent of the layers that have an epsilon (0 when none has)."""
        return max((r.epsilon_k for r in self.rules if r.has_epsilon), default=0)

    def epsilon_exponents(self, ab: ABTable, c: Mapping[Layer, float]) -> dict[Layer, float | None]:
        """Each layer's epsilon exponent e_l from its own rule; None where the layer's optimizer has no epsilon."""
        out: dict[Layer, float | None] = {}
        for layer, rule in self.items():
            out[layer] = None if rule.epsilon_rule is None else rule.epsilon_rule(ab, c)[layer]
        return out


_ADAM = OptimizerRule(k=1, update_a=1, update_b=0, epsilon_rule=epsilon_exponents, epsilon_k=1)
_ADAMW = OptimizerRule(k=1, update_a=1, update_b=0, epsilon_rule=epsilon_exponents, epsilon_k=1, weight_decay=True)
#: the AdamW that runs beside Muon on the embedding, readout and vector-like parameters
_ADAMW_BESIDE = OptimizerRule(k=1, update_a=1, update_b=0, epsilon_rule=epsilon_exponents, epsilon_k=1,
                              weight_decay=True, step="adamw")
#: Muon's step on a hidden matrix: eta * s * orth(momentum) with s = sqrt(max(1, fan_out / fan_in)) (the
#: spectral convention, MUON_CONVENTIONS); scale-free in the gradient (k = 1), no epsilon, coupled decay.
MUON_HIDDEN = OptimizerRule(k=1, update_a=1, update_b=0, update_shift=1.0, always_aligned=True, weight_decay=True,
                            step="muon")

#: A single rule, or one rule per layer type (a mixed optimizer). Only entries listed here exist for the theory.
OPTIMIZER_RULES: dict[Optimizer, OptimizerRule | Mapping[Layer, OptimizerRule]] = {
    # SGD's weight decay is its L2 term (torch.optim.SGD's weight_decay: W -= lr (g + wd W)), the coupled form
    Optimizer.sgd: OptimizerRule(k=2, update_a=2, update_b=0, backprop_scale=True, weight_decay=True),
    Optimizer.adam: _ADAM,
    Optimizer.adafactor: OptimizerRule(k=0, update_a=1, update_b=1, c_min=0.0),
    Optimizer.adamw: _ADAMW,
    Optimizer.lion: OptimizerRule(k=1, update_a=1, update_b=0, weight_decay=True),
    Optimizer.muon: {Layer.embedding: _ADAMW_BESIDE, Layer.hidden: MUON_HIDDEN, Layer.readout: _ADAMW_BESIDE},
}

#: Muon scale conventions: the width exponent of each convention's step size on a hidden (n x n-like) matrix
#: relative to the spectral one, s = sqrt(max(1, fan_out / fan_in)) (Jordan 2024; Bernstein's modular norm),
#: which the exponents assume. ``moonshot`` (Liu et al. 2025) scales by 0.2 sqrt(max(fan_out, fan_in)) to match
#: AdamW's update RMS: n^(1/2) larger, so its hidden c is the spectral one plus 1/2 (docs/theory.md section 11).
MUON_CONVENTIONS: dict[str, float] = {"spectral": 0.0, "moonshot": 0.5}


def _entry(optimizer: Optimizer | str) -> tuple[Optimizer, OptimizerRule | Mapping[Layer, OptimizerRule]]:
    opt = Optimizer.parse(optimizer)
    try:
        return opt, OPTIMIZER_RULES[opt]
    except KeyError:
        known = ", ".join(o.value for o in OPTIMIZER_RULES)
        raise ValueError(
            f"no theory rule for optimizer {opt.value!r}; add one to OPTIMIZER_RULES in theory/rules.py"
            f" (rules exist for {known})"
        ) from None


def layer_rules(optimizer: Optimizer | str) -> LayerRules:
    """The rule of each layer type under ``optimizer``; a ValueError naming :data:`OPTIMIZER_RULES` if it has
    none, or if a per-layer entry misses a layer."""
    opt, entry = _entry(optimizer)
    if isinstance(entry, OptimizerRule):
        return LayerRules((entry,) * len(LAYERS))
    missing = [l.value for l in LAYERS if l not in entry]
    if missing:
        raise ValueError(f"OPTIMIZER_RULES[{opt.value!r}] has no rule for {', '.join(missing)}; give one per layer")
    return LayerRules(tuple(entry[l] for l in LAYERS))


def optimizer_rule(optimizer: Optimizer | str) -> OptimizerRule:
    """The rule of a single-rule ``optimizer``; a ValueError naming :data:`OPTIMIZER_RULES` if it has none, and
    one pointing to :func:`layer_rules` for a mixed optimizer (Muon)."""
    opt, entry = _entry(optimizer)
    if not isinstance(entry, OptimizerRule):
        raise ValueError(f"{opt.value} applies a different rule per layer; read it with layer_rules()")
    return entry
