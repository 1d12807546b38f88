"""The parts of one group's fit, each a pure function of the per-width optima returning a frozen part.

Per coordinate (log2 LR, or log2 of a swept constant) and width, :func:`fit_coordinate` finds the optimum.
From the LR optima, :func:`law_part` fits the across-width law (with its constant, LOO errors, basin and
loss law) and :func:`edge_part` the law of the stability edge; :func:`constant_fits` does the same for each
swept constant. Every interval is at the caller's ``confidence_level``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.regression.linear_model import WLS

from abcscale.fitting.losslaw import fit_loss_law
from abcscale.fitting.optimum import (
    Cells,
    Optimum,
    basin_shape,
    bracket_shift,
    fit_optimum,
    pooled_noise,
    residual_noise,
    shared_variance,
    t_sf,
    with_shared_error,
)
from abcscale.fitting.scaling import (
    PRIOR_SD,
    TAU_SCALE,
    LawFit,
    design_tau2,
    fit_law,
    fit_law_prior,
    predict_law,
    t_quantile,
)
from abcscale.fitting.table import GroupData, WidthRows
from abcscale.schemas.fit import Basin, ConstantFit, Estimate, LossLaw, ScalingLaw
from abcscale.schemas.theory import Interval

#: the prior-data conflict (in sds, fitting.scaling.PriorFit.conflict) above which predictions drop theory's prior.
CONFLICT_Z = 1.96
#: per width: the cells of one coordinate and the optimum found in them.
PerWidth = dict[int, tuple[Cells, Optimum]]


@dataclass(frozen=True)
class Settings:
    """How to fit a group (the checked arguments of :func:`fitting.pipeline.fit_table`)."""

    n_boot: int
    confidence_level: float
    window: float  # half-width of the local fit's window around the grid argmin, in octaves
    target_width: int | None = None
    alignment: str | None = None
    base_width: int | None = None
    prior_sd: float = PRIOR_SD  # the exponent's prior sd around theory's (fitting.scaling.fit_law_prior)
    tau_scale: float = TAU_SCALE  # the half-normal prior scale of the width jitter tau (octaves)
    size_kind: str = "width"  # width | params: the size column's unit, which scales the span advice (size_factor)


def size_factor(width_factor: float, size_kind: str) -> float:
    """A factor in width as a factor in the size column: parameters grow as width^2 (N ~ 12 depth d^2), so
    the advice "span >= 8x in width" reads ">= 64x in parameters" and the 32x extrapolation warning 1024x."""
    return width_factor**2 if size_kind == "params" else width_factor


_WIDTH_WORD = re.compile(r"\b([Ww])idth(s?)\b")


def in_size_words(messages: list[str]) -> list[str]:
    """Messages for a size counted in parameters: 'size' where they say 'width' (option names such as
    `target_width` are left alone)."""
    return [_WIDTH_WORD.sub(lambda m: ("S" if m.group(1) == "W" else "s") + "ize" + m.group(2), w) for w in messages]


def percent(level: float) -> str:
    """'95%' for 0.95, '68.3%' for 0.683: how a warning names the level."""
    return f"{100 * level:.3g}%"


def log2_interval(lo: float, hi: float, level: float) -> Interval | None:
    """The interval [2^lo, 2^hi], or None when a bound is not finite or beyond a float's range (2^1024; the
    constant's interval of an extreme confidence level reaches there): FitResult never holds NaN/inf."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or max(abs(lo), abs(hi)) > 1000:
        return None
    return Interval(low=float(2.0**lo), high=float(2.0**hi), confidence_level=level)


