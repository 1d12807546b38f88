"""Tune the per-layer constants jointly with beta at the base width (``abcscale tune``, ``abcscale.tune``).

:func:`search` is the black-box part, independent of training: Optuna's TPE sampler (fixed seed, every
parameter log-uniform; it models a few continuous parameters from few, noisy evaluations well) proposes
parameters; each trial trains ``seeds`` seeds and reports the running mean after each, so a median pruner
stops a hopeless trial after its first seed (pruning inside one training run would need the runner's
single compiled scan split into pieces; seeds are the natural steps here). Then the ``top`` trials are
re-evaluated with fresh seeds and the lowest mean wins, so one lucky seed does not pick the winner.

:func:`tune` wires it to the runner (one compiled program at the base width: every trial's LRs, init
stds, multipliers and epsilons are runtime arrays, or one per Ray worker) and packs the
:class:`TunedConstants` file; with an Optuna storage the search resumes. :func:`tune_cached` is the demo's
cached form. Then the checks: :func:`verify` (tuned against the starting constants at larger widths) and
:func:`verify_constants` (the fitter's constants-consistency test), and the file's readers:
:func:`analytic_request` (``recommend --constants``, ``POST /v1/recommend`` with ``tuned``) and
:func:`group_spec` (the exports).
"""

from __future__ import annotations

import contextlib
import logging
import math
import numbers
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abcscale.schemas.api import AnalyticRecommend, TunedFile
from abcscale.schemas.enums import LAYERS, LrMode
from abcscale.schemas.groups import Form, GroupSpec
from abcscale.schemas.recommend import Recommendation
from abcscale.schemas.theory import Constants, PerLayer
from abcscale.schemas.tune import VARIANT_EPSILON, Candidate, TrialRecord, TunedConstants, TuneSettings

if TYPE_CHECKING:
    from abcscale.runner.spec import SweepSpec

#: evaluate(params, seed) -> loss; params hold "beta" and the searched constants
Evaluate = Callable[[dict[str, float], int], float]
#: evaluate_many([(params, seed), ...]) -> their losses, in order (a batch, e.g. on Ray workers)
EvaluateMany = Callable[[list[tuple[dict[str, float], int]]], list[float]]
#: re-evaluation seeds start here, apart from the search's 0..seeds-1
REEVAL_SEED0 = 1000


@dataclass(frozen=True)
class SearchResult:
    best: Candidate
    candidates: list[Candidate]
    history: list[TrialRecord]
    near_best: dict[str, tuple[float, float]]
    elapsed_s: float
    resumed: int = 0  # trials a stored study held before this search (their runs were not this process's)
    learnt: bool = True  # some run, of this process or one before on the same study, did not diverge


def search(space: dict[str, tuple[float, float]], evaluate: Evaluate, settings: TuneSettings, *,
           on_trial: Callable[[TrialRecord], None] | None = None, storage: str | None = None,
           study_name: str = "abcscale-tune", evaluate_many: EvaluateMany | None = None,
           parallel: int = 1, learnt: Callable[[], bool | None] | None = None,
           on_resume: Callable[[int], None] | None = None) -> SearchResult:
    """Minimise ``evaluate`` over ``space`` (name -> (low, high), log scale) within the settings' budget.

    ``storage`` (an Optuna RDB URL, e.g. ``sqlite:///tune.db``) keeps the study, so a rerun resumes it: the
    finished trials count toward ``settings.trials`` and are not rerun, a trial an interruption left running is
    retried with its parameters, and a candidate's re-evaluation is stored too (rerun only for new candidates).
    ``evaluate_many`` (a batch of (params, seed) -> their losses, e.g. on Ray workers) with ``parallel`` > 1
    proposes ``parallel`` trials at a time (TPE's constant liar: running trials count as bad guesses) and
    evaluates each seed of a batch, and the re-evaluation, as one batch. ``learnt()`` says whether any of this
    process's runs did not diverge (None: it ran none); the study keeps the answer (a yes for good, written as
    soon as a trial ends after one), so a resumed search whose own runs all diverged, or that ran none, knows
    whether an earlier process's learnt. A study of an older abcscale, which kept no answer, is taken to have.
    ``on_resume(n)`` is told the finished trials a stored study held before any new one runs (so a progress line
    counts from there: Optuna's trial numbers also count the failed and retried ones).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t0 = time.perf_counter()
    try:
        study = optuna.create_study(direction="minimize", storage=storage, study_name=study_name,
                                    load_if_exists=storage is not None)
    except Exception as exc:  # sqlalchemy's: a bad URL, an unreachable database (sqlalchemy is optuna's)
        raise ValueError(f"storage: cannot open {storage!r}: {str(exc).splitlines()[0]}") from None
    done_before = _reopen(study)
    if on_resume is not None:
        on_resume(done_before)
    # reseeded past the trials already run, so a resumed search does not repeat its random start-up points
    study.sampler = optuna.samplers.TPESampler(seed=settings.sampler_seed + done_before, multivariate=True,
                                               n_startup_trials=min(10, max(2, (settings.trials or 40) // 4)),
                                               constant_liar=evaluate_many is not None and parallel > 1)
    study.pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    many = evaluate_many or (lambda jobs: [evaluate(p, seed) for p, seed in jobs])
    left = None if settings.trials is None else max(0, settings.trials - done_before)
    # whether a run learnt, kept in the study as the search goes (an interrupted search keeps it too): a study
    # starts at no; one of an older abcscale has no answer, and its earlier runs may have learnt
    said = [study.user_attrs.get("learnt")]
    if learnt is not None and said[0] is None and not study.trials:
        study.set_user_attr("learnt", False)
        said[0] = False

    def recorded(t: TrialRecord) -> None:
        if learnt is not None and said[0] is not True and learnt():
            study.set_user_attr("learnt", True)
            said[0] = True
        if on_trial is not None:
            on_trial(t)

    if left != 0 and evaluate_many is not None:
        _optimize_batched(study, space, many, settings, left, max(1, parallel), recorded)
    elif left != 0:
        _optimize(study, space, evaluate, settings, left, recorded)
    history = [_record(t) for t in study.trials]
    done = sorted((t for t in history if t.loss is not None and math.isfinite(t.loss)), key=lambda t: t.loss or 0)
    if not done and (ended := [t for t in history if t.loss is not None or t.state == "FAIL"]):
        # trials ran and every loss was NaN (Optuna fails such a trial) or infinite (a model not finite at its init,
        # say): more trials cannot help, which "raise --trials" said (a review)
        raise ValueError(f"trials: every one of the {len(ended)} search trials ended with a loss that is not finite "
                         "(NaN or infinite): check that the model's loss at its initialisation is finite, and the "
                         "search space's LRs (--beta-range)")
    if not done:
        raise ValueError("trials: no search trial completed; raise --trials or --seconds")
    candidates = _reevaluate(study, done[:settings.top], many, settings.reeval_seeds)
    best = min(candidates, key=lambda c: c.mean)
    now = learnt() if learnt is not None else None  # the re-evaluation's runs count too
    if now and said[0] is not True:
        study.set_user_attr("learnt", True)
        said[0] = True
    known = said[0] is True or (said[0] is None and (now is not False or done_before > 0))
    return SearchResult(best, candidates, history, _near_best(best, candidates, settings.reeval_seeds),
                        time.perf_counter() - t0, done_before, known)


def _suggest(trial: Any, space: dict[str, tuple[float, float]]) -> dict[str, float]:
    return {k: trial.suggest_float(k, lo, hi, log=True) for k, (lo, hi) in space.items()}


def _optimize(study: Any, space: dict[str, tuple[float, float]], evaluate: Evaluate, settings: TuneSettings,
              left: int | None, on_trial: Callable[[TrialRecord], None] | None) -> None:
    """One trial at a time; a trial reports its running mean after each seed, and may be pruned there."""
    import optuna

    def objective(trial: optuna.Trial) -> float:
        params = _suggest(trial, space)
        losses: list[float] = []
        for seed in range(settings.seeds):
            try:
                losses.append(evaluate(params, seed))
            except KeyboardInterrupt:  # Optuna fails the trial; a resumed search retries it (_reopen)
                trial.set_user_attr(INTERRUPTED, True)
                raise
            trial.set_user_attr("seeds_run", len(losses))
            trial.report(float(sum(losses) / len(losses)), seed)
            if seed < settings.seeds - 1 and trial.should_prune():
                raise optuna.TrialPruned
        return sum(losses) / len(losses)

    def callback(_: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if on_trial is not None:
            on_trial(_record(trial))

    with _quiet_optuna():
        study.optimize(objective, n_trials=left, timeout=settings.seconds, callbacks=[callback])


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna's lines that repeat what the caller says (:class:`_NoInterrupt`) left out while it runs. Its records
    come from child loggers (optuna.study._optimize), which a filter on the "optuna" logger itself never sees: its
    handlers' filters do."""
    handlers, quiet = list(logging.getLogger("optuna").handlers), _NoInterrupt()
    for h in handlers:
        h.addFilter(quiet)
    try:
        yield
    finally:
        for h in handlers:
            h.removeFilter(quiet)


