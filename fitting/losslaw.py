"""Loss against width, L*(w) = E + A w^-alpha, by a Huber fit in relative (log) error.

For a fixed alpha the model is linear in (E, A), so the fit solves (E, A) by iteratively reweighted least
squares with Huber weights (variable projection) and searches alpha on a grid, then by golden section
between the best grid point's neighbours. Everything is vectorised over alpha and the bootstrap draws,
so point estimate and bootstrap share one path.
Relative residuals (L_hat - L) / L stand in for log residuals (equal to first order at these scales).

:func:`fit_loss_surface` fits the joint law L(N, D) = E + A N^-alpha + B D^-beta over (size, tokens) points the
same way: (E, A, B) by IRLS for each (alpha, beta), the exponents on a grid of starts and then by a pattern
search, all vectorised over the bootstrap draws (which resample points). Both laws say when the data cannot
identify them (``identified``, ``notes``) rather than report an exponent pinned to the edge of its range.
"""

from __future__ import annotations

import numpy as np

from abcscale.fitting.optimum import tail_probabilities
from abcscale.schemas.fit import Estimate, LossLaw, LossSurface
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

    Each parameter's interval is the bootstrap percentile interval at ``confidence_level``. A law the data
    cannot pin (alpha at an edge of its grid or with an interval wider than 1, a width term <= 0 or absurd)
    comes back with ``identified=False`` and notes saying why.
    """
    k = widths.size
    if k < 4 or not np.all(np.isfinite(best)) or np.any(best <= 0):
        return None
    widths = widths.astype(float)
    unit = _loss_unit(best)  # E and A are in the losses' units; the fit itself runs near 1
    best, draws = best / unit, draws / unit
    # the point fit and the bootstrap's are one call (rows never interact, so each row's fit is what it is alone):
    # the resamples are drawn first, and handed back to the generator where the point fit has no finite value
    drawn_from = rng.bit_generator.state
    nb = min(n_boot, 400)  # a cheap law: 400 draws pin its 2.5% / 97.5% quantiles well enough
    idx = np.sort(rng.integers(0, k, size=(nb, k)), axis=1)
    col = rng.integers(0, draws.shape[1], size=(nb, k))
    # a resample with fewer than 3 distinct widths cannot identify three parameters
    distinct = (np.diff(idx, axis=1) > 0).sum(1) + 1 >= 3
    Lb = draws[idx[distinct], col[distinct]]
    E_all, A_all, al_all = _fit_many(np.vstack([widths[None, :], widths[idx[distinct]]]),
                                     np.vstack([best[None, :], Lb]))
    E, A, al = E_all[0], A_all[0], al_all[0]
    if not np.isfinite([E, A, al]).all():
        rng.bit_generator.state = drawn_from
        return None
    Eb, Ab, alb = E_all[1:], A_all[1:], al_all[1:]

    lo, hi = tail_probabilities(confidence_level)

    def est(x: float, xb: np.ndarray) -> Estimate:
        xb = xb[np.isfinite(xb)]
        if xb.size < 10:
            point = Interval(low=float(x), high=float(x), confidence_level=confidence_level)
            return Estimate(estimate=float(x), ci=point, method="huber varpro (no bootstrap)")
        ci = Interval(low=float(np.quantile(xb, lo)), high=float(np.quantile(xb, hi)),
                      confidence_level=confidence_level)
        return Estimate(estimate=float(x), ci=ci, se=_std(xb), method="huber varpro, cluster bootstrap over widths")

    alpha = est(al, alb)
    scale = float(np.median(best))
    centre = float(np.exp(np.mean(np.log(widths))))
    notes = [*_exponent_notes("alpha", alpha, (_ALPHAS[0], _ALPHAS[-1])),
             *_term_notes("A", A * centre**-al, scale, "alpha", "width")]
    return LossLaw(E=est(E * unit, Eb * unit), A=est(A * unit, Ab * unit), alpha=alpha, identified=not notes,
                   notes=notes)


def _loss_unit(loss: np.ndarray) -> float:
    """1, or a power of two near the losses' median when that lies beyond 2^+-64. The laws are linear in E, A
    and B and fitted in relative error, so dividing the losses by a power of two (exact in floating point)
    changes nothing but keeps the squares of losses like 1e160 or 1e-160 from overflowing or vanishing."""
    e = float(np.round(np.log2(np.median(loss))))
    return 1.0 if abs(e) <= 64 else 2.0**e


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


# --- identification ------------------------------------------------------------------------------------------

_AT_BOUND = 1e-3  # an exponent this close to its range's edge was stopped by the edge, not by the data
_ABSURD = 1e6  # a term larger than this many times the loss scale at the centre of the data fits nothing real
_MAX_SPAN = 1.0  # an exponent's interval wider than this says nothing a user can act on


def _exponent_notes(name: str, e: Estimate, bounds: tuple[float, float]) -> list[str]:
    lo, hi = float(bounds[0]), float(bounds[1])
    if not np.isfinite(e.estimate):
        return [f"{name}: no finite fit"]
    if min(e.estimate - lo, hi - e.estimate) < _AT_BOUND:
        return [f"{name} = {e.estimate:.3g} sits at the edge of its range [{lo:g}, {hi:g}]: the data do not "
                f"pin it"]
    span = e.ci.high - e.ci.low
    if span > _MAX_SPAN:
        return [f"{name}'s {100 * e.ci.confidence_level:g}% interval [{e.ci.low:.3g}, {e.ci.high:.3g}] is wider "
                f"than {_MAX_SPAN:g}"]
    return []


def _term_notes(name: str, at_centre: float, scale: float, exponent: str, axis: str) -> list[str]:
    """Notes on a power-law term by its value at the centre (geometric mean) of the data's ``axis``."""
    if not np.isfinite(at_centre):
        return [f"{name}: no finite fit"]
    if at_centre <= 1e-9 * scale:
        return [f"{name} <= 0: the loss does not fall with {axis} in these points, so {exponent} means nothing"]
    if at_centre > _ABSURD * scale:
        return [f"{name} is absurd: its term is {at_centre / scale:.3g}x the loss at the centre of the data"]
    return []


