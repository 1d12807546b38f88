r"""The smallest stable learning-rate exponents, as a linear programme (docs/theory.md sections 2, 3 and 7).

A layer's learning rate scales as :math:`\eta_l \propto n^{-c_l}`; the prescription is the largest
stable LR in every layer, i.e. the smallest c_l. With U_l the exponent of layer l's update
(:mod:`abcscale.theory.rules`) and (alpha, omega, u) the alignment, training is stable when the
activation changes :math:`\Delta z_l \sim n^{-r_l}` and the logits stay bounded:

.. math::

    0 \le r_1 \le U_1

    0 \le r_h \le \min(U_h - \alpha,\; U_h + r_1 - u,\; 1/2 + r_1 - \omega)

    U_h \ge u, \quad \omega \le 1/2 \quad \text{(hidden layers in series: } r_l \text{ from } r_{l-1} = r_h)

    0 \le \min(a_{L+1} + b_{L+1} + r_h - \omega,\; U_{L+1} - \alpha,\; U_{L+1} + r_h - u)

and, for an optimizer whose update carries the backprop exponent G (SGD),
:math:`G \le a_{L+1} + b_{L+1}` and :math:`G \le 2 a_{L+1} + c_{L+1}`. Every U_l is affine in (c, G),
so the constraints are linear in the variables

.. math::

    x = (c_\text{emb}, c_\text{hid}, c_\text{out}, r_\text{emb}, r_\text{hid}, G).

:func:`solve_exponents` minimises :math:`\sum_l c_l` with HiGHS (:func:`scipy.optimize.linprog`),
then checks whether that minimum is a single point (``unique``) by minimising and maximising each c_l
on the optimal face. It is unique whenever u <= alpha, which covers full and no alignment.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from abcscale.schemas.enums import LAYERS, Layer, LrMode, Optimizer, Parameterization
from abcscale.schemas.theory import ABTable, Alignment, ExponentRow, LayerExponents
from abcscale.theory._round import clean
from abcscale.theory.rules import LayerRules, layer_rules
from abcscale.theory.tables import ab_table, init_stability_warnings

E, H, R = Layer.embedding, Layer.hidden, Layer.readout

# --- the LP's variables, built from LAYERS: c_l for every layer, r_l for every layer before the readout
# (the readout's activation change is the logits' constraint instead), then the backprop exponent G.
_C = {layer: i for i, layer in enumerate(LAYERS)}
_R = {layer: len(LAYERS) + i for i, layer in enumerate(LAYERS[:-1])}
_G = len(_C) + len(_R)
_N = _G + 1


@dataclass(frozen=True, eq=False)
class _Affine:
    """``coef . x + const`` over the LP's variables; a constraint is an _Affine that must be >= 0."""

    coef: np.ndarray
    const: float = 0.0

    @classmethod
    def var(cls, index: int) -> _Affine:
        coef = np.zeros(_N)
        coef[index] = 1.0
        return cls(coef)

    def __add__(self, other: _Affine | float) -> _Affine:
        if isinstance(other, _Affine):
            return _Affine(self.coef + other.coef, self.const + other.const)
        return _Affine(self.coef, self.const + other)

    def __sub__(self, other: _Affine | float) -> _Affine:
        if isinstance(other, _Affine):
            return _Affine(self.coef - other.coef, self.const - other.const)
        return _Affine(self.coef, self.const - other)


