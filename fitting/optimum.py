"""The optimum of one swept coordinate (x = log2 LR, or log2 of a constant) at one width.

Cells are the distinct x values; each holds the mean loss over its stable seeds. A cell where any seed
diverged is censored: it bounds the basin from above and never enters the local fit. The optimum is the
vertex of a weighted local quadratic (or a quadratic plus cubic term, picked by AIC) within about one
octave of the grid argmin; its interval comes from a parametric bootstrap (noise from the seed spread,
or from the fit's residuals when there is one seed), vectorised over the fixed window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: fallback relative noise when neither seeds nor residuals can estimate it.
_FALLBACK_SIGMA_REL = 1e-3


@dataclass(eq=False)
class Cells:
    """Per-x aggregates at one width (sorted by x)."""

    x: np.ndarray
    mean: np.ndarray  # mean loss over stable seeds (NaN when none)
    n_ok: np.ndarray
    n_div: np.ndarray
    sd_rel: float | None  # pooled within-cell relative SD across cells with >= 2 stable seeds
    n_seeds: int
    sd_dof: int = 0  # degrees of freedom behind sd_rel


@dataclass(eq=False)
class Optimum:
    """What :func:`fit_optimum` found; ``draws`` are the bootstrap draws of x* (None when unidentified)."""

    x_opt: float | None
    ci95: tuple[float, float] | None
    draws: np.ndarray | None
    loss_draws: np.ndarray | None
    var: float | None
    identified: bool
    on_edge: bool
    x_argmin: float | None
    best_loss: float | None
    x_stable: float | None
    x_first_div: float | None
    curvature: float | None
    k_left: float | None
    k_right: float | None
    band_0p1: tuple[float, float] | None
    band_0p5: tuple[float, float] | None
    model: str
    sigma_rel: float | None
    notes: list[str] = field(default_factory=list)


def _design(x: np.ndarray, degree: int) -> np.ndarray:
    return np.vander(x, degree + 1, increasing=True)


def _vertex(coef: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum of b0 + b1 x + b2 x^2 (+ b3 x^3) per row, and whether it is a proper minimum."""
    b1, b2 = coef[:, 1], coef[:, 2]
    b3 = coef[:, 3] if coef.shape[1] > 3 else np.zeros_like(b1)
    disc = b2 * b2 - 3.0 * b3 * b1
    ok = disc > 0
    root = np.sqrt(np.where(ok, disc, 0.0))
    denom = b2 + root
    # -b1 / (b2 + sqrt(b2^2 - 3 b3 b1)) is the minimising root of the derivative, stable as b3 -> 0
    ok &= denom > 0
    x = np.where(ok, -b1 / np.where(ok, denom, 1.0), np.nan)
    return x, ok


def _poly(coef: np.ndarray, x: np.ndarray) -> np.ndarray:
    return sum(coef[..., j] * x**j for j in range(coef.shape[-1]))


def _band(coef: np.ndarray, x0: float, level: float, lo: float, hi: float) -> tuple[float, float]:
    """The x range around the vertex where the fitted loss stays below ``level`` (clipped to [lo, hi])."""
    p = coef.copy()
    p[0] -= level
    roots = np.roots(p[::-1])
    real = roots[np.abs(roots.imag) < 1e-9].real
    left = real[real < x0]
    right = real[real > x0]
    return (float(max(left.max(), lo)) if left.size else lo, float(min(right.min(), hi)) if right.size else hi)


