"""``abcscale demo`` (what ``make run`` runs): sweep small, fit, recommend big, serve.

1. a small sweep on the default corpus (standard and muP, Adam, global and per-layer LR, widths 32..128,
   a 2^0.5-spaced LR grid, 2 seeds); a second run resumes it instead of recomputing;
2. the fit, with plots in the output folder;
3. a summary: exponents against theory, constants, recommendations at widths 1024 and 8192;
4. the method's first step for muP: its constants tuned at the base width (cached), swept across the widths
   and compared with the defaults (README "Tune the constants");
5. the fit stored in the demo's own service database, ``<out>/service/abcscale.db`` (plot cache
   ``<out>/service/plots``), and the service started on it with two ready-to-paste curls and the web page's URL
   (the calculator, and the fit's report).

Everything it writes is under ``--out`` (with ``--no-serve`` too): ``ABCSCALE_DATA_DIR``, ``ABCSCALE_DATABASE_URL``
and ``ABCSCALE_PLOT_DIR`` do not apply to it (the other service settings do). ``ABCSCALE_DATA_DIR=<out>/service
abcscale serve`` serves the demo's fit later. When serving, the port is taken before the sweep: a busy port
fails in a second, not after minutes of work.

With ``--json`` the steps' tables are replaced by one JSON summary on stdout (printed before serving).
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from abcscale.cli._common import Table, console, emit_json, fail, status
from abcscale.cli.options import Json, Quiet

if TYPE_CHECKING:
    import pandas as pd

    from abcscale.runner.spec import SweepSpec
    from abcscale.schemas.fit import FitResult, GroupFit
    from abcscale.schemas.tune import TuneSettings
    from abcscale.service.config import Settings

TARGETS = (1024, 8192)
#: a sweep with no identified optimum in any group (every optimum on its grid's edge) is widened this many
#: octaves toward the edge, once, before anything is recommended from it.
WIDEN_OCTAVES = 2.0


def demo(
    out: Annotated[Path, typer.Option("--out", help="output folder", file_okay=False)] = Path("abcscale-demo"),
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="start the API at the end")] = True,
    host: Annotated[str, typer.Option(help="service address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="service port (0: any free one)", min=0, max=65535)] = 8000,
    quick: Annotated[bool, typer.Option("--quick", help="a seconds-long version (tests)")] = False,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Sweep small widths, fit, recommend for 1024 and 8192, store the fit in OUT/service and serve the API."""
    from abcscale.cli.fit import loss_line
    from abcscale.usecases import plot_fit

    settings = service_settings(out)
    sock = None
    if serve:  # a host that does not resolve, or a port that is taken, fails now, not after the sweep
        from abcscale.cli.serve import bind

        sock = bind(host, port)  # held until step 5 serves it
        port = sock.getsockname()[1]  # --port 0: the free port picked, named by the curls
    say = _Steps(quiet=as_json)
    spec = demo_spec(quick)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"--out: cannot create {out} ({exc.strerror or exc})")
    try:  # a folder that exists but takes no file (/proc, a read-only mount): said now, as --out (a review)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as exc:
        fail(f"--out: cannot write into {out} ({exc.strerror or exc})")
    from abcscale.service.config import StartupRefused

    def refused(exc: StartupRefused, kept: bool = True) -> NoReturn:  # the service's own check (a malformed file, a
        # plot folder that is a file): one line, as `serve` says it (it was a traceback here); the demo's service
        # lives in --out whatever the environment says, so --out is the setting at fault
        fail(f"--out: {exc} (" + ("the sweep and fit are kept in {out}: the same command goes on from them)" if kept
                                  else "nothing was swept yet)").format(out=out))

    try:  # the database the fit goes to, opened (made or upgraded) before the sweep: a malformed or foreign file was
        # said only after the sweep and fit had run (minutes in the full demo; a review, session 69)
        from abcscale.service import crud

        with crud.open_session(settings):
            pass
    except StartupRefused as exc:
        refused(exc, kept=False)
    df, fit = _sweep_and_fit(spec, out, quick, quiet, say)
    if (wider := widen(spec, fit)) is not None:
        say.line(f"[yellow]no group has an identified optimum (every optimum on the grid's edge): widening the "
                 f"LR grid to log2 {wider.log2_lr[0]:g}..{wider.log2_lr[-1]:g} and sweeping again[/]")
        df, fit = _sweep_and_fit(wider, out, quick, quiet, say)
    plots = plot_fit(fit, df, out)
    say.line(f"fit written to {out / 'fit.json'}; plots: " + ", ".join(str(p) for p in plots.values()))
    say.line(loss_line(fit) + "; the sweep's summary ranks by the same loss")
    say.rule("3. summary")
    fitted = any(g.law is not None for g in fit.groups)
    recs = recommendations(fit) if fitted else []
    if not fitted:
        say.line("[red]the sweep identified no optimum at 2 widths in any group: nothing is recommended from "
                 "it[/] (widen the learning-rate grid, or run the full demo without --quick)")
    elif not say.quiet:
        print_summary(fit, recs)
    say.rule("4. tuned constants: muP + Adam, tuned at the base width, against its defaults")
    tuned = tuned_step(spec, df, out, quick, quiet, say)
    say.rule("5. service")
    try:
        fit_id = store(fit, df, name="demo-quick" if quick else "demo", settings=settings)
    except StartupRefused as exc:
        refused(exc)
    say.line(f"fit stored with id [bold]{fit_id}[/] in {settings.resolved_database_url}")
    from abcscale.cli.serve import http_url

    base = http_url(host, port)  # an IPv6 host bracketed, as serve says it (a review: http://::1:8000 was printed)
    bodies = example_bodies(fit_id) if fitted else example_bodies(fit_id)[:1]  # no curl for a fit of nothing
    curls = [f"curl -s -X POST {base}/v1/recommend -H 'Content-Type: application/json' -d '{json.dumps(body)}'"
             for body in bodies]
    for c in curls:
        say.line(c)
    # the same answers as web pages: the calculator, and this fit's report (plots, per-width optima, predictions)
    pages = {"calculator": f"{base}/", "fits": f"{base}/fits", "report": f"{base}/fits/{fit_id}"}
    say.line(f"web page: {pages['calculator']} (calculator), {pages['report']} (this fit's report)")
    if as_json:
        from abcscale.cli.serve import address_info

        emit_json({"out": str(out), "results": str(out / "sweep" / "results.parquet"), "runs": len(df),
                   "fit": str(out / "fit.json"), "plots": {k: str(v) for k, v in plots.items()},
                   "groups": [_group_json(g) for g in fit.groups], "recommendations": recs, "fit_id": fit_id,
                   "fitted": fitted, "loss_col": fit.mapping.loss_col, "log2_lr": spec.log2_lr if wider is None
                   else wider.log2_lr, "tuned": tuned,
                   "database": settings.resolved_database_url, "curl": curls, "pages": pages,
                   **(address_info(sock, host) if sock else {})})
    if sock is None:
        say.line(f"serve it later: {serve_later(settings)}")
        return
    from abcscale.cli.serve import run
    from abcscale.service.app import create_app

    try:
        app = create_app(settings)
    except StartupRefused as exc:
        refused(exc)
    say.line(f"serving on {base} (docs at {base}/docs); Ctrl-C to stop")
    run(app, sock, "warning")


