"""The optimum of one swept coordinate (x = log2 LR, or log2 of a constant) at one width.

Cells are the distinct x values; each holds the mean loss over its stable seeds. A cell where any seed
diverged is censored: it bounds the basin from above and never enters the local fit. The optimum is the
vertex of a weighted local quadratic (or a quadratic plus cubic term, picked by AIC) within about one
octave of the grid argmin; its interval comes from a parametric bootstrap (noise from the seed spread,
or from the fit's residuals when there is one seed), vectorised over the fixed window.

:func:`fit_optimum` reads top to bottom: scan the grid (argmin, stability edge, reasons to stop), take the
window, fit it locally, bootstrap the vertex, describe the basin.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special, stats

#: fallback relative noise when neither seeds nor residuals can estimate it.
_FALLBACK_SIGMA_REL = 1e-3
#: how much wider the window is made when the quadratic shows lack of fit and the cubic had too few points.
WIDE_WINDOW = 1.5
#: level of the lack-of-fit test that replaces the seed noise by the local fit's residuals (:func:`_noise`). With
#: 2 residual degrees of freedom (5 points, a quadratic) the test is weak; 0.1 measured best: a 2.5x asymmetric
#: basin's per-width 95% intervals cover 95% of the time instead of 5%, and the band study's median 95% band at 4x
#: is 1.49 octaves against 1.32 before, within its 1.5 target (0.2: 1.53).
LACK_OF_FIT_ALPHA = 0.1
#: level of the asymmetry test (:func:`_skew_p`) beside the lack-of-fit one: at 0.05 a 2x asymmetric basin on a
#: half-octave grid with two seeds is found at 97% of widths, and the two tests together flag about 15% of exactly
#: quadratic widths (0.1: 21%; the F test alone 10.5%), 3% of five-width groups at three or more.
SKEW_ALPHA = 0.05
#: how often the two tests flag a width whose basin is quadratic, at most (a union bound): the rate
#: :func:`shared_variance` holds the flags of a group's widths against.
FLAG_RATE = LACK_OF_FIT_ALPHA + SKEW_ALPHA
#: relative tolerance on the window's edge: a grid rounded to a few significant digits puts the neighbour one
#: nominal octave away at 1.0003-1.0037 octaves, and it belongs in the window.
WINDOW_RTOL = 0.01


@dataclass(frozen=True, eq=False)
class Cells:
    """Per-x aggregates at one width (sorted by x)."""

    x: np.ndarray
    mean: np.ndarray  # mean loss over stable seeds (NaN when none)
    n_ok: np.ndarray
    n_div: np.ndarray
    sd_rel: float | None  # pooled within-cell relative SD across cells with >= 2 stable seeds
    n_seeds: int
    sd_dof: int = 0  # degrees of freedom behind sd_rel
    #: the grid scans made of these cells (:func:`_scan`): a width's residual noise, bracket shift and optimum scan
    #: it alike, and share its windows and local fits through it
    _memo: dict[float, _Scan | Optimum] = dataclasses.field(default_factory=dict, init=False, repr=False)

    @classmethod
    def of_runs(cls, x: np.ndarray, loss: np.ndarray, seeds: np.ndarray) -> Cells:
        """Aggregate runs (x, loss with NaN = diverged, seed) into cells."""
        ux, inv = np.unique(x, return_inverse=True)
        ok = np.isfinite(loss)
        n_ok = np.bincount(inv, weights=ok, minlength=ux.size)
        n_div = np.bincount(inv, weights=~ok, minlength=ux.size)
        lz = np.where(ok, loss, 0.0)
        s1 = np.bincount(inv, weights=lz, minlength=ux.size)
        s2 = np.bincount(inv, weights=lz * lz, minlength=ux.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = s1 / n_ok
            var = np.maximum(s2 - n_ok * mean**2, 0.0) / (n_ok - 1)
        rep = (n_ok >= 2) & (n_div == 0)
        sd_rel, sd_dof = None, 0
        if rep.any():
            dof = n_ok[rep] - 1
            sd_rel, sd_dof = float(np.sqrt(np.sum(dof * var[rep] / mean[rep] ** 2) / dof.sum())), int(dof.sum())
        return cls(ux, mean, n_ok.astype(int), n_div.astype(int), sd_rel, int(np.unique(seeds).size), sd_dof)


@dataclass(frozen=True, eq=False)
class Optimum:
    """What :func:`fit_optimum` found; ``draws`` are the bootstrap draws of x* (None when unidentified).

    ``ci`` is the bootstrap percentile interval of x* at ``confidence_level``.
    """

    x_opt: float | None
    ci: tuple[float, float] | None
    confidence_level: float
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
    notes: tuple[str, ...] = ()
    lack_of_fit: bool = False  # the local quadratic missed the cells beyond their seed noise (_noise)
    #: the part of ``var`` that the seed noise does not explain (lack of fit): a misfit of the basin's shape moves
    #: every width's vertex alike, so the law across widths adds it to the constant and predictions, not the slope
    shared_var: float = 0.0
    #: the variance the draws show before the grid floor widened them (:func:`_floored`): this width's own error as
    #: its data measure it, the least a slope through it can claim (``var`` is the larger, floored one); for a
    #: bracket drawn with the seeds' spread, plus how its shape error moves between widths (its group's, added by
    #: ``fitting.parts.with_bracket_drift``)
    noise_var: float | None = None
    #: the same bootstrap's variance at the noise level as measured (its normal draws, sigma fixed: not drawn from
    #: its posterior, which spreads ``noise_var``'s draws as a t, 2x at 4 dof): the optimum's own error, which a
    #: covariate law measures its scatter against. ``fitting.parts.with_bracket_drift`` replaces a
    #: ``seed_bracket``'s ``noise_var`` with the seeds' bootstrap plus its shape error's drift between widths and
    #: leaves this as it was (``fitting.group._width_optimum`` keeps none for it). None: not identified
    error_var: float | None = None
    #: with lack of fit, the part of it the seed noise makes (the bootstrap with the seeds' spread alone): the
    #: least a slope may claim where the widths' misfit is one they share (:func:`shared_variance` > 0), since a
    #: shared error cancels in a slope; None without lack of fit (``noise_var`` is then the seeds' own)
    seed_noise_var: float | None = None
    #: the vertex is the argmin's bracket and its interval was drawn with the seeds' spread (the wider fit's lack of
    #: fit set aside: :func:`flat_side_z`); its group's shape error is added by ``fitting.parts.with_bracket_drift``
    seed_bracket: bool = False

    @classmethod
    def unidentified(cls, notes: tuple[str, ...], confidence_level: float, *, on_edge: bool = False,
                     x_argmin: float | None = None, best_loss: float | None = None, x_stable: float | None = None,
                     x_first_div: float | None = None) -> Optimum:
        """No optimum at this width: only what the grid scan saw, and why (``notes``)."""
        return cls(x_opt=None, ci=None, confidence_level=confidence_level, draws=None, loss_draws=None, var=None,
                   identified=False, on_edge=on_edge, x_argmin=x_argmin, best_loss=best_loss, x_stable=x_stable,
                   x_first_div=x_first_div, curvature=None, k_left=None, k_right=None, band_0p1=None,
                   band_0p5=None, model="argmin", sigma_rel=None, notes=notes)


def t_sf(x: float, df: float) -> float:
    """``stats.t.sf(x, df)`` for df > 0, the same number: scipy's t survival function is ``special.stdtr(df, -x)``
    (0 at x = inf, NaN at NaN, as the wrapper's own checks give), whose checks cost 20x the function on a scalar
    (tests/fitting/test_fast_paths_s72.py checks it)."""
    return special.stdtr(df, -x)


def tail_probabilities(confidence_level: float) -> tuple[float, float]:
    """The quantiles a two-sided percentile interval at ``confidence_level`` takes: (1 -+ level) / 2.

    Rounded so that 0.95 gives exactly (0.025, 0.975): the same draws give the same interval as ever.
    """
    lo = round((1.0 - confidence_level) / 2, 12)
    return lo, 1.0 - lo


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
    return np.asarray(sum(coef[..., j] * x**j for j in range(coef.shape[-1])))


def _band(coef: np.ndarray, x0: float, level: float, lo: float, hi: float) -> tuple[float, float]:
    """The x range around the vertex where the fitted loss stays below ``level`` (clipped to [lo, hi])."""
    p = coef.copy()
    p[0] -= level
    roots = np.roots(p[::-1])
    real = roots[np.abs(roots.imag) < 1e-9].real
    left = real[real < x0]
    right = real[real > x0]
    return (float(max(left.max(), lo)) if left.size else lo, float(min(right.min(), hi)) if right.size else hi)


@dataclass(frozen=True)
class _Scan:
    """The grid seen before any fit: stable cells, the argmin and the stability edge."""

    xs: np.ndarray
    ys: np.ndarray
    ns: np.ndarray
    i: int  # index of the argmin among stable cells
    x_first_div: float | None
    x_stable: float
    #: the windows taken of this scan (:func:`_window`), by (window, bracket); a scan at another argmin
    #: (``dataclasses.replace``) starts its own
    _memo: dict[tuple[float, bool], _Window] = dataclasses.field(default_factory=dict, init=False, repr=False,
                                                                  compare=False)


def _scan(cells: Cells, level: float) -> _Scan | Optimum:
    """The stable cells and the argmin, or an unidentified Optimum saying which way to widen the grid (made once per
    cells and level: the same numbers)."""
    if level not in cells._memo:
        cells._memo[level] = _scan_of(cells, level)
    return cells._memo[level]


def _scan_of(cells: Cells, level: float) -> _Scan | Optimum:
    stable = (cells.n_div == 0) & (cells.n_ok > 0) & np.isfinite(cells.mean)
    div_x = cells.x[cells.n_div > 0]
    if not stable.any():
        n_div, n = int(cells.n_div.sum()), int((cells.n_div + cells.n_ok).sum())
        all_div = ("every run at this width diverged: lower the learning-rate grid" if n_div == n else
                   f"every learning rate at this width has a diverged run ({n_div} of {n} runs diverged), and a "
                   "learning rate counts as stable only when all its seeds are: lower the grid, or check the runs")
        return Optimum.unidentified((all_div,), level, x_first_div=float(div_x.min()) if div_x.size else None)
    xs, ys, ns = cells.x[stable], cells.mean[stable], cells.n_ok[stable]
    i = int(np.argmin(ys))
    x_am = float(xs[i])
    above = div_x[div_x > x_am]
    x_first_div = float(above.min()) if above.size else None
    x_stable = float(xs[xs < x_first_div].max()) if x_first_div is not None else float(xs.max())
    why = None
    if xs.size < 3:
        # which way, where it shows: an argmin at the grid's smallest LR with its larger ones diverged lies below
        # the grid (a user review: "widen the grid" alone, where a 3-cell grid's edge says "downward")
        way = ("" if cells.x.min() == cells.x.max() else  # one LR tried: no side to widen toward
               " downward (the best is the smallest learning rate tried)" if x_am == float(cells.x.min()) else
               " upward (the best is the largest learning rate tried)" if x_am == float(cells.x.max()) else "")
        why = f"only {xs.size} stable learning rate(s): widen the grid{way} (>= 5 around the optimum)"
    elif i == 0:
        why = "optimum at the smallest learning rate tried: widen the grid downward"
    elif i == xs.size - 1 and x_first_div is None:
        why = "optimum at the largest learning rate tried: widen the grid upward"
    if why is not None:
        return Optimum.unidentified((why,), level, on_edge=xs.size >= 3, x_argmin=x_am, best_loss=float(ys[i]),
                                    x_stable=x_stable, x_first_div=x_first_div)
    return _Scan(xs, ys, ns, i, x_first_div, x_stable)


@dataclass(frozen=True)
class _Window:
    """The cells within about ``window`` octaves of the argmin, x relative to it; [lo, hi] bounds the vertex."""

    x: np.ndarray
    y: np.ndarray
    n: np.ndarray
    lo: float
    hi: float
    _fit: list[_LocalFit] = dataclasses.field(default_factory=list, init=False, repr=False, compare=False)


def _window(s: _Scan, window: float, bracket: bool = False) -> _Window:
    """:func:`_window_of`, made once per scan, window and ``bracket`` (the same numbers)."""
    if (window, bracket) not in s._memo:
        s._memo[window, bracket] = _window_of(s, window, bracket)
    return s._memo[window, bracket]


def _window_of(s: _Scan, window: float, bracket: bool = False) -> _Window:
    """The cells within ``window`` octaves of the argmin: at least 4 (ties kept) for a fit that checks the basin's
    shape, or with ``bracket`` at least 3, for the vertex: on each side the nearest cell at least half a window out
    joins them (a refined point 0.26 octave beside the argmin is no bracket: a vertex through it sat 0.2 octave off
    on a quadratic basin, a code review found)."""
    x_am = float(s.xs[s.i])
    dist = np.abs(s.xs - x_am)
    tol = 1.0 + WINDOW_RTOL
    win = dist <= window * tol
    if bracket:
        for side in (s.xs < x_am, s.xs > x_am):
            out = side & (dist >= window / 2)
            if out.any() and not (win & out).any():
                win |= out & (dist == dist[out].min())
    least = 3 if bracket else 4
    if win.sum() < least:
        win = dist <= np.sort(dist)[min(least - 1, s.xs.size - 1)] * tol
    xw, yw, nw = s.xs[win] - x_am, s.ys[win], s.ns[win].astype(float)
    lo, hi = float(xw.min()), float(xw.max())
    if s.x_first_div is not None:
        hi = min(hi, s.x_first_div - x_am)
    return _Window(xw, yw, nw, lo, hi)


def _vertex_window(s: _Scan, window: float, prefer_bracket: bool) -> tuple[_Window, bool]:
    """The window a vertex is fitted on, and whether it is the bracket: the bracket where preferred, where it holds
    other cells than the shape-checking window and cells on both sides of the argmin, the shape-checking window
    otherwise. At the stability edge (the argmin the last stable cell) both windows are one-sided and the wider
    one stays, as before. One rule for the estimate and for every bootstrap draw, wherever its argmin lands (a grid
    with both coarse and fine stretches)."""
    wide = _window(s, window)
    if prefer_bracket:
        near = _window(s, window, bracket=True)
        if near.x.min() < 0.0 < near.x.max() and not np.array_equal(near.x, wide.x):
            return near, True
    return wide, False


@dataclass(frozen=True)
class _LocalFit:
    """Weighted least squares of the window as a fixed linear map ``P`` (so the bootstrap is one matmul)."""

    model: str  # quadratic | asymmetric | bracket (a quadratic through the argmin's bracket)
    P: np.ndarray
    coef: np.ndarray
    rss: float
    degree: int


def _local_fit(w: _Window) -> _LocalFit:
    """A quadratic, and with enough points a cubic too; AIC picks one (made once per window: the same numbers)."""
    if not w._fit:
        w._fit.append(_local_fit_of(w))
    return w._fit[0]


def _local_fit_of(w: _Window) -> _LocalFit:
    sw = np.sqrt(w.n)
    fits: dict[str, tuple[_LocalFit, float]] = {}
    for name, degree in (("quadratic", 2), ("asymmetric", 3)):
        if w.x.size < degree + 3 and degree == 3:
            continue
        X = _design(w.x, degree)
        P = np.linalg.pinv(X * sw[:, None]) * sw[None, :]
        coef = P @ w.y
        rss = float(np.sum(w.n * (w.y - X @ coef) ** 2))
        aic = w.x.size * np.log(max(rss, 1e-300) / w.x.size) + 2 * (degree + 1)
        fits[name] = (_LocalFit(name, P, coef, rss, degree), aic)
    return min(fits.values(), key=lambda f: f[1])[0]


def _skew_p(scan: _Scan, window: float, cells: Cells, fit: _LocalFit) -> float | None:
    """The p-value of a cubic term over the wider window (:data:`WIDE_WINDOW` x ``window``) against the seed noise:
    a test of the basin's asymmetry (None without a seed spread or with fewer than 6 cells there).

    An asymmetric basin biases a quadratic's vertex (0.15 octave low at 2x on a half-octave grid) while missing the
    five cells of a +-1 octave window by little more than the noise of two seeds' means, so the omnibus lack-of-fit
    test (2 residual dof) saw it at 59% of widths and the seed-noise intervals covered 75% (all misses low). The
    odd term is what moves the vertex, and the wider window shows it more plainly. The polynomial is centred on
    the narrow ``fit``'s vertex and carries a quartic term: a symmetric basin flatter or steeper than a quadratic
    (q d^4) has a cubic term -4 q d about a point d off its optimum (the grid argmin), which a cubic-only test
    about the argmin called lopsided at 65% of widths where the vertex was unbiased (a code review)."""
    wide = _window(scan, window * WIDE_WINDOW)
    if not cells.sd_rel or cells.sd_dof <= 0 or wide.x.size < 6:
        return None
    v, ok = _vertex(fit.coef[None, :])
    x = wide.x - (float(v[0]) if ok[0] and wide.lo <= v[0] <= wide.hi else 0.0)
    Xw = _design(x, 4) * np.sqrt(wide.n)[:, None]
    coef, *_ = np.linalg.lstsq(Xw, wide.y * np.sqrt(wide.n), rcond=None)
    var = np.linalg.pinv(Xw.T @ Xw)[3, 3] * (cells.sd_rel * float(np.mean(wide.y))) ** 2
    return float(2 * t_sf(abs(coef[3]) / np.sqrt(var), cells.sd_dof)) if var > 0 else None


@dataclass(frozen=True)
class ResidualNoise:
    """One seed's evidence of the noise at a width: its local fit's residual variance relative to the loss, and the
    residual degrees of freedom."""

    var_rel: float
    dof: int


def residual_noise(cells: Cells, window: float = 1.0) -> ResidualNoise | None:
    """A one-seed width's :class:`ResidualNoise` (None with replicated seeds, no basin, or no residual left)."""
    if cells.sd_rel:  # replicated seeds with a spread: their own noise (identical copies are one seed)
        return None
    scan = _scan(cells, 0.95)
    if isinstance(scan, Optimum):
        return None
    win = _window(scan, window)
    fit = _local_fit(win)
    dof = win.x.size - (fit.degree + 1)
    return ResidualNoise(fit.rss / dof / float(np.mean(win.y)) ** 2, dof) if dof > 0 else None


def pooled_noise(parts: Iterable[ResidualNoise | None]) -> ResidualNoise | None:
    """The noise the widths of one group share, from all their residuals: one seed on a coarse grid (a 1-3-10 grid
    puts 4 points in a width's window) leaves a width one residual degree of freedom, and a noise level estimated
    from one is a Cauchy-like spread (95% intervals 6.7 octaves wide where the optima sat 2% from the truth);
    five widths give five."""
    # Every width's residuals, a misfit one's too: leaving out those above the rest's by an F test at one residual
    # dof each (a 1-3-10 grid) dropped the chance-high ones and left the pool biased low (30 of 30 95% bands
    # covering fell to 20); a spiked width widens its group's intervals instead, the safe side
    got = [p for p in parts if p is not None]
    dof = sum(p.dof for p in got)
    return ResidualNoise(sum(p.var_rel * p.dof for p in got) / dof, dof) if dof else None


def bracket_shift(cells: Cells, window: float = 1.0) -> float | None:
    """How far the vertex through the argmin's bracket lies above the vertex of the shape-checking window (octaves),
    at a width where :func:`_vertex_window` would take the bracket (a grid coarser than half an octave about the
    argmin); None elsewhere, or where either fit has no minimum inside its own window (an unidentified width says
    nothing of the basin's shape).

    On a quadratic basin the two agree up to noise, either way; on a lopsided one the wider fit's vertex slides to
    the flat side at every width alike (:func:`basin_shape`)."""
    scan = _scan(cells, 0.95)
    if isinstance(scan, Optimum):
        return None
    near, is_bracket = _vertex_window(scan, window, True)
    if not is_bracket:
        return None
    vertices = []
    for w in (near, _window(scan, window)):
        (v,), (ok,) = _vertex(_local_fit(w).coef[None, :])
        if not (ok and w.lo - 1e-9 <= v <= w.hi + 1e-9):
            return None
        vertices.append(float(v))
    return vertices[0] - vertices[1]


#: how far a group's mean :func:`bracket_shift` may be from 0 (95% interval, octaves) for its basins to count as
#: quadratic, so that one seed takes the wider window's vertex: a quarter octave of bias at most, x1.19 in LR
SHIFT_TOLERANCE = 0.25


@functools.lru_cache(maxsize=256)
def _t_975(df: int) -> float:
    """t's 97.5% quantile with ``df`` degrees of freedom (cached, as :func:`_lack_of_fit_f`)."""
    return float(stats.t.ppf(0.975, df))


#: a group's basin shape (:func:`basin_shape`)
BasinShape = Literal["lopsided", "quadratic", "unclear"]


def basin_shape(shifts: Iterable[float | None]) -> BasinShape | None:
    """A group's basin shape from its widths' :func:`bracket_shift`: ``"quadratic"`` where the 95% t interval of
    their mean lies within +-:data:`SHIFT_TOLERANCE` (tested first: a shift that small is no bias worth the
    bracket's noise, significant or not), else ``"lopsided"`` where the mean is off 0 beyond chance (a t test at
    :data:`SKEW_ALPHA`), ``"unclear"`` where neither is shown, None where fewer than 3 widths have a shift.

    The test runs on the widths' own scatter, so a misfit that inflates each width's residuals does not hide it, as
    it hid a one-seed test against pooled residuals (z 0.4-0.7 at every lopsided width). Only "quadratic" lets one
    seed take the wider fit: a test that fails to find a lopsided basin is no evidence against one (with 3 widths it
    missed a fifth of them, each then 0.8-1.1 octave off, a code review found)."""
    got = np.array([v for v in shifts if v is not None and np.isfinite(v)])
    if got.size < 3:
        return None
    mean, se = float(np.mean(got)), float(np.std(got, ddof=1)) / np.sqrt(got.size)
    q = _t_975(got.size - 1)
    if abs(mean) + q * se <= SHIFT_TOLERANCE:
        return "quadratic"
    if se == 0.0 or 2 * t_sf(abs(mean) / se, got.size - 1) < SKEW_ALPHA:
        return "lopsided"
    return "unclear"


def _noise(cells: Cells, w: _Window, fit: _LocalFit, pooled: ResidualNoise | None = None, skew: float | None = None
           ) -> tuple[float, int, str | None, bool]:
    """Relative seed noise, its degrees of freedom, a note when it had to be assumed or replaced, and whether it is
    the seeds' spread.

    With replicated seeds the noise is their spread, unless the local fit misses the cell means by more than
    that spread allows (a lack-of-fit F test at :data:`LACK_OF_FIT_ALPHA`): then the basin is not the model's
    shape (an asymmetric basin under a quadratic puts the vertex about 0.2 octave low at 2.5x asymmetry), the
    seed spread says nothing of that error, and the fit's residuals are the noise, as with one seed. So too where
    the quadratic fits but the basin is lopsided (``skew``: :func:`_skew_p` below :data:`SKEW_ALPHA`). Seeds whose
    losses are identical (copies under new seed ids) have no spread at all and take the residuals too."""
    dof = w.x.size - (fit.degree + 1)
    if cells.sd_rel == 0.0:  # no spread at all: copies under new seed ids, or a seed that changes nothing
        sigma, sdof, _, _ = _one_seed(w, fit, dof, pooled)
        said = ("the seeds' losses are identical: noise from the fit's residuals, as with one seed" if sdof else
                "the seeds' losses are identical and no residual is left: noise assumed")
        return sigma, sdof, said, False
    if cells.sd_rel is not None:
        if dof > 0 and cells.sd_dof > 0:
            resid = float(np.sqrt(fit.rss / dof) / np.mean(w.y))
            f = (resid / cells.sd_rel) ** 2
            if f > _lack_of_fit_f(dof, cells.sd_dof):
                return resid, dof, (f"the local {fit.model} fit misses the cells by more than the seed noise (lack "
                                    f"of fit F = {f:.3g}): its interval takes the fit's residuals"), False
            if skew is not None and fit.degree == 2 and skew < SKEW_ALPHA:
                # lopsided, though the five cells fit: the residuals, or the seed noise where larger, each with its
                # own degrees of freedom (the seeds' with the residuals' 2 drew t-2 tails)
                sigma, sdof = (resid, dof) if resid >= cells.sd_rel else (cells.sd_rel, cells.sd_dof)
                return sigma, sdof, (
                    f"the basin is steeper on one side than a quadratic allows (a cubic term over +-"
                    f"{WIDE_WINDOW:g} octaves, p = {skew:.2g}): its interval takes the fit's residuals"), False
        return cells.sd_rel, cells.sd_dof, None, True
    return _one_seed(w, fit, dof, pooled)


@functools.lru_cache(maxsize=1024)
def _lack_of_fit_f(dfn: int, dfd: int) -> float:
    """The F quantile the lack-of-fit tests compare against (at 1 - :data:`LACK_OF_FIT_ALPHA`); cached, as are the
    other quantiles of a few integer degrees of freedom here: scipy's call costs more than the test it serves."""
    return float(stats.f.ppf(1.0 - LACK_OF_FIT_ALPHA, dfn, dfd))


def _one_seed(w: _Window, fit: _LocalFit, dof: int, pooled: ResidualNoise | None
              ) -> tuple[float, int, str | None, bool]:
    """One seed's noise: the group's pooled residuals, or this width's own where they exceed it beyond chance."""
    own = fit.rss / dof / float(np.mean(w.y)) ** 2 if dof > 0 else None
    if pooled is not None and pooled.dof > max(dof, 0):
        # the group's noise level from every width's residuals, unless this width's own exceed it beyond chance
        # (its basin is not the fit's shape: its own residuals are then its noise, as a lack of fit is)
        rest = max(pooled.dof - max(dof, 0), 1)
        if own is None or own <= pooled.var_rel * _lack_of_fit_f(dof, rest):
            return float(np.sqrt(pooled.var_rel)), pooled.dof, None, False
    if own is not None:
        return float(np.sqrt(own)), dof, None, False
    return _FALLBACK_SIGMA_REL, 0, "one seed and no residual degrees of freedom: noise assumed 0.1% of the loss", False


def _bootstrap_grid(scan: _Scan, win: _Window, fit: _LocalFit, window: float, sigma_rel: float, sigma_dof: int,
                    n_boot: int, rng: np.random.Generator, prefer_bracket: bool = False, at_measured: bool = False,
                    memo: dict[int, tuple[_Window, _LocalFit, np.ndarray]] | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Draws of the vertex (relative to the observed argmin) and of the loss there, and (``at_measured``) the
    vertex's draws from the same noise at the noise level as measured.

    Every stable cell's mean moves by its noise; each draw takes its own argmin and the window around it (the
    fitted window where the argmin stays) and that window's vertex. Under noise that moves the argmin, an optimum
    an octave from it could not enter a window fixed there (95% intervals covered 78% at 1% noise with one seed,
    89% with three; now 100% and 99%). The noise level is itself estimated: each draw takes its own sigma from the
    scaled-chi2 posterior, so few seeds widen the interval as a t distribution would. That is right for the
    interval; the optimum's own error is the one at the noise level as measured (the third array: the same normal
    draws, sigma fixed; a covariate law measures its scatter against it). ``prefer_bracket``: the estimate's choice
    of vertex window (:func:`_vertex_window`), applied at each draw's argmin. ``memo``: the windows and fits at the
    draws' argmins, shared by every bootstrap over the same ``scan``, ``window`` and ``prefer_bracket``
    (:func:`_argmin_fit`)."""
    memo = {} if memo is None else memo
    sw = np.sqrt(scan.ns.astype(float))
    scale = np.sqrt(sigma_dof / rng.chisquare(sigma_dof, n_boot)) if sigma_dof > 0 else np.ones(n_boot)
    unit = rng.standard_normal((n_boot, scan.xs.size)) * (sigma_rel * scan.ys / sw)[None, :]
    vb, lb = _vertex_draws(scan, win, fit, window, prefer_bracket, scan.ys[None, :] + unit * scale[:, None], memo)
    fixed = None
    if at_measured:
        fixed = vb if sigma_dof <= 0 else _vertex_draws(scan, win, fit, window, prefer_bracket,
                                                        scan.ys[None, :] + unit, memo)[0]
    return vb, lb, fixed


def _argmin_fit(scan: _Scan, win: _Window, fit: _LocalFit, window: float, prefer_bracket: bool, j: int,
                memo: dict[int, tuple[_Window, _LocalFit, np.ndarray]]) -> tuple[_Window, _LocalFit, np.ndarray]:
    """The vertex window and local fit of draws whose argmin is cell ``j`` (the estimate's own where it is the
    observed argmin), and the positions of the window's cells among the scan's; made once per argmin (``memo``)."""
    if j not in memo:
        if j == scan.i:
            w, f = win, fit
        else:
            w, _ = _vertex_window(dataclasses.replace(scan, i=j), window, prefer_bracket)
            f = _local_fit(w)
        memo[j] = w, f, np.argmin(np.abs(scan.xs[None, :] - (w.x + scan.xs[j])[:, None]), axis=1)
    return memo[j]


def _vertex_draws(scan: _Scan, win: _Window, fit: _LocalFit, window: float, prefer_bracket: bool,
                  yb_all: np.ndarray, memo: dict[int, tuple[_Window, _LocalFit, np.ndarray]] | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Each row of noisy cell means' vertex (its argmin's window's; relative to the observed argmin) and loss."""
    memo = {} if memo is None else memo
    n_boot = yb_all.shape[0]
    jb = np.argmin(yb_all, axis=1)
    vb, lb = np.empty(n_boot), np.empty(n_boot)
    for j in np.unique(jb):
        rows = jb == j
        w, f, at = _argmin_fit(scan, win, fit, window, prefer_bracket, int(j), memo)  # at: its cells, by position
        cells = yb_all[rows][:, at]
        cb = cells @ f.P.T
        v, ok = _vertex(cb)
        fallback = w.x[np.argmin(cells, axis=1)]
        v = np.clip(np.where(ok & (v >= w.lo) & (v <= w.hi), v, fallback), w.lo, w.hi)
        vb[rows], lb[rows] = v + (scan.xs[j] - scan.xs[scan.i]), _poly(cb, v)
    return vb, lb


