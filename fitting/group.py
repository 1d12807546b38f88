"""One group's fit, assembled once: optima per width, the law, the theory verdict, constants, prediction.

:func:`fit_group` calls the pure parts of :mod:`fitting.parts` in a fixed order (the bootstrap draws come
from one generator, so the order is part of the result), turns their findings into warnings, and builds
the frozen :class:`GroupFit`. The prediction is made from that GroupFit, as any later caller would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from pydantic import ValidationError
from scipy import stats

from abcscale import theory
from abcscale.fitting.optimum import Cells, Optimum, shared_variance
from abcscale.fitting.parts import (
    INVERTED_LR,
    EdgePart,
    LawPart,
    PerWidth,
    Settings,
    anchor,
    bend_warning,
    constant_fits,
    edge_part,
    fit_coordinate,
    law_notes,
    law_part,
    log2_interval,
    size_factor,
    slice_through,
    theory_gap,
)
from abcscale.fitting.predict import (
    ALL_DIVERGED,
    MODE_LEVEL,
    UNRELIABLE,
    predict_group,
    prediction_layers,
    swept_alignment,
)
from abcscale.fitting.scaling import dl_tau2, t_quantile
from abcscale.fitting.table import GroupData, option
from abcscale.schemas.enums import Layer, LrMode
from abcscale.schemas.errors import validation_message
from abcscale.schemas.fit import Basin, GroupFit, Prediction, WidthOptimum
from abcscale.schemas.theory import Alignment

#: the loss band the residual drift to the target width must stay inside for C to count as width-independent.
DRIFT_LOSS_BAND = 0.005
#: how a warning that a group has no theory exponent begins.
NO_THEORY = "no theory exponent: "


def theory_for_group(group: dict[str, Any], alignment: str | None) -> tuple[float | None, str | None]:
    """The exponent theory predicts for this group's swept LR, or None and why not."""
    absent = [k for k in ("parameterization", "optimizer", "lr_mode") if k not in group]
    if absent:  # no column, or one the group columns leave out: the group cannot say which
        return None, (NO_THEORY + "no " + ", ".join(absent) + f" among the group columns (the table has no such "
                      f"column, or {option('group_cols')} leaves it out): give "
                      + ", ".join(option(k) for k in absent) + " for every run, or add the column")
    if empty := [k for k in ("parameterization", "optimizer", "lr_mode") if group.get(k) is None]:
        return None, NO_THEORY + "the table's " + ", ".join(empty) + " column is empty"
    al = alignment if alignment is not None else group.get("alignment")
    try:
        return theory.theory_exponent(str(group["parameterization"]), str(group["optimizer"]), al,
                                      str(group["lr_mode"])), None
    except ValidationError as exc:  # an alignment out of range (omega > 1/2, which an older table may hold)
        return None, f"{NO_THEORY}alignment {al!r}: {validation_message(exc)}"
    except ValueError as exc:
        return None, f"{NO_THEORY}{exc}"


def _layer_theory(group: dict[str, Any], layer: str, alignment: str | None, th: float,
                  span: tuple[float, float] | None) -> tuple[float | None, tuple[float, float] | None]:
    r"""Theory's exponent for one layer's own LR column (lr_col lr_hidden): a per-layer sweep's
    :math:`\eta_l = \beta \gamma_l (n/b)^{-c_l}` falls as :math:`n^{-c_l}` under the alignment its columns were
    written with (the table's, else full), where beta's is 0: checked against beta's, an exactly-theory table was
    "inconsistent" (a service review). A global sweep's column is :math:`\beta \gamma_l`: beta's exponent."""
    try:
        if LrMode.parse(str(group.get("lr_mode"))) is not LrMode.per_layer:
            return th, span
        al = alignment if alignment is not None else group.get("alignment") or "full"
        sol = theory.solve_exponents(str(group["parameterization"]), str(group["optimizer"]), al)
        return th - sol.c[Layer(layer)], None
    except (ValueError, KeyError, ValidationError):
        return None, None


