"""An independent oracle of the analytic numbers, compared with ``abcscale.recommend`` / ``theory_table`` / ``convert``.

The oracle below is derived from the reference alone (/work/shared/reference/theory.md; paper-notes.md sections
1-4 for provenance), without abcscale's theory code:

- section 1: the (a, b) table of the four parameterizations; eta_l = beta * gamma_l * (n / b)^(-c_l);
- section 2: the stability constraints of SGD (with g = min(a+b, 2a+c) of the readout), Adam and Adafactor, solved
  here as our own LP over (c_1, c_h, c_{L+1}, r_1, r_h, G) for the smallest total c; unique whenever u <= alpha;
- section 3: the published (c_emb, c_hid, c_out) table (the oracle must reproduce it) and, for one global LR, the
  binding layer's (largest) c;
- section 4: the symmetry map (m t, s / t, eta / t^k), k = 2 / 1 / 0, and epsilon -> epsilon t (a gradient w.r.t. W
  scales by t when W -> W / t, so Adam's threshold must too);
- section 5: per-layer epsilon_l = epsilon * (n / b)^(-g_l), g_i = a_i + a_{L+1} + min(b_{L+1}, c_{L+1}) for i <= L
  and g_{L+1} = a_{L+1}, with the readout's c the one in use (the shared c under one global LR).

Multipliers and init stds are absolute, M_l n^(-a_l) and S_l n^(-b_l): the reference leaves that open (paper-notes
1.1, [MEM]); README "Conventions" and docs/theory.md section 1 fix it, so the oracle takes it from there.

Alignments are kept where the reference's answer is unique (u <= alpha, omega = 1/2, alpha >= 1/2): outside that
range abcscale documents its own readings (docs/theory.md sections 2 and 3.1: hidden layers in series need
U_h >= u; a shared global c below the largest per-layer one), which the reference does not settle. For u > alpha
only what the reference says is checked: the answer is flagged non-unique and every exponent it gives is stable.

Session 71's audit ran this oracle over 4 parameterizations x 3 optimizers x 13 alignments x 2 LR modes x widths
1 .. 2^20 x base widths 1 .. 2^20 x both epsilon modes (about 25,000 answers, relative tolerance 1e-9) and the CLI,
table, REST and Python faces, and found no disagreement; this file keeps a representative slice of it, fast.
"""

from __future__ import annotations

import functools
import itertools
import math
import random

import numpy as np
import pytest
from scipy.optimize import linprog

import abcscale
from abcscale import Constants

HALF = 0.5
#: reference/theory.md section 1: (a, b) of embedding, hidden, readout
AB = {
    "standard": ((0.0, 0.0), (0.0, HALF), (0.0, HALF)),
    "ntk": ((0.0, 0.0), (HALF, 0.0), (HALF, 0.0)),
    "mup": ((-HALF, HALF), (0.0, HALF), (HALF, HALF)),
    "mean_field": ((0.0, 0.0), (HALF, 0.0), (1.0, 0.0)),
}
LAYERS = ("embedding", "hidden", "readout")
NAMED = {"full": (1.0, 0.5, 1.0), "none": (0.5, 0.5, 0.5)}
#: reference/theory.md section 4: k per optimizer
K = {"sgd": 2, "adam": 1, "adafactor": 0}

#: reference/theory.md section 3, transcribed (the oracle's LP must reproduce it)
PUBLISHED = {
    ("sgd", "full"): {"standard": (-.5, .5, 1), "ntk": (-.5, -.5, 0), "mup": (0, 0, 0), "mean_field": (-1, -1, -1)},
    ("sgd", "none"): {"standard": (-.5, 0, .5), "ntk": (-.5, -1, -.5), "mup": (0, -.5, 0),
                      "mean_field": (-1, -1.5, -1)},
    ("adam", "full"): {"standard": (0, 1, 1), "ntk": (0, .5, .5), "mup": (.5, 1, .5), "mean_field": (0, .5, 0)},
    ("adam", "none"): {"standard": (0, .5, .5), "ntk": (0, 0, 0), "mup": (.5, .5, 0), "mean_field": (0, 0, -.5)},
    ("adafactor", "full"): {"standard": (0, .5, .5), "ntk": (0, .5, .5), "mup": (0, .5, 0), "mean_field": (0, .5, 0)},
    ("adafactor", "none"): {p: (0, 0, 0) for p in AB},
}


def _alignment(al: str) -> tuple[float, float, float]:
    if al in NAMED:
        return NAMED[al]
    alpha, omega, u = (float(v) for v in al.split(","))
    return alpha, omega, u