class _NoInterrupt(logging.Filter):
    """Drops Optuna's records of a trial stopped by Ctrl-C (the caller says it in one line; Optuna's 40-line
    "Trial failed" is noise): the KeyboardInterrupt with its traceback, and the "failed with value None" that
    follows it. And its two warnings for a trial whose loss is NaN ("failed with parameters ... The value nan is
    not acceptable", "failed with value nan"): a diverged trial is a search's ordinary outcome, which the caller's
    own line per trial says (`abcscale tune`: ``fail  loss nan``); they were two more lines on stderr for each
    (session 80)."""

    def __init__(self) -> None:
        super().__init__()
        self.interrupted = False

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        message = record.getMessage()
        if isinstance(exc, KeyboardInterrupt) or "KeyboardInterrupt" in message:
            self.interrupted = True
            return False
        if "The value nan is not acceptable" in message or message.endswith("failed with value nan."):
            return False
        return not (self.interrupted and "failed with value None" in message)


def _optimize_batched(study: Any, space: dict[str, tuple[float, float]], many: EvaluateMany,
                      settings: TuneSettings, left: int | None, parallel: int,
                      on_trial: Callable[[TrialRecord], None] | None) -> None:
    """``parallel`` trials at a time (ask/tell), each seed of the batch evaluated together, pruning between."""
    with _quiet_optuna():
        _batches(study, space, many, settings, left, parallel, on_trial)


def _batches(study: Any, space: dict[str, tuple[float, float]], many: EvaluateMany, settings: TuneSettings,
             left: int | None, parallel: int, on_trial: Callable[[TrialRecord], None] | None) -> None:
    from optuna.trial import TrialState

    t0 = time.perf_counter()
    while (left is None or left > 0) and (settings.seconds is None or time.perf_counter() - t0 < settings.seconds):
        trials = [study.ask() for _ in range(parallel if left is None else min(parallel, left))]
        params = [_suggest(t, space) for t in trials]
        losses: list[list[float]] = [[] for _ in trials]
        live = list(range(len(trials)))
        for seed in range(settings.seeds):
            if not live:  # every trial of the batch was pruned: no empty batch for evaluate_many
                break
            for i, loss in zip(live, many([(params[i], seed) for i in live]), strict=True):
                losses[i].append(loss)
                trials[i].set_user_attr("seeds_run", len(losses[i]))
                trials[i].report(float(sum(losses[i]) / len(losses[i])), seed)
            if seed < settings.seeds - 1:
                pruned = {i for i in live if trials[i].should_prune()}
                for i in sorted(pruned):
                    study.tell(trials[i], state=TrialState.PRUNED)
                live = [i for i in live if i not in pruned]
        for i in live:
            mean = sum(losses[i]) / len(losses[i])
            # a NaN told as a value is failed by Optuna with a UserWarning as well as its log lines: told as failed
            if math.isnan(mean):
                study.tell(trials[i], state=TrialState.FAIL)
            else:
                study.tell(trials[i], mean)
        for t in trials:
            if on_trial is not None:
                on_trial(_record(study.get_trials(deepcopy=False)[t.number]))
        left = None if left is None else left - len(trials)


#: a trial's user attribute: Ctrl-C stopped it (Optuna marks it failed), so a resumed search runs it again
INTERRUPTED = "interrupted"
#: the study's user attribute listing the interrupted trials already queued again (each is retried once)
_REQUEUED = "requeued"