def serve_later(settings: Settings) -> str:
    """The command that serves the demo's database: with ``--db`` too where the environment names another one
    (``ABCSCALE_DATABASE_URL`` would win over the data folder's SQLite file)."""
    db = f" --db {shlex.quote(settings.resolved_database_url)}" if os.environ.get("ABCSCALE_DATABASE_URL") else ""
    return f"ABCSCALE_DATA_DIR={shlex.quote(str(settings.data_dir))} abcscale serve{db}"


def service_settings(out: Path) -> Settings:
    """The service settings the demo stores into and serves from: the environment's (a token, CORS, the caps),
    with the data under ``out/service``: the SQLite file and the plot cache (never the environment's database)."""
    from pydantic import ValidationError

    from abcscale.cli._common import validation_message
    from abcscale.service.config import Settings

    try:
        return Settings(data_dir=out / "service", database_url=None, plot_dir=None)
    except ValidationError as exc:
        fail(f"settings: {validation_message(exc)}")


def _sweep_and_fit(spec: SweepSpec, out: Path, quick: bool, quiet: bool, say: _Steps) -> tuple[pd.DataFrame,
                                                                                             FitResult]:
    """Steps 1 and 2: the sweep (resumed when already run) and its fit, written to ``out/fit.json``."""
    from abcscale.runner.sweep import run_sweep
    from abcscale.schemas.api import FitOptions
    from abcscale.usecases import fit_sweep

    say.rule("1. sweep (resumes if already run)")
    say.line(f"{len(spec.cells())} cells x {len(spec.log2_lr)} learning rates x {spec.seeds} seeds, "
             f"widths {spec.widths}, {spec.steps} steps, output {out / 'sweep'}")
    df = run_sweep(spec, out / "sweep", progress=not quiet)
    say.rule("2. fit")
    with status("fitting", quiet=quiet):
        fit = fit_sweep(df, FitOptions(n_boot=300 if quick else 1000, target_width=TARGETS[0]))
        tmp = out / ".fit.json.tmp"  # whole or not at all, as `fit --out` writes it
        tmp.write_text(fit.model_dump_json(indent=2))
        tmp.replace(out / "fit.json")
    return df, fit


