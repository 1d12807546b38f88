"""Predictions from a fit: the LR band at a width, the safe-side LR, and per-layer settings.

Everything here works from the FitResult alone (JSON in, answer out): the across-width law keeps its
covariance, tau^2 and degrees of freedom, and the basin its left/right curvature. :func:`group_transfer`
turns a group's fitted LR into per-layer settings through theory's transfer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import optimize, special

from abcscale import theory
from abcscale.fitting.parts import BEND, INVERTED_LR, in_size_words, size_factor, theory_words
from abcscale.fitting.scaling import predict_law, t_quantile
from abcscale.schemas.enums import LAYERS, EpsilonMode, Layer, LrMode, WeightDecayMode
from abcscale.schemas.fit import GroupFit, Prediction, max_size, value_text
from abcscale.schemas.theory import (
    SCALE_MAX,
    SCALE_MIN,
    Alignment,
    BaseConfig,
    Constants,
    Interval,
    LayerSetting,
    PerLayer,
    Transfer,
)
from abcscale.theory.solver import nearest_optimal
from abcscale.theory.transfer import GLOBAL_ALIGNMENT_NOTE, GLOBAL_C_NOTE

#: extrapolating further than this past the largest fitted width earns a warning.
EXTRAPOLATION_WARN = 32.0
#: past this factor (2^10 widths) a prediction is unreliable: a thousandfold width is another model family (and a
#: target typed with zeros too many, 10^8 for 10^4, passed `--strict` with a warning; a user review)
EXTRAPOLATION_UNRELIABLE = 1024.0
#: an expected relative loss penalty above this makes the prediction unreliable.
HUGE_PENALTY = 0.05
#: a 95% band wider than this (octaves of LR, 16x) is too wide to act on, whatever the basin's curvature says
WIDE_BAND_OCTAVES = 4.0
#: the prefix of the warnings that make a prediction unreliable: shown in bold, and ``--strict`` exits 1 on them.
UNRELIABLE = "unreliable: "


def unreliable(source: Prediction | list[str]) -> list[str]:
    """The warnings that make a prediction unreliable (``--strict`` refuses them), from a prediction's
    ``unreliable`` field (its text-only warnings when an older stored fit lacks the field) or from warnings."""
    if isinstance(source, Prediction):
        return [UNRELIABLE + r for r in source.unreliable] or unreliable(source.warnings)
    return [w for w in source if w.startswith(UNRELIABLE)]


#: when the fitted basin is symmetric, the safe-side LR assumes overshooting costs this much more
#: than undershooting: in the LR sweeps released with Step Law (Li et al. 2025, arXiv:2503.04715), at the best
#: batch size LR x2 cost a median 0.84% loss and LR x0.5 0.32%, i.e. overshooting costs 2-3x more.
DEFAULT_ASYMMETRY = 2.0
#: the safe-side LR never exceeds the lower bound of the stability edge theory's law predicts at this level (fixed by
#: design: a safety margin, not a reported interval), nor goes below LR*'s own 95% band for it.
EDGE_CAP_LEVEL = 0.95
#: ... and never above the free line's lower bound at this level. The free line through each width's edge bracket
#: (3-5 brackets an octave or two wide, extrapolated on t quantiles with 1-3 dof) put its 95% bound under LR*'s band
#: on most coarse-grid tables, which stopped the safe side at the band's low end (3.8% expected loss against 1.2%
#: at LR*: a user review); theory's law alone hid an edge that falls faster than theory, which the free line keeps
#: (a code review: a safe side above the true edge). Its 68% bound does neither on those cases
#: (tests/fitting/test_safe_side_edge_s60.py)
EDGE_FREE_LEVEL = 0.68


_SQRT_2PI = math.sqrt(2 * math.pi)


def _side(mu: np.ndarray | float, sd: float) -> tuple[Any, Any]:
    """E[d^2 1(d<0)] and E[d^2 1(d>0)] for d ~ N(mu, sd^2)."""
    if sd <= 0:
        mu = np.asarray(mu, dtype=float)
        return np.where(mu < 0, mu**2, 0.0), np.where(mu > 0, mu**2, 0.0)
    t = np.asarray(mu, dtype=float) / sd
    m2 = np.asarray(mu, dtype=float) ** 2 + sd**2
    # the standard normal's cdf and density by their formulas (scipy.special's ndtr is stats.norm.cdf's own):
    # stats.norm's argument checks cost 20x the arithmetic on a scalar, and the safe-side search calls this a few
    # hundred times a prediction
    pdf = np.exp(-0.5 * t * t) / _SQRT_2PI
    pos = m2 * special.ndtr(t) + np.asarray(mu) * sd * pdf
    neg = m2 * special.ndtr(-t) - np.asarray(mu) * sd * pdf
    return neg, pos


def expected_penalty(shift: float, sd: float, k_left: float, k_right: float) -> float:
    """Expected relative loss penalty when choosing log2 LR = estimate + shift, x* ~ N(estimate, sd^2)."""
    neg, pos = _side(shift, sd)
    return float(k_left * neg + k_right * pos)


class NoLaw(ValueError):
    """The group has no law across widths (one width swept, no identified optimum): nothing to predict from. The
    data's shortfall, not the input's: ``--strict`` fails it (exit 1) in every gate, as ``fit --strict`` does."""


#: the fit's reason for a group without a law whose every run diverged (``fitting.group.fit_group``)
ALL_DIVERGED = "every run in this group diverged: lower the learning-rate grid"


def _refuse(g: GroupFit) -> str:
    if not g.per_width and g.n_rows and g.n_diverged >= g.n_rows:  # no width fitted: not "one width (?)"
        return ALL_DIVERGED
    if len(g.per_width) <= 1:
        w = g.per_width[0].width if g.per_width else "?"
        from abcscale.fitting.table import THEORY_COLUMNS, option

        others = [k for k in g.group if k not in THEORY_COLUMNS]
        if others:  # a budget that grows with the width (steps = 10 x width), grouped: each width is a group
            cols, named = ", ".join(others), ", ".join(f"{k}={value_text(g.group[k])}" for k in others)
            return (f"only one width ({w}) in this group ({named}): an "
                    f"exponent needs at least 2 widths; if {cols} change(s) with the width, the widths are split "
                    f"into groups of one: name it a covariate ({option('covariates')}) to fit one law across it, "
                    "or leave it out of the group columns")
        return f"only one width ({w}) was swept: an exponent needs at least 2 widths; sweep 4-5 spanning >= 8x"
    bad = [wo for wo in g.per_width if not wo.identified]
    if bad:
        why = "; ".join(f"width {wo.width}: {wo.message}" for wo in bad if wo.message)
        return ("fewer than 2 widths have an identified optimum, so nothing is extrapolated: widen the "
                f"learning-rate grid ({why})")
    return "no across-width fit for this group"


#: The largest |log2 LR| a prediction's bands may reach (2^1000 is about 1e301; floats end at 2^1024).
MAX_LOG2_LR = 1000.0


def predict_group(g: GroupFit, width: int, *, confidence_level: float | None = None,
                  size_kind: str = "width") -> Prediction:
    """LR* at ``width``: point, bands, expected loss penalty, safe-side LR, extrapolation factor.

    ``ci`` is at ``confidence_level`` (default: the level the group was fitted at); ``ci68`` and ``ci95`` are
    always the 68% and 95% bands. All three have variance g^T cov g + tau^2 (a new width scatters around the
    line like the fitted ones) and the law's quantiles: normal for the posterior with theory's prior
    (``law.method`` theory_prior), t on the law's df for the free fit. ``unreliable`` lists the reasons
    (also warnings starting "unreliable: ") that make ``--strict`` refuse the prediction.
    """
    most, words = max_size(size_kind)  # a parameter count's (1e18) past a width's 2**40: 2e12 parameters is a size
    given: Any = width
    if size_kind != "width" and isinstance(given, float) and math.isfinite(given) and given.is_integer():
        width = int(given)  # a size in parameters as a Python caller writes it (2e12), the API's predict passes it on
    if isinstance(width, bool) or not isinstance(width, int | np.integer) or not 0 < width <= most:
        raise ValueError(f"width: must be a whole number from 1 to {most} ({words}), got {width!r}")
    law = g.law
    if law is None:
        raise NoLaw(_refuse(g))
    if confidence_level is None:
        confidence_level = g.exponent.ci.confidence_level if g.exponent is not None else 0.95
    p = predict_law(law, width)
    wmax = max(law.widths)
    factor = width / wmax
    warnings = [*_prediction_notes(g, factor, wmax, size_kind), *_band_notes(g)]
    if g.mixed_columns:
        warnings.append(f"{UNRELIABLE}{mixed_reason(g.mixed_columns)}")
    if g.basin is not None:
        kl, kr = g.basin.k_left, g.basin.k_right
    else:
        kl = kr = 0.0
        warnings.append("no basin curvature was fitted: the expected loss penalty is unknown (reported as 0)")
    # the decision basin: the fitted one, with overshooting assumed DEFAULT_ASYMMETRY x dearer when the fit
    # was symmetric; both penalties below use it, and the safe-side LR minimises it
    if g.basin is not None and g.basin.source != "asymmetric":
        kr = DEFAULT_ASYMMETRY * kl
    penalty = expected_penalty(0.0, p.sd, kl, kr)
    if penalty > HUGE_PENALTY:
        warnings.append(f"{UNRELIABLE}the expected loss penalty at the predicted LR is {100 * penalty:.3g}%: the "
                        "band is too wide to act on; sweep wider widths or more of them")
    shift = 0.0
    if p.sd > 0 and kl > 0 and kr > 0:
        res = optimize.minimize_scalar(lambda s: expected_penalty(s, p.sd, kl, kr), bounds=(-4 * p.sd, 4 * p.sd),
                                       method="bounded", options={"xatol": 1e-6})
        shift = float(res.x)
    safe = p.mean + shift
    lo, hi = p.interval(confidence_level)
    (lo68, hi68), (lo95, hi95) = p.interval(0.68), p.interval(0.95)
    edge_lr = None
    if g.edge_law is not None:
        free = predict_law(g.edge_law, width)
        led = None if g.edge_law_theory is None else predict_law(g.edge_law_theory, width)
        e = free if led is None else led  # the edge's prediction: theory's law where theory holds
        edge_lr = 2.0 ** min(e.mean, MAX_LOG2_LR)  # beyond it the prediction is refused below
        # the cap: the lower of theory's law's 95% bound and the free line's 68% one, never under LR*'s 95% band
        # (EDGE_FREE_LEVEL says why); continuous in both, so a small move of the edge moves the safe side a little
        bounds = {f"free line's lower {100 * EDGE_FREE_LEVEL:g}% bound": free.interval(EDGE_FREE_LEVEL)[0]}
        if led is not None:
            bounds[f"lower {100 * EDGE_CAP_LEVEL:g}% bound with theory's exponent"] = led.interval(EDGE_CAP_LEVEL)[0]
        which, bound = min(bounds.items(), key=lambda kv: kv[1])
        if safe > max(bound, lo95):
            # where the free line binds beside theory's law, both predictions: an edge falling faster than theory
            both = ("" if led is None or which.startswith("lower") else
                    f"; the free line puts the edge at {2.0 ** free.mean:.3g}, theory's exponent at "
                    f"{2.0 ** led.mean:.3g} (more widths or a finer grid near the edge tell which)")
            if bound >= lo95:
                warnings.append(f"safe-side LR capped at the predicted stability edge's {which} "
                                f"({2.0 ** bound:.3g}){both}")
                safe = bound
            else:
                warnings.append(f"the predicted stability edge's {which} ({2.0 ** bound:.3g}) lies below LR*'s 95% "
                                f"band: the safe side stops at the band's low end{both}")
                safe = lo95
        if e.mean < p.mean and factor > 1:  # inside the swept widths the measured edges and optima say it
            # LR* past the edge: a run at it diverges if the edge's line holds, and at the swept widths every LR*
            # lay below its edge, so the two lines cross between them and here and one of them is wrong (a user
            # review: an edge line through 2 widths' brackets, 12x under LR* at 8x extrapolation, said nowhere)
            edge = g.edge_law if g.edge_law_theory is None else g.edge_law_theory
            edge_widths = ", ".join(str(w) for w in edge.widths)
            warnings.append(f"{UNRELIABLE}the predicted stability edge ({2.0 ** e.mean:.3g}) lies below the "
                            f"predicted LR* ({2.0 ** p.mean:.3g}) at {int(width)}: the edge's line (widths "
                            f"{edge_widths}, exponent {edge.exponent:+.3g}) crosses LR*'s before it, so one "
                            "of the two lines is wrong there; sweep a wider width, or a finer LR grid near the edge")
    ends = [lo, hi, lo95, hi95, safe] + ([] if g.edge_law is None else [e.mean])
    if abs(far := max(ends, key=abs)) > MAX_LOG2_LR:
        # 2.0**x overflows past 1023 and a bound of 2^-1075 reads as 0: no band that wide is a prediction
        raise ValueError(f"width: at {width} the predicted LR band reaches 2^{far:.4g}, beyond what a float "
                         f"holds; predict at a width nearer the fitted ones ({min(law.widths)}-{wmax}) or at a "
                         "lower confidence_level")
    if hi95 - lo95 > WIDE_BAND_OCTAVES:  # a flat basin's penalty can pass a band of any width
        why = (" (or fit with the theory setup, whose exponent narrows it)" if g.theory_exponent is None else
               " (the band could not lean on theory's exponent: the data put it too far; more widths settle it)"
               if law.method == "free" else "")
        warnings.append(f"{UNRELIABLE}the 95% band spans {hi95 - lo95:.2g} octaves of LR: too wide to act on; sweep "
                        f"more widths{why}")
    if factor > 1 and any(w.startswith((f"{BEND}log2(width)", f"{BEND}log2(size)")) for w in g.warnings):
        warnings.append(f"{UNRELIABLE}extrapolating {math.log2(factor):.2g} octaves past the swept widths where the "
                        "optimum bends in log2(width) (the group's warning): the straight line's prediction can miss "
                        "by the bend")
    for w in g.warnings:
        if w.startswith(INVERTED_LR) and "best learning rate is 1 or more" in w:
            warnings.append(f"{UNRELIABLE}the learning-rate column may not hold the LR (-log LR, 1/LR, other units): "
                            "the group's best learning rate is 1 or more at every width, none of an adaptive "
                            "optimizer's (the group's warning); convert it to the LR")
        elif w.startswith(INVERTED_LR):
            warnings.append(f"{UNRELIABLE}the learning-rate column may fall as the LR grows (-log LR, 1/LR): the "
                            "group's diverged runs sit below its best LRs (the group's warning); convert it to the LR")
    if size_kind != "width":  # as the fit says its own (fitting.pipeline)
        warnings = in_size_words(warnings)
    return Prediction(
        width=int(width), lr=2.0**p.mean, ci=Interval(low=2.0**lo, high=2.0**hi, confidence_level=confidence_level),
        ci68=(2.0**lo68, 2.0**hi68), ci95=(2.0**lo95, 2.0**hi95), safe_lr=2.0**safe,
        expected_loss_penalty=penalty, safe_expected_loss_penalty=expected_penalty(safe - p.mean, p.sd, kl, kr),
        extrapolation_factor=float(factor), stability_edge_lr=edge_lr, warnings=warnings, method=law.method,
        unreliable=[w[len(UNRELIABLE):] for w in unreliable(warnings)], lr_layer=g.lr_layer,
    )


def _band_notes(g: GroupFit) -> list[str]:
    """Why a band is as wide as it is, when it could not lean on theory's exponent."""
    law = g.law
    if law is None or law.method != "free":
        return []
    k, q = len(law.widths), t_quantile(law.df, 0.95)
    how = f"t on {law.df} df, 95% quantile {q:.3g}" if law.df > 0 else "normal quantiles, no residual check"
    if g.theory_exponent is None:
        return [f"no theory prior: the band rests on {k} widths alone ({how}); theory's prior narrows it: fit "
                "again with the theory setup (parameterization, optimizer, lr_mode: as table columns or as the fit's "
                "options of those names; the fit decides the prior, not the recommendation), or sweep more widths"]
    if g.consistent is False:
        return [f"the band ignores theory's exponent, which the fit rejects; it rests on {k} widths alone ({how})"]
    if law.prior_mean is None:  # a fit stored before the bands used theory
        return [f"the band rests on {k} widths alone ({how}): this fit predates theory-informed bands; refit it"]
    return [f"the data put the exponent ({g.exponent.estimate if g.exponent else law.exponent:.3g}) too far "
            f"from theory's ({theory_words(law.prior_mean, law.prior_span)}, prior sd {law.prior_sd:g}) to lean on "
            f"it: the band rests on {k} widths alone ({how})"]