@dataclass(frozen=True)
class _Basin:
    best: float
    curvature: float
    k_left: float
    k_right: float
    band_0p1: tuple[float, float]
    band_0p5: tuple[float, float]


def _basin(fit: _LocalFit, x0: float, span: tuple[float, float]) -> _Basin:
    """Loss, curvature, relative loss increase one octave either side, and the 0.1%/0.5% LR bands at x0."""
    coef = fit.coef
    best = float(_poly(coef, np.array(x0)))
    curvature = float(coef[2] + 3 * coef[3] * x0) if fit.degree == 3 else float(coef[2])
    k_left = float((_poly(coef, np.array(x0 - 1.0)) - best) / best)
    k_right = float((_poly(coef, np.array(x0 + 1.0)) - best) / best)
    if fit.degree == 2:
        k_left = k_right = float(coef[2] / best)
    return _Basin(best, curvature, k_left, k_right, _band(coef, x0, best * 1.001, *span),
                  _band(coef, x0, best * 1.005, *span))


#: how many noise sds the flat side of a lopsided basin must rise at the wider window's edge (two grid steps out on
#: a 1-3-10 or 2x grid; nearer where the runs beyond diverged, and then a steep side may be the lesser rise) for
#: replicated seeds to resolve it (:func:`flat_side_z`): then its nearer neighbour rises about 3 sds and the argmin
#: cannot stray far to the flat side. Measured on the statistician's simulation
#: (40 sweeps x 4 widths each): lopsided basins at 0.2% noise 8-36 (5th-75th percentiles), at 1% noise on a basin
#: 2x shallower 0.4-3.9 (1-3-10 grid) and 0.3-2.0 (2x grid); 4% and 0% of those reach 6
RESOLVE_Z = 6.0


