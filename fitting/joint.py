"""One law across every curve of a group: the size exponent and each covariate's, fitted jointly.

With covariates (tokens, batch size, depth) a table is split into curves, one per (group, size, covariate
combination); each curve's optimum is found as without covariates (:mod:`fitting.optimum`, through the
per-group fit). :func:`fit_joint` then fits, across all curve optima of a group,

    log2 LR* = log2 C + e_size log2(size / base) + sum_k e_k log2(x_k / base_k)

weighted by 1/(v_i + tau^2): v_i is each optimum's own variance (from its interval, grid floor included),
tau^2 the scatter of the curves around the law beyond their errors as their data measure them (before the grid
floor, at the noise level as measured: ``WidthOptimum.error_sd``; the method of moments of DerSimonian-Laird, as
across widths in :mod:`fitting.scaling`). Statsmodels WLS
with a Knapp-Hartung covariance (residual scale, never below 1) for the constant and predictions; each exponent
takes the residual scale as it is, floored by the sandwich with the optima's own errors + tau^2 (as the
across-width slope does); t intervals with n - p degrees of freedom. Sharing one exponent across curves is
what pins it: a table of 64 groups of 1-5 sizes gives each group alone an interval of +-0.2 to +-7, the joint
fit one of +-0.1.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats
from statsmodels.regression.linear_model import WLS

from abcscale.fitting.optimum import shared_variance, t_sf
from abcscale.fitting.parts import BEND, BEND_ALPHA, bend_warning, size_factor
from abcscale.fitting.predict import EXTRAPOLATION_UNRELIABLE, MAX_LOG2_LR, UNRELIABLE, WIDE_BAND_OCTAVES
from abcscale.fitting.scaling import design_tau2, t_quantile
from abcscale.schemas.fit import Estimate, GroupFit, JointLaw, JointPrediction
from abcscale.schemas.theory import Interval

#: floor on an optimum's variance (octaves^2): a noiseless synthetic optimum must not get infinite weight.
_VAR_FLOOR = 1e-8


@dataclass(frozen=True)
class Curve:
    """One curve's optimum: its size, covariate values, log2 LR* and that estimate's variance."""

    size: float
    x: tuple[float, ...]
    y: float
    var: float
    best_loss: float | None
    shared_var: float = 0.0  # the part of var from a basin the local model misses (WidthOptimum.shape_sd)
    noise_var: float | None = None  # var before the grid floor (WidthOptimum.noise_sd); None: not kept, var
    #: the error at the noise level as measured (WidthOptimum.error_sd), what tau^2 is measured against; None: not
    #: kept (noise_var then): a misfit beside the seeds' noise (shape_sd), a lopsided bracket, a fit stored before
    error_var: float | None = None


def _sd_from(ci: Interval) -> float:
    """The sd (octaves) a percentile interval of LR* implies, read as normal in log2 units."""
    z = float(stats.norm.ppf(0.5 + ci.confidence_level / 2))
    return (math.log2(ci.high) - math.log2(ci.low)) / (2 * z)


def group_curves(groups: Sequence[GroupFit], covariates: Sequence[str]
                 ) -> list[tuple[dict[str, Any], list[Curve], int]]:
    """The per-curve fits of a covariate table, gathered per group key (the key without the covariates):
    (key, identified curve optima, number of curves without one), in the groups' order."""
    out: dict[tuple[Any, ...], tuple[dict[str, Any], list[Curve], list[int]]] = {}
    for g in groups:
        key = {k: v for k, v in g.group.items() if k not in covariates}
        entry = out.setdefault(tuple(key.items()), (key, [], [0]))
        xs = tuple(float(g.group[c]) for c in covariates)
        for o in g.per_width:
            if o.identified and o.lr_opt is not None and o.ci is not None and o.ci.low > 0:
                # the optimum's error as its draws' central 95% shows it, at every level: read from ci at the fit's
                # level, a heavy-tailed curve's variance shrank at 90% below its shared part (floored: 30x the weight
                # of the others) and the estimates moved with the level (a user review: e_bs 0.505 at 95%, 0.485 at
                # 90%). A fit stored before `sd` was kept reads its interval as before
                var = max((o.sd if o.sd is not None else _sd_from(o.ci)) ** 2, _VAR_FLOOR)
                shared = min((o.shape_sd or 0.0) ** 2, var)
                noise = None if o.noise_sd is None else min(o.noise_sd**2, var)
                if o.model == "bracket" and o.shape_sd is not None:
                    # a lopsided bracket's shape error moves with where each optimum sits between grid points, alike
                    # for curves whose optima sit alike: pooling curves does not shrink it as it does their own
                    # noise. Its own error is then all of its interval that it does not share with the others (the
                    # seeds' part and the grid floor's; fit_joint clips noise to that), not the seeds' part and the
                    # shifts' spread (with that, the width exponent of 12 such curves covered 84%, a code review
                    # found; now 95-100%), and tau^2 is measured against it. (A bracket whose interval took the wider
                    # fit's residuals has its own error near its interval already.)
                    noise = var
                # the bootstrap drew its noise level from that level's posterior, which spreads its draws as a t (right
                # for the interval): the optimum's own error is the same bootstrap's at the level as measured
                # (WidthOptimum.error_sd), where the seeds or residuals measure it alone (no misfit beside it)
                error = min(o.error_sd**2, var) if o.error_sd is not None and o.shape_sd is None else None
                entry[1].append(Curve(float(o.width), xs, math.log2(o.lr_opt), var, o.best_loss, shared, noise,
                                      error))
            else:
                entry[2][0] += 1
    return [(k, c, n[0]) for k, c, n in out.values()]