def theory_span_for_group(group: dict[str, Any], alignment: str | None) -> tuple[float, float] | None:
    """A global LR's exponent under full and under no alignment, (low, high), where they differ; else None.

    Which layer binds a single LR, and how fast, depends on how aligned its updates become, which theory
    cannot say in advance (the paper measured fits between the two: muP + Adam -1.15, NTK -0.71, mean-field
    -0.29, from -1 / -1/2, -1/2 / 0, -1/2 / 0). The table's alignment column says what its per-layer LRs
    assumed (the runner writes `full`), not what a global LR's training reached. An ``alignment`` the fit is
    told (`--alignment`, REST `alignment`) is the hypothesis to test, and one in the table between full and none
    a measured alignment: theory's point stands for both.
    """
    if alignment is not None:
        return None
    try:
        if LrMode.parse(str(group.get("lr_mode"))) is not LrMode.global_:
            return None
        al = group.get("alignment")  # full or none (by name or by value), or none given
        if al is not None and Alignment.parse(al) not in (Alignment.full(), Alignment.none()):
            return None
        ends = [theory.theory_exponent(str(group["parameterization"]), str(group["optimizer"]), a, "global")
                for a in ("full", "none")]
    except (ValueError, KeyError):
        return None
    return None if ends[0] == ends[1] else (min(ends), max(ends))


def other_mode_note(group: dict[str, Any], estimate: float, se: float, df: int, size_kind: str = "width") -> list[str]:
    """Where the fitted exponent's 95% interval excludes theory's for the group's lr_mode and holds the other
    mode's, that mode, named (a user review: a microsoft/mup sweep, one MuAdam lr per run, fitted as global was
    "inconsistent" with a band 4.4 octaves wide, and only ``recommend`` said "the sweep looks per_layer"). The
    same test as recommend's (``fitting.predict``'s ``_mode_against_exponent``): at 95% whatever the fit's level,
    a global LR's theory spanning full to no alignment."""
    try:
        mode = LrMode.parse(str(group.get("lr_mode")))
        ends = [theory.theory_exponent(str(group["parameterization"]), str(group["optimizer"]), a, "global")
                for a in ("full", "none")]
    except (ValueError, KeyError):
        return []
    half = 0.5 if size_kind == "params" else 1.0  # per parameter, half the width's slope (fit_group)
    spans = {LrMode.per_layer: (0.0, 0.0), LrMode.global_: (half * min(ends), half * max(ends))}
    other = LrMode.per_layer if mode is LrMode.global_ else LrMode.global_
    q = t_quantile(df, MODE_LEVEL) * se
    low, high = estimate - q, estimate + q

    def holds(span: tuple[float, float]) -> bool:
        return low <= span[1] and high >= span[0]

    if holds(spans[mode]) or not holds(spans[other]):
        return []
    span = spans[other]
    words = f"{span[0]:g}" if span[0] == span[1] else f"{span[0]:g} to {span[1]:g}"
    how = ("each layer's LR scaled by its own width factor, as microsoft/mup's MuAdam/MuSGD do to one lr"
           if other is LrMode.per_layer else "one LR for every layer, unscaled")
    return [f"lr_mode: the fitted exponent's {100 * MODE_LEVEL:g}% interval [{low:.3g}, {high:.3g}] holds theory's "
            f"{words} for a {other.value} sweep ({how}): if the sweep trained so, fit again with lr_mode {other.value}"]