def flat_side_z(cells: Cells, w: _Window) -> float:
    """How far the basin rises at the edges of the window ``w`` above the argmin, in sds of the difference of the
    two cells' means under the seeds' spread: the lesser of the two sides' rises, the flat side's on a lopsided basin
    (or a steep side's nearer cell where the runs beyond it diverged; 0 where a side has no cell, inf where the seeds
    show no spread)."""
    if not cells.sd_rel:
        return float("inf") if cells.sd_rel == 0.0 else 0.0
    i0 = int(np.argmin(np.abs(w.x)))
    rises = []
    for side in (w.x < 0, w.x > 0):
        if not side.any():
            return 0.0
        j = int(np.flatnonzero(side)[np.argmax(np.abs(w.x[side]))])
        sd = cells.sd_rel * float(w.y[i0]) * float(np.sqrt(1 / w.n[j] + 1 / w.n[i0]))
        rises.append(float(w.y[j] - w.y[i0]) / sd)
    return min(rises)


def fit_optimum(cells: Cells, n_boot: int, rng: np.random.Generator, window: float = 1.0,
                confidence_level: float = 0.95, pooled: ResidualNoise | None = None,
                shape: BasinShape | None = None) -> Optimum:
    """Grid argmin, local quadratic/cubic vertex, bootstrap interval, edge flags, curvature and bands. ``pooled``:
    the one-seed noise of the width's group (:func:`pooled_noise`), taken where it has more degrees of freedom;
    ``shape``: the group's basin shape (:func:`basin_shape`), which picks the vertex's window on coarse grids (None,
    untested, sends one seed to the bracket; the curvature, bands and loss draws come from the same window)."""
    scan = _scan(cells, confidence_level)
    if isinstance(scan, Optimum):
        return scan
    x_am = float(scan.xs[scan.i])
    win = _window(scan, window)
    fit = _local_fit(win)
    used = window  # the window's half-width the fit took (wider where the quadratic misses)
    sigma_rel, sigma_dof, note, seed_spread = _noise(cells, win, fit, pooled, _skew_p(scan, window, cells, fit))
    lack_of_fit = not seed_spread and bool(cells.sd_rel)  # the seeds have a spread, and the fit misses it
    # Where the +-1 octave window holds fewer than 4 cells (grids coarser than half an octave), the window above
    # took the nearest 4 or 5: 2-3.3 octaves out on a 1-3-10 grid, where a lopsided basin is least like a quadratic
    # (a basin rising 2x more an octave above its optimum than below put the vertex -1.07 octave off there, -0.46 on
    # a 2x grid). That fit stays the vertex only where replicated seeds vouch for its shape (their spread explains
    # its residuals) and the group's basins are not lopsided (``shape``, :func:`basin_shape`), or, with one seed,
    # which cannot test its own shape, where the group's show quadratic; otherwise the vertex is the quadratic
    # through the argmin's bracket (:func:`_window`: -0.32 and -0.13 octave there). The bracket's worst case is
    # noise (0.02 -> 0.04 octave on a quadratic basin), the wider fit's a one-octave bias
    # (a group that shows neither shape leaves replicated seeds to their own test: taking the bracket there too
    # covered a noisy lopsided basin's widths 97% of the time instead of 85%, but made a noisy quadratic one's
    # free bands 1.5-1.7x wider)
    vouched = seed_spread if cells.sd_rel else shape == "quadratic"
    prefer_bracket = shape == "lopsided" or not vouched
    near, bracket = _vertex_window(scan, window, prefer_bracket)
    seeds_resolve = False
    if bracket:  # said in the result: the fit's model names it
        seeds_resolve = lack_of_fit and flat_side_z(cells, win) >= RESOLVE_Z
        win, fit = near, dataclasses.replace(_local_fit(near), model="bracket")
        if seeds_resolve:
            # The wider fit's residuals measured its own misfit of a lopsided basin, no error of the bracket's
            # vertex: a 1-3-10 sweep with two seeds got 7-octave intervals for a vertex 0.3 octave off. The seeds'
            # spread draws the bracket's noise; its shape error (up to about two-thirds of a grid step, depending on
            # where the optimum sits between cells) is the full grid step's floor (_floored, not replicated), an
            # error the widths share (shared_var, raised with the group's shifts), and its drift from width to width
            # is added to each width's own error by fitting.parts.with_bracket_drift. Only where the seeds resolve
            # the basin's flat side (flat_side_z): under more noise the argmin strays to the flat side more often
            # than the bootstrap shows (a noisy lopsided sweep's 95% band covered 87%), and the wider residuals
            # stay. (Past about 5x lopsided the shifts no longer bound the error: see with_bracket_drift.)
            sigma_rel, sigma_dof = float(cells.sd_rel or 0.0), cells.sd_dof
            note = ("the wider local fit misses the cells by more than the seed noise: the vertex comes from the "
                    "quadratic through the argmin's bracket, its interval from the seed noise and a grid step for "
                    "the basin's shape")
    elif lack_of_fit and fit.degree == 2:
        # the quadratic misses the cells beyond their noise and the window was too small for the asymmetric
        # model (a half-octave grid puts 5 points in +-1 octave; the cubic needs 6): a wider window lets AIC try
        # it. The noise stays the quadratic's residuals: a cubic is not the basin's shape either (it took 0.19
        # octave of bias to 0.12 on a 2.5x asymmetric basin), and its own residuals would claim it is
        wide = _window(scan, window * WIDE_WINDOW)
        if wide.x.size > win.x.size and (wfit := _local_fit(wide)).degree == 3 and _vertex(wfit.coef[None, :])[1][0]:
            win, fit, used = wide, wfit, window * WIDE_WINDOW
    notes = [note] if note else []
    v, ok = _vertex(fit.coef[None, :])
    if not ok[0] or not (win.lo - 1e-9 <= v[0] <= win.hi + 1e-9):
        # the vertex lies above the window and the next learning rate up is a diverged one
        at_edge = bool(scan.x_first_div is not None and ok[0] and v[0] > win.hi
                       and not np.any((scan.xs > x_am) & (scan.xs < scan.x_first_div)))
        notes.append(
            "the loss still falls up to the stability edge (a run diverged at the next learning rate): the optimum "
            "is at the edge, unidentified; more seeds would not help (a learning rate counts as stable only when "
            "all its seeds are), a finer grid below the edge would" if at_edge else
            "the loss is not convex around the best learning rate (noise larger than the basin?): "
            "unidentified; add seeds or widen the grid")
        return Optimum.unidentified(tuple(notes), confidence_level, x_argmin=x_am, best_loss=float(scan.ys[scan.i]),
                                    x_stable=scan.x_stable, x_first_div=scan.x_first_div)
    x0 = float(v[0])
    boot_bracket = prefer_bracket and used == window  # the widened cubic's window is never a bracket
    memo: dict[int, tuple[_Window, _LocalFit, np.ndarray]] = {}  # both bootstraps' argmins' windows and fits
    vb, lb, vb_measured = _bootstrap_grid(scan, win, fit, used, sigma_rel, sigma_dof, n_boot, rng, boot_bracket,
                                          at_measured=True, memo=memo)
    top = scan.x_first_div if scan.x_first_div is not None else scan.xs.max()
    basin = _basin(fit, x0, (float(scan.xs.min() - x_am), float(top - x_am)))
    if sigma_rel * basin.best > 0.25 * basin.curvature and basin.curvature > 0:  # loss change at +-0.5 octave
        if bracket and shape == "lopsided" and not cells.sd_rel:
            # one seed: the residuals that measure its noise hold the wider fit's misfit of a lopsided basin too
            # (5% of the loss where the noise was 0.2%), which "noise" alone misreported
            notes.append(f"the wider fit's residuals ({100 * sigma_rel:.2g}% of the loss: noise, and on this group's "
                         "lopsided basins their misfit too) exceed the basin's change at +-0.5 octave: the optimum is "
                         "not resolved below about +-0.5 octave; a second seed would tell the noise from the misfit")
        else:
            what = "seed noise" if seed_spread or seeds_resolve else "noise"
            notes.append(f"{what} ({100 * sigma_rel:.2g}% of the loss) exceeds the basin's change at +-0.5 octave: "
                         "the optimum is not resolved below about +-0.5 octave")
    if scan.x_first_div is not None and scan.i == scan.xs.size - 1:
        notes.append("optimum next to the stability edge (the next learning rate diverged)")
    observed = float(scan.ys[scan.i])
    if observed > 0 and not basin.best > 0:  # every loss positive, the local fit's vertex at or below 0
        # a cell far out of line (one broken seed) bent the local fit: its vertex, curvature, bands and loss draws
        # are no basin these runs have, and its optimum moved with it (most of an octave, a review found)
        notes.append(f"the local fit's loss at its vertex ({basin.best:.4g}) is no loss these runs reach: a cell far "
                     "out of line bent it (the table's warnings name a run far above its sibling seed); "
                     "unidentified: drop or fix that run")
        return Optimum.unidentified(tuple(notes), confidence_level, x_argmin=x_am, best_loss=observed,
                                    x_stable=scan.x_stable, x_first_div=scan.x_first_div)
    # seeds resolve the vertex below a grid step only when their spread is the noise (no lack of fit)
    draws = _floored(vb + x_am, win, replicated=seed_spread)
    shared_var, seed_noise_var = 0.0, None
    if lack_of_fit and cells.sd_rel is not None:  # what the seeds alone would have said, for the difference
        # where the seeds resolve the bracket, vb already is that bootstrap (the same noise, window and fit): a second
        # one would only add its Monte Carlo difference to shared_var
        vb_seed = vb if seeds_resolve else _bootstrap_grid(scan, win, fit, used, cells.sd_rel, cells.sd_dof, n_boot,
                                                           rng, boot_bracket, memo=memo)[0]
        seed_noise_var = _interval_var(vb_seed)
        # measured as the interval reads it (a covariate law takes each curve's variance from its interval): the
        # argmin drawn too makes the draws multimodal, where np.var exceeds what the interval says
        seed_draws = _floored(vb_seed + x_am, win, replicated=True)
        shared_var = max(_interval_var(draws) - _interval_var(seed_draws), 0.0)
    return Optimum(
        x_opt=x0 + x_am, ci=_quantiles(draws, confidence_level), confidence_level=confidence_level,
        draws=draws, loss_draws=lb, var=_interval_var(draws), identified=True, on_edge=False, x_argmin=x_am,
        best_loss=basin.best, x_stable=scan.x_stable, x_first_div=scan.x_first_div,
        curvature=basin.curvature, k_left=basin.k_left, k_right=basin.k_right,
        band_0p1=(basin.band_0p1[0] + x_am, basin.band_0p1[1] + x_am),
        band_0p5=(basin.band_0p5[0] + x_am, basin.band_0p5[1] + x_am),
        model=fit.model, sigma_rel=sigma_rel, notes=tuple(notes),
        lack_of_fit=lack_of_fit, shared_var=shared_var, noise_var=_interval_var(vb),
        error_var=None if vb_measured is None else _interval_var(vb_measured),
        seed_noise_var=seed_noise_var, seed_bracket=bracket and seeds_resolve,
    )