def fit_coordinate(rows_by_width: dict[int, WidthRows], j: int, s: Settings, rng: np.random.Generator) -> PerWidth:
    """The optimum of coordinate ``j`` (0: log2 LR, j >= 1: swept constant j - 1) at each width, in order."""
    cells = {w: Cells.of_runs(rows.coords()[:, j], rows.loss, rows.seed) for w, rows in rows_by_width.items()}
    pooled = pooled_noise(residual_noise(c, s.window) for c in cells.values())  # one seed: the widths' noise
    shifts = {w: bracket_shift(c, s.window) for w, c in cells.items()}
    shape = basin_shape(shifts.values())  # coarse grids: the widths' basins
    per = {w: (c, fit_optimum(c, s.n_boot, rng, s.window, s.confidence_level, pooled, shape))
           for w, c in cells.items()}
    return with_bracket_drift(per, shifts)


def with_bracket_drift(per: PerWidth, shifts: dict[int, float | None]) -> PerWidth:
    """The widths whose vertex came from the argmin's bracket with its interval drawn from the seeds' spread
    (``seed_bracket``: the wider fit missed a lopsided basin the seeds resolve), with the bracket's shape error that
    the seeds' spread does not show: (1) how it moves from width to width, added to each width's own error
    (``noise_var``, what bounds a slope): the variance of the widths' :func:`bracket_shift`; (2) how far it may
    put every vertex alike, as the part of the interval the widths share (``shared_var``, in the constant and the
    predictions): at least :data:`BRACKET_BIAS_PER_SHIFT` x their mean shift as an sd.

    A bracket's shape error depends on where the optimum sits between two grid points, so it moves from width to
    width and a slope carries it (on lopsided 1-3-10 sweeps with theory 0.1-0.3 off, the exponent's 95% interval
    covered 90% without (1)). The shifts move with the same places between points, more than the bracket's own error
    does (their spread over a 1-3-10 grid's places is 1-2.3x the bracket's, for basins 1.6-7x steeper on one side an
    octave out), so their variance bounds the drift on average. The error itself is one-signed, toward the flat
    side, and grows with the basin's lopsidedness faster than the grid floor's shared part allows (a basin 3.9x
    steeper above than below an octave out: 0.6-0.8 octave, where the floor's part is 0.41; the 68% band covered
    57%, a code review found); on average over the places between points it stayed within 0.9 of the mean shift
    for basins up to 3.9x lopsided (:data:`BRACKET_BIAS_PER_SHIFT`). Beyond that the shift saturates while the
    error grows (7.8x: per-width 95% intervals covered 84-92%, the 68% band 54-66%; no measure of the lopsidedness
    tried held up where the steep side's runs blow up, as they do on these grids). Only those widths' own
    shifts count: a width on another path (its steep side's cells diverged, its seeds noisier) can have a small or
    negative shift that lowered its group's level below the floor's (intervals 1.9 octaves wide for errors of 0.8).
    With fewer than 3 such shifts the drift is not measured and the width's whole interval stands for it."""
    got = [v for w, v in shifts.items()
           if v is not None and math.isfinite(v) and w in per and per[w][1].seed_bracket]
    drift = float(np.var(got, ddof=1)) if len(got) >= 3 else math.inf
    level = BRACKET_BIAS_PER_SHIFT * abs(float(np.mean(got))) if got else 0.0
    out = dict(per)
    for w, (c, o) in per.items():
        if o.seed_bracket and o.noise_var is not None and o.var is not None:
            wider = with_shared_error(o, level)  # its noise_var as it was: the slope's part
            out[w] = (c, dataclasses.replace(wider, noise_var=min(o.noise_var + drift, wider.var or o.var)))
    return out


@dataclass(frozen=True, eq=False)
class _LawInputs:
    """The identified optima, ascending in width: x*, its bootstrap variance and draws."""

    ok: list[tuple[int, Optimum]]
    widths: np.ndarray
    y: np.ndarray
    v: np.ndarray
    draws: np.ndarray | None
    shared_var: float = 0.0  # the mean of the widths' shared_var: an error common to all of them
    noise_v: np.ndarray | None = None  # each width's variance before the grid floor (never above v)