def _constraints(ab: ABTable, rules: LayerRules, al: Alignment) -> tuple[np.ndarray, np.ndarray]:
    """The stability constraints as ``A x <= b`` (each ``lhs >= 0`` stored as ``-lhs <= 0``); one rule per layer."""
    c = {layer: _Affine.var(i) for layer, i in _C.items()}
    r = {layer: _Affine.var(i) for layer, i in _R.items()}
    G = _Affine.var(_G)
    # U_l = p_a a_l + p_b b_l + c_l + s_l, plus G before the readout when the gradient carries it.
    U = {l: c[l] + (rl.update_a * ab[l].a + rl.update_b * ab[l].b + rl.update_shift) for l, rl in rules.items()}
    U = {l: (U[l] + G if rules[l].backprop_scale and l is not R else U[l]) for l in LAYERS}
    # a full-rank orthogonalised step (Muon) meets every input at its operator norm: full alignment for it
    full = Alignment.full()
    a_ = {l: (full if rules[l].always_aligned else al) for l in (H, R)}
    ab_out = ab[R].a + ab[R].b
    ge0 = [
        U[E] - r[E],                                # r_1 <= U_1
        U[H] - a_[H].alpha - r[H],                  # r_h <= U_h - alpha
        U[H] + r[E] - a_[H].u - r[H],               # r_h <= U_h + r_1 - u
        r[E] + 0.5 - al.omega - r[H],               # r_h <= 1/2 + r_1 - omega
        # hidden layers in series: r_l <= U_h + r_{l-1} - u with r_{l-1} = r_h, so U_h >= u (implied by the rule
        # above when u <= alpha, binding when u > alpha); its twin omega <= 1/2 is checked before the LP (_solve)
        U[H] - a_[H].u,                             # r_h <= U_h + r_h - u
        r[H] + (ab_out - al.omega),                 # logits: a+b + r_L - omega
        U[R] - a_[R].alpha,                         # logits: U_o - alpha
        U[R] + r[H] - a_[R].u,                      # logits: U_o + r_L - u
    ]
    if any(rl.backprop_scale for rl in rules.rules):
        # the signal back through the readout: its init part a+b and its update part U_o (2 a_o + c_o for SGD)
        ge0.append(_Affine(np.zeros(_N), ab_out) - G)               # G <= a_o + b_o
        ge0.append(U[R] - G)                                        # G <= U_o
    return np.array([-g.coef for g in ge0]), np.array([g.const for g in ge0])


def _bounds(rules: LayerRules) -> list[tuple[float | None, float | None]]:
    g = (None, None) if any(rl.backprop_scale for rl in rules.rules) else (0.0, 0.0)
    return [(rules[l].c_min, None) for l in _C] + [(0.0, None)] * len(_R) + [g]


def _lp(obj: np.ndarray, A: np.ndarray, b: np.ndarray, bounds: list[tuple[float | None, float | None]],
        A_eq: np.ndarray | None = None, b_eq: np.ndarray | None = None) -> np.ndarray:
    from scipy.optimize import linprog  # 0.36 s to import: only when an LP is solved

    res = linprog(obj, A_ub=A, b_ub=b, A_eq=A_eq, b_eq=b_eq, bounds=bounds, method="highs")
    if res.status == 2:
        raise ValueError("no stable learning-rate exponents exist for this (a, b) table and alignment")
    if res.status == 3:
        raise ValueError("the learning-rate exponents are unbounded for this (a, b) table and alignment")
    if res.status != 0:
        raise ValueError(f"linear programme failed: {res.message}")
    return np.asarray(res.x)


def _unit(layer: Layer, sign: float = 1.0) -> np.ndarray:
    """The objective that minimises (sign=1) or maximises (sign=-1) c of ``layer``."""
    obj = np.zeros(_N)
    obj[_C[layer]] = sign
    return obj


@dataclass(frozen=True)
class ExponentSolution:
    """The LP's answer for one (a, b) table, optimizer and alignment.

    ``c`` minimises the sum of the c's over the stable region (the largest stable LRs); ``unique`` is
    False when that minimum is attained on a whole face, i.e. layers can trade LR freely.
    ``lower_bounds`` holds each layer's own minimum, reachable alone only by raising another's c.
    ``global_c`` is the smallest c shared by all layers (one global LR); ``binding_layer`` the layer
    with the largest per-layer c. The two agree when each layer's constraint is its own (every alignment inside
    none..full with u <= alpha); with u > alpha, or under SGD past that range (alpha < 1/2: its every gradient
    scale holds the readout's c), the constraints couple, and one shared c may be stable below the largest
    per-layer one (standard + Muon at (1/2, 1/2, 1):
    per-layer (0, 0, 1), shared 1/2; standard + SGD at (1/4, 1/2, 1/4): per-layer (-1/2, -1/4, 1/2), shared 1/4).
    """

    ab: ABTable
    optimizer: Optimizer
    alignment: Alignment
    c: dict[Layer, float]
    lower_bounds: dict[Layer, float]
    unique: bool
    global_c: float
    binding_layer: Layer
    warnings: tuple[str, ...] = field(default=())
    #: each layer's c range on the optimal face (low == high where the answer is unique)
    c_ranges: dict[Layer, tuple[float, float]] = field(default_factory=dict)

    def exponents(self) -> dict[Layer, LayerExponents]:
        return {l: LayerExponents(a=self.ab[l].a, b=self.ab[l].b, c=self.c[l]) for l in LAYERS}


