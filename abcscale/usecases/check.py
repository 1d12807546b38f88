"""``abcscale check``: compare a planned run's hyperparameters with the transfer rule, on invariants.

A config names the run (parameterization, optimizer, width, base width and beta) and what it will actually
use (``lr``, optional ``init_std``, ``multiplier``, ``epsilon``). Its numbers may be written in any form of the
same answer (docs/theory.md section 10): the run's multipliers are the ``multiplier`` table where given, else
those of ``form`` (``abc``: the recommendation's, the default; ``multiplier_free``: 1; ``mup``: microsoft/mup's
1, 1, base/width). Each layer is compared on what the symmetry leaves unchanged
(:func:`abcscale.theory.groups.invariants`): the LR as the update (Adam m*lr, SGD m^2*lr), the init std as the
forward scale m*sigma, epsilon as epsilon/m^k'. The report shows yours next to the recommendation written with
your multipliers, so ``yours / recommended`` reads in your own units. A setting passes when
``1/tol <= ratio <= tol``; epsilon only fails on the high side, where it swamps sqrt(v).

A ``mup:`` table says the run is a microsoft/mup run (base width, what MuAdam/MuSGD is given, output_mult,
init stds at the base width, epsilon): its values at ``width`` are :func:`~abcscale.theory.groups.mup_setting`'s
and the reference is theory's transfer from :func:`~abcscale.theory.groups.from_mup` (with ``beta``: of the
setup that gives every group the LR beta, microsoft/mup's rule). With a fit, the fit's LR at ``width`` is that one
lr, given to every group at the fit's base width (its sweep's set_base_shapes base): each role's LR is compared with
what microsoft/mup applies then (:func:`_mup_fit_reference`), whatever the table's own base width and ratios.
With a fit, an LR below the tolerance but at or above the fit's safe-side LR passes, its verdict ``SAFE_SIDE``.
microsoft/mup's optimizer names (MuAdam, MuAdamW, MuSGD, and the MuAdam(impl=Lion) abcscale prints) are read as
the optimizer they wrap.
The recommendation it compares against answers :func:`check_request`, locally or from a service.
Reading files and maps (``--map`` / ``--map-file``) is :mod:`abcscale.usecases.config_map`'s.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
import typing
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from abcscale import theory
from abcscale.schemas.api import AnalyticRecommend, FitRecommend, RecommendRequest
from abcscale.schemas.enums import (
    LAYERS,
    EpsilonMode,
    Layer,
    LrMode,
    Optimizer,
    Parameterization,
    WeightDecayMode,
    mup_wrapper,
)
from abcscale.schemas.errors import error_text
from abcscale.schemas.fit import FitResult
from abcscale.schemas.groups import ROLES, SPEC_ROLES, Form, MupSetup, Role, RoleSetting
from abcscale.schemas.recommend import Recommendation
from abcscale.schemas.theory import ABTable, Alignment, BaseConfig, Constants, LayerExponents, nest_constants
from abcscale.theory.epsilon import epsilon_exponents
from abcscale.theory.groups import fixed_setting, from_mup, invariants, mup_setting, vector_setting
from abcscale.usecases.config_map import CLOSE, ConfigError, ConfigMap, lookup, mapped_name, read_document, suggest
from abcscale.usecases.recommend import LOCAL_FIT, recommend


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Numbers(_Strict):
    """A config block of numbers: true/false in it is an error naming the key (pydantic's lax mode reads true as
    1, so `width: true` was a width of 1 and a confident verdict on a misread config)."""

    @model_validator(mode="before")
    @classmethod
    def _no_bools(cls, data: Any) -> Any:
        # only the block's own keys (an unknown one, `mup.enabled: true`, is said unknown by extra="forbid"), and
        # each in its kind's words (`parameterization: true` is no name, not "no number")
        if isinstance(data, dict) and (keys := [k for k, v in data.items()
                                                if isinstance(v, bool) and k in cls.model_fields]):
            numeric = [k for k in keys if re.search(r"\b(float|int)\b", str(cls.model_fields[k].annotation))]
            problems = [f"{', '.join(map(str, numeric))}: a number, not true/false"] if numeric else []
            if named := [k for k in keys if k not in numeric]:
                problems.append(f"{', '.join(map(str, named))}: a name or a table, not true/false (YAML reads "
                                "true, yes and on as true/false: quote the value)")
            raise ValueError("\n".join(problems))
        return data


class LayerValues(_Numbers):
    """Per-layer values where any layer may be left out (only the given ones are checked)."""

    embedding: float | None = Field(None, gt=0, allow_inf_nan=False)
    hidden: float | None = Field(None, gt=0, allow_inf_nan=False)
    readout: float | None = Field(None, gt=0, allow_inf_nan=False)

    def items(self) -> list[tuple[Role, float]]:
        return [(r, v) for r in SPEC_ROLES if (v := getattr(self, r.value, None)) is not None]


class RoleValues(LayerValues):
    """Per-layer values that may also give ``vector`` (biases, norm gains: ``theory.groups.vector_setting``) and
    ``fixed`` (the readout's bias, scalars: ``theory.groups.fixed_setting``)."""

    vector: float | None = Field(None, gt=0, allow_inf_nan=False)
    fixed: float | None = Field(None, gt=0, allow_inf_nan=False)


class DecayValues(_Numbers):
    """A run's weight decay by layer (0 allowed: a layer left undecayed), ``vector`` for biases and norm gains,
    ``fixed`` for the readout's bias and scalars."""

    embedding: float | None = Field(None, ge=0, allow_inf_nan=False)
    hidden: float | None = Field(None, ge=0, allow_inf_nan=False)
    readout: float | None = Field(None, ge=0, allow_inf_nan=False)
    vector: float | None = Field(None, ge=0, allow_inf_nan=False)
    fixed: float | None = Field(None, ge=0, allow_inf_nan=False)

    def items(self) -> list[tuple[Role, float]]:
        return [(r, v) for r in SPEC_ROLES if (v := getattr(self, r.value, None)) is not None]


class MupTable(_Numbers):
    """A microsoft/mup run (``mup:`` in a check config): what its user writes down; the width is the config's."""

    base_width: int = Field(gt=0, description="set_base_shapes' base width")
    lr: float | RoleValues = Field(description="what MuAdam/MuSGD is given: one number or per role")
    output_mult: float = Field(1.0, gt=0, allow_inf_nan=False, description="MuReadout's output_mult")
    init_std: float | LayerValues | None = Field(None, description="init stds at the base width")
    epsilon: float | DecayValues | None = Field(None, description="Adam epsilon, unscaled: one number, or each "
                                               "param group's per role (a role left out is not checked)")

    @field_validator("epsilon")
    @classmethod
    def _non_negative(cls, v: Any) -> Any:
        if isinstance(v, float) and not (v >= 0 and math.isfinite(v)):  # a table's values DecayValues checks
            raise ValueError("must be a non-negative finite number")
        return v

    @field_validator("lr", "init_std")
    @classmethod
    def _positive(cls, v: Any) -> Any:
        if isinstance(v, float) and not (v > 0 and math.isfinite(v)):
            raise ValueError("must be a positive finite number")
        if isinstance(v, RoleValues) and (missing := [r.value for r in ROLES if getattr(v, r.value) is None]):
            raise ValueError(f"give one number or every role (embedding, hidden, readout, vector); missing "
                             f"{', '.join(missing)}")
        return v

    def setup(self, optimizer: Optimizer, width: int) -> MupSetup:
        return MupSetup.model_validate({  # MupSetup reads one number as every role
            "optimizer": optimizer, "base_width": self.base_width, "width": width, "lr": _per_role(self.lr),
            "output_mult": self.output_mult, "init_std": _per_role(self.init_std) or {},
            "epsilon": _per_role(self.epsilon)})


#: microsoft/mup's optimizer classes -> the optimizer each wraps (mup/optim.py), as Optimizer reads them (MuAdam,
#: MuAdam(impl=Lion): schemas.enums.mup_wrapper's names)
MU_OPTIMIZERS = {name: Optimizer(opt) for name, opt in Optimizer._aliases().items()}


def _mu_base(name: str) -> str | None:
    """The optimizer a microsoft/mup class name wraps (``MuAdam``, ``mu_adamw``, ``mup.optim.MuSGD``), else None."""
    key = name.strip().lower()
    if key.startswith("mup."):  # mup.MuAdam, mup.optim.MuAdam
        key = key.rsplit(".", 1)[-1]
    found = MU_OPTIMIZERS.get(key.replace("_", "").replace("-", ""))
    return None if found is None else found.value


def _per_role(v: float | LayerValues | DecayValues | None) -> float | dict[Role, float] | None:
    return v if v is None or isinstance(v, float) else dict(v.items())


#: the flat config keys the README has documented for the base-width constants -> their Constants field.
FLAT_CONSTANTS = {"gamma": "gamma", "init_scale": "init_scale", "multiplier_scale": "multiplier",
                  "base_epsilon": "epsilon", "epsilon_mode": "epsilon_mode"}


class CheckConfig(_Numbers):
    """A planned training run, in the schemas' names. Unknown keys are errors.

    ``constants`` are what was tuned at the base width besides beta (:class:`~abcscale.schemas.theory.Constants`);
    the flat keys ``gamma``, ``init_scale``, ``multiplier_scale``, ``base_epsilon`` and ``epsilon_mode`` say the
    same thing. ``form`` says which multipliers the run's numbers go with where ``multiplier`` does not say
    (module docstring). ``mup`` (a microsoft/mup run) replaces ``lr``, ``init_std``, ``multiplier``, ``epsilon``
    and the constants.
    """

    name: str | None = None
    parameterization: Parameterization
    optimizer: Optimizer
    alignment: Alignment = Field(default_factory=Alignment.full)
    lr_mode: LrMode | None = Field(None, description="default: global when `lr` is a number, else per_layer")
    width: int = Field(gt=0)
    base_width: int | None = Field(None, gt=0)
    beta: float | None = Field(None, gt=0, allow_inf_nan=False)
    form: Form = Form.abc
    mup: MupTable | None = None
    # after `mup`: its validator reads whether a mup table was given
    lr: float | RoleValues | None = Field(None, validate_default=True)
    init_std: LayerValues | None = None
    multiplier: LayerValues | None = None
    epsilon: float | RoleValues | None = None
    weight_decay: float | DecayValues | None = Field(
        None, description="the run's weight decay (AdamW, Lion, Muon; SGD's L2 term): one number for the three layer "
        "types, or by layer; checked against the transfer of constants.weight_decay")
    constants: Constants = Field(default_factory=Constants)
    constants_file: Path | None = Field(None, description="a constants file from `abcscale tune` (relative to the "
                                        "config): its constants, base width and beta are the reference's")
    # where constants_file came from (`constants_file`, or `abcscale check --constants`), said in its errors, and the
    # beta it was tuned with (a config's own beta replaces it: said): set by with_constants_file
    _constants_key: str = PrivateAttr("constants_file")
    _tuned_beta: float | None = PrivateAttr(None)
    _doc_beta: float | None = PrivateAttr(None)  # a constants document's (mup import --json's, width + beta)
    _from_file: frozenset[str] = PrivateAttr(frozenset())  # beta, base_width: filled from a constants file
    # microsoft/mup's optimizer class as the config named it (`optimizer: MuAdam`), read as its base optimizer
    _mu_optimizer: str | None = PrivateAttr(None)

    @model_validator(mode="wrap")
    @classmethod
    def _mu_said(cls, data: Any, handler: Any) -> CheckConfig:
        cfg = handler(data)
        if isinstance(data, dict) and isinstance(said := data.get("optimizer"), str) and _mu_base(said) is not None:
            cfg._mu_optimizer = said.strip()
        return cfg

    @field_validator("optimizer", mode="before")
    @classmethod
    def _mu_optimizer_name(cls, v: Any) -> Any:
        """microsoft/mup's optimizer classes (MuAdam, MuAdamW, MuSGD; any case, ``mup.optim.MuAdam`` as a Hydra
        ``_target_`` writes it) are the optimizer they wrap: exit 2 "Input should be 'sgd', 'adam', ..." was all a
        MuAdam config got (a user review)."""
        return (_mu_base(v) or v) if isinstance(v, str) else v

    @model_validator(mode="before")
    @classmethod
    def _flat_constants(cls, data: Any) -> Any:
        data = nest_constants(data, FLAT_CONSTANTS)
        if isinstance(data, dict) and isinstance(data.get("mup"), dict) and "parameterization" not in data:
            data = {**data, "parameterization": "mup"}  # a microsoft/mup run is muP
        return data

    @field_validator("alignment", mode="before")
    @classmethod
    def _alignment(cls, v: Any) -> Alignment:
        return Alignment.parse(v)

    @field_validator("form", mode="before")
    @classmethod
    def _form(cls, v: Any) -> Form:
        return Form.parse(v) if isinstance(v, str) else v

    @field_validator("init_std", "multiplier", mode="before")
    @classmethod
    def _one_for_every_layer(cls, v: Any) -> Any:
        """One number is every layer's (a Hugging Face config's ``initializer_range: 0.02``), checked per layer."""
        if isinstance(v, int | float | str) and not isinstance(v, bool):
            return {"embedding": v, "hidden": v, "readout": v}
        return v

    @field_validator("lr")
    @classmethod
    def _lr(cls, v: Any, info: ValidationInfo) -> Any:
        if "mup" not in info.data:  # the mup table itself failed: its error says enough
            return v
        if v is None and info.data["mup"] is None:
            raise PydanticCustomError("missing", "Field required")
        if isinstance(v, float) and not (v > 0 and math.isfinite(v)):
            raise ValueError("must be a positive finite number")
        return v

    @field_validator("epsilon")
    @classmethod
    def _positive_number(cls, v: Any) -> Any:
        if isinstance(v, float) and not (v > 0 and math.isfinite(v)):
            raise ValueError("must be a positive finite number")
        return v

    @field_validator("weight_decay")
    @classmethod
    def _decay(cls, v: Any) -> Any:
        if isinstance(v, float) and not (v >= 0 and math.isfinite(v)):
            raise ValueError("must be a finite number >= 0")
        return v

    @model_validator(mode="after")
    def _mode(self) -> CheckConfig:
        problems = []  # "key: reason" lines, one per problem (validation_problems splits them)
        if self.lr_mode is LrMode.per_layer and isinstance(self.lr, float):
            problems.append("lr: a single number is a global LR; give a table (embedding, hidden, readout) "
                            "for lr_mode per_layer")
        if self.mup is not None:
            given = self.model_fields_set
            problems += [f"{k}: with a mup table, give it {where}" for k, where in (
                ("lr", "as mup.lr (what MuAdam/MuSGD gets)"), ("init_std", "as mup.init_std (at the base width)"),
                ("multiplier", "as mup.output_mult"), ("epsilon", "as mup.epsilon")) if k in given]
            if self.parameterization is not Parameterization.mup:
                problems.append(f"parameterization: a mup table is a microsoft/mup run, which is muP; got "
                                f"{self.parameterization.value}")
            if "form" in given and self.form is not Form.mup:
                problems.append(f"form: a mup table is in the mup form; got {self.form.value}")
            if "constants" in given:
                problems.append("constants: a mup table brings its own (theory.groups.from_mup); give beta to "
                                "check its LRs against the LR you tuned")
            if self.base_width is not None and self.base_width != self.mup.base_width:
                problems.append(f"base_width: {self.base_width} differs from mup.base_width "
                                f"{self.mup.base_width}; give one")
        elif self.form is Form.mup and self.base_width is None:
            problems.append("base_width: missing (form mup: microsoft/mup's readout multiplier is base/width)")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def mode(self) -> LrMode:
        if self.lr_mode is not None:
            return self.lr_mode
        return LrMode.global_ if isinstance(self.lr, float) else LrMode.per_layer

    def mup_setup(self) -> MupSetup | None:
        """The microsoft/mup setup at this run's width, when the config has a mup table."""
        return None if self.mup is None else self.mup.setup(self.optimizer, self.width)

    @property
    def per_group_eps(self) -> bool:
        """A mup table with an eps per param group (as `abcscale mup export` writes them)."""
        return self.mup is not None and isinstance(self.mup.epsilon, DecayValues)

    def base_config(self) -> BaseConfig:
        """What the recommendation transfers: beta and the constants, or (a mup table) from_mup's constants."""
        setup = self.mup_setup()
        if setup is not None:  # with beta: the setup that gives every group beta, microsoft/mup's rule
            return from_mup(setup if self.beta is None else setup.model_copy(update={
                "lr": dict.fromkeys(ROLES, self.beta)}))
        if self.base_width is None or self.beta is None:
            missing = [k for k in ("base_width", "beta") if getattr(self, k) is None]
            raise ConfigError(", ".join(missing), BASE_NEEDED)
        return BaseConfig(width=self.base_width, beta=self.beta, **self.constants.given())

    @property
    def epsilon_mode(self) -> EpsilonMode:
        return EpsilonMode.constant if self.mup is not None else self.constants.epsilon_mode


# --- a map applied: the schema's keys read from a nested config (here, as it needs the schema's keys) -------


def apply_map(data: dict[str, Any], cmap: ConfigMap) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The flat config a map reads from ``data``, and a problem for each mapped path that is not there."""
    claimed = {k.split(".")[0] for k in (*cmap.paths, *cmap.values)}
    problems: list[tuple[str, str]] = []
    flat = _references_read(data, {k: v for k, v in data.items() if k in _schema_keys(()) and k not in claimed},
                            problems)
    entries: list[tuple[str, Any, str | None]] = [  # a value first: a path's keys may go inside it
        (k, copy.deepcopy(v), None) for k, v in cmap.values.items()]
    entries += [(k, None, p) for k, p in cmap.paths.items()]
    for key, value, path in entries:
        if path is not None:
            try:
                value = _interpolated(data, lookup(data, path))
                if isinstance(value, dict):  # a table mapped whole: the references inside it read too, as
                    # unmapped tables' are (`lr: {hidden: ${hidden_lr}}` was "not a valid number", a review)
                    value = _references_read(data, value, problems, f"{key}.")
            except LookupError as exc:
                problems.append((key, f"mapped to '{path}', which is not in the config: {exc}"))
                continue
            except ValueError as exc:
                problems.append((key, f"mapped to '{path}', {exc}"))
                continue
        *parents, last = key.split(".")
        table = flat
        for part in parents:
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                problems.append((key, f"'{part}' is given a value and keys inside it"))
                break
        else:
            if isinstance(table.get(last), dict) and not isinstance(value, dict):
                # keys inside it came first (lr.hidden, then lr): the same conflict as the other order
                problems.append((key, f"'{key}' is given a value and keys inside it"))
                continue
            table[last] = value
    return flat, problems


def _references_read(data: dict[str, Any], table: dict[str, Any], problems: list[tuple[str, str]],
                     prefix: str = "") -> dict[str, Any]:
    """``table``'s values (and its sub-tables', as ``lr.hidden``) with each Hydra reference read
    (:func:`_interpolated`); one that cannot be is a problem naming its key, and its value is left out."""
    out: dict[str, Any] = {}
    for k, v in table.items():
        if isinstance(v, dict):
            out[k] = _references_read(data, v, problems, f"{prefix}{k}.")
            continue
        try:
            out[k] = _interpolated(data, v)
        except ValueError as exc:
            problems.append((f"{prefix}{k}", str(exc).replace("whose value", "its value", 1)))
    return out


_INTERPOLATION = re.compile(r"\$\{([^}]*)\}")


def _interpolated(data: dict[str, Any], value: Any) -> Any:
    """A Hydra / OmegaConf reference to another key (``${model.d_model}``, the whole value) read where it points,
    as Hydra reads it; a resolver (``${oc.env:LR}``), a relative one or one inside other text is a ValueError
    showing it: its value is known only when Hydra runs (it was 'unable to parse string as an integer')."""
    for _ in range(16):  # a chain of references; a loop ends here
        if not isinstance(value, str) or not _INTERPOLATION.search(value):
            return value
        whole = _INTERPOLATION.fullmatch(value.strip())
        target = re.sub(r"\[(\d+)\]", r".\1", whole.group(1).strip()) if whole else ""  # OmegaConf's a.b[0].c
        if not target or ":" in target or target.startswith("."):
            raise ValueError(f"whose value {value!r} is a Hydra/OmegaConf interpolation check cannot resolve (a "
                             "resolver, a relative key or one inside text): write the value (through a map, in "
                             "the map file's [values] table), or map the key to where the value is")
        try:
            value = lookup(data, target)
        except LookupError as exc:
            raise ValueError(f"whose value {value!r} refers to a key that is not in the config: {exc}") from None
    raise ValueError(f"whose value refers to itself through {value!r}")


# --- validation: every problem at once, each naming its key ------------------------------------------------


BASE_NEEDED = "required unless a fit is given (--fit or --fit-id)"


def load_config(path: str | Path, cmap: ConfigMap | None = None, constants_file: str | Path | None = None,
                constants_key: str = "--constants", *, with_fit: bool = False) -> CheckConfig:
    """Read a YAML, JSON or TOML config (by suffix) into a validated CheckConfig.

    Without ``cmap`` the file is in the schema's own flat names and an unknown key is an error; with one,
    the schema's keys are read where the map says (:func:`apply_map`). A ConfigError lists every problem.
    ``constants_file`` (``abcscale check --constants``, named ``constants_key`` in errors) replaces the config's
    ``constants_file`` key (read relative to the config): :func:`with_constants_file`. ``with_fit``: the reference
    will be a fit, so the base width and beta are not needed (without one, their absence is among the problems).
    """
    data = read_document(path)
    if cmap is None:
        problems: list[tuple[str, str]] = []
        # the schema's keys only: another key (hydra's own `hydra.run.dir: ${now:...}`) is an unknown key, said as such
        flat = ({k: v for k, v in data.items()} | _references_read(
            data, {k: v for k, v in data.items() if k in _schema_keys(())}, problems)
            if isinstance(data, dict) else data)
    else:
        flat, problems = apply_map(data, cmap)
    if isinstance(flat, dict) and isinstance(lr := flat.get("lr"), dict):  # with the rest, not once it is fixed
        nulls = [r for r in ("embedding", "hidden", "readout") if r in lr and lr[r] is None]
        if nulls and all(v is None for v in lr.values()):
            problems.append(("lr", "no layer's learning rate given (every value is empty: "
                             + ", ".join(f"lr.{r}" for r in nulls) + " null): nothing to check"))
        else:
            problems += [(f"lr.{r}" if cmap is None else mapped_name(f"lr.{r}", cmap),
                          f"empty (null): give lr.{r} a number, or leave the layer out of the table") for r in nulls]
    if isinstance(flat, dict):
        flat = _setup_from_constants(flat, path, constants_file, constants_key)
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
        if not with_fit and isinstance(flat, dict) and flat.get("mup") is None and constants_file is None \
                and flat.get("constants_file") is None:
            # said now with the rest, not after they are fixed (base_config's own check comes later)
            said = {k.split(" ")[0] for k, _ in problems}
            if missing := [k for k in ("base_width", "beta") if flat.get(k) is None and k not in said]:
                problems.append((", ".join(missing if cmap is None else (mapped_name(k, cmap) for k in missing)),
                                 BASE_NEEDED))
    if problems and cmap is not None and isinstance(data, dict):
        problems += _sections_read_as_keys(data, cmap, problems)
    tables = [k for k, v in data.items() if isinstance(v, dict) and k not in _schema_keys(())]
    if problems and cmap is None and tables:
        problems.append((str(path), f"has tables the schema does not know ({', '.join(tables)}); a nested "
                                    "training config is read through a map (abcscale check --map / --map-file)"))
    if problems:
        raise ConfigError(*problems[0], problems[1:])
    if constants_file is not None:
        cfg = with_constants_file(cfg, constants_file, constants_key)
    elif cfg.constants_file is not None:
        cfg = with_constants_file(cfg, Path(path).parent / cfg.constants_file, "constants_file")
    return cfg


def _sections_read_as_keys(data: dict[str, Any], cmap: ConfigMap, problems: list[tuple[str, str]]
                           ) -> list[tuple[str, str]]:
    """A hint for each section of the config that a map leaves unmapped and that shares a name with one of the
    schema's keys, where its problems show: a key no map names is read from the top level, so a team's own `mup:`
    or Hydra's `optimizer: {_target_: ...}` section was read as abcscale's and said as "mup.lr: missing" or
    "optimizer: Input should be 'sgd', ..." with no word of why (a review)."""
    claimed = {k.split(".")[0] for k in (*cmap.paths, *cmap.values)}
    hints = []
    for key, value in data.items():
        if key in claimed or key not in _schema_keys(()) or not isinstance(value, dict):
            continue
        inner = _schema_keys((key,))
        if inner and all(k in inner for k in value):  # the schema's own table (lr: {hidden: ...}): no other section
            continue
        if any(k == key or k.startswith((f"{key}.", f"{key} ")) for k, _ in problems):
            hints.append((key, f"the config's own '{key}' section was read as abcscale's '{key}' (a key no map "
                               f"names is read from the config's top level): if it is not, give abcscale's {key} "
                               f"with --map {key}=PATH or a map file's [values] table, or rename the section"))
    return hints


def _setup_from_constants(flat: dict[str, Any], config: str | Path, constants_file: str | Path | None,
                          key: str) -> dict[str, Any]:
    """``flat`` with the parameterization, optimizer and alignment a constants file was tuned for where the config
    names none: the file says what it is, so a run's config need not say it again (one it does give must be the
    file's: :func:`with_constants_file`). A ConfigError naming the file's key when it does not read."""
    from abcscale.usecases.recommend import read_constants_document
    from abcscale.usecases.tune import load_for_transfer

    file, named = ((constants_file, key) if constants_file is not None else
                   (Path(config).parent / str(flat["constants_file"]), "constants_file")
                   if isinstance(flat.get("constants_file"), str) else (None, key))
    if file is None or flat.get("mup") is not None:
        return flat
    try:  # a hand-written constants file names no setup; `abcscale mup import --json`'s names muP and its optimizer
        doc = read_constants_document(file)
    except ValueError as exc:
        raise ConfigError(named, str(exc)) from None
    if doc is not None:  # its base width too (a form: mup config needs one to validate): one given must be it
        imported, base = doc.mup_import, doc.base
        setup = {} if imported is None else {"parameterization": imported.recommend.parameterization,
                                             "optimizer": imported.setup.optimizer.value}
        return setup | ({} if base is None else {"base_width": base.width}) | flat
    try:
        tuned = load_for_transfer(file)
    except ValueError as exc:
        raise ConfigError(named, str(exc)) from None
    setup = {"parameterization": tuned.parameterization, "optimizer": tuned.optimizer.value,
             "alignment": tuned.alignment}
    return setup | flat


def with_constants_file(cfg: CheckConfig, path: str | Path, key: str = "constants_file") -> CheckConfig:
    """``cfg`` with a tuned constants file's constants, and its base width and beta where ``cfg`` gives none, so
    the reference transfers what was tuned. A ConfigError (naming ``key``, or the clashing config key) when the
    file is unreadable or tuned for another setup, or the config also gives constants or a mup table."""
    from abcscale.usecases.recommend import read_constants_document
    from abcscale.usecases.tune import load_for_transfer

    try:  # the kinds `recommend --constants` reads: a hand-written file, `mup import --json`'s, a tune file
        doc = read_constants_document(path)
    except ValueError as exc:
        raise ConfigError(key, str(exc)) from None
    if doc is not None:  # its own problems name their keys (inside the try they became one line under `key`)
        return _with_constants_document(cfg, doc, path, key)
    try:
        tuned = load_for_transfer(path)
    except ValueError as exc:
        raise ConfigError(key, str(exc)) from None
    given = cfg.model_fields_set
    problems = [(k, f"the constants file was tuned for {theirs}; the config says {ours}") for k, theirs, ours in (
        ("parameterization", tuned.parameterization, cfg.parameterization.value),
        ("optimizer", tuned.optimizer.value, cfg.optimizer.value),
        ("alignment", Alignment.parse(tuned.alignment).name, cfg.alignment.name),
        ("base_width", tuned.base_width, cfg.base_width if "base_width" in given else tuned.base_width))
        if str(theirs) != str(ours)]
    problems += _given_twice(cfg, key)
    if problems:
        raise ConfigError(*problems[0], problems[1:])
    # the file's LR mode where the config says none and its per-layer LRs allow either (one LR is global)
    mode = tuned.lr_mode if cfg.lr_mode is None and not isinstance(cfg.lr, float) else cfg.lr_mode
    out = cfg.model_copy(update={"constants": tuned.constants, "base_width": tuned.base_width,
                                 "beta": tuned.beta if cfg.beta is None else cfg.beta, "constants_file": Path(path),
                                 "lr_mode": mode})
    out._constants_key, out._tuned_beta = key, tuned.beta
    # the base width the file's (filled in before validation where the config names none): not the config's to drop
    out._from_file = frozenset([*(["beta"] if cfg.beta is None else []),
                                *(["base_width"] if cfg.base_width in (None, tuned.base_width) else [])])
    return out


def _given_twice(cfg: CheckConfig, key: str) -> list[tuple[str, str]]:
    """A constants file beside the config's own constants or a mup table (which brings its own)."""
    problems = []
    if cfg.mup is not None:
        problems.append((key, "a mup table brings its own constants (theory.groups.from_mup); give one of them"))
    if "constants" in cfg.model_fields_set:
        problems.append(("constants", f"given in the config and by {key}; give one"))
    return problems