def shared_variance(shared_vars: list[float]) -> float:
    """The variance of an error every width (or curve) shares: the mean of their ``shared_var`` when lack of fit
    is systematic, 0 when no more of them show it than the tests' levels make by chance (:data:`FLAG_RATE`; a
    one-sided binomial test at 5%: 2 of 5 widths is chance, 3 of 5 is not). A correctly specified basin keeps its
    sharp bands."""
    n, k = len(shared_vars), sum(v > 0 for v in shared_vars)
    if k == 0 or _flags_by_chance(k, n) >= 0.05:
        return 0.0
    return float(np.mean(shared_vars))


@functools.lru_cache(maxsize=1024)
def _flags_by_chance(k: int, n: int) -> float:
    """P(k or more of n quadratic widths flagged) at :data:`FLAG_RATE` (cached, as :func:`_lack_of_fit_f`)."""
    return float(stats.binom.sf(k - 1, n, FLAG_RATE))


def grid_floor_sd(spacing: float, replicated: bool) -> float:
    """The least spread a width's optimum may claim on a grid ``spacing`` octaves apart.

    Between two grid points the loss is only interpolated: one seed cannot place the vertex better than a
    uniform spread over one step (sd = spacing / sqrt(12)); replicated seeds, over half a step.
    """
    return spacing / np.sqrt(12.0) / (2.0 if replicated else 1.0)