def _prediction_notes(g: GroupFit, factor: float, wmax: int, size_kind: str = "width") -> list[str]:
    """Far extrapolation, disagreement with theory, widths left out (thresholds in the size column's unit)."""
    notes = []
    far = size_factor(EXTRAPOLATION_WARN, size_kind)
    n = len(g.law.widths) if g.law is not None else 0
    if n == 2 and factor > 1:
        notes.append(f"{UNRELIABLE}extrapolating {factor:.3g}x from 2 widths: nothing checks the line; sweep 4-5 "
                     f"widths spanning >= {size_factor(8.0, size_kind):g}x")
    if factor > (too_far := size_factor(EXTRAPOLATION_UNRELIABLE, size_kind)):
        notes.append(f"{UNRELIABLE}extrapolating {factor:.3g}x past the largest fitted width ({wmax}), beyond "
                     f"{too_far:g}x: sweep wider widths (or check the target: a zero too many?)")
    elif factor > far:
        notes.append(f"extrapolating {factor:.3g}x past the largest fitted width ({wmax}); beyond "
                     f"{far:g}x the band is statistical only and misses model misspecification")
    wmin = min(g.law.widths) if g.law is not None and g.law.widths else wmax
    if factor * wmax < wmin / too_far:  # as far below as above is refused: `--size 7` for 7e9 answered LR 1077
        notes.append(f"{UNRELIABLE}extrapolating {wmin / (factor * wmax):.3g}x below the smallest fitted width "
                     f"({wmin}), beyond {too_far:g}x: sweep smaller widths (or check the target: a zero missing?)")
    elif factor * wmax < wmin / far:  # downward too: a line fitted at 64-512 says little about width 1
        notes.append(f"extrapolating {wmin / (factor * wmax):.3g}x below the smallest fitted width ({wmin}); "
                     f"beyond {far:g}x the band is statistical only and misses model misspecification")
    if g.consistent is False and g.exponent is not None:
        ci = g.exponent.ci
        level = f"{100 * ci.confidence_level:.3g}%"
        notes.append(f"the fitted exponent {g.exponent.estimate:.3g} ({level} [{ci.low:.3g}, {ci.high:.3g}]) is "
                     f"inconsistent with theory ({theory_words(g.theory_exponent or 0.0, g.theory_span)}) at "
                     f"{level}")
    skipped = [wo.width for wo in g.per_width if not wo.identified]
    if skipped:
        notes.append("width(s) " + ", ".join(map(str, skipped)) + " had no identified optimum and were left "
                     "out of the fit")
    return notes


