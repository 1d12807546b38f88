"""Fit a sweep table: optimum per width, the across-width law, theory verdict, constants, loss law.

``fit_table`` is what the CLI (``abcscale fit``) and the service call; it is deterministic for a seed
and returns a :class:`schemas.fit.FitResult` with no NaN or inf anywhere (None instead).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abcscale import theory
from abcscale.fitting.losslaw import fit_loss_law
from abcscale.fitting.optimum import Cells, Optimum, fit_optimum
from abcscale.fitting.predict import predict_group, prediction_layers
from abcscale.fitting.scaling import fit_law, predict_law, t_quantile
from abcscale.fitting.table import Prepared, TableError, prepare, read_table, table_hash
from abcscale.schemas.fit import (
    Basin,
    ColumnMapping,
    ConstantFit,
    Estimate,
    FitResult,
    GroupFit,
    Provenance,
    WidthOptimum,
)

__all__ = ["read_table", "fit_table", "fit_file", "TableError", "theory_for_group"]

#: half-width of the local fit's window around the grid argmin, in octaves.
WINDOW_OCTAVES = 1.0


def _f(x: Any) -> float | None:
    """A JSON-safe float: None for NaN/inf/None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _pair(p: tuple[float, float] | None, fn=lambda v: v) -> tuple[float, float] | None:
    if p is None or not all(math.isfinite(v) for v in p):
        return None
    return (float(fn(p[0])), float(fn(p[1])))


def _py(v: Any) -> Any:
    """Group values as plain JSON scalars (numpy scalars and NaN become Python values / None)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _cells(x: np.ndarray, loss: np.ndarray, seeds: np.ndarray) -> Cells:
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
    return Cells(ux, mean, n_ok.astype(int), n_div.astype(int), sd_rel, int(np.unique(seeds).size), sd_dof)


def theory_for_group(group: dict[str, Any], alignment: str | None) -> tuple[float | None, str | None]:
    """The exponent theory predicts for this group's swept LR, or None and why not."""
    missing = [k for k in ("parameterization", "optimizer", "lr_mode") if group.get(k) is None]
    if missing:
        return None, "no theory exponent: the table has no " + ", ".join(missing) + " column"
    al = alignment if alignment is not None else group.get("alignment")
    try:
        return theory.theory_exponent(str(group["parameterization"]), str(group["optimizer"]), al,
                                      str(group["lr_mode"])), None
    except ValueError as exc:
        return None, f"no theory exponent: {exc}"


def _width_optimum(width: int, cells: Cells, opt: Optimum) -> WidthOptimum:
    def two(v: float) -> float:
        return 2.0**v

    return WidthOptimum(
        width=width,
        lr_opt=_f(2.0**opt.x_opt) if opt.identified and opt.x_opt is not None else None,
        ci95=_pair(opt.ci95, two) if opt.identified else None,
        on_edge=opt.on_edge,
        identified=opt.identified,
        grid_argmin_lr=_f(2.0**opt.x_argmin) if opt.x_argmin is not None else None,
        best_loss=_f(opt.best_loss),
        largest_stable_lr=_f(2.0**opt.x_stable) if opt.x_stable is not None else None,
        curvature=_f(opt.curvature),
        band_0p1=_pair(opt.band_0p1, two),
        band_0p5=_pair(opt.band_0p5, two),
        model=opt.model,
        n_runs=int(cells.n_ok.sum() + cells.n_div.sum()),
        n_diverged=int(cells.n_div.sum()),
        n_seeds=cells.n_seeds,
        message="; ".join(opt.notes) or None,
    )


def _anchor(rows: pd.DataFrame, coords: list[str]) -> dict[str, float]:
    """The best stable cell over all swept coordinates at one width (where each 1-D slice is taken)."""
    cell = rows.groupby(coords, sort=False).agg(m=("loss", "mean"), d=("diverged", "sum"))
    cell = cell[(cell["d"] == 0) & cell["m"].notna()]
    if cell.empty:
        return {}
    best = cell["m"].idxmin()
    best = best if isinstance(best, tuple) else (best,)
    return dict(zip(coords, best, strict=True))


def _slice(rows: pd.DataFrame, anchor: dict[str, float], free: str) -> pd.DataFrame:
    mask = np.ones(len(rows), dtype=bool)
    for c, v in anchor.items():
        if c != free:
            mask &= np.isclose(rows[c].to_numpy(), v)
    return rows[mask]


