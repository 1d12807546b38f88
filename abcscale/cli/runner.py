"""``abcscale sweep`` and ``abcscale coord-check``: small-width JAX training. JAX loads inside the commands.

Every sweep flag sets the :class:`~abcscale.runner.spec.SweepSpec` key of the same name (the function's
parameter names are the spec's keys); its help text and the default shown come from the spec, so they
cannot drift apart. A flag left out keeps the value of SPEC.toml, or the spec's default.
"""

from __future__ import annotations

import errno
import math
import os
import re
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from pydantic import ValidationError
from rich.markup import escape

from abcscale.cli._common import (
    Table,
    console,
    emit_json,
    err_console,
    fail,
    interrupted,
    on_command_line,
    parse_flag,
    python_limit,
    sigterm_stops,
    status,
    styled_warnings,
    validation_message,
)
from abcscale.cli.options import AlignmentOpt, Json, LrModeOpt, ParamReq, Plots, Quiet
from abcscale.runner.spec import (
    EXECUTION_KEYS,
    OPTIMIZER_FAMILY,
    AttnScale,
    Batching,
    Schedule,
    SweepSpec,
    parse_lr_grid,
)
from abcscale.schemas.enums import LAYERS, EpsilonMode, LrMode
from abcscale.schemas.theory import Constants, PerLayer

if TYPE_CHECKING:
    from abcscale.runner.coord import CoordCheck
    from abcscale.runner.sweep import BestLr

#: spec keys whose flag has another name (the flag is singular; a comma list sweeps several), and the
#: constants, which the spec nests under ``constants`` but the flags set flat. The base width's decay has no flag
#: (`--weight-decay` is the top-level independent one): its errors keep the spec's name, constants.weight_decay
FLAGS = {"parameterizations": "--parameterization", "optimizers": "--optimizer", "alignments": "--alignment",
         "lr_modes": "--lr-mode", "gammas": "--gamma", "constants.gamma": "--gamma",
         **{f"constants.{k}": "--" + k.replace("_", "-") for k in Constants.model_fields
            if k not in ("gamma", "weight_decay", "weight_decay_mode")}}
_FIELDS = {**Constants.model_fields, **SweepSpec.model_fields}  # the spec's own weight_decay wins
_SPEC_DEFAULTS = SweepSpec()


def _shown(key: str) -> str | bool:
    """The spec's default for ``key`` as the user would type it."""
    if key == "log2_lr":
        return "-12:-4:1"
    if key == "gammas":
        return "the gamma constant, 1,1,1"
    value = getattr(_SPEC_DEFAULTS.constants if key in Constants.model_fields else _SPEC_DEFAULTS, key)
    if value is None:
        return False
    if isinstance(value, list):
        return ",".join(str(getattr(v, "value", v)) for v in value)
    if hasattr(value, "embedding"):  # PerLayer
        return f"{value.embedding:g},{value.hidden:g},{value.readout:g}"
    return str(getattr(value, "value", value))


def spec_option(key: str, *decls: str, panel: str, help: str | None = None, **kw: Any) -> Any:
    """A flag that overrides the spec key ``key``: help and shown default come from the spec."""
    kw.setdefault("show_default", _shown(key))
    return typer.Option(*decls, help=help or _FIELDS[key].description, rich_help_panel=panel, **kw)


#: a built-in model or your own (runner.user's factory contract)
MODEL_METAVAR = "<transformer|mlp|MODULE:FACTORY>"
GRID, MODEL, TRAIN, DATA, RUN = "Grid (comma lists sweep)", "Model", "Training", "Data and evaluation", "Execution"
Text = str | None


