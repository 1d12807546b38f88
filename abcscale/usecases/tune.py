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
from abcscale.schemas.tune import Candidate, TransferCheck, TrialRecord, TunedConstants, TuneSettings

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


# --- transfer check (--verify-widths) -------------------------------------------------------------


def parse_widths(text: str, base: int) -> list[int]:
    """``"2x,4x"`` (multiples of the base width) and/or ``"64,128"`` -> widths above ``base``, in order given."""
    widths = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        try:
            width = base * float(item[:-1]) if item.lower().endswith("x") else float(item)
        except ValueError:
            raise ValueError(f"verify_widths: expected widths like 2x,4x or 64,128, got {item!r}") from None
        if width != int(width) or width <= base:
            raise ValueError(f"verify_widths: {item} is not a whole width above the base width {base}")
        widths.append(int(width))
    if not widths:
        raise ValueError("verify_widths: no width given")
    return widths


def transfer_grid(tuned: TunedConstants, width: int, lrs: int, step: float) -> list[float]:
    """``lrs`` log2 betas ``step`` apart around the tuned beta transferred to ``width``: the same beta in
    per-layer mode (the LR factors carry the width), moved by theory's global c in global mode (beta is the
    shared LR there)."""
    from abcscale.runner.spec import SweepSpec
    from abcscale.schemas.enums import LrMode
    from abcscale.theory.solver import solve_exponents

    center = math.log2(tuned.beta)
    if tuned.lr_mode is LrMode.global_:
        table = SweepSpec.model_validate(tuned.training).parameterization(tuned.parameterization)
        c = solve_exponents(table, tuned.optimizer, tuned.alignment).global_c
        center -= c * math.log2(width / tuned.base_width)
    return [round(center + step * (i - (lrs - 1) / 2), 10) for i in range(lrs)]


def compare_losses(tuned: Any, default: Any, log2_lr: list[float], width: int, base: int, elapsed_s: float = 0.0,
                   confidence: float = 0.95) -> TransferCheck:
    """Each one's best LR (lowest mean over seeds) and the paired per-seed difference there, with a Student-t
    interval; ``tuned`` and ``default`` are eval losses [LR, seed] over the same grid and seeds."""
    import numpy as np
    from scipy import stats

    t, d = np.asarray(tuned, dtype=float), np.asarray(default, dtype=float)
    it, id_ = int(np.argmin(t.mean(axis=1))), int(np.argmin(d.mean(axis=1)))
    diff = d[id_] - t[it]
    n = len(diff)
    if n < 2:
        raise ValueError("verify_seeds: the interval needs at least 2 seeds")
    mean, half = float(diff.mean()), float(stats.t.ppf((1 + confidence) / 2, n - 1) * diff.std(ddof=1) / n ** 0.5)
    lo, hi = mean - half, mean + half
    return TransferCheck(
        width=width, ratio=width / base, log2_lr=list(log2_lr), seeds=n, tuned_loss=float(t[it].mean()),
        tuned_beta=2.0 ** log2_lr[it], tuned_at_edge=it in (0, len(log2_lr) - 1),
        default_loss=float(d[id_].mean()), default_beta=2.0 ** log2_lr[id_],
        default_at_edge=id_ in (0, len(log2_lr) - 1), difference=mean, interval=(lo, hi), confidence=confidence,
        tuned_wins=True if lo > 0 else False if hi < 0 else None, elapsed_s=elapsed_s)


def verify(tuned: TunedConstants, widths: list[int], *, lrs: int = 5, step: float = 1.0, seeds: int = 3,
           on_width: Callable[[TransferCheck], None] | None = None) -> TunedConstants:
    """The transfer check: at each width, sweep ``lrs`` betas x ``seeds`` seeds with the tuned constants and with
    the ones the search started from (the spec's, by default abcscale's defaults); the file with ``transfer``
    holding one :class:`TransferCheck` per width (replacing earlier checks at those widths)."""
    from abcscale.runner.spec import SweepSpec
    from abcscale.runner.tune import lr_sweep

    if lrs < 2 or seeds < 2:
        raise ValueError(f"{'verify_lrs' if lrs < 2 else 'verify_seeds'}: at least 2")
    spec = SweepSpec.model_validate({**tuned.training, "widths": [tuned.base_width],
                                     "base_width": tuned.base_width})
    checks = {c.width: c for c in tuned.transfer}
    for width in widths:
        t0 = time.perf_counter()
        grid = transfer_grid(tuned, width, lrs, step)
        ours = lr_sweep(spec, tuned.constants, width, grid, seeds)
        theirs = lr_sweep(spec, spec.constants, width, grid, seeds)
        check = compare_losses(ours, theirs, grid, width, tuned.base_width, time.perf_counter() - t0)
        checks[width] = check
        if on_width is not None:
            on_width(check)
    return tuned.model_copy(update={"transfer": [checks[w] for w in sorted(checks)]})


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