def law_method(df: int, tau2: float) -> str:
    """How the exponent's interval was computed, in words: with 3 or more widths Knapp-Hartung's t on the residuals'
    own scale; two widths leave no residual, so tau is assumed (fitting.scaling) and the quantile is normal."""
    if df > 0:
        return f"WLS, weights 1/(v_w + tau^2), Knapp-Hartung t with {df} df (the residuals' own scale)"
    return (f"the line through 2 widths, weights 1/(v_w + tau^2) with tau = {math.sqrt(tau2):.2g} octave assumed (no "
            "residual to estimate it from), normal quantile")


#: the mean error of the vertex through a lopsided basin's bracket (over the places of the optimum between two grid
#: points), per octave of its group's mean :func:`bracket_shift`: 0.33-0.89 over basins 1.6-3.9x steeper on one side
#: an octave out, on 1-3-10 and 2x grids (noise-free; 1.0-1.3 at 7.8x, which it does not cover)
BRACKET_BIAS_PER_SHIFT = 0.9
#: the spread (in grid steps) of the widths' optima between their grid points at which a misfit of the basin's
#: shape no longer cancels in the slope at all (:func:`shape_drift`)
GRID_OFFSET_SPREAD = 0.1
#: a grid coarser than this near the optimum (octaves between its points; a 1-3-10 grid's are 1.6-1.7) moves a
#: lopsided basin's vertex enough with its place between the points to matter in a slope; finer grids do not
COARSE_GRID_STEP = 1.25


def shape_drift(ok: list[tuple[Cells, Optimum]]) -> float:
    """How much of a misfit of the basin's shape the widths share, in [0, 1]: 0 where it moves every vertex alike
    and cancels in the slope, 1 where it does not. A lopsided basin pulls a quadratic's vertex toward its flat side
    by an amount that depends on where the optimum sits between the two grid points around it; on one coarse grid
    (steps above :data:`COARSE_GRID_STEP` octaves there) with the optima moving across widths, each sits elsewhere,
    the bias drifts with log width, and the slope carries it where 1-3 residual degrees of freedom cannot show it (a
    statistician's review, session 54: on lopsided 1-3-10 sweeps with the exponent 0.1-0.3 off theory's, the
    exponent's 95% interval covered 79%; on 1-octave and half-octave grids 97-100%). So: the spread of the optima's
    places between their grid points (as fractions of a step, around the circle) over :data:`GRID_OFFSET_SPREAD`,
    at most 1 (a code review: a 0.1-step tolerance that said "alike" below it left 0.03-0.1 off theory at 87%)."""
    offsets, coarse = [], False
    for cells, o in ok:
        x = np.sort(np.asarray(cells.x, dtype=float))
        if o.x_opt is None or x.size < 2 or not x[0] - 1e-6 <= o.x_opt <= x[-1] + 1e-6:
            return 1.0
        at = min(max(o.x_opt, x[0]), x[-1])  # a vertex a hair past the grid's end is at it (fit_optimum's 1e-9)
        i = min(int(np.searchsorted(x, at, side="right")) - 1, x.size - 2)
        step = float(x[i + 1] - x[i])  # the grid's step where the optimum is (a grid may be finer there)
        coarse |= step > COARSE_GRID_STEP
        offsets.append((at - x[i]) / step)
    if not coarse or len(offsets) < 2:
        return 0.0
    f = np.array(offsets)
    gap = np.abs(f[:, None] - f[None, :])
    return min(1.0, float(np.minimum(gap, 1.0 - gap).max()) / GRID_OFFSET_SPREAD)


