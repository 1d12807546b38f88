"""One compiled program per model shape: train and evaluate a batch of runs with their own LRs and seeds, from
initial parameters drawn outside it by one small program every shape shares (``runner.draws``).

Everything that varies between runs of a sweep cell (learning rates, Adam epsilons, seeds) and between
parameterizations (multipliers, init stds, the per-layer weight decays) is a runtime array, so a shape
compiles once, and the runner's compilation cache (``runner.executables``) makes a rerun skip compiling. Learning
rates, epsilons and decays are 4-long (embedding, hidden, readout, vector-like: ``runner.nn``); multipliers
and init stds 3-long.

A run diverges when a step's loss is not finite or above ``divergence_factor * loss_at_init``, or its final
parameters are not finite. It is flagged (its final and eval losses are inf and NaN) and otherwise carries on:
its curve and coordinate statistics after that step are what the run did. Freezing diverged runs at their last
good parameters cost a select over every parameter and optimizer state per step, and a finiteness check over
every parameter: 15% of a width-512 step (issue 18's profile), for numbers no table kept.
"""

from __future__ import annotations

import functools
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax

from abcscale.runner import draws, executables, mlp, transformer, user, usercode
from abcscale.runner.nn import ModelConfig, ParamSpec, Probes, n_params, probe_stats, rms
from abcscale.runner.optim import make_optimizer


def enable_compilation_cache(path: str | None = None) -> None:
    """Turn on the runner's compilation cache (``runner.executables``): reruns load their programs from disk
    without tracing them. Called as each sweep, tune or check starts.

    ``path`` defaults to ``ABCSCALE_JAX_CACHE``, else ``~/.cache/abcscale/jax``, read at each call (a notebook
    that empties or moves it between two sweeps is heard; it was read once per process) and resolved then (a
    relative folder is the working directory's at that call, not wherever the process is when it writes); an empty
    ``ABCSCALE_JAX_CACHE`` keeps nothing."""
    named = "ABCSCALE_JAX_CACHE" if path is None and os.environ.get("ABCSCALE_JAX_CACHE") else "the compilation cache"
    path = path or os.environ.get("ABCSCALE_JAX_CACHE", "~/.cache/abcscale/jax")
    executables.use(_usable(named, Path(path).expanduser().resolve()) if path else None)
    if note := executables.xla_flags_note():
        _say_flags(note)


@functools.cache
def _say_flags(note: str) -> None:
    """Said once per value: a notebook setting ``XLA_FLAGS`` after its first sweep, which XLA does not apply."""
    import warnings

    from abcscale.runner.store import SweepWarning

    warnings.warn(note, SweepWarning, stacklevel=4)


def environment() -> str:
    """Where this process trains, as a sweep folder's parts record it: JAX's and jaxlib's releases, the device, a
    digest of the options XLA compiles with (``XLA_FLAGS`` as XLA read it, said too where set and known). A cell's
    runs trained in two are not bit-identical (XLA's fusions change between releases; a GPU's float32 products
    default to TF32; a flag such as fast math rounds otherwise), though the cell key, which names what is trained,
    is the same. Labels are compared by ``runner.store.same_environment``: one written before session 75 has no
    options, and matches either way."""
    said, options = _environment()
    # read at each call (a notebook turns it on between sweeps): JAX draws the data windows and the init by another
    # algorithm under x64 (runner.draws.shared_draw), so its runs are other runs (their cell keys say so too)
    x64 = bool(cast(Any, jax.config).jax_enable_x64)  # its flags are attributes set at run time
    return f"{said}, x64; {options}" if x64 else f"{said}; {options}"


@functools.cache
def _environment() -> tuple[str, str]:
    """The process's part of :func:`environment`: (JAX, jaxlib and the device; XLA's options)."""
    import jaxlib

    from abcscale.runner.store import OPTIONS_SAID

    options, flags = executables.xla_options(), executables.xla_flags_read()  # before the backend starts
    dev = jax.devices()[0]
    said = f"jax {jax.__version__} (jaxlib {jaxlib.__version__}) on {dev.platform} ({dev.device_kind})"
    return said, f"{OPTIONS_SAID} {options[:12]}" + (f" (XLA_FLAGS {flags!r})" if flags and flags.strip() else "")


