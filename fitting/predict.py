"""Predictions from a fit: the LR band at a width, the safe-side LR, and per-layer settings.

Everything here works from the FitResult alone (JSON in, answer out): the across-width law keeps its
covariance, tau^2 and degrees of freedom, and the basin its left/right curvature.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import optimize, stats

from abcscale import theory
from abcscale.fitting.scaling import predict_law
from abcscale.schemas.enums import LAYERS, LrMode, Optimizer, Parameterization
from abcscale.schemas.fit import FitResult, GroupFit, Prediction
from abcscale.schemas.recommend import LrBand, Recommendation
from abcscale.schemas.theory import BaseConfig, PerLayer

#: extrapolating further than this past the largest fitted width earns a warning.
EXTRAPOLATION_WARN = 32.0
#: when the fitted basin is symmetric, the safe-side LR assumes overshooting costs this much more
#: than undershooting (Step Law's released sweeps: 2-3x, fitting-notes section 2).
DEFAULT_ASYMMETRY = 2.0


def _side(mu: np.ndarray | float, sd: float) -> tuple[Any, Any]:
    """E[d^2 1(d<0)] and E[d^2 1(d>0)] for d ~ N(mu, sd^2)."""
    if sd <= 0:
        mu = np.asarray(mu, dtype=float)
        return np.where(mu < 0, mu**2, 0.0), np.where(mu > 0, mu**2, 0.0)
    t = np.asarray(mu, dtype=float) / sd
    m2 = np.asarray(mu, dtype=float) ** 2 + sd**2
    pos = m2 * stats.norm.cdf(t) + np.asarray(mu) * sd * stats.norm.pdf(t)
    neg = m2 * stats.norm.cdf(-t) - np.asarray(mu) * sd * stats.norm.pdf(t)
    return neg, pos


def expected_penalty(shift: float, sd: float, k_left: float, k_right: float) -> float:
    """Expected relative loss penalty when choosing log2 LR = estimate + shift, x* ~ N(estimate, sd^2)."""
    neg, pos = _side(shift, sd)
    return float(k_left * neg + k_right * pos)


def _refuse(g: GroupFit) -> str:
    if len(g.per_width) <= 1:
        w = g.per_width[0].width if g.per_width else "?"
        return f"only one width ({w}) was swept: an exponent needs at least 2 widths; sweep 4-5 spanning >= 8x"
    bad = [wo for wo in g.per_width if not wo.identified]
    if bad:
        why = "; ".join(f"width {wo.width}: {wo.message}" for wo in bad if wo.message)
        return ("fewer than 2 widths have an identified optimum, so nothing is extrapolated: widen the "
                f"learning-rate grid ({why})")
    return "no across-width fit for this group"


def predict_group(g: GroupFit, width: int) -> Prediction:
    """LR* at ``width``: point, 68/95% bands, expected loss penalty, safe-side LR, extrapolation factor."""
    if not isinstance(width, int | np.integer) or width <= 0:
        raise ValueError(f"width: must be a positive integer, got {width!r}")
    law = g.law
    if law is None:
        raise ValueError(_refuse(g))
    p = predict_law(law, width)
    warnings: list[str] = []
    wmax = max(law.widths)
    factor = width / wmax
    if factor > EXTRAPOLATION_WARN:
        warnings.append(f"extrapolating {factor:.3g}x past the largest fitted width ({wmax}); beyond 32x the "
                        "band is statistical only and misses model misspecification")
    if g.consistent is False and g.exponent is not None:
        warnings.append(f"the fitted exponent {g.exponent.estimate:.3g} (95% [{g.exponent.ci95[0]:.3g}, "
                        f"{g.exponent.ci95[1]:.3g}]) is inconsistent with theory ({g.theory_exponent:g}) at 95%")
    skipped = [wo.width for wo in g.per_width if not wo.identified]
    if skipped:
        warnings.append("width(s) " + ", ".join(map(str, skipped)) + " had no identified optimum and were left "
                        "out of the fit")
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
    shift = 0.0
    if p.sd > 0 and kl > 0 and kr > 0:
        res = optimize.minimize_scalar(lambda s: expected_penalty(s, p.sd, kl, kr), bounds=(-4 * p.sd, 4 * p.sd),
                                       method="bounded", options={"xatol": 1e-6})
        shift = float(res.x)
    safe = p.mean + shift
    edge_lr = None
    if g.edge_law is not None:
        e = predict_law(g.edge_law, width)
        edge_lr = 2.0**e.mean
        if safe > e.ci95[0]:
            warnings.append("safe-side LR capped at the lower 95% bound of the predicted stability edge")
            safe = e.ci95[0]
    return Prediction(
        width=int(width), lr=2.0**p.mean, ci68=(2.0 ** p.ci68[0], 2.0 ** p.ci68[1]),
        ci95=(2.0 ** p.ci95[0], 2.0 ** p.ci95[1]), safe_lr=2.0**safe, expected_loss_penalty=penalty,
        safe_expected_loss_penalty=expected_penalty(safe - p.mean, p.sd, kl, kr),
        extrapolation_factor=float(factor), stability_edge_lr=edge_lr, warnings=warnings,
    )


def _norm(key: str, value: Any) -> str:
    """Compare group values loosely: enum aliases and letter case do not matter."""
    s = str(value).strip()
    parsers = {"parameterization": Parameterization, "optimizer": Optimizer, "lr_mode": LrMode}
    if key in parsers:
        try:
            return parsers[key](s).value
        except ValueError:
            return s.lower()
    if key == "alignment":
        from abcscale.schemas.theory import Alignment

        try:
            return Alignment.parse(s).name
        except ValueError:
            return s.lower()
    return s.lower()


_THEORY_KEYS = ("parameterization", "optimizer", "lr_mode", "alignment")


def select_group(fit: FitResult, selector: dict[str, Any] | None) -> tuple[GroupFit, dict[str, Any]]:
    """The unique group matching ``selector``; keys no group has but theory needs are returned as hints."""
    selector = dict(selector or {})
    cols = sorted({k for g in fit.groups for k in g.group})
    hints, filters = {}, {}
    for k, v in selector.items():
        if k in cols:
            filters[k] = v
        elif k in _THEORY_KEYS:
            hints[k] = v
        else:
            raise ValueError(f"group key {k!r}: not a group column of this fit; group columns are: "
                             + (", ".join(cols) or "(none)"))
    matches = [g for g in fit.groups
               if all(k in g.group and _norm(k, g.group[k]) == _norm(k, v) for k, v in filters.items())]
    if len(matches) != 1:
        listing = "; ".join(",".join(f"{k}={v}" for k, v in g.group.items()) or "(all rows)" for g in fit.groups)
        what = "no group matches" if not matches else f"{len(matches)} groups match"
        raise ValueError(f"{what} {filters or '(no selector)'}: pick one with --group key=value,...; "
                         f"available groups: {listing}")
    return matches[0], hints


def _constants(g: GroupFit, constants: dict[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
    """BaseConfig extras: the caller's constants, with fitted ones filling defaults the caller left alone."""
    out = dict(constants or {})
    notes = []
    for kind in ("gamma", "init_scale", "multiplier"):
        current = PerLayer.parse(out.get(kind))
        fitted = {c.name[len(kind) + 1:]: c.optimum.estimate for c in g.constants if c.name.startswith(kind + "_")}
        if fitted and current == PerLayer():
            vals = {}
            for layer in LAYERS:
                if layer.value in fitted:
                    vals[layer.value] = fitted[layer.value]
            out[kind] = PerLayer(**vals)
            notes.append(f"{kind} from the fit: " + ", ".join(f"{k} {v:.3g}" for k, v in vals.items()))
        else:
            out[kind] = current
    return out, notes