#: group keys theory reads; a fit's group selector may give them when the table has no such column.
THEORY_KEYS = ("parameterization", "optimizer", "lr_mode", "alignment")


def _fill_constants(g: GroupFit, constants: Constants, optimizer: str) -> tuple[Constants, list[str]]:
    """The caller's constants, with the fit's filling the per-layer kinds the caller left at the default: a swept
    constant's optimum (``g.constants``), else the value the group's runs trained with (``g.trained_constants``);
    the fitted LR is the optimum under those, as under the decay (:func:`_fit_decay`). Where the caller gives a kind,
    a note names the runs' values it differs from."""
    update: dict[str, PerLayer] = {}
    # what the fit said of the runs' constants it could not carry (retuned per width, empty cells): the default
    # stands in for them, said again where the answer uses it (a review: recommend --fit was silent, 2x off)
    notes = [w for w in g.warnings if (m := _NOT_CARRIED.match(w)) and not _given(constants, m["kind"], m["layer"])
             and (m["kind"] != "epsilon" or theory.layer_rules(optimizer).has_epsilon)]
    for kind in ("gamma", "init_scale", "multiplier"):
        fitted = {c.name[len(kind) + 1:]: c.optimum.estimate for c in g.constants if c.name.startswith(kind + "_")}
        # the swept ones are the fit's coordinates: the runs' value of such a layer is none
        trained = {k: v for k, v in g.trained_constants.get(kind, {}).items() if k not in fitted}
        if not fitted and not trained:
            continue
        given = getattr(constants, kind)
        # given or not by the caller's fields, not by value: --gamma 1,1,1 was replaced by the runs' (a code review)
        if kind not in constants.model_fields_set:
            vals = {layer.value: v for layer in LAYERS if (v := {**trained, **fitted}.get(layer.value)) is not None}
            update[kind] = PerLayer(**vals)
            if fitted:
                notes.append(f"{kind} from the fit: " + ", ".join(f"{k} {fitted[k]:.3g}" for k in vals if k in fitted))
            if any(not math.isclose(v, 1.0) for v in trained.values()):  # all 1: the default, nothing moved
                notes.append(f"{kind} from the fit's runs: {_layer_text(trained)} (the table's {kind}_* columns: the "
                             f"constants they trained with, under which the fitted LR is the optimum; give {kind} to "
                             "say others, or drop the columns if they mean something else)")
            continue
        theirs = {k: getattr(given, k) for k in trained}
        # to the notes' 3 digits: the numbers a note prints, copied back, warned that they differed (a review)
        if any(not math.isclose(theirs[k], v, rel_tol=SAME_CONSTANT) for k, v in trained.items()):
            notes.append(f"{kind}: the fit's runs trained with {_layer_text(trained)}; its fitted LR is the optimum "
                         f"under those, and yours ({_layer_text(theirs)}) may move it: sweep with the constants you "
                         "will train with")
    eps_update, eps_notes = _fit_epsilon(g, constants) if theory.layer_rules(optimizer).has_epsilon else ({}, [])
    filled = constants.model_copy(update={**update, **eps_update})
    decay, decay_notes = _fit_decay(g, constants) if theory.layer_rules(optimizer).weight_decay else (None, [])
    return (filled if decay is None else filled.model_copy(update=decay)), [*notes, *eps_notes, *decay_notes]


