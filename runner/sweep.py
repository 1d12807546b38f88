"""Run a sweep: every cell (config x width) trains its grid of learning rates and seeds.

Output directory::

    results.parquet      one row per run (schemas.sweep.SweepRow contract, plus extra columns)
    coord.parquet        per-layer activation RMS, update RMS and alignment A_l at a few steps
    curves.parquet       per-step train loss (when ``spec.curves``)
    cells/<key>.*.parquet  one committed file per finished cell; a rerun skips these
    spec.json            the spec that produced the tables
    .sweep.lock          held (flock) by the running sweep, with its pid: a second sweep into the folder refuses

Crash safety: a cell's files are written to a temporary name and renamed into place (atomic on POSIX),
rows last, so a killed sweep loses at most the cell in flight. ``results.parquet`` is rewritten the same way
as cells finish, so a killed first run still leaves the finished cells' rows. A committed cell file that no
longer reads (truncated, unreadable) is renamed ``*.damaged``, kept, and its cell recomputed.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa

from abcscale import theory
from abcscale.runner.spec import Cell, SweepSpec

if TYPE_CHECKING:
    from abcscale.runner.train import Compiler
from abcscale.schemas.enums import LAYERS, Layer, LrMode
from abcscale.schemas.theory import BaseConfig


@dataclass(frozen=True)
class LayerHyper:
    """Per-layer-type numbers of one cell, indexed embedding, hidden, readout."""

    multiplier: tuple[float, float, float]
    init_std: tuple[float, float, float]
    lr_factor: tuple[float, float, float]  # effective LR = beta * lr_factor
    epsilon: tuple[float, float, float]
    weight_decay: tuple[float, float, float] = (0.0, 0.0, 0.0)  # AdamW's per-layer decay; 0 for the others


def layer_hyper(spec: SweepSpec, cell: Cell, lr_exponents: tuple[float, float, float] | None = None) -> LayerHyper:
    """Multipliers, init stds, LR factors, Adam epsilons and AdamW weight decays from the theory engine.

    ``per_layer``: lr_l = beta * gamma_l * (n / base)^-c_l. ``global``: one shared LR, lr_l = beta * gamma_l,
    so the swept beta *is* the learning rate and its optimum moves with width as theory's global c says.
    ``lr_exponents`` replaces c (deliberately wrong settings, measured exponents). The weight decays are
    theory's per-layer rule for ``spec.constants.weight_decay`` (coupled: wd * (n / base)^c_l, with the c
    used, so lr_l * wd_l is the same at every width in per_layer mode); they do not depend on beta.
    """
    from abcscale.runner.optim import variant

    family = variant(cell.optimizer).family
    base = BaseConfig(width=spec.base, beta=1.0, **dict(cell.constants(spec)))
    override = dict(zip(LAYERS, lr_exponents, strict=True)) if lr_exponents else None
    tr = theory.transfer(spec.parameterization(cell.parameterization), family, base, cell.width,
                         cell.alignment, cell.lr_mode, c_override=override)
    def per_layer(value: Callable[[Layer], float]) -> tuple[float, float, float]:
        e, h, r = LAYERS
        return value(e), value(h), value(r)

    global_lr = cell.lr_mode is LrMode.global_ and not override
    eps = spec.constants.epsilon  # where the family has no epsilon rule (adam_scaled), the same at every width
    return LayerHyper(multiplier=per_layer(lambda l: tr[l].multiplier), init_std=per_layer(lambda l: tr[l].init_std),
                      lr_factor=per_layer(lambda l: cell.gamma[l] if global_lr else tr[l].lr),
                      epsilon=per_layer(lambda l: eps if (e := tr[l].epsilon) is None else e),
                      weight_decay=per_layer(lambda l: tr[l].weight_decay or 0.0))


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

    cfg = ModelConfig(spec.model, cell.width, spec.depth, spec.seq_len, head_dim=spec.head_dim,
                      attn_scale=spec.attn_scale)
    # the decay's form is static (it places the decay in the chain); only a decaying variant reads it
    mode = spec.constants.weight_decay_mode.value if variant(cell.optimizer).decays else "coupled"
    return Program(cfg, cell.optimizer, spec.steps, spec.batch, schedule=spec.schedule, warmup=spec.warmup,
                   momentum=spec.momentum, weight_decay=spec.weight_decay, weight_decay_mode=mode,
                   eval_batches=spec.eval_batches,
                   final_window=max(1, int(round(spec.final_window * spec.steps))),
                   divergence_factor=spec.divergence_factor, record_steps=record, curves=curves)


@dataclass
class CellResult:
    rows: pd.DataFrame
    coord: pd.DataFrame
    curves: pd.DataFrame


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
                **{f"lr_{l.value}": beta * hyper.lr_factor[i] for i, l in enumerate(LAYERS)},
                "steps": spec.steps, "tokens": spec.steps * spec.batch * spec.seq_len,
                "final_loss": float(out.final_loss[j]), "eval_loss": float(out.eval_loss[j]),
                "loss_at_init": float(out.loss_at_init[j]), "diverged": bool(out.diverged[j]),
                "optimizer_variant": cell.optimizer, "model": spec.model, "log2_lr": g,
                "batch": spec.batch, "seq_len": spec.seq_len, "head_dim": spec.head_dim,
                **{f"multiplier_{l.value}": hyper.multiplier[i] for i, l in enumerate(LAYERS)},
                **{f"init_std_{l.value}": hyper.init_std[i] for i, l in enumerate(LAYERS)},
                **({f"epsilon_{l.value}": hyper.epsilon[i] for i, l in enumerate(LAYERS)} if opt.uses_epsilon else {}),
                **({f"weight_decay_{l.value}": hyper.weight_decay[i] for i, l in enumerate(LAYERS)}
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
    return ("embedding", "hidden", "readout")[prog.specs()[name].layer]


# --- committing -------------------------------------------------------------------------------------


def _atomic_parquet(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    df.to_parquet(tmp, index=False)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _commit(out_dir: Path, key: str, res: CellResult) -> None:
    cells = out_dir / "cells"
    for kind, df in (("coord", res.coord), ("curves", res.curves)):
        if len(df):
            _atomic_parquet(df, cells / f"{key}.{kind}.parquet")
    _atomic_parquet(res.rows, cells / f"{key}.rows.parquet")  # last: its presence marks the cell done


KINDS = ("rows", "coord", "curves")
MERGED = {"rows": "results.parquet", "coord": "coord.parquet", "curves": "curves.parquet"}


def _committed_rows(out_dir: Path, key: str) -> pd.DataFrame | None:
    """A committed cell's rows, or None when the cell has to run: not committed, or one of its files no
    longer reads. Such a file is renamed ``*.damaged`` (kept for inspection, never deleted) with a warning
    naming it; the cell's intact files are overwritten when it is recomputed."""
    if not (out_dir / "cells" / f"{key}.rows.parquet").exists():
        return None
    rows, damaged = None, False
    for kind in KINDS:
        path = out_dir / "cells" / f"{key}.{kind}.parquet"
        if not path.exists():
            continue
        try:
            frame = pd.read_parquet(path)  # a whole read: a truncated file fails at its footer, others later
        except (OSError, ValueError, pa.ArrowException) as exc:
            damaged, aside = True, _move_aside(path)
            reason = " ".join(str(exc).split())[:200]
            warnings.warn(f"{path}: damaged cell file ({type(exc).__name__}: {reason}); moved aside to "
                          f"{aside.name}, its cell is recomputed", SweepWarning, stacklevel=4)
            continue
        rows = frame if kind == "rows" else rows
    return None if damaged else rows