def base_value(values: Sequence[float] | np.ndarray) -> float:
    """A covariate's base: the median of its swept values (in log2), rounded to the nearest swept value."""
    u = np.unique(np.asarray(values, dtype=float))
    mid = float(np.median(np.log2(u)))
    return float(u[int(np.argmin(np.abs(np.log2(u) - mid)))])


def fit_joint(key: dict[str, Any], curves: list[Curve], covariates: Sequence[str], *, size_col: str,
              size_kind: str, base_size: float | None, level: float, n_unidentified: int = 0
              ) -> tuple[JointLaw | None, list[str]]:
    """The joint law of one group (None and why when it cannot be fitted), with notes on what was dropped."""
    noun = "width" if size_kind == "width" else "size"
    notes: list[str] = []
    if len({c.size for c in curves}) < 2:
        return None, [f"fewer than 2 {noun}s with an identified optimum: no joint law"]
    sizes = np.array([c.size for c in curves])
    if sizes.max() / sizes.min() < (span := size_factor(8.0, size_kind)):  # as a group's law says (parts.law_notes)
        notes.append(f"the {noun}s span {sizes.max() / sizes.min():.3g}x; >= {span:g}x pins the {noun} exponent far "
                     "better")
    base = float(base_size) if base_size is not None else float(sizes.min())
    names, cols, bases = [size_col], [np.log2(sizes / base)], {size_col: base}
    ranges = {size_col: (float(sizes.min()), float(sizes.max()))}
    for j, name in enumerate(covariates):
        xj = np.array([c.x[j] for c in curves])
        if np.unique(xj).size < 2:
            notes.append(f"{name}: one value among the identified optima; its exponent is not fitted")
            continue
        bases[name] = base_value(xj)
        ranges[name] = (float(xj.min()), float(xj.max()))
        names.append(name)
        cols.append(np.log2(xj / bases[name]))
    X = np.column_stack([np.ones(sizes.size), *cols])
    n, p = X.shape
    if n <= p:
        # the cause first, the notes after: "the sizes span 50x" read as the reason (a review)
        return None, [f"{n} curve optima cannot pin {p} parameters (the constant and {p - 1} exponents)", *notes]
    if np.linalg.matrix_rank(X) < p:  # enough optima, but some axes move together
        rank = np.linalg.matrix_rank(X)
        tied = [nm for j, nm in enumerate(names) if np.linalg.matrix_rank(np.delete(X, j + 1, axis=1)) == rank]
        return None, [f"{', '.join(tied)} are collinear on a log scale among the optima (one is a product or power "
                      "of the others, e.g. tokens = steps x batch x sequence): their exponents cannot be told apart; "
                      "drop one", *notes]
    y = np.array([c.y for c in curves])
    # each curve's own error weighs it; an error the curves share (a basin shape the local fit misses moves every
    # optimum alike) is no smaller for pooling them: it goes to the constant and the predictions whole
    shared = shared_variance([c.shared_var for c in curves])
    v = np.maximum(np.array([c.var - (c.shared_var if shared > 0 else 0.0) for c in curves]), _VAR_FLOOR)
    # tau^2 is the scatter beyond each curve's own error as its data measure it (before the grid floor): the
    # floored variances exceed that error on fine grids, so the scatter measured against them came out low (0.0043
    # for a true 0.010) and a new curve's 95% band covered 81-87%. And at the noise level as measured, not as the
    # bootstrap drew it (its noise level from the level's posterior, a t: 2x at 4 dof, one seed on a rounded
    # coarse grid): against that, tau^2 came out 0 in 27 of 200 review tables (median 0.0066 for 0.0100) and a new
    # curve's band covered 87.5% at an unswept combination inside the ranges (94-94.5% at the level as measured).
    # The exponents' floor below keeps the error as the interval reads it (the noise level's own error included)
    noise = np.minimum([c.var if c.noise_var is None else c.noise_var for c in curves], v + _VAR_FLOOR)
    error = np.minimum([n if c.error_var is None else c.error_var for c, n in zip(curves, noise, strict=True)], noise)
    tau2 = design_tau2(X, y, np.maximum(error, _VAR_FLOOR))
    w = 1.0 / (v + tau2)
    res = WLS(y, X, weights=w).fit()
    df = n - p
    unit, scale = np.asarray(res.normalized_cov_params), float(res.scale)
    cov = unit * max(1.0, scale)
    params = np.asarray(res.params, dtype=float)
    # an exponent (a slope) takes the residuals' own scale: an error every curve shares cancels in it, and the
    # floored variances held at >= 1 made its interval over-cover; never below what the curves' own errors and
    # their scatter make of it (the estimator's sandwich with noise + tau^2)
    rows = unit @ (X.T * w)
    own = np.sum(rows**2 * (np.maximum(noise, _VAR_FLOOR) + tau2), axis=1)
    q = t_quantile(df, level)
    method = (f"joint WLS over {n} curve optima, weights 1/(v_i + tau^2), Knapp-Hartung t with {df} df (exponents: "
              "the residual scale as it is, floored by the optima's own errors)")

    def est(i: int) -> Estimate:
        var = cov[i, i] + shared if i == 0 else max(unit[i, i] * scale, own[i])
        se = math.sqrt(max(var, 0.0))
        return Estimate(estimate=float(params[i]), ci=Interval(low=float(params[i] - q * se),
                        high=float(params[i] + q * se), confidence_level=level), se=se, method=method)

    c0 = est(0)
    bend = bend_warning(X[:, 1], y - X[:, 2:] @ params[2:], v, noun)  # the covariates' effects taken out
    # against each optimum's own error before the grid floor, as tau^2 is (refitted in each test's model): against
    # the floored variances (a 1-2-5 grid's floor, an sd of 0.29 octave where the optima's error was 0.02-0.03) a
    # bend in tokens of 0.06 per octave^2 went unsaid in 29 of 30 tables and predictions 3 octaves out missed by
    # 1.75 octaves, bands covering none (a review)
    misses: dict[str, list[tuple[float, float]]] = {}
    misfit = lack_of_fit(X, y, np.maximum(error, _VAR_FLOOR), names, noun, bases=bases, misses=misses)
    law = JointLaw(
        group=key, size_col=size_col, size_kind=size_kind, names=names,
        exponents={name: est(i + 1) for i, name in enumerate(names)}, log2_constant=c0,
        constant=float(2.0 ** c0.estimate),
        constant_ci=Interval(low=float(2.0**c0.ci.low), high=float(2.0**c0.ci.high), confidence_level=level),
        bases=bases, ranges=ranges, cov=cov.tolist(), tau2=float(tau2), shared_var=shared, df=df, n_curves=n,
        n_sizes=int(np.unique(sizes).size),
        n_unidentified=n_unidentified, method=method, notes=notes, warnings=[*([bend] if bend else []), *misfit],
        plane_misses=misses,
    )
    return law, notes