def transfer_epsilon_mode(g: GroupFit, constants: Constants | None, optimizer: str) -> EpsilonMode:
    """The epsilon mode a recommendation from ``g`` carries epsilon with (:func:`_fit_epsilon`): the caller's where
    given, else the one the group's runs trained with, else the default. The vector and fixed roles follow it."""
    given = constants or Constants()
    if "epsilon_mode" in given.model_fields_set or g.trained_epsilon_mode is None or g.trained_epsilon is None \
            or not theory.layer_rules(optimizer).has_epsilon:
        return given.epsilon_mode
    return EpsilonMode.parse(g.trained_epsilon_mode)


#: how near a given constant is to the runs' one to be the same: the notes print 3 digits (half a unit in the third)
SAME_CONSTANT = 5e-3


def _fit_epsilon(g: GroupFit, constants: Constants) -> tuple[dict[str, Any], list[str]]:
    """The epsilon and its mode the group's runs trained with (the runner's columns), each carried where the caller
    gave none, with a note where it is not abcscale's default; a warning where the caller's differs. A sweep at
    --epsilon 1e-6 was recommended at 1e-8 (100x low at every layer) and failed `check --fit` as too high (a review)."""
    if g.trained_epsilon is None or g.trained_epsilon_mode is None:
        return {}, []
    defaults = Constants()
    update: dict[str, Any] = {}
    notes = []
    if "epsilon" not in constants.model_fields_set:
        update["epsilon"] = g.trained_epsilon
        if not math.isclose(g.trained_epsilon, defaults.epsilon):
            notes.append(f"epsilon from the fit's runs: {g.trained_epsilon:.3g} at the base width (the table's epsilon "
                         "column: the epsilon they trained with; give epsilon to say another)")
    elif not math.isclose(constants.epsilon, g.trained_epsilon, rel_tol=SAME_CONSTANT):
        notes.append(f"epsilon: the fit's runs trained with {g.trained_epsilon:.3g}; yours ({constants.epsilon:.3g}) "
                     "may move the optimal LR: sweep with the epsilon you will train with")
    mode = EpsilonMode.parse(g.trained_epsilon_mode)
    if "epsilon_mode" not in constants.model_fields_set:
        update["epsilon_mode"] = mode
        if mode is not defaults.epsilon_mode:
            notes.append(f"epsilon_mode from the fit's runs: {mode.value} (the table's epsilon_mode column: how they "
                         "carried epsilon across widths; give epsilon_mode to say another)")
    elif constants.epsilon_mode is not mode:
        notes.append(f"epsilon_mode: the fit's runs carried epsilon {mode.value}, yours {constants.epsilon_mode.value}")
    return update, notes


