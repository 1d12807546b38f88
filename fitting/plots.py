"""PNG plots of a fit (matplotlib, Agg backend): loss vs LR, LR* vs width, loss vs width.

The plots read the fit and the same typed groups the fit was made from (:class:`fitting.table.Prepared`),
one panel per group, in the fit's group order. Many groups are paged: at most :data:`PAGE` panels per PNG
(``lr_vs_width.png``, then ``lr_vs_width_2.png``, ...), so a 64-group table gives pages of a readable size
in seconds, where one tall figure took minutes (tight_layout and tick text over hundreds of axes).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abcscale.fitting.scaling import predict_law
from abcscale.fitting.table import GroupData, Prepared
from abcscale.schemas.fit import FitResult, GroupFit, value_text


def _label(g: GroupFit) -> str:
    # dict.fromkeys drops repeats such as optimizer "adam" / optimizer_variant "adam"
    return " / ".join(dict.fromkeys(value_text(v) for v in g.group.values())) or "all rows"


def _finish_panel(ax, g: GroupFit, xlabel: str, ylabel: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    # a fixed title position: matplotlib otherwise measures every tick label to place it (a tenth of the time)
    ax.set_title(_label(g), fontsize=9, y=1.0, pad=4)
    if ax.has_data():
        ax.legend(fontsize=6, loc="best")
    else:  # a group with no identified optimum at any width: an empty panel on made-up axes said nothing (a review)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.text(0.5, 0.5, f"no {xlabel} has an identified optimum:\nnothing to draw (the fit's warnings say why)",
                transform=ax.transAxes, ha="center", va="center", fontsize=8, color="gray")


#: panels per PNG page, and each panel's size in inches: a full page is 4 x 4 panels, 1520 x 1160 px at 100 dpi.
PAGE = 16
PANEL = (3.8, 2.9)
#: the figure's margins around the grid of panels, in inches (fixed: tight_layout costs seconds per page).
_MARGIN = {"left": 0.9, "right": 0.15, "bottom": 0.5, "top": 0.35}


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=100)
    plt.close(fig)


def _log2(ax, which: str) -> None:
    """Log-2 axis with plain-number labels (mathtext labels cost most of the render time), at most 6 ticks.

    Call after plotting: a range under two octaves would have no major tick, so it gets quarter octaves.
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log", base=2)
    axis.set_major_formatter(FuncFormatter(_pow2_label))
    axis.set_major_locator(LogLocator(base=2, numticks=6))
    axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())
    lo, hi = ax.get_xlim() if which == "x" else ax.get_ylim()
    if lo > 0 and hi / lo < 4:  # under two octaves: ticks every quarter octave
        axis.set_major_locator(LogLocator(base=2, subs=tuple(2.0 ** np.arange(0, 1, 0.25))))