def _floored(draws: np.ndarray, w: _Window, replicated: bool) -> np.ndarray:
    """The draws with an independent error added until their central 68% spans at least 2 :func:`grid_floor_sd`
    (a tiny bootstrap spread on a coarse grid, e.g. 0.02 octave from one seed, would otherwise dominate the
    weighted across-width fit).

    The grid's error is one the bootstrap cannot see, so it is added (a convolution, sd sqrt(floor^2 - core^2)),
    not multiplied in: stretching the draws about their mean by floor / core (x150-300 where the core is a few
    thousandths of an octave) blew a few far draws (the argmin drawn elsewhere) into intervals 5-20 octaves wide
    and moved their centre, so that some excluded their own estimate. The added values are normal quantiles in a
    fixed order (no random numbers of the fit's stream): deterministic, and independent of the draws' values."""
    steps = np.diff(np.sort(w.x))
    floor = grid_floor_sd(float(np.median(steps)), replicated) if steps.size else 0.0
    lo, hi = np.quantile(draws, [0.1587, 0.8413])
    sd = float(hi - lo) / 2  # robust: a heavy-tailed spread (few residual dof) is measured by its core
    if sd >= floor:
        return draws
    return draws + np.sqrt(floor**2 - sd**2) * _ordered_normal(draws.size)