#: how the law's warnings on a covariate begin (a prediction past its swept range is then unreliable)
COVARIATE_BEND = "the optimum bends in log2("
INTERACTION = "the {noun} exponent changes with "
#: ... and between two covariates (``the tokens exponent changes with batch_size``)
PAIR_INTERACTION = "the {name} exponent changes with "


def lack_of_fit(X: np.ndarray, y: np.ndarray, v: np.ndarray, names: Sequence[str], noun: str, *,
                bases: dict[str, float] | None = None,
                misses: dict[str, list[tuple[float, float]]] | None = None) -> list[str]:
    """Warnings where the optima leave the law's plane along a covariate: a bend in log2(covariate) (3 levels at
    least), a size exponent that changes with it (an interaction), or a covariate's exponent that changes with
    another's (tokens x batch size: a review's 0.08 log2(D) log2(B) missed by 0.9 octave, no band covering). A
    reviewer's synthetic tables with either of the first two (0.08 log2(N) log2(D), 0.04 log2(D)^2) were fitted in
    silence, and predictions 2 octaves out missed by 0.5-1.4 octaves with 0 of 15-20 bands covering.

    ``v``: each optimum's own error (before the grid floor, as tau^2 reads it; tau^2 takes the rest).

    Each added term gets a t test at BEND_ALPHA in a model with one free level per size instead of the size's
    line, so the jitter the curves of one size share (the across-width scatter, which made the size bend test
    count false alarms when curves were taken as independent) is absorbed and cannot read as a covariate effect;
    weights 1/(v_i + tau^2) with tau^2 refitted for that model, the residual scale never below 1.

    With ``bases`` (each axis's base, as ``X`` is log2(x / base)) a bend's warning also says by how much the plane
    misses the optima at each swept value of that covariate (:data:`PLANE_MISS`), and ``misses`` (if given) gets
    them as (swept value, octaves) under the covariate's name: :func:`predict_joint` reads them from the law's
    ``plane_misses`` (a prediction between those values, or at one where the miss passes the 68% band's
    half-width, is then unreliable)."""
    sizes = np.unique(X[:, 1])
    fixed = np.column_stack([(X[:, 1] == s).astype(float) for s in sizes] + [X[:, 2:]])
    out = []
    for j, name in enumerate(names[1:], start=2):
        xj = X[:, j] - X[:, j].mean()
        tests: list[tuple[np.ndarray, str, str]] = []
        if np.unique(xj).size >= 3:
            tests.append((xj**2, "bend", ""))
        if sizes.size >= 2:
            tests.append(((X[:, 1] - X[:, 1].mean()) * xj, "interaction", ""))
        for k in range(j + 1, X.shape[1]):  # each pair of covariates once
            tests.append((xj * (X[:, k] - X[:, k].mean()), "pair", names[k - 1]))
        for term, kind, other in tests:
            Xe = np.column_stack([fixed, term])
            n, p = Xe.shape
            if n - p < 2 or np.linalg.matrix_rank(Xe) < p:
                continue
            tau2 = design_tau2(Xe, y, np.maximum(v, _VAR_FLOOR))
            res = WLS(y, Xe, weights=1.0 / (np.maximum(v, _VAR_FLOOR) + tau2)).fit()
            se = math.sqrt(max(float(res.normalized_cov_params[-1, -1]) * max(1.0, float(res.scale)), 0.0))
            if not (se > 0 and math.isfinite(se)):
                continue
            coef = float(res.params[-1])
            pval = 2 * float(t_sf(abs(coef) / se, n - p))
            if pval >= BEND_ALPHA:
                continue
            if kind == "bend":
                said = ""
                if bases is not None and name in bases and (miss := _plane_misses(fixed, y, v, X[:, j])):
                    at = [(float(bases[name] * 2.0**x), m) for x, m in miss]
                    if misses is not None:
                        misses[name] = at
                    said = (f"; {PLANE_MISS}" + ", ".join(f"{m:+.2f} octave at {name}={x:.6g}" for x, m in at)
                            + f" (the curves' weighted mean residual there, one level per {noun}): the band reads "
                            "that as scatter, and between the swept values the optimum's shape is not seen (a kink, "
                            "such as a critical batch size, can sit anywhere between two of them)")
                out.append(f"{COVARIATE_BEND}{name}) (t test on the curves' optima with one level per {noun}, p = "
                           f"{pval:.2g}, {coef:+.3f} per octave^2): the law's {name} exponent averages a slope that "
                           f"changes over the swept {name} values, and a prediction past them can miss by the bend"
                           + said)
            elif kind == "pair":
                out.append(f"{PAIR_INTERACTION.format(name=name)}{other} (t test on the curves' optima with one level "
                           f"per {noun}, p = {pval:.2g}: {coef:+.3f} per octave of each): the law's {name} and "
                           f"{other} exponents are averages over the swept values of the other, and a prediction past "
                           "either range can miss by the change")
            else:
                out.append(f"{INTERACTION.format(noun=noun)}{name} (t test on the curves' optima with one level per "
                           f"{noun}, p = {pval:.2g}: {coef:+.3f} per octave of each): the law's exponents are "
                           f"averages over the swept {noun}s and {name} values, and a prediction past either range can "
                           "miss by the change")
    return out


