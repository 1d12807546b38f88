"""``abcscale check``: compare a planned run's hyperparameters with the transfer rule.

A config names the run (parameterization, optimizer, width, base width and beta) and what it will actually
use (``lr``, optional ``init_std``, ``multiplier``, ``epsilon``). Each setting passes when
``1/tol <= yours / recommended <= tol``; epsilon only fails on the high side, where it swamps sqrt(v).
The recommendation it compares against answers :func:`check_request`, locally or from a service.
Reading files and maps (``--map`` / ``--map-file``) is :mod:`abcscale.usecases.config_map`'s.
"""

from __future__ import annotations

import copy
import difflib
import math
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from abcscale import theory
from abcscale.schemas.api import AnalyticRecommend, FitRecommend, RecommendRequest
from abcscale.schemas.enums import LAYERS, Layer, LrMode, Optimizer, Parameterization
from abcscale.schemas.fit import FitResult
from abcscale.schemas.recommend import Recommendation
from abcscale.schemas.theory import Alignment, BaseConfig, Constants, nest_constants
from abcscale.usecases.config_map import CLOSE, ConfigError, ConfigMap, lookup, mapped_name, read_document, suggest
from abcscale.usecases.recommend import LOCAL_FIT, recommend


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LayerValues(_Strict):
    """Per-layer values where any layer may be left out (only the given ones are checked)."""

    embedding: float | None = Field(None, gt=0, allow_inf_nan=False)
    hidden: float | None = Field(None, gt=0, allow_inf_nan=False)
    readout: float | None = Field(None, gt=0, allow_inf_nan=False)

    def items(self) -> list[tuple[Layer, float]]:
        return [(l, v) for l in LAYERS if (v := getattr(self, l.value)) is not None]


#: the flat config keys the README has documented for the base-width constants -> their Constants field.
FLAT_CONSTANTS = {"gamma": "gamma", "init_scale": "init_scale", "multiplier_scale": "multiplier",
                  "base_epsilon": "epsilon", "epsilon_mode": "epsilon_mode"}


class CheckConfig(_Strict):
    """A planned training run, in the schemas' names. Unknown keys are errors.

    ``constants`` are what was tuned at the base width besides beta (:class:`~abcscale.schemas.theory.Constants`);
    the flat keys ``gamma``, ``init_scale``, ``multiplier_scale``, ``base_epsilon`` and ``epsilon_mode`` say the
    same thing.
    """

    name: str | None = None
    parameterization: Parameterization
    optimizer: Optimizer
    alignment: Alignment = Field(default_factory=Alignment.full)
    lr_mode: LrMode | None = Field(None, description="default: global when `lr` is a number, else per_layer")
    width: int = Field(gt=0)
    base_width: int | None = Field(None, gt=0)
    beta: float | None = Field(None, gt=0, allow_inf_nan=False)
    lr: float | LayerValues
    init_std: LayerValues | None = None
    multiplier: LayerValues | None = None
    epsilon: float | LayerValues | None = None
    constants: Constants = Field(default_factory=Constants)

    @model_validator(mode="before")
    @classmethod
    def _flat_constants(cls, data: Any) -> Any:
        return nest_constants(data, FLAT_CONSTANTS)

    @field_validator("alignment", mode="before")
    @classmethod
    def _alignment(cls, v: Any) -> Alignment:
        return Alignment.parse(v)

    @field_validator("lr", "epsilon")
    @classmethod
    def _positive_number(cls, v: Any) -> Any:
        if isinstance(v, float) and not (v > 0 and math.isfinite(v)):
            raise ValueError("must be a positive finite number")
        return v

    @model_validator(mode="after")
    def _mode(self) -> CheckConfig:
        if self.lr_mode is LrMode.per_layer and not isinstance(self.lr, LayerValues):
            raise ValueError("lr: a single number is a global LR; give a table (embedding, hidden, readout) "
                             "for lr_mode per_layer")
        return self

    @property
    def mode(self) -> LrMode:
        if self.lr_mode is not None:
            return self.lr_mode
        return LrMode.global_ if isinstance(self.lr, float) else LrMode.per_layer

    def base_config(self) -> BaseConfig:
        if self.base_width is None or self.beta is None:
            missing = [k for k in ("base_width", "beta") if getattr(self, k) is None]
            raise ConfigError(", ".join(missing), "required unless a fit is given (--fit or --fit-id)")
        return BaseConfig(width=self.base_width, beta=self.beta, **dict(self.constants))