def _constraints(p: str, opt: str, al: str) -> tuple[np.ndarray, np.ndarray, list[tuple[float | None, float | None]]]:
    """A x <= b over x = (c_1, c_h, c_L, r_1, r_h, G), row by row from reference/theory.md section 2's table.

    Each r is bounded above by every term of its min (it enters later constraints with a + sign, so the LP takes
    it at the min); G likewise by both terms of min(a_L + b_L, 2 a_L + c_L) (SGD only).
    """
    (a1, _), (ah, _), (aL, bL) = AB[p]
    alpha, omega, u = _alignment(al)
    rows: list[tuple[list[float], float]] = []

    def at_least(coef: list[float], const: float) -> None:  # coef . x + const >= 0
        rows.append(([-v for v in coef], const))

    r1, rh = [0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 1, 0]
    if opt == "sgd":  # r_1 = g_1 + a_1 + c_1, g_i = G + a_i; readout update 2a + c
        u1, uh, uL = ([1, 0, 0, 0, 0, 1], 2 * a1), ([0, 1, 0, 0, 0, 1], 2 * ah), ([0, 0, 1, 0, 0, 0], 2 * aL)
    elif opt == "adam":  # a + c
        u1, uh, uL = ([1, 0, 0, 0, 0, 0], a1), ([0, 1, 0, 0, 0, 0], ah), ([0, 0, 1, 0, 0, 0], aL)
    else:  # adafactor: r_1 = c_1, hidden 1/2 + c, logits a + b + c
        u1, uh, uL = ([1, 0, 0, 0, 0, 0], 0.0), ([0, 1, 0, 0, 0, 0], HALF), ([0, 0, 1, 0, 0, 0], aL + bL)
    sub = lambda x, y: [i - j for i, j in zip(x, y, strict=True)]  # noqa: E731
    add = lambda x, y: [i + j for i, j in zip(x, y, strict=True)]  # noqa: E731
    at_least(sub(u1[0], r1), u1[1])  # r_1 <= U_1
    at_least(sub(uh[0], rh), uh[1] - alpha)  # r_h <= U_h - alpha
    at_least(add(sub(uh[0], rh), r1), uh[1] - u)  # r_h <= U_h + r_1 - u
    at_least(sub(r1, rh), HALF - omega)  # r_h <= 1/2 + r_1 - omega
    at_least(rh, aL + bL - omega)  # logits: a + b + r_L - omega >= 0
    at_least(uL[0], uL[1] - alpha)
    at_least(add(uL[0], rh), uL[1] - u)
    if opt == "sgd":
        rows.append(([0, 0, 0, 0, 0, 1], aL + bL))
        rows.append(([0, 0, -1, 0, 0, 1], 2 * aL))
    c_lo = 0.0 if opt == "adafactor" else None  # Adafactor: all c_l >= 0
    bounds: list[tuple[float | None, float | None]] = [(c_lo, None)] * 3 + [(0.0, None)] * 2
    bounds.append((None, None) if opt == "sgd" else (0.0, 0.0))
    return np.array([r[0] for r in rows], float), np.array([r[1] for r in rows], float), bounds


def _lp(obj: np.ndarray, A: np.ndarray, b: np.ndarray, bounds: list, eq: np.ndarray | None = None) -> float:
    res = linprog(obj, A_ub=A, b_ub=b, A_eq=eq, b_eq=None if eq is None else np.zeros(len(eq)), bounds=bounds,
                  method="highs")
    assert res.status == 0, res.message
    return round(float(res.fun), 9) + 0.0


@functools.cache
def solve(p: str, opt: str, al: str) -> tuple[tuple[float, float, float], bool, float]:
    """(c per layer, unique, smallest shared c): the smallest total c, then each c's range on that face."""
    A, b, bounds = _constraints(p, opt, al)
    total = np.array([1, 1, 1, 0, 0, 0], float)
    best = _lp(total, A, b, bounds)
    A2, b2 = np.vstack([A, total]), np.append(b, best + 1e-10)
    lo, hi = [], []
    for i in range(3):
        e = np.eye(6)[i]
        lo.append(_lp(e, A2, b2, bounds))
        hi.append(-_lp(-e, A2, b2, bounds))
    shared = _lp(np.eye(6)[0], A, b, bounds, eq=np.array([[1, -1, 0, 0, 0, 0], [0, 1, -1, 0, 0, 0]], float))
    return (lo[0], lo[1], lo[2]), all(h - m <= 1e-6 for m, h in zip(lo, hi, strict=True)), shared