# One parameter per spec key, so the signature is long by design; the body builds the spec and runs it.
def sweep(
    ctx: typer.Context,
    spec_file: Annotated[Path | None, typer.Argument(metavar="[SPEC.toml]", help="sweep spec file",
                                                     show_default=False)] = None,
    out: Annotated[Path, typer.Option("--out", help="output folder", file_okay=False)] = Path("sweep-out"),
    parameterizations: Annotated[Text, spec_option("parameterizations", "--parameterization", "-p", panel=GRID,
                                                   help="standard | ntk | mup | mean_field or a custom table")] = None,
    optimizers: Annotated[Text, spec_option("optimizers", "--optimizer", "-o", panel=GRID)] = None,
    alignments: Annotated[Text, spec_option("alignments", "--alignment", "-a", panel=GRID,
                                            help="full | none | ALPHA,OMEGA,U (';' between triples)")] = None,
    lr_modes: Annotated[Text, spec_option("lr_modes", "--lr-mode", panel=GRID)] = None,
    widths: Annotated[Text, spec_option("widths", panel=GRID)] = None,
    log2_lr: Annotated[Text, spec_option("log2_lr", "--log2-lr", panel=GRID,
                                         help="log2 of the base LR beta: START:STOP:STEP or a comma list")] = None,
    gammas: Annotated[Text, spec_option("gammas", "--gamma", panel=GRID,
                                        help="per-layer LR constants 'e,h,r' (';' between several)")] = None,
    seeds: Annotated[int | None, spec_option("seeds", panel=GRID)] = None,
    model: Annotated[Text, spec_option("model", panel=MODEL, metavar=MODEL_METAVAR)] = None,
    depth: Annotated[int | None, spec_option("depth", panel=MODEL)] = None,
    head_dim: Annotated[int | None, spec_option("head_dim", "--head-dim", panel=MODEL)] = None,
    attn_scale: Annotated[AttnScale | None, spec_option("attn_scale", "--attn-scale", panel=MODEL)] = None,
    base_width: Annotated[int | None, spec_option("base_width", "--base-width", panel=MODEL, help="width the "
                                                  "constants refer to", show_default="min(widths)")] = None,
    init_scale: Annotated[Text, spec_option("init_scale", "--init-scale", panel=MODEL)] = None,
    multiplier: Annotated[Text, spec_option("multiplier", panel=MODEL)] = None,
    epsilon: Annotated[float | None, spec_option("epsilon", panel=TRAIN)] = None,
    epsilon_mode: Annotated[EpsilonMode | None, spec_option("epsilon_mode", "--epsilon-mode", panel=TRAIN,
                                                            parser=EpsilonMode.parse)] = None,
    steps: Annotated[int | None, spec_option("steps", panel=TRAIN)] = None,
    batch: Annotated[int | None, spec_option("batch", panel=TRAIN)] = None,
    seq_len: Annotated[int | None, spec_option("seq_len", "--seq-len", panel=TRAIN)] = None,
    momentum: Annotated[float | None, spec_option("momentum", panel=TRAIN)] = None,
    schedule: Annotated[Schedule | None, spec_option("schedule", panel=TRAIN)] = None,
    warmup: Annotated[float | None, spec_option("warmup", panel=TRAIN)] = None,
    weight_decay: Annotated[float | None, spec_option("weight_decay", "--weight-decay", panel=TRAIN)] = None,
    divergence_factor: Annotated[float | None, spec_option("divergence_factor", "--divergence-factor",
                                                           panel=TRAIN)] = None,
    data: Annotated[Text, spec_option("data", panel=DATA)] = None,
    max_bytes: Annotated[int | None, spec_option("max_bytes", "--max-bytes", panel=DATA)] = None,
    eval_fraction: Annotated[float | None, spec_option("eval_fraction", "--eval-fraction", panel=DATA)] = None,
    eval_batches: Annotated[int | None, spec_option("eval_batches", "--eval-batches", panel=DATA)] = None,
    final_window: Annotated[float | None, spec_option("final_window", "--final-window", panel=DATA)] = None,
    coord_steps: Annotated[Text, spec_option("coord_steps", "--coord-steps", panel=DATA, help="steps recorded in "
                                             "coord.parquet (none: no statistics)",
                                             show_default="0,1,steps/2,steps-1")] = None,
    curves: Annotated[bool | None, spec_option("curves", "--curves/--no-curves", panel=DATA)] = None,
    batching: Annotated[Batching | None, spec_option("batching", panel=RUN)] = None,
    chunk: Annotated[int | None, spec_option("chunk", panel=RUN)] = None,
    executor: Annotated[Literal["local", "ray"], typer.Option(help="run cells here or on a Ray cluster",
                                                              rich_help_panel=RUN)] = "local",
    address: Annotated[Text, typer.Option(help="Ray cluster address (--executor ray)", rich_help_panel=RUN,
                                          show_default="start or join a local one")] = None,
    show_roles: Annotated[bool, typer.Option("--show-roles", rich_help_panel=MODEL, help="list each parameter's "
                                             "role (and how it was decided), init std, LR / beta, epsilon and "
                                             "weight decay at each width, and exit; trains nothing")] = False,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Train every configuration x width x learning rate x seed; write results.parquet into --out (resumable).

    Progress goes to stderr; the summary (best LR per width) to stdout, as a table or with --json.
    """
    if address is not None and executor != "ray":  # it would be ignored, and the sweep run here
        fail("--address: a Ray cluster's address goes with --executor ray")
    if executor == "ray":
        from abcscale.runner.sweep import ray_installed

        if not ray_installed():  # before any work: it was a traceback after the checks
            fail("--executor ray: ray is not installed (pip install 'abcscale[ray]')")
    overrides = {k: v for k, v in ctx.params.items() if k in _FIELDS}
    if coord_steps is not None:  # an unset variable (`--coord-steps "$S"`) turned the statistics off unsaid
        if not coord_steps.strip():
            fail(f"--coord-steps: empty; give the steps to record (e.g. 0,1,50), none to record no coordinate "
                 f"statistics, or leave the flag out for the defaults, got {coord_steps!r}")
        if coord_steps.strip().lower() == "none":
            overrides["coord_steps"] = []
    # Parsed here so an error names the flag and the layer: the spec would only see which layer was bad.
    overrides |= {"init_scale": parse_flag(PerLayer.parse, init_scale, "--init-scale"),
                  "multiplier": parse_flag(PerLayer.parse, multiplier, "--multiplier"), "gammas": _gammas(gammas)}
    spec = _build_spec(spec_file, overrides)
    if show_roles:
        _show_roles(spec, spec_file, "model" in {k for k in ctx.params if ctx.params[k] is not None}, as_json)
        return
    _check_model(spec, spec_file, {k for k in ("model", "data", "widths", "eval_fraction")
                                   if ctx.params.get(k) is not None},
                 executor)
    from abcscale.runner.store import refuse_foreign

    try:  # a folder of the user's files by a sweep's names: refused before anything is made in it
        refuse_foreign(out, "--out")
    except ValueError as exc:
        fail(str(exc))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"--out: cannot create {out} ({exc.strerror or exc})")
    try:  # an existing folder it cannot write into (read-only, immutable): said now, as --out, not as an errno
        (out / "cells").mkdir(exist_ok=True)
    except OSError as exc:
        fail(f"--out: cannot write into {out} ({exc.strerror or exc})")
    from abcscale.runner.store import SweepWarning
    from abcscale.runner.sweep import SweepInterrupted, best_lrs, run_sweep, theory_warnings

    before = _held_runs(out / "results.parquet")  # read once: the base-width note and the dropped-runs note
    previous = _previous_spec_dict(out / "spec.json")  # the spec those runs came from: the dropped-runs note says how
    if before is not None and spec.base_width is None and "base_width" in before \
            and ("model" not in before or (before["model"] == spec.model).any()) \
            and (bases := _whole(before["base_width"])) and spec.base not in bases:
        # the constants refer to the smallest width: a smaller one added makes every run new, silently until now
        # (the runs results.parquet lists: the folder's cells may also hold runs of an earlier sweep at this base,
        # which are reused; "none of them" read as all of them after --widths 64 and back to 32,64, a review)
        err_console.print(f"[yellow]note:[/] the base width is now {spec.base} (the smallest width), the runs "
                          f"{out / 'results.parquet'} lists were trained at base width {', '.join(map(str, bases))}: "
                          f"they are not reused (only runs the folder holds at base width {spec.base} are); "
                          f"pin --base-width {bases[0]} to keep them and train only the new runs", highlight=False,
                          soft_wrap=True)
    if spec.weight_decay and not spec.constants.weight_decay:
        # one flag name, two meanings (a review, session 51): recommend's --weight-decay is the transferred one
        err_console.print(f"[yellow]note:[/] --weight-decay {spec.weight_decay:g} is an independent decay on every "
                          "parameter (wd x W a step, gains included, the same at every width); the per-layer decay "
                          "that recommend --weight-decay transfers is the spec's constants.weight_decay (TOML "
                          "sweep.constants)", highlight=False, soft_wrap=True)
    t0 = time.perf_counter()
    try:
        with styled_warnings(SweepWarning), sigterm_stops():  # folder repairs (a damaged cell file): one line each
            df = run_sweep(spec, out, progress=not quiet, executor=executor, address=address)
    except KeyboardInterrupt as exc:  # the finished cells are on disk: say so, and how to go on
        # results.parquet is written when the sweep ends: the finished runs are in the cell files meanwhile.
        # run_sweep counts this spec's runs there; stopped before it could (an import), the folder's files
        kept = (f"{exc.kept} of this sweep's {exc.total} runs are" if isinstance(exc, SweepInterrupted) else
                f"{_runs_in_cells(out / 'cells')} finished runs are")
        interrupted(f"interrupted: {kept} kept in {out / 'cells'}; the same command resumes, training only the rest "
                    "(results.parquet lists them when it ends)")
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT):
            raise
        # the folder refused a file mid-sweep (a full disk, a read-only mount): what was finished is kept
        fail(f"--out: cannot write into {out} ({exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}); "
             "the finished runs are kept in its cells: free the space or fix the permission, and rerun")
    except MemoryError:  # past what the spec's checks and the memory estimate see: one line, not a traceback
        fail("out of memory: the sweep needs more than this machine has; sweep smaller widths, a smaller batch "
             "or seq_len, or fewer runs at once (ABCSCALE_RUN_THREADS=1)")
    sweep_s = time.perf_counter() - t0
    # as recommend says them (the sweep trained the prescription); after the sweep, whose cells solved the LPs
    # already: before it, scipy's import and the solves would delay the first program's compile
    for w in theory_warnings(spec):
        err_console.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
    results = out / "results.parquet"
    if len(df) and "loss_at_init" in df and (bad := sorted({int(w) for w, x in zip(df["width"], df["loss_at_init"],
                                                                                    strict=True) if not x == x})):
        # diverged at every LR, as too large an LR reads, but from the start: the model's own numbers
        widths = ", ".join(map(str, bad))
        err_console.print(f"[yellow]warning:[/] the loss at initialisation is NaN at width(s) {widths}: before any "
                          "step, so no learning rate is to blame; look at the model (its init, a log of 0, a division)",
                          highlight=False, soft_wrap=True)
    if (dropped := _no_longer_listed(before, df)) > 0:  # another spec's runs, replaced by this one's (kept)
        said = (f"{results} held {len(before)} runs; it now lists this sweep's {len(df)}, without {dropped} of "
                f"those (their cell files stay in {out / 'cells'}: {_how_to_list_again(previous, out)})"
                f"{_spec_changes(previous, spec)}")
        # escaped: the note quotes paths and spec values, and `d[/x]/c.txt` was rich's MarkupError (a review)
        err_console.print(f"[yellow]note:[/] {escape(said)}", highlight=False, soft_wrap=True)
    best = best_lrs(df) if len(df) else []
    edges = (min(spec.log2_lr), max(spec.log2_lr))

    def on_edge(b: BestLr) -> bool:  # the best LR at the grid's end: the optimum may lie past it
        return b.log2_lr is not None and len(spec.log2_lr) > 1 and b.log2_lr in edges

    if as_json:
        # sweep_s: run_sweep's span (compiling, training, writing); what a whole-process timing adds is start-up.
        # Each best LR says whether it sits at the grid's edge (the table's `*`: JSON lost it, a review) and its
        # gamma by layer (a bare [e, h, r] triple named nothing)
        # trained / reused: the runs this sweep trained and those the folder held (a rerun trains only the new)
        emit_json({"results": str(results), "runs": len(df), **_trained(df), "best": [
            {**asdict(b), "gamma": None if b.gamma is None else {
                layer.value: g for layer, g in zip(LAYERS, b.gamma, strict=True)}, "on_edge": on_edge(b)}
            for b in best], "sweep_s": round(sweep_s, 3)})
        return
    t = Table(title="best learning rate per width (eval loss)")
    several = len({b.gamma for b in best}) > 1  # swept gammas: each its own configuration
    for col in ("parameterization", "optimizer", "alignment", "lr_mode", *(["gamma"] * several), "width",
                "best log2 beta", "eval loss", "diverged"):
        t.add_column(col)
    at_edge = False
    for b in best:
        edge = on_edge(b)
        at_edge |= edge
        t.add_row(b.parameterization, b.optimizer, b.alignment, b.lr_mode,
                  *([",".join(f"{x:g}" for x in b.gamma or ())] * several), str(b.width),
                  "-" if b.log2_lr is None else f"{b.log2_lr:g}" + (" *" if edge else ""),
                  "-" if b.eval_loss is None else f"{b.eval_loss:.4f}", f"{b.diverged}/{b.runs}")
    console.print(t)
    if at_edge:  # fit marks it too; here it is the first table a user reads
        console.print(f"* best at the grid's edge (log2 beta {edges[0]:g} or {edges[1]:g}): the optimum may lie "
                      "past it; widen --log2-lr there (a rerun trains only the new runs)", highlight=False)
    console.print(f"{len(df)} runs -> {results}", highlight=False)
    if (counts := _trained(df)) and counts["reused"]:
        console.print(f"{counts['trained']} trained, {counts['reused']} already in {out}", highlight=False)


def _trained(df: Any) -> dict[str, int]:
    """The runs a sweep trained and those its folder held (``run_sweep``'s table says them), or nothing."""
    return {k: int(df.attrs[k]) for k in ("trained", "reused") if k in df.attrs}


def _show_roles(spec: SweepSpec, spec_file: Path | None, model_typed: bool, as_json: bool) -> None:
    """``sweep --show-roles``: each configuration's parameters as the sweep would train them (runner.roles)."""
    from abcscale.runner.roles import parameter_roles
    from abcscale.runner.store import SweepWarning

    try:
        with styled_warnings(SweepWarning):  # what the model's reading leaves open, one line each, as for a sweep
            configs = parameter_roles(spec)
    except ValueError as exc:
        where = f"{spec_file}: model" if spec_file is not None and not model_typed else "--model"
        fail(f"{where} {spec.model}: {exc}")
    if as_json:
        emit_json({"model": spec.model, "independent_weight_decay": spec.weight_decay,
                   "configurations": [asdict(c) for c in configs]})
        return

    def num(values: list[Any]) -> str:
        return " / ".join("-" if v is None else f"{v:.4g}" for v in values)

    for c in configs:
        widths = " / ".join(map(str, c.widths))
        t = Table(title=f"{c.parameterization} + {c.optimizer}, alignment {c.alignment}, {c.lr_mode} LRs, gamma "
                        f"{','.join(f'{g:g}' for g in c.gamma)} ({c.form} form): at widths {widths}",
                  title_justify="left")
        # a column only where the optimizer or the setup has the setting (SGD: no epsilon)
        eps = any(e is not None for p in c.parameters for e in p.epsilon)
        decay = any(any(p.weight_decay) for p in c.parameters)
        mult = any(m != 1 for p in c.parameters for m in p.multiplier)
        for col in ("parameter", "shape", "role", "from", "init", "init std", "LR / beta", *(["epsilon"] * eps),
                    *(["weight decay"] * decay), *(["multiplier"] * mult)):
            t.add_column(col)
        for p in c.parameters:
            t.add_row(p.name, " / ".join("x".join(map(str, s)) or "()" for s in p.shape), p.role, p.source, p.init,
                      num(p.init_std), num(p.lr_factor), *([num(p.epsilon)] * eps), *([num(p.weight_decay)] * decay),
                      *([num(p.multiplier)] * mult))
        console.print(t)
        for p in c.parameters:
            if p.changes_role:  # the sweep trains each width as its own role: said, not one role's numbers
                console.print(f"note: {p.name} changes role with the width ({' / '.join(p.roles)} at {widths}): "
                              "each width trains its own role's LR, epsilon and init; give it one in the factory's "
                              "'roles' if that is not meant", highlight=False, soft_wrap=True)
        counts = ", ".join(f"{n} {r}" for r, n in c.counts().items())
        console.print(f"{len(c.parameters)} parameters: {counts}. from: built-in = the model's own layout, roles = "
                      "the factory's 'roles', name = a name rule, shape = 1-D (vector-like) or both axes growing "
                      "(hidden), fan_in = the factory's 'fan_in' (hidden). A step's LR is beta times 'LR / beta' "
                      "times the schedule.", highlight=False, soft_wrap=True)
    if spec.weight_decay:  # the spec's own decay, on every parameter alike: no column of its own
        console.print(f"independent weight decay (--weight-decay): each step subtracts {spec.weight_decay:g} x W "
                      "from every parameter", highlight=False, soft_wrap=True)


#: results.parquet's measurements of a run (what it did, and how long it took): every other column names it
_MEASURED = frozenset({"final_loss", "eval_loss", "loss_at_init", "diverged", "compile_s", "run_s", "runs_per_call"})


def _held_runs(path: Path) -> Any:
    """The runs a folder's results.parquet lists (their settings, not their measurements), or None without a
    readable one."""
    if not path.is_file():  # a new folder: pandas and pyarrow (0.3 s) load later, while the first program compiles
        return None
    import pandas as pd
    import pyarrow.parquet as pq

    try:
        names = pq.ParquetFile(path).schema_arrow.names
        return pd.read_parquet(path, columns=[c for c in names if c not in _MEASURED])
    except (OSError, ValueError):
        return None


def _whole(values: Any) -> list[int]:
    """The distinct whole numbers of a column (base widths), anything else left out."""
    import numpy as np
    import pandas as pd

    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    return sorted({int(v) for v in x[np.isfinite(x)]})


#: results columns that spell a setting as it was typed (paths), or time it: no part of which run a row is
_SPELLED = frozenset({"model", "data", "compile_s", "run_s", "runs_per_call"})
#: results columns the runner derives from the others (each role's LR, epsilon and decay, each layer's multiplier
#: and init std, from the theory): no part of which run a row is either, and a version that computed them an ulp
#: apart listed its reused runs as dropped ones (a review, session 71)
_DERIVED = frozenset({f"{p}_{r}" for p in ("lr", "epsilon", "weight_decay", "multiplier", "init_std")
                      for r in ("embedding", "hidden", "readout", "vector", "fixed")})


def _previous_spec_dict(path: Path) -> dict[str, Any] | None:
    """The folder's spec.json as written (the spec of the runs results.parquet lists), valid today or not."""
    import json

    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _how_to_list_again(previous: dict[str, Any] | None, out: Path) -> str:
    """The dropped-runs note's advice: rerun their spec, unless this version refuses it (an older version's spec
    holding a key it ignored: a review, session 71). This sweep wrote its own spec.json over theirs, so theirs is
    kept beside it, ``spec.previous.json`` (the advice named a file that was gone: a review, session 83)."""
    import json

    kept = ""
    if previous is not None:
        try:
            tmp = out / f".spec.previous.json.{os.getpid()}.tmp"
            tmp.write_text(json.dumps(previous, indent=2))
            os.replace(tmp, out / "spec.previous.json")
            kept = f" (kept as {out / 'spec.previous.json'})"
        except OSError:  # the note still stands without it
            pass
    if previous is not None:
        try:
            SweepSpec.model_validate(previous)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(map(str, first["loc"]))
            why = f"{where}: " * bool(where) + first["msg"].removeprefix("Value error, ")
            return (f"their spec{kept} is refused by this version ({why}), so they are not listed again; give "
                    "another --out to keep the two apart")
    return f"rerun their spec{kept} to list them again, or give another --out"


def _spec_changes(previous: dict[str, Any] | None, spec: SweepSpec) -> str:
    """Why the earlier runs are not this sweep's: the settings in which the folder's previous spec differs from
    this one ("" when it does not say: no spec.json, or no setting differs)."""
    import json

    if previous is None:
        return ""
    now = json.loads(spec.model_dump_json())

    def shown(value: Any) -> str:  # a path's end names it (a file), a list's start
        text = "unset" if value is None else json.dumps(value)
        return text if len(text) <= 50 else "..." + text[-47:] if isinstance(value, str) else text[:47] + "..."

    def flat(spec: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        # a nested setting by its own name (constants.epsilon): the note cut both sides of `constants` to the same
        # first 47 characters, so it never showed which constant changed (a review)
        out: dict[str, Any] = {}
        for k, v in spec.items():
            if not prefix and k in EXECUTION_KEYS:
                continue
            if isinstance(v, dict) and v and k != "custom_tables":
                out |= flat(v, f"{prefix}{k}.")
            else:
                out[f"{prefix}{k}"] = v
        return out

    before, after = flat(previous), flat(now)
    changed = [f"{k} {shown(before.get(k))} -> {shown(after.get(k))}" for k in sorted(set(before) | set(after))
               if before.get(k) != after.get(k)]
    if changed:
        return f"; the folder's previous spec differs in {', '.join(changed)}"
    # the same settings, other cell ids: an older version keyed them otherwise (a user model's layout, since
    # session 60), and it cannot tell its runs' results are this one's (a review, session 71)
    return ("; the folder's previous spec has this sweep's settings: the version that trained those runs keyed "
            "them otherwise, so this one trained them again")


def _no_longer_listed(before: Any, after: Any) -> int:
    """How many runs ``before`` listed that the new table ``after`` does not (another spec's, replaced)."""
    if before is None or not len(before):
        return 0
    # the same run under another spelling of its model or data path (`./um/tiny.py` for `um/tiny.py`: the cells
    # are keyed by the module's bytes and reused) is the same run: the note said 4 of 4 were dropped (a review);
    # the losses, n_params and data_hash still tell another model's or data's runs apart
    keys = [c for c in before.columns if c in after.columns and c not in _SPELLED | _DERIVED]
    if not keys:
        return len(before)
    now = set(map(tuple, _unread_blank(after)[keys].astype(str).to_numpy()))
    return sum(tuple(row) not in now for row in _unread_blank(before)[keys].astype(str).to_numpy())


def _unread_blank(runs: Any) -> Any:
    """``runs`` with the epsilon columns blank where the run's optimizer divides by none (SGD, Lion, ...): the
    cell id leaves that epsilon out (``runner.spec.Cell.key``), so a rerun with another one reuses the runs and
    lists them with its own; they are not another spec's runs."""
    from abcscale.runner.optim import OPTIMIZER_VARIANTS as VARIANTS

    cols = [c for c in ("epsilon", "epsilon_mode") if c in runs.columns]
    if not cols or "optimizer_variant" not in runs.columns:
        return runs
    unread = runs["optimizer_variant"].map(lambda v: v in VARIANTS and not VARIANTS[v].uses_epsilon)
    return runs.assign(**{c: runs[c].astype(object).where(~unread, None) for c in cols})


def _runs_in_cells(cells: Path) -> int:
    """Finished runs in a sweep's cell files (their footers only)."""
    import pyarrow.parquet as pq

    n = 0
    for f in cells.glob("*.rows.parquet") if cells.is_dir() else ():
        try:
            n += int(pq.ParquetFile(f).metadata.num_rows)
        except (OSError, ValueError):
            continue
    return n


def _gammas(text: str | None) -> list[PerLayer] | None:
    """``--gamma 'e,h,r;e,h,r'``: one PerLayer per triple; an error names the triple when there are several."""
    if text is None:
        return None
    pieces = [p for p in text.split(";") if p.strip()]
    if not pieces:  # an unset variable (`--gamma "$G"`) trained at the defaults, silently; recommend refuses it
        fail(f"--gamma: empty; give 'e,h,r' (e.g. 1,1,1), or leave the flag out for the defaults, got {text!r}")
    return [parse_flag(PerLayer.parse, p, "--gamma" + (f"[{i}]" if len(pieces) > 1 else ""))
            for i, p in enumerate(pieces)]


def _check_model(spec: SweepSpec, spec_file: Path | None = None, typed: frozenset[str] | set[str] = frozenset(),
                 executor: str = "local") -> None:
    """The data, then your own model (``--model MODULE:FACTORY``): load it and lay it out at every width before
    training, so bad data or a bad reference or factory result is one line naming ``--data`` or ``--model``, or the
    SPEC file where it set them (``typed``: the parameters given as flags)."""
    from abcscale.runner.store import SweepWarning
    from abcscale.runner.sweep import check_memory, check_model

    def where(key: str) -> str:
        return f"{spec_file}: {key}" if spec_file is not None and key not in typed else f"--{key.replace('_', '-')}"

    try:
        spec.corpus()  # loaded once per process: the data's problems are said as --data, not "data:"
    except (ValueError, OSError) as exc:
        said = str(exc)
        if said.startswith("eval_fraction: "):  # the split leaves a side short: said as the fraction where one was
            # given (a flag, the spec file), else as the data (a review: a small file was blamed on a flag tune
            # and coord-check do not have)
            given = spec.eval_fraction != SweepSpec.model_fields["eval_fraction"].default
            fail(f"{where('eval_fraction' if given else 'data')}: {said.removeprefix('eval_fraction: ')}")
        fail(f"{where('data')}: {said.removeprefix('data: ')}")
    try:
        with styled_warnings(SweepWarning):  # what the model's reading leaves open (runner.user._say_readings)
            check_model(spec)
    except ValueError as exc:
        fail(f"{where('model')} {spec.model}: {exc}")
    if executor != "ray":  # a cluster's machines, not this one's, hold a ray sweep's cells
        try:
            check_memory(spec)
        except ValueError as exc:  # "widths: ..." said as the flag or the file's key (else ABCSCALE_RUN_THREADS)
            said = str(exc)
            fail(f"{where('widths')}{said.removeprefix('widths')}" if said.startswith("widths:") else said)


def _build_spec(spec_file: Path | None, overrides: dict[str, Any], names: dict[str, str] | None = None,
                typed: set[str] | None = None) -> SweepSpec:
    """The SPEC file's keys with the flags replacing theirs, checked together (a flag can make a file valid).
    Each error names where its value came from: the flag typed (``overrides``' values that are not None; ``names``
    maps a field to another command's flag, tune's ``--base-width`` for the widths), else the file's key, else
    the flag that would set it."""
    from abcscale.runner.spec import toml_data

    if spec_file is None:
        data: dict[str, Any] = {}
    else:
        try:
            data = toml_data(spec_file)
        except FileNotFoundError:
            fail(f"SPEC: no such file: {spec_file}")
        except IsADirectoryError:
            fail(f"SPEC: {spec_file} is a folder; give a TOML file")
        except (OSError, ValueError) as exc:  # unreadable, or TOML syntax (or a number of 5,000 digits)
            fail(f"{spec_file}: {python_limit(exc) if isinstance(exc, ValueError) else exc}")
        if not data:  # an empty file (or one of another format that reads as no keys) is not "all defaults"
            fail(f"SPEC: {spec_file} sets no keys; give a TOML spec (see examples/), or no SPEC for the defaults")
    try:
        return SweepSpec.from_toml(spec_file, **overrides) if spec_file else SweepSpec().with_overrides(**overrides)
    except ValidationError as exc:
        # every error of the spec the command runs, each where its value came from: the file's own errors alone
        # named the file even where a flag had replaced that key and another flag was wrong (`--steps 0` went
        # unsaid), and a check across fields named a flag nobody typed (a review)
        # what the user typed: the overrides that are set, unless the caller passes its defaults too (coord-check)
        typed = typed if typed is not None else {k for k, v in overrides.items() if v is not None}
        fail("; ".join(_said_where(part, typed, data, spec_file, names or {})
                       for part in validation_message(exc).split("; ")))


def _said_where(part: str, typed: set[str], data: dict[str, Any], spec_file: Path | None,
                names: dict[str, str]) -> str:
    """One error of a spec (``path: message``) led by the flag or the SPEC file's key that set that value: a key
    nobody typed a flag for, found in the file (at its top, or under ``constants``), names the file and the path
    (``s.toml: constants.init_scale.hidden: ...``); else the flag, with the item or layer inside its value
    (``--widths[1]``, ``--init-scale (hidden)``)."""
    field, sep, rest = part.partition(": ")
    if not sep:
        return part
    path = [x for x in re.split(r"[.\[\]]+", field) if x]  # widths.1 and widths[1] alike
    if not path:
        return part
    # the setting's own key: a constant's is under `constants` (or named flat by its own check: epsilon)
    constant = path[0] == "constants" and len(path) > 1
    inner = path[2:] if constant else path[1:]
    key = path[1] if constant else path[0]
    # a constant is typed only through its own flag: --weight-decay sets the top-level (independent) decay, not
    # constants.weight_decay, which a file's error was then blamed on (a code review)
    given = key in typed and (not constant or f"constants.{key}" in FLAGS)

    def in_file(k: str) -> bool:
        return k in data or k in (data.get("constants") or {})

    if key == "head_dim" and "must divide every width" in rest and (
            ("widths" in typed and "head_dim" not in typed)
            or (not typed & {"widths", "head_dim"} and in_file("widths") and not in_file("head_dim"))):
        # the widths or head_dim, whichever was given here (a flag before the file's key): `--widths 24` beside a
        # file's head_dim = 16 is the widths' error, not --head-dim's
        key, field, inner, rest, given = "widths", "widths", [], f"head_dim {rest}", "widths" in typed
    if not given and spec_file is not None and in_file(key):
        return f"{spec_file}: {field}: {rest}"
    flag = names.get(key) or FLAGS.get(f"constants.{key}") or FLAGS.get(key)
    if flag is None and key not in SweepSpec.model_fields:
        return part
    flag = flag or "--" + key.replace("_", "-")
    index = "".join(f"[{x}]" for x in inner if x.isdigit())
    keys = ".".join(x for x in inner if not x.isdigit())
    return f"{flag}{index}{f' ({keys})' if keys else ''}: {rest}"


# A long signature (one parameter per flag); the body parses, calls runner.coord.coord_check and prints.
def coord_check(
    ctx: typer.Context,
    parameterization: ParamReq,
    optimizer: Annotated[str, typer.Option("--optimizer", "-o", help=" | ".join(OPTIMIZER_FAMILY))],
    widths: Annotated[str, typer.Option(help="comma list, at least two")] = "32,64,128,256",
    steps: Annotated[int, typer.Option(help="updates to train", min=1)] = 5,
    log2_base_lr: Annotated[str, typer.Option("--log2-base-lr", help="log2 of the base LR beta, one value (sweep's "
                                              "--log2-lr is a grid)")] = "-6",
    alignment: AlignmentOpt = "full",
    lr_mode: LrModeOpt = LrMode.per_layer,
    lr_exponents: Annotated[str | None, typer.Option("--lr-exponents", help="override c per layer 'e,h,r'",
                                                     show_default="theory's")] = None,
    model: Annotated[str, typer.Option(help=_FIELDS["model"].description, metavar=MODEL_METAVAR)] = (
        _SPEC_DEFAULTS.model),
    depth: Annotated[int, typer.Option(help=_FIELDS["depth"].description)] = _SPEC_DEFAULTS.depth,
    batch: Annotated[int, typer.Option(help=_FIELDS["batch"].description)] = _SPEC_DEFAULTS.batch,
    seq_len: Annotated[int, typer.Option("--seq-len", help=_FIELDS["seq_len"].description)] = _SPEC_DEFAULTS.seq_len,
    head_dim: Annotated[int, typer.Option("--head-dim", help=_FIELDS["head_dim"].description)] = (
        _SPEC_DEFAULTS.head_dim),
    data: Annotated[str, typer.Option(help=_FIELDS["data"].description)] = _SPEC_DEFAULTS.data,
    max_slope: Annotated[float, typer.Option("--max-slope", help="largest allowed slope of log activation RMS "
                                             "vs log width")] = 0.25,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="runs per width whose RMS is averaged: more seeds, "
                                       "steadier slopes at small widths and batches")] = 4,
    plots: Plots = None,
    quiet: Quiet = False,
    as_json: Json = False,
) -> None:
    """Train a few steps per width; exit 0 if no layer's activations grow with width, 1 if one does or may.

    Only growth fails: under muP a readout's logits shrink with width at initialisation (slope -1/2), by design.

    A slope above --max-slope whose 95% interval (from the seeds' spread) reaches down to it is UNCLEAR, not FAIL.

    With --lr-mode global every width trains at the same LR unless --lr-exponents says otherwise.

    --plots DIR writes DIR/coord.png (activation RMS against width, one panel per layer).
    """
    lrs = parse_flag(parse_lr_grid, log2_base_lr, "--log2-base-lr")
    if len(lrs) != 1:
        fail(f"--log2-base-lr: a coordinate check trains at one base LR, got {len(lrs)} values ({log2_base_lr!r})")
    if not (max_slope > 0 and math.isfinite(max_slope)):
        fail(f"--max-slope: must be a positive number, got {max_slope:g}")
    exps = parse_flag(_lr_exponents, lr_exponents, "--lr-exponents")
    from abcscale.runner.spec import MAX_STEPS

    if steps >= MAX_STEPS:  # the check's runs train one update more (its last step's RMS): said as steps + 1, bare
        fail(f"--steps: a coordinate check trains at most {MAX_STEPS - 1:,} updates, got {steps:,}")
    overrides = {"model": model, "parameterizations": [parameterization.value], "optimizers": optimizer,
                 "alignments": alignment, "lr_modes": [lr_mode], "widths": widths, "depth": depth, "batch": batch,
                 "seq_len": seq_len, "head_dim": head_dim, "data": data}
    # the flags typed, by their spec field: the defaults are passed too (--widths 24,40 was --head-dim's error)
    plural = {"parameterization": "parameterizations", "optimizer": "optimizers", "alignment": "alignments",
              "lr_mode": "lr_modes"}
    spec = _build_spec(None, overrides, typed={plural.get(k, k) for k in ctx.params if on_command_line(ctx, k)})
    if len(set(spec.widths)) < 2:
        fail(f"--widths: a coordinate check needs at least two different widths, got {widths!r}")
    for flag, values in (("--optimizer", spec.optimizers), ("--alignment", spec.alignments)):
        if len(values) != 1:
            fail(f"{flag}: give one value, got {len(values)} ({', '.join(map(str, values)) or 'none'})")
    _check_model(spec)
    if plots is not None:  # before the training: exit 1 is the check's verdict, not a folder's
        if plots.is_file():  # said as "cannot write into FILE (File exists)" (a review)
            fail(f"--plots: {plots} is a file; give a folder (the check writes coord.png into it)")
        if (plots / "coord.png").is_dir():  # found only after the training before (a review)
            fail(f"--plots: {plots / 'coord.png'} is a folder; the check writes coord.png there")
        try:
            plots.mkdir(parents=True, exist_ok=True)
            probe = plots / f".coord-{os.getpid()}.tmp"  # an existing folder may still refuse files
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            fail(f"--plots: cannot write into {plots} ({exc.strerror or exc})")
    from abcscale.runner.coord import coord_check as run_check
    from abcscale.runner.coord import plot as plot_check

    with status("coordinate check: loading JAX and the data", quiet=quiet) as say:
        result = run_check(spec, log2_lr=lrs[0], steps=steps, max_slope=max_slope, seeds=seeds, lr_exponents=exps,
                           on_status=lambda text: say(f"coordinate check: {text}"))
    figure = None
    if plots is not None:
        figure = plots / "coord.png"
        try:
            plot_check(result, str(figure))
        except OSError as exc:
            fail(f"--plots: cannot write {figure} ({exc.strerror or exc})")
    if as_json:
        # ok and exit_code as `check --json` names them (passed kept for scripts written before)
        emit_json({"ok": result.passed, "exit_code": 0 if result.passed else 1, "passed": result.passed,
                   "verdict": result.verdict, "level": result.level, "notes": result.notes,
                   "max_slope": max_slope, "widths": spec.widths,
                   "setup": {"parameterization": parameterization.value, "optimizer": spec.optimizers[0],
                             "alignment": alignment, "lr_mode": LrMode(lr_mode).value, "log2_base_lr": lrs[0],
                             "lr_exponents": list(exps) if exps else None, "steps": steps, "seeds": seeds,
                             "model": spec.model},
                   "plots": {"coord": str(figure)} if figure else {},
                   # a diverged step's slope is +inf, which JSON cannot carry: null there, and the steps named
                   # intervals: [low, high] per step at `level`, null where a run diverged or where one seed at two
                   # widths gives none
                   "layers": [{"layer": v.layer, "layer_type": v.layer_type, "slopes": [_finite(x) for x in v.slopes],
                               "intervals": [None if not (math.isfinite(lo) and math.isfinite(hi)) else [lo, hi]
                                             for lo, hi in v.intervals],
                               "worst_step": v.worst_step, "worst_slope": _finite(v.worst_slope),
                               "passed": v.passed, "verdict": v.verdict, "decisive_step": v.decisive_step,
                               "diverged_steps": list(v.diverged_steps)}
                              for v in result.layers]})
    else:
        print_coord_check(result, figure, exps)
    raise typer.Exit(0 if result.passed else 1)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def coord_setup(result: CoordCheck, lr_exponents: tuple[float, float, float] | None = None) -> str:
    """What a coordinate check trained, its LR mode named: ``standard + adam, per-layer LRs (theory's c)``. The
    table and the verdict said neither, and ``-p standard`` passing under the per-layer exponents read as plain
    SP passing (a user review)."""
    spec = result.spec
    name = spec.parameterization_name(spec.parameterizations[0])
    if lr_exponents:
        lrs = f"LR exponents c = {','.join(f'{c:g}' for c in lr_exponents)} (--lr-exponents)"
    elif LrMode(spec.lr_modes[0]) is LrMode.global_:
        lrs = "one shared LR (--lr-mode global)"
    else:
        lrs = "per-layer LRs (theory's c, --lr-mode per_layer)"
    return f"{name} + {spec.optimizers[0]}, {lrs}"


def print_coord_check(result: CoordCheck, figure: Path | None,
                      lr_exponents: tuple[float, float, float] | None = None) -> None:
    setup = coord_setup(result, lr_exponents)
    t = Table(title=f"coordinate check, {setup}: slope of log activation RMS vs log width (max slope "
                    f"{result.max_slope:g})")
    for col in ("layer", "type", "slope per step", f"deciding step ({result.level:.0%} interval)", "verdict"):
        t.add_column(col)
    shown = {"pass": "[green]pass[/]", "fail": "[red]FAIL[/]", "unclear": "[yellow]unclear[/]"}
    for v in result.layers:
        # the step that decided the verdict (a FAIL's surest step, else the worst one), with its interval
        k = v.decisive_step
        lo, hi = v.intervals[k] if v.intervals else (math.nan, math.nan)
        band = f" [{lo:+.2f}, {hi:+.2f}]" if math.isfinite(lo) and math.isfinite(hi) else ""
        t.add_row(v.layer, v.layer_type, " ".join(f"{s:+.2f}" for s in v.slopes), f"{v.slopes[k]:+.2f}{band} (t={k})",
                  shown[v.verdict])
    console.print(t)
    if figure:
        console.print(f"plot: {figure}", highlight=False)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
    diverged = sorted({s for v in result.layers for s in v.diverged_steps})
    seeds = result.spec.seeds
    spec = result.spec
    if result.verdict == "pass" and not lr_exponents and LrMode(spec.lr_modes[0]) is LrMode.per_layer \
            and spec.parameterization_name(spec.parameterizations[0]) == "standard":
        # standard's per-layer exponents scale each layer's LR with the width, which makes it width-stable: its PASS
        # is no verdict on SP as teams train it, one LR for every layer (a user review: read as "SP passes")
        console.print("note: standard passed with its per-layer LR exponents (theory's c: each layer's LR scaled "
                      "with the width); standard as usually trained, one LR shared by every layer, is "
                      "--lr-mode global", highlight=False, soft_wrap=True)
    if result.verdict == "pass":
        console.print(f"PASS ({setup})", highlight=False)  # stdout, as check's verdict
    elif diverged:  # a non-finite activation is a slope of +inf: say the run blew up, not that it grew
        # at step 0 no update has run: the model's forward pass is at fault, and a lower LR cannot help (a review)
        fix = ("the initialisation's forward pass, before any update: check the model, not the LR" if 0 in diverged
               else "lower --log2-base-lr")
        console.print(f"FAIL: training diverged (activations not finite at step(s) "
                      f"{', '.join(map(str, diverged))}); {fix}", highlight=False)
    elif result.verdict == "fail":
        console.print(f"FAIL: activations grow with width ({setup})", highlight=False)
    else:
        unclear = [v for v in result.layers if v.verdict == "unclear"]
        names = ", ".join(v.layer for v in unclear)
        if any(math.isnan(v.intervals[v.decisive_step][0]) for v in unclear):
            console.print(f"UNCLEAR: slopes above {result.max_slope:g} ({names}) from one seed at two widths, which "
                          "cannot tell growth from noise; give --seeds 2 or more, or a third width", highlight=False)
        else:
            console.print(f"UNCLEAR: slopes above {result.max_slope:g} ({names}) could be the seeds' noise: their "
                          f"{result.level:.0%} intervals reach down to it; more --seeds (now {seeds}) or a wider "
                          "--widths range would tell", highlight=False)


#: the largest |c| --lr-exponents takes: 2^-10 per width doubling is already no LR a check would train at
LR_EXPONENT_LIMIT = 10


def _lr_exponents(value: str) -> tuple[float, float, float]:
    parts = [float(x) for x in value.split(",")]
    if len(parts) != 3 or not all(math.isfinite(x) for x in parts):
        raise ValueError(f"expected 3 finite numbers 'e,h,r', got {value!r}")
    # theory's c lie in [-1/2, 2]; at 2000 the widths' LR factor overflowed into a traceback (a review)
    if any(abs(x) > LR_EXPONENT_LIMIT for x in parts):
        raise ValueError(f"each exponent must lie in [-{LR_EXPONENT_LIMIT}, {LR_EXPONENT_LIMIT}] (theory's lie in "
                         f"[-0.5, 2]), got {value!r}")
    return parts[0], parts[1], parts[2]