def tune_settings(quick: bool) -> TuneSettings:
    """The demo's search budget: 24 trials of one seed, the top 2 re-evaluated with 2 fresh seeds (28 runs at the
    base width, a few CPU seconds); --quick: 4 trials, the top one re-evaluated (the same path in seconds)."""
    from abcscale.schemas.tune import TuneSettings

    if quick:
        return TuneSettings(trials=4, seeds=1, top=1, reeval_seeds=2)
    return TuneSettings(trials=24, seeds=1, top=2, reeval_seeds=2)


def tuned_step(spec: SweepSpec, rows: pd.DataFrame, out: Path, quick: bool, quiet: bool,
               say: _Steps) -> dict[str, Any]:
    """The method's first step for muP + Adam (per-layer LR): tune beta and the embedding/readout LR constants at
    the base width (cached in ``out/tune``, keyed by everything that changes the result), then sweep a few betas
    around the tuned one at every width with the tuned constants (cached in ``out/tuned-sweep``) and compare
    each width's best loss with the main sweep's muP (default constants) and standard. Returns the JSON part."""
    from abcscale.runner.sweep import best_lrs, run_sweep
    from abcscale.usecases.tune import tune_cached
    from abcscale.usecases.tune_verify import transfer_grid

    one = spec.with_overrides(parameterizations=["mup"], lr_modes=["per_layer"])
    settings = tune_settings(quick)
    t0, c0 = time.perf_counter(), time.process_time()
    with status(f"tuning at width {spec.base} ({settings.trials} trials)", quiet=quiet):
        tuned, path, reused = tune_cached(one.with_overrides(widths=[spec.base], base_width=spec.base), settings,
                                          out / "tune")
    g = tuned.constants.gamma
    say.line(f"{'reused' if reused else 'tuned'} {path}: beta {tuned.beta:.3g}, gamma embedding / readout "
             f"{g.embedding:.3g} / {g.readout:.3g} (hidden 1: beta absorbs it); {tuned.trials_run} trials + "
             f"{settings.top} x {settings.reeval_seeds} re-evaluations in {tuned.elapsed_s:.1f} s when it ran")
    # 3 betas half an octave apart: per-layer muP carries the tuned beta to every width, so its optimum stays
    # near the centre (an edge is flagged); every other width (32, 64, 128) keeps the added cost to ~18 runs
    grid = transfer_grid(tuned, spec.base, 3, 0.5)
    widths = spec.widths if quick else spec.widths[::2]
    sweep = one.with_overrides(constants=tuned.constants.model_dump(), gammas=[g.model_dump()], log2_lr=grid,
                               widths=widths, base_width=spec.base)
    say.line(f"sweeping muP with the tuned constants: {len(grid)} betas around the tuned one x {spec.seeds} seeds "
             f"at widths {widths}, output {out / 'tuned-sweep'}")
    t1, c1 = time.perf_counter(), time.process_time()
    tuned_rows = run_sweep(sweep, out / "tuned-sweep", progress=not quiet)
    cost = {"tune_wall_s": t1 - t0, "tune_cpu_s": c1 - c0, "sweep_wall_s": time.perf_counter() - t1,
            "sweep_cpu_s": time.process_time() - c1}
    best = {(b.parameterization, b.width): b.eval_loss for b in best_lrs(rows) if b.lr_mode == "per_layer"}
    ours = {b.width: b for b in best_lrs(tuned_rows)}
    table = [{"width": w, "standard": best.get(("standard", w)), "mup_default": best.get(("mup", w)),
              "mup_tuned": ours[w].eval_loss, "tuned_at_edge": ours[w].log2_lr in (grid[0], grid[-1])}
             for w in widths]
    if not say.quiet:
        print_tuned_table(table)
        if quick:
            say.line("[yellow]--quick: a 4-trial search at 20 steps checks the path; its constants are not a result[/]")
        say.line(f"recommend with them at any width: abcscale recommend --constants {path} -n 8192")
    return {"file": str(path), "reused": reused, "settings": settings.model_dump(mode="json"),
            "trials_run": tuned.trials_run, "elapsed_s": tuned.elapsed_s, "beta": tuned.beta,
            "gamma": g.model_dump(), "log2_lr": grid, "best_loss": table, "cost": cost}