def fit_group(data: GroupData, s: Settings, rng: np.random.Generator) -> GroupFit:
    """Fit one group; a group where every run diverged gets only a warning."""
    if data.n_diverged == data.n_rows:
        return GroupFit(group=data.key, n_rows=data.n_rows, n_diverged=data.n_rows, warnings=[ALL_DIVERGED])
    # with swept constants, LR is fitted on the slice through the best cell (coordinate-wise search)
    anchors = {r.width: anchor(r) for r in data.widths} if data.constant_cols else {}
    # C's reference size: the table's base_width column is a width, no parameter count (a params fit took width 128
    # as its size, C 0.39 for 0.0099: a review); there the smallest size, as the README says
    table_base = data.base_width if s.size_kind == "width" else None
    base_width = s.base_width or table_base or data.widths[0].width
    per = fit_coordinate({r.width: slice_through(r, anchors.get(r.width), 0) for r in data.widths}, 0, s, rng)
    th, why = theory_for_group(data.key, s.alignment)
    span = theory_span_for_group(data.key, s.alignment) if th is not None else None
    if th is not None and data.lr_layer is not None:
        th, span = _layer_theory(data.key, data.lr_layer, s.alignment, th, span)
        why = None if th is not None else f"{NO_THEORY}no exponent c for the {data.lr_layer} layer's own LR column"
    if th is not None and s.size_kind == "params":
        # theory's slope is in width; a parameter count grows as width^2 (N ~ 12 depth d^2, as size_factor
        # reads the advice), so per parameter it is half: comparing the two would call a right sweep wrong
        th = th / 2
        span = None if span is None else (span[0] / 2, span[1] / 2)
    law = law_part(per, base_width, s, rng, th, span)
    edge = edge_part(per, base_width, s, rng, th, span)
    constants, constant_notes = constant_fits(data, anchors, base_width, s, rng)
    consistent = None
    if law is not None and th is not None:  # the interval holds theory's exponent, or reaches into its span
        lo, hi = (th, th) if span is None else span
        consistent = law.fit.ci.low <= hi and law.fit.ci.high >= lo
    # carrying C unchanged means by theory's exponent (the table's alignment's, as recommend's analytic transfer
    # takes it), not by whichever point of the span the fit lies near: the drift is measured to it
    independent, drift_note = _width_independent(consistent, law, th, s.target_width, base_width, span,
                                                 "the table's alignment" if data.key.get("alignment") is not None
                                                 else "full alignment, the default")
    warnings = [
        *([why] if why else []),
        *_alignment_note(data.key, s.alignment),
        # an unreliable one is the prediction's where there is one (said once)
        *(n for n in _swept_alignment_note(data.key, data.lr_exponents, s.alignment)
          if s.target_width is None or not n.startswith(UNRELIABLE)),
        *_coverage_notes(per, s.size_kind),
        *(law_notes(law, consistent, th, s.size_kind, span) if law is not None else []),
        *(other_mode_note(data.key, law.fit.law.exponent, law.fit.se, law.fit.law.df, s.size_kind)
          if law is not None and th is not None and data.lr_layer is None else []),
        *constant_notes,
        *data.constant_notes,
        *_seed_note(per),
        *_shape_note(per),
        *([drift_note] if drift_note else []),
        *_bend_note(per, s.size_kind),
        *([f"{INVERTED_LR}: its diverged runs sit below the best LRs, where runs do not diverge (the table's "
             "warning); a prediction from it is unreliable"] if data.inverted_lr else []),
        *([f"{INVERTED_LR}: its best learning rate is 1 or more at every width, none of an adaptive optimizer's (the "
           "table's warning); a prediction from it is unreliable"] if data.implausible_lr else []),
    ]
    g = GroupFit(
        group=data.key, n_rows=data.n_rows, n_diverged=data.n_diverged, base_width=base_width,
        # the table's beta is relative to its own base width (lr_l = beta gamma_l (n / b)^-c_l): C's reference
        # moved by --base-width must not move the per-layer split (a user review: hidden LR 8x off, unsaid)
        lr_base_width=data.base_width if data.base_width and data.base_width != base_width else None,
        weight_decay=data.weight_decay, weight_decay_mode=data.weight_decay_mode,
        trained_epsilon=data.epsilon, trained_epsilon_mode=data.epsilon_mode,
        lr_exponents=data.lr_exponents, trained_constants=data.trained_constants, lr_layer=data.lr_layer,
        theory_exponent=th, theory_span=None if span is None else list(span), consistent=consistent,
        width_independent=independent,
        per_width=[_width_optimum(w, c, o, law) for w, (c, o) in sorted(per.items())],
        constants=constants, warnings=warnings, mixed_columns=list(data.mixed), **_law_fields(law),
        **_edge_fields(edge),
    )
    return g if s.target_width is None else _with_prediction(g, s.target_width, s.alignment, s.size_kind)


def _law_fields(law: LawPart | None) -> dict[str, Any]:
    if law is None:
        return {}
    return {"law": law.predictive, "exponent": law.exponent, "exponent_boot": law.exponent_boot,
            "constant": law.constant, "constant_ci": law.constant_ci, "loo_error_octaves": law.loo_rms,
            "basin": law.basin, "loss_law": law.loss_law}