def _layer_text(values: dict[str, float]) -> str:
    """Per-layer values in the layers' order: 'embedding 2, hidden 1, readout 0.5'."""
    return ", ".join(f"{layer.value} {values[layer.value]:.3g}" for layer in LAYERS if layer.value in values)


def _fit_decay(g: GroupFit, constants: Constants) -> tuple[dict[str, Any] | None, list[str]]:
    """The decay the group's runs trained with, carried where the caller gave none; a note where the caller's
    differs (the fitted LR is the optimum under the decay it was swept with)."""
    if g.weight_decay is None or g.weight_decay_mode is None:
        return None, []
    mode = g.weight_decay_mode
    trained = f"{g.weight_decay:g} ({mode})" if g.weight_decay else "no weight decay"
    given = constants.model_fields_set
    # a decay given without its mode is read in the fit's mode; a mode given without a decay is the caller's
    theirs = constants.weight_decay_mode.value if "weight_decay_mode" in given else mode
    if "weight_decay" not in given and theirs == mode:  # the optimizer may take none (an SGD sweep's 0): none carried
        said = f"{trained}, the decay its runs trained with" if g.weight_decay else "0: its runs trained without one"
        return {"weight_decay": g.weight_decay, "weight_decay_mode": WeightDecayMode.parse(mode)}, [
            f"weight_decay from the fit: {said} (the fitted LR is the optimum there; give weight_decay to say another)"]
    value = constants.weight_decay if "weight_decay" in given else 0.0
    carry = {"weight_decay_mode": WeightDecayMode.parse(theirs)}
    if math.isclose(value, g.weight_decay, rel_tol=1e-9) and (theirs == mode or not g.weight_decay):
        return carry, []
    asked = f"{value:g} ({theirs})" if value else "none"
    return carry, [f"weight_decay: the fit's runs trained with {trained}; its fitted LR is the optimum under that "
                   f"decay, and {asked} may move it: sweep with the decay you will train with"]


class GroupSetupError(ValueError):
    """A fit's group whose theory setup (its table's parameterization, optimizer, lr_mode or alignment column) theory
    cannot read; the message names the column and the value, and each caller names the fit its way (the CLI's
    ``--fit``, REST's ``fit_id``)."""


def _check_group_setup(group: dict[str, Any]) -> None:
    """The theory setup the group's key holds (the table's parameterization, optimizer, lr_mode and alignment
    columns, which the fit takes as they are: a custom table's name, a typo) as theory reads it, else a
    GroupSetupError naming the column and the value. A recommend from such a fit leaked pydantic's text ("1 validation
    error for Alignment ... errors.pydantic.dev") or named no input ("unknown parameterization 'foo'"; a review)."""
    from pydantic import ValidationError

    from abcscale.schemas.enums import Optimizer, Parameterization
    from abcscale.schemas.errors import validation_message

    parse = {"parameterization": Parameterization.parse, "optimizer": Optimizer.parse, "lr_mode": LrMode.parse,
             "alignment": Alignment.parse}
    for key, read in parse.items():
        if (value := group.get(key)) is None:  # not a column: the caller's setting (hints) stands in, checked there
            continue
        try:
            read(str(value))
        except ValidationError as exc:  # a number out of its range ("0.5,0.9,1": omega)
            why = validation_message(exc)
        except ValueError as exc:
            why = str(exc)
        else:
            continue
        raise GroupSetupError(f"the group's {key} {str(value)[:60]!r} (the fit's table's {key} column): {why}; "
                              "correct the column and fit again")