def with_shared_error(o: Optimum, sd: float) -> Optimum:
    """``o`` with an independent error of variance ``sd``^2 - ``shared_var`` added to its draws, so that the
    part its widths share is at least ``sd``^2: its interval and ``var`` widened (``var`` by at least the added
    variance), and ``shared_var`` by as much as ``var`` (what is left of ``var``, each width's own weight in a law,
    stays as it was: the interval's variance, read from its quantiles, can grow by more than the added one where the
    draws have tails, and making the growth all shared kept a law's free band at 5.0 octaves, not 10.5); its
    estimate and ``noise_var`` (the slope's part) as they were. The added values are normal quantiles in
    :func:`_order`'s fixed order, as the grid floor's are."""
    if o.draws is None or o.var is None or not o.identified or not sd**2 > o.shared_var:
        return o
    extra = float(np.sqrt(sd**2 - o.shared_var))
    draws = o.draws + extra * _ordered_normal(o.draws.size)
    var = max(_interval_var(draws), o.var + extra**2)
    return dataclasses.replace(o, draws=draws, ci=_quantiles(draws, o.confidence_level), var=var,
                               shared_var=o.shared_var + var - o.var)


def _order(n: int) -> np.ndarray:
    """A fixed permutation of ``n`` positions (the pairing of the floor's quantiles with the draws)."""
    return np.random.default_rng(0x5EED).permutation(n)