def _law_inputs(per: PerWidth) -> _LawInputs:
    ok = [(w, o) for w, (_, o) in sorted(per.items()) if o.identified]
    widths = np.array([w for w, _ in ok], dtype=float)
    y = np.array([o.x_opt for _, o in ok], dtype=float)
    # the slope sees each width's own error; an error they share (shared_var, when systematic) moves only the
    # level. Lack of fit at no more widths than chance makes stays each width's own error.
    shared = shared_variance([o.shared_var for _, o in ok])
    v = np.array([(o.var or 0.0) - (o.shared_var if shared > 0 else 0.0) for _, o in ok], dtype=float)
    draws = np.vstack([o.draws for _, o in ok if o.draws is not None]) if ok else None
    # each width's own error bounds the slope from below (its variance before the grid floor, at most the floored
    # seed part v); where the misfit is shared, only its seed-noise part (a shared error cancels in a slope: a
    # 1-2.5x lopsided sweep's exponent interval 0.06 octave wide, not 0.10), as far as shape_drift says it cancels
    own = np.minimum([vi if o.noise_var is None else o.noise_var for (_, o), vi in zip(ok, v, strict=True)], v)
    if shared > 0:  # (at no drift the seed part as before, even where its bootstrap came out above noise_var)
        seed = np.minimum([oi if o.seed_noise_var is None else o.seed_noise_var
                           for (_, o), oi in zip(ok, own, strict=True)], v)
        own = seed + shape_drift([(per[w][0], o) for w, o in ok]) * (own - seed)
    noise = own
    return _LawInputs(ok, widths, y, v, draws, shared, noise)


def _estimate(est: float, ci: Interval, se: float | None, method: str) -> Estimate:
    return Estimate(estimate=float(est), ci=ci, se=se if se is None or math.isfinite(se) else None, method=method)


@dataclass(frozen=True)
class LawPart:
    """The across-width law of LR*: exponent, constant C = LR*(base width), LOO errors, basin, loss law.

    ``fit`` is the free fit (its interval tests theory); ``predictive`` is the law predictions use: the
    posterior with theory's prior when the group has a theory exponent the free fit does not reject, else
    the free law.
    """

    fit: LawFit
    predictive: ScalingLaw
    exponent: Estimate
    exponent_boot: Estimate | None
    constant: float | None
    constant_ci: Interval | None
    loo_rms: float | None
    basin: Basin | None
    loss_law: LossLaw | None
    widths: tuple[int, ...]


#: the level of the free exponent's interval that must hold theory's for theory's prior to be used
PRIOR_GATE_LEVEL = 0.95


def theory_gap(e: float, theory: float, span: tuple[float, float] | None = None) -> float:
    """How far ``e`` lies from theory's exponent, or from the nearest end of theory's ``span`` (0 inside it)."""
    lo, hi = (theory, theory) if span is None else (min(span), max(span))
    return max(lo - e, 0.0, e - hi)


def law_part(per: PerWidth, base_width: int, s: Settings, rng: np.random.Generator,
             theory: float | None = None, span: tuple[float, float] | None = None) -> LawPart | None:
    """Fit the law on the identified widths (None below 2); the constant's interval excludes tau^2.

    With a ``theory`` exponent (or some of theory's ``span``) inside the free fit's 95% interval, predictions
    use the posterior law with theory's prior (:func:`fitting.scaling.fit_law_prior`; over the span when one is
    given); the free fit's exponent and interval are kept as they are, so the test against theory does not lean
    on theory.
    """
    inp = _law_inputs(per)
    if inp.widths.size < 2:
        return None
    level = s.confidence_level
    fit = fit_law(inp.widths, inp.y, inp.v, inp.draws, base_width, s.n_boot, rng, level, noise_var=inp.noise_v)
    law = fit.law.model_copy(update={"shared_var": inp.shared_var})
    fit = dataclasses.replace(fit, law=law)
    predictive = law
    # the prior's gate is the free fit's 95% interval whatever the level asked for: the fixed 68% and 95% bands
    # must not move with the level (a 50% interval excludes a theory the data agree with)
    if theory is not None and theory_gap(law.exponent, theory, span) <= t_quantile(law.df, PRIOR_GATE_LEVEL) * fit.se:
        prior = fit_law_prior(inp.widths, inp.y, inp.v, base_width, theory, s.prior_sd, s.tau_scale, span)
        predictive = prior.law.model_copy(update={"shared_var": inp.shared_var})
        if prior.conflict > CONFLICT_Z:
            predictive = law.model_copy(update={"prior_mean": theory, "prior_sd": s.prior_sd,
                                                "prior_span": prior.law.prior_span})
    exponent = _estimate(law.exponent, fit.ci, fit.se, law_method(law.df, law.tau2))
    boot = None
    if fit.boot_ci is not None and law.cov_boot is not None:
        boot = _estimate(law.exponent, fit.boot_ci, math.sqrt(law.cov_boot[1][1]),
                         "cluster bootstrap over widths (cross-check)")
    # the line's part with t on its df, the shared part (from the widths' bootstraps) with a normal quantile
    half = math.sqrt(t_quantile(law.df, level) ** 2 * law.cov[0][0] + t_quantile(0, level) ** 2 * law.shared_var)
    c = 2.0**law.log2_constant
    loo = list(fit.loo.values())
    rms = float(np.sqrt(np.mean(np.square(loo)))) if loo else None
    return LawPart(
        fit=fit, predictive=predictive, exponent=exponent, exponent_boot=boot, constant=c if math.isfinite(c) else None,
        constant_ci=log2_interval(law.log2_constant - half, law.log2_constant + half, level),
        loo_rms=rms if rms is not None and math.isfinite(rms) else None, basin=_basin(inp.ok),
        loss_law=_loss_law(inp, s, rng), widths=tuple(int(w) for w in inp.widths),
    )