def solve_exponents(
    parameterization: Parameterization | str | ABTable,
    optimizer: Optimizer | str,
    alignment: Alignment | str | None = None,
) -> ExponentSolution:
    """Smallest stable per-layer c (module docstring); cached, the inputs are immutable. The answer is the
    caller's own: its dicts are copies of the cached one's (a caller that set ``sol.c[hidden]`` changed every later
    answer of the process, the service's included, a review).

    ``alignment`` None means full alignment. Raises ValueError for an optimizer without a rule in
    ``OPTIMIZER_RULES`` and when no stable (or a bounded) answer exists.
    """
    ab = ab_table(parameterization)
    opt = Optimizer.parse(optimizer)
    sol = _solve(ab, opt, layer_rules(opt), Alignment.parse(alignment))
    return replace(sol, c=dict(sol.c), lower_bounds=dict(sol.lower_bounds), c_ranges=dict(sol.c_ranges))


def nearest_optimal(
    parameterization: Parameterization | str | ABTable,
    optimizer: Optimizer | str,
    alignment: Alignment | str | None,
    c: Mapping[Layer, float],
) -> dict[Layer, float]:
    """The point of the optimal face (the smallest total c over the stable region) nearest ``c``, in the largest
    per-layer difference over the layers ``c`` gives. Where the exponents are not unique, the layers trade LR on
    that face and any point of it is as good as the prescription: a run is judged against the nearest one."""
    ab, opt = ab_table(parameterization), Optimizer.parse(optimizer)
    rules, al = layer_rules(opt), Alignment.parse(alignment)
    best = _solve(ab, opt, rules, al)
    A, b = _constraints(ab, rules, al)
    n = A.shape[1]
    total = np.zeros(n + 1)
    for layer in LAYERS:
        total[_C[layer]] = 1.0
    rows: list[np.ndarray] = [np.hstack([A, np.zeros((len(A), 1))]), total[None, :]]
    rhs: list[np.ndarray] = [b, np.array([sum(best.c.values()) + 1e-9])]
    for layer, value in c.items():  # |c_l - value| <= t
        for sign in (1.0, -1.0):
            row = np.zeros(n + 1)
            row[_C[layer]], row[-1] = sign, -1.0
            rows.append(row[None, :])
            rhs.append(np.array([sign * value]))
    obj = np.zeros(n + 1)
    obj[-1] = 1.0
    x = _lp(obj, np.vstack(rows), np.concatenate(rhs), [*_bounds(rules), (0.0, None)])
    return {layer: clean(x[_C[layer]]) for layer in LAYERS}


#: The LP's answers for the built-in parameterizations and optimizers under full and no alignment, shipped with the
#: package: scipy.optimize (HiGHS) takes 0.3-0.5 s to import, half of `abcscale recommend`'s 0.6 s and a part of every
#: sweep's start (session 81). Written by :func:`write_shipped` (``make theory-solutions``);
#: tests/theory/test_solutions_s81.py checks every entry against the LP, and that every built-in combination has one.
SHIPPED = Path(__file__).with_name("solutions.json")


#: what of an optimizer's rule the LP reads (_constraints, _bounds): the key holds these alone, as numbers
_LP_FIELDS = ("update_a", "update_b", "update_shift", "backprop_scale", "c_min", "always_aligned")