# --- the joint law L(N, D) -----------------------------------------------------------------------------------

_EXP_RANGE = (0.02, 2.0)
_STARTS = np.linspace(*_EXP_RANGE, 8)  # the grid of (alpha, beta) starts: 64 pairs
_SEARCH_STEPS = 40  # pattern search: each step moves or halves its step (0.28 -> _SEARCH_TOL in 12 halvings)
_SEARCH_TOL = 1e-4  # in the exponents: far below any interval's width
_SUBSETS = [s for s in ((0, 1, 2), (0, 1), (0, 2), (1, 2), (0,), (1,), (2,))]  # supports of (E, A, B)
_CHUNK = 2_000_000  # elements per vectorised block (draws x candidates x points): bounded memory


def fit_loss_surface(
    size: np.ndarray, tokens: np.ndarray, loss: np.ndarray, *, n_boot: int = 500, rng: np.random.Generator,
    confidence_level: float = 0.95, axes: tuple[str, str] = ("size", "tokens"),
) -> LossSurface:
    """The joint law L(N, D) = E + A N^-alpha + B D^-beta over per-curve best losses at (size N, tokens D).

    Huber in relative error (delta 1e-3, Hoffmann et al. 2022); intervals are bootstrap percentile intervals
    over points at ``confidence_level``. N and D are normalised by their geometric means (see
    :class:`LossSurface`). Bad input (not 1-D, lengths differ, NaN, a value <= 0, fewer than 5 points) is a
    ValueError naming the argument. A law the data cannot pin comes back with ``identified=False`` and notes.
    ``axes``: what N and D are called in errors and notes (a table's size column and its data axis, which may
    be a step count or a batch size, not tokens).
    """
    N, D, L = _points(size, tokens, loss, axes)
    if not 0 < confidence_level < 1:
        raise ValueError(f"confidence_level: must lie in (0, 1), got {confidence_level}")
    if n_boot < 0:
        raise ValueError(f"n_boot: must be >= 0, got {n_boot}")
    ns, ds = float(np.exp(np.log(N).mean())), float(np.exp(np.log(D).mean()))
    n, d = N / ns, D / ds
    unit = _loss_unit(L)
    k = L.size
    idx = rng.integers(0, k, size=(n_boot, k))
    # a resample with fewer than 3 distinct N or D cannot separate an exponent from E
    idx = idx[(_distinct(N[idx]) >= 3) & (_distinct(D[idx]) >= 3)]
    # the point fit (row 0: every point once) and the bootstrap's in one call, each searched as it would be alone
    rows = np.vstack([np.arange(k)[None, :], idx])
    fits = _fit_surfaces(n[rows], d[rows], L[rows] / unit, groups=(1, idx.shape[0]))
    point, boot = fits[:1], fits[1:]
    linear = [0, 1, 3]  # E, A, B: in the losses' units
    point[:, linear] *= unit
    boot[:, linear] *= unit
    if not np.isfinite(point).all():
        raise ValueError("loss: the law has no finite fit to these points")
    est = {name: _estimate(float(point[0, j]), boot[:, j], confidence_level)
           for j, name in enumerate(("E", "A", "alpha", "B", "beta"))}
    notes = [f"{arg}: {u} distinct value(s); at least 3 are needed to separate {e} from E"
             for arg, x, e in ((axes[0], N, "alpha"), (axes[1], D, "beta")) if (u := np.unique(x).size) < 3]
    scale = float(np.median(L))
    for term, e, axis in (("A", "alpha", axes[0]), ("B", "beta", axes[1])):
        notes += _exponent_notes(e, est[e], _EXP_RANGE) + _term_notes(term, est[term].estimate, scale, e, axis)
    with np.errstate(over="ignore", invalid="ignore"):
        a_user = est["A"].estimate * ns ** est["alpha"].estimate
        b_user = est["B"].estimate * ds ** est["beta"].estimate
    return LossSurface(
        **est, size_scale=ns, tokens_scale=ds, A_user=_finite(a_user), B_user=_finite(b_user), n_points=k,
        method="Huber (delta 1e-3) in relative error; (E, A, B) by non-negative IRLS per (alpha, beta), searched "
               f"from a {_STARTS.size}x{_STARTS.size} grid; bootstrap over points ({boot.shape[0]} draws)",
        identified=not notes, notes=notes,
    )