def stable(p: str, opt: str, al: str, c: tuple[float, float, float]) -> bool:
    """Whether exponents c satisfy reference/theory.md section 2's constraints (some r, G make them feasible)."""
    A, b, bounds = _constraints(p, opt, al)
    fixed = [(v, v) for v in c] + bounds[3:]
    return linprog(np.zeros(6), A_ub=A, b_ub=b, bounds=fixed, method="highs").status == 0


def eps_exponents(p: str, c_out: float) -> tuple[float, float, float]:
    """reference/theory.md section 5: g_i = a_i + a_{L+1} + min(b_{L+1}, c_{L+1}) (i <= L), g_{L+1} = a_{L+1}."""
    (a1, _), (ah, _), (aL, bL) = AB[p]
    m = min(bL, c_out)
    return a1 + aL + m, ah + aL + m, aL


def oracle(p: str, opt: str, al: str, lr_mode: str, n: int, base: int, beta: float, gamma, mult, init, eps: float,
           eps_mode: str) -> dict[str, tuple[float, float, float, float, float | None]]:
    """Per layer: (c in use, multiplier, init std, lr, epsilon)."""
    c, _, _ = solve(p, opt, al)
    used = c if lr_mode == "per_layer" else (max(c),) * 3  # section 3: the binding layer sets a global LR
    g = eps_exponents(p, used[2])
    out = {}
    for i, name in enumerate(LAYERS):
        a, b = AB[p][i]
        epsilon = None if opt != "adam" else eps if eps_mode == "constant" else eps * (n / base) ** (-g[i])
        out[name] = (used[i], mult[i] * float(n) ** (-a), init[i] * float(n) ** (-b),
                     beta * gamma[i] * (n / base) ** (-used[i]), epsilon)
    return out


def _close(x: float | None, y: float | None) -> bool:
    if x is None or y is None:
        return x is None and y is None
    return math.isclose(x, y, rel_tol=1e-9)


# alignments with a unique answer in the reference's reading (u <= alpha, omega = 1/2, alpha >= 1/2)
ALIGNMENTS = ["full", "none", "0.75,0.5,0.75", "0.9,0.5,0.6"]
WIDTHS = [1, 3, 1000, 4097, 2**20]
BASES = [1, 256, 1000]


@pytest.mark.parametrize(("opt", "al"), list(PUBLISHED))
def test_oracle_reproduces_the_published_table(opt: str, al: str) -> None:
    """The oracle's own check: its LP gives reference/theory.md section 3's 24 entries, each unique."""
    for p, want in PUBLISHED[(opt, al)].items():
        c, unique, shared = solve(p, opt, al)
        assert c == pytest.approx(want, abs=1e-9) and unique, (p, c)
        assert shared == pytest.approx(max(want), abs=1e-9)  # one global LR: the largest c (section 3)


@pytest.mark.parametrize("opt", list(K))
@pytest.mark.parametrize("p", list(AB))
def test_theory_table_matches_oracle(p: str, opt: str) -> None:
    rows = abcscale.theory_table([p], [opt], ALIGNMENTS)
    assert len(rows) == 3 * len(ALIGNMENTS)
    for row in rows:
        al = {NAMED[k]: k for k in NAMED}.get((row.alignment.alpha, row.alignment.omega, row.alignment.u))
        al = al or f"{row.alignment.alpha:g},{row.alignment.omega:g},{row.alignment.u:g}"
        c, unique, _ = solve(p, opt, al)
        i = LAYERS.index(getattr(row.layer, "value", row.layer))
        where = (p, opt, al, LAYERS[i])
        assert (row.a, row.b) == AB[p][i], where
        assert row.c == pytest.approx(c[i], abs=1e-9), where
        assert row.unique is unique is True, where
        assert row.global_c == pytest.approx(max(c), abs=1e-9), where
        if opt == "adam":
            assert row.epsilon_exponent == pytest.approx(eps_exponents(p, c[2])[i], abs=1e-9), where
        else:  # SGD has no epsilon; Adafactor's sits inside its second moment (no epsilon mode)
            assert row.epsilon_exponent is None, where