def _reopen(study: Any) -> int:
    """The number of finished trials of a reopened study. A trial left RUNNING by a killed process, or failed
    by Ctrl-C, is queued again with its parameters, so it is retried rather than lost or counted."""
    from optuna.trial import TrialState

    requeued = set(study.user_attrs.get(_REQUEUED, []))
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.FAIL)):
        if t.state is TrialState.RUNNING:
            study.tell(t.number, state=TrialState.FAIL)
            study.enqueue_trial(t.params)
        elif t.user_attrs.get(INTERRUPTED) and t.number not in requeued:
            study.enqueue_trial(t.params)
            requeued.add(t.number)
            study.set_user_attr(_REQUEUED, sorted(requeued))
    return finished(study.get_trials(deepcopy=False))


def finished(trials: list[Any]) -> int:
    """Trials (Optuna's, or :class:`TrialRecord`) that ran to an end: complete or pruned, not failed."""
    return sum(1 for t in trials if getattr(t.state, "name", t.state) in ("COMPLETE", "PRUNED"))


def _record(t: Any) -> TrialRecord:
    """A trial's record; a pruned trial's partial mean (Optuna keeps it as its value) is not a loss."""
    complete = t.state.name == "COMPLETE"
    return TrialRecord(number=t.number, params=dict(t.params), loss=t.value if complete else None,
                       state=t.state.name,
                       seeds_run=int(t.user_attrs.get("seeds_run", 0)))


def _reevaluate(study: Any, top: list[TrialRecord], many: EvaluateMany, seeds: int) -> list[Candidate]:
    """Each of ``top`` re-evaluated with ``seeds`` fresh seeds (one batch); the losses are kept in the study (a
    resumed search with a stored study reuses them, and runs only the seeds it lacks)."""
    stored = {t.number: list(study.user_attrs.get(f"reeval_{t.number}", []))[:seeds] for t in top}
    jobs = [(t, REEVAL_SEED0 + i) for t in top for i in range(len(stored[t.number]), seeds)]
    for (t, _), loss in zip(jobs, many([(t.params, seed) for t, seed in jobs]), strict=True):
        stored[t.number].append(loss)
    out = []
    for t in top:
        losses = stored[t.number]
        study.set_user_attr(f"reeval_{t.number}", losses)
        mean = sum(losses) / len(losses)
        std = math.sqrt(sum((x - mean) ** 2 for x in losses) / (len(losses) - 1)) if len(losses) > 1 else 0.0
        out.append(Candidate(trial=t.number, params=t.params, losses=losses, mean=mean, std=std))
    return out


def _near_best(best: Candidate, candidates: list[Candidate], n: int) -> dict[str, tuple[float, float]]:
    """Each parameter's range over the candidates within one standard error (of the difference) of the best:
    the values the re-evaluation cannot tell apart. One candidate (or one seed) gives a zero-width range."""
    close = [c for c in candidates if c.mean - best.mean <= math.sqrt((c.std ** 2 + best.std ** 2) / n)]
    return {k: (min(c.params[k] for c in close), max(c.params[k] for c in close)) for k in best.params}


def constants_from(params: dict[str, float], base: Constants | None = None) -> Constants:
    """The :class:`Constants` a parameter set stands for (gamma_hidden stays 1: beta absorbs it)."""
    base = base or Constants()

    def per_layer(group: str, current: PerLayer) -> PerLayer:
        return PerLayer(**{l.value: params.get(f"{group}_{l.value}", current[l]) for l in LAYERS})

    return base.model_copy(update={
        "gamma": per_layer("gamma", base.gamma), "init_scale": per_layer("init_scale", base.init_scale),
        "multiplier": per_layer("multiplier", base.multiplier), "epsilon": params.get("epsilon", base.epsilon)})


def tune(spec: SweepSpec, settings: TuneSettings, *, on_trial: Callable[[TrialRecord], None] | None = None,
         storage: str | None = None, ray_workers: int | None = None, address: str | None = None,
         on_resume: Callable[[int], None] | None = None) -> TunedConstants:
    """Tune ``spec``'s one parameterization x optimizer x alignment x LR mode at its base width.

    ``spec`` is a sweep spec (model, data, steps, ...); its constants are the starting point, the ones not
    searched are kept. ``storage`` (an Optuna RDB URL) makes the search resumable: its study is named by
    everything but the budget (:func:`study_name`), so a rerun with more trials continues it. ``ray_workers``
    evaluates that many trials at a time on Ray actors (a cluster at ``address``; None starts or joins a local
    one), each compiling the program once. ``on_trial`` and ``on_resume`` are :func:`search`'s. Needs the runner
    extra (JAX) and optuna (and ray for ``ray_workers``).
    """
    from abcscale._version import version
    from abcscale.runner import usercode
    from abcscale.runner.optim import variant
    from abcscale.runner.spec import spelling_free
    from abcscale.runner.tune import Evaluator
    from abcscale.runner.user import is_reference

    for key in ("parameterizations", "optimizers", "alignments", "lr_modes"):
        if len(getattr(spec, key)) != 1:
            raise ValueError(f"{key}: tune one at a time, got {getattr(spec, key)}")
    if "epsilon" in settings.tune and not variant(spec.optimizers[0]).uses_epsilon:  # a search dimension of noise
        raise ValueError(f"tune: {spec.optimizers[0]} uses no epsilon; drop epsilon from the groups tuned")
    many: EvaluateMany | None = None
    if ray_workers:
        from abcscale.runner.tune import RayEvaluator

        pool = RayEvaluator(spec, ray_workers, address)
        data_hash = pool.data_hash

        def on_ray(jobs: list[tuple[dict[str, float], int]]) -> list[float]:
            return pool.map([(constants_from(p, spec.constants), p["beta"], s) for p, s in jobs])
        many = on_ray

        def one(p: dict[str, float], s: int) -> float:
            return many([(p, s)])[0]
    else:
        evaluator = Evaluator(spec)
        data_hash = evaluator.data_hash

        def one(p: dict[str, float], s: int) -> float:
            return evaluator(constants_from(p, spec.constants), p["beta"], s)
    counts = pool if ray_workers else evaluator
    # the model's code as the search's check read it (runner.usercode), which its study's name must name too
    started = usercode.stamp(spec.model) if is_reference(spec.model) else None
    name = study_name(spec, settings, data_hash)
    if started is not None and (edited := usercode.changed(started)):
        raise ValueError(f"model: {', '.join(edited)} changed as the search started: run it again")
    result = search(settings.space(), one, settings, on_trial=on_trial, storage=storage, study_name=name,
                    evaluate_many=many, parallel=ray_workers or 1,
                    learnt=lambda: counts.diverged < counts.runs if counts.runs else None, on_resume=on_resume)
    if started is not None and (edited := usercode.changed(started)):  # as a sweep says it (session 75)
        import warnings

        from abcscale.runner.store import SweepWarning

        warnings.warn(f"model: {', '.join(edited)} changed during the search; it tuned the code it started with, "
                      "which its study is named by: run it again to tune the edit", SweepWarning, stacklevel=2)
    # every run scored its loss at init: the "winner" is arbitrary, and its beta would be far too high (a resumed
    # study remembers whether an earlier process's runs learnt)
    if not result.learnt:
        low, high = settings.beta_range
        raise ValueError(f"beta_range: every run of the search diverged (its loss no better than at init), so "
                         f"nothing was tuned; lower the range (it was {low:g}:{high:g})")
    best = result.best
    return TunedConstants(
        parameterization=spec.parameterizations[0], optimizer=variant(spec.optimizers[0]).family,
        optimizer_variant=spec.optimizers[0], alignment=spec.alignments[0], lr_mode=spec.lr_modes[0],
        base_width=spec.base, beta=best.params["beta"], constants=constants_from(best.params, spec.constants),
        loss=best.mean, loss_std=best.std, near_best=result.near_best, settings=settings,
        training=_training(spec), data_hash=data_hash, elapsed_s=result.elapsed_s,
        model_source=spelling_free(spec).get("model_source") or None,
        trials_run=finished(result.history), history=result.history, candidates=result.candidates,
        abcscale_version=version())


