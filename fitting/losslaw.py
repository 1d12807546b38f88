"""Loss against width, L*(w) = E + A w^-alpha, by a Huber fit in relative (log) error.

For a fixed alpha the model is linear in (E, A), so the fit solves (E, A) by iteratively reweighted least
squares with Huber weights (variable projection) and searches alpha on a grid, then by golden section
between the best grid point's neighbours. Everything is vectorised over alpha and the bootstrap draws,
so point estimate and bootstrap share one path.
Relative residuals (L_hat - L) / L stand in for log residuals (equal to first order at these scales).
"""

from __future__ import annotations

import numpy as np

from abcscale.fitting.optimum import tail_probabilities
from abcscale.schemas.fit import Estimate, LossLaw
from abcscale.schemas.theory import Interval

_ALPHAS = np.linspace(0.02, 2.0, 100)
_DELTA = 1e-3  # Huber threshold on relative error, as in Hoffmann et al. / Epoch
_IRLS_STEPS = 4
_GOLDEN_STEPS = 30  # shrinks the two-cell bracket (0.04) by 0.618^30: to ~3e-8 in alpha


def fit_loss_law(
    widths: np.ndarray, best: np.ndarray, draws: np.ndarray, n_boot: int, rng: np.random.Generator,
    confidence_level: float = 0.95,
) -> LossLaw | None:
    """Needs >= 4 widths (else None); ``draws`` (k, B) are each width's bootstrap draws of the best loss.

    Each parameter's interval is the bootstrap percentile interval at ``confidence_level``.
    """
    k = widths.size
    if k < 4 or not np.all(np.isfinite(best)) or np.any(best <= 0):
        return None
    widths = widths.astype(float)
    E, A, al = (x[0] for x in _fit_many(widths[None, :], best[None, :]))
    nb = min(n_boot, 400)  # a cheap law: 400 draws pin its 2.5% / 97.5% quantiles well enough
    idx = np.sort(rng.integers(0, k, size=(nb, k)), axis=1)
    col = rng.integers(0, draws.shape[1], size=(nb, k))
    # a resample with fewer than 3 distinct widths cannot identify three parameters
    distinct = (np.diff(idx, axis=1) > 0).sum(1) + 1 >= 3
    Lb = draws[idx[distinct], col[distinct]]
    Eb, Ab, alb = _fit_many(widths[idx[distinct]], Lb)

    lo, hi = tail_probabilities(confidence_level)

    def est(x: float, xb: np.ndarray) -> Estimate:
        xb = xb[np.isfinite(xb)]
        if xb.size < 10:
            point = Interval(low=float(x), high=float(x), confidence_level=confidence_level)
            return Estimate(estimate=float(x), ci=point, method="huber varpro (no bootstrap)")
        ci = Interval(low=float(np.quantile(xb, lo)), high=float(np.quantile(xb, hi)),
                      confidence_level=confidence_level)
        return Estimate(estimate=float(x), ci=ci, se=float(np.std(xb)),
                        method="huber varpro, cluster bootstrap over widths")

    return LossLaw(E=est(E, Eb), A=est(A, Ab), alpha=est(al, alb))


def _fit_many(W: np.ndarray, L: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """E, A, alpha for each row of widths W and best losses L (both (n, k)), NaN where no fit is finite.

    Alpha is the best point of the grid, refined by a golden-section search between its neighbours: on the
    grid alone, bootstrap alphas would snap to its 0.02 steps and a narrow percentile interval collapse.
    """
    _, _, huber = _profile(W, L, _ALPHAS[None, :])
    j = np.argmin(huber, axis=1)
    rows = np.arange(L.shape[0])
    a, b = _ALPHAS[np.maximum(j - 1, 0)], _ALPHAS[np.minimum(j + 1, _ALPHAS.size - 1)]
    refined, h_refined = _golden(lambda al: _profile(W, L, al[:, None])[2][:, 0], a, b)
    alpha = np.where(h_refined <= huber[rows, j], refined, _ALPHAS[j])  # never worse than the grid
    E, A, h = (x[:, 0] for x in _profile(W, L, alpha[:, None]))
    ok = np.isfinite(h)
    return np.where(ok, E, np.nan), np.where(ok, A, np.nan), np.where(ok, alpha, np.nan)


def _profile(W: np.ndarray, L: np.ndarray, alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """E, A and the Huber loss (inf where not finite) at each alpha of ``alphas`` ((1, m) or (n, m)) for
    each row of W and L, each (n, m): for a fixed alpha the model is linear in (E, A), solved by IRLS."""
    u = W[:, None, :] ** -alphas[..., None]  # (n, m, k)
    Lr = L[:, None, :]
    w = np.broadcast_to(1.0 / Lr**2, u.shape).copy()
    for _ in range(_IRLS_STEPS):
        s0, s1, s2 = w.sum(-1), (w * u).sum(-1), (w * u * u).sum(-1)
        sy, suy = (w * Lr).sum(-1), (w * u * Lr).sum(-1)
        det = s0 * s2 - s1 * s1
        with np.errstate(invalid="ignore", divide="ignore"):
            A = (s0 * suy - s1 * sy) / det
            E = (sy - A * s1) / s0
            neg = ~(E >= 0)
            A = np.where(neg, suy / s2, A)
            E = np.where(neg, 0.0, E)
            r = np.abs((E[..., None] + A[..., None] * u - Lr) / Lr)
            w = np.minimum(1.0, _DELTA / np.maximum(r, 1e-300)) / Lr**2
    huber = np.where(r <= _DELTA, 0.5 * r**2, _DELTA * (r - 0.5 * _DELTA)).sum(-1)
    return E, A, np.where(np.isfinite(huber), huber, np.inf)


def _golden(f, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A minimum of ``f`` (vectorised over rows) in each bracket [a, b] and its value, by golden section."""
    g = (np.sqrt(5.0) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(_GOLDEN_STEPS):
        left = fc <= fd  # the minimum lies in [a, d]: d becomes c; else in [c, b]: c becomes d
        a, b = np.where(left, a, c), np.where(left, d, b)
        new = np.where(left, b - g * (b - a), a + g * (b - a))
        fn = f(new)
        c, d, fc, fd = (np.where(left, new, d), np.where(left, c, new),
                        np.where(left, fn, fd), np.where(left, fc, fn))
    return np.where(fc <= fd, c, d), np.minimum(fc, fd)