def fit_optimum(cells: Cells, n_boot: int, rng: np.random.Generator, window: float = 1.0) -> Optimum:
    """Grid argmin, local quadratic/cubic vertex, bootstrap interval, edge flags, curvature and bands."""
    stable = (cells.n_div == 0) & (cells.n_ok > 0) & np.isfinite(cells.mean)
    notes: list[str] = []
    div_x = cells.x[cells.n_div > 0]
    empty = Optimum(None, None, None, None, None, False, False, None, None, None, None, None, None, None, None,
                    None, "argmin", None, notes)
    if not stable.any():
        notes.append("every run at this width diverged: lower the learning-rate grid")
        empty.x_first_div = float(div_x.min()) if div_x.size else None
        return empty
    xs, ys, ns = cells.x[stable], cells.mean[stable], cells.n_ok[stable]
    i = int(np.argmin(ys))
    x_am = float(xs[i])
    above = div_x[div_x > x_am]
    x_first_div = float(above.min()) if above.size else None
    x_stable = float(xs[xs < x_first_div].max()) if x_first_div is not None else float(xs.max())
    empty.x_argmin, empty.best_loss, empty.x_stable, empty.x_first_div = x_am, float(ys[i]), x_stable, x_first_div
    if xs.size < 3:
        notes.append(f"only {xs.size} stable learning rate(s): widen the grid (>= 5 around the optimum)")
        return empty
    if i == 0:
        empty.on_edge = True
        notes.append("optimum at the smallest learning rate tried: widen the grid downward")
        return empty
    if i == xs.size - 1 and x_first_div is None:
        empty.on_edge = True
        notes.append("optimum at the largest learning rate tried: widen the grid upward")
        return empty

    dist = np.abs(xs - x_am)
    win = dist <= window + 1e-9
    if win.sum() < 4:
        win = dist <= np.sort(dist)[min(3, xs.size - 1)] + 1e-9
    xw, yw, nw = xs[win] - x_am, ys[win], ns[win].astype(float)
    lo, hi = float(xw.min()), float(xw.max())
    if x_first_div is not None:
        hi = min(hi, x_first_div - x_am)
    sw = np.sqrt(nw)
    fits = {}
    for name, degree in (("quadratic", 2), ("asymmetric", 3)):
        if xw.size < degree + 3 and degree == 3:
            continue
        X = _design(xw, degree)
        P = np.linalg.pinv(X * sw[:, None]) * sw[None, :]  # weighted least squares as a fixed linear map
        coef = P @ yw
        rss = float(np.sum(nw * (yw - X @ coef) ** 2))
        aic = xw.size * np.log(max(rss, 1e-300) / xw.size) + 2 * (degree + 1)
        fits[name] = (P, coef, rss, aic, degree)
    model = min(fits, key=lambda k: fits[k][3])
    P, coef, rss, _, degree = fits[model]
    dof = xw.size - (degree + 1)
    if cells.sd_rel is not None:
        sigma_rel, sigma_dof = cells.sd_rel, cells.sd_dof
    elif dof > 0:
        sigma_rel, sigma_dof = float(np.sqrt(rss / dof) / np.mean(yw)), dof
    else:
        sigma_rel, sigma_dof = _FALLBACK_SIGMA_REL, 0
        notes.append("one seed and no residual degrees of freedom: noise assumed 0.1% of the loss")
    v, ok = _vertex(coef[None, :])
    if not ok[0] or not (lo - 1e-9 <= v[0] <= hi + 1e-9):
        notes.append("the loss is not convex around the best learning rate (noise larger than the basin?): "
                     "unidentified; add seeds or widen the grid")
        return empty
    x0 = float(v[0])

    # parametric bootstrap: the cells' means move by their noise, the window stays fixed. The noise level
    # is itself estimated: each draw takes its own sigma from the scaled-chi2 posterior, so few seeds widen
    # the interval as a t distribution would.
    scale = np.sqrt(sigma_dof / rng.chisquare(sigma_dof, n_boot)) if sigma_dof > 0 else np.ones(n_boot)
    noise = rng.standard_normal((n_boot, xw.size)) * (sigma_rel * yw / sw)[None, :] * scale[:, None]
    yb = yw[None, :] + noise
    cb = yb @ P.T
    vb, okb = _vertex(cb)
    fallback = xw[np.argmin(yb, axis=1)]
    vb = np.where(okb & (vb >= lo) & (vb <= hi), vb, fallback)
    vb = np.clip(vb, lo, hi)
    lb = _poly(cb, vb)

    best = float(_poly(coef, np.array(x0)))
    curvature = float(coef[2] + 3 * coef[3] * x0) if degree == 3 else float(coef[2])
    k_left = float((_poly(coef, np.array(x0 - 1.0)) - best) / best)
    k_right = float((_poly(coef, np.array(x0 + 1.0)) - best) / best)
    if degree == 2:
        k_left = k_right = float(coef[2] / best)
    span_lo, span_hi = float(xs.min() - x_am), float((x_first_div if x_first_div is not None else xs.max()) - x_am)
    b1 = _band(coef, x0, best * 1.001, span_lo, span_hi)
    b5 = _band(coef, x0, best * 1.005, span_lo, span_hi)
    basin_half = 0.25 * curvature  # loss change at +-0.5 octave
    if sigma_rel * best > basin_half and curvature > 0:
        notes.append(f"seed noise ({100 * sigma_rel:.2g}% of the loss) exceeds the basin's change at +-0.5 "
                     "octave: the optimum is not resolved below about +-0.5 octave")
    if x_first_div is not None and i == xs.size - 1:
        notes.append("optimum next to the stability edge (the next learning rate diverged)")
    draws = vb + x_am
    return Optimum(
        x_opt=x0 + x_am,
        ci95=(float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))),
        draws=draws,
        loss_draws=lb,
        var=float(np.var(draws)),
        identified=True,
        on_edge=False,
        x_argmin=x_am,
        best_loss=best,
        x_stable=x_stable,
        x_first_div=x_first_div,
        curvature=curvature,
        k_left=k_left,
        k_right=k_right,
        band_0p1=(b1[0] + x_am, b1[1] + x_am),
        band_0p5=(b5[0] + x_am, b5[1] + x_am),
        model=model,
        sigma_rel=sigma_rel,
        notes=notes,
    )