@functools.cache
def _usable(named: str, folder: Path) -> Path | None:
    """``folder`` if it can keep compiled programs (made if need be), else None, said once per folder."""
    try:  # a folder it cannot keep programs in (a file's path, /proc): said once, and the sweep compiles on
        # (under a file it stopped the sweep with an errno that named no setting; /proc passed in silence)
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(13, "not writable")
    except OSError as exc:
        import warnings

        from abcscale.runner.store import SweepWarning

        warnings.warn(f"{named}: {folder} cannot keep compiled programs ({exc.strerror or exc}); they are "
                      "compiled every run, not kept", SweepWarning, stacklevel=4)
        return None
    return folder


@dataclass(frozen=True)
class Program:
    """The static part of a run: everything that changes the compiled program."""

    model: ModelConfig
    optimizer: str
    steps: int
    batch: int
    schedule: str = "cosine"
    warmup: float = 0.1
    momentum: float = 0.0
    weight_decay: float = 0.0  # the plain independent decay (every parameter); the per-layer one is wd_4
    # how a decaying variant applies wd_4 (runner.optim.make_optimizer); None: the variant's default, "coupled"
    # (sgd: "none", no L2 term in its program)
    weight_decay_mode: str | None = None
    eval_batches: int = 4
    final_window: int = 1
    divergence_factor: float = 1.5
    record_steps: tuple[int, ...] = ()
    curves: bool = False

    def specs(self) -> dict[str, ParamSpec]:
        return _module(self.model).param_specs(self.model)


@dataclass
class Outcome:
    """Per-run results of one program call (arrays with a leading run axis M)."""

    loss_at_init: np.ndarray
    final_loss: np.ndarray
    eval_loss: np.ndarray
    diverged: np.ndarray
    curves: np.ndarray | None  # [M, steps]
    coord: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # kind -> name -> [M, R]
    compile_s: float = 0.0
    run_s: float = 0.0


def _module(cfg: ModelConfig):
    return {"transformer": transformer, "mlp": mlp, "user": user}[cfg.kind]


