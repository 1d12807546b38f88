"""The tuned-constants file (``abcscale tune --out``): what was tuned at the base width, and how.

One JSON document: the tuned :class:`~abcscale.schemas.theory.Constants` and base LR ``beta`` at ``base_width``
for one parameterization x optimizer (x alignment, LR mode), with its provenance (the training setup, the
search's budget, seeds and every trial) and the uncertainty the re-evaluation can estimate. ``abcscale recommend
--constants FILE`` and ``abcscale.recommend(constants=FILE)`` read it back, so "tune once at the base width,
recommend at any width" is one flow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from abcscale.schemas.enums import LrMode, Optimizer
from abcscale.schemas.fit import ConstantFit
from abcscale.schemas.theory import (
    MAX_WIDTH,
    SCALE_MAX,
    SCALE_MIN,
    Alignment,
    Constants,
    FloatNotBool,
    Frozen,
    IntNotBool,
)

#: the constants the search may tune, by group (``--tune``); gamma_hidden is not one: beta absorbs it
TUNABLE = {
    "gamma": ("gamma_embedding", "gamma_readout"),
    "init_scale": ("init_scale_embedding", "init_scale_hidden", "init_scale_readout"),
    "multiplier": ("multiplier_embedding", "multiplier_readout"),
    "epsilon": ("epsilon",),
}


Group = Literal["gamma", "init_scale", "multiplier", "epsilon"]

#: the runner's optimizer variants -> the family whose exponents the theory uses (``runner.spec.OPTIMIZER_FAMILY``
#: is this table: the runner trains them, a constants file names one, REST reads the file)
VARIANT_FAMILY: dict[str, Optimizer] = {
    "sgd": Optimizer.sgd,
    "adam": Optimizer.adam,
    "adamw": Optimizer.adamw,  # Adam plus coupled per-layer weight decay on the matrices (runner/optim.py)
    "adam_atan2": Optimizer.adam,  # scale-invariant Adam: same update scale, no epsilon
    "adam_scaled": Optimizer.adafactor,  # Adam with parameter scaling: Adafactor's exponents (docs/theory.md s.2)
    "adafactor": Optimizer.adafactor,
    "lion": Optimizer.lion,  # optax's sign optimizer, plus adamw's coupled decay on the matrices
    "muon": Optimizer.muon,  # Muon on hidden matrices, Adam on the rest (runner/optim.py)
}

#: the constants file's format version this abcscale writes and reads
FILE_VERSION = 1


def check_file_identity(version: int | None, optimizer: Optimizer, variant: str | None) -> None:
    """A ValueError when a constants file is from a newer abcscale, or names a variant of another optimizer."""
    if version is not None and version > FILE_VERSION:
        raise ValueError(f"version {version}: written by a newer abcscale (this one reads {FILE_VERSION}); upgrade "
                         "abcscale")
    if variant is not None and VARIANT_FAMILY.get(variant) is not optimizer:
        raise ValueError(f"optimizer_variant {variant!r} is not a variant of {optimizer.value} (the runner's "
                         f"variants: {', '.join(VARIANT_FAMILY)})")


#: the runner's variants whose epsilon is not their family's rule (runner.optim.VARIANTS says the same; a test
#: holds them together): adam_atan2 takes none, adam_scaled one flat epsilon under Adafactor's rule (which has none)
VARIANT_EPSILON: dict[str, Literal["none", "flat"]] = {"adam_atan2": "none", "adam_scaled": "flat"}


#: the most trials a search runs, and seeds a trial or a re-evaluation trains
MAX_TRIALS, MAX_SEEDS = 10**6, 1000


def _gamma_only() -> list[Group]:
    return ["gamma"]


class TuneSettings(Frozen):
    """How the search runs: its space, budget and seeds (training setup aside)."""

    tune: list[Group] = Field(default_factory=_gamma_only, description="constant groups searched jointly with beta")
    beta_range: tuple[float, float] = Field((2.0 ** -14, 2.0 ** -2), description="log-uniform range of beta")
    gamma_range: tuple[float, float] = Field((1e-2, 1e2), description="range of each LR constant (the paper's)")
    scale_range: tuple[float, float] = Field((1e-1, 1e1), description="range of init-scale and multiplier "
                                             "constants")
    epsilon_range: tuple[float, float] = Field((1e-12, 1e-4), description="range of the epsilon base")
    # never true/false (trials=True ran 1 trial), and bounded above: trials=10**400 or seeds=2**63 was a search
    # that never ended, said nothing (a review, session 80); a million trials is days of the smallest model's
    trials: IntNotBool | None = Field(30, gt=0, le=MAX_TRIALS, description="most search trials (None: until "
                                      "`seconds`)")
    seconds: FloatNotBool | None = Field(None, gt=0, description="most seconds of search (None: until `trials`)")
    seeds: IntNotBool = Field(1, gt=0, le=MAX_SEEDS, description="training seeds per search trial (several: median "
                              "pruning between)")
    reeval_seeds: IntNotBool = Field(3, gt=0, le=MAX_SEEDS, description="fresh seeds each top candidate is "
                                     "re-evaluated with")
    top: IntNotBool = Field(3, gt=0, le=MAX_TRIALS, description="candidates re-evaluated; the lowest mean loss wins")
    sampler_seed: IntNotBool = Field(0, ge=0, le=2**32 - 1, description="the TPE sampler's seed")

    @field_validator("tune")
    @classmethod
    def _once_each(cls, v: list[Group]) -> list[Group]:
        # `--tune gamma,gamma` is `--tune gamma`'s search: named alike, so one resumes the other (a review: it
        # started fresh and ran every trial again); the order given stays, as the search suggests in it
        return list(dict.fromkeys(v))

    @field_validator("beta_range", "gamma_range", "scale_range", "epsilon_range")
    @classmethod
    def _range(cls, v: tuple[float, float]) -> tuple[float, float]:
        low, high = v
        if not (math.isfinite(low) and math.isfinite(high) and 0 < low < high):
            raise ValueError(f"expected finite 0 < LOW < HIGH, got {low:g}:{high:g}")
        if low < SCALE_MIN or high > SCALE_MAX:  # a constant outside them is refused when the trial builds it
            raise ValueError(f"LOW and HIGH within {SCALE_MIN:g}..{SCALE_MAX:g}, got {low:g}:{high:g}")
        return v

    @model_validator(mode="after")
    def _budget(self) -> TuneSettings:
        if self.trials is None and self.seconds is None:  # the search would never end
            raise ValueError("trials: give trials or seconds (a budget)")
        return self

    def space(self) -> dict[str, tuple[float, float]]:
        """Parameter name -> (low, high), every one searched on a log scale."""
        ranges = {"gamma": self.gamma_range, "init_scale": self.scale_range, "multiplier": self.scale_range,
                  "epsilon": self.epsilon_range}
        out = {"beta": self.beta_range}
        for group in dict.fromkeys(self.tune):
            out |= dict.fromkeys(TUNABLE[group], ranges[group])
        return out


#: the range settings and the constant groups they bound
RANGE_GROUPS: dict[str, tuple[Group, ...]] = {"gamma_range": ("gamma",), "scale_range": ("init_scale", "multiplier"),
                                              "epsilon_range": ("epsilon",)}


def unsearched_range(settings: TuneSettings, given: Mapping[str, object], names: Mapping[str, str],
                     search: str, searched: str) -> str | None:
    """Why a range was given for constants the search leaves alone (a typo: it bounds nothing), naming the range
    as the caller does (``names``: field -> flag or argument) and the search as given (``search`` its flag or
    argument, ``searched`` its value); None where every range given (not None in ``given``) bounds a searched
    group."""
    for field, groups in RANGE_GROUPS.items():
        if given.get(field) is not None and not set(groups) & set(settings.tune):
            name, what = names.get(field, field), " or ".join(groups)
            return f"{name}: no {what} is searched ({search} {searched}); add {groups[0]} to {search} or drop {name}"
    return None


class TrialRecord(Frozen):
    """One search trial: its parameters and mean loss over its seeds (None when pruned or failed)."""

    number: int
    params: dict[str, float]
    loss: float | None
    state: str  # COMPLETE | PRUNED | FAIL
    seeds_run: int


class Candidate(Frozen):
    """A top trial re-evaluated with fresh seeds."""

    trial: int
    params: dict[str, float]
    losses: list[float]
    mean: float
    std: float


class TransferCheck(Frozen):
    """``--verify-widths``: one larger width's LR sweep, tuned constants against the search's starting ones.

    Both sweep the same LRs (``log2_lr``, around the tuned beta transferred to this width) and seeds; each's best
    is the LR with the lowest mean eval loss over the seeds. ``difference`` is default minus tuned (positive:
    tuned is better), the mean of the per-seed differences at the two best LRs (same seed: same data order and
    init draws, so the pairing removes shared noise), with a Student-t ``interval``. Picking each best from the
    grid favours both alike; a best at the grid's edge (``*_at_edge``) means its optimum may lie outside.
    """

    width: int = Field(gt=0)
    ratio: float = Field(description="width / base width")
    log2_lr: list[float] = Field(description="the betas swept, log2")
    seeds: int = Field(gt=1)
    tuned_loss: float = Field(description="best mean eval loss with the tuned constants")
    tuned_beta: float
    tuned_at_edge: bool
    default_loss: float = Field(description="best mean eval loss with the starting (default) constants")
    default_beta: float
    default_at_edge: bool
    difference: float = Field(description="default_loss - tuned_loss, per seed and averaged (> 0: tuned wins)")
    interval: tuple[float, float] = Field(description="the difference's confidence interval (Student t)")
    confidence: float = 0.95
    tuned_wins: bool | None = Field(description="True: the interval is above 0 and the defaults' best is inside "
                                    "the grid; False: below 0 and the tuned best inside; None: otherwise (unclear)")
    elapsed_s: float


class ConstantsCheck(Frozen):
    """``--verify-constants``: the fitter's constants-consistency test on a grid around the tuned constants.

    At the base width and each checked width, each tuned LR constant is swept over ``factors`` x its tuned value
    (the others at theirs) crossed with ``log2_lr`` around the transferred beta, ``seeds`` seeds each; one table
    per constant goes through :func:`abcscale.fitting.fit_table` with that constant as its ``constant_cols``.
    ``fits`` are the fitter's :class:`~abcscale.schemas.fit.ConstantFit` (the optimum at the base width and the
    drift exponent of log2 optimum against log2 width, theory 0); ``width_independent`` says whether each drift's
    interval holds 0 (None: no drift fitted, or an interval too wide to tell, over
    ``abcscale.usecases.tune_verify.MAX_DRIFT_INTERVAL``). The transfer check's own rows cannot be used: they
    hold two values of each constant per width (tuned and default), too few to locate an optimum.
    """

    widths: list[int]
    factors: list[float]
    seeds: int
    fits: list[ConstantFit]
    width_independent: dict[str, bool | None]
    notes: list[str] = Field(default_factory=list)
    elapsed_s: float


class TunedConstants(Frozen):
    """The result of ``abcscale tune``: the constants file."""

    kind: Literal["abcscale.tuned-constants"] = "abcscale.tuned-constants"
    version: int = 1
    parameterization: str
    optimizer: Optimizer = Field(description="the optimizer family (recommend's -o)")
    optimizer_variant: str = Field(description="the runner's variant trained (adam, adam_atan2, ...)")
    alignment: str
    lr_mode: LrMode
    base_width: int = Field(gt=0, le=MAX_WIDTH)
    beta: float = Field(ge=SCALE_MIN, le=SCALE_MAX)
    constants: Constants
    loss: float = Field(description="mean eval loss of the winner over the re-evaluation seeds")
    loss_std: float = Field(description="its standard deviation over those seeds")
    near_best: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="per tuned parameter: the range spanned by the re-evaluated candidates "
        "whose mean loss is within one standard error of the winner's (a coarse uncertainty)")
    settings: TuneSettings
    training: dict[str, Any] = Field(description="the runner's setup: model, data, steps, batch, ... (a sweep spec)")
    data_hash: str | None = None
    model_source: str | None = Field(None, description="a user model's code as tuned (the hash of its file and the "
                                     "user's modules it imports); None for a built-in model or a file from before "
                                     "session 83")
    elapsed_s: float
    trials_run: int = Field(description="search trials that ran to an end (complete or pruned); `history` also "
                            "lists failed ones (a trial Ctrl-C or a killed process stopped, run again on resuming)")
    history: list[TrialRecord]
    candidates: list[Candidate]
    transfer: list[TransferCheck] = Field(default_factory=list, description="--verify-widths results")
    constants_check: ConstantsCheck | None = Field(None, description="--verify-constants result")
    abcscale_version: str

    @model_validator(mode="after")
    def _identity(self) -> TunedConstants:
        check_file_identity(self.version, self.optimizer, self.optimizer_variant)
        return self

    @field_validator("alignment")
    @classmethod
    def _known(cls, v: str) -> str:
        Alignment.parse(v)  # or a ValueError; the parameterization may be a sweep's custom table, any name
        return v
