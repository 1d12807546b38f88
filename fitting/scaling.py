"""The across-width law log2 y*(w) = log2 C + e log2(w / w_base), with honest intervals.

Each width's optimum has a bootstrap variance v_w; the widths also scatter around the line by more than
that (the model is never exact), which a between-width variance tau^2 absorbs (DerSimonian-Laird, the
meta-regression method of moments). The fit is statsmodels WLS with weights 1/(v_w + tau^2); its
covariance is Knapp-Hartung (scale estimated from the residuals, t with k-2 df). A cluster bootstrap over
widths (each drawn width carries one of its own bootstrap draws, so seeds are resampled within widths) is
reported beside it as a cross-check, not used for the interval: with 4-6 widths a resample of the widths loses
the design's spread and overstates the slope's spread about 2x (measured on synthetic sweeps before the
per-width grid floor: KH se 0.0069 vs empirical 0.0062, bootstrap 0.0124).

The floor (``optimum.grid_floor_sd``: no width claims an optimum finer than its grid resolves) is there for the
line's level: an error every width shares (each width's grid placing the optimum alike, an asymmetric basin
moving every vertex alike) shifts the constant and the predictions, and the residuals cannot see it. So the
level's covariance keeps the scale at >= 1. The slope does not: a shared error cancels in it, and held at 1
its interval carried the floor (5 widths, 3 seeds, half-octave grid: 0.15 octave per doubling wide; one seed on a
1-3-10 grid: 1.36, covering 100%). It takes the residuals' own scale, bounded below by what the widths' own errors
(their variances before the floor; toward the floored ones on a coarse grid where a shared misfit drifts with the
optima's places between grid points: ``fitting.parts.shape_drift``) make of the slope, since with 1-3 residual
degrees of freedom optima can sit on a line by chance: 0.092 and 0.40 wide, covering 100% and 98.5% (``make
bench-coverage``'s exponent table).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.regression.linear_model import WLS

from abcscale.fitting.optimum import tail_probabilities
from abcscale.schemas.fit import ScalingLaw
from abcscale.schemas.theory import Interval

#: floor on a width's variance (octaves^2): a noiseless synthetic optimum must not get infinite weight.
_VAR_FLOOR = 1e-8


@dataclass(frozen=True)
class LawFit:
    """The fitted law, the exponent's Knapp-Hartung interval ``ci`` and its bootstrap cross-check ``boot_ci``.

    ``loo`` maps each width to its leave-one-width-out error in octaves (empty below 3 widths).
    """

    law: ScalingLaw
    ci: Interval
    se: float
    loo: dict[int, float]
    boot_ci: Interval | None = None


def dl_tau2(widths: np.ndarray, y: np.ndarray, var: np.ndarray) -> float:
    """The DerSimonian-Laird (method of moments) tau^2 of the line through (log2 width, y) with variances var."""
    z = np.log2(np.asarray(widths, dtype=float))
    X = np.column_stack([np.ones_like(z), z])
    return design_tau2(X, np.asarray(y, dtype=float), np.maximum(np.asarray(var, dtype=float), _VAR_FLOOR))


def design_tau2(X: np.ndarray, y: np.ndarray, v: np.ndarray) -> float:
    """Between-point variance tau^2 of the weighted regression y ~ X with variances v, by the method of moments
    (DerSimonian-Laird for a meta-regression): (Q - (k - p)) / (sum w - tr((X'WX)^-1 X'W^2X)), floored at 0.
    A pseudo-inverse keeps a rank-deficient design (collinear covariates) from raising."""
    k, p = X.shape
    if k <= p:
        return 0.0
    w = 1.0 / v
    XtW = X.T * w
    A = np.linalg.pinv(XtW @ X)
    beta = A @ (XtW @ y)
    q = float(np.sum(w * (y - X @ beta) ** 2))
    denom = float(w.sum() - np.trace(A @ (X.T * w**2) @ X))
    return max(0.0, (q - (k - p)) / denom) if denom > 0 else 0.0


def fit_law(
    widths: np.ndarray,
    y: np.ndarray,
    var: np.ndarray,
    draws: np.ndarray | None,
    base_width: int,
    n_boot: int,
    rng: np.random.Generator,
    confidence_level: float = 0.95,
    noise_var: np.ndarray | None = None,
) -> LawFit:
    """Fit the law on k >= 2 widths; ``draws`` (k, B) are each width's bootstrap draws of y (or None).

    The exponent's interval is e +- t_{k-2}((1 + level) / 2) se (a normal quantile at k = 2), se from the
    residuals' own scale, but never below what each width's own error (``noise_var``, the variances before the
    grid floor; ``var`` when not given) makes of the slope: with 1-3 residual degrees of freedom three optima
    can fall on a line by chance.
    """
    widths = np.asarray(widths, dtype=float)
    k = widths.size
    if k < 2:
        raise ValueError(f"widths: the law needs at least 2 widths, got {k}")
    z = np.log2(widths / base_width)
    v = np.maximum(np.asarray(var, dtype=float), _VAR_FLOOR)
    X = np.column_stack([np.ones_like(z), z])
    # two widths leave no residual to estimate the between-width scatter from: assume its typical size (the
    # theory prior's tau scale), else the interval claims the per-width errors are all the error there is (with
    # 0.15-octave scatter a "95%" interval covered 70% and falsely rejected theory 30% of the time)
    tau2 = design_tau2(X, y, v) if k > 2 else TAU_SCALE**2
    w = 1.0 / (v + tau2)
    res = WLS(y, X, weights=w).fit()
    df = k - 2
    unit = np.asarray(res.normalized_cov_params)
    scale = float(res.scale) if df > 0 else 1.0
    # the line's level and its predictions keep the scale at >= 1: an error every width shares (each width's
    # grid puts the optimum at the same place, an asymmetric basin moves every vertex alike) moves the level,
    # which the residuals cannot see, and the per-width grid floor is what covers it
    cov = unit * max(1.0, scale)
    params = np.asarray(res.params, dtype=float)

    cov_boot = None
    boot_ci = None
    used = 0.0
    if draws is not None and k >= 3 and n_boot > 0:
        idx = rng.integers(0, k, size=(n_boot, k))
        col = rng.integers(0, draws.shape[1], size=(n_boot, k))
        yb = draws[idx, col]
        a_b, e_b = _wls_many(z[idx], yb, w[idx])
        good = np.isfinite(e_b)
        used = float(good.mean())
        if good.sum() >= 10:
            cov_boot = np.cov(np.vstack([a_b[good], e_b[good]]))
            lo, hi = np.quantile(e_b[good], tail_probabilities(confidence_level))
            boot_ci = Interval(low=float(lo), high=float(hi), confidence_level=confidence_level)
    law = ScalingLaw(
        log2_constant=float(params[0]), exponent=float(params[1]), base_width=int(base_width),
        cov=cov.tolist(), cov_boot=None if cov_boot is None else cov_boot.tolist(), tau2=float(tau2), df=df,
        widths=[int(x) for x in widths], n_boot_used=int(round(used * n_boot)),
        residual_scale=scale if df > 0 else None,
    )
    # the slope takes the residuals' own scale (Knapp-Hartung untruncated): a shared error cancels in it, and the
    # grid floor, there for the level, would make it about 3x too wide on a correctly specified sweep. It never
    # claims less than the widths' own errors make of it: the estimator's sandwich with those variances
    own = v if noise_var is None else np.minimum(np.asarray(noise_var, dtype=float), v)
    slope_row = (unit @ (X.T * w))[1]
    se = float(np.sqrt(max(unit[1, 1] * scale, float(np.sum(slope_row**2 * own)))))
    q = t_quantile(df, confidence_level)
    e = law.exponent
    ci = Interval(low=e - q * se, high=e + q * se, confidence_level=confidence_level)
    loo = _loo(z, y, w, widths) if k >= 3 else {}
    return LawFit(law, ci, se, loo, boot_ci)


#: the default prior sd of the true exponent around theory's (between-group spread of e - e_theory, octaves per
#: doubling): the floor when a table's groups show less, and the value when too few groups say anything.
PRIOR_SD = 0.15
#: scale of the half-normal prior on tau, the width-level jitter of the optimum off the line (octaves).
TAU_SCALE = 0.2
#: the tau grid the posterior is summed over: tau_max u^2 for u uniform on (0, 1] (dense near 0).
_TAU_MAX = 3.0
_TAU_POINTS = 120


@dataclass(frozen=True)
class PriorFit:
    r"""The posterior law with theory's prior, and how far the data alone put the exponent from theory.

    ``conflict`` is :math:`d / \sqrt{sd_{free}^2 + s^2}`, with :math:`d` the distance of the free exponent's
    posterior mean (same tau prior, flat prior on e) from theory's exponent, or from the nearest end of theory's
    span: under the model it is at most a standard normal's absolute value, so a large one says the prior is
    wrong for this group.
    """

    law: ScalingLaw
    conflict: float


#: how many prior centres stand for a span's uniform part (0.056 apart on a half-octave span, well under PRIOR_SD:
#: the mixture's posterior mean is the exact convolution's within 0.01, tests/fitting/test_global_span_s50.py)
_SPAN_POINTS = 9


def fit_law_prior(widths: np.ndarray, y: np.ndarray, var: np.ndarray, base_width: int, prior_mean: float,
                  prior_sd: float = PRIOR_SD, tau_scale: float = TAU_SCALE,
                  span: tuple[float, float] | None = None) -> PriorFit:
    r"""The law with theory's knowledge: the posterior of (log2 C, e) and tau^2 (empirical Bayes).

    Model: :math:`y_w = a + e z_w + u_w + \epsilon_w`, :math:`z_w = \log_2(w / w_0)`, width jitter
    :math:`u_w \sim N(0, \tau^2)`, per-width error :math:`\epsilon_w \sim N(0, v_w)`. Priors: a flat,
    :math:`e \sim N(e_{th}, s^2)`, :math:`\tau \sim` half-normal(``tau_scale``). Given tau the posterior of
    (a, e) is normal: precision :math:`P = X^T W X + \mathrm{diag}(0, s^{-2})`, :math:`W = (V + \tau^2 I)^{-1}`,
    mean :math:`P^{-1}(X^T W y + (0, e_{th} / s^2))`. Tau is summed out on a grid with weights prior(tau) x
    marginal likelihood :math:`|W|^{1/2} |P|^{-1/2} \exp(-\tfrac12 [r^T W r + (\hat e - e_{th})^2 / s^2])`.
    The law keeps the mixture's mean, covariance (within- plus between-tau) and :math:`E[\tau^2]`, so
    :func:`predict_law`'s variance :math:`g^T \Sigma g + E[\tau^2]` is the exact predictive variance of a new
    width's optimum; its quantiles are normal (``df`` 0).

    With ``span`` (low, high), theory names a range rather than a point (a global LR's exponent lies between
    its values under full and under no alignment, and the alignment a model reaches is measured, not known):
    :math:`e_{th}` is uniform on the span, so the prior on e is that uniform convolved with
    :math:`N(0, s^2)`, summed out like tau (``_SPAN_POINTS`` centres, each component closed-form).
    """
    widths = np.asarray(widths, dtype=float)
    z = np.log2(widths / base_width)
    v = np.maximum(np.asarray(var, dtype=float), _VAR_FLOOR)
    y = np.asarray(y, dtype=float)
    lo, hi = (prior_mean, prior_mean) if span is None else (min(span), max(span))
    # the uniform by the midpoint rule: each centre stands for an equal slice of the span
    centres = lo + (hi - lo) * (np.arange(_SPAN_POINTS) + 0.5) / _SPAN_POINTS if hi > lo else np.array([lo])
    mean, cov, tau2 = _posterior(z, y, v, centres, 1.0 / prior_sd**2, tau_scale)
    free_mean, free_cov, _ = _posterior(z, y, v, centres[:1], 0.0, tau_scale)
    gap = max(lo - free_mean[1], 0.0, free_mean[1] - hi)
    conflict = gap / math.sqrt(free_cov[1, 1] + prior_sd**2)
    law = ScalingLaw(
        log2_constant=float(mean[0]), exponent=float(mean[1]), base_width=int(base_width), cov=cov.tolist(),
        tau2=tau2, df=0, widths=[int(x) for x in widths], method="theory_prior",
        prior_mean=float(prior_mean), prior_sd=float(prior_sd), tau_scale=float(tau_scale),
        prior_span=None if hi == lo else [float(lo), float(hi)],
    )
    return PriorFit(law, float(conflict))


def _posterior(z: np.ndarray, y: np.ndarray, v: np.ndarray, centres: np.ndarray, prior_prec: float,
               tau_scale: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Mean and covariance of (a, e) and E[tau^2]: tau summed out on the grid, and the prior's centre over
    ``centres`` (equal prior weights; one centre: a normal prior; prior_prec 0: flat on e)."""
    X = np.column_stack([np.ones_like(z), z])
    u = np.arange(1, _TAU_POINTS + 1) / _TAU_POINTS
    tau = _TAU_MAX * u**2
    log_prior = -0.5 * (tau / tau_scale) ** 2 + np.log(2 * _TAU_MAX * u)  # half-normal x d tau / d u
    prec0 = np.diag([0.0, prior_prec])
    W = 1.0 / (v[None, :] + tau[:, None] ** 2)  # (grid, k)
    P = np.einsum("ki,tk,kj->tij", X, W, X) + prec0
    C = np.linalg.inv(P)
    xwy = np.einsum("ki,tk,k->ti", X, W, y)
    # P does not depend on the centre, so each component's normalising constant is the same: equal prior
    # weights stay equal and the components' marginal likelihoods compare as they are
    base = log_prior + 0.5 * np.log(W).sum(axis=1) - 0.5 * np.linalg.slogdet(P)[1]
    mus, lws = [], []
    for c in centres:
        mu = np.einsum("tij,tj->ti", C, xwy + np.array([0.0, prior_prec * c]))
        r = y[None, :] - mu @ X.T
        quad = np.sum(W * r * r, axis=1) + prior_prec * (mu[:, 1] - c) ** 2
        mus.append(mu)
        lws.append(base - 0.5 * quad)
    mu, lw = np.concatenate(mus), np.concatenate(lws)  # (centres x grid, 2), (centres x grid,)
    p = np.exp(lw - lw.max())
    p /= p.sum()
    mean = p @ mu
    d = mu - mean
    Cs = np.tile(C, (len(centres), 1, 1))
    cov = np.einsum("t,tij->ij", p, Cs) + np.einsum("t,ti,tj->ij", p, d, d)
    return mean, cov, float(p @ np.tile(tau, len(centres)) ** 2)


def _wls_many(z: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form WLS intercept and slope for many rows at once (all arrays (n, k))."""
    s0 = w.sum(1)
    s1 = (w * z).sum(1)
    s2 = (w * z * z).sum(1)
    sy = (w * y).sum(1)
    szy = (w * z * y).sum(1)
    det = s0 * s2 - s1 * s1
    ok = det > 1e-9 * np.maximum(s0 * s2, 1e-300)
    slope = np.where(ok, (s0 * szy - s1 * sy) / np.where(ok, det, 1.0), np.nan)
    return (sy - np.nan_to_num(slope) * s1) / s0, slope


def _loo(z: np.ndarray, y: np.ndarray, w: np.ndarray, widths: np.ndarray) -> dict[int, float]:
    """Leave each width out, refit on the rest, and report prediction minus fitted optimum (octaves)."""
    out = {}
    for i in range(z.size):
        keep = np.arange(z.size) != i
        a, e = _wls_many(z[keep][None, :], y[keep][None, :], w[keep][None, :])
        out[int(widths[i])] = float(a[0] + e[0] * z[i] - y[i])
    return out


@functools.lru_cache(maxsize=4096)
def t_quantile(df: int, level: float) -> float:
    """The two-sided quantile at ``level``: t with ``df`` degrees of freedom, normal when df = 0.

    Cached: a fit asks for the same few (df, level) pairs thousands of times (every band, interval and test), and
    scipy's distribution call costs about 50 us of checks each time."""
    p = 0.5 + level / 2
    return float(stats.t.ppf(p, df)) if df > 0 else float(stats.norm.ppf(p))


def _var(law: ScalingLaw, g: np.ndarray, include_tau: bool = True) -> float:
    v = float(g @ np.asarray(law.cov) @ g)
    return v + (law.tau2 if include_tau else 0.0)


@dataclass(frozen=True)
class LawPrediction:
    """log2 y at a width: mean and sd (in log2 units), with t quantiles on ``df`` degrees of freedom."""

    mean: float
    sd: float  # the whole error: the line's (t with df) and the part every width shares (shared_sd)
    df: int
    shared_sd: float = 0.0  # an error estimated from each width's bootstrap, not from the line's residuals

    def interval(self, confidence_level: float) -> tuple[float, float]:
        """mean -+ t_df((1 + level) / 2) sd, in log2 units; the shared part takes a normal quantile (it is not
        estimated from the line's df), the two combined in quadrature."""
        q = t_quantile(self.df, confidence_level)
        line = max(self.sd**2 - self.shared_sd**2, 0.0)
        half = float(np.sqrt(q**2 * line + t_quantile(0, confidence_level) ** 2 * self.shared_sd**2))
        return (self.mean - half, self.mean + half)


def predict_law(law: ScalingLaw, width: float) -> LawPrediction:
    """Prediction for the optimum at a new width (includes tau^2: a new width scatters like the old ones; and
    ``shared_var``, the error every width shares, which the line carries to the new width)."""
    z = float(np.log2(width / law.base_width))
    g = np.array([1.0, z])
    mean = law.log2_constant + law.exponent * z
    return LawPrediction(mean, float(np.sqrt(_var(law, g) + law.shared_var)), law.df, float(np.sqrt(law.shared_var)))