def _move_aside(path: Path) -> Path:
    """Rename ``path`` to ``path.damaged`` (``.damaged.1``, ... when taken): never over an earlier one."""
    aside, n = path.with_name(path.name + ".damaged"), 0
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.damaged.{n}")
    os.replace(path, aside)
    return aside


class _Results:
    """``results.parquet`` rewritten atomically as cells finish: the rows of the committed cells in the spec's
    cell order, so a killed sweep leaves a readable partial table and the last one is the full table.

    A rewrite is the whole table, fsync included: 50 ms for 1,000 rows and 90 ms for 10,000 on 2 CPU cores,
    against seconds or more per cell. After a rewrite that took t, the next waits until 20 t has passed, which
    keeps rewriting under ~5% of the sweep's time on any size; the table then lags the committed cells by at
    most that wait (the cell files stay the record, and the end of the sweep writes the whole table)."""

    def __init__(self, out_dir: Path, keys: list[str], done: dict[str, pd.DataFrame]) -> None:
        self.path, self.keys, self.done = out_dir / MERGED["rows"], keys, done
        self.next_at = 0.0

    def add(self, key: str, rows: pd.DataFrame) -> None:
        self.done[key] = rows
        start = time.monotonic()
        if start >= self.next_at:
            _atomic_parquet(self.table(), self.path)
            self.next_at = start + 20 * (time.monotonic() - start)

    def table(self) -> pd.DataFrame:
        parts = [self.done[k] for k in self.keys if k in self.done]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _merge(out_dir: Path, keys: list[str], results: _Results) -> pd.DataFrame:
    """Write the merged tables: rows from ``results`` (what was read or committed), coord and curves from
    the cell files, each in the spec's cell order."""
    for kind in ("coord", "curves"):
        parts = [pd.read_parquet(p) for key in keys if (p := out_dir / "cells" / f"{key}.{kind}.parquet").exists()]
        if parts:
            _atomic_parquet(pd.concat(parts, ignore_index=True), out_dir / MERGED[kind])
    rows = results.table()
    if len(rows):
        _atomic_parquet(rows, results.path)
    return rows