@functools.lru_cache(maxsize=64)
def _ordered_normal(n: int) -> np.ndarray:
    """The standard normal's quantiles at (i + 1/2) / n, in :func:`_order`'s order: the values the grid floor and a
    shared error add to ``n`` draws. The same for every width of a fit (n_boot draws), so made once (read-only)."""
    q = (np.arange(n) + 0.5) / n
    out = stats.norm.ppf(q)[_order(n)]
    out.flags.writeable = False
    return out


def _interval_var(draws: np.ndarray) -> float:
    """The variance the draws' central 95% implies, read as normal: robust where the draws are multimodal (the
    argmin drawn too) or heavy-tailed (few residual dof), where np.var says more than any interval does; as a
    covariate law reads each curve's variance from its interval (there at the fit's level), and the same at every
    confidence level. (The central 68% fell to the grid floor where a diverged seed beside the optimum left the
    95% interval wide, and the law over-weighted that width.)"""
    lo, hi = np.quantile(draws, [0.025, 0.975])
    return float((hi - lo) / (2 * 1.959963984540054)) ** 2


def _quantiles(draws: np.ndarray, confidence_level: float) -> tuple[float, float]:
    lo, hi = tail_probabilities(confidence_level)
    return float(np.quantile(draws, lo)), float(np.quantile(draws, hi))
