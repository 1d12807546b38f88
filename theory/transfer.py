r"""Analytic transfer: concrete per-layer settings at a new width from what was tuned at the base width.

With the exponents (a_l, b_l) of the parameterization (docs/theory.md section 1), c_l from the LP
(:mod:`abcscale.theory.solver`) and the constants tuned at base width b (base LR beta, per-layer
gamma_l, multiplier M_l, init scale S_l, epsilon), the settings at width n are

.. math::

    m_l = M_l \, n^{-a_l}, \quad \sigma_l = S_l \, n^{-b_l}, \quad
    \eta_l = \beta \, \gamma_l \, (n / b)^{-c_l}, \quad \epsilon_l = \epsilon \, (n / b)^{-e_l},

and, for AdamW in the coupled form, :math:`\lambda_l = \lambda \, (n / b)^{c_l}` (docs/theory.md section 9).

Multipliers and init stds are absolute, so a_l + b_l fixes the forward scale at every width; learning
rates, epsilon and weight decay are relative to the base width because they were tuned there.
"""

from __future__ import annotations

import numpy as np

from abcscale.schemas.enums import LAYERS, EpsilonMode, Layer, LrMode, Optimizer, Parameterization, WeightDecayMode
from abcscale.schemas.theory import ABTable, Alignment, BaseConfig, LayerExponents, LayerSetting, Transfer
from abcscale.theory.epsilon import layer_epsilons
from abcscale.theory.rules import layer_rules
from abcscale.theory.solver import ExponentSolution, mode_warnings, solve_exponents
from abcscale.theory.tables import parameterization_of
from abcscale.theory.weight_decay import layer_weight_decays


def transfer(
    parameterization: Parameterization | str | ABTable,
    optimizer: Optimizer | str,
    base: BaseConfig,
    width: int,
    alignment: Alignment | str | None = None,
    lr_mode: LrMode | str = LrMode.per_layer,
    c_override: dict[Layer, float] | None = None,
) -> Transfer:
    r"""Per-layer multiplier, init std, LR and (Adam) epsilon at ``width`` (module docstring's formulas).

    In ``global`` mode every c_l is the binding layer's c (one shared LR); ``c_override`` lets a fit
    supply measured exponents. Epsilon follows ``base.epsilon_mode``: ``per_layer`` scales it with
    the epsilon exponents e_l of the optimizer's rule, ``constant`` keeps it; optimizers without an
    epsilon get None. Weight decay follows ``base.weight_decay_mode`` (:mod:`abcscale.theory.weight_decay`)
    on the layers whose optimizer has a decoupled decay (AdamW, Lion, Muon) and is None elsewhere; likewise
    epsilon is None on a layer whose optimizer has none (Muon's hidden matrices). Raises ValueError for a width
    that is not a positive integer, and for a nonzero ``base.weight_decay`` with an optimizer without it.
    """
    if not isinstance(width, int | np.integer) or width <= 0:
        raise ValueError(f"width must be a positive integer, got {width!r}")
    opt = Optimizer.parse(optimizer)
    rules = layer_rules(opt)
    if base.weight_decay and not rules.weight_decay:
        raise ValueError(f"weight_decay: {opt.value} has no weight decay that abcscale transfers, coupled or "
                         "independent (its L2 term would pass through its normalisation); use adamw, lion, muon or sgd "
                         "(its L2 term), or leave it at 0")
    mode = LrMode.parse(lr_mode)
    sol = solve_exponents(parameterization, opt, alignment)
    ab = sol.ab
    c_used = dict(sol.c) if mode is LrMode.per_layer else {l: sol.global_c for l in LAYERS}
    if c_override:
        c_used.update(c_override)
    rho = width / base.width
    # epsilon and weight decay only on the layers whose optimizer has them (Muon: Adam's epsilon off the hidden)
    e_l = rules.epsilon_exponents(ab, c_used)
    all_eps = layer_epsilons(base.epsilon, base.epsilon_mode, rho, {l: e or 0.0 for l, e in e_l.items()})
    eps: dict[Layer, float | None] = {l: None if e_l[l] is None else all_eps[l] for l in LAYERS}
    all_wd = layer_weight_decays(base.weight_decay, base.weight_decay_mode, rho, c_used)
    carries = _carries_decay(opt, base)
    wd: dict[Layer, float | None] = {l: all_wd[l] if rules[l].weight_decay and carries else None for l in LAYERS}
    layers = [
        LayerSetting(
            layer=l,
            multiplier=base.multiplier[l] * width ** (-ab[l].a),
            init_std=base.init_scale[l] * width ** (-ab[l].b),
            lr=base.beta * base.gamma[l] * rho ** (-c_used[l]),
            epsilon=eps[l],
            weight_decay=wd[l],
        )
        for l in LAYERS
    ]
    named = parameterization_of(parameterization)
    return Transfer(
        parameterization="custom" if named is None else named.value, optimizer=opt, alignment=sol.alignment,
        lr_mode=mode, width=int(width), base_width=base.width, layers=layers,
        exponents={l.value: LayerExponents(a=ab[l].a, b=ab[l].b, c=c_used[l]) for l in LAYERS},
        # one shared c is one point: "not unique" is the per-layer face's, whose warnings global mode drops (a review)
        global_c=sol.global_c, unique=sol.unique or mode is LrMode.global_,
        warnings=[*_warnings(sol, mode),
                  *_global_alignment(parameterization, opt, sol, mode, rho, c_override),
                  *_ignored(base, opt, e_l), *alignment_range(alignment)],
        weight_decay_mode=base.weight_decay_mode if carries else None,
    )