def _with_constants_document(cfg: CheckConfig, doc: Any, path: str | Path, key: str) -> CheckConfig:
    """``cfg`` with a hand-written constants file's constants (or `abcscale mup import --json`'s), and the base
    width and beta it gives beside them where ``cfg`` gives none (a different base width is an error: the constants
    hold at theirs; another beta is a choice, said in a warning); an import's setup must be the config's."""
    from abcscale.usecases.tune import setting_name

    given = cfg.model_fields_set
    problems: list[tuple[str, str]] = []
    if (imported := doc.mup_import) is not None:
        mine = imported.setup.optimizer.value
        for k, theirs, ours in (("parameterization", imported.recommend.parameterization, cfg.parameterization),
                                ("optimizer", imported.setup.optimizer, cfg.optimizer)):
            if setting_name(theirs) != setting_name(ours):
                problems.append((k, f"the constants are microsoft/mup's {mine} setup as "
                                    f"{setting_name(imported.recommend.parameterization)} "
                                    f"(`abcscale mup import`); the config says {setting_name(ours)}"))
    if (base := doc.base) is not None and "base_width" in given and cfg.base_width != base.width:
        problems.append(("base_width", f"the constants in {path} hold at base width {base.width}; the config says "
                                       f"{cfg.base_width}"))
    problems += _given_twice(cfg, key)
    if problems:
        raise ConfigError(*problems[0], problems[1:])
    constants = doc.constants if base is None else Constants.model_validate(
        doc.constants.model_dump(exclude={"width", "beta"}, exclude_unset=True))
    update: dict[str, Any] = {"constants": constants}
    if base is not None:  # its base width is checked against a fit's, as a tune file's (compare)
        update |= {"base_width": base.width, "beta": base.beta if cfg.beta is None else cfg.beta,
                   "constants_file": Path(path)}
    out = cfg.model_copy(update=update)
    out._constants_key = key
    # another beta is a choice, but said, as over a tune file's (a config's beta 0.01 over an import's 0.003 moved
    # every reference LR 3.3x in silence; recommend --base-lr over the document's beta is said too)
    out._doc_beta = None if base is None else base.beta
    out._from_file = frozenset() if base is None else frozenset(
        [*(["beta"] if cfg.beta is None else []), *(["base_width"] if cfg.base_width in (None, base.width) else [])])
    return out