def group_transfer(g: GroupFit, width: int, beta: float, *, alignment: str | None = None,
                   hints: dict[str, Any] | None = None,
                   constants: Constants | None = None) -> tuple[Transfer, list[str]]:
    r"""Per-layer settings at ``width`` from the group's fitted LR ``beta`` at that width, and notes.

    Per-layer mode: :math:`\eta_l = \beta \gamma_l (n / b)^{-c_l}`; global mode: :math:`\eta_l = \beta \gamma_l`
    (``theory.transfer`` applies :math:`(n/b)^{-c}` itself, and the fitted global LR already includes it).
    ``hints`` stand in for group columns the fit's table lacks (parameterization, optimizer, lr_mode,
    alignment); ``alignment`` is the fit's, used when neither gives one. Fitted constants fill the kinds
    ``constants`` leaves at their defaults; the notes say which.
    """
    hints = hints or {}
    if g.lr_layer is not None:
        # the fitted LR is one layer's (a per-layer table's lr_hidden column), which already holds that layer's
        # gamma and width factor: spread as beta, every layer was off by it (a code review: hidden 64x low)
        raise ValueError(f"per-layer settings: this fit measured the {g.lr_layer} layer's own LR (its LR column is "
                         "that layer's own), not the sweep's LR: the other layers' do not follow from it; fit the "
                         "table's swept LR (its beta column, the default) for per-layer settings (the prediction is "
                         f"the {g.lr_layer} layer's LR at the width)")
    _check_group_setup(g.group)
    info = {k: g.group.get(k) if g.group.get(k) is not None else hints.get(k) for k in THEORY_KEYS}
    missing = [k for k in ("parameterization", "optimizer") if info[k] is None]
    if missing:
        raise ValueError("per-layer settings need the group's " + " and ".join(missing)
                         + ": the fit's table has no such column; give " + " and ".join(missing))
    # per-layer LRs and epsilons refer to the width the table's beta does, not to C's (fit --base-width)
    base_width = g.lr_base_width or g.base_width or (min(g.law.widths) if g.law is not None and g.law.widths else None)
    if base_width is None:
        raise NoLaw(_refuse(g))
    if info["lr_mode"] is None:  # per_layer would apply the width scaling the fitted LR already holds, twice
        raise ValueError("lr_mode: the fit's table has no lr_mode column and none was given: say how the sweep "
                         "set its LRs (global: one LR for every layer, as most sweeps do; per_layer: each layer's "
                         "LR scaled with width by its own exponent, as abcscale's runner does)")
    mode = LrMode.parse(str(info["lr_mode"]))
    p, opt = str(info["parameterization"]), str(info["optimizer"])

    def text(value: Any) -> str | None:
        return None if value is None else str(value)

    al, c_swept, notes = swept_alignment(g.lr_exponents, p, opt, mode, table=text(g.group.get("alignment")),
                                         given=text(hints.get("alignment")), fitted=text(alignment),
                                         mode_given=g.group.get("lr_mode") is None)
    if not g.lr_exponents:  # no lr_* columns show the sweep's exponents: the fitted one tells the modes apart,
        # whichever gave the mode (the table's column, fit's lr_mode or the caller's; a wrong column answered 64x off)
        notes += _mode_against_exponent(g, p, opt, mode)
    filled, fill_notes = _fill_constants(g, constants or Constants(), opt)
    notes += fill_notes
    sol = theory.solve_exponents(p, opt, al)
    beta_in = beta * (width / base_width) ** sol.global_c if mode is LrMode.global_ else beta
    if not SCALE_MIN <= beta_in <= SCALE_MAX:  # said as the width, not as a BaseConfig's beta no one gave (a review)
        carried = (f", carried to the base width {base_width} by theory's exponent {beta_in:.3g} as the base LR,"
                   if beta_in != beta else "")
        raise ValueError(f"width: the fit's LR at width {int(width)} is {beta:.3g}{carried} outside [{SCALE_MIN:g}, "
                         f"{SCALE_MAX:g}], the range a recommendation holds: a width this far from the swept ones is "
                         "past what the fitted law can set per layer (its LR alone: `abcscale predict`)")
    base = BaseConfig.model_validate({**filled.given(), "width": base_width, "beta": beta_in})
    tr = theory.transfer(p, opt, base, int(width), al, mode, c_override=c_swept)
    if mode is not LrMode.global_:
        return tr, notes
    # the fitted LR settles how the one LR scales: theory's notes on its exponent (the binding layer's, and the
    # alignment's two answers) are not this answer's, which says the fitted one (a user review: "shrinks as n^-1"
    # beside an LR the fit scaled as n^-0.5)
    kept = [w for w in tr.warnings if not w.startswith((GLOBAL_ALIGNMENT_NOTE, GLOBAL_C_NOTE))]
    fitted = g.law.exponent if g.law is not None else None
    if fitted is not None:
        gamma = {layer.value: v for layer in LAYERS if not math.isclose(v := getattr(filled.gamma, layer.value), 1.0)}
        # a carried or given gamma scales a layer's LR from the one LR (a review: the note said "every layer's")
        times = f" times its gamma ({_layer_text(gamma)})" if gamma else ""
        kept.append(f"global LR: every layer's LR is the prediction's at this width{times}, its law LR ~ "
                    f"width^{fitted:.3g} "
                    f"(x{2.0 ** fitted:.3g} per doubling); the c column is theory's under {Alignment.parse(al).name} "
                    f"alignment (c = {sol.global_c:g}), which the epsilons follow")
    return tr.model_copy(update={"warnings": kept}), notes


