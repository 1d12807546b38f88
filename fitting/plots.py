"""PNG plots of a fit (matplotlib, Agg backend): loss vs LR, LR* vs width, loss vs width."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from abcscale.fitting.scaling import predict_law
from abcscale.fitting.table import prepare
from abcscale.schemas.fit import ColumnMapping, FitResult, GroupFit


def _label(g: GroupFit) -> str:
    # dict.fromkeys drops repeats such as optimizer "adam" / optimizer_variant "adam"
    return " / ".join(dict.fromkeys(str(v) for v in g.group.values())) or "all rows"


def _finish_panel(ax, g: GroupFit, xlabel: str, ylabel: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(_label(g), fontsize=9)
    ax.legend(fontsize=7)


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _log2(ax, which: str) -> None:
    """Log-2 axis with plain-number labels (mathtext labels cost most of the render time).

    Call after plotting: a range under two octaves would have no major tick, so it gets quarter octaves.
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log", base=2)
    axis.set_major_formatter(FuncFormatter(_pow2_label))
    axis.set_minor_formatter(NullFormatter())
    lo, hi = ax.get_xlim() if which == "x" else ax.get_ylim()
    if lo > 0 and hi / lo < 4:  # under two octaves: ticks every quarter octave
        axis.set_major_locator(LogLocator(base=2, subs=tuple(2.0 ** np.arange(0, 1, 0.25))))


def _pow2_label(v: float, _pos: object = None) -> str:
    """'2^-11' for a power of two below 1 (LR axes), plain numbers otherwise (widths, quarter octaves)."""
    if v <= 0:
        return ""
    e = np.log2(v)
    if v < 1 and abs(e - round(e)) < 1e-9:
        return f"2^{int(round(e))}"
    return f"{v:.0f}" if v >= 1 and float(v).is_integer() else f"{v:.3g}"


def _grid(n: int):
    import matplotlib.pyplot as plt

    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.9 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def write_plots(
    fit: FitResult, df: pd.DataFrame, out_dir: Path, mapping: ColumnMapping | None = None
) -> dict[str, Path]:
    """Write loss_vs_lr.png, lr_vs_width.png and loss_vs_width.png into ``out_dir`` (one panel per group)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    prep = prepare(df, mapping or fit.mapping)
    frame = prep.frame
    n = max(len(fit.groups), 1)
    paths = {name: out_dir / f"{name}.png" for name in ("loss_vs_lr", "lr_vs_width", "loss_vs_width")}

    def rows_of(g: GroupFit) -> pd.DataFrame:
        mask = np.ones(len(frame), dtype=bool)
        for k, v in g.group.items():
            col = frame[f"g:{k}"]
            mask &= col.isna().to_numpy() if v is None else (col.astype(str) == str(v)).to_numpy()
        return frame[mask]

    fig, axes = _grid(n)
    for ax, g in zip(axes, fit.groups, strict=False):
        rows = rows_of(g)
        cmap = plt.get_cmap("viridis")
        widths = sorted(rows["width"].unique())
        for j, w in enumerate(widths):
            color = cmap(j / max(len(widths) - 1, 1))
            sub = rows[rows["width"] == w]
            cell = sub.groupby("x")["loss"].mean()
            ax.plot(2.0**cell.index, cell.to_numpy(), "o-", ms=3, color=color, label=f"w={w}")
            div = sub[sub["diverged"]]
            if len(div):
                top = np.nanmax(rows["loss"]) if rows["loss"].notna().any() else 1.0
                ax.plot(2.0 ** div["x"].unique(), np.full(div["x"].nunique(), top), "x", color=color)
            wo = next((o for o in g.per_width if o.width == w), None)
            if wo is not None and wo.lr_opt is not None and wo.best_loss is not None:
                err = None
                if wo.ci95 is not None:
                    err = [[wo.lr_opt - wo.ci95[0]], [wo.ci95[1] - wo.lr_opt]]
                ax.errorbar([wo.lr_opt], [wo.best_loss], xerr=err, fmt="*", color=color, ms=10, capsize=3)
        _log2(ax, "x")
        _finish_panel(ax, g, "learning rate", "final loss (x: diverged)")
    _save(fig, paths["loss_vs_lr"])

    fig, axes = _grid(n)
    for ax, g in zip(axes, fit.groups, strict=False):
        ok = [o for o in g.per_width if o.lr_opt is not None]
        if ok:
            w = np.array([o.width for o in ok], dtype=float)
            lr = np.array([o.lr_opt for o in ok])
            lo = np.array([o.ci95[0] if o.ci95 else o.lr_opt for o in ok])
            hi = np.array([o.ci95[1] if o.ci95 else o.lr_opt for o in ok])
            ax.errorbar(w, lr, yerr=[lr - lo, hi - lr], fmt="o", capsize=3, label="LR* per width (95%)")
        edge = [o for o in g.per_width if o.on_edge and o.grid_argmin_lr]
        if edge:
            ax.plot([o.width for o in edge], [o.grid_argmin_lr for o in edge], "v", color="red", label="on grid edge")
        if g.law is not None:
            top = max(max(g.law.widths), g.prediction.width if g.prediction else 0)
            ws = np.geomspace(min(g.law.widths), top, 60)
            preds = [predict_law(g.law, float(x)) for x in ws]
            ax.plot(ws, [2.0**p.mean for p in preds], "-", label=f"fit e={g.law.exponent:.3f}")
            ax.fill_between(ws, [2.0 ** p.ci95[0] for p in preds], [2.0 ** p.ci95[1] for p in preds], alpha=0.2,
                            label="95% band")
            if g.theory_exponent is not None:
                ax.plot(ws, 2.0**g.law.log2_constant * (ws / g.law.base_width) ** g.theory_exponent, "--",
                        color="gray", label=f"theory e={g.theory_exponent:g}")
        if g.prediction is not None:
            p = g.prediction
            ax.errorbar([p.width], [p.lr], yerr=[[p.lr - p.ci95[0]], [p.ci95[1] - p.lr]], fmt="s", color="black",
                        capsize=3, label=f"prediction (safe {p.safe_lr:.3g})")
        _log2(ax, "x")
        _log2(ax, "y")
        _finish_panel(ax, g, "width", "optimal LR")
    _save(fig, paths["lr_vs_width"])

    fig, axes = _grid(n)
    for ax, g in zip(axes, fit.groups, strict=False):
        ok = [o for o in g.per_width if o.best_loss is not None]
        if ok:
            ax.plot([o.width for o in ok], [o.best_loss for o in ok], "o", label="best loss per width")
        if g.loss_law is not None and ok:
            ws = np.geomspace(min(o.width for o in ok), max(o.width for o in ok), 60)
            L = g.loss_law
            ax.plot(ws, L.E.estimate + L.A.estimate * ws ** (-L.alpha.estimate), "-",
                    label=f"E + A w^-alpha, alpha={L.alpha.estimate:.2f}")
        _log2(ax, "x")
        _finish_panel(ax, g, "width", "loss at the optimum")
    _save(fig, paths["loss_vs_width"])
    return paths