def validation_problems(exc: ValidationError, data: dict[str, Any]) -> list[tuple[str, str]]:
    """``(key, reason)`` for each error; an unknown key with a close schema key says "did you mean"."""
    problems: list[tuple[str, str]] = []
    meant: set[str] = set()  # keys a misspelling was taken for: not also reported as missing
    for e in exc.errors():
        kept_loc = _one_branch([str(x) for x in e["loc"]], data)
        if kept_loc is None:
            continue
        loc = _flat_named(kept_loc, data)
        key = ".".join(loc) or "config"
        if not loc and e["type"] == "value_error":  # the cross-key checks: one "key: reason" line each
            for line in str(e["msg"]).removeprefix("Value error, ").splitlines():
                k, sep, reason = line.partition(": ")
                problems.append((k, reason) if sep and " " not in k else ("config", line))
            continue
        if e["type"] == "extra_forbidden":
            keys = _schema_keys(tuple(loc[:-1]))
            close = difflib.get_close_matches(loc[-1], keys, n=1, cutoff=CLOSE)
            meant.update(".".join([*loc[:-1], c]) for c in close)
            known = "" if close or not keys or len(loc) < 2 else f"; keys are: {', '.join(sorted(keys))}"
            problems.append((key, "unknown key" + suggest(loc[-1], close) + known))
        elif e["type"] in ("float_type", "float_parsing") and isinstance(e.get("input"), list | tuple) \
                and loc[-1] in ("lr", "epsilon", "init_std", "weight_decay"):
            # a list where a number or a table by role goes (lr: number | RoleValues): say the table's form
            problems.append((key, "a number, or a table by role ({embedding: 0.03, hidden: 3.75e-4, ...}), "
                                  "not a list"))
        else:
            problems.append((key, "missing" if e["type"] == "missing" else error_text(e)))
    kept = [p for p in problems if not (p[1] == "missing" and p[0] in meant)]
    return list(dict.fromkeys(kept))  # once each, in order