def _fit_coordinate(rows_by_width: dict[int, pd.DataFrame], coord: str, n_boot: int,
                    rng: np.random.Generator) -> dict[int, tuple[Cells, Optimum]]:
    out = {}
    for w, rows in rows_by_width.items():
        cells = _cells(rows[coord].to_numpy(), rows["loss"].to_numpy(), rows["seed"].to_numpy())
        out[w] = (cells, fit_optimum(cells, n_boot, rng, WINDOW_OCTAVES))
    return out


def _law_inputs(per: dict[int, tuple[Cells, Optimum]]):
    ok = [(w, o) for w, (_, o) in sorted(per.items()) if o.identified]
    widths = np.array([w for w, _ in ok], dtype=float)
    y = np.array([o.x_opt for _, o in ok], dtype=float)
    v = np.array([o.var for _, o in ok], dtype=float)
    draws = np.vstack([o.draws for _, o in ok]) if ok else None
    return ok, widths, y, v, draws


def _estimate(est: float, ci: tuple[float, float], se: float, method: str) -> Estimate:
    return Estimate(estimate=float(est), ci95=(float(ci[0]), float(ci[1])), se=_f(se), method=method)


def _exponent(g: GroupFit, per: dict[int, tuple[Cells, Optimum]], th: float | None, n_boot: int,
              rng: np.random.Generator, confidence_level: float) -> list[str]:
    """The across-width law of LR*, its interval, LOO errors and the theory verdict (fills ``g``)."""
    ok, widths, y, v, draws = _law_inputs(per)
    if widths.size < 2:
        return []
    law = fit_law(widths, y, v, draws, g.base_width, n_boot, rng, confidence_level)
    g.law = law.law
    method = f"WLS, weights 1/(v_w + tau^2), Knapp-Hartung t with {law.law.df} df"
    g.exponent = _estimate(law.law.exponent, law.ci95, law.se, method)
    if law.boot_ci95 is not None:
        g.exponent_boot = _estimate(law.law.exponent, law.boot_ci95, math.sqrt(law.law.cov_boot[1][1]),
                                    "cluster bootstrap over widths (cross-check)")
    g.constant = _f(2.0**law.law.log2_constant)
    half = t_quantile(law.law.df, confidence_level) * math.sqrt(law.law.cov[0][0])
    g.constant_ci95 = _pair((law.law.log2_constant - half, law.law.log2_constant + half), lambda t: 2.0**t)
    if law.loo:
        g.loo_error_octaves = _f(np.sqrt(np.mean(np.square(list(law.loo.values())))))
        for wo in g.per_width:
            wo.loo_error_octaves = _f(law.loo.get(wo.width))
    if th is not None:
        g.consistent = bool(law.ci95[0] <= th <= law.ci95[1])
        g.width_independent = g.consistent
    notes = []
    if widths.size == 2:
        notes.append("2 widths: the interval assumes the per-width errors are the only error (no residual "
                      "to check the line against); sweep 4-5 widths")
    if widths.max() / widths.min() < 8:
        notes.append(f"the widths span {widths.max() / widths.min():.3g}x; >= 8x pins the exponent far better")
    if g.consistent is False:
        notes.append(f"fitted exponent {g.exponent.estimate:.3g} (95% [{g.exponent.ci95[0]:.3g}, "
                     f"{g.exponent.ci95[1]:.3g}]) is inconsistent with theory ({th:g}): the constant is not "
                     "width-independent")
    kl = [o.k_left for _, o in ok if o.k_left is not None and o.k_left > 0]
    kr = [o.k_right for _, o in ok if o.k_right is not None and o.k_right > 0]
    if kl and kr:
        asym = any(o.model == "asymmetric" for _, o in ok)
        g.basin = Basin(k_left=float(np.median(kl)), k_right=float(np.median(kr)),
                        source="asymmetric" if asym else "quadratic")
    if widths.size >= 4:
        best = np.array([o.best_loss for _, o in ok])
        g.loss_law = fit_loss_law(widths, best, np.vstack([o.loss_draws for _, o in ok]), n_boot, rng)
    return notes


def _stability_edge(g: GroupFit, per: dict[int, tuple[Cells, Optimum]], rng: np.random.Generator,
                    confidence_level: float) -> None:
    """The largest stable LR across widths: midpoint of the last stable and first diverged LR, uniform error."""
    edge = [(w, o) for w, (_, o) in sorted(per.items()) if o.x_first_div is not None and o.x_stable is not None]
    if len(edge) < 2:
        return
    widths = np.array([w for w, _ in edge], dtype=float)
    y = np.array([(o.x_stable + o.x_first_div) / 2 for _, o in edge])
    v = np.array([(o.x_first_div - o.x_stable) ** 2 / 12 for _, o in edge])
    fit = fit_law(widths, y, v, None, g.base_width, 0, rng, confidence_level)
    g.edge_law = fit.law
    g.stability_edge = _estimate(fit.law.exponent, fit.ci95, fit.se,
                                 "WLS on the midpoint between the largest stable and the first diverged LR")