# --- a map applied: the schema's keys read from a nested config (here, as it needs the schema's keys) -------


def apply_map(data: dict[str, Any], cmap: ConfigMap) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The flat config a map reads from ``data``, and a problem for each mapped path that is not there."""
    claimed = {k.split(".")[0] for k in (*cmap.paths, *cmap.values)}
    flat: dict[str, Any] = {k: v for k, v in data.items() if k in _schema_keys(()) and k not in claimed}
    problems: list[tuple[str, str]] = []
    entries: list[tuple[str, Any, str | None]] = [  # a value first: a path's keys may go inside it
        (k, copy.deepcopy(v), None) for k, v in cmap.values.items()]
    entries += [(k, None, p) for k, p in cmap.paths.items()]
    for key, value, path in entries:
        if path is not None:
            try:
                value = lookup(data, path)
            except LookupError as exc:
                problems.append((key, f"mapped to '{path}', which is not in the config: {exc}"))
                continue
        *parents, last = key.split(".")
        table = flat
        for part in parents:
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                problems.append((key, f"'{part}' is given a value and keys inside it"))
                break
        else:
            table[last] = value
    return flat, problems


# --- validation: every problem at once, each naming its key ------------------------------------------------


def load_config(path: str | Path, cmap: ConfigMap | None = None) -> CheckConfig:
    """Read a YAML, JSON or TOML config (by suffix) into a validated CheckConfig.

    Without ``cmap`` the file is in the schema's own flat names and an unknown key is an error; with one,
    the schema's keys are read where the map says (:func:`apply_map`). A ConfigError lists every problem.
    """
    data = read_document(path)
    flat, problems = (data, []) if cmap is None else apply_map(data, cmap)
    try:
        cfg = CheckConfig.model_validate(flat)
    except ValidationError as exc:
        failed = {k for k, _ in problems}  # a path that is not there is one problem, not also "missing"
        for key, reason in validation_problems(exc, flat):
            if key in failed:
                continue
            if cmap is not None:  # name the path a value came from, or say where a missing one was looked for
                reason += " (not in the map, nor a top-level key of the config)" if reason == "missing" else ""
                key = mapped_name(key, cmap)
            problems.append((key, reason))
    tables = [k for k, v in data.items() if isinstance(v, dict) and k not in _schema_keys(())]
    if problems and cmap is None and tables:
        problems.append((str(path), f"has tables the schema does not know ({', '.join(tables)}); a nested "
                                    "training config is read through a map (abcscale check --map / --map-file)"))
    if problems:
        raise ConfigError(*problems[0], problems[1:])
    return cfg


def validation_problems(exc: ValidationError, data: dict[str, Any]) -> list[tuple[str, str]]:
    """``(key, reason)`` for each error; an unknown key with a close schema key says "did you mean"."""
    problems: list[tuple[str, str]] = []
    meant: set[str] = set()  # keys a misspelling was taken for: not also reported as missing
    for e in exc.errors():
        loc = [str(x) for x in e["loc"]]
        # A union (lr: number | table) reports one error per branch: keep the branch the input is.
        branch = "LayerValues" if loc and isinstance(data.get(loc[0]), dict) else "float"
        if len(loc) > 1 and loc[1] in _BRANCHES:
            if loc[1] != branch:
                continue
            loc = [loc[0], *loc[2:]]
        key = ".".join(loc) or "config"
        if e["type"] == "extra_forbidden":
            close = difflib.get_close_matches(loc[-1], _schema_keys(tuple(loc[:-1])), n=1, cutoff=CLOSE)
            meant.update(".".join([*loc[:-1], c]) for c in close)
            problems.append((key, "unknown key" + suggest(loc[-1], close)))
        else:
            problems.append((key, "missing" if e["type"] == "missing" else str(e["msg"]).removeprefix(
                "Value error, ")))
    kept = [p for p in problems if not (p[1] == "missing" and p[0] in meant)]
    return list(dict.fromkeys(kept))  # once each, in order


_BRANCHES = ("float", "LayerValues")


def _schema_keys(parents: tuple[str, ...]) -> list[str]:
    """The keys the schema accepts inside ``parents`` (() = the top level, flat constant keys included)."""
    model: type[BaseModel] = CheckConfig
    for part in parents:
        field = model.model_fields.get(part)
        models = [t for t in _types(field.annotation)
                  if isinstance(t, type) and issubclass(t, BaseModel)] if field else []
        if not models:
            return []
        model = models[0]
    return list(model.model_fields) + (list(FLAT_CONSTANTS) if model is CheckConfig else [])


def _types(annotation: Any) -> list[Any]:
    args = typing.get_args(annotation)
    return [t for a in args for t in _types(a)] if args else [annotation]



class Check(_Strict):
    setting: str
    layer: Layer | None
    yours: float
    recommended: float
    ratio: float
    tolerance: float
    ok: bool
    verdict: str


class CheckReport(_Strict):
    ok: bool
    exit_code: int
    config: str
    source: str
    width: int
    lr_mode: LrMode
    checks: list[Check]
    failed: list[str]
    warnings: list[str]


def _check(setting: str, layer: Layer | None, yours: float, rec: float, tol: float, high_only: bool = False) -> Check:
    ratio = yours / rec if rec > 0 else math.inf
    too_high, too_low = ratio > tol, (not high_only) and ratio < 1 / tol
    verdict = "too high" if too_high else "too low" if too_low else "ok"
    return Check(setting=setting, layer=layer, yours=yours, recommended=rec, ratio=ratio, tolerance=tol,
                 ok=verdict == "ok", verdict=verdict)


def compare(cfg: CheckConfig, rec: Recommendation, *, config_name: str, lr_tolerance: float = 2.0,
            init_tolerance: float = 1.5, eps_tolerance: float = 10.0) -> CheckReport:
    checks: list[Check] = []
    lr = cfg.lr if isinstance(cfg.lr, LayerValues) else LayerValues(**{l.value: cfg.lr for l in LAYERS})
    for layer, v in lr.items():
        checks.append(_check("lr", layer, v, rec[layer].lr, lr_tolerance))
    for name, table in (("init_std", cfg.init_std), ("multiplier", cfg.multiplier)):
        for layer, v in table.items() if table else []:
            checks.append(_check(name, layer, v, getattr(rec[layer], name), init_tolerance))
    warnings = list(rec.warnings)
    if cfg.epsilon is not None:
        if not theory.optimizer_rule(cfg.optimizer).has_epsilon:
            warnings.append(f"epsilon is only checked for optimizers that have one (optimizer is "
                            f"{cfg.optimizer.value})")
        else:
            eps = cfg.epsilon if isinstance(cfg.epsilon, LayerValues) else LayerValues(
                **{l.value: cfg.epsilon for l in LAYERS})
            for layer, v in eps.items():
                checks.append(_check("epsilon", layer, v, rec[layer].epsilon or 0.0, eps_tolerance, high_only=True))
    failed = [f"{c.setting} ({c.layer.value}) {c.verdict}" if c.layer else c.setting for c in checks if not c.ok]
    ok = not failed
    return CheckReport(ok=ok, exit_code=0 if ok else 1, config=config_name, source=rec.source, width=cfg.width,
                       lr_mode=cfg.mode, checks=checks, failed=failed, warnings=warnings)


def check_request(cfg: CheckConfig, fit_id: str | None = None) -> RecommendRequest:
    """What a check compares against, as a recommend request: theory's transfer from the config's base width,
    or (with ``fit_id``) the fit's, narrowed to the config's group (its alignment only when the config gives one).

    ``abcscale check --service`` POSTs it; a local check answers it with :func:`recommendation`.
    """
    if fit_id is None:
        return AnalyticRecommend(parameterization=cfg.parameterization, optimizer=cfg.optimizer,
                                 alignment=cfg.alignment, lr_mode=cfg.mode, width=cfg.width, base=cfg.base_config())
    alignment = cfg.alignment if "alignment" in cfg.model_fields_set else None
    return FitRecommend(fit_id=fit_id, width=cfg.width, parameterization=cfg.parameterization,
                        optimizer=cfg.optimizer, lr_mode=cfg.mode, alignment=alignment, constants=cfg.constants)


def recommendation(cfg: CheckConfig, fit: FitResult | None = None) -> Recommendation:
    """The local answer to :func:`check_request`: the same recommendation a service gives for the same fit."""
    return recommend(check_request(cfg, None if fit is None else LOCAL_FIT), fit)


__all__ = ["CheckConfig", "CheckReport", "Check", "LayerValues", "load_config", "apply_map", "validation_problems",
           "compare", "check_request", "recommendation", "FLAT_CONSTANTS"]