def _flat_named(loc: list[str], data: Any) -> list[str]:
    """``loc`` as the config named it: a flat constant key (``base_epsilon: true``) is validated under
    ``constants`` (``constants.epsilon``), which the config does not have."""
    if len(loc) > 1 and loc[0] == "constants" and isinstance(data, dict) and "constants" not in data:
        flat = next((k for k, field in FLAT_CONSTANTS.items() if field == loc[1] and k in data), None)
        if flat is not None:
            return [flat, *loc[2:]]
    return loc


_TABLES = ("LayerValues", "RoleValues", "DecayValues")


def _one_branch(loc: list[str], data: Any) -> list[str] | None:
    """A union (lr: number | table) reports one error per branch: ``loc`` without the branch's name when it is
    the branch the input is, None for the other branch's errors. Nested tables (mup.lr) too."""
    out: list[str] = []
    here = data
    for part in loc:
        if part in ("float", *_TABLES):
            if (part in _TABLES) != isinstance(here, dict):
                return None
            continue
        out.append(part)
        here = here.get(part) if isinstance(here, dict) else None
    return out


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
    """One setting of one layer. ``yours`` is the config's number; ``recommended`` is the recommendation written
    with the run's ``multiplier`` (the same invariant), so ``ratio = yours / recommended``."""

    setting: str
    layer: Role | None
    yours: float
    recommended: float
    ratio: float
    tolerance: float
    ok: bool
    verdict: str
    multiplier: float | None = Field(None, description="the run's multiplier the two numbers go with")