#: how a covariate bend's warning says the plane's miss at each swept value of that covariate (lack_of_fit)
PLANE_MISS = "the optima sit off the plane (above it: +) by "


def _plane_misses(fixed: np.ndarray, y: np.ndarray, v: np.ndarray, xj: np.ndarray) -> list[tuple[float, float]]:
    """(log2 value, octaves) per swept value of a covariate: the weighted mean residual there of the curves' optima
    from the plane with one level per size (the model the bend test adds its term to; tau^2 refitted for it)."""
    tau2 = design_tau2(fixed, y, np.maximum(v, _VAR_FLOOR))
    w = 1.0 / (np.maximum(v, _VAR_FLOOR) + tau2)
    res = WLS(y, fixed, weights=w).fit()
    r = y - fixed @ np.asarray(res.params, dtype=float)
    return [(float(x), float(np.sum(w[xj == x] * r[xj == x]) / np.sum(w[xj == x]))) for x in np.unique(xj)]


def plane_misses(law: JointLaw, name: str) -> list[tuple[float, float]]:
    """(swept value, octaves) the plane misses the optima by at each swept value of ``name``, where the law's bend
    test flagged it (empty: no bend said, or a law stored before session 68 kept them)."""
    return [(float(x), float(m)) for x, m in law.plane_misses.get(name, [])]


