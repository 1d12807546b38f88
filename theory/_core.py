r"""The abc-parameterization algebra of Everett et al. (2024), as stated in theory.md.

Pure functions of their arguments, no JAX: the service and the CLI import this module directly.

A layer l of width n has a multiplier :math:`n^{-a_l}`, an init std :math:`n^{-b_l}` and a learning rate

.. math::

    \eta_l = \beta \, \gamma_l \, (n / b)^{-c_l}

where ``beta`` is the base LR tuned at the base width ``b`` and ``gamma`` are per-layer constants.
Multipliers and init stds are absolute (``m_l n^{-a_l}``, ``sigma_l n^{-b_l}``) so a+b fixes the forward
scale at every width; learning rates are relative to the base width because ``beta`` is tuned there.

The stability constraints (theory.md section 2) are linear in (c, r, g), so the smallest stable c per
layer is a linear programme; :func:`solve_exponents` solves it with :func:`scipy.optimize.linprog`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog

from abcscale.schemas.enums import LAYERS, EpsilonMode, Layer, LrMode, Optimizer, Parameterization
from abcscale.schemas.recommend import Recommendation
from abcscale.schemas.theory import (
    ABTable,
    Alignment,
    BaseConfig,
    ExponentRow,
    LayerExponents,
    LayerSetting,
    Setting,
    Transfer,
)

E, H, R = Layer.embedding, Layer.hidden, Layer.readout


def _ab(emb: tuple[float, float], hid: tuple[float, float], out: tuple[float, float]) -> ABTable:
    return ABTable(
        embedding=LayerExponents(a=emb[0], b=emb[1]),
        hidden=LayerExponents(a=hid[0], b=hid[1]),
        readout=LayerExponents(a=out[0], b=out[1]),
    )


#: theory.md section 1: (a, b) per layer type.
AB_TABLES: dict[Parameterization, ABTable] = {
    Parameterization.standard: _ab((0, 0), (0, 0.5), (0, 0.5)),
    Parameterization.ntk: _ab((0, 0), (0.5, 0), (0.5, 0)),
    Parameterization.mup: _ab((-0.5, 0.5), (0, 0.5), (0.5, 0.5)),
    Parameterization.mean_field: _ab((0, 0), (0.5, 0), (1, 0)),
}

#: the symmetry's k: c -> c - k theta keeps dynamics unchanged (theory.md section 4).
SYMMETRY_K: dict[Optimizer, int] = {Optimizer.sgd: 2, Optimizer.adam: 1, Optimizer.adafactor: 0}


def ab_table(parameterization: Parameterization | str | ABTable) -> ABTable:
    """The (a, b) table of a named parameterization, or a custom table passed through."""
    if isinstance(parameterization, ABTable):
        return parameterization
    return AB_TABLES[Parameterization.parse(parameterization)]


def init_stability_warnings(ab: ABTable) -> list[str]:
    """Stability at initialisation: a1+b1 = 0, a+b = 1/2 (hidden), a+b >= 1/2 (readout)."""
    out = []
    if not math.isclose(ab[E].a + ab[E].b, 0.0, abs_tol=1e-12):
        out.append(f"embedding a+b = {ab[E].a + ab[E].b:g}, stability at init needs 0")
    if not math.isclose(ab[H].a + ab[H].b, 0.5, abs_tol=1e-12):
        out.append(f"hidden a+b = {ab[H].a + ab[H].b:g}, stability at init needs 1/2")
    if ab[R].a + ab[R].b < 0.5 - 1e-12:
        out.append(f"readout a+b = {ab[R].a + ab[R].b:g}, stability at init needs >= 1/2")
    return out


# --- the linear programme -------------------------------------------------------------------------
# Variables x = [c_emb, c_hid, c_out, r_emb, r_hid, G]. An affine expression is (coef[6], const).
_C = {E: 0, H: 1, R: 2}
_R1, _RH, _G = 3, 4, 5


def _aff(const: float = 0.0, **terms: float) -> tuple[np.ndarray, float]:
    v = np.zeros(6)
    names = {"c1": 0, "ch": 1, "co": 2, "r1": _R1, "rh": _RH, "G": _G}
    for k, coef in terms.items():
        v[names[k]] += coef
    return v, const


def _update_terms(ab: ABTable, opt: Optimizer) -> dict[Layer, tuple[np.ndarray, float]]:
    """The exponent of each layer's update contribution, before alignment (theory.md section 2).

    SGD: g_l + a_l + c_l with the backprop scale g_l = G + a_l, G = min(a_o + b_o, 2 a_o + c_o),
    and 2 a_o + c_o for the logits. Adam: a_l + c_l. Adafactor (parameter scaling): a_l + b_l + c_l,
    which is c_1 for the embedding and 1/2 + c_l for hidden layers under stable init.
    """
    a = {layer: ab[layer].a for layer in LAYERS}
    b = {layer: ab[layer].b for layer in LAYERS}
    if opt is Optimizer.sgd:
        return {
            E: _aff(2 * a[E], G=1, c1=1),
            H: _aff(2 * a[H], G=1, ch=1),
            R: _aff(2 * a[R], co=1),
        }
    if opt is Optimizer.adam:
        return {E: _aff(a[E], c1=1), H: _aff(a[H], ch=1), R: _aff(a[R], co=1)}
    return {E: _aff(a[E] + b[E], c1=1), H: _aff(a[H] + b[H], ch=1), R: _aff(a[R] + b[R], co=1)}


def _constraints(ab: ABTable, opt: Optimizer, al: Alignment) -> tuple[np.ndarray, np.ndarray]:
    """All constraints as A x <= b (each written as `lhs >= 0`, stored as -lhs <= 0)."""
    U = _update_terms(ab, opt)
    ge0: list[tuple[np.ndarray, float]] = []

    def diff(x: tuple[np.ndarray, float], y: tuple[np.ndarray, float]) -> tuple[np.ndarray, float]:
        return x[0] - y[0], x[1] - y[1]

    r1, rh = _aff(r1=1), _aff(rh=1)
    ge0.append(diff(U[E], r1))                                                   # r_1 <= U_1
    ge0.append(diff((U[H][0], U[H][1] - al.alpha), rh))                        # r_h <= U_h - alpha
    ge0.append(diff((U[H][0] + r1[0], U[H][1] - al.u), rh))                     # r_h <= U_h + r_1 - u
    ge0.append(diff((r1[0], 0.5 - al.omega), rh))                               # r_h <= 1/2 + r_1 - omega
    ab_out = ab[R].a + ab[R].b
    ge0.append((rh[0], ab_out - al.omega))                                      # logits: a+b + r_L - omega
    ge0.append((U[R][0], U[R][1] - al.alpha))                                   # logits: U_o - alpha
    ge0.append((U[R][0] + rh[0], U[R][1] - al.u))                               # logits: U_o + r_L - u
    if opt is Optimizer.sgd:
        G = _aff(G=1)
        ge0.append(diff(_aff(ab_out), G))                                       # G <= a_o + b_o
        ge0.append(diff(_aff(2 * ab[R].a, co=1), G))                            # G <= 2 a_o + c_o
    A = np.array([-v for v, _ in ge0])
    bvec = np.array([c for _, c in ge0])
    return A, bvec


def _bounds(opt: Optimizer) -> list[tuple[float | None, float | None]]:
    c_lo = 0.0 if opt is Optimizer.adafactor else None
    g = (None, None) if opt is Optimizer.sgd else (0.0, 0.0)
    return [(c_lo, None)] * 3 + [(0.0, None), (0.0, None), g]


def _lp(obj: np.ndarray, A: np.ndarray, b: np.ndarray, bounds, A_eq=None, b_eq=None) -> np.ndarray:
    res = linprog(obj, A_ub=A, b_ub=b, A_eq=A_eq, b_eq=b_eq, bounds=bounds, method="highs")
    if res.status == 2:
        raise ValueError("no stable learning-rate exponents exist for this (a, b) table and alignment")
    if res.status == 3:
        raise ValueError("the learning-rate exponents are unbounded for this (a, b) table and alignment")
    if res.status != 0:
        raise ValueError(f"linear programme failed: {res.message}")
    return res.x


def _clean(x: float) -> float:
    return round(float(x), 9) + 0.0


@dataclass(frozen=True)
class ExponentSolution:
    """The LP's answer for one (a, b) table, optimizer and alignment.

    ``c`` minimises the sum of the c's over the stable region (the largest stable LRs); ``unique`` is
    False when that minimum is attained on a whole face, i.e. layers can trade LR freely.
    ``lower_bounds`` holds each layer's own minimum, reachable alone only by raising another's c.
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

    def exponents(self) -> dict[Layer, LayerExponents]:
        return {l: LayerExponents(a=self.ab[l].a, b=self.ab[l].b, c=self.c[l]) for l in LAYERS}