class CheckReport(_Strict):
    ok: bool
    exit_code: int
    config: str
    source: str
    width: int
    lr_mode: LrMode
    form: Form = Field(description="the form the run's numbers are read in: abc, multiplier_free or mup (a `mup` "
                       "table is mup); form_detail says its multipliers")
    form_detail: str = Field("", description="which multipliers the numbers are written with, in words")
    checks: list[Check]
    failed: list[str]
    warnings: list[str]


#: the ratio reported for a positive value where the recommendation is 0 (JSON has no infinity)
MAX_RATIO = 1e300


def _check(setting: str, layer: Role | None, yours: float, rec: float, tol: float, high_only: bool = False,
           multiplier: float | None = None) -> Check:
    # 0 against 0 (an epsilon of 0 both sides) is agreement; a positive value against 0 stays finite for JSON
    ratio = yours / rec if rec > 0 else 1.0 if yours == rec else MAX_RATIO
    # the edge itself passes: a value of exactly tol x the recommendation, whose ratio rounding put at
    # 2.0000000000000004 through the multiplier and back, failed beside an identical one that passed (a CI review)
    slack = 1 + 1e-9
    too_high, too_low = ratio > tol * slack, (not high_only) and ratio * slack < 1 / tol
    verdict = "too high" if too_high else "too low" if too_low else "ok"
    if rec == 0 and yours > 0:  # the ratio is a stand-in (1e300, finite for JSON): say what it stands for
        verdict = f"too high: this {'role' if layer is not None else 'setting'} takes none"
    return Check(setting=setting, layer=layer, yours=yours, recommended=rec, ratio=ratio, tolerance=tol,
                 ok=verdict == "ok", verdict=verdict, multiplier=multiplier)


def _table(v: float | LayerValues | DecayValues | None, roles: tuple[Role, ...]) -> dict[Role, float]:
    """A config value by role: a number stands for every one of ``roles``, a table for the roles it gives."""
    if v is None:
        return {}
    return dict.fromkeys(roles, v) if isinstance(v, float) else dict(v.items())


def run_settings(cfg: CheckConfig, rec: Recommendation) -> tuple[dict[Role, RoleSetting], set[tuple[str, Role]], str]:
    """The run's values by role with the multipliers they go with, which (setting, role) the config gives, and
    the form in words. A role's ``lr`` that the config leaves out is a stand-in (never compared)."""
    setup = cfg.mup_setup()
    if setup is not None:
        actual = mup_setting(setup)
        given = {(k, r) for r, s in actual.items() for k in ("lr", "init_std", "epsilon")
                 if getattr(s, k) is not None}
        return actual, given, (f"mup (microsoft/mup at base width {setup.base_width}, output_mult "
                               f"{setup.output_mult:g}: multipliers 1, 1, {setup.output_mult / setup.width_mult:.4g})")
    layers = (Role.embedding, Role.hidden, Role.readout)
    values = {"lr": _table(cfg.lr, layers), "init_std": _table(cfg.init_std, layers),
              "epsilon": _table(cfg.epsilon, layers), "weight_decay": _table(cfg.weight_decay, layers)}
    stated = _table(cfg.multiplier, layers)
    readout = cfg.base_width / cfg.width if cfg.base_width else 1.0
    by_form = {Form.abc: {Role(s.layer.value): s.multiplier for s in rec.layers},
               Form.multiplier_free: {}, Form.mup: {Role.readout: readout}}[cfg.form]
    out = {}
    for role in SPEC_ROLES:
        m = stated.get(role, by_form.get(role, 1.0))  # a vector-like parameter takes none in every form
        out[role] = RoleSetting(role=role, lr=values["lr"].get(role, 1.0), init_std=values["init_std"].get(role),
                                epsilon=values["epsilon"].get(role), weight_decay=values["weight_decay"].get(role),
                                multiplier=m)
    given = {(k, r) for k, table in values.items() for r in table}
    words = {Form.abc: "abc (the recommendation's multipliers)", Form.multiplier_free: "multiplier_free (every "
             "multiplier 1)", Form.mup: f"mup (multipliers 1, 1, base/width = {readout:.4g})"}[cfg.form]
    return out, given, words + ("; your multipliers where the config gives them" if stated else "")


def recommended_settings(rec: Recommendation, epsilon_mode: EpsilonMode) -> dict[Role, RoleSetting]:
    """The recommendation by role in the abc form, the vector-like rule included."""
    out = {Role(s.layer.value): RoleSetting(role=Role(s.layer.value), init_std=s.init_std, lr=s.lr, epsilon=s.epsilon,
                                            weight_decay=s.weight_decay, multiplier=s.multiplier) for s in rec.layers}
    return out | {Role.vector: vector_setting(rec, epsilon_mode), Role.fixed: fixed_setting(rec, epsilon_mode)}


#: setting -> (its invariant, how it maps with the multiplier m: invariant = value * m**power(k, k'))
_INVARIANT = {"lr": ("update", lambda k, ke: k), "init_std": ("forward", lambda k, ke: 1),
              "epsilon": ("epsilon", lambda k, ke: -ke),
              "weight_decay": ("weight_decay", lambda k, ke: -k)}  # a coupled decay; an independent one: power 0


def _no_power(k: float, ke: float) -> float:
    return 0.0


def _face_shift(cfg: CheckConfig, rec: Recommendation, yours: dict[Role, RoleSetting],
                reference: dict[Role, RoleSetting], given: set[tuple[str, Role]]) -> dict[Role, float]:
    """Where the per-layer exponents are a face, not a point (``rec.unique`` false), the factor on each role's
    recommended LR that moves it to the face point nearest the run (theory.solver.nearest_optimal), so that a
    run elsewhere on the face is not failed for it; the vector-like role follows the embedding. Empty otherwise."""
    rho = rec.width / rec.base_width
    layers = [Layer(r.value) for r in (Role.embedding, Role.hidden, Role.readout) if ("lr", r) in given]
    if rec.unique or rec.lr_mode is not LrMode.per_layer or rho == 1.0 or not layers:
        return {}
    c_rec = {l: rec.exponents[l.value].c for l in LAYERS}
    implied = {}
    for l in layers:  # the run's LR read as an exponent: lr = recommended x rho^(c_rec - c)
        mine = invariants(yours[Role(l.value)], cfg.optimizer)["update"]
        theirs = invariants(reference[Role(l.value)], cfg.optimizer)["update"]
        if not (mine and theirs and mine > 0 and theirs > 0):
            return {}
        implied[l] = c_rec[l] - math.log(mine / theirs) / math.log(rho)
    near = theory.solver.nearest_optimal(rec.parameterization, rec.optimizer, rec.alignment, implied)
    shift = {Role(l.value): rho ** (c_rec[l] - near[l]) for l in LAYERS}
    return shift | {Role.vector: shift[Role.embedding]}


#: how the transfer's note for a decay no one gave begins (theory.transfer._ignored)
_NO_DECAY = "weight_decay: none given, so 0 at every layer"


def _transfer_note(note: str, cfg: CheckConfig) -> str | None:
    """A transfer's note as a check config says it (None: left out). Its "no decay given" named recommend's keys,
    and a config's `weight_decay` is the run's, not the base width's (a review: the user had given it): where the
    config gives the run's decay, compare's own warning says what to give; a mup table has no key for it."""
    if not note.startswith(_NO_DECAY):
        return note
    if cfg.weight_decay is not None or cfg.mup is not None:
        return None
    return note.split(": give ")[0] + (": give the one tuned at the base width as constants.weight_decay (and "
                                       "weight_decay_mode) and the run's own as weight_decay to check it")


def _mup_fit_reference(cfg: CheckConfig, rec: Recommendation) -> dict[Role, RoleSetting] | None:
    """What microsoft/mup applies at the config's width in the fitted sweep's setup, for a mup table checked
    against a fit (None otherwise): the fit's LR at that width given to every group (microsoft/mup's one lr, the
    lr column of a MuAdam/MuSGD sweep), at the fit's base width (its sweep's set_base_shapes base), with the
    table's output_mult and init (a fit has neither: said). MuAdam itself then divides the hidden group's lr by
    width_mult and MuReadout's multiplier is output_mult / width_mult, so a table at another base width is
    compared as microsoft/mup would run it (a review: base 128 -> 512 gave the readout 1.92x, ok)."""
    setup = cfg.mup_setup()
    if setup is None or rec.source != "fit" or rec.beta is None or rec.lr_mode is not LrMode.per_layer:
        return None
    return mup_setting(setup.model_copy(update={"base_width": rec.base_width,
                                                "lr": dict.fromkeys(ROLES, rec.beta)}))