def _size_axis(ax, sizes: Sequence[float]) -> None:
    """Log-2 size axis ticked at the swept sizes themselves (thinned so labels never overlap), each labelled as
    an integer width or in parameter units (215M) when the sizes are parameter counts."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ax.set_xscale("log", base=2)
    ticks: list[float] = []
    lo, hi = (np.log2(max(v, 1e-300)) for v in ax.get_xlim())
    # at most ~8 labels across a panel (a 3.8-inch one holds 8 four-character labels; 6 dropped 256 and 1024 of
    # a sweep 128-1024 predicted at 8192: a review)
    gap = max(hi - lo, 1e-9) / 8
    for v in sorted({float(v) for v in sizes if v > 0}):
        if not ticks or np.log2(v) - np.log2(ticks[-1]) >= gap:
            ticks.append(v)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(size_label))
    ax.xaxis.set_minor_locator(NullLocator())


def size_label(v: float, _pos: object = None) -> str:
    """A size as a tick label: an integer width below 100,000 (512, 16384), else parameter units (215M, 1.3B)."""
    if v < 1e5:
        return f"{v:.0f}"
    for div, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if v >= div:
            return f"{v / div:.3g}{unit}"
    return f"{v:.0f}"  # unreachable: v >= 1e5 has a unit


def _pow2_label(v: float, _pos: object = None) -> str:
    """'2^-11' for a power of two below 1 (LR axes), '2^-5.25' for a quarter octave there (one axis, one
    notation: a range under two octaves is ticked in quarters), plain numbers otherwise (losses)."""
    if v <= 0:
        return ""
    e = np.log2(v)
    if v < 1 and abs(4 * e - round(4 * e)) < 1e-6:
        return f"2^{round(4 * e) / 4:g}"
    return f"{v:.0f}" if v >= 1 and float(v).is_integer() else f"{v:.3g}"


def _short(size: str) -> str:
    """The size column as a legend names it: 'w' for the contract's width, else the column's own name."""
    return "w" if size == "width" else size


def _page(n: int):
    """A figure of ``n`` panels (at most PAGE), up to 4 to a row, with fixed margins."""
    import matplotlib.pyplot as plt

    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    pw, ph = PANEL if n > 3 else (5.2, 3.9)  # a few groups keep the larger one-row panels
    w, h = pw * cols, ph * rows
    fig, axes = plt.subplots(rows, cols, figsize=(w, h), squeeze=False)
    m = _MARGIN
    fig.subplots_adjust(left=m["left"] / w, right=1 - m["right"] / w, bottom=m["bottom"] / h, top=1 - m["top"] / h,
                        wspace=0.35, hspace=0.55 if rows > 1 else 0.2)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def write_plots(fit: FitResult, prep: Prepared, out_dir: Path) -> dict[str, Path]:
    """Write loss_vs_lr.png, lr_vs_width.png and loss_vs_width.png into ``out_dir`` (one panel per group; more
    than PAGE groups continue on ``NAME_2.png``, ``NAME_3.png``, ... keyed ``NAME_2``, ...).

    ``prep`` is the table the fit was made from (``prepare(df, fit.mapping)``); a table whose groups differ
    from the fit's is a ValueError.
    """
    import matplotlib

    matplotlib.use("Agg")
    if [d.key for d in prep.groups] != [g.group for g in fit.groups]:
        raise ValueError("the table's groups are not the fit's: plot a fit over the table it was fitted on")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs = list(zip(fit.groups, prep.groups, strict=True))
    pages = [pairs[i:i + PAGE] for i in range(0, len(pairs), PAGE)] or [[]]
    size = fit.mapping.size_col
    panels = {"loss_vs_lr": _loss_vs_lr, "lr_vs_width": _lr_vs_width, "loss_vs_width": _loss_vs_width}
    paths = {}
    for name, draw in panels.items():
        for k, page in enumerate(pages, start=1):
            fig, axes = _page(max(len(page), 1))
            for ax, (g, data) in zip(axes, page, strict=False):
                draw(ax, g, data, size)
                if name == "loss_vs_lr":  # the column the fit ranked (eval_loss where a table has it)
                    ax.set_ylabel(f"{fit.mapping.loss_col} (x: diverged)")
                elif fit.mapping.size_kind == "params":
                    ax.set_xlabel(f"{size} (parameters)")  # the ticks are in parameter units (215M)
            key = name if k == 1 else f"{name}_{k}"
            paths[key] = out_dir / f"{key}.png"
            _save(fig, paths[key])
    return paths


def _loss_vs_lr(ax: Any, g: GroupFit, data: GroupData, size: str) -> None:
    """Mean loss per LR at each width, diverged LRs on top (x), and each width's fitted optimum."""
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("viridis")
    losses = np.concatenate([r.loss for r in data.widths])
    top = np.nanmax(losses) if np.isfinite(losses).any() else 1.0
    optima = {o.width: o for o in g.per_width}
    for j, r in enumerate(data.widths):
        color = cmap(j / max(len(data.widths) - 1, 1))
        cell = pd.Series(r.loss).groupby(r.x).mean()
        ax.plot(2.0**cell.index, cell.to_numpy(), "o-", ms=3, color=color,
                label=f"{_short(size)}={size_label(r.width)}")
        div = np.unique(r.x[r.diverged])
        if div.size:
            ax.plot(2.0**div, np.full(div.size, top), "x", color=color)
        wo = optima.get(r.width)
        if wo is not None and wo.lr_opt is not None and wo.best_loss is not None:
            lo, hi = (wo.lr_opt, wo.lr_opt) if wo.ci is None else (wo.ci.low, wo.ci.high)
            _marked_interval(ax, np.array([wo.lr_opt]), np.array([wo.best_loss]), np.array([lo]), np.array([hi]),
                             "x", fmt="*", color=color, ms=10)
    _log2(ax, "x")
    _finish_panel(ax, g, "learning rate", "final loss (x: diverged)")


