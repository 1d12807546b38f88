"""How sharp and how honest the 95% prediction bands are, on sweeps with a known truth (issue 14, item 2).

Each trial draws a sweep as real ones are (fitting.synthetic.misspecified_sweep): widths 32/64/128, 2 seeds, a
half-octave grid centred on theory's line, the true exponent theory's + N(0, 0.15^2), every width's optimum
(the target's too) off the line by N(0, 0.15^2), basins 1-2.5x steeper above the optimum, seed noise 0.1-0.4%
and divergence 1.5-2.5 octaves above the optimum. It is fitted, and the band predicted at 2x, 4x, 8x and 32x the
largest width is checked against the true optimum there. Rows: with theory's exponent (the prior), without it
(free exponent), and two stress cases outside the model: width jitter above the tau prior's scale, and a theory
off by 0.5. A second table gives the 68% band where theory holds and where it is off by 0.25 (inside what the
prior-data check can see from 3 widths). A third gives the free exponent's 95% interval (what `--expect-theory`
tests): its coverage, its width, and how often it leaves out theory's exponent. A fourth gives a covariate table's
joint law (size and token budget): its exponents' 95% intervals, and the 95% band of a new curve's optimum at twice the
largest size. A fifth gives one global LR's bands, where theory's exponent is a span (full to no alignment). A sixth
gives lopsided basins (and a quadratic control) on grids coarser than half an octave: the per-width intervals and
the band at 4x.

Targets (with theory): coverage >= 90%, median width <= 1.5 octaves at 4x and <= 3 at 32x.

Run: ``make bench-coverage`` (2-4 minutes on 2 cores).
"""

from __future__ import annotations

from abcscale.fitting.synthetic import BandRow, ExponentRow, band_study, exponent_study

FACTORS = (2, 4, 8, 32)
CASES: list[tuple[str, int, bool, dict]] = [
    ("theory prior", 300, True, {"exponent_sd": 0.15}),
    ("no theory (free)", 300, False, {"exponent_sd": 0.15}),
    ("theory, jitter sd 0.25", 100, True, {"exponent_sd": 0.15, "jitter_sd": 0.25}),
    ("theory off by 0.5", 100, True, {"exponent_sd": 0.0, "theory_error": 0.5}),
]


#: the 68% band (printed on every prediction line) where theory holds and where it is off by less than the
#: prior-data check can see with 3 widths (a session-35 review: muP's global-LR drift at small widths is such a case)
CASES_68: list[tuple[str, int, bool, dict]] = [
    ("theory prior", 200, True, {"exponent_sd": 0.15}),
    ("theory off by 0.25", 100, True, {"exponent_sd": 0.0, "theory_error": 0.25}),
]


def _table(results: dict[str, list[BandRow]]) -> str:
    head = "| case | trials | " + " | ".join(f"{f}x coverage | {f}x width" for f in FACTORS) + " |"
    lines = [head, "|" + "---|" * (2 + 2 * len(FACTORS))]
    for name, rows in results.items():
        cells = " | ".join(f"{r.coverage:.0%} | {r.median_octaves:.2f}" for r in rows)
        lines.append(f"| {name} | {rows[0].n} | {cells} |")
    return "\n".join(lines)


def test_band_coverage_and_width():
    results = {name: band_study(n, theory=th, seed=i, factors=FACTORS, **kw)
               for i, (name, n, th, kw) in enumerate(CASES)}
    print("\n95% bands (width = median, octaves of LR):\n" + _table(results))
    prior = {r.factor: r for r in results["theory prior"]}
    assert all(r.coverage >= 0.90 for r in prior.values())
    assert prior[4].median_octaves <= 1.5 and prior[32].median_octaves <= 3.0
    assert all(r.coverage >= 0.90 for r in results["no theory (free)"])


def test_68_band_coverage_where_theory_holds_and_where_it_is_slightly_off():
    results = {name: band_study(n, theory=th, seed=10 + i, factors=FACTORS, level=0.68, **kw)
               for i, (name, n, th, kw) in enumerate(CASES_68)}
    print("\n68% bands (width = median, octaves of LR):\n" + _table(results))
    held = results["theory prior"]
    assert all(0.55 <= r.coverage <= 0.9 for r in held)  # near its level where the model holds
    # no claim is asserted for the off-by-0.25 row: the README quotes what it measures (under its level)