# One traced training run read top to bottom (optimizer, jitted step in a scan, divergence flag,
# eval, coordinate stats): splitting it would scatter one JAX program over helpers that each need the closure.
def _train_one(prog: Program, params, train_tok, eval_tok, mult_3, wd_4, lr_4, eps_4, starts_SxB) -> dict[str, Any]:
    cfg, B, T = prog.model, prog.batch, prog.model.seq_len
    specs = prog.specs()
    apply = _module(cfg).apply
    tx = make_optimizer(prog.optimizer, lr_4, eps_4, {k: v.layer for k, v in specs.items()}, steps=prog.steps,
                        schedule_kind=prog.schedule, warmup=prog.warmup, momentum=prog.momentum,
                        weight_decay=prog.weight_decay, wd_3=wd_4,
                        wd_mode=prog.weight_decay_mode or ("none" if prog.optimizer == "sgd" else "coupled"),
                        # a user model's hidden tensors orthogonalised as abcscale.optax's Muon reads them
                        muon_dims=user.muon_dims(cfg) if cfg.kind == "user" and prog.optimizer == "muon" else None)
    opt_state = tx.init(params)
    offsets = jnp.arange(T + 1)

    def loss_fn(p, win_BxT1, probe=False):
        probes = Probes(probe)
        logits = apply(cfg, p, mult_3, win_BxT1[:, :-1], probes)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), win_BxT1[:, 1:])
        return loss.mean(), probes.captured

    # Held-out windows at fixed, evenly spaced offsets: every run and width sees the same eval set.
    starts = np.linspace(0, eval_tok.shape[0] - T - 2, prog.eval_batches * B).astype(np.int32)
    eval_ExBxT1 = eval_tok[starts[:, None] + np.arange(T + 1)].reshape(prog.eval_batches, B, T + 1)

    def eval_loss(p):
        return jax.lax.map(lambda w: loss_fn(p, w.astype(jnp.int32))[0], eval_ExBxT1).mean()

    def sample(starts_B):  # the step's windows, their starts drawn outside (runner.draws)
        return train_tok[starts_B[:, None] + offsets].astype(jnp.int32)

    def coord_stats(captured, old, new):
        stats = probe_stats(captured)
        return {"act_rms": {k: v[0] for k, v in stats.items()},
                "alignment": {k: v[1] for k, v in stats.items()},
                # a user model's probes may name activations, not parameters: no update there
                "update_rms": {k: rms(new[k] - old[k]) if k in new else jnp.asarray(jnp.nan, jnp.float32)
                               for k in stats}}

    loss0 = eval_loss(params)
    threshold = prog.divergence_factor * loss0
    record = jnp.asarray(prog.record_steps or (-1,), jnp.int32)

    def body(carry, step_starts):
        step, starts_B = step_starts
        params, opt_state, alive = carry
        win = sample(starts_B)
        # with record steps the forward keeps its activations, which the statistics reduce at those steps
        (loss, captured), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, win, bool(prog.record_steps))
        updates, new_state = tx.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        # A non-finite update shows in the next step's loss; the last one in the final check below.
        ok = alive & jnp.isfinite(loss) & (loss < threshold)
        stats = None
        if prog.record_steps:
            shape = jax.eval_shape(coord_stats, captured, params, new_params)
            stats = jax.lax.cond(jnp.any(record == step), lambda: coord_stats(captured, params, new_params),
                                 lambda: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shape))
        return (new_params, new_state, ok), (loss, stats)

    (params, _, alive), (losses, stats) = jax.lax.scan(
        body, (params, opt_state, jnp.asarray(True)), (jnp.arange(prog.steps), starts_SxB))
    # one reduction per parameter: the sum of a tensor holding a NaN or an inf is not finite (nor is one that
    # overflows, 3e38: a diverged run all the same)
    alive = alive & jnp.isfinite(sum(jnp.sum(x) for x in jax.tree.leaves(params)))
    out = {
        "loss_at_init": loss0,
        "final_loss": jnp.where(alive, losses[-prog.final_window:].mean(), jnp.inf),
        "eval_loss": jnp.where(alive, eval_loss(params), jnp.nan),
        "diverged": ~alive,
    }
    if prog.curves:
        out["curves"] = losses
    if prog.record_steps:
        out["coord"] = jax.tree.map(lambda x: x[np.asarray(prog.record_steps)], stats)
    return out


@usercode.by_version
def _jitted(prog: Program, code: tuple[Any, ...] = ()):
    """``prog``'s jitted training function; ``code``: a user model's ``runner.usercode.stamp``, so an edited
    model file is traced again (``prog`` names it by its reference only)."""
    one = functools.partial(_train_one, prog)
    many = jax.vmap(one, in_axes=(0, None, None, None, None, 0, 0, 0))

    def batched(params_M, train_tok, eval_tok, mult_3, wd_4, lr_Mx4, eps_Mx4, starts_MxSxB):
        if starts_MxSxB.shape[0] == 1:  # plain matmuls: XLA:CPU runs batch-1 dot_generals slower than GEMMs
            out = one(jax.tree.map(lambda x: x[0], params_M), train_tok, eval_tok, mult_3, wd_4, lr_Mx4[0],
                      eps_Mx4[0], starts_MxSxB[0])
            return jax.tree.map(lambda x: x[None], out)
        return many(params_M, train_tok, eval_tok, mult_3, wd_4, lr_Mx4, eps_Mx4, starts_MxSxB)

    return jax.jit(batched)


#: Programs of models under this many parameters compile with XLA:CPU's older loop emitters. Measured on the
#: demo's transformer (issue 18): they take half the compile CPU (2.1 against 4.3 s at width 64) for 5-15% more
#: step time, and a cold demo sweep (widths 32-128, about 270k parameters at 128) spends more on compiling than
#: that; at width 256 (1M parameters) the step is 11% slower for one compile, and the newer emitters win.
SMALL_PROGRAM_PARAMS = 300_000