def solve_exponents(
    parameterization: Parameterization | str | ABTable,
    optimizer: Optimizer | str,
    alignment: Alignment | str | None = None,
) -> ExponentSolution:
    """Smallest stable per-layer c (see :func:`_solve`); cached, the inputs are immutable."""
    ab = ab_table(parameterization)
    opt = Optimizer.parse(optimizer) if isinstance(optimizer, str) else optimizer
    return _solve(ab, opt, Alignment.parse(alignment))


@functools.lru_cache(maxsize=1024)
def _solve(ab: ABTable, opt: Optimizer, al: Alignment) -> ExponentSolution:
    """Smallest stable per-layer c under theory.md section 2's constraints (the largest stable LRs).

    The answer minimises c_emb + c_hid + c_out. When u <= alpha it is unique (theory.md section 3);
    when u > alpha the optimum is a face of the polytope and the result says so.
    """
    A, b = _constraints(ab, opt, al)
    bounds = _bounds(opt)
    lower = {}
    for layer in LAYERS:
        obj = np.zeros(6)
        obj[_C[layer]] = 1.0
        lower[layer] = _clean(_lp(obj, A, b, bounds)[_C[layer]])
    # The prescription: the point that minimises the total sum of c (largest LRs overall). It is the
    # per-layer ideal whenever that is feasible; under SGD the readout's c also sets the backprop scale
    # G, and the sum picks the paper's answer. If the optimum is a face rather than a vertex, the layers
    # can trade learning rate freely: report the range each c spans there and call it not unique.
    obj_sum = np.zeros(6)
    obj_sum[:3] = 1.0
    x = _lp(obj_sum, A, b, bounds)
    c = {l: _clean(x[_C[l]]) for l in LAYERS}
    total = float(x[:3].sum())
    A_opt = np.vstack([A, obj_sum])
    b_opt = np.append(b, total + 1e-9)
    spans = {}
    for layer in LAYERS:
        obj = np.zeros(6)
        obj[_C[layer]] = 1.0
        lo = _lp(obj, A_opt, b_opt, bounds)[_C[layer]]
        hi = _lp(-obj, A_opt, b_opt, bounds)[_C[layer]]
        spans[layer] = (_clean(lo), _clean(hi))
    unique = all(hi - lo < 1e-6 for lo, hi in spans.values())
    # A single shared LR: all c equal, the smallest stable one.
    A_eq = np.array([[1.0, -1.0, 0, 0, 0, 0], [0, 1.0, -1.0, 0, 0, 0]])
    obj = np.zeros(6)
    obj[0] = 1.0
    global_c = _clean(_lp(obj, A, b, bounds, A_eq, np.zeros(2))[0])
    binding = max(LAYERS, key=lambda l: c[l])
    warnings = list(init_stability_warnings(ab))
    if not unique:
        warnings.append(
            f"per-layer exponents are not unique (u={al.u:g} > alpha={al.alpha:g}): layers trade learning "
            f"rate against each other; at the smallest total c each layer spans "
            + ", ".join(f"{l.value} [{spans[l][0]:g}, {spans[l][1]:g}]" for l in LAYERS)
            + "; its own minimum is " + ", ".join(f"{l.value} {lower[l]:g}" for l in LAYERS)
        )
    return ExponentSolution(ab, opt, al, c, lower, unique, global_c, binding, tuple(warnings))