def _marked_interval(ax: Any, value: np.ndarray, at: np.ndarray, lo: np.ndarray, hi: np.ndarray, axis: str,
                     **kw: Any) -> None:
    """Estimates ``value`` (on ``axis``, "x" or "y", placed at ``at`` on the other) with their intervals [lo, hi]
    as error bars. A bootstrap percentile interval at a low level need not contain its estimate, which error
    bars (offsets from the marker) cannot draw: those intervals are drawn as lines beside the marker."""
    inside = (lo <= value) & (value <= hi)
    err = np.where(inside, [value - lo, hi - value], 0.0)
    xy = (value, at) if axis == "x" else (at, value)
    bars = ax.errorbar(*xy, **{f"{axis}err": err}, capsize=3, **kw)
    for a, low, high in zip(at[~inside], lo[~inside], hi[~inside], strict=True):
        line = ([low, high], [a, a]) if axis == "x" else ([a, a], [low, high])
        ax.plot(*line, "-|", color=bars[0].get_color(), lw=1)


def _lr_vs_width(ax: Any, g: GroupFit, data: GroupData, size: str) -> None:
    """LR* per width with its interval, the fitted law with its band, theory's slope and the prediction."""
    ok = [o for o in g.per_width if o.lr_opt is not None]
    if ok:
        w = np.array([o.width for o in ok], dtype=float)
        lr = np.array([o.lr_opt for o in ok])
        lo = np.array([o.ci.low if o.ci else o.lr_opt for o in ok])
        hi = np.array([o.ci.high if o.ci else o.lr_opt for o in ok])
        level = next((o.ci.confidence_level for o in ok if o.ci), None)
        _marked_interval(ax, lr, w, lo, hi, "y", fmt="o",
                         label=f"LR* per {_short(size)}" + (f" ({100 * level:.3g}%)" if level else ""))
    edge = [o for o in g.per_width if o.on_edge and o.grid_argmin_lr]
    if edge:
        ax.plot([o.width for o in edge], [o.grid_argmin_lr for o in edge], "v", color="red", label="on grid edge")
    if g.law is not None:
        level = g.exponent.ci.confidence_level if g.exponent is not None else 0.95
        top = max(max(g.law.widths), g.prediction.width if g.prediction else 0)
        ws = np.geomspace(min(g.law.widths), top, 60)
        preds = [predict_law(g.law, float(x)) for x in ws]
        bands = np.array([p.interval(level) for p in preds])
        # the line is the prediction law (with theory's prior it leans on theory's exponent); the legend gives the
        # fitted exponent every table reports, and the law's own where the prior moved it
        fitted = g.exponent.estimate if g.exponent is not None else g.law.exponent
        law = "" if abs(g.law.exponent - fitted) < 5e-4 else f", line {g.law.exponent:.3f} with theory's prior"
        ax.plot(ws, [2.0**p.mean for p in preds], "-", label=f"fit e={fitted:.3f}{law}")
        ax.fill_between(ws, 2.0 ** bands[:, 0], 2.0 ** bands[:, 1], alpha=0.2, label=f"{100 * level:.3g}% band")
        # a global LR's theory is a span (full to no alignment): both ends, dashed and dotted
        for j, th in enumerate(g.theory_span or ([] if g.theory_exponent is None else [g.theory_exponent])):
            ax.plot(ws, 2.0**g.law.log2_constant * (ws / g.law.base_width) ** th, "--" if j == 0 else ":",
                    color="gray", label=f"theory e={th:g}")
    if g.prediction is not None:
        p = g.prediction
        _marked_interval(ax, np.array([p.lr]), np.array([p.width]), np.array([p.ci.low]), np.array([p.ci.high]),
                         "y", fmt="s", color="black", label=f"prediction {p.lr:.3g} (safe-side {p.safe_lr:.3g})")
    _size_axis(ax, [o.width for o in g.per_width] + ([g.prediction.width] if g.prediction else []))
    _log2(ax, "y")
    _finish_panel(ax, g, size, "optimal LR")


def _loss_vs_width(ax: Any, g: GroupFit, data: GroupData, size: str) -> None:
    """The best loss per width and the fitted loss law."""
    ok = [o for o in g.per_width if o.best_loss is not None]
    if ok:
        ax.plot([o.width for o in ok], [o.best_loss for o in ok], "o", label=f"best loss per {_short(size)}")
    if g.loss_law is not None and ok:
        ws = np.geomspace(min(o.width for o in ok), max(o.width for o in ok), 60)
        L = g.loss_law
        ax.plot(ws, L.E.estimate + L.A.estimate * ws ** (-L.alpha.estimate), "-",
                label=f"E + A w^-alpha, alpha={L.alpha.estimate:.2f}")
    _size_axis(ax, [o.width for o in g.per_width])
    _finish_panel(ax, g, size, "loss at the optimum")