def _edge_fields(edge: EdgePart | None) -> dict[str, Any]:
    return {} if edge is None else {"edge_law": edge.law, "edge_law_theory": edge.theory_law,
                                    "stability_edge": edge.exponent}


def _bend_note(per: dict[int, tuple[Cells, Optimum]], size_kind: str) -> list[str]:
    """The across-width law's bend test (:func:`fitting.parts.bend_warning`) on the widths' optima: 5+ widths."""
    done = [(w, o) for w, (_, o) in sorted(per.items()) if o.x_opt is not None and o.var is not None]
    if len(done) < 5:
        return []
    z = np.log2(np.array([w for w, _ in done], dtype=float))
    bend = bend_warning(z, np.array([o.x_opt for _, o in done]), np.array([o.var for _, o in done]),
                        "width" if size_kind == "width" else "size")
    return [bend] if bend else []


def _off_alignment(g: GroupFit, alignment: str | None) -> list[str]:
    # per-layer LRs under exponents other than the sweep's are not the ones the fit measured (--strict refuses)
    return [w.removeprefix(UNRELIABLE) for w in _swept_alignment_note(g.group, g.lr_exponents, alignment)
            if w.startswith(UNRELIABLE)]


def group_prediction(g: GroupFit, width: int, alignment: str | None, size_kind: str = "width") -> Prediction:
    """The prediction a fit with target ``width`` gives its group ``g`` (``alignment``: the fit's, which the
    per-layer settings take): ``predict_group``'s with the per-layer settings and the swept-alignment check. A
    ValueError where the group has none (no across-width law)."""
    off = _off_alignment(g, alignment)
    pred = predict_group(g, width, size_kind=size_kind)
    # per-layer settings scale with the width: a parameter count read as one gave init stds of 1/sqrt(8e8)
    layers, carried = prediction_layers(g, pred, alignment) if size_kind == "width" else (None, [])
    return pred.model_copy(update={"layers": layers,
                                   "unreliable": [*pred.unreliable, *off],
                                   "warnings": [*pred.warnings, *(UNRELIABLE + o for o in off), *carried]})


def _with_prediction(g: GroupFit, width: int, alignment: str | None, size_kind: str = "width") -> GroupFit:
    """The group with its prediction at ``width`` (or a warning saying why there is none)."""
    try:
        pred = group_prediction(g, width, alignment, size_kind)
    except ValueError as exc:  # the group's warnings left the unreliable note to the prediction: said here
        return g.model_copy(update={"warnings": [*g.warnings, *(UNRELIABLE + o for o in _off_alignment(g, alignment)),
                                                 f"no prediction at width {width}: {exc}"]})
    return g.model_copy(update={"prediction": pred})


def _width_optimum(width: int, cells: Cells, opt: Optimum, law: LawPart | None) -> WidthOptimum:
    def lr(x: float | None) -> float | None:
        return None if x is None or not math.isfinite(2.0**x) else float(2.0**x)

    def band(b: tuple[float, float] | None) -> tuple[float, float] | None:
        return None if b is None or not all(math.isfinite(v) for v in b) else (2.0 ** b[0], 2.0 ** b[1])

    ci = log2_interval(*opt.ci, opt.confidence_level) if opt.identified and opt.ci is not None else None
    loo = law.fit.loo.get(width) if law is not None and law.fit.loo else None
    return WidthOptimum(
        width=width, lr_opt=lr(opt.x_opt) if opt.identified else None, ci=ci, on_edge=opt.on_edge,
        identified=opt.identified, grid_argmin_lr=lr(opt.x_argmin), best_loss=_finite(opt.best_loss),
        largest_stable_lr=lr(opt.x_stable), curvature=_finite(opt.curvature), band_0p1=band(opt.band_0p1),
        band_0p5=band(opt.band_0p5), model=opt.model, n_runs=int(cells.n_ok.sum() + cells.n_div.sum()),
        n_diverged=int(cells.n_div.sum()), n_seeds=cells.n_seeds, loo_error_octaves=_finite(loo),
        message="; ".join(opt.notes) or None,
        sd=_finite(math.sqrt(opt.var)) if opt.identified and opt.var is not None and opt.var >= 0 else None,
        shape_sd=math.sqrt(opt.shared_var) if opt.shared_var > 0 else None,
        noise_sd=(noise_sd := _noise_sd(opt)), error_sd=None if noise_sd is None else _error_sd(opt),
    )


