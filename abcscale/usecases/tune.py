"""Tune the per-layer constants jointly with beta at the base width (``abcscale tune``, ``abcscale.tune``).

:func:`search` is the black-box part, independent of training: Optuna's TPE sampler (fixed seed, every
parameter log-uniform; it models a few continuous parameters from few, noisy evaluations well) proposes
parameters; each trial trains ``seeds`` seeds and reports the running mean after each, so a median pruner
stops a hopeless trial after its first seed (pruning inside one training run would need the runner's
single compiled scan split into pieces; seeds are the natural steps here). Then the ``top`` trials are
re-evaluated with fresh seeds and the lowest mean wins, so one lucky seed does not pick the winner.

:func:`tune` wires it to the runner (one compiled program at the base width: every trial's LRs, init
stds, multipliers and epsilons are runtime arrays) and packs the :class:`TunedConstants` file.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abcscale.schemas.enums import LAYERS
from abcscale.schemas.theory import Constants, PerLayer
from abcscale.schemas.tune import Candidate, TrialRecord, TunedConstants, TuneSettings

if TYPE_CHECKING:
    from abcscale.runner.spec import SweepSpec

#: evaluate(params, seed) -> loss; params hold "beta" and the searched constants
Evaluate = Callable[[dict[str, float], int], float]
#: re-evaluation seeds start here, apart from the search's 0..seeds-1
REEVAL_SEED0 = 1000


@dataclass(frozen=True)
class SearchResult:
    best: Candidate
    candidates: list[Candidate]
    history: list[TrialRecord]
    near_best: dict[str, tuple[float, float]]
    elapsed_s: float


def search(space: dict[str, tuple[float, float]], evaluate: Evaluate, settings: TuneSettings, *,
           on_trial: Callable[[TrialRecord], None] | None = None) -> SearchResult:
    """Minimise ``evaluate`` over ``space`` (name -> (low, high), log scale) within the settings' budget."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t0 = time.perf_counter()
    sampler = optuna.samplers.TPESampler(seed=settings.sampler_seed, multivariate=True,
                                         n_startup_trials=min(10, max(2, (settings.trials or 40) // 4)))
    pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    study = optuna.create_study(direction="minimize", sampler=sampler, pruner=pruner)

    def objective(trial: optuna.Trial) -> float:
        params = {k: trial.suggest_float(k, lo, hi, log=True) for k, (lo, hi) in space.items()}
        losses: list[float] = []
        for seed in range(settings.seeds):
            losses.append(evaluate(params, seed))
            trial.set_user_attr("seeds_run", len(losses))
            trial.report(float(sum(losses) / len(losses)), seed)
            if seed < settings.seeds - 1 and trial.should_prune():
                raise optuna.TrialPruned
        return sum(losses) / len(losses)

    def callback(_: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if on_trial is not None:
            on_trial(_record(trial))

    study.optimize(objective, n_trials=settings.trials, timeout=settings.seconds, callbacks=[callback])
    history = [_record(t) for t in study.trials]
    done = sorted((t for t in history if t.loss is not None and math.isfinite(t.loss)), key=lambda t: t.loss or 0)
    if not done:
        raise ValueError("trials: no search trial completed; raise --trials or --seconds")
    candidates = [_reevaluate(t, evaluate, settings.reeval_seeds) for t in done[:settings.top]]
    best = min(candidates, key=lambda c: c.mean)
    return SearchResult(best, candidates, history, _near_best(best, candidates, settings.reeval_seeds),
                        time.perf_counter() - t0)


def _record(t: Any) -> TrialRecord:
    """A trial's record; a pruned trial's partial mean (Optuna keeps it as its value) is not a loss."""
    complete = t.state.name == "COMPLETE"
    return TrialRecord(number=t.number, params=dict(t.params), loss=t.value if complete else None,
                       state=t.state.name,
                       seeds_run=int(t.user_attrs.get("seeds_run", 0)))


def _reevaluate(t: TrialRecord, evaluate: Evaluate, seeds: int) -> Candidate:
    losses = [evaluate(t.params, REEVAL_SEED0 + i) for i in range(seeds)]
    mean = sum(losses) / len(losses)
    std = math.sqrt(sum((x - mean) ** 2 for x in losses) / (len(losses) - 1)) if len(losses) > 1 else 0.0
    return Candidate(trial=t.number, params=t.params, losses=losses, mean=mean, std=std)


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


def tune(spec: SweepSpec, settings: TuneSettings, *,
         on_trial: Callable[[TrialRecord], None] | None = None) -> TunedConstants:
    """Tune ``spec``'s one parameterization x optimizer x alignment x LR mode at its base width.

    ``spec`` is a sweep spec (model, data, steps, ...); its constants are the starting point, the ones not
    searched are kept. Needs the runner extra (JAX) and optuna.
    """
    from abcscale._version import version
    from abcscale.runner.optim import variant
    from abcscale.runner.tune import Evaluator

    for key in ("parameterizations", "optimizers", "alignments", "lr_modes"):
        if len(getattr(spec, key)) != 1:
            raise ValueError(f"{key}: tune one at a time, got {getattr(spec, key)}")
    evaluator = Evaluator(spec)
    result = search(settings.space(), lambda p, s: evaluator(constants_from(p, spec.constants), p["beta"], s),
                    settings, on_trial=on_trial)
    best = result.best
    return TunedConstants(
        parameterization=spec.parameterizations[0], optimizer=variant(spec.optimizers[0]).family,
        optimizer_variant=spec.optimizers[0], alignment=spec.alignments[0], lr_mode=spec.lr_modes[0],
        base_width=spec.base, beta=best.params["beta"], constants=constants_from(best.params, spec.constants),
        loss=best.mean, loss_std=best.std, near_best=result.near_best, settings=settings,
        training=spec.model_dump(mode="json", exclude={"widths", "log2_lr", "gammas", "seeds"}),
        data_hash=evaluator.data_hash, elapsed_s=result.elapsed_s, trials_run=len(result.history),
        history=result.history, candidates=result.candidates, abcscale_version=version())


def save_constants(tuned: TunedConstants, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(tuned.model_dump_json(indent=2) + "\n")
    return path


def load_constants(path: str | Path) -> TunedConstants:
    """Read a constants file (``abcscale tune --out``); a ValueError names the file and the problem."""
    from pydantic import ValidationError

    from abcscale.schemas.errors import validation_message

    try:
        return TunedConstants.model_validate_json(Path(path).read_text())
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from None
    except ValidationError as exc:
        raise ValueError(f"{path}: not a constants file from `abcscale tune` ({validation_message(exc)})") from None


def recommend_inputs(tuned: TunedConstants) -> dict[str, Any]:
    """What a constants file gives ``recommend`` (each a default that an explicit flag or keyword overrides)."""
    return {"parameterization": tuned.parameterization, "optimizer": tuned.optimizer, "alignment": tuned.alignment,
            "base_width": tuned.base_width, "beta": tuned.beta, "constants": tuned.constants}