@pytest.mark.parametrize("opt", list(K))
@pytest.mark.parametrize("p", list(AB))
def test_recommend_matches_oracle(p: str, opt: str) -> None:
    """Every number of ``recommend`` (abc form) at widths 1 .. 2^20, and its groups' rows the same."""
    rng = random.Random(f"{p}-{opt}")
    for al, lr_mode, n, base in itertools.product(ALIGNMENTS, ("per_layer", "global"), WIDTHS, BASES):
        if rng.random() > 0.3:  # under a third of the grid, the same every run (seeded)
            continue
        gamma, mult, init = ([round(rng.uniform(0.1, 10), 3) for _ in LAYERS] for _ in range(3))
        eps, eps_mode = rng.choice([1e-8, 1e-15]), rng.choice(["per_layer", "constant"])
        beta = rng.choice([3e-3, 0.5])
        given = {"gamma": dict(zip(LAYERS, gamma, strict=True)), "multiplier": dict(zip(LAYERS, mult, strict=True)),
                 "init_scale": dict(zip(LAYERS, init, strict=True))}
        if opt == "adam":
            given.update(epsilon=eps, epsilon_mode=eps_mode)
        rec = abcscale.recommend(p, opt, width=n, base_width=base, beta=beta, alignment=al, lr_mode=lr_mode,
                                 constants=Constants(**given))
        want = oracle(p, opt, al, lr_mode, n, base, beta, gamma, mult, init, eps, eps_mode)
        roles = {getattr(r.role, "value", r.role): r for r in rec.groups.roles}
        for s in rec.layers:
            name = getattr(s.layer, "value", s.layer)
            c, m, sd, lr, epsilon = want[name]
            where = (p, opt, al, lr_mode, n, base, eps_mode, name)
            assert rec.exponents[name].c == pytest.approx(c, abs=1e-9) or lr_mode == "global", where
            assert rec.global_c == pytest.approx(max(solve(p, opt, al)[0]), abs=1e-9), where
            assert _close(s.multiplier, m), (where, s.multiplier, m)
            assert _close(s.init_std, sd), (where, s.init_std, sd)
            assert _close(s.lr, lr), (where, s.lr, lr)
            assert _close(s.epsilon, epsilon), (where, s.epsilon, epsilon)
            r = roles[name]  # the same answer as the abc form's parameter groups
            assert (r.multiplier, r.init_std, r.lr, r.epsilon) == (s.multiplier, s.init_std, s.lr, s.epsilon), where


@pytest.mark.parametrize("opt", list(K))
@pytest.mark.parametrize("p", ["standard", "ntk"])
def test_non_unique_alignment_is_said_and_stable(p: str, opt: str) -> None:
    """u > alpha (reference/theory.md section 2): the answer says it is not unique, and the exponents it gives are
    stable."""
    for al in ("0.5,0.5,1", "0.6,0.5,0.9"):
        assert not solve(p, opt, al)[1]
        rows = abcscale.theory_table([p], [opt], [al])
        c = tuple(r.c for r in rows)
        assert not any(r.unique for r in rows), (p, opt, al)
        assert stable(p, opt, al, c), (p, opt, al, c)
        rec = abcscale.recommend(p, opt, width=4096, base_width=256, beta=1e-2, alignment=al)
        assert rec.unique is False and any("not unique" in w for w in rec.warnings), (p, opt, al, rec.warnings)


@pytest.mark.parametrize("opt", list(K))
def test_convert_follows_the_symmetry(opt: str) -> None:
    """reference/theory.md section 4: (m, s, eta, eps) -> (m t, s / t, eta / t^k, eps t), t = n^-theta,
    theta = a2 - a1."""
    rng = random.Random(opt)
    for (p1, p2), n in itertools.product(itertools.permutations(AB, 2), (7, 4096)):
        lr, mult, init, eps = ([rng.uniform(0.01, 2) for _ in LAYERS] for _ in range(4))
        kw = {"epsilon": [e * 1e-8 for e in eps]} if opt == "adam" else {}
        out = abcscale.convert(opt, p1, p2, width=n, base_width=64, base_lr=1e-2, lr=lr, multiplier=mult,
                               init_std=init, **kw)
        theta = [AB[p2][i][0] - AB[p1][i][0] for i in range(3)]
        # the map is a symmetry (same function and dynamics) exactly when b shifts by -theta on every layer
        assert out.symmetric == all(AB[p2][i][1] == AB[p1][i][1] - theta[i] for i in range(3)), (p1, p2)
        for i, s in enumerate(out.converted.layers):
            t = float(n) ** (-theta[i])
            where = (opt, p1, p2, n, LAYERS[i])
            assert _close(s.multiplier, mult[i] * t), where
            assert _close(s.init_std, init[i] / t), where
            assert _close(s.lr, lr[i] / t ** K[opt]), where
            assert _close(s.epsilon, eps[i] * 1e-8 * t if opt == "adam" else None), where