def _with_update(s: RoleSetting, update: float, optimizer: Optimizer) -> RoleSetting:
    """``s`` with the LR whose update invariant (with ``s``'s multiplier) is ``update``."""
    unit = invariants(s.model_copy(update={"lr": 1.0}), optimizer)["update"]
    assert unit is not None and unit > 0
    return s.model_copy(update={"lr": update / unit})


def _mup_fit_notes(cfg: CheckConfig, rec: Recommendation, given: set[tuple[str, Role]]) -> list[str]:
    """What a mup table checked against a fit is compared with, said where it is not plain: the fit's base width
    where the table's differs (both named), the init the fit does not hold, a beta it replaces."""
    if cfg.mup is None or rec.source != "fit":
        return []
    notes = []
    if cfg.beta is not None:
        fitted = rec.band.lr if rec.band is not None else rec.beta  # a global fit's beta is the base width's
        notes.append(f"beta: not used with a fit, whose LR ({fitted:.4g} at width {cfg.width}) is the one lr "
                     "every group is checked against")
    b, fb = cfg.mup.base_width, rec.base_width
    if b != fb and _mup_fit_reference(cfg, rec) is not None:
        mu = mup_wrapper(cfg.optimizer, long=True)
        notes.append(f"mup.base_width {b} differs from the fit's base width {fb} (fit --base-width, else its narrowest "
                     f"width; taken as its sweep's set_base_shapes base): the LRs are checked against what {mu} "
                     f"applies at width {cfg.width} in the fit's setup (base {fb}, every group given "
                     f"{rec.beta:.4g}); at the same lr, base {b} changes the hidden group's applied lr and "
                     f"MuReadout's output_mult/width_mult ({cfg.mup.output_mult * b / cfg.width:.4g} here, "
                     f"{cfg.mup.output_mult * fb / cfg.width:.4g} in the fit's runs). Keep base {fb} with this fit, "
                     f"or fit a sweep at base {b}")
    init = " and init stds" if any(k == "init_std" for k, _ in given) else ""
    notes.append(f"a fit gives the LR alone: the mup table's output_mult{init} are taken as the fitted runs' (not "
                 "checked)")
    return notes


def _mup_lr_notes(cfg: CheckConfig, rec: Recommendation) -> list[str]:
    """What a mup table's per-group lrs beside beta, or a fit's LR, say. The advice was to leave beta out, which
    left the LRs unchecked (a review: the README's first trap then passed); beta is the check's evidence, so it
    stays."""
    fitted = _mup_fit_reference(cfg, rec) is not None
    one = rec.beta if fitted else cfg.beta
    if cfg.mup is None or one is None or not isinstance(cfg.mup.lr, RoleValues) \
            or len({v for _, v in cfg.mup.lr.items()}) < 2:
        return []
    setup = cfg.mup_setup()
    assert setup is not None
    hidden = theory.layer_rules(cfg.optimizer)[Layer.hidden]
    given = cfg.mup.lr.hidden
    name = "the fit's LR" if fitted else "beta"
    if hidden.update_shift == 0.0 and not hidden.backprop_scale and setup.width_mult != 1.0 and given is not None \
            and math.isclose(given, one / setup.width_mult, rel_tol=0.02):
        # MuAdam divides the hidden group's lr by width_mult: given abcscale's lr, already divided, it does so twice
        mu = mup_wrapper(cfg.optimizer, long=True)
        return [f"mup.lr.hidden {given:.4g} is {name} / width_mult ({one:.4g} / {setup.width_mult:g}): likely "
                f"abcscale's width-scaled hidden LR given to {mu}, which divides it by width_mult again (README, "
                f"traps of mixing the two); give {mu} beta for the hidden group (`abcscale mup export` lists each "
                "group's), or abcscale's LRs to a plain torch.optim optimizer"]
    mu = mup_wrapper(cfg.optimizer)  # adamw's, lion's and muon's were said MuAdam
    if fitted:  # a fit's LR with a mup table is the fitted sweep's one lr, as beta is
        return [f"the fit's LR ({one:.4g} at width {cfg.width}) with a mup table is read as the one lr {mu} gave every "
                "group in the fitted sweep (microsoft/mup's rule), and each group's lr is checked against it; this "
                "table's per-group lrs differ. A fit of runs in abcscale's abc form is not such a sweep: the per-group "
                "lrs `abcscale recommend --fit --form mup` writes from it are checked as `form: mup` (its lr per "
                "role, init_std and multiplier) against that fit"]
    # `recommend --form mup` writes abc's beta as per-group MuAdam lrs; beta here is microsoft/mup's one lr
    return [f"beta with a mup table is the one lr {mu} gives every group (microsoft/mup's rule), and each group's "
            "lr is checked against it; this table's per-group lrs differ, as `abcscale recommend --form mup` "
            "writes them from a base LR of the abc form, not from mup's one lr (beta stays the reference: without "
            "it the table's LRs are not checked); to gate numbers that `abcscale mup export` or `recommend --form "
            "mup` gave, describe the run as `form: mup` (its lr per role, init_std and multiplier) with the beta and "
            "constants they were made from"]


