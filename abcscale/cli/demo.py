"""``abcscale demo`` (what ``make run`` runs): sweep small, fit, recommend big, serve.

1. a small sweep on the default corpus (standard and muP, Adam, global and per-layer LR, widths 32..128,
   a 2^0.5-spaced LR grid, 2 seeds); a second run resumes it instead of recomputing;
2. the fit, with plots in the output directory;
3. a summary: exponents against theory, constants, recommendations at widths 1024 and 8192;
4. the fit stored in the service's database, and the service started with two ready-to-paste curls.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from abcscale.cli._common import console, fail

TARGETS = (1024, 8192)


def demo_spec(quick: bool) -> Any:
    from abcscale.runner.spec import SweepSpec

    if quick:  # the test suite's version: the same pipeline in seconds instead of minutes
        return SweepSpec(model="transformer", parameterizations=["standard", "mup"], optimizers=["adam"],
                         lr_modes=["global", "per_layer"], widths=[16, 32], log2_lr="-8:-4:1", seeds=2,
                         steps=20, batch=4, seq_len=16, depth=1, head_dim=8, max_bytes=200_000)
    # ~5 minutes on 2 cores: 20 cells x 11 LRs x 2 seeds. Five widths, not three: the exponent's t interval
    # has widths - 2 degrees of freedom, and with three it is too wide to test anything. The grid covers
    # every optimum from 32 to 128 (standard + global LR moves ~2 octaves over that range).
    return SweepSpec(model="transformer", parameterizations=["standard", "mup"], optimizers=["adam"],
                     lr_modes=["global", "per_layer"], widths=[32, 48, 64, 96, 128], log2_lr="-8.5:-3.5:0.5",
                     seeds=2, steps=100, batch=8, seq_len=32, depth=1, head_dim=16, max_bytes=2_000_000)


def _fmt_ci(ci: tuple[float, float] | None) -> str:
    return "-" if ci is None else f"[{ci[0]:+.2f}, {ci[1]:+.2f}]"


def summarize(fit: Any) -> None:
    from abcscale.fitting.predict import recommend_from_fit

    t = Table(title="LR* ~ C * (width / base)^e, fitted on the sweep vs theory")
    for col in ("group", "e", "95% CI", "theory", "verdict", "C (LR* at base)", "LOO err (oct)"):
        t.add_column(col)
    for g in fit.groups:
        label = " ".join(str(g.group.get(k, "")) for k in ("parameterization", "optimizer", "lr_mode"))
        if g.exponent is None:
            t.add_row(label, "-", "-", "-", "[yellow]not fitted[/]", "-", "-")
            continue
        verdict = {True: "[green]consistent[/]", False: "[red]inconsistent[/]", None: "-"}[g.consistent]
        t.add_row(label, f"{g.exponent.estimate:+.2f}", _fmt_ci(g.exponent.ci95),
                  "-" if g.theory_exponent is None else f"{g.theory_exponent:+.2f}", verdict,
                  "-" if g.constant is None else f"{g.constant:.3g}",
                  "-" if g.loo_error_octaves is None else f"{g.loo_error_octaves:.2f}")
    console.print(t)
    r = Table(title="Recommended LRs from the fit (68% band; per layer: embedding / hidden / readout)")
    for col in ("group", "width", "LR*", "68% band", "safe-side", "per-layer LRs"):
        r.add_column(col)
    notes: dict[str, None] = {}
    for g in fit.groups:
        label = " ".join(str(g.group.get(k, "")) for k in ("parameterization", "optimizer", "lr_mode"))
        for width in TARGETS:
            try:
                rec = recommend_from_fit(fit, width, selector=g.group)
            except ValueError as exc:
                r.add_row(label, str(width), "-", "-", "-", "not extrapolated")
                notes[f"{label}: {exc}"] = None
                continue
            b = rec.band
            r.add_row(label, str(width), f"{b.lr:.2e}", f"{b.ci68[0]:.1e}..{b.ci68[1]:.1e}", f"{b.safe_lr:.2e}",
                      " / ".join(f"{s.lr:.1e}" for s in rec.layers))
            for w in rec.warnings:
                if not w.startswith("safe-side LR"):  # already a column of the table
                    notes[f"{label}: {w}"] = None
    console.print(r)
    for n in notes:
        console.print(f"[yellow]note:[/] {n}", soft_wrap=True)


def store(fit: Any, rows: Any, name: str) -> str:
    """Store the fit once per input (same name and hash -> same id) and return its id."""
    from abcscale.service import crud

    with crud.open_session() as session:
        fits, _ = crud.list_fits(session, skip=0, limit=1000)
        for f in fits:
            if f.name == name and f.input_hash == fit.provenance.input_hash:
                return f.id
        return crud.create_fit(session, fit=fit, rows=rows, name=name)


def register(app: typer.Typer, theory_app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        out: Annotated[Path, typer.Option("--out", help="output directory")] = Path("abcscale-demo"),
        serve: Annotated[bool, typer.Option("--serve/--no-serve", help="start the API at the end")] = True,
        host: Annotated[str, typer.Option(help="service address")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="service port", min=1, max=65535)] = 8000,
        quick: Annotated[bool, typer.Option("--quick", help="a seconds-long version (tests)")] = False,
        quiet: Annotated[bool, typer.Option("--quiet", help="no progress bar")] = False,
    ) -> None:
        """Sweep small widths, fit, recommend for 1024 and 8192, store the fit and serve the API."""
        from abcscale.fitting.api import fit_table
        from abcscale.fitting.plots import write_plots
        from abcscale.runner.sweep import run_sweep

        spec = demo_spec(quick)
        out.mkdir(parents=True, exist_ok=True)
        console.rule("1. sweep (resumes if already run)")
        console.print(f"{len(spec.cells())} cells x {len(spec.log2_lr)} learning rates x {spec.seeds} seeds, "
                      f"widths {spec.widths}, {spec.steps} steps, output {out / 'sweep'}")
        df = run_sweep(spec, out / "sweep", progress=not quiet)
        console.rule("2. fit")
        fit = fit_table(df, n_boot=300 if quick else 1000, target_width=TARGETS[0])
        (out / "fit.json").write_text(fit.model_dump_json(indent=2))
        plots = write_plots(fit, df, out)
        console.print(f"fit written to {out / 'fit.json'}; plots: " + ", ".join(str(p) for p in plots.values()))
        console.rule("3. summary")
        summarize(fit)
        console.rule("4. service")
        fit_id = store(fit, df, name="demo-quick" if quick else "demo")
        console.print(f"fit stored with id [bold]{fit_id}[/]")
        base = f"http://{host}:{port}"
        body_theory = {"parameterization": "mup", "optimizer": "adam", "width": 4096,
                       "base": {"width": 256, "beta": 0.003}}
        body_fit = {"parameterization": "mup", "optimizer": "adam", "lr_mode": "per_layer", "width": 8192,
                    "fit_id": fit_id}
        for body in (body_theory, body_fit):
            console.print(f"curl -s -X POST {base}/v1/recommend -H 'Content-Type: application/json' "
                          f"-d '{json.dumps(body)}'", highlight=False, soft_wrap=True)
        if not serve:
            return
        import socket

        import uvicorn

        from abcscale.service.app import create_app

        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                fail(f"port {port} on {host} is in use; the results are in {out} (rerun with --port N)", code=1)
        console.print(f"serving on {base} (docs at {base}/docs); Ctrl-C to stop")
        uvicorn.run(create_app(), host=host, port=port, log_level="warning")