def _training(spec: SweepSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", exclude={"widths", "log2_lr", "gammas", "seeds"})


def _digest(spec: SweepSpec, settings: dict[str, Any], data_hash: str) -> str:
    import hashlib
    import json

    from abcscale.runner.spec import spelling_free

    # a user model by its code and file, not by how its path is written (as a sweep's cell key): an edited model
    # resumed the study of the code before it, its trials mixed with the new one's (a review); nothing changes for
    # the built-in models and data
    blob = json.dumps({"training": _training(spec) | spelling_free(spec), "base_width": spec.base,
                       "settings": settings, "data": data_hash}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def study_name(spec: SweepSpec, settings: TuneSettings, data_hash: str) -> str:
    """The resumable study's name: the training setup, data and search space, not the budget (trials,
    seconds) nor the re-evaluation, so a rerun with a larger budget continues the same study."""
    space = settings.model_dump(mode="json", exclude={"trials", "seconds", "top", "reeval_seeds"})
    return f"abcscale-tune-{_digest(spec, space, data_hash)}"


def tune_cached(spec: SweepSpec, settings: TuneSettings, folder: str | Path, *,
                on_trial: Callable[[TrialRecord], None] | None = None) -> tuple[TunedConstants, Path, bool]:
    """:func:`tune`, its constants file kept in ``folder`` under a name keyed by everything that changes the
    result (training setup, base width, data, every search setting: the sampler is seeded, so the same key
    gives the same search); a rerun reads it back. Returns (file's content, its path, whether it was reused)."""
    folder = Path(folder)
    key = _digest(spec, settings.model_dump(mode="json"), spec.corpus().sha256)
    path = folder / f"{spec.parameterizations[0]}-{spec.optimizers[0]}-{LrMode(spec.lr_modes[0]).value}-{key}.json"
    if path.exists():
        try:
            return load_constants(path), path, True
        except ValueError:  # a damaged file (an interrupted write): tune again
            pass
    tuned = tune(spec, settings, on_trial=on_trial)
    folder.mkdir(parents=True, exist_ok=True)
    return tuned, save_constants(tuned, path), False


def check_out(out: str | Path, spec: SweepSpec | TunedConstants) -> None:
    """Before the work: ``out`` can be written, and replaces nothing but a constants file of this same setup (a
    rerun, or the file a transfer check is added to); another file, or another setup's constants, is the user's
    and stays. ``spec`` is the search's sweep spec, or the constants file being checked. A ValueError starting
    ``out: `` says why."""
    import os

    out = Path(out)
    folder = out.parent
    if not folder.is_dir():
        raise ValueError(f"out: {folder} is not a folder (create it first)")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"out: cannot write into {folder}")
    if out.is_dir():
        raise ValueError(f"out: {out} is a folder; give a file name")
    if not out.exists():
        return
    try:
        old = load_constants(out)
    except ValueError:
        raise ValueError(f"out: {out} exists and is not a constants file from `abcscale tune`; give another "
                         "path") from None
    this = setup_of(spec)
    if setup_of(old) != this:  # alignment too: recommend and check hold it to the file
        raise ValueError(f"out: {out} holds the constants tuned for {_said(setup_of(old))}; this run's are for "
                         f"{_said(this)}: give another one")
    # another model or data is another tuning, however alike the setup: mlp's constants replaced a user model's,
    # and a check of one file was written over another model's (a review); compared by what they are (a built-in's
    # name, a user model's code hash, a data file's hash), not by a path, which each run may spell from elsewhere
    theirs, ours = inputs_of(old), inputs_of(spec)
    for what, a, b in (("model", theirs[0], ours[0]), ("data", theirs[1], ours[1])):
        if a != b and a is not None and b is not None:
            raise ValueError(f"out: {out} holds the constants tuned on another {what} ({a}, not {b}): give another "
                             "one")


def inputs_of(spec: SweepSpec | TunedConstants) -> tuple[str | None, str | None]:
    """What a search trained on, as comparable words: the model (a built-in's name, or a user model's code by its
    hash) and the data (a built-in set's name, or a file's bytes by their hash); None where a file from before
    session 83 does not say (a user model's code was not recorded)."""
    from abcscale.runner.spec import BUILTIN_DATA, BUILTIN_MODELS, spelling_free

    if isinstance(spec, TunedConstants):
        model, data = str(spec.training.get("model")), str(spec.training.get("data"))
        source, digest = spec.model_source, spec.data_hash
    else:
        model, data = spec.model, spec.data
        source = spelling_free(spec).get("model_source") if model not in BUILTIN_MODELS else None
        digest = spec.corpus().sha256 if data not in BUILTIN_DATA else None
    model_id = model if model in BUILTIN_MODELS else f"a model file of code {source[:12]}" if source else None
    # a built-in set by its name: `default` is this Python's standard library, other bytes on another install
    data_id = data if data in BUILTIN_DATA else f"a data file of hash {digest[:12]}" if digest else None
    return model_id, data_id


def same_inputs(tuned: TunedConstants, spec: SweepSpec) -> None:
    """Before a transfer check: the model code and the data the constants were tuned on are the ones ``spec``
    trains now. A check of edited code or other bytes ran in silence and kept the file's ``data_hash`` (a
    review). A ValueError starting ``model:`` or ``data:`` says which."""
    from abcscale.runner.spec import BUILTIN_DATA, spelling_free

    if tuned.model_source and (now := spelling_free(spec).get("model_source")) and now != tuned.model_source:
        raise ValueError(f"model: {spec.model} changed since its constants were tuned; tune the edit, or restore "
                         "the code they were tuned on")
    # not a built-in set: `default` is this Python's standard library, other bytes on another install (a review)
    if tuned.data_hash and spec.data not in BUILTIN_DATA and (held := spec.corpus().sha256) != tuned.data_hash:
        raise ValueError(f"data: {spec.data} is not the data the constants were tuned on (hash {tuned.data_hash[:16]}"
                         f", now {held[:16]}); tune on it, or restore the data")


def setup_of(spec: SweepSpec | TunedConstants) -> tuple[str, str, LrMode, int, str]:
    """What a constants file is tuned for: parameterization, optimizer variant, LR mode, base width, alignment."""
    from abcscale.schemas.theory import Alignment

    if isinstance(spec, TunedConstants):
        return (spec.parameterization, spec.optimizer_variant, spec.lr_mode, spec.base_width,
                Alignment.parse(spec.alignment).name)
    return (spec.parameterizations[0], spec.optimizers[0], LrMode(spec.lr_modes[0]), spec.base,
            Alignment.parse(spec.alignments[0]).name)


def _said(setup: tuple[str, str, LrMode, int, str]) -> str:
    p, o, mode, base, al = setup
    return f"{p} + {o}, {mode.value} LR, base width {base}, alignment {al}"


def save_constants(tuned: TunedConstants, path: str | Path) -> Path:
    """Write the file whole or not at all (a temporary file renamed over it), so a reader never sees half. A
    ValueError naming ``path`` when it cannot be written."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(tuned.model_dump_json(indent=2) + "\n")
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):  # the folder may be what failed (missing_ok is ENOENT alone)
            tmp.unlink(missing_ok=True)
        raise ValueError(f"out: cannot write {path} ({exc.strerror or exc})") from None
    return path


def load_constants(path: str | Path) -> TunedConstants:
    """Read a constants file (``abcscale tune --out``); a ValueError names the file and the problem (a key given
    twice included: pydantic's JSON parser would take the later value silently)."""
    from pydantic import ValidationError

    from abcscale.schemas.errors import validation_message
    from abcscale.schemas.textfile import UnreadableText, read_text
    from abcscale.usecases.config_map import DuplicateKey, load_json

    try:
        text = read_text(path)
    except UnreadableText as exc:
        raise ValueError(f"{path}: {exc}") from None
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from None
    try:
        load_json(text)
    except DuplicateKey as exc:
        raise ValueError(f"{path}: {exc}") from None
    except ValueError:
        pass  # not JSON at all: pydantic names it below
    try:
        # strict: a hand-edited `"base_width": true` read as width 1, `"beta": "0.01"` as a number (REST refused both)
        tuned = TunedConstants.model_validate_json(text, strict=True)
    except ValidationError as exc:
        if "written by a newer abcscale" in str(exc):  # it is one, of a format this abcscale does not read
            raise ValueError(f"{path}: {validation_message(exc).removeprefix('version: ')}") from None
        if _is_fit(text):  # the other file the workflow writes: say which it is, not twenty missing fields
            raise ValueError(f"{path}: a fit from `abcscale fit`, not a constants file from `abcscale tune`: give it "
                             "as the fit (--fit FILE; fit= in Python)") from None
        raise ValueError(f"{path}: not a constants file from `abcscale tune` ({validation_message(exc)})") from None
    return tuned


def with_local_paths(tuned: TunedConstants, folder: Path) -> tuple[TunedConstants, list[str]]:
    """``tuned`` with its training's model file and data path found where they are: the file records them as
    `abcscale tune` was given them, relative to the folder it ran in. A relative path missing from the working
    directory but present beside the constants file (``folder``) is taken from there, and said; one found in
    neither is a ValueError naming both places (the runner's "no such file" named neither)."""
    training, notes = dict(tuned.training), []
    for key in ("model", "data"):
        value = training.get(key)
        if not isinstance(value, str):
            continue
        target, sep, factory = value.rpartition(":") if key == "model" else (value, "", "")
        if key == "model" and not (target.endswith(".py") or "/" in target):
            continue  # a built-in model or an importable module, not a file
        if key == "data" and value in ("default", "synthetic"):
            continue
        path = Path(target).expanduser()
        if path.is_absolute() or path.exists():
            continue
        if (beside := folder / path).exists():
            training[key] = f"{beside}{sep}{factory}"
            notes.append(f"{key}: {target} is not in the working directory; the one beside the constants file "
                         f"({beside}) is used")
            continue
        raise ValueError(f"training.{key}: {target}, which the constants file records as `abcscale tune` was given "
                         f"it (relative to the folder it ran in), is neither in the working directory ({Path.cwd()}) "
                         f"nor beside the file ({folder}): run from the folder tune ran in")
    return (tuned.model_copy(update={"training": training}) if notes else tuned), notes


def load_for_transfer(path: str | Path) -> TunedConstants:
    """:func:`load_constants` for ``recommend``, ``check`` and the exports, which transfer the named
    parameterizations: a file tuned on a sweep's custom (a, b) table is a ValueError naming the file."""
    return transferable(load_constants(path), path)


def transferable(tuned: TunedConstants, path: str | Path | None = None) -> TunedConstants:
    """``tuned``, or a ValueError when its parameterization is a custom table (``training.custom_tables``): the
    theory's transfer takes standard, ntk, mup or mean_field, and a custom name read as one was an error about a
    flag nobody typed."""
    from abcscale.schemas.enums import Parameterization

    where = "" if path is None else f"{path}: "
    custom = tuned.parameterization in (tuned.training.get("custom_tables") or {})
    try:
        Parameterization.parse(tuned.parameterization)
    except ValueError:
        if not custom:  # a typo, or hand-edited
            raise ValueError(f"{where}parameterization {tuned.parameterization!r}: expected standard, ntk, mup or "
                             "mean_field") from None
    if custom:  # a table named like a built-in one (older sweeps allowed it) is still the table
        raise ValueError(f"{where}parameterization {tuned.parameterization!r} is a custom (a, b) table of the sweep "
                         "it was tuned on; recommend, check and the exports transfer standard, ntk, mup or "
                         f"mean_field only: use these constants at width {tuned.base_width} as they are, or tune one "
                         "of those") from None
    return tuned


def _is_fit(text: str) -> bool:
    import json

    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and "groups" in data and "provenance" in data


def analytic_request(tuned: TunedConstants | TunedFile, width: int, *, lr_mode: LrMode | str | None = None,
                     form: Form | str | None = None, rules: Any = None) -> AnalyticRecommend:
    """The analytic request a constants file stands for at ``width``: what ``abcscale recommend --constants FILE``,
    ``POST /v1/recommend`` with ``tuned`` and the exports' ``spec=FILE`` all answer. ``lr_mode`` defaults to the
    file's: the mode its search trained in, and the rule its ``--verify-widths`` checked."""
    from abcscale.usecases.recommend import recommend_request

    inputs = recommend_inputs(tuned)
    if lr_mode is not None:
        inputs["lr_mode"] = lr_mode
    req = recommend_request(width=width, form=form, rules=rules, **inputs)
    assert isinstance(req, AnalyticRecommend)  # no fit_id: the analytic source
    return req


def warn_unapplied_multipliers(spec: GroupSpec, form: Form | str | None, where: str, applied: bool = False) -> None:
    """Warn when an abc- or mup-form spec reaches an export that sets LRs or init stds without the caller saying
    its forward applies the multipliers (``form="abc"``/``"mup"``): ``recommend()``'s default form is abc, and a
    plain model given those numbers trains its embedding and readout off by the multipliers (32x at width 1024
    under muP); the mup form's readout assumes ``MuReadout``'s 1/width_mult (4x off at 4x the base width, a user
    review). ``applied``: the model applies them itself (a PyTorch model whose readout is a ``MuReadout``)."""
    if form is not None or spec.form is Form.multiplier_free or applied:
        return
    scaled = {s.role.value: s.multiplier for s in spec.roles if s.multiplier not in (None, 1.0)}
    if scaled:
        import warnings

        said = ", ".join(f"{role} {m:.4g}" for role, m in scaled.items())
        how = ("" if spec.form is Form.abc else
               " (microsoft/mup's MuReadout divides the readout's output by width_mult: use it as the readout)")
        warnings.warn(f"{where}: the spec is in the {spec.form.value} form, whose LRs and init stds assume the forward "
                      f"multiplies each layer's output by its multiplier ({said}: spec[role].multiplier; "
                      f"abctorch.multipliers names them per parameter){how}. For a model without multipliers "
                      f"recommend with form='multiplier_free'; form='{spec.form.value}' here says the forward applies "
                      "them", UserWarning, stacklevel=4)  # the caller's line: past this, the export's helper and it


def group_spec(spec: GroupSpec | Recommendation | TunedConstants | str | Path, *, width: int | None = None,
               form: Form | str | None = None, rules: Any = None) -> GroupSpec:
    """``spec`` as a :class:`GroupSpec`: itself (or a :class:`Recommendation`'s ``groups``), or a constants file's
    (its path or :class:`TunedConstants`) parameter groups at ``width`` in ``form`` (default multiplier_free: a
    plain model applies no multiplier). A ValueError names ``width`` when a file comes without it, or with a
    spec of another width, ``form`` with a spec in another form, and ``spec`` when it is none of these."""
    from abcscale.usecases.recommend import recommend_analytic

    if isinstance(spec, str | Path) and (saved := _saved_groups(spec)) is not None:
        spec = saved  # `recommend --format json > rec.json`, or a GroupSpec's JSON: read as what it is
    if isinstance(spec, Recommendation):
        if spec.groups is None:
            raise ValueError("spec: this recommendation carries no parameter groups; recommend with form=...")
        spec = spec.groups
    if isinstance(spec, GroupSpec):
        # checked as a file's target is: -1 was "recommend again for -1", 64.0 taken here and refused there
        width = None if width is None else export_width(width)
        if width is not None and width != spec.width:
            raise ValueError(f"width: the spec is for width {spec.width}; recommend again for {width}")
        if form is not None and (asked := export_form(form)) is not spec.form:
            raise ValueError(f"form: the spec is in the {spec.form.value} form; recommend again with "
                             f"form={asked.value!r}")
        return spec
    if not isinstance(spec, TunedConstants | str | Path):
        raise ValueError(f"spec: expected recommend(...).groups (a GroupSpec), a Recommendation, a constants file's "
                         f"path, a TunedConstants or from_mup(...)'s MupImport, got {type(spec).__name__}")
    width, form = target_of_file(width, form)
    tuned = transferable(spec) if isinstance(spec, TunedConstants) else load_for_transfer(spec)
    rec = with_variant_notes(recommend_analytic(analytic_request(tuned, width, form=form, rules=rules)), tuned)
    groups = rec.groups
    assert groups is not None  # an analytic answer always carries its groups
    notes = [w for w in rec.warnings if w.startswith(f"epsilon: the file was tuned with {tuned.optimizer_variant}")]
    return groups.model_copy(update={"warnings": [*groups.warnings, *notes]})  # the exports say the spec's


def target_of_file(width: Any, form: Form | str | None) -> tuple[int, Form]:
    """A constants file's target for the exports, checked as ``recommend`` checks it: ``width`` a whole number in
    range (a ValueError naming it; 0 or "32" was a multi-line pydantic error about AnalyticRecommend, a review),
    ``form`` a known form (default multiplier_free, as a plain model applies no multiplier)."""
    if width is None:
        raise ValueError("width: a constants file needs the target width (width=...)")
    return export_width(width), Form.multiplier_free if form is None else export_form(form)


def export_width(width: Any) -> int:
    """An export's target ``width``: a whole number from 1 to 2**40 (``64.0`` is 64, as ``recommend`` takes it),
    else a ValueError naming it; one check for a spec and a constants file."""
    import decimal
    import math

    from abcscale.schemas.numbers import shown
    from abcscale.schemas.theory import MAX_WIDTH

    value = width
    if getattr(value, "ndim", None) == 0 and callable(getattr(value, "item", None)):
        value = value.item()  # a 0-d array (np.array(64), jnp.float32(64)), as recommend() takes it (a review)
    if isinstance(value, decimal.Decimal) and value.is_finite():
        value = int(value) if value == value.to_integral_value() else float(value)
    elif isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral | bool):
        value = float(value)  # numpy's float32
    whole = not isinstance(value, bool) and (isinstance(value, numbers.Integral) or (
        isinstance(value, float) and math.isfinite(value) and value.is_integer()))
    if isinstance(width, bool) or not whole or not 0 < int(value) <= MAX_WIDTH:
        raise ValueError(f"width: expected a positive whole number (at most 2**40 = {MAX_WIDTH}), got {shown(width)}")
    return int(value)


def export_form(form: Form | str) -> Form:
    """``Form.parse(form)``, its error naming ``form``."""
    try:
        return Form.parse(form)
    except ValueError as exc:
        raise ValueError(f"form: {exc}") from None


def _saved_groups(path: str | Path) -> Recommendation | GroupSpec | None:
    """A saved recommendation (``recommend --format json``, ``rec.model_dump_json()``) or parameter groups
    (``rec.groups.model_dump_json()``) at ``path``, or None when the file is neither (a constants file, say)."""
    import json

    from pydantic import ValidationError

    from abcscale.schemas.errors import validation_message
    from abcscale.schemas.textfile import read_text

    try:
        data = json.loads(read_text(path))
    except (OSError, ValueError):
        return None  # the constants reader says what is wrong with it
    if not isinstance(data, dict) or data.get("kind") == "abcscale.tuned-constants":
        return None
    kind: type[Recommendation] | type[GroupSpec] | None = (
        Recommendation if {"layers", "groups"} <= set(data) else GroupSpec if {"roles", "form"} <= set(data)
        else None)
    if kind is None:
        return None
    try:
        return kind.model_validate(data)
    except ValidationError as exc:
        raise ValueError(f"spec: {path} reads as a saved {'recommendation' if kind is Recommendation else 'GroupSpec'}"
                         f" but does not validate: {validation_message(exc)}") from None


def file_constants(tuned: TunedConstants | TunedFile) -> Constants:
    """A tune file's constants as both faces take them: every one the search trained with, at its default or not
    (the CLI took them all, Python dropped those at their defaults, so a fit's runs filled them: a file at epsilon
    1e-8 per_layer with a fit trained at 1e-6 constant gave hidden epsilons 3200x apart; a review, session 66),
    except the settings its optimizer has no use for (an SGD file's epsilon 1e-8 is not "given" to SGD), unset."""
    from abcscale.theory.rules import layer_rules

    c = tuned.constants
    unused = {k for k, v in c.model_dump().items() if v == type(c).model_fields[k].default}
    unused &= ({"epsilon", "epsilon_mode"} if not layer_rules(tuned.optimizer).has_epsilon else set()) | (
        {"weight_decay", "weight_decay_mode"} if not layer_rules(tuned.optimizer).weight_decay else set())
    return type(c).model_validate(c.model_dump(exclude=unused, exclude_unset=True)) if unused else c


def recommend_inputs(tuned: TunedConstants | TunedFile) -> dict[str, Any]:
    """What a constants file gives ``recommend`` (each a default that an explicit flag or keyword overrides)."""
    constants = file_constants(tuned)
    return {"parameterization": tuned.parameterization, "optimizer": tuned.optimizer, "alignment": tuned.alignment,
            "base_width": tuned.base_width, "beta": tuned.beta, "constants": constants,
            "lr_mode": tuned.lr_mode}


def with_variant_notes(rec: Recommendation, tuned: TunedConstants | TunedFile) -> Recommendation:
    """``rec`` with what the file's optimizer variant does with epsilon where its family's rule says otherwise:
    the recommendation follows the family (``-o``), the search trained the variant. A recommendation for another
    optimizer (a fit's group) is returned as it is."""
    if tuned.optimizer_variant is None or (how := VARIANT_EPSILON.get(tuned.optimizer_variant)) is None \
            or rec.optimizer is not tuned.optimizer:
        return rec
    warnings = list(rec.warnings)
    if how == "none":
        warnings.append(f"epsilon: the file was tuned with {tuned.optimizer_variant}, which uses no epsilon: the "
                        f"epsilons above are {tuned.optimizer.value}'s rule, which it ignores")
    else:
        eps = tuned.constants.epsilon
        warnings = [w for w in warnings if not w.startswith(f"epsilon: {tuned.optimizer.value} has no epsilon")]
        warnings.append(f"epsilon: the file was tuned with {tuned.optimizer_variant}, which uses one epsilon at every "
                        f"width ({tuned.optimizer.value}'s rule has none, so the layers show none): give it "
                        + ("its default" if eps is None else f"{eps:g}") + " at any width")
    groups = rec.groups
    if groups is not None and how == "flat":
        groups = groups.model_copy(update={"warnings": [w for w in groups.warnings if not w.startswith(
            f"epsilon: {tuned.optimizer.value} has no epsilon")]})
    return rec.model_copy(update={"warnings": warnings, "groups": groups})


def beta_override_note(tuned_beta: float, beta: float | None, *, name: str, path: str | Path) -> str | None:
    """The note where ``beta`` (``recommend --base-lr``, a check config's ``beta``) replaces the beta of the constants
    file at ``path``: its gammas were tuned jointly with its own beta (the search's optimum is the pair), so another
    one moves every layer's LR by the same factor off what was tuned, silently before (a review). None where it
    agrees, or none was given."""
    if beta is None or math.isclose(beta, tuned_beta, rel_tol=1e-9):
        return None
    return (f"{name}: {beta:g} replaces the beta {tuned_beta:g} tuned in {path}, whose gammas were tuned jointly "
            f"with it: every LR is {beta / tuned_beta:.3g}x the tuned transfer's (drop {name} to use the file's)")


def decay_override(tuned: TunedConstants | TunedFile, typed: Constants, *, names: tuple[str, str],
                   path: str | Path) -> tuple[dict[str, Any], str | None]:
    """A weight decay (and its mode) given beside the constants file at ``path``: the fields that replace the
    file's, and the note that says so, as :func:`beta_override_note` says a beta's. ``typed`` holds what was given
    (its ``model_fields_set``); ``names`` are the caller's words for weight_decay and weight_decay_mode (the CLI's
    flags, the Python API's keywords). The file's decay is the one its beta and gammas were tuned jointly with:
    another one is taken and said (the CLI took it in silence and the Python API refused it, a review). A mode
    alone, other than the file's, is a ValueError naming it: the tuned number means another decay in the other mode
    (coupled 0.1 at lr 3e-3 is 3e-4 a step; read as independent, 0.1: about 300x), so a decay for the mode given
    goes with it. A file without decay (0) reads the same in both modes."""
    value_name, mode_name = names
    theirs = tuned.constants
    update: dict[str, Any] = {k: getattr(typed, k) for k in ("weight_decay", "weight_decay_mode")
                              if k in typed.model_fields_set}
    mode = update.get("weight_decay_mode", theirs.weight_decay_mode)
    if "weight_decay" not in update and mode is not theirs.weight_decay_mode and theirs.weight_decay:
        wd, beta = theirs.weight_decay, tuned.beta
        step = {"coupled": f"lr x {wd:g} ({beta * wd:.2g} at its beta {beta:g})", "independent": f"{wd:g}"}
        raise ValueError(f"{mode_name}: the weight decay {wd:g} in {path} was tuned {theirs.weight_decay_mode.value}: "
                         f"each step decays the weights by {step[theirs.weight_decay_mode.value]}; as {mode.value}, "
                         f"by {step[mode.value]}, another decay: give the decay for {mode.value} with {value_name} "
                         f"too, or leave {mode_name} out to use the file's")
    value = update.get("weight_decay", theirs.weight_decay)
    if math.isclose(value, theirs.weight_decay, rel_tol=1e-9) and (mode is theirs.weight_decay_mode or not value):
        # the file's decay as it was, or none in either mode (0 is no decay whatever its mode): nothing replaced (a
        # mode alone over a file without decay said "0 (independent) replaces the weight decay 0", a code review)
        return update, None
    return update, (f"{value_name}: {value:g} ({mode.value}) replaces the weight decay {theirs.weight_decay:g} "
                    f"({theirs.weight_decay_mode.value}) tuned in {path} jointly with its beta {tuned.beta:g} and "
                    f"gammas: they were the optimum under the file's decay, not this one (drop {value_name} to use "
                    "the file's)")


def epsilon_mode_note(tuned: TunedConstants | TunedFile, rec: Recommendation, typed: Constants, *, name: str,
                      path: str | Path) -> str | None:
    """The note where an epsilon mode given beside the constants file at ``path`` (``typed.model_fields_set``;
    ``name`` is the caller's word for it, ``recommend --epsilon-mode``) differs from the file's, ``rec`` being the
    answer in the given mode. Taken, not refused as :func:`decay_override` refuses a decay mode alone: the modes give
    the tuned epsilon alike at the base width (``(n/b)^-e_l`` is 1 there), the one width the search trained, so the
    number means the same in both; the mode is the rule that carries it to other widths, as the LR mode is the LR's
    (the file's is the rule its ``--verify-widths`` checked). It was silent, each layer's epsilon moved by
    ``(n/b)^-e_l`` (64x on hidden at 64x the base width, a review). None where nothing moves: the file's mode, the
    base width, an optimizer without an epsilon, a variant whose epsilon :func:`with_variant_notes` says."""
    from abcscale.schemas.enums import EpsilonMode, Layer
    from abcscale.schemas.theory import ABTable
    from abcscale.theory.rules import layer_rules

    theirs = tuned.constants.epsilon_mode
    if "epsilon_mode" not in typed.model_fields_set or typed.epsilon_mode is theirs \
            or rec.optimizer is not tuned.optimizer or tuned.optimizer_variant in VARIANT_EPSILON:
        return None
    mode, ratio = typed.epsilon_mode, rec.width / rec.base_width
    exps = layer_rules(rec.optimizer).epsilon_exponents(ABTable.model_validate(rec.exponents),
                                                        {Layer(k): v.c for k, v in rec.exponents.items()})
    # this mode's epsilon over the file's mode's, per layer that has one (per_layer: (n/b)^-e_l; constant: 1)
    factors = {l: ratio ** (-e if mode is EpsilonMode.per_layer else e) for l, e in exps.items() if e is not None}
    if all(math.isclose(f, 1.0, rel_tol=1e-9) for f in factors.values()):
        return None
    said = ", ".join(f"{l.value} x{f:.3g}" for l, f in factors.items())
    return (f"{name}: {mode.value} carries the epsilon {tuned.constants.epsilon:g} of {path} across widths by the "
            f"{mode.value} rule, not the file's {theirs.value} one: the two agree at its base width "
            f"{tuned.base_width}, where it was tuned, and at {rec.width} this rule's epsilons are the file's rule's "
            f"{said} (drop {name} to use the file's)")


def setting_name(value: Any) -> str:
    """A setup value as a comparable name: a parameterization or optimizer (enum or name; aliases like ``sp``
    read through theory's parser), an alignment (``full``, ``none`` or its numbers), a width. The readers of a
    constants file compare what they are given with what it was tuned for by it."""
    from abcscale.schemas.enums import Optimizer, Parameterization
    from abcscale.schemas.theory import Alignment

    def alignment(v: Any) -> str:  # by its numbers: {alpha: 1, omega: 1, u: 1} is full (a REST body's, a review)
        a = Alignment.parse(v)
        same = (a.alpha, a.omega, a.u)
        return next((n for n in ("full", "none") if (lambda b: (b.alpha, b.omega, b.u))(Alignment.parse(n)) == same),
                    a.name)

    if isinstance(value, int):
        return str(value)
    if isinstance(value, Alignment | dict):
        return alignment(value)
    text = str(getattr(value, "value", value))
    for parse in (lambda t: Parameterization.parse(t).value, lambda t: Optimizer.parse(t).value, alignment):
        try:
            return str(parse(text))
        except ValueError:
            continue
    return text
