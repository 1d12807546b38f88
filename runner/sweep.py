"""Run a sweep: every cell (config x width) trains its grid of learning rates and seeds.

:func:`run_sweep` runs (or resumes) the cells of a spec into a folder, one sweep per folder;
:func:`run_cell` trains one cell without writing anything; :func:`compile_ahead` queues the programs a
sweep will need. The folder's layout, its lock, the committed cell files and the merged tables are
:mod:`abcscale.runner.store`'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import os
import platform
import signal
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from abcscale import theory
from abcscale.runner import data, usercode
from abcscale.runner.spec import Cell, Run, SweepSpec, built_in_params
from abcscale.runner.store import (
    MERGED,
    CellParts,
    CellResult,
    Results,
    SweepWarning,
    commit_cell,
    committed_rows,
    folder_lock,
    merge,
    part_cells,
    pick,
    refuse_foreign,
    remove_leftovers,
    tag_part,
)
from abcscale.theory import solver as theory_solver

if TYPE_CHECKING:
    import pandas as pd

    from abcscale.runner.train import Compiler
from abcscale.schemas.enums import LAYERS, LrMode, Optimizer
from abcscale.schemas.sweep import DEFAULT_LOSS
from abcscale.schemas.theory import BaseConfig

Five = tuple[float, float, float, float, float]
#: the roles of the per-role arrays, in their order (runner.nn: EMB, HID, OUT, VEC, FIX)
ROLE_NAMES = ("embedding", "hidden", "readout", "vector", "fixed")


@dataclass(frozen=True)
class LayerHyper:
    """Per-layer-type numbers of one cell. Multipliers and init stds are indexed embedding, hidden, readout;
    LRs, epsilons and weight decays also have the vector-like role (biases, LayerNorm gains) and the fixed one (a
    user model's readout bias: no width-sized axis) last."""

    multiplier: tuple[float, float, float]
    init_std: tuple[float, float, float]
    lr_factor: Five  # effective LR = beta * lr_factor
    epsilon: Five
    weight_decay: Five = (0.0, 0.0, 0.0, 0.0, 0.0)  # the per-layer decay (AdamW's, SGD's L2); 0 for vector-like ones
    form: str = "abc"  # "multiplier_free" for a user model (every multiplier folded into init std and LR)
    fan_in_exponent: float = 0.5  # a hidden matrix with fan-in r * width starts at init_std * r**-this
    readout_fan_in_exponent: float = 1.0  # a readout of fan-in r * width likewise (the spec's readout init exponent)


def layer_hyper(spec: SweepSpec, cell: Cell, lr_exponents: tuple[float, float, float] | None = None) -> LayerHyper:
    """Multipliers, init stds, LR factors, Adam epsilons and per-layer weight decays from the theory engine.

    ``per_layer``: lr_l = beta * gamma_l * (n / base)^-c_l. ``global``: one shared LR, lr_l = beta * gamma_l
    for the built-in models (the vector-like role: beta * gamma_embedding), so the swept beta *is* the learning
    rate and its optimum moves with width as theory's global c says; a user model in the multiplier-free form
    takes beta * gamma_l times the form's factor on the abc LR (m_l^-k: the multiplier folded into the LR, so
    not gamma_l even at the base width).
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
    base = BaseConfig(width=spec.base, beta=1.0, **cell.constants(spec).given())
    override = dict(zip(LAYERS, lr_exponents, strict=True)) if lr_exponents else None
    tr = theory.transfer(spec.parameterization(cell.parameterization), family, base, cell.width,
                         cell.alignment, cell.lr_mode, c_override=override)
    form = Form.multiplier_free if is_reference(spec.model) else Form.abc
    # base: the vector and fixed roles from its own numbers (the fixed role's epsilon the base one exactly)
    gs = group_spec(tr, form, epsilon_mode=spec.constants.epsilon_mode, base=base)
    global_lr = cell.lr_mode is LrMode.global_ and not override
    roles = [gs[r] for r in ROLE_NAMES]
    # The runner's global mode trains at beta * gamma_l (beta is the shared LR) where the theory's transfer
    # scales gamma by the global c; the form's factor on the abc LR (1 in the abc form) carries over.
    gamma = [cell.gamma[l] for l in LAYERS] + [cell.gamma[LAYERS[0]]] * 2  # vector-like and fixed: the embedding's
    abc_lr = [tr[l].lr for l in LAYERS] + [tr[LAYERS[0]].lr] * 2
    lrs = [g * (s.lr / a) if global_lr else s.lr for g, a, s in zip(gamma, abc_lr, roles, strict=True)]
    eps = spec.constants.epsilon  # where the family has no epsilon rule (adam_scaled), the same at every width

    def three(values: list[float]) -> tuple[float, float, float]:
        return values[0], values[1], values[2]

    return LayerHyper(multiplier=three([s.multiplier or 1.0 for s in roles]),
                      init_std=three([s.init_std or 1.0 for s in roles]),
                      lr_factor=cast(Five, tuple(lrs)),
                      epsilon=cast(Five, tuple(eps if s.epsilon is None else s.epsilon for s in roles)),
                      weight_decay=cast(Five, tuple(s.weight_decay or 0.0 for s in roles)),
                      form=form.value, fan_in_exponent=gs["hidden"].init_exponent,
                      readout_fan_in_exponent=gs["readout"].init_exponent)


def record_steps(spec: SweepSpec) -> tuple[int, ...]:
    steps = spec.coord_steps if spec.coord_steps is not None else [0, 1, spec.steps // 2, spec.steps - 1]
    return tuple(sorted({s for s in steps if 0 <= s < spec.steps}))


def chunk_size(spec: SweepSpec, width: int, n_runs: int) -> int:
    """Runs per compiled call. On CPU one at a time, at every width: vmapping 11 runs of the demo's
    transformer took 1.07x the time of 11 single calls at width 32 and 1.26x at 64 (issue 18's profile);
    and a single run's numbers do not depend on which other runs a sweep holds, so runs added to a sweep
    later are bit-identical to one sweep of the larger grid. On a GPU vmap wins at every width measured
    (bench_runner's batching benchmark). The runs split into equal chunks of at most ``spec.chunk``, so
    padding the last chunk wastes at most one run per call (22 runs: 11 + 11, not 16 + 6 padded to 16);
    under vmap a run's numbers then depend on the chunk's size at float tolerance (tests/runner/
    test_incremental.py)."""
    if spec.batching == "single":
        return 1
    if spec.batching == "auto":
        import jax

        if jax.default_backend() == "cpu":
            return 1
    calls = math.ceil(n_runs / min(spec.chunk, n_runs))
    return math.ceil(n_runs / calls)


def run_threads(size: int, n_calls: int) -> int:
    """Calls of one cell running at once. On CPU, one-run calls go ``os.cpu_count()`` at a time (at most 8;
    ``ABCSCALE_RUN_THREADS`` sets it): a small model's step leaves cores idle, and two threads trained 8 runs of the
    demo's transformer 1.22x / 2.15x / 1.64x faster at widths 32 / 64 / 128 than one after the other on 2
    cores, with less CPU time and the same numbers bit for bit (a run's program does not depend on what
    runs beside it). Vmapped calls (a GPU's) go one at a time."""
    chosen = os.environ.get("ABCSCALE_RUN_THREADS") or None
    if chosen is not None and not (chosen.isdecimal() and int(chosen) >= 1):
        raise ValueError(f"ABCSCALE_RUN_THREADS must be a whole number of threads, 1 or more, got {chosen!r}")
    if size != 1 or n_calls < 2:
        return 1
    import jax

    if jax.default_backend() != "cpu":
        return 1
    # at most 8 by default: measured on 2 cores only, and each run in flight holds its own parameters
    default = min(8, os.cpu_count() or 1)
    return min(n_calls, int(chosen) if chosen is not None else default)


def applies_decay(spec: SweepSpec, optimizer: str) -> bool:
    """Whether ``optimizer``'s runs apply (and their rows record) the per-layer decay: a decaying variant's always
    (its 0 is a choice), SGD's L2 term only where ``constants.weight_decay`` gives one, as the theory carries it
    (an SGD sweep without one keeps the columns and program it had)."""
    from abcscale.runner.optim import variant

    var = variant(optimizer)
    return var.decays and (var.family is not Optimizer.sgd or bool(spec.constants.weight_decay))


def _program(spec: SweepSpec, cell: Cell, record: tuple[int, ...], curves: bool):
    from abcscale.runner.nn import ModelConfig
    from abcscale.runner.optim import variant
    from abcscale.runner.train import Program
    from abcscale.runner.user import is_reference, sweep_widths

    if is_reference(spec.model):  # the fan-in exponent is a+b of hidden: 1/2 in every named parameterization
        # what grows with the width is read against another width of this sweep (runner.user.grown_model)
        sweep_widths(spec.model, spec.widths, spec.depth, 256, spec.seq_len)
        hyper = layer_hyper(spec, cell)
        cfg = ModelConfig("user", cell.width, spec.depth, spec.seq_len, factory=spec.model,
                          fan_in_exponent=hyper.fan_in_exponent,
                          readout_fan_in_exponent=hyper.readout_fan_in_exponent)
    else:
        cfg = ModelConfig(cast(Any, spec.model), cell.width, spec.depth, spec.seq_len, head_dim=spec.head_dim,
                          attn_scale=spec.attn_scale)
    # the decay's form is static (it places the decay in the chain); only a decaying variant reads it
    decays = applies_decay(spec, cell.optimizer)
    mode = (spec.constants.weight_decay_mode.value if decays
            else "none" if variant(cell.optimizer).family is Optimizer.sgd else "coupled")
    return Program(cfg, cell.optimizer, spec.steps, spec.batch, schedule=spec.schedule, warmup=spec.warmup,
                   momentum=spec.momentum, weight_decay=spec.weight_decay, weight_decay_mode=mode,
                   eval_batches=spec.eval_batches,
                   final_window=max(1, int(round(spec.final_window * spec.steps))),
                   divergence_factor=spec.divergence_factor, record_steps=record, curves=curves)



def run_cell(spec: SweepSpec, cell: Cell, *, compiler: Compiler | None = None,
             lr_exponents: tuple[float, float, float] | None = None, record: tuple[int, ...] | None = None,
             on_runs: Callable[[int], None] | None = None,
             on_compile: Callable[[Cell], None] | None = None, runs: list[Run] | None = None) -> CellResult:
    """Train the (log2 LR, seed) ``runs`` of one cell (default: all of ``spec.runs()``), in chunks of one
    vmapped program each; one-run chunks on CPU run ``run_threads`` at a time.

    ``compiler`` holds the compiled programs (a sweep shares one across cells; default: one for this cell).
    ``on_compile(cell)`` is called before a chunk waits for its program to compile, ``on_runs(n)`` after
    each chunk of ``n`` runs.
    """
    from abcscale.runner.nn import n_params
    from abcscale.runner.train import Compiler, enable_compilation_cache, run_program

    enable_compilation_cache()
    own = compiler is None
    compiler = compiler or Compiler()
    corpus = spec.corpus()
    record = record_steps(spec) if record is None else record
    prog = _program(spec, cell, record, spec.curves)
    hyper = layer_hyper(spec, cell, lr_exponents)
    runs = spec.runs() if runs is None else list(runs)
    size = chunk_size(spec, cell.width, len(runs))
    fac = np.asarray(hyper.lr_factor)
    def call(part: list[Run]):
        padded = part + [part[-1]] * (size - len(part))  # same M every call: one compiled program
        lr = np.stack([2.0 ** g * fac for g, _ in padded])
        eps = np.tile(np.asarray(hyper.epsilon), (size, 1))
        seeds = np.asarray([s for _, s in padded])
        out = run_program(prog, corpus.train, corpus.eval, np.asarray(hyper.multiplier),
                          np.asarray(hyper.init_std), lr, eps, seeds, wd_3=np.asarray(hyper.weight_decay),
                          compiler=compiler)
        if on_runs:
            on_runs(len(part))
        return part, out

    parts = [runs[i:i + size] for i in range(0, len(runs), size)]
    if on_compile and compiler.state(prog, size, corpus.train, corpus.eval) != "ready":
        on_compile(cell)
    threads = run_threads(size, len(parts))
    try:
        if threads > 1:
            # Queued (a no-op when it is), every call waits for the one compilation; the first run no longer
            # trains alone while a core idles (about 0.5 s of the demo sweep).
            compiler.ahead(prog, size, corpus.train, corpus.eval)
            with ThreadPoolExecutor(threads, thread_name_prefix="abcscale-run") as pool:
                pending = pool.map(call, parts)
                _load_table_libraries()
                outcomes = list(pending)
        else:
            outcomes = [call(p) for p in parts]
    finally:
        if own:
            compiler.close()
    return _tables(spec, cell, prog, hyper, corpus, n_params(prog.specs()), outcomes)


def _load_table_libraries() -> None:
    """Import pandas and pyarrow (0.3 s, GIL held) while a cell's runs train or wait for their program to
    compile, off the sweep's critical path: imported with the runner, they delayed the first compile (cold) or
    the first run (warm) by as much. The cell's tables need them next."""
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401


def check_model(spec: SweepSpec) -> None:
    """A user model (``spec.model`` a factory reference) loads and lays out at every width, or a ValueError
    starting ``model:`` (or the bad field) says why, before any training starts."""
    from abcscale.runner.user import check, is_reference

    if is_reference(spec.model):
        check(spec.model, spec.widths, spec.depth, spec.seq_len, batch=spec.batch)


def compile_ahead(spec: SweepSpec, cells: list[Cell], compiler: Compiler, n_runs: list[int] | None = None) -> None:
    """Queue the programs of ``cells``, in order, for compilation on ``compiler``'s background thread;
    ``n_runs``: how many runs each cell trains (default: all of the spec's)."""
    from abcscale.runner.train import enable_compilation_cache

    enable_compilation_cache()
    corpus = spec.corpus()
    counts = n_runs or [len(spec.runs())] * len(cells)
    for cell, n in zip(cells, counts, strict=True):
        compiler.ahead(_program(spec, cell, record_steps(spec), spec.curves), chunk_size(spec, cell.width, n),
                       corpus.train, corpus.eval)


#: results.parquet's column order (a name, or a prefix ending in ``_`` for a group in the order written), as the
#: runner has always written it: scripts read the table by position, and a folder's parts of any version come out
#: in it (:func:`_as_written`)
_ROW_ORDER = ("parameterization", "optimizer", "alignment", "lr_mode", "width", "beta", "seed", "depth", "n_params",
              "base_width", "gamma_", "init_scale_", "lr_", "steps", "tokens", "final_loss", "eval_loss",
              "loss_at_init", "diverged", "optimizer_variant", "model", "form", "log2_lr", "batch", "seq_len",
              "head_dim", "multiplier_", "init_std_", "epsilon_", "weight_decay_", "weight_decay_mode",
              "base_weight_decay", "epsilon", "epsilon_mode", "independent_weight_decay", "momentum", "schedule",
              "warmup", "attn_scale", "eval_batches", "final_window", "divergence_factor", "data", "data_hash",
              "compile_s", "run_s", "runs_per_call")


def column_order(names: Any) -> list[str]:
    """``names`` in results.parquet's order (:data:`_ROW_ORDER`; a name it lacks goes last, as it came)."""
    def rank(name: str) -> int:
        if name in _ROW_ORDER:
            return _ROW_ORDER.index(name)
        return next((i for i, p in enumerate(_ROW_ORDER) if p.endswith("_") and name.startswith(p)), len(_ROW_ORDER))

    return sorted(names, key=rank)


def setting_columns(spec: SweepSpec, cell: Cell, hyper: LayerHyper, roles: tuple[str, ...], beta: float
                    ) -> dict[str, Any]:
    """What a row records of how its run trained (everything but what it measured): the cell's settings and each
    role's LR, multiplier, init std, epsilon and decay as the spec and cell give them. A run reused from a folder an
    earlier version wrote takes them from here too (:func:`_as_written`): its cell id holds every setting, so these
    are the ones it trained with, and its rows then read as this version writes them."""
    from abcscale.runner.optim import variant

    opt = variant(cell.optimizer)
    return {
        "depth": spec.depth, "base_width": spec.base,
        **{f"gamma_{l.value}": cell.gamma[l] for l in LAYERS},
        # the init scales the runs trained with: a fit carries them into its recommendation, as gamma
        **{f"init_scale_{l.value}": spec.constants.init_scale[l] for l in LAYERS},
        **{f"lr_{r}": beta * hyper.lr_factor[i] for i, r in enumerate(roles)},
        "steps": spec.steps, "tokens": spec.steps * spec.batch * spec.seq_len,
        "optimizer_variant": cell.optimizer, "model": spec.model, "form": hyper.form,
        "batch": spec.batch, "seq_len": spec.seq_len, "head_dim": spec.head_dim,
        **{f"multiplier_{l.value}": hyper.multiplier[i] for i, l in enumerate(LAYERS)},
        **{f"init_std_{l.value}": hyper.init_std[i] for i, l in enumerate(LAYERS)},
        **({f"epsilon_{r}": hyper.epsilon[i] for i, r in enumerate(roles)
            if not (r == "hidden" and opt.family is Optimizer.muon)}  # Muon's hidden step takes none
           if opt.uses_epsilon else {}),
        # base_weight_decay: the decay tuned at the base width the per-layer ones come from (a fit keeps it)
        **({f"weight_decay_{r}": hyper.weight_decay[i] for i, r in enumerate(roles)}
           | {"weight_decay_mode": spec.constants.weight_decay_mode.value,
              "base_weight_decay": spec.constants.weight_decay}
           if applies_decay(spec, cell.optimizer) else {}),
        "epsilon": spec.constants.epsilon, "epsilon_mode": spec.constants.epsilon_mode.value,
        **run_settings(spec), "data": spec.data,
    }


def _tables(spec, cell, prog, hyper, corpus, n_par, outcomes) -> CellResult:
    import pandas as pd

    from abcscale.runner.optim import variant

    opt = variant(cell.optimizer)
    # the fixed role's columns only for a model that has such a parameter (a user model's readout bias)
    roles = ROLE_NAMES if any(ROLE_NAMES[s.layer] == "fixed" for s in prog.specs().values()) else ROLE_NAMES[:4]
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
                "n_params": n_par, "final_loss": float(out.final_loss[j]), "eval_loss": float(out.eval_loss[j]),
                "loss_at_init": float(out.loss_at_init[j]), "diverged": bool(out.diverged[j]), "log2_lr": g,
                **setting_columns(spec, cell, hyper, roles, beta), "data_hash": corpus.sha256,
                "compile_s": out.compile_s, "run_s": out.run_s, "runs_per_call": len(out.final_loss),
            }
            row = {k: row[k] for k in column_order(row)}
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
    from abcscale.runner.train import environment

    return CellResult(pd.DataFrame(rows), pd.DataFrame(coord), pd.DataFrame(curves), environment())


def _cell_ident(cell: Cell) -> dict[str, Any]:
    """What tells a cell's coord and curves rows from another's beyond the run's parameterization, optimizer family,
    alignment, LR mode, width, beta and seed: the optimizer variant and the LR constants, as results.parquet names
    them."""
    return {"optimizer_variant": cell.optimizer, **{f"gamma_{l.value}": cell.gamma[l] for l in LAYERS}}


def _layer_type(prog, name: str) -> str:
    """The probed parameter's role; a user model's probe on an activation is ``activation``."""
    s = prog.specs().get(name)
    return "activation" if s is None else ROLE_NAMES[s.layer]


# --- executors --------------------------------------------------------------------------------------


def _run_cell_task(spec_json: str, cell_json: str, runs: list[Run], cell_id: str, expect: dict[str, str]
                   ) -> CellResult:
    """A Ray task: module-level so workers import it by name.

    A worker reads the user's model and the data itself, as its files are now: Ray keeps a worker between tasks
    (and sweeps, in a notebook's cluster) and may run it on another machine. It trains only what the driver's cell
    id (``cell_id``: ``Cell.base_key``, which names the model's code and the data) names: the pieces of
    :func:`worker_identity` the driver read (``expect``) read alike here, and where the model file is at the same
    place, the same id. A copy of the same code at another place (another machine's checkout) trains, as before; its
    id differs by the place alone. Before session 75 a worker kept from an earlier sweep trained the model's code it
    loaded then, under the key of an edit made since."""
    from abcscale.runner import executables
    from abcscale.runner.spec import first_folder
    from abcscale.runner.user import is_reference

    executables.xla_options()  # what XLA reads as JAX starts, before the model's import may start it (a review)
    spec, cell = SweepSpec.model_validate_json(spec_json), Cell.model_validate_json(cell_json)
    with data.held():  # the data read once, for the id and the runs
        if is_reference(spec.model):  # the files its model reads, as the driver's check saw them: in its stamp too,
            folder = first_folder(spec.model)  # so a kept worker builds the model again when one changes
            usercode.note_reads(spec.model, [str(_local(name, folder)) for name in _read_names(expect)])
        code = usercode.refresh(spec.model) if is_reference(spec.model) else None  # its files as they are now
        worker_reads(spec)
        mine = worker_identity(spec, cell, reads=_read_names(expect))
        if (differ := identity_differs(expect, mine)) or (code is not None and usercode.changed(code)) or (
                expect["model file"] == mine["model file"] and cell.base_key(spec, mine["data"]) != cell_id):
            raise stale_worker("sweep", expect, mine, differ)
        return run_cell(spec, cell, runs=[(float(g), int(s)) for g, s in runs])


class _NoAuthDefaultNote:
    """A logging filter: drops Ray's note that token authentication is on (its default), nothing else."""

    def filter(self, record: Any) -> bool:
        return not str(record.msg).startswith("Token authentication is enabled")


def ray_installed() -> bool:
    """Whether ``import ray`` can work (its spec found, not imported: Ray's import takes seconds)."""
    import importlib.util

    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):  # a module object without a spec, or None in sys.modules
        return False


def start_ray(address: str | None) -> None:
    """Join the Ray cluster at ``address`` or start a local one (None), once per process, without two notes on
    stderr that ask nothing of the user (a review, session 70): Ray's "Token authentication is enabled" (its
    default, kept; the warning that it is *disabled* still shows), and JAX's "os.fork() was called", which Ray's
    start of its processes raised in every run (fork, then exec at once: no thread's lock is inherited).
    (``RAY_AUTH_MODE=token`` set for it instead failed to join the local cluster where a token file existed.)"""
    import logging

    import ray

    if ray.is_initialized():
        return
    logging.getLogger("ray._private.authentication.authentication_token_setup").addFilter(_NoAuthDefaultNote())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        ray.init(address=address, include_dashboard=False, log_to_driver=False)


def _ray_cells(spec: SweepSpec, todo: list[_Todo], commit, address: str | None):
    import ray

    start_ray(address)
    task = ray.remote(_run_cell_task)
    pending = {task.remote(spec.model_dump_json(), t.cell.model_dump_json(), t.runs, t.cell_id,
                           worker_identity(spec, t.cell)): t for t in todo}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        try:
            result = ray.get(ready[0])
        except ray.exceptions.RayError as exc:
            if (said := ray_value_error(exc)) is None:
                raise
            for left in pending:
                ray.cancel(left)
            raise said from None
        commit(pending.pop(ready[0]), result)


#: how the errors a Ray worker raises for the user begin (a field's problem): said as a local run says them
WORKER_FIELDS = ("model:", "data:", "executor:")


def _worker() -> str:
    return f"the Ray worker on {platform.node()} (pid {os.getpid()})"


def worker_reads(spec: SweepSpec) -> None:
    """The model and the data as this Ray worker finds them: one it cannot find, import or read is a ValueError
    naming the worker and its working directory (a relative path is read from there), not Ray's traceback of a
    ``FileNotFoundError`` (a review: ``tune --ray`` exited 1 with 94 lines)."""
    from abcscale.runner.user import is_reference, load_factory

    try:
        if is_reference(spec.model):
            load_factory(spec.model)
        spec.corpus()
    except (ValueError, OSError) as exc:
        field, sep, rest = str(exc).partition(": ")
        if not sep or f"{field}:" not in WORKER_FIELDS:
            raise
        hint = ""
        if isinstance(exc, FileNotFoundError) or "no such file" in rest or "cannot import" in rest:
            given = spec.data if field == "data" else spec.model.rpartition(":")[0]
            hint = (" (this machine has no such file)" if Path(given).is_absolute() else
                    " (a worker reads a relative path from its own working directory: give it an absolute path"
                    + (")" if field == "data" else ", or the model an importable module)"))
        raise ValueError(f"{field}: {_worker()}, working directory {os.getcwd()}: {rest}{hint}") from None


def ray_value_error(exc: BaseException) -> ValueError | None:
    """The runner's own error (a field's problem, :data:`WORKER_FIELDS`) that a Ray task or actor raised, as one
    plain ValueError without Ray's traceback around it; None for anything else, which keeps Ray's error and its
    remote traceback (a ValueError from the user's code names its file and line there)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ValueError | OSError) and str(cause).startswith(WORKER_FIELDS):
            return ValueError(str(cause))
        seen.add(id(cause))
        cause = getattr(cause, "cause", None) or cause.__cause__
    return None


def worker_identity(spec: SweepSpec, cell: Cell | None = None, reads: list[str] | None = None) -> dict[str, str]:
    """What a Ray worker must read as the driver did, piece by piece (a cell's id hashes them with the spec): the
    data's hash, the user model's code (``model_source``), its file, its layout at ``cell``'s width, the files the
    model read as the driver's check built it (:func:`model_reads`; ``reads``: the driver's names of them, on a
    worker), the XLA settings that key runs, and abcscale's version."""
    from abcscale._version import version
    from abcscale.runner.spec import XLA_KNOBS, model_source, spelling_free, x64_mode
    from abcscale.runner.user import is_reference

    user = is_reference(spec.model)
    return {"data": spec.corpus().sha256,
            # a notebook's jax.config.update is not the cluster's: the worker computed another cell id (a review)
            "JAX x64": "on" if x64_mode() else "off",
            "model code": model_source(spec.model) if user else "",
            "model file": spelling_free(spec).get("model", ""),
            "model layout": cell._user_layout(spec) if user and cell is not None else "",
            "model reads": model_reads(spec.model, reads) if user else "",
            "XLA settings": json.dumps({k: os.environ[k] for k in XLA_KNOBS if os.environ.get(k)}, sort_keys=True),
            "abcscale": version()}


def model_reads(ref: str, names: list[str] | None = None) -> str:
    """The files of the user's that the model read as this process's check loaded and built it (a config, a
    vocabulary: ``runner.reads``), or on a Ray worker the driver's ``names`` of them, each with a digest of its
    bytes here (null where missing), as JSON. A name is relative to the model's folder where the file lies in it
    (another machine's checkout elsewhere reads its own copy, as it reads its own model file), absolute otherwise.
    The cell keys do not hold these bytes (the check says so), but a worker reading another copy than the driver's
    would train another model under the same keys (session 75's note)."""
    from abcscale.runner.spec import first_folder

    folder = first_folder(ref)
    if names is not None:
        return json.dumps({name: usercode.file_digest(_local(name, folder)) for name in names}, sort_keys=True)
    # the driver: each file's digest as the check's stamp holds it (read again now, a file edited after the check
    # was said to be what workers trained, while they read the edit: a review)
    current = usercode.stamp(ref)
    held = dict(current[2]) if len(current) == 3 else {}
    out = {}
    for file in usercode.reads(ref):
        path = Path(file)
        with contextlib.suppress(OSError, RuntimeError):
            path = path.resolve()  # as the folder is (a folder reached through a symlink: a review)
        name = str(path.relative_to(folder)) if folder and path.is_relative_to(folder) else str(path)
        out[name] = held[file] if file in held else usercode.file_digest(Path(file))
    return json.dumps(out, sort_keys=True)


def _local(name: str, folder: str | None) -> Path:
    """Where a name of :func:`model_reads` lies on this machine."""
    return Path(name) if Path(name).is_absolute() else Path(folder or ".") / name


def _read_names(expect: dict[str, str]) -> list[str]:
    """The driver's names of the files its model read (:func:`model_reads`), for a worker to read its own."""
    try:
        return list(json.loads(expect.get("model reads") or "{}"))
    except (ValueError, TypeError):
        return []


def identity_differs(theirs: dict[str, str], mine: dict[str, str]) -> list[str]:
    """The pieces of :func:`worker_identity` a worker reads otherwise than the driver, the model file's place aside
    (the same code elsewhere is the same model to train; the place is in the cell id for the files a model may read
    beside it, which neither side can see)."""
    return [k for k in mine if k != "model file" and theirs.get(k) != mine[k]]


def stale_worker(what: str, theirs: dict[str, str], mine: dict[str, str], differ: list[str]) -> ValueError:
    """The error of a Ray worker that would train other than the driver's ``what`` (sweep, search) names: the pieces
    of :func:`worker_identity` that differ (``differ``; ``theirs``: the driver's), each with its remedy."""
    where = _worker()
    said = {
        "data": ("data", "reads other data than the {what} started with (edited since, or another machine's copy)"),
        "model code": ("model", "reads other code for the model than the {what} started with (edited since, or "
                                "another machine's copy)"),
        "model layout": ("model", "lays the model out otherwise than the {what} did"),
        "model reads": ("model", "reads other bytes than the {what} did in {files}, which the model reads as it "
                                 "builds (edited since, or another machine's copy)"),
        "XLA settings": ("executor", "has other ABCSCALE_XLA_* settings ({mine}) than the {what}'s process "
                                     "({theirs}): set them where the cluster starts"),
        "abcscale": ("executor", "runs abcscale {mine}, the {what}'s process {theirs}"),
        "JAX x64": ("executor", "runs JAX's 64-bit mode {mine}, the {what}'s process {theirs} (it draws the data and "
                                "the init otherwise): set JAX_ENABLE_X64 alike where the cluster starts"),
    }
    if not differ:
        field, text = ("executor", "computes another cell id than the {what} did (another build of abcscale, or "
                                   "files edited during the check)")
        return ValueError(f"{field}: {where} {text.format(what=what)}: nothing was trained there; run the {what} again")
    field, files = said[differ[0]][0], ""
    with contextlib.suppress(ValueError, TypeError, AttributeError):  # the files whose bytes differ, by name
        read = json.loads(theirs.get("model reads") or "{}"), json.loads(mine.get("model reads") or "{}")
        files = ", ".join(sorted(name for name in read[0] | read[1] if read[0].get(name) != read[1].get(name)))
    texts = "; ".join(said[k][1].format(what=what, mine=mine[k], theirs=theirs.get(k), files=files or "a file")
                      for k in differ)
    return ValueError(f"{field}: {where} {texts}, and would train what the {what}'s keys do not name: nothing was "
                      "trained there")


#: bytes a sweep process holds besides its runs (JAX, XLA's compiled programs, the data): 1.0-1.5 GiB measured
PROCESS_BYTES = 2**30


def memory_need(spec: SweepSpec, width: int, runs_at_once: int) -> int:
    """Bytes a cell of ``spec`` at ``width`` holds at once, roughly (float32): each run's parameters, gradients,
    the update and two optimizer moments, and a step's activations and their gradients (about 64 floats per token
    per layer and width, the logits, three attention maps per layer as XLA:CPU keeps them). An estimate, for
    refusing a sweep that cannot fit before it starts, not a measurement. Calibrated on the transformer's peak
    resident memory (one run against two, 2 steps, depth 2, 2026-12-04): 5.08 GiB a run measured, 5.08 estimated,
    at width 256, batch 32 x 512; 3.54 / 3.58 at 256, 64 x 256; 0.54 / 0.78 at 1024, 8 x 64 (the estimate before
    took 2.58, 1.58 and 0.58: an attention-heavy sweep it let through needed twice its figure)."""
    p = built_in_params(spec.model, width, spec.depth, spec.seq_len)
    tokens = spec.batch * spec.seq_len
    acts = tokens * (64 * spec.depth * width + 3 * 256) + 6 * spec.steps * spec.batch  # + the windows' starts
    if spec.model == "transformer":
        acts += 3 * spec.depth * spec.batch * max(1, width // spec.head_dim) * spec.seq_len ** 2
    return 4 * runs_at_once * (5 * p + acts)


def check_memory(spec: SweepSpec) -> None:
    """A ValueError naming the widest width whose cell cannot fit in this machine's memory (on CPU, as a sweep
    runs there: up to ``os.cpu_count()`` runs at once, at most 8); a typo'd width ran until the kernel's
    out-of-memory killer stopped it, and anything else the machine ran. Only the built-in models (a user's model's
    size is known once it is laid out)."""
    if not any(built_in_params(spec.model, w, spec.depth, spec.seq_len) for w in spec.widths):
        return
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: nothing to compare with
        return
    import jax

    from abcscale.runner import executables

    executables.xla_options()  # what XLA reads as JAX starts, noted before the backend starts (below)
    if jax.default_backend() != "cpu":  # an accelerator's memory, and one vmapped program at a time: not this
        return
    # a cell's one-run calls go on threads together (run_threads: ABCSCALE_RUN_THREADS, else up to 8), cells one
    # after another
    at_once = run_threads(1, len(spec.log2_lr) * spec.seeds)
    for width in sorted(spec.widths, reverse=True):
        if (need := memory_need(spec, width, at_once) + PROCESS_BYTES) > total:
            raise ValueError(f"widths: {width} needs about {need / 2**30:.0f} GiB at once ({at_once} runs of "
                             f"{built_in_params(spec.model, width, spec.depth, spec.seq_len):,} parameters with "
                             f"gradients and optimizer moments, and a step's activations), more than this "
                             f"machine's {total / 2**30:.0f} GiB: sweep smaller widths, or a smaller batch")


def run_sweep(spec: SweepSpec, out_dir: str | Path, *, progress: bool = True, executor: str = "local",
              address: str | None = None) -> pd.DataFrame:
    """Run (or resume) a sweep; returns the rows of ``results.parquet`` for this spec's cells.

    ``executor="ray"`` sends each unfinished cell to a Ray cluster (``address``; None starts or joins a
    local one); results are committed by this process as they arrive. ``progress`` draws a bar on stderr.
    """
    if executor not in ("local", "ray"):
        raise ValueError(f"executor must be 'local' or 'ray', got {executor!r}")
    if executor == "ray" and not ray_installed():
        raise ValueError("executor: ray is not installed (pip install 'abcscale[ray]')")
    from abcscale.runner import executables
    from abcscale.runner.user import is_reference

    executables.xla_options()  # what XLA reads as JAX starts, noted before anything of the sweep starts it
    check_model(spec)
    started = usercode.stamp(spec.model) if is_reference(spec.model) else None
    out = Path(out_dir)
    refuse_foreign(out)
    (out / "cells").mkdir(parents=True, exist_ok=True)
    with folder_lock(out), data.held():
        remove_leftovers(out)  # a killed sweep's half-written files, which nothing reads
        rows = _run_locked(spec, out, progress, executor, address)
    if started is not None and (edited := usercode.changed(started)):
        warnings.warn(f"model: {', '.join(edited)} changed during the sweep; it trained the code it started with, "
                      "which its cells' keys name: run it again to train the edit", SweepWarning, stacklevel=2)
    return rows


@dataclass(frozen=True)
class _Todo:
    """A cell's runs that no committed part holds, and the part key they commit under."""

    cell: Cell
    cell_id: str
    key: str
    runs: list[Run]


def _trained_elsewhere(out: Path, have: dict[str, dict[str, pd.DataFrame]]) -> str | None:
    """What a sweep adding runs to ``out`` says where the folder's parts (``have``: cell id -> part key -> rows)
    trained under another JAX release or device than this process (``runner.train.environment``): the cell keys
    match, the numbers are not bit-identical, and results.parquet would mix them silently (a folder begun on a
    laptop's CPU and widened on a GPU, whose float32 products default to TF32). None where all are this one's, or
    not recorded (parts written before session 74)."""
    from abcscale.runner.store import same_environment
    from abcscale.runner.train import environment

    here = environment()
    runs = {env: n for env, n in _runs_by_environment(out, have).items() if not same_environment(env, here)}
    if not runs:
        return None
    return (f"{out} holds runs trained elsewhere ({_said(runs)}); this sweep trains under {here}: the two are not "
            "bit-identical (a new --out keeps one environment)")


def _mixed_environments(out: Path, have: dict[str, dict[str, pd.DataFrame]]) -> str | None:
    """What a Ray sweep says where its cells' parts (``have``: cell id -> part key -> rows) trained under more than
    one environment (Ray's workers on machines with other JAX releases, devices or XLA options, or a folder begun
    elsewhere): results.parquet mixes runs that are not bit-identical across them, within a cell or between widths.
    None where all agree (or say nothing: parts written before session 74)."""
    from abcscale.runner.store import same_environment

    runs = _runs_by_environment(out, have)
    envs = sorted(runs)
    if all(same_environment(a, b) for i, a in enumerate(envs) for b in envs[i + 1:]):
        return None
    return (f"{out} holds runs trained under more than one environment ({_said(runs)}): they are not bit-identical "
            "across them (Ray workers on machines that differ; a new --out on one kind of worker keeps one)")


def _other_x64_mode(out: Path, spec: SweepSpec, sha: str, cells: list[Cell], tags: dict[str, str | None]
                    ) -> str | None:
    """What a sweep says where ``out`` holds runs of its cells trained in JAX's other 64-bit mode, which draws the
    data windows and the init otherwise: they are other cells (``Cell.key``), so the sweep trains and lists its own
    in their place, which it did in silence (a review). None where there are none."""
    from abcscale.runner.spec import x64_mode

    x64 = x64_mode()
    other = {c.base_key(spec, sha, x64=not x64) for c in cells}
    if not (parts := sum(tag in other for tag in tags.values())):
        return None
    mode = "without" if x64 else "under"
    return (f"{out} holds {parts} part(s) of this sweep's cells trained {mode} JAX's 64-bit mode, which draws the data "
            f"and the init otherwise: this sweep trains and lists its own in their place (they stay in its cells; "
            f"rerun {'without' if x64 else 'with'} JAX_ENABLE_X64 to list them again)")


def _runs_by_environment(out: Path, have: dict[str, dict[str, pd.DataFrame]]) -> Counter[str]:
    """Runs per environment their parts recorded (parts written before session 74 record none and are left out)."""
    from abcscale.runner.store import part_environment

    runs = Counter[str]()
    for parts in have.values():
        for key, rows in parts.items():
            if env := part_environment(out, key):
                runs[env] += len(rows)
    return runs


def _said(runs: dict[str, int]) -> str:
    return "; ".join(f"{n} run(s) under {env}" for env, n in sorted(runs.items()))


def _cluster_options(out: Path, keys: list[str]) -> str | None:
    """What a Ray sweep says where its workers compiled with other XLA options than this process's ``XLA_FLAGS``
    gives now: a Ray cluster keeps the environment it started with, so a notebook that set the variable after its
    first Ray sweep trained the next without it, in silence (a review). None where they agree, or it cannot tell."""
    from abcscale.runner import executables
    from abcscale.runner.store import options_said, part_environment
    from abcscale.runner.train import environment

    now, here = os.environ.get("XLA_FLAGS", ""), environment().partition("; ")[0]
    # parts trained under another JAX release or device are _mixed_environments' to say: their options may differ
    # for that reason alone
    labels = [label for key in keys if (label := part_environment(out, key)).partition("; ")[0] == here]
    theirs = {o for label in labels if (o := options_said(label))}
    if not theirs or (mine := executables.options_for(now)) is None or theirs == {mine[:12]}:  # labels say 12
        return None
    return (f"{out}: the Ray workers compiled with other XLA options ({', '.join(sorted(theirs))}) than XLA_FLAGS "
            f"{now!r} gives here ({mine[:12]}): a Ray cluster keeps the environment it started with (a cluster this "
            "process started: ray.shutdown() before the next sweep applies the variable)")


def _previous_spec(out: Path) -> SweepSpec | None:
    """The spec that last wrote this folder (``spec.json``), or None: absent, or no longer valid."""
    try:
        return SweepSpec.model_validate_json((out / "spec.json").read_text())
    except (OSError, ValueError):
        return None


def _older_ids(spec: SweepSpec, before: SweepSpec | None, data_hash: str) -> tuple[dict[str, str], dict[str, str]]:
    """What parts written by older sweeps are, under this spec or the previous one (``spec.json``, whose data must
    hold this one's tokens): part key -> cell id for parts written before cell ids were recorded (each was a
    whole cell, named ``Cell.key``), and old cell id -> cell id for parts tagged when a factory reference or a
    data path entered the ids as written (``Cell.base_key(spelled=True)``), while a cell's id held every custom table
    of its spec (``all_tables=True``) or settings no run reads (``unread=True``, before session 78)."""
    untagged: dict[str, str] = {}
    renamed: dict[str, str] = {}
    # a plain rerun's previous spec is this one: its ids once (a user model's id reads its files and lays it out,
    # 9 ms an id: 18 cells' four forms took 2.6 s twice over)
    for s in (spec,) if before == spec else (before, spec):
        # the previous spec's byte cap may differ: its ids are computed with this data's hash, so they match only
        # where its tokens were these (a rerun that changed the cap alone trained every run again: a review)
        if s is not None and s.eval_fraction == spec.eval_fraction:
            for c in s.cells():
                cid = c.base_key(s, data_hash)
                # ids as written before a cell held only its own custom table (identical to the current ones
                # where the spec defines none)
                for tables, unread in itertools.product((False, True) if s.custom_tables else (False,), (False, True)):
                    untagged |= {c.key(s, data_hash, all_tables=tables, unread=unread): cid,
                                 c.key(s, data_hash, spelled=True, all_tables=tables, unread=unread): cid}
                    renamed[c.base_key(s, data_hash, spelled=True, all_tables=tables, unread=unread)] = cid
                    if tables or unread:
                        renamed[c.base_key(s, data_hash, all_tables=tables, unread=unread)] = cid
    return untagged, renamed


def theory_warnings(spec: SweepSpec) -> list[str]:
    """What the theory says of the sweep's setups beyond the exponents it trains, once per parameterization x
    optimizer x alignment: exponents that are not unique (the sweep trains the prescription, one point of the
    face), layers that trade LR, an init that is not stable (the exponent solver's; ``recommend`` says the same,
    and in global LR mode more; a setup swept only under a global LR leaves out the per-layer ones, as recommend
    does: :func:`theory.solver.mode_warnings`). And a constant given that no variant of the sweep reads (an
    epsilon to Lion or SGD, a decay mode with nothing to decay): accepted, and it changed nothing, as ``recommend``
    warns."""
    from abcscale.runner.optim import variant

    out = []
    modes: dict[tuple[Any, ...], set[LrMode]] = {}
    for c in spec.cells():
        modes.setdefault((c.parameterization, variant(c.optimizer).family, c.alignment), set()).add(
            LrMode.parse(c.lr_mode))
    for (p, o, a), used in modes.items():
        sol = theory.solve_exponents(spec.parameterization(p), o, a)
        mode = LrMode.global_ if used == {LrMode.global_} else LrMode.per_layer
        for w in theory_solver.mode_warnings(sol, mode):
            out.append(f"{p} + {o.value}, alignment {a}: {w}")
    given = spec.constants.model_fields_set
    if "epsilon" in given and not any(variant(o).uses_epsilon for o in spec.optimizers):
        verb = "uses" if len(spec.optimizers) == 1 else "use"
        out.append(f"epsilon: {', '.join(spec.optimizers)} {verb} none; the {spec.constants.epsilon:g} given changed "
                   "nothing")
    if "weight_decay_mode" in given and not spec.constants.weight_decay:
        out.append("weight_decay_mode: no constants.weight_decay to apply it to; it changed nothing (the top-level "
                   "weight_decay is independent, its own mode)")
    return out


#: the per-role and per-layer setting columns: one this version no longer writes for a cell (Muon's
#: ``epsilon_hidden``, a decay column where none applies) is dropped from a reused part's rows, not left beside rows
#: that lack it
_ROLE_COLUMNS = frozenset(
    {f"{p}_{r}" for p in ("lr", "epsilon", "weight_decay") for r in ROLE_NAMES}
    | {f"{p}_{l.value}" for p in ("multiplier", "init_std", "init_scale", "gamma") for l in LAYERS}
    | {"weight_decay_mode", "base_weight_decay"})


def run_settings(spec: SweepSpec) -> dict[str, Any]:
    """The training settings every row records besides the swept ones: each changes a run, so tables of two
    sweeps that differ in one are told apart (the fitter notes a column that varies within a group). The
    top-level ``weight_decay`` is ``independent_weight_decay``: the per-layer ``weight_decay_*`` are the
    theory's (``constants.weight_decay``), which ``recommend --weight-decay`` means. ``attn_scale`` changes the
    model, ``eval_batches`` and ``final_window`` what its losses average, ``divergence_factor`` which runs are
    flagged diverged."""
    return {"independent_weight_decay": spec.weight_decay, "momentum": spec.momentum, "schedule": spec.schedule,
            "warmup": spec.warmup, "attn_scale": spec.attn_scale, "eval_batches": spec.eval_batches,
            "final_window": spec.final_window, "divergence_factor": spec.divergence_factor}


def _as_written(rows: pd.DataFrame, spec: SweepSpec, cell: Cell) -> pd.DataFrame:
    """A part's rows with every setting column as this sweep writes it (:func:`setting_columns`), the measured ones
    as they were: a part computed under another spelling of the same factory or data file (one cell id,
    :func:`abcscale.runner.spec.spelling_free`) reads as this sweep's own, and a part an earlier version wrote (the
    cell id holds every setting, so its runs trained with the spec's) gains the columns it predates and loses those
    this version no longer writes. Extended, such a folder listed its reused runs with ``init_scale_*`` and
    ``base_weight_decay`` empty (a fit then recommended the default init and no decay), its LRs an ulp off, and
    Muon's ``epsilon_hidden``: "rows differ in lr_vector ... averaged as if they were seeds" (a review, session
    71)."""
    import pandas as pd

    if rows.empty:
        return rows
    roles = ROLE_NAMES if "lr_fixed" in rows.columns else ROLE_NAMES[:4]  # the model's roles: its cell id holds it
    hyper = layer_hyper(spec, cell)
    by_lr = {g: setting_columns(spec, cell, hyper, roles, 2.0 ** g) for g in set(map(float, rows["log2_lr"]))}
    settings = [by_lr[float(g)] for g in rows["log2_lr"]]  # once per LR: a run's seed changes none of them
    written = pd.DataFrame(settings, index=rows.index)
    stale = [c for c in rows.columns if c in _ROLE_COLUMNS and c not in written.columns]
    rows = rows.drop(columns=stale).assign(**{c: written[c] for c in written.columns})
    return rows[column_order(rows.columns)]


def _sources(parts: dict[str, pd.DataFrame]) -> dict[Run, str]:
    """Each committed run -> the first part (in file-name order) holding it."""
    out: dict[Run, str] = {}
    for key, rows in parts.items():
        for g, seed in zip(rows["log2_lr"], rows["seed"], strict=True):
            out.setdefault((float(g), int(seed)), key)
    return out


def _part_key(cell_id: str, runs: list[Run]) -> str:
    return hashlib.sha256(json.dumps([cell_id, runs]).encode()).hexdigest()[:16]


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C in a sweep, with what it leaves: ``kept`` of the spec's ``total`` runs are in the folder's cell
    files (finished before this sweep or by it), and a rerun trains only the rest."""

    def __init__(self, kept: int, total: int) -> None:
        super().__init__(kept, total)
        self.kept, self.total = kept, total


@contextlib.contextmanager
def interrupt_raised() -> Iterator[None]:
    """Its block with Ctrl-C remembered (:func:`_interrupt_remembered`), and a KeyboardInterrupt raised after it where
    one landed in a garbage-collection callback that swallowed it: `tune`'s runs, which go through no sweep's check
    (its transfer check ran every width to the end and exited 0 after a Ctrl-C, 3 of about 25 tries: a review)."""
    with _interrupt_remembered() as interrupted:
        yield
    if interrupted():
        raise KeyboardInterrupt


@contextlib.contextmanager
def _interrupt_remembered() -> Iterator[Callable[[], bool]]:
    """Ctrl-C as Python answers it (KeyboardInterrupt where the main thread is), and remembered: one that lands
    while the interpreter runs a garbage-collection callback (JAX registers one) is printed as "Exception ignored"
    and lost, and the sweep trained on to its end and exited 0 (a review: 7 of 30 tries). The sweep asks the
    returned function after each chunk of runs and raises it again there. Off the main thread, or where SIGINT is
    ignored, nothing is installed."""
    hit = threading.Event()
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield hit.is_set
        return

    def remember(signum: int, frame: Any) -> None:
        hit.set()
        previous(signum, frame)  # Python's default_int_handler raises KeyboardInterrupt

    signal.signal(signal.SIGINT, remember)
    try:
        yield hit.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_locked(spec: SweepSpec, out: Path, progress: bool, executor: str, address: str | None) -> pd.DataFrame:
    sha = spec.corpus().sha256
    (untagged, renamed), tags = _older_ids(spec, _previous_spec(out), sha), part_cells(out)
    claimed: dict[str, list[str]] = {}
    for key, cid in tags.items():
        if cid := renamed.get(cid, cid) if cid else untagged.get(key):
            claimed.setdefault(cid, []).append(key)
    cells, runs = [(c, c.base_key(spec, sha)) for c in spec.cells()], spec.runs()
    # a part tagged with this spec's cell id as it was before session 78 (settings no run reads in it) is found by
    # that id from this spec too: not rewritten (a plain rerun of an old folder rewrites nothing)
    as_before = {c.base_key(spec, sha, unread=True) for c, _ in cells}
    if x64_other := _other_x64_mode(out, spec, sha, [c for c, _ in cells], tags):
        warnings.warn(x64_other, SweepWarning, stacklevel=3)
    have: dict[str, dict[str, pd.DataFrame]] = {cid: {} for _, cid in cells}
    for cell, cid in cells:  # loops, not comprehensions: the damaged-file warning points at run_sweep's caller
        for key in claimed.get(cid, []):
            if (rows := committed_rows(out, key)) is not None:
                if tags[key] != cid and tags[key] not in as_before:  # untagged, or tagged by its spelling: later
                    # sweeps find it by this id
                    tag_part(out, key, cid, rows)
                have[cid][key] = _as_written(rows, spec, cell)
    # written after tagging: until then, this file names the spec whose untagged parts they are
    # whole or not at all (a temporary file renamed): cut short by a full disk, it read as no sweep's (a review)
    tmp = out / f".spec.json.{os.getpid()}.tmp"
    tmp.write_text(spec.model_dump_json(indent=2))
    os.replace(tmp, out / "spec.json")
    sources = {cid: _sources(have[cid]) for _, cid in cells}
    todo = []
    for cell, cid in cells:
        if missing := [r for r in runs if r not in sources[cid]]:
            key = cell.key(spec, sha) if len(missing) == len(runs) else _part_key(cid, missing)
            todo.append(_Todo(cell, cid, key, missing))
    # a cell that still lacks runs (a widened grid) starts from the runs it holds: stopping the sweep then
    # leaves a table with every run the folder had, not only the cells this sweep finished
    held = {cid: [r for r in runs if r in sources[cid]] for _, cid in cells}
    results = Results(out, [cid for _, cid in cells],
                      {cid: pick(have[cid], sources[cid], held[cid]) for _, cid in cells if held[cid]})
    bar = _Progress(progress, total=sum(len(t.runs) for t in todo), skipped=len(cells) - len(todo))

    def commit(t: _Todo, res: CellResult) -> None:
        import pandas as pd

        commit_cell(out, t.key, res, t.cell_id)
        # Read back, as a resume would: the merged table is the same whichever run computed a cell.
        have[t.cell_id][t.key] = pd.read_parquet(out / "cells" / f"{t.key}.rows.parquet")
        sources[t.cell_id] = _sources(have[t.cell_id])
        results.add(t.cell_id, pick(have[t.cell_id], sources[t.cell_id], runs))
        if executor == "ray":
            bar.advance(len(res.rows))

    try:
        with bar, _interrupt_remembered() as interrupted:
            def advance(n: int) -> None:
                bar.advance(n)
                if interrupted():  # a Ctrl-C the interpreter swallowed (_interrupt_remembered)
                    raise KeyboardInterrupt

            if executor == "ray":
                _ray_cells(spec, todo, commit, address)
            else:
                from abcscale.runner.train import Compiler

                if todo and (elsewhere := _trained_elsewhere(out, have)):
                    warnings.warn(elsewhere, SweepWarning, stacklevel=4)

                # Cells sharing a program (one width) run back to back, and the next width compiles meanwhile.
                todo.sort(key=lambda t: t.cell.width)
                with Compiler() as compiler:
                    compile_ahead(spec, [t.cell for t in todo], compiler, [len(t.runs) for t in todo])
                    compiler.wait_traced(timeout=60)
                    for t in todo:
                        bar.describe(t.cell)
                        commit(t, run_cell(spec, t.cell, compiler=compiler, on_runs=advance,
                                           on_compile=bar.compiling, runs=t.runs))
                        if interrupted():
                            raise KeyboardInterrupt
    except KeyboardInterrupt:  # this spec's runs on disk, not the folder's (it may hold other specs' cells)
        kept = sum(r in sources[cid] for _, cid in cells for r in runs)  # a cell may hold runs of a wider grid
        raise SweepInterrupted(kept, len(cells) * len(runs)) from None
    if executor == "ray" and todo:  # where Ray's workers trained is known once they have
        for note in (_mixed_environments(out, have), _cluster_options(out, [t.key for t in todo])):
            if note:
                warnings.warn(note, SweepWarning, stacklevel=4)
    # the tables this spec records, as one sweep of it writes them: no curves.parquet with curves off, no
    # coord.parquet with no coord steps, whatever the parts of earlier runs hold (they keep them)
    kinds = tuple(k for k, on in (("coord", bool(record_steps(spec))), ("curves", spec.curves)) if on)
    dropped = [MERGED[k] for k in ("coord", "curves") if k not in kinds and (out / MERGED[k]).exists()]
    parts = [CellParts(cid, runs, sources[cid], _cell_ident(c)) for c, cid in cells]
    rows = merge(out, parts, results, kinds)
    _say_unrecorded(spec, out, parts, dropped)
    # what this call trained and what the folder held already (a widened grid's rerun said neither: a review)
    trained = sum(len(t.runs) for t in todo)
    rows.attrs.update(trained=trained, reused=len(cells) * len(runs) - trained)
    return rows


def _say_unrecorded(spec: SweepSpec, out: Path, cells: list[CellParts], dropped: list[str]) -> None:
    """Runs that were already done are not trained again for what only changes what is recorded (``--curves``,
    ``--coord-steps``: their losses would be the same), so their curves or statistics may be missing or at
    other steps: say so, and how to get them. ``dropped``: merged tables removed, as this spec records none."""
    import pandas as pd

    why = {MERGED["curves"]: "--curves is off", MERGED["coord"]: "--coord-steps is empty"}
    if dropped:
        warnings.warn(f"{', '.join(dropped)} removed: this sweep records none ({', '.join(why[d] for d in dropped)}); "
                      f"the cell files in {out / 'cells'} keep what earlier runs recorded, and a rerun that asks for "
                      "it lists it again", SweepWarning, stacklevel=3)
    notes = []
    n_runs = sum(len(c.runs) for c in cells)
    if spec.curves:
        path = out / "curves.parquet"
        have = pd.read_parquet(path, columns=["seed"]).shape[0] // spec.steps if path.exists() else 0
        if have < n_runs:
            notes.append(f"--curves: {n_runs - have} of {n_runs} runs were done before curves were asked for and "
                         "are not trained again, so curves.parquet lacks them")
    if record := frozenset(record_steps(spec)):
        # run by run, from the part each run comes from (all of a part's runs record the same steps), and against
        # the default steps too: runs done at --coord-steps 0,9 beside new ones at the default 0,1,5,9 (or at
        # --coord-steps 0,1,5,9, which the table's pooled steps then equalled) mixed in coord.parquet unsaid
        steps: dict[str, frozenset[int]] = {}
        for key in {k for c in cells for k in c.source.values()}:
            path = out / "cells" / f"{key}.coord.parquet"
            steps[key] = (frozenset(int(x) for x in pd.read_parquet(path, columns=["step"])["step"].unique())
                          if path.exists() else frozenset())
        other = [steps[c.source[r]] for c in cells for r in c.runs if steps[c.source[r]] != record]
        if other:
            held = f"steps {sorted(set().union(*other))}" if any(other) else "no steps"
            notes.append(f"--coord-steps: {len(other)} of {n_runs} runs were done before and recorded {held}, not "
                         f"{sorted(record)}; they are not trained again, so coord.parquet has them as recorded")
    if notes:
        warnings.warn("; ".join(notes) + f"; a fresh --out records them for every run (not {out})", SweepWarning,
                      stacklevel=3)


@dataclass(frozen=True)
class BestLr:
    """The best swept LR of one (configuration, width): lowest mean eval loss over seeds among the LRs at which no
    seed diverged, as the fitter counts an LR stable (None when every LR had a diverged seed)."""

    parameterization: str
    optimizer: str  # the runner's variant (adam_atan2, ...)
    alignment: str
    lr_mode: str
    width: int
    log2_lr: float | None
    eval_loss: float | None
    diverged: int
    runs: int
    gamma: tuple[float, float, float] | None = None  # the cell's per-layer LR constants (embedding, hidden, readout)


#: a results table's per-layer LR constants: a cell's, and so part of what one best LR is for
GAMMA_COLUMNS = ("gamma_embedding", "gamma_hidden", "gamma_readout")


def best_lrs(rows: pd.DataFrame) -> list[BestLr]:
    """One :class:`BestLr` per (configuration, gamma, width) of a results table, in the table's order (two
    swept gammas are two configurations, not seeds of one)."""
    out = []
    gammas = [c for c in GAMMA_COLUMNS if c in rows.columns]
    keys = ["parameterization", "optimizer_variant", "alignment", "lr_mode", *gammas, "width"]
    for key, g in rows.groupby(keys, sort=False):
        p, o, a, m, *gamma, w = cast(tuple[Any, ...], key)
        # an LR counts only where every seed trained, as the fitter counts it stable: the mean of the seeds that
        # survived an LR where most diverged was one lucky seed, and the summary named it best (a review)
        stable = ~g.groupby("log2_lr")["diverged"].transform("any")
        ok = g[stable.to_numpy()]
        lr = loss = None
        if len(ok):
            by_lr = ok.groupby("log2_lr")[DEFAULT_LOSS].mean()  # the fitter's default loss too
            i = int(np.argmin(by_lr.to_numpy()))  # the first of equal minima, as idxmin
            lr, loss = float(by_lr.index[i]), float(by_lr.iloc[i])
        out.append(BestLr(str(p), str(o), str(a), str(m), int(w), lr, loss, int(g["diverged"].sum()), len(g),
                          (float(gamma[0]), float(gamma[1]), float(gamma[2])) if len(gamma) == 3 else None))
    return out


def compile_wait_s(rows: pd.DataFrame) -> float:
    """Seconds a results table's sweep waited for compilation: per cell the longest ``compile_s`` of its calls
    (calls on threads wait side by side for the one program, so their waits overlap), summed over cells."""
    keys = ["parameterization", "optimizer_variant", "alignment", "lr_mode",
            *(c for c in GAMMA_COLUMNS if c in rows.columns), "width"]
    return float(rows.groupby(keys, sort=False)["compile_s"].max().sum()) if len(rows) else 0.0


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
            # nothing left to train (a rerun): a full bar, not one stuck at 0/1 (a review)
            self.task = self.p.add_task(f"sweep{note}", total=max(self.total, 1), completed=0 if self.total else 1)
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