def _noise_sd(opt: Optimum) -> float | None:
    """The width's own error before the grid floor, as an sd (octaves), never above what its interval says."""
    if not opt.identified or opt.noise_var is None or opt.var is None:
        return None
    return _finite(math.sqrt(max(min(opt.noise_var, opt.var), 0.0)))


def _error_sd(opt: Optimum) -> float | None:
    """The width's own error at the noise level as measured (``Optimum.error_var``), as an sd, never above noise_sd;
    None where noise_sd is not that bootstrap's alone: a bracket drawn from the seeds' spread carries its shape
    error's drift between widths too (``fitting.parts.with_bracket_drift``), and is read as it is."""
    if opt.seed_bracket or opt.error_var is None or opt.noise_var is None or opt.var is None:
        return None
    return _finite(math.sqrt(max(min(opt.error_var, opt.noise_var, opt.var), 0.0)))


def _finite(x: float | None) -> float | None:
    """A JSON-safe float: None for NaN/inf/None."""
    return None if x is None or not math.isfinite(x) else float(x)


def _width_independent(consistent: bool | None, law: LawPart | None, th: float | None, target: int | None,
                       base_width: int, span: tuple[float, float] | None = None,
                       source: str = "the table's alignment") -> tuple[bool | None, str | None]:
    """May C be used unchanged at ``target``? Consistent with theory, and the residual drift there small.

    The drift |e - e_theory| log2(target / base) (octaves; e_theory the table's alignment's exponent even where
    a global LR's theory is a span: carrying C means by that exponent) must cost less than DRIFT_LOSS_BAND of
    loss in the fitted basin: drift < sqrt(band / max(k_left, k_right)). None without a target width or a
    verdict. With a span the note says why a consistent group fails it (the fitted law's prediction stands).
    """
    if target is None or consistent is None or law is None or th is None:
        return None, None
    basin: Basin | None = law.basin
    if not consistent or basin is None:
        return consistent, None
    drift = abs(law.exponent.estimate - th) * abs(math.log2(target / base_width))
    if drift > math.sqrt(DRIFT_LOSS_BAND / max(basin.k_left, basin.k_right)):
        if span is not None:  # consistent with the span, yet C carried by theory's point would miss
            e = law.exponent.estimate
            where = "inside" if min(span) <= e <= max(span) else "outside"
            return False, (f"at width {target} C carried unchanged by theory's {th:g} ({source}) drifts {drift:.2g} "
                           f"octaves from the fitted exponent {e:.3g} ({where} theory's span {min(span):g}.."
                           f"{max(span):g}, its interval reaching it), past the {100 * DRIFT_LOSS_BAND:g}% loss band: "
                           "use the prediction at that width (the fitted law), not C with theory's exponent")
        return False, (f"at width {target} the residual drift from theory's exponent ({th:g}: {drift:.2g} "
                       f"octaves) exceeds the {100 * DRIFT_LOSS_BAND:g}% loss band: treat the constant as "
                       "width-dependent there")
    return True, None


def _alignment_note(key: dict[str, Any], alignment: str | None) -> list[str]:
    if alignment is None or key.get("alignment") is None or str(key["alignment"]) == alignment:
        return []
    try:
        per_layer = LrMode.parse(str(key.get("lr_mode"))) is LrMode.per_layer
    except ValueError:
        per_layer = False
    if per_layer:  # theory's exponent is 0 under both, and the per-layer split is the one the runs trained with
        return [f"{option('alignment')} {alignment} changes nothing in a per-layer group: theory's exponent for its "
                f"LR is 0 under any alignment, and its per-layer LRs follow the table's {key['alignment']}, which its "
                "runs trained with"]
    return [f"theory uses {option('alignment')} {alignment}, not the table's {key['alignment']}"]