def epsilon_exponents(ab: ABTable, c: dict[Layer, float]) -> dict[Layer, float]:
    r"""Adam per-layer epsilon exponents g_l (theory.md section 5): eps_l = eps (n/b)^{-g_l}.

    The backprop signal through the readout scales as n^{-(a_o + min(b_o, c_o))}, so
    g_l = a_l + a_o + min(b_o, c_o) for embedding and hidden layers and g_o = a_o for the readout.
    """
    back = ab[R].a + min(ab[R].b, c[R])
    return {E: _clean(ab[E].a + back), H: _clean(ab[H].a + back), R: _clean(ab[R].a)}


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
    mode = LrMode.parse(lr_mode) if isinstance(lr_mode, str) else lr_mode
    if mode is LrMode.per_layer:
        return 0.0
    return _clean(-solve_exponents(parameterization, optimizer, alignment).global_c)


def theory_table(
    parameterizations: Iterable[Parameterization] | None = None,
    optimizers: Iterable[Optimizer] | None = None,
    alignments: Iterable[Alignment] | None = None,
) -> list[ExponentRow]:
    """Rows of (parameterization, optimizer, alignment, layer) -> (a, b, c, unique)."""
    rows = []
    for p in parameterizations or list(Parameterization):
        for o in optimizers or list(Optimizer):
            for al in alignments or [Alignment.full(), Alignment.none()]:
                sol = solve_exponents(p, o, al)
                eps = epsilon_exponents(sol.ab, sol.c) if o is Optimizer.adam else None
                for layer in LAYERS:
                    rows.append(ExponentRow(
                        parameterization=p.value, optimizer=o, alignment=al, layer=layer,
                        a=sol.ab[layer].a, b=sol.ab[layer].b, c=sol.c[layer], unique=sol.unique,
                        global_c=sol.global_c, epsilon_exponent=None if eps is None else eps[layer],
                    ))
    return rows