def _constant_fits(g: GroupFit, rows: pd.DataFrame, anchors: dict[int, dict[str, float]], constant_cols: list[str],
                   n_boot: int, rng: np.random.Generator, confidence_level: float) -> list[str]:
    """Each swept constant: its coordinate-wise optimum per width, the value at base width, and its drift."""
    notes = []
    by_width = {int(w): sub for w, sub in rows.groupby("width", sort=True) if anchors.get(int(w))}
    for c in constant_cols:
        col = f"k:{c}"
        per = _fit_coordinate({w: _slice(sub, anchors[w], col) for w, sub in by_width.items()}, col, n_boot, rng)
        ok, widths, y, v, draws = _law_inputs(per)
        if widths.size == 0:
            notes.append(f"{c}: no identified optimum at any width (widen its grid)")
            continue
        if widths.size >= 2:
            law = fit_law(widths, y, v, draws, g.base_width, n_boot, rng, confidence_level)
            p0 = predict_law(law.law, g.base_width)
            opt = Estimate(estimate=2.0**p0.mean, ci95=(2.0 ** p0.ci95[0], 2.0 ** p0.ci95[1]),
                           method="across-width fit at the base width")
            drift = _estimate(law.law.exponent, law.ci95, law.se, "WLS + tau^2 (theory: 0)")
            if not drift.ci95[0] <= 0.0 <= drift.ci95[1]:
                notes.append(f"{c}: its optimum drifts with width (exponent {drift.estimate:.3g}, 95% "
                             f"[{drift.ci95[0]:.3g}, {drift.ci95[1]:.3g}]): not width-independent")
        else:
            w0, o0 = ok[0]
            opt = Estimate(estimate=2.0**o0.x_opt, ci95=_pair(o0.ci95, lambda t: 2.0**t),
                           method=f"local quadratic at width {w0}")
            drift = None
        g.constants.append(ConstantFit(name=c, optimum=opt, drift_exponent=drift))
    return notes


def _fit_group(key: dict[str, Any], rows: pd.DataFrame, prep: Prepared, *, target_width: int | None,
               alignment: str | None, base_width: int | None, n_boot: int, rng: np.random.Generator,
               confidence_level: float) -> GroupFit:
    widths_all = sorted(int(w) for w in rows["width"].unique())
    kcols = [f"k:{c}" for c in prep.constant_cols]
    rows_by_width: dict[int, pd.DataFrame] = {}
    anchors: dict[int, dict[str, float]] = {}
    for w, sub in rows.groupby("width", sort=True):
        # with swept constants, LR is fitted on the slice through the best cell (coordinate-wise search)
        anchors[int(w)] = _anchor(sub, ["x", *kcols]) if kcols else {}
        rows_by_width[int(w)] = _slice(sub, anchors[int(w)], "x") if kcols else sub
    if base_width is None:
        bw = rows["bw"].dropna().unique() if "bw" in rows else np.array([])
        base_width = int(bw[0]) if bw.size == 1 else widths_all[0]

    per = _fit_coordinate(rows_by_width, "x", n_boot, rng)
    g = GroupFit(group=key, n_rows=len(rows), n_diverged=int(rows["diverged"].sum()), base_width=base_width,
                 per_width=[_width_optimum(w, c, o) for w, (c, o) in sorted(per.items())])
    warnings: list[str] = []
    th, why = theory_for_group(key, alignment)
    g.theory_exponent = th
    if why:
        warnings.append(why)
    if alignment is not None and key.get("alignment") is not None and str(key["alignment"]) != alignment:
        warnings.append(f"theory uses --alignment {alignment}, not the table's {key['alignment']}")
    bad = [w for w, (_, o) in sorted(per.items()) if not o.identified]
    if bad:
        warnings.append("width(s) " + ", ".join(map(str, bad)) + " have no identified optimum and are left out "
                        "of the across-width fit: " + "; ".join(
                            f"{w}: {per[w][1].notes[-1]}" for w in bad if per[w][1].notes))
    if len(widths_all) == 1:
        warnings.append(f"one width ({widths_all[0]}): the exponent needs at least 2 widths "
                        "(4-5 spanning >= 8x recommended)")
    elif len(widths_all) - len(bad) < 2:
        warnings.append("fewer than 2 widths with an identified optimum: no exponent, nothing to extrapolate; "
                        "widen the learning-rate grid")
    elif len(widths_all) < 4:
        warnings.append(f"{len(widths_all)} widths swept; 4-5 spanning >= 8x are recommended")
    warnings += _exponent(g, per, th, n_boot, rng, confidence_level)
    _stability_edge(g, per, rng, confidence_level)
    warnings += _constant_fits(g, rows, anchors, prep.constant_cols, n_boot, rng, confidence_level)
    if max((wo.n_seeds for wo in g.per_width), default=0) < 2:
        warnings.append("one seed per learning rate: noise is estimated from the fit's residuals; "
                        ">= 2-3 seeds near the optimum are recommended")
    if g.width_independent and target_width and th is not None and g.basin:
        # consistent, but a small residual drift still adds up over a long extrapolation
        drift = abs(g.exponent.estimate - th) * abs(math.log2(target_width / base_width))
        if drift > math.sqrt(0.005 / max(g.basin.k_left, g.basin.k_right)):
            g.width_independent = False
            warnings.append(f"at width {target_width} the residual drift ({drift:.2g} octaves) exceeds the "
                            "0.5% loss band: treat the constant as width-dependent there")
    g.warnings = warnings
    if target_width is not None:
        try:
            g.prediction = predict_group(g, target_width)
            g.prediction.layers = prediction_layers(g, g.prediction, alignment)
        except ValueError as exc:
            g.warnings.append(f"no prediction at width {target_width}: {exc}")
    return g


