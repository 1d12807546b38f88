"""Run a sweep: every cell (config x width) trains its grid of learning rates and seeds.

:func:`run_sweep` runs (or resumes) the cells of a spec into a folder, one sweep per folder;
:func:`run_cell` trains one cell without writing anything; :func:`compile_ahead` queues the programs a
sweep will need. The folder's layout, its lock, the committed cell files and the merged tables are
:mod:`abcscale.runner.store`'s.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from abcscale import theory
from abcscale.runner.spec import Cell, SweepSpec
from abcscale.runner.store import CellResult, Results, commit_cell, committed_rows, folder_lock, merge

if TYPE_CHECKING:
    from abcscale.runner.train import Compiler
from abcscale.schemas.enums import LAYERS, LrMode
from abcscale.schemas.sweep import DEFAULT_LOSS
from abcscale.schemas.theory import BaseConfig

Four = tuple[float, float, float, float]
#: the roles of the per-role arrays, in their order (runner.nn: EMB, HID, OUT, VEC)
ROLE_NAMES = ("embedding", "hidden", "readout", "vector")


@dataclass(frozen=True)
class LayerHyper:
    """Per-layer-type numbers of one cell. Multipliers and init stds are indexed embedding, hidden, readout;
    LRs, epsilons and weight decays also have the vector-like role (biases, LayerNorm gains) last."""

    multiplier: tuple[float, float, float]
    init_std: tuple[float, float, float]
    lr_factor: Four  # effective LR = beta * lr_factor
    epsilon: Four
    weight_decay: Four = (0.0, 0.0, 0.0, 0.0)  # AdamW's per-layer decay; 0 for the others and vector-like ones
    form: str = "abc"  # "multiplier_free" for a user model (every multiplier folded into init std and LR)
    fan_in_exponent: float = 0.5  # a hidden matrix with fan-in r * width starts at init_std * r**-this


def layer_hyper(spec: SweepSpec, cell: Cell, lr_exponents: tuple[float, float, float] | None = None) -> LayerHyper:
    """Multipliers, init stds, LR factors, Adam epsilons and AdamW weight decays from the theory engine.

    ``per_layer``: lr_l = beta * gamma_l * (n / base)^-c_l. ``global``: one shared LR, lr_l = beta * gamma_l,
    so the swept beta *is* the learning rate and its optimum moves with width as theory's global c says.
    ``lr_exponents`` replaces c (deliberately wrong settings, measured exponents). The weight decays are
    theory's per-layer rule for ``spec.constants.weight_decay`` (coupled: wd * (n / base)^c_l, with the c
    used, so lr_l * wd_l is the same at every width in per_layer mode); they do not depend on beta. The
    vector-like role follows ``theory.groups.vector_setting`` (no multiplier, no decay; in global mode the
    embedding's gamma). A user model (``spec.model`` a factory reference) gets the same answer in the
    multiplier-free form (``theory.groups.group_spec``), which trains identically.
    """
    from abcscale.runner.optim import variant
    from abcscale.runner.user import is_reference
    from abcscale.schemas.groups import Form
    from abcscale.theory.groups import group_spec

    family = variant(cell.optimizer).family
    base = BaseConfig(width=spec.base, beta=1.0, **dict(cell.constants(spec)))
    override = dict(zip(LAYERS, lr_exponents, strict=True)) if lr_exponents else None
    tr = theory.transfer(spec.parameterization(cell.parameterization), family, base, cell.width,
                         cell.alignment, cell.lr_mode, c_override=override)
    form = Form.multiplier_free if is_reference(spec.model) else Form.abc
    gs = group_spec(tr, form, epsilon_mode=spec.constants.epsilon_mode)
    global_lr = cell.lr_mode is LrMode.global_ and not override
    roles = [gs[r] for r in ROLE_NAMES]
    # The runner's global mode trains at beta * gamma_l (beta is the shared LR) where the theory's transfer
    # scales gamma by the global c; the form's factor on the abc LR (1 in the abc form) carries over.
    gamma = [cell.gamma[l] for l in LAYERS] + [cell.gamma[LAYERS[0]]]  # vector-like: the embedding's
    abc_lr = [tr[l].lr for l in LAYERS] + [tr[LAYERS[0]].lr]
    lrs = [g * (s.lr / a) if global_lr else s.lr for g, a, s in zip(gamma, abc_lr, roles, strict=True)]
    eps = spec.constants.epsilon  # where the family has no epsilon rule (adam_scaled), the same at every width

    def three(values: list[float]) -> tuple[float, float, float]:
        return values[0], values[1], values[2]

    return LayerHyper(multiplier=three([s.multiplier or 1.0 for s in roles]),
                      init_std=three([s.init_std or 1.0 for s in roles]),
                      lr_factor=cast(Four, tuple(lrs)),
                      epsilon=cast(Four, tuple(eps if s.epsilon is None else s.epsilon for s in roles)),
                      weight_decay=cast(Four, tuple(s.weight_decay or 0.0 for s in roles)),
                      form=form.value, fan_in_exponent=gs["hidden"].init_exponent)


def record_steps(spec: SweepSpec) -> tuple[int, ...]:
    steps = spec.coord_steps if spec.coord_steps is not None else [0, 1, spec.steps // 2, spec.steps - 1]
    return tuple(sorted({s for s in steps if 0 <= s < spec.steps}))


def chunk_size(spec: SweepSpec, width: int, n_runs: int) -> int:
    """Runs per compiled call. On CPU one-at-a-time wins beyond small widths; on a GPU vmap wins at every
    width measured (bench_runner's batching benchmark). The runs split into equal chunks of at most
    ``spec.chunk``, so padding the last chunk wastes at most one run per call (22 runs: 11 + 11, not
    16 + 6 padded to 16)."""
    if spec.batching == "single":
        return 1
    if spec.batching == "auto":
        import jax

        if jax.default_backend() == "cpu" and width > 64:
            return 1
    calls = math.ceil(n_runs / min(spec.chunk, n_runs))
    return math.ceil(n_runs / calls)


def _program(spec: SweepSpec, cell: Cell, record: tuple[int, ...], curves: bool):
    from abcscale.runner.nn import ModelConfig
    from abcscale.runner.optim import variant
    from abcscale.runner.train import Program
    from abcscale.runner.user import is_reference

    if is_reference(spec.model):  # the fan-in exponent is a+b of hidden: 1/2 in every named parameterization
        cfg = ModelConfig("user", cell.width, spec.depth, spec.seq_len, factory=spec.model,
                          fan_in_exponent=layer_hyper(spec, cell).fan_in_exponent)
    else:
        cfg = ModelConfig(cast(Any, spec.model), cell.width, spec.depth, spec.seq_len, head_dim=spec.head_dim,
                          attn_scale=spec.attn_scale)
    # the decay's form is static (it places the decay in the chain); only a decaying variant reads it
    mode = spec.constants.weight_decay_mode.value if variant(cell.optimizer).decays else "coupled"
    return Program(cfg, cell.optimizer, spec.steps, spec.batch, schedule=spec.schedule, warmup=spec.warmup,
                   momentum=spec.momentum, weight_decay=spec.weight_decay, weight_decay_mode=mode,
                   eval_batches=spec.eval_batches,
                   final_window=max(1, int(round(spec.final_window * spec.steps))),
                   divergence_factor=spec.divergence_factor, record_steps=record, curves=curves)



def run_cell(spec: SweepSpec, cell: Cell, *, compiler: Compiler | None = None,
             lr_exponents: tuple[float, float, float] | None = None, record: tuple[int, ...] | None = None,
             on_runs: Callable[[int], None] | None = None,
             on_compile: Callable[[Cell], None] | None = None) -> CellResult:
    """Train every (log2 LR, seed) of one cell, in chunks of one vmapped program each.

    ``compiler`` holds the compiled programs (a sweep shares one across cells; default: one for this cell).
    ``on_compile(cell)`` is called before a chunk waits for its program to compile, ``on_runs(n)`` after
    each chunk of ``n`` runs.
    """
    from abcscale.runner.nn import n_params
    from abcscale.runner.train import Compiler, enable_compilation_cache, run_program

    enable_compilation_cache()
    compiler = compiler or Compiler()
    corpus = spec.corpus()
    record = record_steps(spec) if record is None else record
    prog = _program(spec, cell, record, spec.curves)
    hyper = layer_hyper(spec, cell, lr_exponents)
    runs = [(g, s) for g in spec.log2_lr for s in range(spec.seeds)]
    size = chunk_size(spec, cell.width, len(runs))
    fac = np.asarray(hyper.lr_factor)
    outcomes = []
    for i in range(0, len(runs), size):
        part = runs[i:i + size]
        padded = part + [part[-1]] * (size - len(part))  # same M every call: one compiled program
        lr = np.stack([2.0 ** g * fac for g, _ in padded])
        eps = np.tile(np.asarray(hyper.epsilon), (size, 1))
        seeds = np.asarray([s for _, s in padded])
        if on_compile and compiler.state(prog, size, corpus.train, corpus.eval) != "ready":
            on_compile(cell)
        out = run_program(prog, corpus.train, corpus.eval, np.asarray(hyper.multiplier),
                          np.asarray(hyper.init_std), lr, eps, seeds, wd_3=np.asarray(hyper.weight_decay),
                          compiler=compiler)
        outcomes.append((part, out))
        if on_runs:
            on_runs(len(part))
    return _tables(spec, cell, prog, hyper, corpus, n_params(prog.specs()), outcomes)


def check_model(spec: SweepSpec) -> None:
    """A user model (``spec.model`` a factory reference) loads and lays out at every width, or a ValueError
    starting ``model:`` (or the bad field) says why, before any training starts."""
    from abcscale.runner.user import check, is_reference

    if is_reference(spec.model):
        check(spec.model, spec.widths, spec.depth, spec.seq_len)


def compile_ahead(spec: SweepSpec, cells: list[Cell], compiler: Compiler) -> None:
    """Queue the programs of ``cells``, in order, for compilation on ``compiler``'s background thread."""
    from abcscale.runner.train import enable_compilation_cache

    enable_compilation_cache()
    corpus = spec.corpus()
    n_runs = len(spec.log2_lr) * spec.seeds
    for cell in cells:
        compiler.ahead(_program(spec, cell, record_steps(spec), spec.curves), chunk_size(spec, cell.width, n_runs),
                       corpus.train, corpus.eval)


def _tables(spec, cell, prog, hyper, corpus, n_par, outcomes) -> CellResult:
    from abcscale.runner.optim import variant

    opt = variant(cell.optimizer)
    rows: list[dict[str, Any]] = []
    coord: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    for part, out in outcomes:
        for j, (g, seed) in enumerate(part):
            beta = 2.0 ** g
            ident = {"parameterization": cell.parameterization, "optimizer": opt.family.value,
                     "alignment": cell.alignment, "lr_mode": cell.lr_mode.value, "width": cell.width,
                     "beta": beta, "seed": seed}
            row = ident | {
                "depth": spec.depth, "n_params": n_par, "base_width": spec.base,
                **{f"gamma_{l.value}": cell.gamma[l] for l in LAYERS},
                **{f"lr_{r}": beta * hyper.lr_factor[i] for i, r in enumerate(ROLE_NAMES)},
                "steps": spec.steps, "tokens": spec.steps * spec.batch * spec.seq_len,
                "final_loss": float(out.final_loss[j]), "eval_loss": float(out.eval_loss[j]),
                "loss_at_init": float(out.loss_at_init[j]), "diverged": bool(out.diverged[j]),
                "optimizer_variant": cell.optimizer, "model": spec.model, "form": hyper.form, "log2_lr": g,
                "batch": spec.batch, "seq_len": spec.seq_len, "head_dim": spec.head_dim,
                **{f"multiplier_{l.value}": hyper.multiplier[i] for i, l in enumerate(LAYERS)},
                **{f"init_std_{l.value}": hyper.init_std[i] for i, l in enumerate(LAYERS)},
                **({f"epsilon_{r}": hyper.epsilon[i] for i, r in enumerate(ROLE_NAMES)} if opt.uses_epsilon else {}),
                **({f"weight_decay_{r}": hyper.weight_decay[i] for i, r in enumerate(ROLE_NAMES)}
                   | {"weight_decay_mode": spec.constants.weight_decay_mode.value} if opt.decays else {}),
                "epsilon": spec.constants.epsilon, "epsilon_mode": spec.constants.epsilon_mode.value,
                "data": spec.data, "data_hash": corpus.sha256,
                "compile_s": out.compile_s, "run_s": out.run_s, "runs_per_call": len(out.final_loss),
            }
            rows.append(row)
            if out.curves is not None:
                curves.extend(ident | {"step": t, "loss": float(v)} for t, v in enumerate(out.curves[j]))
            if out.coord:
                for name in out.coord["act_rms"]:
                    for r, step in enumerate(prog.record_steps):
                        coord.append(ident | {
                            "step": step, "layer": name, "layer_type": _layer_type(prog, name),
                            "act_rms": float(out.coord["act_rms"][name][j, r]),
                            "update_rms": float(out.coord["update_rms"][name][j, r]),
                            "alignment_A": float(out.coord["alignment"][name][j, r]),
                        })
    return CellResult(pd.DataFrame(rows), pd.DataFrame(coord), pd.DataFrame(curves))


def _layer_type(prog, name: str) -> str:
    """The probed parameter's role; a user model's probe on an activation is ``activation``."""
    s = prog.specs().get(name)
    return "activation" if s is None else ROLE_NAMES[s.layer]


# --- executors --------------------------------------------------------------------------------------


def _run_cell_task(spec_json: str, cell_json: str) -> CellResult:
    """A Ray task: module-level so workers import it by name."""
    return run_cell(SweepSpec.model_validate_json(spec_json), Cell.model_validate_json(cell_json))


def _ray_cells(spec: SweepSpec, todo: list[tuple[str, Cell]], commit, address: str | None):
    import ray

    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    task = ray.remote(_run_cell_task)
    pending = {task.remote(spec.model_dump_json(), c.model_dump_json()): (k, c) for k, c in todo}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        key, cell = pending.pop(ready[0])
        commit(key, cell, ray.get(ready[0]))


def run_sweep(spec: SweepSpec, out_dir: str | Path, *, progress: bool = True, executor: str = "local",
              address: str | None = None) -> pd.DataFrame:
    """Run (or resume) a sweep; returns the rows of ``results.parquet`` for this spec's cells.

    ``executor="ray"`` sends each unfinished cell to a Ray cluster (``address``; None starts or joins a
    local one); results are committed by this process as they arrive. ``progress`` draws a bar on stderr.
    """
    if executor not in ("local", "ray"):
        raise ValueError(f"executor must be 'local' or 'ray', got {executor!r}")
    check_model(spec)
    out = Path(out_dir)
    (out / "cells").mkdir(parents=True, exist_ok=True)
    with folder_lock(out):
        return _run_locked(spec, out, progress, executor, address)


def _run_locked(spec: SweepSpec, out: Path, progress: bool, executor: str, address: str | None) -> pd.DataFrame:
    corpus = spec.corpus()
    (out / "spec.json").write_text(spec.model_dump_json(indent=2))
    cells = [(c.key(spec, corpus.sha256), c) for c in spec.cells()]
    done: dict[str, pd.DataFrame] = {}
    for key, _ in cells:  # a loop, not a comprehension: the damaged-file warning points at run_sweep's caller
        if (rows := committed_rows(out, key)) is not None:
            done[key] = rows
    todo = [(k, c) for k, c in cells if k not in done]
    results = Results(out, [k for k, _ in cells], done)
    n_runs = len(spec.log2_lr) * spec.seeds
    bar = _Progress(progress, total=len(todo) * n_runs, skipped=len(cells) - len(todo))

    def commit(key: str, cell: Cell, res: CellResult) -> None:
        commit_cell(out, key, res)
        # Read back, as a resume would: the merged table is the same whichever run computed a cell.
        results.add(key, pd.read_parquet(out / "cells" / f"{key}.rows.parquet"))
        if executor == "ray":
            bar.advance(len(res.rows))

    with bar:
        if executor == "ray":
            _ray_cells(spec, todo, commit, address)
        else:
            from abcscale.runner.train import Compiler

            # Cells sharing a program (one width) run back to back, and the next width compiles meanwhile.
            todo.sort(key=lambda kc: kc[1].width)
            with Compiler() as compiler:
                compile_ahead(spec, [c for _, c in todo], compiler)
                for key, cell in todo:
                    bar.describe(cell)
                    commit(key, cell, run_cell(spec, cell, compiler=compiler, on_runs=bar.advance,
                                               on_compile=bar.compiling))
    return merge(out, [k for k, _ in cells], results)


@dataclass(frozen=True)
class BestLr:
    """The best swept LR of one (configuration, width): lowest mean eval loss over seeds among runs that
    did not diverge (None when all diverged)."""

    parameterization: str
    optimizer: str  # the runner's variant (adam_atan2, ...)
    alignment: str
    lr_mode: str
    width: int
    log2_lr: float | None
    eval_loss: float | None
    diverged: int
    runs: int


def best_lrs(rows: pd.DataFrame) -> list[BestLr]:
    """One :class:`BestLr` per (configuration, width) of a results table, in the table's order."""
    out = []
    keys = ["parameterization", "optimizer_variant", "alignment", "lr_mode", "width"]
    for key, g in rows.groupby(keys, sort=False):
        p, o, a, m, w = cast(tuple[Any, ...], key)
        ok = g[~g["diverged"]]
        lr = loss = None
        if len(ok):
            by_lr = ok.groupby("log2_lr")[DEFAULT_LOSS].mean()  # the fitter's default loss too
            i = int(np.argmin(by_lr.to_numpy()))  # the first of equal minima, as idxmin
            lr, loss = float(by_lr.index[i]), float(by_lr.iloc[i])
        out.append(BestLr(str(p), str(o), str(a), str(m), int(w), lr, loss, int(g["diverged"].sum()), len(g)))
    return out


class _Progress:
    """A rich progress bar with ETA on stderr, or nothing when ``progress`` is off. While a cell waits for
    its program to compile (tens of seconds at large widths) the bar says so."""

    def __init__(self, on: bool, total: int, skipped: int) -> None:
        self.on, self.total, self.skipped = on, total, skipped
        self.label = "sweep"

    def __enter__(self) -> _Progress:
        if self.on:
            import rich.progress as rp
            from rich.console import Console

            self.p = rp.Progress(rp.SpinnerColumn(), rp.TextColumn("{task.description}"), rp.BarColumn(),
                                 rp.MofNCompleteColumn(), rp.TimeRemainingColumn(), console=Console(stderr=True))
            self.p.start()
            note = f" ({self.skipped} cells already done)" if self.skipped else ""
            self.task = self.p.add_task(f"sweep{note}", total=max(self.total, 1))
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.on:
            self.p.stop()

    def advance(self, n: int) -> None:
        if self.on:
            self.p.update(self.task, advance=n, description=self.label)

    def describe(self, cell: Cell) -> None:
        self.label = f"{cell.parameterization}/{cell.optimizer}/{cell.lr_mode.value} w={cell.width}"
        if self.on:
            self.p.update(self.task, description=self.label)

    def compiling(self, cell: Cell) -> None:
        if self.on:
            self.p.update(self.task, description=f"compiling width {cell.width}")