def compare(cfg: CheckConfig, rec: Recommendation, *, config_name: str, lr_tolerance: float = 2.0,
            init_tolerance: float = 1.5, eps_tolerance: float = 10.0) -> CheckReport:
    """The run (:func:`run_settings`) against ``rec``, layer by layer on the invariants (module docstring)."""
    rules = theory.layer_rules(cfg.optimizer)
    yours, given, form = run_settings(cfg, rec)
    if not any(k == "lr" for k, _ in given):  # a table of nulls, or a mapped path that holds null
        nulls = [r for r in ("embedding", "hidden", "readout") if isinstance(cfg.lr, LayerValues)
                 and r in cfg.lr.model_fields_set and getattr(cfg.lr, r) is None]
        raise ConfigError("lr", "no layer's learning rate given (every value is empty"
                          + (f": {', '.join(f'lr.{r}' for r in nulls)} null" if nulls else "") + "): nothing to check")
    if isinstance(cfg.lr, LayerValues) and (empty := [r for r in ("embedding", "hidden", "readout")
                                                    if r in cfg.lr.model_fields_set and getattr(cfg.lr, r) is None]):
        # a layer's LR given as null (a mapped path that holds null): left out, it was a pass that checked less
        raise ConfigError(f"lr.{empty[0]}", "empty (null): give " + " and ".join(f"lr.{r}" for r in empty)
                          + " a number, or leave the layer out of the table")
    # the config's epsilon mode where it states one, else the answer's (a fit's runs' mode: a config trained as they
    # were failed its vector role, a code review)
    eps_mode = rec.epsilon_mode if cfg.mup is None and "epsilon_mode" not in cfg.constants.model_fields_set else None
    reference = recommended_settings(rec, cfg.epsilon_mode if eps_mode is None else eps_mode)
    fitted = _mup_fit_reference(cfg, rec)
    if fitted is not None:
        # a mup table against a fit: every role's LR is the fit's one lr as microsoft/mup applies it in the fit's setup
        # (a review: the table's own per-group ratios, and its vector/fixed LRs themselves, were the reference, so a
        # group given 10x passed, and its base width mixed with the fit's gave wrong ratios)
        updates = {role: invariants(s, cfg.optimizer)["update"] for role, s in fitted.items()}
        reference |= {role: _with_update(reference[role], u, cfg.optimizer) for role, u in updates.items()
                      if u is not None}
    elif cfg.mup is not None and cfg.beta is None:
        # against its own base-width numbers: microsoft/mup gives vector-like groups their own LR, which the
        # imported constants (the embedding's rule) do not carry; what the setup applies is that rule here
        for role in (Role.vector, Role.fixed):
            reference[role] = reference[role].model_copy(update={"lr": yours[role].lr})
    warnings = [said for w in rec.warnings if (said := _transfer_note(w, cfg)) is not None]
    warnings += _unchecked_notes(cfg, rec, given)
    warnings += _mup_fit_notes(cfg, rec, given)
    if cfg.mup is not None and cfg.beta is None and rec.source != "fit":
        warnings.append("beta: not given, so the mup table is compared with its own base-width numbers, which a mup "
                        "run always follows: its learning rates and init are not checked; give beta (the LR tuned "
                        "at the base width) or --fit to check them")
    if rec.source == "fit" and cfg.constants_file is not None and cfg.base_width != rec.base_width:
        # the file's constants hold at its base width, not the fit's (recommend --fit --constants refuses it too)
        # named as the user gave the file (`--constants`, or the config's `constants_file` key; a review)
        raise ConfigError(cfg._constants_key, f"{cfg.constants_file} was tuned at width {cfg.base_width}, the fit's "
                          f"base width is {rec.base_width}: give constants tuned at {rec.base_width}, or check "
                          "against the file without the fit")
    from abcscale.usecases.recommend import document_beta_note
    from abcscale.usecases.tune import beta_override_note

    if rec.source != "fit" and cfg._tuned_beta is not None and cfg.constants_file is not None and (
            note := beta_override_note(cfg._tuned_beta, cfg.beta, name="beta",
                                       path=f"{cfg.constants_file} ({cfg._constants_key})")):
        warnings.append(note)  # the reference transfers the config's beta with the file's gammas: said
    if rec.source != "fit" and cfg._doc_beta is not None and cfg.constants_file is not None and (
            note := document_beta_note(cfg._doc_beta, cfg.beta, name="beta",
                                       path=f"{cfg.constants_file} ({cfg._constants_key})")):
        warnings.append(note)  # as recommend --base-lr over the same document
    # (the mup form's base_width is used: microsoft/mup's readout multiplier is base/width, a review)
    # a constants file's beta and base width are not the config's: not said as ignored keys it named (a review)
    if rec.source == "fit" and cfg.mup is None and (ignored := [
            k for k in ("beta", "base_width") if getattr(cfg, k) is not None and k not in cfg._from_file
            and not (k == "base_width" and cfg.form is Form.mup)]):
        warnings.append(f"{' and '.join(ignored)}: not used with a fit, which gives the LR at every width "
                        f"(the fit's base width is {rec.base_width})")
    if cfg.per_group_eps and rules.has_epsilon and any(k == "epsilon" for k, _ in given):
        # abcscale's per-group eps follow from the constants they were exported with (one base epsilon in the abc
        # form of those multipliers), which a mup table does not hold: from_mup's constants give other numbers
        warnings.append("epsilon: per param group with a mup table, not checked: abcscale's rule for each group "
                        "depends on the constants it was exported with, which the table does not hold (give one "
                        "eps, as microsoft/mup does, or check the run in abc form with those constants)")
        given = {(k, r) for k, r in given if k != "epsilon"}
    if any(k == "epsilon" for k, _ in given) and not rules.has_epsilon:
        warnings.append(f"epsilon is only checked for optimizers that have one (optimizer is {cfg.optimizer.value})")
        given = {(k, r) for k, r in given if k != "epsilon"}
    warnings += _mup_lr_notes(cfg, rec)
    if cfg._mu_optimizer is not None and cfg.mup is None:
        warnings.append(f"optimizer: {cfg._mu_optimizer} is read as {cfg.optimizer.value}, and the LRs as written, in "
                        f"the {cfg.form.value} form; what {cfg._mu_optimizer} is given is checked as microsoft/mup "
                        "applies it only in a `mup:` table (mup.base_width, mup.lr, ...; map them from your config)")
    if cfg.mup is not None and cfg.weight_decay is not None:
        mu = mup_wrapper(cfg.optimizer)  # lion's was said MuAdamW
        warnings.append(f"weight_decay: not checked with a mup table (give it as {mu}'s, in abc or plain form "
                        "without the table)")
    if undecayed := sorted(r.value for k, r in given if k == "weight_decay" and yours[r].weight_decay == 0):
        # a layer the run leaves undecayed (an embedding, often) is a choice the rule does not rank: said
        warnings.append(f"weight_decay: {', '.join(undecayed)} left undecayed (0): not checked")
        given = {(k, r) for k, r in given if not (k == "weight_decay" and yours[r].weight_decay == 0)}
    if any(k == "weight_decay" for k, _ in given):
        if not rules.weight_decay:
            warnings.append(f"weight_decay is only checked for optimizers with a decay rule (adamw, lion, muon, sgd; "
                            f"optimizer is {cfg.optimizer.value})")
            given = {(k, r) for k, r in given if k != "weight_decay"}
        elif not (cfg.constants.weight_decay or any(s.weight_decay for s in rec.layers)):  # a fit's carried decay too
            warnings.append("weight_decay: not checked, the reference has none: give the decay tuned at the base "
                            "width as constants.weight_decay (and weight_decay_mode)")
            given = {(k, r) for k, r in given if k != "weight_decay"}
    # the reference's: the config's constants, or the decay the fit's runs trained with (recommend_from_fit)
    mode = rec.weight_decay_mode or cfg.constants.weight_decay_mode
    tolerance = {"lr": lr_tolerance, "init_std": init_tolerance, "epsilon": eps_tolerance,
                 "weight_decay": lr_tolerance}
    face = _face_shift(cfg, rec, yours, reference, given)
    if face:
        warnings.append("the per-layer exponents are not unique: each LR is compared with the point of the optimal "
                        "face nearest the run's (" + ", ".join(f"{r.value} x{f:.3g}" for r, f in face.items()
                                                              if r is not Role.vector) + " the prescription's)")
    checks: list[Check] = []
    for setting in ("lr", "init_std", "epsilon", "weight_decay"):
        key, power = _INVARIANT[setting]
        if setting == "weight_decay" and mode is WeightDecayMode.independent:
            power = _no_power  # wd x W whatever the LR: the multiplier does not enter
        for role in SPEC_ROLES:
            if (setting, role) not in given:
                continue
            mine = invariants(yours[role], cfg.optimizer, mode)[key]
            theirs = invariants(reference[role], cfg.optimizer, mode)[key]
            if setting == "lr" and theirs is not None:
                theirs *= face.get(role, 1.0)
            if mine is None or theirs is None:
                continue  # e.g. a vector-like parameter's init: the model's own (gains 1, biases 0)
            m = yours[role].multiplier or 1.0
            value = getattr(yours[role], setting)
            # the recommendation written with your multiplier: its invariant over m's power
            # vector-like and fixed parameters: the embedding's rule
            rule = rules[Layer.embedding if role in (Role.vector, Role.fixed) else Layer(role.value)]
            checks.append(_check(setting, role, value, theirs / m ** power(rule.k, rule.epsilon_k),
                                 tolerance[setting], high_only=setting == "epsilon", multiplier=m))
    checks, safe_notes = _safe_side(checks, rec)
    warnings += safe_notes
    warnings += _epsilon_notes(cfg, checks, rec)
    warnings += _outside_band(checks, rec)
    failed = [f"{c.setting} ({c.layer.value}) {c.verdict}" if c.layer else c.setting for c in checks if not c.ok]
    lrs = [c for c in checks if c.setting == "lr" and not c.ok]
    # one number in the config: one failure, not one per layer it reaches (a review: "lr (embedding) too high, lr
    # (hidden) too high, lr (readout) too high" for a single lr: 0.003); a mup table's one lr, what MuAdam gives
    # every group, likewise (five lines for one number, session 62); per-group lrs keep their rows
    one = ("global", "layers") if cfg.mode is LrMode.global_ else ("mup's one lr", "groups") \
        if cfg.mup is not None and isinstance(cfg.mup.lr, float) else None
    if one is not None and len(lrs) > 1 and len({c.verdict for c in lrs}) == 1:
        lo, hi = min(c.ratio for c in lrs), max(c.ratio for c in lrs)
        ratio = f"{lo:.3g}x" if hi <= lo * 1.001 else f"{lo:.3g}-{hi:.3g}x"
        failed = [f"lr ({one[0]}, {len(lrs)} {one[1]}) {lrs[0].verdict} ({ratio})",
                  *(f for f in failed if not f.startswith("lr ("))]
    ok = not failed
    return CheckReport(ok=ok, exit_code=0 if ok else 1, config=config_name, source=rec.source, width=cfg.width,
                       lr_mode=cfg.mode, form=Form.mup if cfg.mup_setup() is not None else cfg.form,
                       form_detail=form, checks=checks, failed=failed, warnings=warnings)


#: an LR this much below the fit's safe-side LR still counts as at it: `recommend` and `check` print it to 4
#: significant digits, whose rounding is at most 5e-4 of it
SAFE_SIDE_SLACK = 1e-3
#: the verdict of an LR below the tolerance that is at or above the fit's safe-side LR (ok)
SAFE_SIDE = "ok (fit's safe side)"