# --- analytic transfer -----------------------------------------------------------------------------


def transfer(
    parameterization: Parameterization | str | ABTable,
    optimizer: Optimizer | str,
    base: BaseConfig,
    width: int,
    alignment: Alignment | str | None = None,
    lr_mode: LrMode | str = LrMode.per_layer,
    c_override: dict[Layer, float] | None = None,
) -> Transfer:
    r"""Concrete per-layer settings at ``width`` from what was tuned at ``base.width``.

    .. math::

        m_l = M_l n^{-a_l}, \quad \sigma_l = S_l n^{-b_l}, \quad
        \eta_l = \beta \gamma_l (n / b)^{-c_l}, \quad \epsilon_l = \epsilon (n / b)^{-g_l}

    with c_l replaced by the binding layer's c in ``global`` mode and g_l from
    :func:`epsilon_exponents` (``epsilon_mode="per_layer"``; ``constant`` keeps epsilon fixed).
    ``c_override`` lets a fit supply measured exponents.
    """
    if not isinstance(width, int | np.integer) or width <= 0:
        raise ValueError(f"width must be a positive integer, got {width!r}")
    opt = Optimizer.parse(optimizer) if isinstance(optimizer, str) else optimizer
    mode = LrMode.parse(lr_mode) if isinstance(lr_mode, str) else lr_mode
    sol = solve_exponents(parameterization, opt, alignment)
    ab = sol.ab
    c_used = dict(sol.c) if mode is LrMode.per_layer else {l: sol.global_c for l in LAYERS}
    if c_override:
        c_used.update(c_override)
    rho = width / base.width
    eps_g = epsilon_exponents(ab, c_used)
    layers = []
    for l in LAYERS:
        eps = None
        if opt is Optimizer.adam:
            eps = base.epsilon
            if EpsilonMode(base.epsilon_mode) is EpsilonMode.per_layer:
                eps = base.epsilon * rho ** (-eps_g[l])
        layers.append(LayerSetting(
            layer=l,
            multiplier=base.multiplier[l] * width ** (-ab[l].a),
            init_std=base.init_scale[l] * width ** (-ab[l].b),
            lr=base.beta * base.gamma[l] * rho ** (-c_used[l]),
            epsilon=eps,
        ))
    warnings = list(sol.warnings)
    if mode is LrMode.global_ and len({sol.c[l] for l in LAYERS}) > 1:
        warnings.append(
            f"global LR follows the binding layer ({sol.binding_layer.value}, c={sol.global_c:g}); "
            "per-layer mode lets the other layers keep larger learning rates"
        )
    name = parameterization.value if isinstance(parameterization, Parameterization) else (
        "custom" if isinstance(parameterization, ABTable) else Parameterization.parse(parameterization).value)
    return Transfer(
        parameterization=name, optimizer=opt, alignment=sol.alignment, lr_mode=mode, width=int(width),
        base_width=base.width, layers=layers,
        exponents={l.value: LayerExponents(a=ab[l].a, b=ab[l].b, c=c_used[l]) for l in LAYERS},
        global_c=sol.global_c, unique=sol.unique, warnings=warnings,
    )