def _carries_decay(opt: Optimizer, base: BaseConfig) -> bool:
    """Whether the transfer carries a weight decay: an optimizer with a decoupled one (AdamW, Lion, Muon) always (its
    0 is a choice said), SGD where one is given (its L2 term is optional: an SGD answer without it reads as before)."""
    return layer_rules(opt).weight_decay and (opt is not Optimizer.sgd or bool(base.weight_decay))


def _ignored(base: BaseConfig, opt: Optimizer, e_l: dict[Layer, float | None]) -> list[str]:
    """Notes for settings that this optimizer has no use for: said, since they change nothing."""
    out = []
    given = "epsilon" in base.model_fields_set or base.epsilon != type(base).model_fields["epsilon"].default
    if all(e is None for e in e_l.values()) and given:
        out.append(f"epsilon: {opt.value} has no epsilon; the {base.epsilon:g} given changes nothing")
    if all(e is None for e in e_l.values()) and base.epsilon_mode is not EpsilonMode.per_layer:
        out.append(f"epsilon_mode: {opt.value} has no epsilon; {base.epsilon_mode.value} changes nothing")
    if _carries_decay(opt, base) and "weight_decay" not in base.model_fields_set and not base.weight_decay:
        # a 0 in the table reads as advice; it is only what was given (nothing): abcscale transfers a decay
        out.append(f"weight_decay: none given, so 0 at every layer; {opt.value}'s decay is not chosen here, only "
                   "carried: give the one tuned at the base width (weight_decay, --weight-decay) to transfer it")
    if not _carries_decay(opt, base) and base.weight_decay_mode is not WeightDecayMode.coupled:
        what = ("is given no weight_decay" if layer_rules(opt).weight_decay
                else "has no weight decay that abcscale transfers")
        out.append(f"weight_decay_mode: {opt.value} {what}; {base.weight_decay_mode.value} changes nothing")
    return out


def _scaling(c: float) -> str:
    """How an LR of exponent c moves with the width n, in words (c < 0 grows, 0 stays)."""
    return f"shrinks as n^-{c:g}" if c > 0 else f"grows as n^{-c:g}" if c < 0 else "stays constant (c = 0)"


def alignment_range(alignment: Alignment | str | None) -> list[str]:
    """A note for an alignment outside none..full (alpha and u in [1/2, 1], omega 1/2): the algebra takes alpha
    and u in [0, 2] (omega at most 1/2), but a product of n terms aligns between independent (1/2) and fully (1);
    past either end the exponents, hence the LRs, follow from a regime no training shows (2,2,2 gave the hidden
    c = 3, before omega > 1/2 was refused)."""
    a = Alignment.parse(alignment)
    off = [f"{name} {v:g}" for name, v in (("alpha", a.alpha), ("u", a.u)) if not 0.5 <= v <= 1]
    said = [f"{', '.join(off)} outside [1/2, 1], between none (1/2: independent terms) and full (1)"] if off else []
    if a.omega != 0.5:  # 1/2 at both ends, so no range to quote (it said "[1/2, 1]" and "full (1)": a review)
        said.append(f"omega {a.omega:g}, where full and no alignment both have 1/2")
    if not said:
        return []
    return [f"alignment: {'; '.join(said)}: the exponents follow the algebra, but no layer's product aligns past "
            "those ends (docs/theory.md section 2); use full, none or a measured alignment"]