def _points(size: object, tokens: object, loss: object,
            axes: tuple[str, str] = ("size", "tokens")) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three arrays, checked: 1-D, numbers, finite, > 0, one length, at least 5 points."""
    out = []
    for name, x in ((axes[0], size), (axes[1], tokens), ("loss", loss)):
        try:
            a = np.asarray(x, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: expected numbers") from None
        if a.ndim != 1:
            raise ValueError(f"{name}: expected a 1-D array, got shape {a.shape}")
        if (bad := int((~np.isfinite(a)).sum())) > 0:
            raise ValueError(f"{name}: {bad} value(s) are NaN or infinite")
        if a.size and a.min() <= 0:
            raise ValueError(f"{name}: every value must be > 0, got {a.min():g}")
        out.append(a)
    N, D, L = out
    for name, a in ((axes[1], D), ("loss", L)):
        if a.size != N.size:
            raise ValueError(f"{name}: {a.size} values, but {axes[0]} has {N.size}")
    if N.size < 5:
        raise ValueError(f"{axes[0]}: at least 5 ({axes[0]}, {axes[1]}) points are needed for 5 parameters, "
                         f"got {N.size}")
    return N, D, L


def _estimate(x: float, xb: np.ndarray, level: float) -> Estimate:
    xb = xb[np.isfinite(xb)]
    if xb.size < 10:
        return Estimate(estimate=x, ci=Interval(low=x, high=x, confidence_level=level),
                        method="huber varpro (no bootstrap)")
    lo, hi = tail_probabilities(level)
    return Estimate(estimate=x, ci=Interval(low=float(np.quantile(xb, lo)), high=float(np.quantile(xb, hi)),
                                            confidence_level=level),
                    se=_std(xb), method="huber varpro, bootstrap over points")


def _std(x: np.ndarray) -> float:
    """The standard deviation, without overflowing on values near the float limit (losses of 1e300)."""
    m = float(np.max(np.abs(x), initial=0.0))
    return float(np.std(x)) if m < 1e150 else float(np.std(x / m) * m)


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _distinct(x: np.ndarray) -> np.ndarray:
    """How many distinct values each row of ``x`` holds (``np.unique(row).size``, for all rows at once)."""
    return (np.diff(np.sort(x, axis=1), axis=1) != 0).sum(1) + 1


def _fit_surfaces(n: np.ndarray, d: np.ndarray, L: np.ndarray, groups: tuple[int, ...] | None = None) -> np.ndarray:
    """(E, A, alpha, B, beta) for each row of normalised N, D and losses (each (r, k)): (r, 5), NaN where no fit
    is finite. The best pair of the grid of starts, then a pattern search (move to the best of the four
    neighbours at the current step, else halve it) that never leaves the exponents' range.

    ``groups``: the sizes of consecutive blocks of rows that are separate fits (the point fit, its bootstrap), each
    searched until its own rows have converged, as in a call of its own (rows never interact, so a row's fit does
    not depend on the rows beside it); None: one block."""
    grid = np.stack(np.meshgrid(_STARTS, _STARTS, indexing="ij"), -1).reshape(-1, 2)  # (m, 2)
    h_grid = _chunked(n, d, L, np.broadcast_to(grid, (n.shape[0], *grid.shape)))[1]
    p = grid[np.argmin(h_grid, axis=1)]  # (r, 2)
    f = h_grid.min(axis=1)
    step = np.full(n.shape[0], _STARTS[1] - _STARTS[0])
    moves = np.array([[1, 0], [-1, 0], [0, 1], [0, -1]], dtype=float)
    ends = np.cumsum([0, *(groups or (n.shape[0],))])
    blocks = [(a, b) for a, b in zip(ends[:-1], ends[1:], strict=True) if b > a]
    rows = np.arange(n.shape[0])  # the rows of the blocks still searching
    for _ in range(_SEARCH_STEPS):
        cand = np.clip(p[rows, None, :] + step[rows, None, None] * moves, *_EXP_RANGE)  # (r, 4, 2)
        h = _chunked(n[rows], d[rows], L[rows], cand)[1]
        j = np.argmin(h, axis=1)
        at = np.arange(h.shape[0])
        better = h[at, j] < f[rows]
        p[rows] = np.where(better[:, None], cand[at, j], p[rows])
        f[rows] = np.where(better, h[at, j], f[rows])
        step[rows] = np.where(better, step[rows], step[rows] / 2)
        blocks = [(a, b) for a, b in blocks if not np.all(step[a:b] < _SEARCH_TOL)]
        if not blocks:
            break
        rows = np.concatenate([np.arange(a, b) for a, b in blocks])
    coef, h = _chunked(n, d, L, p[:, None, :])
    out = np.column_stack([coef[:, 0, 0], coef[:, 0, 1], p[:, 0], coef[:, 0, 2], p[:, 1]])
    return np.where(np.isfinite(h), out, np.nan)


def _chunked(n: np.ndarray, d: np.ndarray, L: np.ndarray, ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_surface_profile` over blocks of rows, so that no block holds more than _CHUNK elements."""
    rows = max(1, _CHUNK // (ab.shape[1] * n.shape[1]))
    parts = [_surface_profile(n[i:i + rows], d[i:i + rows], L[i:i + rows], ab[i:i + rows])
             for i in range(0, n.shape[0], rows)]
    return np.concatenate([c for c, _ in parts]), np.concatenate([h for _, h in parts])


def _surface_profile(n: np.ndarray, d: np.ndarray, L: np.ndarray,
                     ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(E, A, B) (r, m, 3) and the Huber loss (r, m; inf where not finite) at each (alpha, beta) of ``ab``
    (r, m, 2): for fixed exponents the law is linear in (E, A, B) >= 0, solved by IRLS with Huber weights."""
    cols = (np.ones((1, 1, 1)), n[:, None, :] ** -ab[..., :1], d[:, None, :] ** -ab[..., 1:])  # each (r, m, k)
    y = L[:, None, :]
    w = np.broadcast_to(1.0 / y**2, cols[1].shape)
    for step in range(_IRLS_STEPS + 1):
        coef = _nonnegative_wls(cols, y, w)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            r = np.abs((coef[0][..., None] + coef[1][..., None] * cols[1] + coef[2][..., None] * cols[2] - y) / y)
            if step < _IRLS_STEPS:
                w = np.minimum(1.0, _DELTA / np.maximum(r, 1e-300)) / y**2
    huber = np.where(r <= _DELTA, 0.5 * r**2, _DELTA * (r - 0.5 * _DELTA)).sum(-1)
    return np.stack(coef, -1), np.where(np.isfinite(huber), huber, np.inf)


def _nonnegative_wls(cols: tuple[np.ndarray, ...], y: np.ndarray, w: np.ndarray) -> list[np.ndarray]:
    """argmin_{c >= 0} sum w (sum_i c_i cols_i - y)^2 over 3 columns, exactly and elementwise: the best of the
    7 supports whose normal equations (solved by Cramer's rule) give a non-negative solution; a single column
    always does (every column and y are > 0)."""
    wc = [w * c for c in cols]
    G = [[(wc[i] * cols[j]).sum(-1) for j in range(3)] for i in range(3)]
    g = [(wc[i] * y).sum(-1) for i in range(3)]
    best = [np.zeros_like(g[0]) for _ in range(3)]
    best_sse = np.full_like(g[0], np.inf)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for s in _SUBSETS:
            c = _cramer([[G[i][j] for j in s] for i in s], [g[i] for i in s])
            sse = sum(c[a] * c[b] * G[i][j] for a, i in enumerate(s) for b, j in enumerate(s))
            sse = sse - 2 * sum(c[a] * g[i] for a, i in enumerate(s))  # + y'Wy, the same for every support
            ok = np.logical_and.reduce([x >= 0 for x in c]) & np.isfinite(sse) & (sse < best_sse)
            for a in range(3):
                best[a] = np.where(ok, c[s.index(a)] if a in s else 0.0, best[a])
            best_sse = np.where(ok, sse, best_sse)
    return best


def _cramer(M: list[list[np.ndarray]], b: list[np.ndarray]) -> list[np.ndarray]:
    """The solution of M x = b for a 1x1, 2x2 or 3x3 system of arrays (elementwise), a tiny ridge added."""
    k = len(b)
    eps = 1e-12 * sum(M[i][i] for i in range(k))
    M = [[M[i][j] + (eps if i == j else 0.0) for j in range(k)] for i in range(k)]
    if k == 1:
        return [b[0] / M[0][0]]
    if k == 2:
        det = M[0][0] * M[1][1] - M[0][1] * M[1][0]
        return [(b[0] * M[1][1] - M[0][1] * b[1]) / det, (M[0][0] * b[1] - b[0] * M[1][0]) / det]

    def det3(A: list[list[np.ndarray]]) -> np.ndarray:
        return (A[0][0] * (A[1][1] * A[2][2] - A[1][2] * A[2][1]) - A[0][1] * (A[1][0] * A[2][2] - A[1][2] * A[2][0])
                + A[0][2] * (A[1][0] * A[2][1] - A[1][1] * A[2][0]))

    det = det3(M)
    return [det3([[b[i] if j == col else M[i][j] for j in range(3)] for i in range(3)]) / det for col in range(3)]