def _key(ab: ABTable, opt: Optimizer, rules: LayerRules, al: Alignment) -> str:
    """What decides an answer, hashed (the first 24 hex digits of a SHA-256 of its JSON text): the (a, b) table, the
    optimizer, what the LP reads of its rule by layer (a rule registered or patched under a built-in's name is
    another LP), the alignment."""
    def number(value: Any) -> float | None:
        return None if value is None else float(value)  # numpy's, Fraction: a rule's numbers in any type

    rule_fields = [[number(getattr(r, name)) for name in _LP_FIELDS] for r in rules.rules]
    text = json.dumps([ab.model_dump(mode="json"), opt.value, rule_fields, [al.alpha, al.omega, al.u]],
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@functools.cache
def _shipped() -> dict[str, dict[str, Any]]:
    try:
        solutions = json.loads(SHIPPED.read_text())
    except (OSError, ValueError):  # a damaged or missing file: the LP answers, as it does for any other input
        return {}
    return solutions if isinstance(solutions, dict) else {}


def _as_json(sol: ExponentSolution) -> dict[str, Any]:
    return {"c": {l.value: sol.c[l] for l in LAYERS}, "lower_bounds": {l.value: sol.lower_bounds[l] for l in LAYERS},
            "unique": sol.unique, "global_c": sol.global_c, "binding_layer": sol.binding_layer.value,
            "warnings": list(sol.warnings), "c_ranges": {l.value: list(sol.c_ranges[l]) for l in LAYERS}}


def _from_json(ab: ABTable, opt: Optimizer, al: Alignment, d: Mapping[str, Any]) -> ExponentSolution:
    return ExponentSolution(ab, opt, al, {l: float(d["c"][l.value]) for l in LAYERS},
                            {l: float(d["lower_bounds"][l.value]) for l in LAYERS}, bool(d["unique"]),
                            float(d["global_c"]), Layer(d["binding_layer"]), tuple(d["warnings"]),
                            {l: (float(d["c_ranges"][l.value][0]), float(d["c_ranges"][l.value][1])) for l in LAYERS})


def shipped_solutions() -> dict[str, dict[str, Any]]:
    """Every built-in (parameterization, optimizer) under full and no alignment that has stable exponents, solved by
    the LP: what :data:`SHIPPED` holds."""
    out = {}
    for p in Parameterization:
        for o in Optimizer:
            for al in (Alignment.full(), Alignment.none()):
                ab = ab_table(p)
                try:
                    answer = _as_json(_solve_lp(ab, o, layer_rules(o), al))
                    out[_key(ab, o, layer_rules(o), al)] = {"setup": f"{p.value} + {o.value}, {al.name} alignment",
                                                            **answer}
                except ValueError:
                    continue
    return out


def write_shipped() -> int:
    """Solve :func:`shipped_solutions` and write them to :data:`SHIPPED`; how many."""
    solutions = shipped_solutions()
    SHIPPED.write_text(json.dumps(solutions, indent=1, sort_keys=True) + "\n")
    return len(solutions)


@functools.lru_cache(maxsize=1024)
def _solve(ab: ABTable, opt: Optimizer, rules: LayerRules, al: Alignment) -> ExponentSolution:
    try:
        known = _shipped().get(_key(ab, opt, rules, al))
        if known is not None:
            return _from_json(ab, opt, al, known)
    except (KeyError, TypeError, ValueError, AttributeError):  # a rule's field no number, an entry of another shape
        pass
    return _solve_lp(ab, opt, rules, al)


def _solve_lp(ab: ABTable, opt: Optimizer, rules: LayerRules, al: Alignment) -> ExponentSolution:
    if al.omega > 0.5:
        raise ValueError(f"alignment omega = {al.omega:g} > 1/2: every hidden layer in series would grow the "
                         "activations' change by n^(omega - 1/2), which no learning rate undoes (no stable "
                         "exponents); omega, the initial weights' alignment with the activations' change, is at most "
                         "1/2 (under both full and no alignment)")
    A, b = _constraints(ab, rules, al)
    bounds = _bounds(rules)
    lower = {layer: clean(_lp(_unit(layer), A, b, bounds)[_C[layer]]) for layer in LAYERS}
    # The prescription: the point that minimises the total sum of c (largest LRs overall). It is the
    # per-layer ideal whenever that is feasible; under SGD the readout's c also sets the backprop scale
    # G, and the sum picks the paper's answer. If the optimum is a face rather than a vertex, the layers
    # can trade learning rate freely: report the range each c spans there and call it not unique.
    obj_sum = np.sum([_unit(layer) for layer in LAYERS], axis=0)
    x = _lp(obj_sum, A, b, bounds)
    c = {layer: clean(x[_C[layer]]) for layer in LAYERS}
    A_opt = np.vstack([A, obj_sum])
    b_opt = np.append(b, float(x[list(_C.values())].sum()) + 1e-9)
    spans = {layer: (clean(_lp(_unit(layer), A_opt, b_opt, bounds)[_C[layer]]),
                     clean(_lp(_unit(layer, -1.0), A_opt, b_opt, bounds)[_C[layer]])) for layer in LAYERS}
    unique = all(hi - lo < 1e-6 for lo, hi in spans.values())
    # A single shared LR: all c equal (c_l - c_{l+1} = 0), the smallest stable one.
    A_eq = np.array([_unit(l1) - _unit(l2) for l1, l2 in pairwise(LAYERS)])
    first = LAYERS[0]
    global_c = clean(_lp(_unit(first), A, b, bounds, A_eq, np.zeros(len(A_eq)))[_C[first]])
    binding = max(LAYERS, key=lambda l: c[l])
    warnings = list(init_stability_warnings(ab))
    if not unique:
        warnings.append(
            f"per-layer exponents are not unique (u={al.u:g} > alpha={al.alpha:g}): layers trade learning "
            f"rate against each other; at the smallest total c each layer spans "
            # the face's slack (1e-9 above) shows as 1e-09: rounded to the solver's tolerance
            + ", ".join(f"{l.value} [{round(spans[l][0], 6) + 0.0:g}, {round(spans[l][1], 6) + 0.0:g}]" for l in LAYERS)
            + "; its own minimum is " + ", ".join(f"{l.value} {lower[l]:g}" for l in LAYERS)
        )
    elif below := [l for l in LAYERS if lower[l] < c[l] - 1e-6]:
        # one vertex minimises the sum, yet a layer can still buy a larger LR with another's: say so (also where u <=
        # alpha under SGD, whose readout LR sets the backprop scale: muP's readout alone could take c = -1/2, a
        # theory review, session 54: said nowhere)
        why = f"u={al.u:g} > alpha={al.alpha:g}" if al.u > al.alpha else \
            "the readout's LR also sets the backprop scale"
        warnings.append(f"the layers' learning rates trade ({why}): the prescription minimises the total c; "
                        + "; ".join(_trade(l, lower[l], c, A, b, bounds) for l in below))
    ranges = {l: (round(lo, 6) + 0.0, round(hi, 6) + 0.0) for l, (lo, hi) in spans.items()}
    return ExponentSolution(ab, opt, al, c, lower, unique, global_c, binding, tuple(warnings), ranges)


#: the solver's warnings about per-layer exponents only (a face of them, layers trading LR): under one global LR
#: every layer takes the global c, so they are not that answer's (code reviews, session 54)
PER_LAYER_WARNINGS = ("per-layer exponents are not unique", "the layers' learning rates trade")


def mode_warnings(sol: ExponentSolution, lr_mode: LrMode | str) -> list[str]:
    """``sol``'s warnings that hold for ``lr_mode``: all of them per layer; under a global LR not
    :data:`PER_LAYER_WARNINGS`."""
    if LrMode.parse(lr_mode) is LrMode.global_:
        return [w for w in sol.warnings if not w.startswith(PER_LAYER_WARNINGS)]
    return list(sol.warnings)


def _trade(layer: Layer, alone: float, c: Mapping[Layer, float], A: np.ndarray, b: np.ndarray,
           bounds: list[tuple[float | None, float | None]]) -> str:
    """What ``layer`` at its own minimum ``alone`` costs the others: the smallest total c with it there (the layers
    that pay, by how much; "another layer's LR" named none, and two layers paid: a code review, session 54)."""
    total = np.sum([_unit(l) for l in LAYERS], axis=0)
    fixed = (_unit(layer)[None, :], np.array([alone]))
    x = _lp(total, A, b, bounds, *fixed)
    # the others' rises can split several ways at that total (standard + SGD at (0, 0, 1/2): 1/2 to 1 each, 3/2 in
    # all, a code review): each layer's range on that face
    A_face, b_face = np.vstack([A, total]), np.append(b, float(x[list(_C.values())].sum()) + 1e-9)
    spans = {l: (clean(_lp(_unit(l), A_face, b_face, bounds, *fixed)[_C[l]]) - c[l],
                 clean(_lp(_unit(l, -1.0), A_face, b_face, bounds, *fixed)[_C[l]]) - c[l])
             for l in LAYERS if l is not layer}
    paid = {l: (lo, hi) for l, (lo, hi) in spans.items() if hi > 1e-6}
    if not paid:
        return f"{layer.value} alone could reach c={alone:g} (not {c[layer]:g})"
    rise = float(sum(clean(x[_C[l]]) - c[l] for l in paid))
    if all(hi - lo < 1e-6 for lo, hi in paid.values()):
        cost = " and ".join(f"the {l.value}'s c rising by {lo + 0.0:g}" for l, (lo, _) in paid.items())
    else:
        cost = (f"the others' c rising by {rise:g} in all ("
                + ", ".join(f"the {l.value}'s by {lo + 0.0:g} to {hi + 0.0:g}" for l, (lo, hi) in paid.items()) + ")")
    return f"{layer.value} alone could reach c={alone:g} (not {c[layer]:g}), with {cost}"


def theory_exponent(
    parameterization: Parameterization | str | ABTable,
    optimizer: Optimizer | str,
    alignment: Alignment | str | None,
    lr_mode: LrMode | str,
) -> float:
    """Slope of log LR* against log width that theory predicts for the swept base LR.

    Global mode: -c of the binding layer (a single LR must shrink as n^-c). Per-layer mode: 0 (the
    width dependence is already in the per-layer factors, so the base LR should not move).
    """
    solved = solve_exponents(parameterization, optimizer, alignment)  # an unknown name is an error either way
    if LrMode.parse(lr_mode) is LrMode.per_layer:
        return 0.0
    return clean(-solved.global_c)


def theory_table(
    parameterizations: Iterable[Parameterization | str] | None = None,
    optimizers: Iterable[Optimizer | str] | None = None,
    alignments: Iterable[Alignment | str] | None = None,
) -> list[ExponentRow]:
    """Rows of (parameterization, optimizer, alignment, layer) -> (a, b, c, unique, global c, epsilon e_l).

    Without filters: every parameterization and optimizer, under full and no alignment.
    """
    rows = []
    for p in [Parameterization.parse(p) for p in parameterizations or list(Parameterization)]:
        for o in [Optimizer.parse(o) for o in optimizers or list(Optimizer)]:
            rules = layer_rules(o)
            for al in [Alignment.parse(a) for a in alignments or [Alignment.full(), Alignment.none()]]:
                sol = solve_exponents(p, o, al)
                rows.extend(_rows(p, o, al, sol, rules.epsilon_exponents(sol.ab, sol.c)))
    return rows


def _rows(p: Parameterization, o: Optimizer, al: Alignment, sol: ExponentSolution,
          eps: dict[Layer, float | None]) -> list[ExponentRow]:
    common: dict[str, Any] = {"parameterization": p.value, "optimizer": o, "alignment": al,
                              "unique": sol.unique, "global_c": sol.global_c}
    return [ExponentRow(**common, layer=layer, a=sol.ab[layer].a, b=sol.ab[layer].b, c=sol.c[layer],
                        lower_bound=sol.lower_bounds[layer],
                        epsilon_exponent=eps[layer],
                        c_range=None if sol.unique else sol.c_ranges.get(layer)) for layer in LAYERS]