def _basin(ok: list[tuple[int, Optimum]]) -> Basin | None:
    """The median left/right relative loss increase per octave^2 over the widths, and the basin's model: asymmetric
    where at least half the widths' fits (and two, where there are two) chose the cubic term.

    Any one width used to decide it: on a symmetric basin a width's AIC picks the cubic now and then (4 of 20
    synthetic 4-width sweeps, each from one width; a review saw 4-7 of 25-30), and the prediction then trusted the
    widths' median sides (about equal) instead of assuming overshooting costs 2x, a noisy choice of the safe-side
    LR. With half: 0 of 20 there, and 18 of 20 sweeps of a basin 2x steeper on the right still read as asymmetric
    (the two others as quadratic, where the prediction assumes that 2x; tests/fitting/test_basin_label_s58.py)."""
    kl = [o.k_left for _, o in ok if o.k_left is not None and o.k_left > 0]
    kr = [o.k_right for _, o in ok if o.k_right is not None and o.k_right > 0]
    if not (kl and kr):
        return None
    chose = sum(o.model == "asymmetric" for _, o in ok)
    asym = chose > 0 and chose >= min(len(ok), max(2, math.ceil(len(ok) / 2)))
    return Basin(k_left=float(np.median(kl)), k_right=float(np.median(kr)),
                 source="asymmetric" if asym else "quadratic")


def _loss_law(inp: _LawInputs, s: Settings, rng: np.random.Generator) -> LossLaw | None:
    if inp.widths.size < 4:
        return None
    best = np.array([o.best_loss for _, o in inp.ok], dtype=float)
    draws = np.vstack([o.loss_draws for _, o in inp.ok if o.loss_draws is not None])
    return fit_loss_law(inp.widths, best, draws, s.n_boot, rng, s.confidence_level)


def theory_words(theory: float, span: tuple[float, float] | list[float] | None = None) -> str:
    """Theory's exponent as notes say it: '-1', or a global LR's range 'between -1 and -0.5 (full and no
    alignment)'."""
    if span is None:
        return f"{theory:g}"
    return f"between {min(span):g} and {max(span):g} (full and no alignment)"