# --- the symmetry ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Conversion:
    """A setting converted between parameterizations, with the per-layer theta and factor t used."""

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
) -> Conversion:
    r"""The setting under ``target`` that computes the same function with the same training dynamics.

    Per layer, theta = a_target - a_source and t = n^{-theta}; the multiplier, init std, LR and Adam
    epsilon map as

    .. math::

        m \to m t, \quad \sigma \to \sigma / t, \quad \eta \to \eta / t^k, \quad \epsilon \to \epsilon t^{k'}

    with k = 2 (SGD), 1 (Adam), 0 (Adafactor) and k' = 1 for Adam's epsilon (it sits beside
    sqrt(v), which scales as the gradient). The map is exact at ``setting.width``; it is a symmetry of
    the whole width family (so the exponent tables agree, c_target = c_source - k theta) only when
    b_target = b_source - theta for every layer, which ``symmetric`` reports.
    """
    ab1, ab2 = ab_table(source), ab_table(target)
    opt = setting.optimizer
    k = SYMMETRY_K[opt]
    n = setting.width
    theta = {l: ab2[l].a - ab1[l].a for l in LAYERS}
    t = {l: float(n) ** (-theta[l]) for l in LAYERS}
    layers = []
    for s in setting.layers:
        tl = t[s.layer]
        eps = s.epsilon
        if eps is not None and opt is Optimizer.adam:
            eps = eps * tl
        layers.append(LayerSetting(layer=s.layer, multiplier=s.multiplier * tl, init_std=s.init_std / tl,
                                   lr=s.lr / tl**k, epsilon=eps))
    name = target.value if isinstance(target, Parameterization) else (
        None if isinstance(target, ABTable) else Parameterization.parse(target))
    out = Setting(parameterization=name, optimizer=opt, width=n, layers=layers)
    symmetric = all(math.isclose(ab2[l].b, ab1[l].b - theta[l], abs_tol=1e-12) for l in LAYERS)
    c1 = solve_exponents(ab1, opt, alignment).c
    c2 = solve_exponents(ab2, opt, alignment).c
    warnings = []
    if not symmetric:
        bad = [l.value for l in LAYERS if not math.isclose(ab2[l].b, ab1[l].b - theta[l], abs_tol=1e-12)]
        warnings.append(
            "source and target are not related by the symmetry (a+b differs on "
            + ", ".join(bad) + "): the converted setting is exact at this width only; "
            "the two parameterizations scale differently with width"
        )
    if opt is Optimizer.adam and any(s.epsilon for s in setting.layers):
        warnings.append("Adam epsilon was rescaled with the layer (eps * t) to keep the symmetry exact")
    return Conversion(out, theta, t, k, symmetric, c1, c2, tuple(warnings))


def recommend(
    parameterization: Parameterization | str | ABTable,
    optimizer: Optimizer | str,
    base: BaseConfig,
    width: int,
    alignment: Alignment | str | None = None,
    lr_mode: LrMode | str = LrMode.per_layer,
) -> Recommendation:
    """Analytic recommendation: :func:`transfer` labelled with its source (what CLI and REST return)."""
    tr = transfer(parameterization, optimizer, base, width, alignment, lr_mode)
    return Recommendation(**tr.model_dump(), source="theory", beta=base.beta)