def _safe_side(checks: list[Check], rec: Recommendation) -> tuple[list[Check], list[str]]:
    """A fit's safe-side LR passes: an LR below the tolerance but between the fit's safe-side LR and its LR* is
    ok, its verdict says why, and a note says it (a review: the safe-side LR abcscale printed, with "scale every
    layer's LR by 0.45 to use it", failed "too low 0.45x"). Every layer's LR scales with the fitted one, so the
    safe side relative to LR* holds for each; the high side is the tolerance's."""
    band = rec.band
    if rec.source != "fit" or band is None or not (band.lr > 0 and 0 < band.safe_lr < band.lr):
        return checks, []
    safe = band.safe_lr / band.lr
    out, moved = [], []
    for c in checks:
        if c.setting == "lr" and c.verdict == "too low" and c.ratio * (1 + SAFE_SIDE_SLACK) >= safe:
            c = c.model_copy(update={"ok": True, "verdict": SAFE_SIDE})
            moved.append(c)
        out.append(c)
    if not moved:
        return checks, []
    said = ", ".join(f"{c.layer.value if c.layer else 'lr'} {c.ratio:.3g}x" for c in moved)
    penalty = band.safe_expected_loss_penalty
    cost = "" if penalty is None else f" (the fit expects a loss {100 * penalty:.2g}% above the optimum's there)"
    return out, [f"lr: below the tolerance ({1 / moved[0].tolerance:.3g}x the fit's LR* {band.lr:.4g}) but at or above "
                 f"its safe-side LR {band.safe_lr:.4g} ({safe:.3g}x): {said}; passed as the fit's safe side{cost}"]


def _outside_band(checks: list[Check], rec: Recommendation) -> list[str]:
    """A fit's LR band: a run's LR inside the tolerance but outside the fit's 95% band is said (a user review: 1.95x
    the fitted LR passed the 2x tolerance, above the band's top and 2.1x the truth, without a word). Every layer's LR
    is the fitted beta times its factors, so the band relative to the point holds for each."""
    band = rec.band
    if rec.source != "fit" or band is None or not band.lr > 0:
        return []
    lo, hi = band.ci95[0] / band.lr, band.ci95[1] / band.lr
    out = [c for c in checks if c.setting == "lr" and c.verdict == "ok" and not lo <= c.ratio <= hi]
    if not out:
        return []
    said = ", ".join(f"{c.layer.value if c.layer else 'lr'} {c.ratio:.3g}x" for c in out)
    safe = band.safe_lr / band.lr
    return [f"lr: within the tolerance, but outside the fit's 95% band ({lo:.3g}x-{hi:.3g}x its LR): {said}; the "
            "fit puts the optimum elsewhere" + ("" if abs(safe - 1) < 5e-3 else f" (its safe-side LR is {safe:.3g}x)")]


def _epsilon_notes(cfg: CheckConfig, checks: list[Check], rec: Recommendation) -> list[str]:
    """microsoft/mup keeps one epsilon at every width. A mup config is checked against epsilon_mode constant
    (one epsilon in the abc form, which the mup form's multipliers spread over the layers): said, not failed,
    within the tolerance, with what abcscale's default per_layer rule would say beside it."""
    if (cfg.mup is None and cfg.form is not Form.mup) or cfg.per_group_eps:
        return []  # per-group eps in a mup table are not checked (compare says why)
    eps = [c for c in checks if c.setting == "epsilon" and c.ok]
    off = [c for c in eps if not math.isclose(c.ratio, 1.0, rel_tol=0.01)]
    notes = []
    if off:
        mode = "constant" if cfg.mup is not None else cfg.epsilon_mode.value
        where = ", ".join(f"{c.layer.value if c.layer else ''} {c.ratio:.3g}x" for c in off)
        notes.append(f"epsilon: microsoft/mup keeps one Adam epsilon, and abcscale's epsilon_mode {mode} rule keeps "
                     f"one in the abc form, whose multipliers differ from mup's by layer ({where} the rule's); within "
                     "the tolerance, so not a failure")
    if cfg.mup is not None and eps:
        rho = rec.width / rec.base_width
        ab = ABTable(**{l.value: LayerExponents(a=rec.exponents[l.value].a, b=rec.exponents[l.value].b)
                        for l in LAYERS})
        e = epsilon_exponents(ab, {l: rec.exponents[l.value].c for l in LAYERS})
        rule = theory.layer_rules(cfg.optimizer)[Layer.embedding]
        # per_layer divides each layer's epsilon by rho^e_l (vector-like: the embedding's, shifted by k' a_e)
        e_role = {Role(l.value): e[l] for l in LAYERS} | {
            Role.vector: e[Layer.embedding] - rule.epsilon_k * rec.exponents[Layer.embedding.value].a, Role.fixed: 0.0}
        per_layer = ", ".join(f"{c.layer.value} {c.ratio * rho ** e_role[c.layer]:.3g}x" for c in eps if c.layer)
        notes.append(f"epsilon under abcscale's default per_layer rule (docs/theory.md section 5): {per_layer} the "
                     "rule's")
    return notes


def check_request(cfg: CheckConfig, fit_id: str | None = None, group: dict[str, Any] | None = None
                  ) -> RecommendRequest:
    """What a check compares against, as a recommend request: theory's transfer from the config's base width,
    or (with ``fit_id``) the fit's, narrowed to the config's group (its alignment only when the config gives one)
    and by ``group``, the fit's other columns (``check --group depth=2``).

    ``abcscale check --service`` POSTs it; a local check answers it with :func:`recommendation`.
    """
    if fit_id is None:
        return AnalyticRecommend(parameterization=cfg.parameterization, optimizer=cfg.optimizer,
                                 alignment=cfg.alignment, lr_mode=cfg.mode, width=cfg.width, base=cfg.base_config())
    alignment = cfg.alignment if "alignment" in cfg.model_fields_set else None
    constants = cfg.constants
    setup = cfg.mup_setup()
    if setup is not None:
        # the fitted LR is the one lr microsoft/mup gives every group (the gammas its rule makes, not the table's
        # own per-group ratios: compare checks each group's lr against the fit's); the rest is the setup's
        base = from_mup(setup.model_copy(update={"lr": dict.fromkeys(ROLES, 1.0)}))
        constants = Constants(**{k: v for k, v in base.given().items() if k not in ("width", "beta")})
    return FitRecommend(fit_id=fit_id, width=cfg.width, parameterization=cfg.parameterization,
                        optimizer=cfg.optimizer, lr_mode=cfg.mode, alignment=alignment, constants=constants,
                        group=group)


def _unchecked_notes(cfg: CheckConfig, rec: Recommendation, given: Any) -> list[str]:
    """What a pass does not cover, said (a user review: each passed silently): layers of a per-layer LR table left
    out (the README's own map gives the hidden LR alone), a fit whose table did not record the optimizer or
    parameterization the config names (any fit of one setup is taken as the config's), and the abc form assumed
    for a config that states neither its form nor its multipliers (a plain model applies none)."""
    notes = []
    if cfg.mup is None and cfg.mode is LrMode.per_layer and not isinstance(cfg.lr, float):
        have = {role.value for k, role in given if k == "lr"}
        if missing := [r for r in ("embedding", "hidden", "readout") if r not in have]:
            notes.append(f"lr: {', '.join(missing)} not given: {'its' if len(missing) == 1 else 'their'} learning "
                         f"rate{'s are' if len(missing) > 1 else ' is'} not checked (give every layer's LR, or map "
                         f"{' and '.join(f'lr.{r}' for r in missing)})")
    if rec.source == "fit" and (unrecorded := [k for k in ("parameterization", "optimizer")
                                               if k not in (rec.group or {})]):
        notes.append(f"the fit's table has no {' or '.join(unrecorded)} column: its group is taken as the config's "
                     f"({', '.join(str(getattr(cfg, k).value) for k in unrecorded)}) on trust; a fit of another "
                     "setup would pass too")
    if cfg.mup is None and "form" not in cfg.model_fields_set and cfg.multiplier is None \
            and any(abs(s.multiplier - 1) > 1e-12 for s in rec.layers):
        notes.append("form: not given, so the run is read in the abc form, whose multipliers ("
                     + ", ".join(f"{s.layer.value} {s.multiplier:.4g}" for s in rec.layers
                                 if abs(s.multiplier - 1) > 1e-12)
                     + ") the forward must apply; a model without multipliers (nanoGPT, Hugging Face) is "
                       "form: multiplier_free")
    return notes


def recommendation(cfg: CheckConfig, fit: FitResult | None = None, group: dict[str, Any] | None = None
                   ) -> Recommendation:
    """The local answer to :func:`check_request`: the same recommendation a service gives for the same fit."""
    return recommend(check_request(cfg, None if fit is None else LOCAL_FIT, group), fit)


__all__ = ["CheckConfig", "CheckReport", "Check", "LayerValues", "RoleValues", "MupTable", "run_settings",
           "recommended_settings", "load_config", "apply_map", "validation_problems",
           "compare", "check_request", "recommendation", "FLAT_CONSTANTS", "with_constants_file"]