def fit_table(
    df: pd.DataFrame,
    mapping: ColumnMapping | None = None,
    *,
    target_width: int | None = None,
    alignment: str | None = None,
    base_width: int | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    confidence_level: float = 0.95,
) -> FitResult:
    """Fit every group of a sweep table; raises TableError listing every problem with the input."""
    if not 0 < confidence_level < 1:
        raise ValueError(f"confidence_level: must be in (0, 1), got {confidence_level}")
    if n_boot < 20:
        raise ValueError(f"n_boot: must be >= 20, got {n_boot}")
    for name, v in (("target_width", target_width), ("base_width", base_width)):
        if v is not None and (not isinstance(v, int | np.integer) or v <= 0):
            raise ValueError(f"{name}: must be a positive integer, got {v!r}")
    if alignment is not None:
        from abcscale.schemas.theory import Alignment

        Alignment.parse(alignment)
    mapping = mapping or ColumnMapping()
    prep = prepare(df, mapping)
    frame = prep.frame
    if "base_width" in df.columns and "base_width" not in prep.group_cols:
        frame = frame.assign(bw=pd.to_numeric(df["base_width"], errors="coerce").to_numpy())
    gcols = [f"g:{c}" for c in prep.group_cols]
    groups: list[GroupFit] = []
    parts = frame.groupby(gcols, sort=True, dropna=False) if gcols else [((), frame)]
    for i, (values, rows) in enumerate(parts):
        values = values if isinstance(values, tuple) else (values,)
        key = {c: _py(v) for c, v in zip(prep.group_cols, values, strict=True)}
        rng = np.random.default_rng([seed, i])
        if rows["diverged"].all():
            groups.append(GroupFit(group=key, n_rows=len(rows), n_diverged=len(rows), warnings=[
                "every run in this group diverged: lower the learning-rate grid"]))
            continue
        groups.append(_fit_group(key, rows, prep, target_width=target_width, alignment=alignment,
                                 base_width=base_width, n_boot=n_boot, rng=rng, confidence_level=confidence_level))
    try:
        version = metadata.version("abcscale")
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    prov = Provenance(
        input_hash=table_hash(df), n_rows=prep.n_rows, n_rows_used=prep.n_rows - prep.n_diverged,
        n_diverged=prep.n_diverged, created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        abcscale_version=version,
        settings={"target_width": target_width, "alignment": alignment, "base_width": base_width,
                  "n_boot": n_boot, "seed": seed, "confidence_level": confidence_level,
                  "window_octaves": WINDOW_OCTAVES, "group_cols": prep.group_cols,
                  "constant_cols": prep.constant_cols},
    )
    return FitResult(groups=groups, provenance=prov, mapping=mapping)


def fit_file(path: str | Path, mapping: ColumnMapping | None = None, **kwargs: Any) -> FitResult:
    """``read_table`` then ``fit_table``."""
    return fit_table(read_table(path), mapping, **kwargs)