#: one global LR (muP + Adam): theory's exponent is -1 under full alignment and -0.5 under none, so the prior
#: spans both (session 50; a point prior at -1 missed a GPU run's truth by 1.2-2.2 octaves). The truth is drawn at
#: each end, between them and past the span, every grid centred on -1 (theory's full-alignment line)
GLOBAL = {"parameterization": "mup", "optimizer": "adam", "alignment": "full", "lr_mode": "global"}
CASES_GLOBAL: list[tuple[str, int, dict]] = [
    ("truth at full alignment (-1 + N(0, 0.15^2))", 300, {"exponent_sd": 0.15}),
    ("truth between (-0.75)", 300, {"exponent_sd": 0.0, "theory_error": 0.25}),
    ("truth at no alignment (-0.5 + N(0, 0.15^2))", 300, {"exponent_sd": 0.15, "theory_error": 0.5}),
    ("truth past the span (-0.25)", 300, {"exponent_sd": 0.0, "theory_error": 0.75}),
]


def test_global_lr_bands_across_theory_span():
    results = {name: band_study(n, theory=True, seed=60 + i, factors=FACTORS, group=GLOBAL, theory_exponent=-1.0,
                                **kw) for i, (name, n, kw) in enumerate(CASES_GLOBAL)}
    print("\n95% bands under one global LR, theory's span -1..-0.5 (width = median, octaves of LR):\n"
          + _table(results))
    inside = [rows for name, rows in results.items() if "past" not in name]
    assert all(r.coverage >= 0.90 for rows in inside for r in rows), results
    assert all(r.median_octaves <= 2.0 for rows in inside for r in rows if r.factor == 4), results
    assert all(r.coverage >= 0.85 for r in results["truth past the span (-0.25)"]), results


W5 = (32, 64, 128, 256, 512)
#: (name, trials, sweep): the free exponent's 95% interval; theory's exponent is 0, the truth theory's + N(0, sd^2)
#: (``exponent_sd``, 0.12 unless said) or exactly off by ``theory_error``
CASES_EXPONENT: list[tuple[str, int, dict]] = [
    ("3 widths, 2 seeds, half-octave grid, jitter 0.15", 200, {}),
    ("5 widths, 2 seeds, half-octave grid, jitter 0.15", 200, {"widths": W5}),
    ("5 widths, 3 seeds, half-octave grid, no jitter", 200, {"widths": W5, "seeds": 3, "jitter_sd": 0.0}),
    ("5 widths, 1 seed, 1-3-10 grid, jitter 0.05", 200, {"widths": W5, "seeds": 1, "jitter_sd": 0.05, "step": 1.66}),
    ("theory exact: 5 widths, 3 seeds, half-octave, no jitter", 200,
     {"widths": W5, "seeds": 3, "jitter_sd": 0.0, "exponent_sd": 0.0}),
    ("theory off by 0.5: 5 widths, 1 seed, 1-3-10 grid", 100,
     {"widths": W5, "seeds": 1, "jitter_sd": 0.05, "step": 1.66, "exponent_sd": 0.0, "theory_error": 0.5}),
    ("theory off by 0.25: 3 widths, 2 seeds, half-octave", 100, {"exponent_sd": 0.0, "theory_error": 0.25}),
]


def test_exponent_interval_coverage_width_and_theory_test():
    rows: dict[str, ExponentRow] = {name: exponent_study(n, seed=20 + i, **kw)
                                    for i, (name, n, kw) in enumerate(CASES_EXPONENT)}
    lines = ["| case | trials | 95% coverage | median width | theory's exponent left out |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {r.n} | {r.coverage:.1%} | {r.median_width:.3f} | {r.rejects_theory:.0%} |"
              for name, r in rows.items()]
    print("\nThe free exponent's 95% interval (width in octaves of LR per doubling of width):\n" + "\n".join(lines))
    # near its level: 200 trials put a 95% interval's coverage within +-3% (100 trials: +-4.4%) two times in three
    assert all(r.coverage >= (0.88 if r.n >= 200 else 0.85) for r in rows.values())
    assert rows["theory exact: 5 widths, 3 seeds, half-octave, no jitter"].rejects_theory <= 0.12
    # the scale held at >= 1 left theory in every one of these intervals (0%); the grid's edges drop widths here
    assert rows["theory off by 0.5: 5 widths, 1 seed, 1-3-10 grid"].rejects_theory >= 0.25


#: (name, trials, covariate_sweep arguments): a covariate table's joint law (tests/fitting/covariate_sweeps.py:
#: sizes 64-512 x token budgets 1e8-1.6e9, each curve's optimum jittered off the law, exponents drawn around
#: N -0.8, D -0.3); its exponents' 95% intervals against the truth
T3 = (1e8, 4e8, 1.6e9)
CASES_JOINT: list[tuple[str, int, dict]] = [
    ("4 sizes x 3 budgets, 1 seed, jitter 0.1", 60, {"tokens": T3, "seeds": 1, "jitter": 0.1}),
    ("4 sizes x 3 budgets, 2 seeds, jitter 0.05", 60, {"tokens": T3, "seeds": 2, "jitter": 0.05}),
    ("4 sizes x 3 budgets, 1 seed, 2x asymmetric basins", 60, {"tokens": T3, "seeds": 1, "jitter": 0.1,
                                                               "asymmetry": 2.0}),
    ("3 sizes x 2 budgets, 1 seed, jitter 0.1", 60, {"sizes": (64, 128, 256), "tokens": (1e8, 4e8), "seeds": 1,
                                                     "jitter": 0.1}),
]