#: how the note on a global LR's shared exponent begins (theory's binding layer; a fit's transfer drops it)
GLOBAL_C_NOTE = "one global LR"
#: how the note on a global LR's alignment-dependent exponent begins (a fit's transfer, whose LR is fitted, drops it)
GLOBAL_ALIGNMENT_NOTE = "global LR: its exponent"


def _global_alignment(parameterization: Parameterization | str | ABTable, opt: Optimizer, sol: ExponentSolution,
                      mode: LrMode, rho: float, c_override: dict[Layer, float] | None) -> list[str]:
    """A global LR's exponent under the other named alignment, where it differs: which holds depends on how aligned
    training becomes, which theory cannot say in advance (the paper's global-LR fits for Adam fall between the two
    or past them: standard -0.94, NTK -0.71, muP -1.15, mean-field -0.29 against -1 / -1/2, -1/2 / 0, -1 / -1/2,
    -1/2 / 0), so one number is not the whole answer; the fitter's prior spans both (``GroupFit.theory_span``).
    An alignment between the two (numbers, a measured one) has its own answer, said alone."""
    if mode is not LrMode.global_ or c_override or rho == 1 or sol.alignment.name not in ("full", "none"):
        return []
    other = "none" if sol.alignment.name == "full" else "full"
    c_other = solve_exponents(parameterization, opt, other).global_c
    if c_other == sol.global_c:
        return []
    ratio = rho ** (sol.global_c - c_other)  # the other alignment's LR over this one's at the target width
    this, said = ("full", "no") if other == "none" else ("no", "full")
    return [f"{GLOBAL_ALIGNMENT_NOTE} {-sol.global_c + 0.0:g} assumes {this} alignment; under {said} alignment "
            f"it is {-c_other + 0.0:g}, an LR {ratio:.3g}x this one at this width. Which holds depends on how aligned "
            "training becomes (measured global-LR exponents lie between the two, or past them): sweep a few widths "
            "and fit (the fit's band spans both), or use per-layer LRs"]


def _warnings(sol: ExponentSolution, mode: LrMode) -> list[str]:
    out = mode_warnings(sol, mode)
    if mode is LrMode.global_ and len({sol.c[l] for l in LAYERS}) > 1:
        smaller = [l.value for l in LAYERS if sol.c[l] > sol.global_c]
        if not smaller:  # the layers below the largest c: not "the other layers", one of which may share it (a review)
            larger = [l.value for l in LAYERS if sol.c[l] < sol.global_c]
            out.append(
                f"{GLOBAL_C_NOTE} {_scaling(sol.global_c)}, the smallest c every layer can share (the largest "
                f"per-layer c is {sol.binding_layer.value}'s, {sol.c[sol.binding_layer]:g}); per-layer mode lets "
                f"{' and '.join(larger)} keep "
                + ("larger learning rates" if len(larger) > 1 else "a larger learning rate"))
        else:  # the layers' constraints couple: per-layer is not larger everywhere (it was said to be: a review)
            larger = [l.value for l in LAYERS if sol.c[l] < sol.global_c]
            # SGD's coupling binds only past none..full (alpha < 1/2: 0 of 110 in-range SGD cases, a code review)
            why = [*(["under SGD every layer's gradient scale depends on the readout's c"]
                     if sol.optimizer is Optimizer.sgd and sol.alignment.alpha < 0.5 else []),
                   *(["an alignment with u > alpha ties each layer's step to the layers before it"]
                     if sol.alignment.u > sol.alignment.alpha else [])]
            out.append(
                f"{GLOBAL_C_NOTE} {_scaling(sol.global_c)}, the smallest c every layer can share, below the largest "
                f"per-layer c ({sol.binding_layer.value}'s, {sol.c[sol.binding_layer]:g}): the layers' constraints "
                f"couple{' (' + '; '.join(why) + ')' if why else ''}, so per-layer mode gives "
                f"{' and '.join(smaller)} a smaller LR than this one"
                + (f" and {' and '.join(larger)} {'larger ones' if len(larger) > 1 else 'a larger one'}"
                   if larger else ""))
    return out