#: the level of the exponent's interval that tells a per-layer sweep from a global one (fixed, as the prior's gate)
MODE_LEVEL = 0.95


def _mode_against_exponent(g: GroupFit, p: str, opt: str, mode: LrMode) -> list[str]:
    """An LR mode the fitted exponent contradicts: unreliable, naming the other mode.

    A global sweep's fit (LR* falling as width^-1) answered per_layer scales the fitted LR by each layer's (n/b)^-c
    again: muP + Adam's hidden LR 64x under a 64x wider model's, without a word (a user review), whether the mode
    was the caller's, fit's lr_mode or the table's own column (a wrong column passed --strict until session 64).
    The fitted exponent's interval tells the two modes apart where it holds one's theory and excludes the other's
    (per-layer: 0; global: -c between full and no alignment)."""
    e = g.exponent
    if e is None:
        return []
    try:
        ends = [theory.theory_exponent(p, opt, a, LrMode.global_) for a in ("full", "none")]
    except ValueError:  # no exponents for this setup: theory.transfer says why
        return []
    spans = {LrMode.per_layer: (0.0, 0.0), LrMode.global_: (min(ends), max(ends))}
    other = LrMode.global_ if mode is LrMode.per_layer else LrMode.per_layer

    # at 95% whatever level the fit was made at, as law_part's prior gate: a 50% interval excluded a theory the
    # data agree with, and the note makes --strict refuse (a code review)
    low, high = e.ci.low, e.ci.high
    if e.se is not None and g.law is not None:
        # the free line's residual df, as the exponent's own interval: a law leaning on theory's prior has df 0 (a
        # normal quantile), 6x too narrow with 3 widths, and flagged honest drifting sweeps (4-10%: a review)
        df = g.law.df if g.law.method == "free" else max(len(g.law.widths) - 2, 0)
        half = t_quantile(df, MODE_LEVEL) * e.se
        low, high = e.estimate - half, e.estimate + half

    def holds(span: tuple[float, float]) -> bool:
        return low <= span[1] and high >= span[0]

    if holds(spans[mode]) or not holds(spans[other]):
        return []

    def words(span: tuple[float, float]) -> str:
        return f"{span[0]:g}" if span[0] == span[1] else f"{span[0]:g} to {span[1]:g}"

    why = ("per_layer scales the fitted LR, which already falls with the width, by each layer's (n/b)^-c again "
           "(or the fit's LR column is one layer's own LR, lr_hidden or the like, not the sweep's beta: fit beta)"
           if mode is LrMode.per_layer else
           "global gives every layer the fitted base LR without the per-layer width factors the sweep trained with")
    return [f"{UNRELIABLE}lr_mode: the fitted LR's exponent ({e.estimate:.3g}, "
            f"{100 * MODE_LEVEL:g}% [{low:.3g}, {high:.3g}]) excludes theory's "
            f"{words(spans[mode])} for a {mode.value} sweep of {p} + {opt} and holds {other.value}'s "
            f"({words(spans[other])}): the sweep looks {other.value}, and {why}; if the sweep set its LRs so, "
            f"recommend with lr_mode {other.value}"]


#: a layer's c from the table's LR columns and theory's under an alignment agree to this (a fitted slope of exact
#: columns is exact to 1e-6; a CSV's four digits move it by less than 1e-3)
C_TOLERANCE = 0.02


def _layer_c(p: str, opt: str, alignment: str) -> dict[str, float]:
    sol = theory.solve_exponents(p, opt, alignment)
    return {layer.value: sol.c[layer] for layer in LAYERS}


def _c_text(c: dict[str, float]) -> str:
    return " / ".join(f"{c[layer.value]:g}" for layer in LAYERS)


def _face_point(swept: dict[str, float], p: str, opt: str, alignment: str) -> dict[Layer, float] | None:
    """The point of ``alignment``'s optimal face the sweep's exponents are (snapped to it), or None where they are
    not optimal under it. The face is its prescription alone, or where the layers trade LR (u > alpha, some SGD
    alignments) a whole face whose every point is as good (``nearest_optimal``)."""
    near = nearest_optimal(p, opt, alignment, {Layer(k): v for k, v in swept.items()})
    return near if all(abs(near[layer] - swept[layer.value]) <= C_TOLERANCE for layer in LAYERS) else None