def compiler_options(prog: Program | None = None, *, specs: dict[str, ParamSpec] | None = None) -> dict[str, Any]:
    """XLA options: LLVM optimisation level 1 compiles about 20% faster than the default and runs as fast
    (level 0 compiles faster still but runs these programs 2-2.5x slower); ``ABCSCALE_XLA_OPT_LEVEL``
    forces a level ("" for XLA's default). A ``prog`` (or a model's ``specs``) under :data:`SMALL_PROGRAM_PARAMS`
    parameters turns the fusion emitters off; ``ABCSCALE_XLA_FUSION_EMITTERS`` (``on`` | ``off``) forces them
    either way. All of this was measured on XLA:CPU: on another backend (a GPU) the options are XLA's defaults.

    JAX's ``jax_disable_most_optimizations`` (``JAX_DISABLE_MOST_OPTIMIZATIONS=1``; the test suite sets it for
    the JAX it runs outside the runner) changes nothing here, on any backend: the level and the LLVM passes are
    set back to what a process without it compiles with (``XLA_FLAGS`` included), so a process with it trains the
    same programs (bit-identical losses on the CPU, 2026-12-07)."""
    level = os.environ.get("ABCSCALE_XLA_OPT_LEVEL", "1")
    if level not in ("", "0", "1", "2", "3"):
        raise ValueError(f"ABCSCALE_XLA_OPT_LEVEL must be 0, 1, 2, 3 or empty, got {level!r}")
    emitters = os.environ.get("ABCSCALE_XLA_FUSION_EMITTERS", "")
    if emitters not in ("", "on", "off"):
        raise ValueError(f"ABCSCALE_XLA_FUSION_EMITTERS must be on or off, got {emitters!r}")
    if jax.default_backend() != "cpu":
        return _as_without_the_flag({})
    out: dict[str, Any] = {"xla_backend_optimization_level": int(level)} if level != "" else {}
    out = _as_without_the_flag(out)
    specs = prog.specs() if prog is not None else specs
    small = specs is not None and n_params(specs) < SMALL_PROGRAM_PARAMS
    if emitters == "off" or (emitters == "" and small):
        out.update(OLDER_EMITTERS)
    return out