def _transfer(g: GroupFit, fit_alignment: str | None, width: int, beta: float, hints: dict[str, Any],
              constants: dict[str, Any] | None):
    """theory.transfer at ``width`` with the fitted LR: returns (Transfer, notes)."""
    info = {k: g.group.get(k) if g.group.get(k) is not None else hints.get(k) for k in _THEORY_KEYS}
    missing = [k for k in ("parameterization", "optimizer") if info[k] is None]
    if missing:
        raise ValueError("per-layer settings need the group's " + " and ".join(missing)
                         + ": the fit's table has no such column; pass --" + " --".join(missing))
    mode = LrMode.parse(str(info["lr_mode"] or "per_layer"))
    alignment = info["alignment"] or fit_alignment or "full"
    extra, notes = _constants(g, constants)
    base_width = g.base_width or min(g.law.widths)
    p, opt = str(info["parameterization"]), str(info["optimizer"])
    sol = theory.solve_exponents(p, opt, alignment)
    # transfer() applies (width/base)^-c itself; in global mode the fitted LR already includes it
    beta_in = beta * (width / base_width) ** sol.global_c if mode is LrMode.global_ else beta
    base = BaseConfig(width=base_width, beta=beta_in, **extra)
    return theory.transfer(p, opt, base, int(width), alignment, mode), notes


def prediction_layers(g: GroupFit, prediction: Prediction, fit_alignment: str | None = None):
    """Per-layer settings for a prediction, or None when the group lacks parameterization/optimizer."""
    try:
        tr, _ = _transfer(g, fit_alignment, prediction.width, prediction.lr, {}, None)
    except ValueError:
        return None
    return tr.layers


def recommend_from_fit(
    fit: FitResult, width: int, *, selector: dict[str, Any] | None = None, constants: dict[str, Any] | None = None
) -> Recommendation:
    """Per-layer settings at ``width`` with the fitted LR band.

    Per-layer mode: lr_l = beta_hat(width) gamma_l (width/base)^-c_l; global mode: lr_l = beta_hat(width) gamma_l.
    """
    g, hints = select_group(fit, selector)
    pred = predict_group(g, width)
    tr, notes = _transfer(g, fit.provenance.settings.get("alignment"), int(width), pred.lr, hints, constants)
    band = LrBand(lr=pred.lr, ci68=pred.ci68, ci95=pred.ci95, safe_lr=pred.safe_lr,
                  expected_loss_penalty=pred.expected_loss_penalty, extrapolation_factor=pred.extrapolation_factor)
    warnings = [*tr.warnings, *pred.warnings, *notes]
    if not math.isclose(pred.safe_lr, pred.lr, rel_tol=1e-9):
        warnings.append(f"safe-side LR {pred.safe_lr:.4g} (scale every layer's LR by "
                        f"{pred.safe_lr / pred.lr:.3g} to use it)")
    data = tr.model_dump()
    data["warnings"] = warnings
    return Recommendation(**data, source="fit", beta=pred.lr, band=band, group=g.group)