# --- one sweep per folder -----------------------------------------------------------------------------


class SweepBusy(ValueError):
    """Another running sweep holds the output folder (a ValueError: the CLI reports it as one line, exit 2)."""


class SweepWarning(UserWarning):
    """The output folder needed a repair: a damaged cell file moved aside, or a stale lock taken over."""


@contextlib.contextmanager
def folder_lock(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir/.sweep.lock`` for the sweep: an flock, with the holder's pid written inside.

    The kernel drops an flock when its process dies, so a lock file that still names a pid nobody holds it
    for is stale (a killed sweep): it is taken over with a warning. The file is never removed (removing a
    locked file lets a third sweep lock a new one beside it); a clean exit empties it. Local file systems
    only: flock over NFS is not reliable.
    """
    path = out_dir / ".sweep.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise SweepBusy(f"sweep folder {out_dir} is in use by another sweep (pid {holder}); wait for it to "
                            f"finish or write to another folder") from None
        if stale := os.pread(fd, 32, 0).decode(errors="replace").strip():
            warnings.warn(f"{path}: taking over the lock of sweep pid {stale}, which ended without releasing it",
                          SweepWarning, stacklevel=4)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock


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
        if (rows := _committed_rows(out, key)) is not None:
            done[key] = rows
    todo = [(k, c) for k, c in cells if k not in done]
    results = _Results(out, [k for k, _ in cells], done)
    n_runs = len(spec.log2_lr) * spec.seeds
    bar = _Progress(progress, total=len(todo) * n_runs, skipped=len(cells) - len(todo))

    def commit(key: str, cell: Cell, res: CellResult) -> None:
        _commit(out, key, res)
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
    return _merge(out, [k for k, _ in cells], results)


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
            by_lr = ok.groupby("log2_lr")["eval_loss"].mean()
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