def _as_without_the_flag(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` as a process without ``jax_disable_most_optimizations`` compiles with them: the flag sets LLVM
    level 0 and no expensive passes on every backend, unless the options say otherwise."""
    if not jax.config.values.get("jax_disable_most_optimizations"):
        return options
    return {name: _xla_default(name) for name in ("xla_backend_optimization_level",
                                                   "xla_llvm_disable_expensive_passes")} | options


def _xla_default(name: str) -> Any:
    """A debug option's value where nothing sets it (``XLA_FLAGS`` included, as XLA read it)."""
    from abcscale.runner._xla import compile_options

    return getattr(compile_options().executable_build_options.debug_options, name)


#: The compile option that turns XLA:CPU's fusion emitters off for a small program. jax 0.11's XLA refuses it as an
#: unknown option and takes no other name for it: there, none (XLA's own emitters; a width-64 program compiled in
#: 0.7 s, as fast as 0.10's with them off).
_RELEASE = re.match(r"(\d+)\.(\d+)", jax.__version__)  # "0.12.0.1", "0.11rc1"; a build without one: the newest
OLDER_EMITTERS: dict[str, Any] = ({"xla_cpu_use_fusion_emitters": False}
                                  if _RELEASE and (int(_RELEASE[1]), int(_RELEASE[2])) < (0, 11) else {})


Tokens = np.ndarray | jax.Array


def _args_spec(prog: Program, n_runs: int, train_tok: Tokens, eval_tok: Tokens) -> tuple[Any, ...]:
    """The shapes and dtypes of the program's arguments (the initial parameters first), which is all that
    compiling needs."""
    f32, S = jnp.float32, jax.ShapeDtypeStruct
    params = {name: S((n_runs, *s.shape), f32) for name, s in sorted(prog.specs().items())}
    tokens = [S(t.shape, jax.dtypes.canonicalize_dtype(t.dtype)) for t in (train_tok, eval_tok)]
    return (params, *tokens, S((3,), f32), S((5,), f32), S((n_runs, 5), f32), S((n_runs, 5), f32),
            S((n_runs, prog.steps, prog.batch), jnp.int32))


ProgramKey = tuple[Program, int, tuple[jax.ShapeDtypeStruct, ...]]


def _key(prog: Program, n_runs: int, train_tok: Tokens, eval_tok: Tokens) -> ProgramKey:
    S = jax.ShapeDtypeStruct
    return prog, n_runs, tuple(S(t.shape, jax.dtypes.canonicalize_dtype(t.dtype)) for t in (train_tok, eval_tok))


def _compile(prog: Program, args: tuple[Any, ...], traced: Callable[[], None] | None = None
             ) -> tuple[Any, Path | None]:
    """The executable of ``prog`` for ``args`` (arrays or shape structs), and the file it was loaded from.
    Kept on disk from an earlier sweep (``runner.executables``; a built-in model's is found without tracing),
    else compiled and kept. ``traced()`` is called once no tracing is left to do (traced and lowered, or a
    kept file found)."""
    traced = traced or (lambda: None)
    try:  # a sweep's main thread waits for traced(): it is called however this ends (a bad option included)
        options = compiler_options(prog)
        lowered = None
        if prog.model.kind == "user":  # its code lives outside the runner: keyed by its lowered module
            lowered = _jitted(prog, usercode.stamp(prog.model.factory or "")).lower(*args)
            file = executables.path(lowered.as_text(), args, options)
        else:
            file = executables.path(prog, args, options)
        if file is not None and file.exists():
            traced()
        if (kept := executables.load(file)) is not None:
            return kept, file
        lowered = lowered or _jitted(prog).lower(*args)
    finally:
        traced()
    compiled = lowered.compile(options)
    executables.save(file, compiled)
    return compiled, None


class Compiler:
    """The compiled programs of one sweep, by (program, runs per call, data shapes), and the thread that
    compiles them ahead.

    A sweep's programs differ by width, so the next width compiles while this one trains. On 2 CPU cores
    the two share the cores, but training at small widths leaves most of one idle (bench_runner's
    fixed-cost benchmark measures the saving). One thread: compiling two programs at once would only split
    the same cores. Use it as a context manager: leaving drops the queued compilations that have not
    started, so a stopped sweep does not wait for them at exit.
    """

    def __init__(self, executor: Executor | None = None) -> None:
        self._programs: dict[ProgramKey, Any] = {}  # (executable, file it was loaded from), or a Future
        self._lock = threading.Lock()
        self._traced = threading.Event()  # the first queued program's Python part is over
        self._queued = False
        self._executor = executor

    def __enter__(self) -> Compiler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ahead(self, prog: Program, n_runs: int, train_tok: np.ndarray, eval_tok: np.ndarray) -> None:
        """Queue a program for compilation on the background thread; ``run_program`` waits for it.
        Requests run in the order given, each program once."""
        key = _key(prog, n_runs, train_tok, eval_tok)
        if key not in self._programs:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="abcscale-compile")
            self._programs[key] = self._executor.submit(_compile, prog, _args_spec(prog, n_runs, train_tok, eval_tok),
                                                         self._traced.set)
            self._queued = True

    def wait_traced(self, timeout: float | None = None) -> None:
        """Wait until the first program queued ahead is traced (or found on disk): from then on its compile
        runs outside the GIL. A sweep's main thread waits here before its own Python work (the theory, scipy's
        import), which would otherwise share the GIL with the trace and delay the first compile (by about
        0.2 s in a cold demo sweep). Returns at once when nothing was queued."""
        if self._queued:
            self._traced.wait(timeout)

    def state(self, prog: Program, n_runs: int, train_tok: np.ndarray, eval_tok: np.ndarray) -> str:
        """``"ready"`` (compiled), ``"compiling"`` (queued or in progress) or ``"absent"``."""
        entry = self._programs.get(_key(prog, n_runs, train_tok, eval_tok))
        if entry is None:
            return "absent"
        return "compiling" if isinstance(entry, Future) and not entry.done() else "ready"

    def executable(self, prog: Program, args: tuple[Any, ...]) -> Any:
        """The compiled program for these arguments: compiled now, or waited for when queued ahead."""
        key = _key(prog, args[-1].shape[0], args[1], args[2])
        entry = self._programs.get(key)
        if entry is None:
            entry = self._programs[key] = _compile(prog, args)
        elif isinstance(entry, Future):
            entry = self._programs[key] = entry.result()
        return entry[0]

    def recompile(self, prog: Program, args: tuple[Any, ...], failed: Any) -> Any | None:
        """For ``failed``, a program loaded from disk that could not run: drop the file, compile the program
        afresh and return it (once, whichever run thread asks first). None when ``failed`` was compiled here:
        its failure is the run's own."""
        key = _key(prog, args[-1].shape[0], args[1], args[2])
        with self._lock:
            entry = self._programs.get(key)
            if not isinstance(entry, tuple):
                return None
            if entry[0] is not failed:  # another run thread compiled it again already
                return entry[0]
            if entry[1] is None:
                return None
            executables.drop(entry[1])
            self._programs[key] = _compile(prog, args)
            return self._programs[key][0]

    def cancel(self) -> None:
        """Drop queued compilations that have not started."""
        for key, entry in list(self._programs.items()):
            if isinstance(entry, Future) and entry.cancel():
                del self._programs[key]

    def close(self) -> None:
        self.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=False)


def _per_role(x: np.ndarray) -> np.ndarray:
    """A per-role array with its last axis 5-long (embedding, hidden, readout, vector, fixed): a 3-long one, as
    callers before the vector-like role wrote it, gives vector-like parameters the embedding's value, as the runner
    did then, and a 4-long one gives fixed parameters the vector-like one's, as before the fixed role."""
    x = np.asarray(x, np.float32)
    if x.shape[-1] == 3:
        x = np.concatenate([x, x[..., :1]], axis=-1)
    return x if x.shape[-1] == 5 else np.concatenate([x, x[..., 3:4]], axis=-1)


def run_program(prog: Program, train_tok: np.ndarray, eval_tok: np.ndarray, mult_3: np.ndarray,
                init_3: np.ndarray, lr_Mx4: np.ndarray, eps_Mx4: np.ndarray, seeds_M: np.ndarray, *,
                wd_3: np.ndarray | None = None, compiler: Compiler | None = None) -> Outcome:
    """Train M runs in one call (one vmapped program). The program comes from ``compiler``: compiled on
    first use of (program, M, data sizes), or waited for when ``Compiler.ahead`` queued it; without a
    compiler it compiles for this call only. ``compile_s`` is the time this call spent on its program; ``run_s``
    the rest, its initial parameters' draw (``runner.draws``) included.
    ``lr_Mx4``, ``eps_Mx4``: per run and role (embedding, hidden, readout, vector-like, fixed; a 3-long last axis
    gives vector-like parameters the embedding's, a 4-long one fixed parameters the vector-like one's). ``wd_3``:
    the adamw variant's per-role weight decays (3, 4 or 5 long, same reading), shared by the M runs (default
    none)."""
    wd = np.zeros(5) if wd_3 is None else _per_role(wd_3)
    seeds = np.asarray(seeds_M, np.uint32)
    t_init = time.perf_counter()
    params, starts = draws.draw(prog.specs(), seeds, init_3, steps=prog.steps, batch=prog.batch,
                                high=len(train_tok) - prog.model.seq_len - 1, options=compiler_options(prog))
    t0 = time.perf_counter()
    init_s = t0 - t_init  # part of the run, as when the program drew them
    args = (params, jnp.asarray(train_tok), jnp.asarray(eval_tok), jnp.asarray(mult_3, jnp.float32),
            jnp.asarray(wd, jnp.float32), jnp.asarray(_per_role(lr_Mx4)), jnp.asarray(_per_role(eps_Mx4)),
            jnp.asarray(starts, jnp.int32))  # int64 under x64: the program takes int32 (it was a TypeError)
    compiler = compiler or Compiler()
    compiled = compiler.executable(prog, args)
    t1 = time.perf_counter()
    try:
        out = jax.device_get(compiled(*args))
    except Exception:
        # a program loaded from disk that cannot run (a damaged or foreign file) compiles again; any other
        # failure is the run's own and propagates (recompile says None)
        if (compiled := compiler.recompile(prog, args, compiled)) is None:
            raise
        t1 = time.perf_counter()
        out = jax.device_get(compiled(*args))
    t2 = time.perf_counter()
    return Outcome(loss_at_init=out["loss_at_init"], final_loss=out["final_loss"], eval_loss=out["eval_loss"],
                   diverged=out["diverged"], curves=out.get("curves"), coord=out.get("coord", {}),
                   compile_s=t1 - t0, run_s=init_s + t2 - t1)
