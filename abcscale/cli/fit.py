"""``abcscale fit TABLE``: optimal LRs per width, the exponent across widths, and the theory verdict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from abcscale.cli._common import console, emit_json, err_console, fail

Str = Annotated[str | None, typer.Option()]


def _fmt(x: float | None, spec: str = ".4g") -> str:
    return "-" if x is None else format(x, spec)


def _group_label(group: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in group.items()) or "(all rows)"


def _short(group: dict) -> str:
    return " ".join(str(v) for v in group.values()) or "all"


def print_summary(fit) -> None:
    from rich.table import Table

    t = Table(title=f"log2 LR* = log2 C + e log2(w/base): {fit.provenance.n_rows} rows")
    for col in ("group", "e (95% CI)", "theory", "verdict", "C @ base", "LOO oct"):
        t.add_column(col, overflow="fold")
    for g in fit.groups:
        e = g.exponent
        verdict = {True: "[green]consistent[/]", False: "[red]INCONSISTENT[/]", None: "-"}[g.consistent]
        t.add_row(
            _short(g.group), "-" if e is None else f"{e.estimate:.3f} [{e.ci95[0]:.3f}, {e.ci95[1]:.3f}]",
            _fmt(g.theory_exponent, "g"), verdict,
            "-" if g.constant is None else f"{g.constant:.3g} @ {g.base_width}", _fmt(g.loo_error_octaves, ".2f"),
        )
    console.print(t)
    if fit.groups and fit.groups[0].group:
        console.print("group = " + " ".join(fit.groups[0].group), style="dim")
    for g in fit.groups:
        w = Table(title=f"per width: {_group_label(g.group)}", title_justify="left")
        for col in ("width", "LR*", "95% CI", "max stable", "<0.5% loss"):
            w.add_column(col, no_wrap=True)
        w.add_column("note", overflow="fold")
        for o in g.per_width:
            ci = "-" if o.ci95 is None else f"{o.ci95[0]:.3g}-{o.ci95[1]:.3g}"
            band = "-" if o.band_0p5 is None else f"{o.band_0p5[0]:.3g}-{o.band_0p5[1]:.3g}"
            note = "[yellow]edge[/]" if o.on_edge else ("" if o.identified else "[red]unidentified[/]")
            if o.model == "asymmetric":
                note = (note + " asym").strip()
            w.add_row(str(o.width), _fmt(o.lr_opt, ".3g"), ci, _fmt(o.largest_stable_lr, ".3g"), band, note)
        console.print(w)
        if g.prediction is not None:
            p = g.prediction
            console.print(
                f"prediction at width {p.width}: LR* {p.lr:.4g}  68% [{p.ci68[0]:.4g}, {p.ci68[1]:.4g}]  95% "
                f"[{p.ci95[0]:.4g}, {p.ci95[1]:.4g}]  safe-side {p.safe_lr:.4g}  expected loss penalty "
                f"{100 * p.expected_loss_penalty:.3g}%  (extrapolation x{p.extrapolation_factor:.3g})")
        for msg in g.warnings + (g.prediction.warnings if g.prediction else []):
            console.print(f"[yellow]warning:[/] {msg}")


def _check_theory(fit) -> int:
    """The --expect-theory gate: 1 when a group disagrees with theory or could not be checked."""
    code = 0
    for g in fit.groups:
        label = _group_label(g.group)
        if g.consistent is False:
            e = g.exponent
            err_console.print(f"[red]inconsistent:[/] {label}: exponent {e.estimate:.3f}, 95% interval "
                              f"[{e.ci95[0]:.3f}, {e.ci95[1]:.3f}], theory {g.theory_exponent:g}", highlight=False)
            code = 1
        elif g.consistent is None:
            why = "no exponent was fitted" if g.exponent is None else "no theory exponent applies"
            err_console.print(f"[red]not checked:[/] {label}: {why} ({'; '.join(g.warnings) or 'see summary'})",
                              highlight=False)
            code = 1
    return code


def register(app: typer.Typer, theory_app: typer.Typer) -> None:
    @app.command("fit")
    def fit_cmd(
        table: Annotated[Path, typer.Argument(help="sweep table: results.parquet or any CSV/parquet")],
        out: Annotated[Path | None, typer.Option("--out", help="write the FitResult JSON here")] = None,
        plots: Annotated[Path | None, typer.Option("--plots", help="write PNG plots into this folder")] = None,
        target_width: Annotated[int | None, typer.Option("--target-width", help="predict LR* at this width")] = None,
        size_col: Annotated[str, typer.Option("--size-col", help="width column")] = "width",
        lr_col: Annotated[str, typer.Option("--lr-col", help="learning-rate column")] = "beta",
        loss_col: Annotated[str, typer.Option("--loss-col", help="final loss column")] = "final_loss",
        seed_col: Annotated[str, typer.Option("--seed-col", help="seed column")] = "seed",
        group_cols: Annotated[str | None, typer.Option("--group-cols", help="grouping columns 'a,b'")] = None,
        base_width: Annotated[int | None, typer.Option("--base-width", help="width C refers to")] = None,
        alignment: Annotated[str | None, typer.Option("--alignment", "-a", help="full|none|A,O,U for theory")] = None,
        expect_theory: Annotated[bool, typer.Option("--expect-theory",
                                                    help="exit 1 unless every group agrees with theory")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="print the FitResult JSON")] = False,
        n_boot: Annotated[int, typer.Option("--n-boot", help="bootstrap resamples")] = 1000,
        seed: Annotated[int, typer.Option("--seed", help="bootstrap seed")] = 0,
    ) -> None:
        """Fit optimal LRs per width, their exponent across widths, and compare with theory."""
        from abcscale.fitting.api import TableError, fit_table, read_table
        from abcscale.schemas.fit import ColumnMapping
        from abcscale.schemas.theory import Alignment

        if n_boot < 20:
            fail(f"--n-boot: must be >= 20, got {n_boot}")
        for name, v in (("--target-width", target_width), ("--base-width", base_width)):
            if v is not None and v <= 0:
                fail(f"{name}: must be a positive integer, got {v}")
        if alignment is not None:
            try:
                Alignment.parse(alignment)
            except ValueError as exc:
                fail(f"--alignment: {exc}")
        cols = [c.strip() for c in group_cols.split(",") if c.strip()] if group_cols is not None else None
        mapping = ColumnMapping(size_col=size_col, lr_col=lr_col, loss_col=loss_col, seed_col=seed_col,
                                group_cols=cols)
        try:
            df = read_table(table)
            fit = fit_table(df, mapping, target_width=target_width, alignment=alignment, base_width=base_width,
                            n_boot=n_boot, seed=seed)
        except TableError as exc:
            fail("; ".join(exc.problems))
        if expect_theory:
            absent = [c for c in ("parameterization", "optimizer", "lr_mode")
                      if not any(c in g.group for g in fit.groups)]
            if absent:
                fail("--expect-theory: the table has no " + ", ".join(absent) + " column (needed for theory)")
        if out is not None:
            try:
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(fit.model_dump(mode="json"), indent=2, allow_nan=False) + "\n")
            except OSError as exc:
                fail(f"--out: cannot write {out} ({exc.strerror or exc})")
        if plots is not None:
            from abcscale.fitting.plots import write_plots

            try:
                written = write_plots(fit, df, plots, mapping)
            except OSError as exc:
                fail(f"--plots: cannot write into {plots} ({exc.strerror or exc})")
        if as_json:
            emit_json(fit)
        else:
            print_summary(fit)
            if out is not None:
                console.print(f"wrote {out}")
            if plots is not None:
                console.print("plots: " + ", ".join(str(p) for p in written.values()))
        if expect_theory:
            code = _check_theory(fit)
            if code:
                raise typer.Exit(code)