def test_joint_law_exponent_coverage_and_width():
    import math

    import numpy as np

    from abcscale.fitting import fit_table
    from abcscale.fitting.joint import predict_joint
    from abcscale.schemas.fit import ColumnMapping
    from tests.fitting.covariate_sweeps import covariate_sweep

    lines = ["| case | trials | N: 95% coverage | N: median width | D: 95% coverage | D: median width | new curve "
             "at 2x the largest size: 95% band coverage | its median width (octaves) |",
             "|---|---|---|---|---|---|---|---|"]
    cover, band = {}, {}
    for i, (name, n, kw) in enumerate(CASES_JOINT):
        rng = np.random.default_rng(40 + i)
        hits, widths, bands = {"N": 0, "D": 0}, {"N": [], "D": []}, []
        sizes = kw.get("sizes", (64, 128, 256, 512))
        for t in range(n):
            truth = {"N": rng.normal(-0.8, 0.2), "D": rng.normal(-0.3, 0.1)}
            law = fit_table(covariate_sweep(batches=(32,), seed=1000 * i + t, truth=truth, **kw),
                            ColumnMapping(size_col="N", covariates=["D"]), n_boot=50, seed=t).joint[0]
            for k in hits:
                hits[k] += law.exponents[k].ci.contains(truth[k])
                widths[k].append(law.exponents[k].ci.high - law.exponents[k].ci.low)
            # a new curve (its own jitter) at twice the largest size, the middle budget: what a team trains next
            size = 2 * sizes[-1]
            x = math.log2(1e-2) + truth["N"] * math.log2(size / sizes[0]) + kw["jitter"] * rng.standard_normal()
            p = predict_joint(law, size, {"D": 4e8})
            bands.append((math.log2(p.ci95[0]) <= x <= math.log2(p.ci95[1]), math.log2(p.ci95[1] / p.ci95[0])))
        cover[name] = min(hits.values()) / n
        band[name] = sum(b for b, _ in bands) / n
        lines.append(f"| {name} | {n} | {hits['N'] / n:.0%} | {np.median(widths['N']):.3f} | {hits['D'] / n:.0%} | "
                     f"{np.median(widths['D']):.3f} | {band[name]:.0%} | {np.median([w for _, w in bands]):.2f} |")
    print("\nA covariate table's joint law, its exponents' 95% intervals (width: log2 LR per log2 of the axis):\n"
          + "\n".join(lines))
    assert all(c >= 0.85 for c in cover.values()), cover  # 60 trials put 95% within +-5.6% two times in three
    # a new curve's band: jittered curves were under-covered (81-87%) while tau^2 was measured against the floored
    # variances; the asymmetric basins' shared bias is covered only where the binomial gate sees it (README)
    assert all(b >= 0.85 for k, b in band.items() if "asymmetric" not in k), band


#: lopsided basins on grids coarser than half an octave (session 55, from session 54's statistician's audit): the
#: loss rises as 2(e^d - 1 - d) about the optimum (linear on the flat side, exponential on the steep one: it rises
#: about 2x more an octave above than below), 1% at +-1 octave on the quadratic scale, seed noise 0.2%; widths
#: 32-256 share one optimum (muP-like) a random offset from the grid; (name, trials, grid, seeds, basin)
COARSE_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)
TWO_X_GRID = tuple(2.0**k for k in range(-13, -1))
#: (name, trials, grid, seeds, basin, off): ``off`` moves the optimum 0.1-0.3 octave per doubling of width away
#: from theory's (muP + Adam: 0), either way, so the exponent's interval has a truth to miss
CASES_LOPSIDED: list[tuple[str, int, tuple[float, ...], int, str, bool]] = [
    ("lopsided, 1-3-10 grid, 1 seed", 100, COARSE_GRID, 1, "lopsided", False),
    ("lopsided, 1-3-10 grid, 2 seeds", 100, COARSE_GRID, 2, "lopsided", False),
    ("lopsided, 1-3-10 grid, 2 seeds, theory 0.1-0.3 off", 100, COARSE_GRID, 2, "lopsided", True),
    ("lopsided, 2x grid, 1 seed", 100, TWO_X_GRID, 1, "lopsided", False),
    ("lopsided, 2x grid, 2 seeds", 100, TWO_X_GRID, 2, "lopsided", False),
    ("3.9x lopsided, 1-3-10 grid, 2 seeds, theory 0.1-0.3 off", 100, COARSE_GRID, 2, "lopsided 3.9x", True),
    ("quadratic, 1-3-10 grid, 1 seed", 100, COARSE_GRID, 1, "quadratic", False),
]