def law_notes(part: LawPart, consistent: bool | None, theory: float | None, size_kind: str = "width",
              theory_span: tuple[float, float] | None = None) -> list[str]:
    """What the user should know about the law: too few widths, too narrow a span, disagreement with theory."""
    widths = np.array(part.widths, dtype=float)
    notes = []
    if widths.size == 2:
        notes.append(f"2 widths: no residual to check the line against, so the interval assumes the typical "
                     f"between-width scatter ({TAU_SCALE:g} octave); sweep 4-5 widths")
    span = size_factor(8.0, size_kind)
    if widths.max() / widths.min() < span:
        notes.append(f"the widths span {widths.max() / widths.min():.3g}x; >= {span:g}x pins the exponent far better")
    if consistent is False and theory is not None:
        e = part.exponent
        notes.append(f"fitted exponent {e.estimate:.3g} ({percent(e.ci.confidence_level)} [{e.ci.low:.3g}, "
                     f"{e.ci.high:.3g}]) is inconsistent with theory ({theory_words(theory, theory_span)}): the "
                     "constant is not width-independent")
    p, e = part.predictive, part.exponent
    if p.method == "theory_prior" and theory is not None and not e.ci.low <= p.exponent <= e.ci.high:
        # two exponents a reader sees side by side, one outside the other's interval, said why (a review): the
        # prior's likelihood holds each width's optimum to its grid's resolution (the floor the per-width
        # intervals carry), while the free fit's interval comes from the widths' scatter about their line
        notes.append(f"the prediction's law takes exponent {p.exponent:.3g}, outside the fitted exponent's "
                     f"{percent(e.ci.confidence_level)} interval [{e.ci.low:.3g}, {e.ci.high:.3g}]: it weighs "
                     f"theory ({theory_words(theory, theory_span)}) against each width's optimum as known to "
                     "its LR grid's resolution, where the widths' scatter about their line is smaller than that; "
                     "a finer LR grid around the optima lets the data outweigh theory")
    if part.loss_law is not None and not part.loss_law.identified:
        notes.append("loss law L*(w) = E + A w^-alpha not identified (do not read its numbers): "
                     + "; ".join(part.loss_law.notes))
    return notes


@dataclass(frozen=True)
class EdgePart:
    """The law of the largest stable LR across widths, and its exponent."""

    law: ScalingLaw  # the free line through the brackets
    exponent: Estimate
    theory_law: ScalingLaw | None = None  # leaning on theory's exponent, where the free line's interval holds it


def edge_part(per: PerWidth, base_width: int, s: Settings, rng: np.random.Generator,
              theory: float | None = None, span: tuple[float, float] | None = None) -> EdgePart | None:
    """Midpoint of the last stable and the first diverged LR per width, with a uniform error (None below 2).

    Beside the free line, a law leaning on theory's exponent as the optimum's does (:func:`law_part`), where the
    free fit's 95% interval holds it: theory's exponents are the stability edge's own (the largest LR whose updates
    stay Theta(1)). A coarse grid brackets each width's edge within an octave or two, so the free line through 3-5
    brackets, extrapolated on t quantiles with 1-3 dof, is wide; theory's law predicts the edge nearer its truth
    where theory holds, and the free line keeps an edge that falls faster than theory (`fitting.predict`'s cap
    takes the lower of the two). The exponent reported is the free fit's.
    """
    edge = [(w, o.x_stable, o.x_first_div) for w, (_, o) in sorted(per.items())
            if o.x_first_div is not None and o.x_stable is not None]
    if len(edge) < 2:
        return None
    widths = np.array([w for w, _, _ in edge], dtype=float)
    y = np.array([(lo + hi) / 2 for _, lo, hi in edge])
    v = np.array([(hi - lo) ** 2 / 12 for _, lo, hi in edge])
    fit = fit_law(widths, y, v, None, base_width, 0, rng, s.confidence_level)
    led = None
    if theory is not None and theory_gap(fit.law.exponent, theory, span) <= t_quantile(fit.law.df,
                                                                                      PRIOR_GATE_LEVEL) * fit.se:
        prior = fit_law_prior(widths, y, v, base_width, theory, s.prior_sd, s.tau_scale, span)
        if prior.conflict <= CONFLICT_Z:
            led = prior.law
    return EdgePart(fit.law, _estimate(fit.law.exponent, fit.ci, fit.se,
                                       "WLS on the midpoint between the largest stable and the first diverged LR"),
                    led)