def _swept_alignment_note(key: dict[str, Any], lr_exponents: dict[str, float] | None,
                          alignment: str | None) -> list[str]:
    """What :func:`fitting.predict.swept_alignment` says of the alignment the fit's per-layer answers apply (the
    table's, ``--alignment``'s or full) against the exponents its lr_* columns show."""
    if not lr_exponents or any(key.get(k) is None for k in ("parameterization", "optimizer", "lr_mode")):
        return []
    try:
        mode = LrMode.parse(str(key["lr_mode"]))
    except ValueError:
        return []
    table = key.get("alignment")
    return swept_alignment(lr_exponents, str(key["parameterization"]), str(key["optimizer"]), mode,
                           table=None if table is None else str(table), fitted=alignment)[2]


def _coverage_notes(per: PerWidth, size_kind: str = "width") -> list[str]:
    """Unidentified widths, and too few widths for an exponent."""
    notes = []
    bad = [w for w, (_, o) in sorted(per.items()) if not o.identified]
    widths = sorted(per)
    if bad:
        notes.append("width(s) " + ", ".join(map(str, bad)) + " have no identified optimum and are left out "
                     "of the across-width fit: " + "; ".join(
                         f"{w}: {per[w][1].notes[-1]}" for w in bad if per[w][1].notes))
    if len(widths) == 1:
        notes.append(f"one width ({widths[0]}): the exponent needs at least 2 widths "
                     f"(4-5 spanning >= {size_factor(8.0, size_kind):g}x recommended)")
    elif len(widths) - len(bad) < 2:
        notes.append("fewer than 2 widths with an identified optimum: no exponent, nothing to extrapolate; "
                     "widen the learning-rate grid")
    elif len(widths) < 4:
        notes.append(f"{len(widths)} widths swept; 4-5 spanning >= {size_factor(8.0, size_kind):g}x are recommended")
    return notes


def _shape_note(per: PerWidth) -> list[str]:
    """Basins that are not quadratic at most widths: their bias is shared, which no interval across widths sees."""
    ok = [w for w, (_, o) in sorted(per.items()) if o.identified]
    bad = [w for w in ok if per[w][1].lack_of_fit]
    if shared_variance([per[w][1].shared_var for w in ok]) == 0.0:  # none, or no more than chance makes
        return []
    brackets = [w for w in bad if per[w][1].seed_bracket]
    rest = [w for w in bad if w not in brackets]
    said = [f"the loss basin is lopsided at width(s) {', '.join(map(str, brackets))} (the wider local fit misses "
            "the cells beyond the seed noise, and the grid is too coarse for an asymmetric model): each vertex is "
            "the quadratic through the argmin's bracket, which sits on the basin's flat side by up to about "
            "two-thirds of a grid step, by an amount that moves with where the optimum falls between grid points. "
            "Their intervals take the seed noise, a grid step for that shape error, a part every width shares "
            "(ScalingLaw.shared_var: the constant and every prediction carry it) and its spread between widths "
            "(the exponent carries it); a grid twice as fine near the optimum shrinks all three"] if brackets else []
    if brackets and not rest:
        return said
    return [*said, f"the loss basin is not quadratic at width(s) {', '.join(map(str, rest))} (the local fit misses the "
            "cells beyond the seed noise, or a cubic term shows it lopsided: typically steeper on one side of the "
            "optimum): their intervals take the "
            "fit's residuals, and the asymmetric model where the grid allows it. Its vertex can still sit off the "
            "optimum by the same amount at every width (0.1 octave low at 2.5x asymmetry on a half-octave grid), "
            "which leaves the exponent alone and moves the constant and every prediction: their intervals carry "
            "it (ScalingLaw.shared_var); a quarter-octave grid near the optimum shrinks it"]


def _seed_note(per: PerWidth) -> list[str]:
    # repeats counted by their runs, not their seed labels: a table whose seed column no role names has its repeats
    # averaged under one label, and their spread is the noise estimate (a review: "one seed" beside the note that
    # the rows differing in config.seed are averaged as seeds)
    repeats = max((int(np.max(c.n_ok + c.n_div, initial=0)) for c, _ in per.values()), default=0)
    if max((c.n_seeds for c, _ in per.values()), default=0) < 2 and repeats < 2:
        return ["one seed per learning rate: noise is estimated from the fit's residuals; "
                ">= 2-3 seeds near the optimum are recommended"]
    return []


#: fewer groups than this say nothing about the spread of the priors: the defaults hold.
MIN_GROUPS_TO_LEARN = 3