def test_lopsided_basins_on_coarse_grids():
    import math

    import numpy as np
    import pandas as pd

    import abcscale

    widths, target = (32, 64, 128, 256), 1024
    lines = ["| case | trials | per-width 95% coverage | median per-width error (octaves) | its median width | 95% "
             "band at 4x: coverage | its median width | 68% band coverage | exponent 95% coverage | its median width |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    per_width, band95, exponent, band68 = {}, {}, {}, {}
    for i, (name, n, grid, seeds, basin, off) in enumerate(CASES_LOPSIDED):
        rng = np.random.default_rng(60 + i)
        hits, errs, pw_w, b95, bw, b68, ex_hit, ex_w = [], [], [], [], [], [], [], []
        for t in range(n):
            c0 = math.log2(1e-2) + rng.uniform(-1, 1)
            slope = float(rng.choice([-1, 1]) * rng.uniform(0.1, 0.3)) if off else 0.0
            truth = {w: c0 + slope * math.log2(w / widths[0]) for w in (*widths, target)}
            rows = []
            for w in widths:
                for lr in grid:
                    d = math.log2(lr) - truth[w]
                    shape = {"lopsided": 2 * (math.exp(d) - 1 - d), "lopsided 3.9x": (math.exp(2 * d) - 1 - 2 * d) / 2,
                             "quadratic": d * d}[basin]
                    for s in range(seeds):
                        loss = (2 + 20 * w**-0.5) * (1 + 0.01 * shape) * (1 + 0.002 * rng.standard_normal())
                        rows.append({"width": w, "lr": lr, "seed": s, "loss": loss})
            g = abcscale.fit(pd.DataFrame(rows), target_width=target, parameterization="mup", optimizer="adam",
                             lr_mode="per_layer", mapping={"lr_col": "lr", "loss_col": "loss", "seed_col": "seed"},
                             n_boot=300, seed=t).groups[0]
            for pw in g.per_width:
                if pw.lr_opt is not None and pw.ci is not None:
                    hits.append(math.log2(pw.ci.low) <= truth[pw.width] <= math.log2(pw.ci.high))
                    errs.append(abs(math.log2(pw.lr_opt) - truth[pw.width]))
                    pw_w.append(math.log2(pw.ci.high / pw.ci.low))
            p, x_target = g.prediction, truth[target]
            b95.append(math.log2(p.ci95[0]) <= x_target <= math.log2(p.ci95[1]))
            bw.append(math.log2(p.ci95[1] / p.ci95[0]))
            b68.append(math.log2(p.ci68[0]) <= x_target <= math.log2(p.ci68[1]))
            if g.exponent is not None:
                ex_hit.append(g.exponent.ci.low <= slope <= g.exponent.ci.high)
                ex_w.append(g.exponent.ci.high - g.exponent.ci.low)
        per_width[name], band95[name], exponent[name] = float(np.mean(hits)), float(np.mean(b95)), np.mean(ex_hit)
        band68[name] = float(np.mean(b68))
        lines.append(f"| {name} | {n} | {np.mean(hits):.0%} | {np.median(errs):.2f} | {np.median(pw_w):.2f} | "
                     f"{np.mean(b95):.0%} | {np.median(bw):.2f} | {np.mean(b68):.0%} | {np.mean(ex_hit):.0%} | "
                     f"{np.median(ex_w):.2f} |")
    print("\nLopsided basins on coarse grids (widths 32-256, the band at 1024, theory muP + Adam per layer):\n"
          + "\n".join(lines))
    # before session 55 (1fc1af5) the one-seed 1-3-10 row covered 56% per width (error 1.17 octaves) and 0% at 68%
    assert all(c >= 0.9 for c in per_width.values()), per_width
    assert all(c >= 0.9 for c in band95.values()), band95
    # the seeds' spread in a lopsided bracket's interval (session 56) without the bracket's drift in each width's own
    # error covered the off-theory row's exponent 90% of 100 sweeps
    assert all(c >= 0.93 for c in exponent.values()), exponent
    # the 3.9x basin's bracket sits 0.6-0.8 octave on the flat side: with the grid floor's shared part alone (0.41
    # octave) its 68% band covered 57% of sweeps (a code review, session 56)
    assert all(c >= 0.6 for c in band68.values()), band68