def constant_fits(data: GroupData, anchors: dict[int, np.ndarray | None], base_width: int, s: Settings,
                  rng: np.random.Generator) -> tuple[list[ConstantFit], list[str]]:
    """Each swept constant: its coordinate-wise optimum per width, the value at base width, and its drift."""
    fits, notes = [], []
    # a width with no stable cell has no anchor, so none of its constants' optima
    by_width = {r.width: (r, at) for r in data.widths if (at := anchors.get(r.width)) is not None}
    for j, name in enumerate(data.constant_cols, start=1):
        per = fit_coordinate({w: slice_through(r, at, j) for w, (r, at) in by_width.items()}, j, s, rng)
        inp = _law_inputs(per)
        if inp.widths.size == 0:
            # a per-layer constant is not carried either: recommend's default stands in for it, which it says
            # again (a service review)
            carried = ("; not carried, so recommend takes it from the constants it is given (default 1)"
                       if name.startswith(("gamma_", "init_scale_", "multiplier_")) else "")
            notes.append(f"{name}: no identified optimum at any width (widen its grid){carried}")
            continue
        if inp.widths.size == 1:
            w0, o0 = inp.ok[0]
            assert o0.x_opt is not None and o0.ci is not None  # identified
            ci = log2_interval(*o0.ci, s.confidence_level)
            assert ci is not None  # bootstrap quantiles are finite
            fits.append(ConstantFit(name=name, optimum=Estimate(estimate=2.0**o0.x_opt, ci=ci,
                                                                method=f"local quadratic at width {w0}")))
            continue
        fit = fit_law(inp.widths, inp.y, inp.v, inp.draws, base_width, s.n_boot, rng, s.confidence_level,
                      noise_var=inp.noise_v)
        p0 = predict_law(fit.law, base_width)
        at_base = log2_interval(*p0.interval(s.confidence_level), s.confidence_level)
        assert at_base is not None  # a finite law predicts finite bounds
        opt = Estimate(estimate=2.0**p0.mean, ci=at_base, method="across-width fit at the base width")
        drift = _estimate(fit.law.exponent, fit.ci, fit.se, "WLS + tau^2 (theory: 0)")
        if not drift.ci.contains(0.0):
            notes.append(f"{name}: its optimum drifts with width (exponent {drift.estimate:.3g}, "
                         f"{percent(drift.ci.confidence_level)} [{drift.ci.low:.3g}, {drift.ci.high:.3g}]): "
                         "not width-independent")
        fits.append(ConstantFit(name=name, optimum=opt, drift_exponent=drift))
    return fits, notes


def anchor(rows: WidthRows) -> np.ndarray | None:
    """The best stable cell over all swept coordinates at one width (where each 1-D slice is taken)."""
    frame = pd.DataFrame(rows.coords()).assign(loss=rows.loss, diverged=rows.diverged)
    coords = list(range(rows.coords().shape[1]))
    cell = frame.groupby(coords, sort=False).agg(m=("loss", "mean"), d=("diverged", "sum"))
    cell = cell[(cell["d"] == 0) & cell["m"].notna()]
    if cell.empty:
        return None
    best = cell["m"].idxmin()
    return np.array(best if isinstance(best, tuple) else (best,), dtype=float)


def slice_through(rows: WidthRows, at: np.ndarray | None, free: int) -> WidthRows:
    """The runs at ``at`` in every coordinate but ``free`` (all runs when there is no anchor)."""
    if at is None:
        return rows
    coords = rows.coords()
    mask = np.ones(coords.shape[0], dtype=bool)
    for c, v in enumerate(at):
        if c != free:
            mask &= np.isclose(coords[:, c], v)
    return rows.take(mask)