@dataclass(frozen=True)
class Learned:
    """The priors a table's groups support: never below the defaults (``Settings``), wider when the groups
    show more spread. ``note`` says what was learned from how many groups (None when the defaults hold)."""

    prior_sd: float
    tau_scale: float
    note: str | None


def learn_priors(groups: list[GroupFit], s: Settings) -> Learned:
    """Method-of-moments spreads over the groups' free fits.

    Exponent: with d_g = e_free,g - e_theory,g and its standard error se_g, E[d^2] = s^2 + se^2 under the
    prior, so s^2 = mean(d_g^2 - se_g^2). Under a global LR d_g is the distance to theory's span (0 inside it),
    which the prior spreads over already: a group at no alignment's exponent does not widen every group's prior
    (inside the span this reads s low, and the default floor holds). Jitter: tau^2 is the mean of the groups'
    DerSimonian-Laird tau^2 (per-width variances from their intervals); a half-normal prior with scale sigma has
    E[tau^2] = sigma^2. Each is max(default, learned), and learned only from >= MIN_GROUPS_TO_LEARN groups.
    """
    d2 = [theory_gap(g.exponent.estimate, g.theory_exponent, _span(g)) ** 2 - g.exponent.se**2 for g in groups
          if g.exponent is not None and g.exponent.se is not None and g.theory_exponent is not None]
    taus = [t for g in groups if (t := _group_tau2(g)) is not None]
    prior_sd, tau_scale, said = s.prior_sd, s.tau_scale, []
    if len(d2) >= MIN_GROUPS_TO_LEARN and math.sqrt(max(0.0, float(np.mean(d2)))) > s.prior_sd:
        prior_sd = math.sqrt(float(np.mean(d2)))
        said.append(f"the exponent's prior sd around theory is {prior_sd:.3g} (learned from {len(d2)} groups; "
                    f"default {s.prior_sd:g})")
    if len(taus) >= MIN_GROUPS_TO_LEARN and math.sqrt(float(np.mean(taus))) > s.tau_scale:
        tau_scale = math.sqrt(float(np.mean(taus)))
        said.append(f"the width jitter's prior scale is {tau_scale:.3g} octaves (learned from {len(taus)} groups; "
                    f"default {s.tau_scale:g})")
    return Learned(prior_sd, tau_scale, "; ".join(said) + ": the theory-informed bands are that much wider"
                   if said else None)


def _span(g: GroupFit) -> tuple[float, float] | None:
    return None if g.theory_span is None else (min(g.theory_span), max(g.theory_span))


def _group_tau2(g: GroupFit) -> float | None:
    """A group's DL tau^2 from its identified widths (each width's variance its ``sd``, the same at every confidence
    level; its interval read as normal where a stored fit has none), None below 3."""
    ok = [wo for wo in g.per_width if wo.identified and wo.lr_opt and wo.ci]
    if len(ok) < 3:
        return None
    widths = np.array([wo.width for wo in ok], dtype=float)
    y = np.log2(np.array([wo.lr_opt for wo in ok], dtype=float))
    v = np.array([wo.sd**2 if wo.sd is not None else ((math.log2(wo.ci.high) - math.log2(wo.ci.low)) / (
        2 * stats.norm.ppf(0.5 + wo.ci.confidence_level / 2))) ** 2 for wo in ok if wo.ci is not None])
    return dl_tau2(widths, y, v)


def fit_groups(groups: list[GroupData], s: Settings, seed: int) -> tuple[list[GroupFit], list[str]]:
    """Fit every group (each from its own stream, so adding a group never changes another's draws), learn the
    priors from all of them (:func:`learn_priors`) and, when they are wider than ``s``'s, refit with them.

    Returns the fits and the table-level note saying what was learned (empty when the defaults held).
    """
    fits = [fit_group(data, s, np.random.default_rng([seed, i])) for i, data in enumerate(groups)]
    learned = learn_priors(fits, s)
    if learned.note is None:
        return fits, []
    s = replace(s, prior_sd=learned.prior_sd, tau_scale=learned.tau_scale)
    return [fit_group(data, s, np.random.default_rng([seed, i])) for i, data in enumerate(groups)], [learned.note]