def _outside(v: float, lo: float, hi: float) -> float:
    """Octaves by which ``v`` lies outside [lo, hi] (0 inside)."""
    return float(max(math.log2(lo / v), math.log2(v / hi), 0.0))


def predict_joint(law: JointLaw, size: float, at: dict[str, float]) -> JointPrediction:
    """log2 LR* at ``size`` and ``at`` (covariates it leaves out sit at their bases, said in a warning).

    The band adds tau^2 (a new curve scatters like the fitted ones) and the error the curves share, and uses t
    with the law's df. ``at`` naming
    an axis the law has no exponent for is a ValueError naming it."""
    covs = law.names[1:]
    if unknown := [k for k in at if k not in covs]:
        raise ValueError(f"at: {', '.join(unknown)} is not a fitted covariate; the law's covariates are "
                         f"{', '.join(covs) or 'none'}")
    if not (math.isfinite(size) and size > 0) or any(not (math.isfinite(v) and v > 0) for v in at.values()):
        raise ValueError("at: the size and every covariate value must be positive numbers")
    point = {law.size_col: float(size), **{k: float(at.get(k, law.bases[k])) for k in covs}}
    ratios = [point[k] / law.bases[k] for k in law.names]
    if not all(0 < r < math.inf for r in ratios):  # 5e-324 over a base of 64 is 0: no logarithm
        raise ValueError(f"at: {law.size_col}={size:g} and {at or 'the bases'} lie too far from the bases "
                         f"({', '.join(f'{k} {b:g}' for k, b in law.bases.items())}) for a float")
    g = np.array([1.0, *(math.log2(r) for r in ratios)])
    mean = float(g @ np.array([law.log2_constant.estimate, *(law.exponents[k].estimate for k in law.names)]))
    sd = math.sqrt(max(float(g @ np.asarray(law.cov) @ g), 0.0) + law.tau2 + law.shared_var)
    level = law.log2_constant.ci.confidence_level

    if abs(mean) + t_quantile(law.df, max(level, 0.95)) * sd > MAX_LOG2_LR:
        # 2.0**x overflows past 1023 and underflows to 0 below -1074: no band that wide is a prediction
        swept = ", ".join(f"{k} {lo:g}-{hi:g}" for k, (lo, hi) in law.ranges.items())
        raise ValueError(f"at: at {law.size_col}={size:g} and {at or 'the bases'} the predicted LR band leaves the "
                         f"range a float holds; predict nearer the swept ranges ({swept})")

    def band(lv: float) -> tuple[float, float]:
        h = t_quantile(law.df, lv) * sd
        return float(2.0 ** (mean - h)), float(2.0 ** (mean + h))

    lo, hi = band(level)
    out = {k: _outside(point[k], *law.ranges[k]) for k in law.names}
    warnings = [f"{k} not given: at its base {law.bases[k]:g}" for k in covs if k not in at]
    warnings += [f"{k}={point[k]:g} is {_octaves(o)} outside the swept range {law.ranges[k][0]:g}-"
                 f"{law.ranges[k][1]:g}: the band assumes the law holds there" for k, o in out.items() if o > 0]
    ci95 = band(0.95)
    bad = []
    if law.n_sizes == 2 and out[law.size_col] > 0:
        bad.append("extrapolating from 2 sizes: nothing checks the line; sweep 4-5 sizes spanning >= 8x")
    noun = "width" if law.size_kind == "width" else "size"
    # the size's own bend: a covariate's ("the optimum bends in log2(tokens)") shares the prefix (a review saw a
    # tokens bend said as the size's, unreliable, with the size within reach)
    if out[law.size_col] > 0 and any(w.startswith(f"{BEND}log2({noun})") for w in law.warnings):
        bad.append(f"extrapolating {_octaves(out[law.size_col])} past the swept {noun}s where the optimum bends in "
                   f"log2({noun}) (the law's warning): the straight line's prediction can miss by the bend")
    for k in covs:  # a covariate the optima leave the plane along (lack_of_fit): extrapolating it is not trusted
        if out[k] > 0 and any(w.startswith(f"{COVARIATE_BEND}{k})") for w in law.warnings):
            bad.append(f"{k}={point[k]:g} is {_octaves(out[k])} past the swept {k} values, where the optimum bends in "
                       f"log2({k}) (the law's warning)")
        elif out[k] == 0 and (misses := plane_misses(law, k)):
            # inside the range the plane misses its own swept values by the bend, which tau^2 reads as scatter: a
            # saturating batch law (rising to B=256, flat above) over B = 64, 256, 1024 put the band at 256 0.3
            # octave low, its 68% band covering 0 of 20 tables (95%: 20 of 20, tau^2 wide from the miss). At a swept
            # value the miss is measured: said where it passes the 68% band (a smaller one the band's tau^2 covers)
            at_level = [m for x, m in misses if abs(math.log2(point[k] / x)) < math.log2(1.01)]
            swept = ", ".join(f"{x:g}" for x, _ in misses)
            if not at_level:
                bad.append(f"{k}={point[k]:g} lies between the swept {k} values ({swept}), where the optimum bends in "
                           f"log2({k}) (the law's warning): the data do not show its shape between them (a kink, such "
                           "as a critical batch size, can sit anywhere between two swept values); predict at a swept "
                           "value, or sweep more between them")
            elif abs(at_level[0]) > (half := t_quantile(law.df, 0.6827) * sd):
                bad.append(f"at {k}={point[k]:g} the swept optima sit {at_level[0]:+.2f} octave off the plane (the "
                           f"law's bend in log2({k})), beyond the 68% band's half-width ({half:.2f} octave): the band "
                           "reads the bend as scatter and is centred off the optima there")
        if (out[k] > 0 or out[law.size_col] > 0) and any(
                w.startswith(f"{INTERACTION.format(noun=noun)}{k} ") for w in law.warnings):
            bad.append(f"extrapolating past the swept {noun}s or {k} values, where the {noun} exponent changes with "
                       f"{k} (the law's warning): the plane's prediction can miss by the change")
    for j, k in itertools.combinations(covs, 2):  # two covariates' exponents changing with each other
        if (out[j] > 0 or out[k] > 0) and any(
                w.startswith(f"{PAIR_INTERACTION.format(name=j)}{k} ") for w in law.warnings):
            bad.append(f"extrapolating past the swept {j} or {k} values, where the {j} exponent changes with {k} "
                       "(the law's warning): the plane's prediction can miss by the change")
    too_far = size_factor(EXTRAPOLATION_UNRELIABLE, law.size_kind)  # as across widths: 1024x, 1024^2 in parameters
    lo_size, hi_size = law.ranges[law.size_col]
    if point[law.size_col] > too_far * hi_size:
        bad.append(f"extrapolating {point[law.size_col] / hi_size:.3g}x past the largest swept {noun} ({hi_size:g}), "
                   f"beyond {too_far:g}x: sweep larger {noun}s (or check the target: a zero too many?)")
    elif point[law.size_col] < lo_size / too_far:  # `--size 7` for 7e9 answered LR 1511, exit 0 under --strict
        bad.append(f"extrapolating {lo_size / point[law.size_col]:.3g}x below the smallest swept {noun} ({lo_size:g}), "
                   f"beyond {too_far:g}x: sweep smaller {noun}s (or check the target: a zero missing?)")
    for k in covs:  # a covariate as far out: D 62,500x past its swept range passed --strict (a review)
        k_lo, k_hi = law.ranges[k]
        if not k_lo / EXTRAPOLATION_UNRELIABLE <= point[k] <= k_hi * EXTRAPOLATION_UNRELIABLE:
            times = point[k] / k_hi if point[k] > k_hi else k_lo / point[k]
            bad.append(f"{k}={point[k]:g} is {times:.3g}x outside the swept range {k_lo:g}-{k_hi:g}, beyond "
                       f"{EXTRAPOLATION_UNRELIABLE:g}x: sweep {k} further (or check the value: a zero too many or "
                       "missing?)")
    if math.log2(ci95[1] / ci95[0]) > WIDE_BAND_OCTAVES:
        bad.append(f"the 95% band spans {math.log2(ci95[1] / ci95[0]):.2g} octaves: too wide to act on; sweep "
                   "more sizes or covariate values")
    return JointPrediction(size=float(size), at={k: point[k] for k in covs}, lr=float(2.0**mean), log2_lr=mean,
                           sd_log2=sd, ci=Interval(low=lo, high=hi, confidence_level=level), ci68=band(0.6827),
                           ci95=ci95, extrapolation=out, warnings=[*warnings, *(UNRELIABLE + b for b in bad)],
                           unreliable=bad)


def best_losses(groups: Sequence[GroupFit], key: dict[str, Any], d_name: str
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(size, D, loss) per (size, D) of one group key: each curve's best loss, the minimum over the other
    covariates (the best a run at that size and data budget reached), for the joint loss law L(N, D)."""
    best: dict[tuple[float, float], float] = {}
    for g in groups:
        if any(g.group.get(k) != v for k, v in key.items()) or g.group.get(d_name) is None:
            continue
        d = float(g.group[d_name])
        for o in g.per_width:
            if o.best_loss is not None and math.isfinite(o.best_loss):
                cell = (float(o.width), d)
                best[cell] = min(best.get(cell, math.inf), o.best_loss)
    cells = sorted(best)
    return (np.array([c[0] for c in cells]), np.array([c[1] for c in cells]), np.array([best[c] for c in cells]))


__all__ = ["Curve", "group_curves", "base_value", "fit_joint", "predict_joint", "best_losses", "plane_misses",
           "WIDE_BAND_OCTAVES"]


def _octaves(o: float) -> str:
    """``o`` octaves in words: "1 octave", "1.5 octaves" ("1 octaves" before, a review)."""
    said = f"{o:.2g}"
    return f"{said} octave" if said == "1" else f"{said} octaves"