def swept_alignment(
    swept: dict[str, float] | None, p: str, opt: str, mode: LrMode, *, table: str | None = None,
    given: str | None = None, fitted: str | None = None, mode_given: bool = False,
) -> tuple[str, dict[Layer, float] | None, list[str]]:
    r"""The alignment a per-layer answer applies, checked against the exponents the sweep ran with.

    The fitted LR is the optimum of :math:`\beta` where each layer trained at :math:`\beta \gamma_l (n/b)^{-c_l}`
    with the sweep's :math:`c_l`; an answer under other exponents moves layer l's LR by :math:`(n/b)^{\Delta c_l}`
    from what the fit measured. ``swept`` is what the table's lr_* columns show (``GroupFit.lr_exponents``). The
    alignment is the table's column (``table``), else the caller's (``given``), else the fit's own setting
    (``fitted``), else full. One the caller gives that contradicts the columns is refused (ValueError), as is an LR
    mode the caller gives (``mode_given``; else it is the table's column) that does: per-layer columns answered
    as one global LR, or one LR for every layer answered per layer where no alignment gives every c 0. Where the
    table's alignment column, the fit's setting or the default contradicts them, whichever of full and none they
    match is used and said, else the answer is unreliable. Returns the alignment, the sweep's point of the optimal
    face where it is not theory's prescription (for ``theory.transfer``'s ``c_override``; else None), and notes.
    """
    al = table or given or fitted or "full"
    if not swept or not all(layer.value in swept for layer in LAYERS):
        return al, None, []
    shown = f"the table's per-layer LR columns scale as c = {_c_text(swept)} (embedding / hidden / readout)"
    one_lr = all(abs(v) <= C_TOLERANCE for v in swept.values())  # one LR for every layer at every width
    if mode is LrMode.global_:
        if one_lr:
            return al, None, []
        what = (f"{shown}, not one LR for every layer: the fitted LR is a per-layer "
                "sweep's base LR, and one LR for every layer is not what it measured")
        if mode_given:
            raise ValueError(f"lr_mode: global gives every layer the one LR, but {what}; give lr_mode per_layer")
        return al, None, [f"{UNRELIABLE}the table's lr_mode column says global, but {what}: correct the column "
                          "(per_layer) and fit again"]
    try:
        ours = _layer_c(p, opt, al)
        point = _face_point(swept, p, opt, al)
        ends = {a: _face_point(swept, p, opt, a) for a in ("full", "none")}
    except ValueError:  # no exponents under it: theory.transfer says why
        return al, None, []
    match = [a for a, at in ends.items() if at is not None]

    def off_prescription(alignment: str, at: dict[Layer, float]) -> dict[Layer, float] | None:
        """The sweep's point of the face where it is not the prescription (layers that trade LR), else None."""
        c = _layer_c(p, opt, alignment)
        return None if all(abs(c[layer.value] - at[layer]) <= C_TOLERANCE for layer in LAYERS) else at

    name = Alignment.parse(al).name
    if point is not None:
        face = off_prescription(al, point)
        return al, face, [] if face is None else [
            f"c: {shown}, a point of {name} alignment's optimal face other than its prescription "
            f"({_c_text(ours)}; there the layers trade LR at no cost): answered at the sweep's exponents"]
    hint = ""
    if one_lr and not match:  # no alignment gives every c 0 here: one LR, as a global sweep trains
        if mode_given:
            raise ValueError(f"lr_mode: per_layer scales each layer's LR by its own exponent (c = {_c_text(ours)} "
                             f"under {name} alignment), but {shown}: one LR for every layer at every width, as a "
                             "global sweep trains; give lr_mode global")
        hint = (" (one LR for every layer at every width: if the sweep trained one LR, the table's lr_mode column is "
                "wrong: correct it (global) and fit again)")
    if given and not table:
        fix = (f"give alignment {match[0]}, as they show, or leave it out" if match else
               "give the alignment the sweep ran with (and check the parameterization)")
        raise ValueError(f"alignment: {name} gives c = {_c_text(ours)} (embedding / hidden / readout), but {shown}"
                         f"{hint}: the fitted LR is the optimum under the sweep's exponents, and per-layer LRs under "
                         f"{name}'s would not be the ones it measured; {fix}")
    where = (f"its alignment column's {name}" if table else f"the fit's alignment {name}" if fitted else
             "full alignment's, the default where the table has no alignment column")
    if match:
        at = ends[match[0]]
        assert at is not None  # a match is a face point
        return match[0], off_prescription(match[0], at), [
            f"alignment: {match[0]}, as {shown} (not as {where}, c = {_c_text(ours)}): the fitted LR is the optimum "
            "under the sweep's exponents"]
    return al, None, [f"{UNRELIABLE}{shown}{hint}, not as {where} (c = {_c_text(ours)})"
                      + (", nor as none's" if name == "full" else ", nor as full's" if name == "none"
                         else ", nor as full's or none's")
                      + f": the per-layer LRs under {name} are not the ones the fit measured; give the alignment "
                      "(or the parameterization) the sweep ran with"]


def prediction_layers(g: GroupFit, prediction: Prediction, fit_alignment: str | None = None
                      ) -> tuple[list[LayerSetting] | None, list[str]]:
    """Per-layer settings for a prediction (None when the group lacks parameterization/optimizer), and the notes of
    the constants they carry from the fit's runs (``_fill_constants``): a table's `gamma_hidden` (a StepLR gamma,
    read as abcscale's) moved the hidden LR 10x with a note from `recommend` only, none from `predict` (a review)."""
    try:
        tr, notes = group_transfer(g, prediction.width, prediction.lr, alignment=fit_alignment)
    except ValueError:
        return None, []
    return tr.layers, [n for n in notes if _CARRIED.match(n)]


#: the notes of constants a recommendation carries from the fit's runs (``_fill_constants``, ``_fit_epsilon``)
_CARRIED = re.compile(r"(gamma|init_scale|multiplier|epsilon|epsilon_mode) from the fit's runs: ")
def mixed_reason(columns: Sequence[str]) -> str:
    """Why a prediction from runs of two configurations fitted as one is unreliable (a group's or a joint law's)."""
    return (f"runs fitted as one configuration differ in {', '.join(columns)} (the table's warnings say how: seeds "
            "of one width and LR, curves on their own LR grids, or setups on disjoint widths): two or more "
            "configurations are fitted as one, and the prediction is for none of them; fit again with the "
            "column(s) among the group columns to fit each apart, or as covariates for one law across them")


#: the fit's notes on a constant's column it did not carry (fitting.table's _trained_constants, _trained_epsilon)
_NOT_CARRIED = re.compile(r"(?P<kind>gamma|init_scale|multiplier|epsilon)(_(?P<layer>embedding|hidden|readout)|_mode)?"
                          r": .*\bnot carried\b")


def _given(constants: Constants, kind: str, layer: str | None) -> bool:
    """Whether the caller gave ``kind`` (of ``layer`` where it names one): a PerLayer given for the hidden layer alone
    leaves the readout's default standing in for the runs' (a code review: its note was dropped)."""
    if kind not in constants.model_fields_set:
        return False
    value = getattr(constants, kind)
    return layer is None or not isinstance(value, PerLayer) or layer in value.model_fields_set