#: the level at which a bend in log2(size) is said (one test per law)
BEND_ALPHA = 0.01
#: the distinct sizes the bend test needs: a quadratic over the sizes' means leaves sizes - 3 residual df
BEND_MIN_SIZES = 5
#: how a law's warning of a bend begins (a prediction beyond the swept sizes is then unreliable)
BEND = "the optimum bends in "
#: below this p (and not BEND_ALPHA) the bend is said as possible, not called (the prediction stays reliable): a
#: review's 5-size sweeps over 50x of parameters with a true bend (slope -0.31 to -0.77) had p 0.003-0.17, 3 of 12
#: under 1%, 9 under 5%, and were 1 octave off at 7B with no word; on straight laws it is said 5-7% of the time
#: (simulated, 5 sizes x 3 curves, with and without per-size jitter: a code review), as a 5% test is
BEND_HINT_ALPHA = 0.05
BEND_HINT = "the optimum may bend in "
#: how a group's warning that its LR column may fall as the LR grows begins (its prediction is then unreliable)
INVERTED_LR = "the learning-rate column may run the other way"


def bend_warning(z: np.ndarray, y: np.ndarray, v: np.ndarray, noun: str) -> str | None:
    """A warning when the optima curve in log2(size): the law's straight line is then an average over the swept
    sizes, and a prediction beyond them misses by the bend (a reviewer's simulation: an exponent drifting from
    -0.8 to -0.5 over 128-1024 put the 4x prediction 0.56 octave low, covered 0 of 80 times, unsaid). ``z``:
    log2 of each optimum's size; ``y``: its log2 LR* (a joint law's covariate effects taken out); ``v``: its
    variance.

    Tested on the sizes, not the curves: the curves of one size share its jitter off the line (the across-width
    model's tau), which a test counting curves as independent reads as a bend (29-32% false alarms on straight
    laws with 0.1-0.15 octave of it, a code review found). Each size's mean optimum (the covariates' fitted
    effects removed, weighted by the curves' own variances) gets a quadratic in log2(size), weighted by 1/(its
    variance + tau^2 between sizes), and its coefficient a t test on the residuals' own scale with sizes - 3 df:
    5 sizes at least."""
    zs = np.unique(z)
    if zs.size < BEND_MIN_SIZES:
        return None
    w = 1.0 / np.maximum(v, 1e-12)
    m = np.array([np.sum(w[z == t] * y[z == t]) / np.sum(w[z == t]) for t in zs])
    var = np.array([1.0 / np.sum(w[z == t]) for t in zs])
    zc = zs - zs.mean()
    Xq = np.column_stack([np.ones(zs.size), zc, zc**2])
    tau2 = design_tau2(Xq, m, var)
    res = WLS(m, Xq, weights=1.0 / (var + tau2)).fit()
    se = math.sqrt(max(float(res.normalized_cov_params[2, 2]) * float(res.scale), 0.0))
    if not (se > 0 and math.isfinite(se)):
        return None
    df = zs.size - 3
    p = 2 * float(t_sf(abs(float(res.params[2])) / se, df))
    if p >= BEND_HINT_ALPHA:
        return None
    # the local slope at the smallest and the largest size (d log2 LR* / d log2 size)
    b1, b2 = float(res.params[1]), float(res.params[2])
    lo, hi = b1 + 2 * b2 * float(zc.min()), b1 + 2 * b2 * float(zc.max())
    span = 2.0 ** float(zs.max() - zs.min())
    if p >= BEND_ALPHA:
        return (f"{BEND_HINT}log2({noun}) (t test on the {zs.size} {noun}s' optima, p = {p:.2g}, under "
                f"{BEND_HINT_ALPHA:g} but not {BEND_ALPHA:g}, the level that calls it bent): its slope would be "
                f"{lo:+.2f} at the smallest {noun} and {hi:+.2f} at the largest ({span:.3g}x it); with {zs.size} "
                f"{noun}s the test has little power, and a prediction far beyond them assumes the straight line: "
                f"compare a fit of the larger {noun}s alone, or sweep beyond them")
    return (f"{BEND}log2({noun}) (t test on the {zs.size} {noun}s' optima, p = {p:.2g}): its slope is {lo:+.2f} "
            f"at the smallest {noun} and {hi:+.2f} at the largest ({span:.3g}x it), and the "
            f"law's exponent averages them; a prediction beyond the swept {noun}s assumes a straight line and can "
            f"miss by the bend: fit the larger {noun}s alone, or sweep beyond them")