def print_tuned_table(table: list[dict[str, Any]]) -> None:
    t = Table(title="best eval loss per width (per-layer LR; each at its best swept LR)")
    for col in ("width", "standard", "muP, default constants", "muP, tuned constants", "default - tuned"):
        t.add_column(col, justify="right")

    def f(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"
    for r in table:
        gain = None if r["mup_tuned"] is None or r["mup_default"] is None else r["mup_default"] - r["mup_tuned"]
        t.add_row(str(r["width"]), f(r["standard"]), f(r["mup_default"]),
                  f(r["mup_tuned"]) + ("*" if r["tuned_at_edge"] else ""), "-" if gain is None else f"{gain:+.3f}")
    console.print(t)
    if any(r["tuned_at_edge"] for r in table):
        console.print("* best at the edge of the 3 betas swept: the tuned constants' optimum may lie outside",
                      highlight=False)


def widen(spec: SweepSpec, fit: FitResult) -> SweepSpec | None:
    """The spec with its LR grid extended WIDEN_OCTAVES toward the edges the fit's optima sit on, or None when
    some group was fitted or no optimum is on an edge."""
    if any(g.law is not None for g in fit.groups):
        return None
    why = " ".join(w.message or "" for g in fit.groups for w in g.per_width if not w.identified)
    down, up = "downward" in why, "upward" in why
    if not (down or up):
        return None
    grid = sorted(spec.log2_lr)
    step = min(b - a for a, b in zip(grid, grid[1:], strict=False)) if len(grid) > 1 else 1.0
    more = [step * k for k in range(1, round(WIDEN_OCTAVES / step) + 1)]
    wider = [*(grid[0] - d for d in reversed(more) if down), *grid, *(grid[-1] + d for d in more if up)]
    return spec.model_copy(update={"log2_lr": wider})


def demo_spec(quick: bool) -> SweepSpec:
    from abcscale.runner.spec import SweepSpec

    shared = {"model": "transformer", "parameterizations": ["standard", "mup"], "optimizers": ["adam"],
              "lr_modes": ["global", "per_layer"], "seeds": 2, "depth": 1}
    if quick:  # the test suite's version: the same pipeline in seconds instead of minutes
        return SweepSpec.model_validate(shared | {"widths": [16, 32], "log2_lr": "-8:-4:1", "steps": 20, "batch": 4,
                                                  "seq_len": 16, "head_dim": 8, "max_bytes": 200_000})
    # ~5 minutes on 2 cores: 20 cells x 11 LRs x 2 seeds. Five widths, not three: the exponent's t interval
    # has widths - 2 degrees of freedom, and with three it is too wide to test anything. The grid covers
    # every optimum from 32 to 128 (standard + global LR moves ~2 octaves over that range).
    return SweepSpec.model_validate(shared | {"widths": [32, 48, 64, 96, 128], "log2_lr": "-8.5:-3.5:0.5",
                                              "steps": 100, "batch": 8, "seq_len": 32, "head_dim": 16,
                                              "max_bytes": 2_000_000})


def example_bodies(fit_id: str) -> list[dict[str, Any]]:
    """The two requests the demo's curls send: theory's transfer, and the stored fit's."""
    return [{"parameterization": "mup", "optimizer": "adam", "width": 4096, "base": {"width": 256, "beta": 0.003}},
            {"parameterization": "mup", "optimizer": "adam", "lr_mode": "per_layer", "width": 8192,
             "fit_id": fit_id, "group": {"lr_mode": "per_layer"}}]  # per_layer alone selects no group


def _label(g: GroupFit) -> str:
    from abcscale.schemas.fit import value_text

    return " ".join(value_text(g.group.get(k, "")) for k in ("parameterization", "optimizer", "lr_mode"))


def recommendations(fit: FitResult) -> list[dict[str, Any]]:
    """Per group and target width: the fitted LR, its 68% band, the safe-side LR and the per-layer LRs, or
    why it was not extrapolated."""
    from abcscale.usecases import recommend_from_fit

    out: list[dict[str, Any]] = []
    for g in fit.groups:
        for width in TARGETS:
            try:
                rec = recommend_from_fit(fit, width, selector=g.group)
            except ValueError as exc:
                out.append({"group": g.group, "width": width, "error": str(exc)})
                continue
            assert rec.band is not None  # a fit's recommendation always carries its band
            out.append({"group": g.group, "width": width, "lr": rec.band.lr, "ci68": list(rec.band.ci68),
                        "safe_lr": rec.band.safe_lr, "layer_lrs": {s.layer.value: s.lr for s in rec.layers},
                        "warnings": [w for w in rec.warnings if not w.startswith("safe-side LR")]})
    return out


def _group_json(g: GroupFit) -> dict[str, Any]:
    e = g.exponent
    return {"group": g.group, "exponent": None if e is None else e.estimate,
            "ci": None if e is None else [e.ci.low, e.ci.high], "theory": g.theory_exponent,
            "theory_span": g.theory_span,
            "consistent": g.consistent, "constant": g.constant, "loo_error_octaves": g.loo_error_octaves}


def print_summary(fit: FitResult, recs: list[dict[str, Any]]) -> None:
    level = f"{100 * fit.provenance.settings.get('confidence_level', 0.95):g}%"
    t = Table(title="LR* ~ C * (width / base)^e, fitted on the sweep vs theory")
    for col in ("group", "e", f"{level} CI", "theory", "verdict", "C (LR* at base)", "LOO err (oct)"):
        t.add_column(col)
    for g in fit.groups:
        e = g.exponent
        if e is None:
            t.add_row(_label(g), "-", "-", "-", "[yellow]not fitted[/]", "-", "-")
            continue
        verdict = {True: "[green]consistent[/]", False: "[red]inconsistent[/]", None: "-"}[g.consistent]
        t.add_row(_label(g), f"{e.estimate:+.2f}", f"[{e.ci.low:+.2f}, {e.ci.high:+.2f}]",
                  g.theory_text("+.2f"), verdict,
                  "-" if g.constant is None else f"{g.constant:.3g}",
                  "-" if g.loo_error_octaves is None else f"{g.loo_error_octaves:.2f}")
    console.print(t)
    r = Table(title="Recommended LRs from the fit (68% band; per layer: embedding / hidden / readout)")
    for col in ("group", "width", "LR*", "68% band", "safe-side", "per-layer LRs"):
        r.add_column(col)
    notes: dict[str, None] = {}
    for rec in recs:
        label = " ".join(str(rec["group"].get(k, "")) for k in ("parameterization", "optimizer", "lr_mode"))
        if "error" in rec:
            r.add_row(label, str(rec["width"]), "-", "-", "-", "not extrapolated")
            notes[f"{label}: {rec['error']}"] = None
            continue
        lo, hi = rec["ci68"]
        r.add_row(label, str(rec["width"]), f"{rec['lr']:.2e}", f"{lo:.1e}..{hi:.1e}", f"{rec['safe_lr']:.2e}",
                  " / ".join(f"{v:.1e}" for v in rec["layer_lrs"].values()))
        notes |= {f"{label}: {w}": None for w in rec["warnings"]}
    console.print(r)
    for n in notes:
        console.print(f"[yellow]note:[/] {n}", soft_wrap=True, highlight=False)


def store(fit: FitResult, rows: pd.DataFrame, name: str, settings: Settings) -> str:
    """Store the fit in the database ``settings`` name, once per input (same name and hash -> same id), and
    return its id."""
    from abcscale.service import crud

    with crud.open_session(settings) as session:
        fits, _ = crud.list_fits(session, skip=0, limit=1000)
        for f in fits:
            if f.name == name and f.input_hash == fit.provenance.input_hash:
                return f.id
        return crud.create_fit(session, fit=fit, rows=rows, name=name)


class _Steps:
    """The demo's step headers and lines on stdout, or nothing with --json."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def rule(self, title: str) -> None:
        if not self.quiet:
            console.rule(title)

    def line(self, text: str) -> None:
        if not self.quiet:
            console.print(text, highlight=False, soft_wrap=True)
