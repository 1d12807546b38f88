"""Contracts of the theory engine: alignment, exponents, concrete per-layer settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Real
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from abcscale.schemas.enums import EpsilonMode, Layer, LrMode, Optimizer, Parameterization, WeightDecayMode
from abcscale.schemas.numbers import shown

#: widths beyond this overflow float powers long before they mean anything (2^40 ~ 1e12).
MAX_WIDTH = 2**40
#: the range of a tuned positive number (an LR, a constant, epsilon): inside it, no product of a handful of
#: them with width ratios up to MAX_WIDTH**2 leaves the float range, so every computed setting is finite and
#: nonzero; outside it is no setting anyone tunes. Part of the schema: the OpenAPI states it.
SCALE_MIN, SCALE_MAX = 1e-30, 1e30


def is_bool(value: object) -> bool:
    """True/false, Python's or numpy's (``np.True_`` is no ``bool``; its type is numpy's ``bool`` / ``bool_``)."""
    return isinstance(value, bool) or (type(value).__name__ in ("bool", "bool_")
                                       and type(value).__module__ == "numpy")


def _not_bool(value: Any) -> Any:
    # pydantic's lax mode reads true as 1.0 (and false as 0): `epsilon: true` in a constants file was an epsilon of 1
    # at every layer, silently (a review). Every door reads these models: CLI files, check configs, REST, Python.
    if is_bool(value):
        raise PydanticCustomError("number_type", "a number, not true/false")
    return value


def unsigned_zero(value: float) -> float:
    """``-0.0`` read as ``0.0``: an epsilon or exponent given as ``-0`` printed as ``-0`` in every answer (a fuzz)."""
    return value + 0.0  # IEEE: -0.0 + 0.0 is +0.0; every other value unchanged


#: a number field of an input model: never true/false (what else pydantic accepts stays, e.g. "1e-3" from text),
#: and never a negative zero
FloatNotBool = Annotated[float, BeforeValidator(_not_bool), AfterValidator(unsigned_zero)]
#: an integer field of an input model (a width): never true/false
IntNotBool = Annotated[int, BeforeValidator(_not_bool)]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Interval(Frozen):
    """A two-sided interval ``[low, high]`` at ``confidence_level``."""

    low: float
    high: float
    confidence_level: float = Field(0.95, gt=0, lt=1)

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high


def _shown(value: Any) -> str:
    """``repr(value)`` for a message, a long one cut to its ends (``[1] * 10000`` was a 30 KB line: a review)."""
    return shown(value)


class Alignment(Frozen):
    """Alignment exponents (docs/theory.md section 2), log base n of norm ratios.

    ``alpha`` for dW z, ``omega`` for W dz, ``u`` for dW dz. Full alignment is (1, 1/2, 1),
    no alignment (1/2, 1/2, 1/2).
    """

    alpha: FloatNotBool = Field(ge=0, le=2, allow_inf_nan=False)
    #: at most 1/2: a random init matrix's operator norm is sqrt(n) times its RMS entry, and above 1/2 every hidden
    #: layer in series would grow the activations' change by n^(omega - 1/2) (no stable exponents)
    omega: FloatNotBool = Field(ge=0, le=0.5, allow_inf_nan=False,
                         description="W dz alignment, at most 1/2 (a random init matrix's norm is sqrt(n) times its "
                                     "RMS entry; 1/2 under both full and no alignment)")
    u: FloatNotBool = Field(ge=0, le=2, allow_inf_nan=False)

    @classmethod
    def full(cls) -> Alignment:
        return cls(alpha=1.0, omega=0.5, u=1.0)

    @classmethod
    def none(cls) -> Alignment:
        return cls(alpha=0.5, omega=0.5, u=0.5)

    @property
    def name(self) -> str:
        if self == Alignment.full():
            return "full"
        if self == Alignment.none():
            return "none"
        return f"{self.alpha:g},{self.omega:g},{self.u:g}"

    @classmethod
    def parse(cls, value: Any) -> Alignment:
        """Accept ``"full"``, ``"none"``, ``"ALPHA,OMEGA,U"``, a 3-sequence, a dict or an Alignment."""
        if isinstance(value, Alignment):
            return value
        if value is None:
            return cls.full()
        if isinstance(value, dict):
            return cls.model_validate(value)
        if isinstance(value, list | tuple):
            parts = list(value)
        elif hasattr(value, "tolist") and getattr(value, "ndim", None) == 1:  # a numpy array, as PerLayer takes one
            parts = list(value.tolist())
        elif isinstance(value, str):
            key = value.strip().lower()
            if key == "full":
                return cls.full()
            if key == "none":
                return cls.none()
            parts = [p for p in key.replace(" ", "").split(",")]
        else:
            raise ValueError(f"alignment must be 'full', 'none' or 'ALPHA,OMEGA,U', got {_shown(value)}")
        if len(parts) != 3 and not isinstance(value, str):  # (1, 1) said as a short triple, not as text
            raise ValueError(f"alignment must be 'full', 'none' or a triple (alpha, omega, u), got "
                             f"{_shown(tuple(parts))} ({len(parts)} value{'' if len(parts) == 1 else 's'})")
        if len(parts) != 3:
            raise ValueError(f"alignment must be 'full', 'none' or 'ALPHA,OMEGA,U' (3 numbers), got {_shown(value)}")
        if any(isinstance(p, bool) for p in parts):
            raise ValueError(f"alignment numbers must be real numbers, not true/false, got {_shown(value)}")
        try:
            alpha, omega, u = (float(p) for p in parts)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"alignment numbers must be real numbers, got {_shown(value)}") from None
        return cls(alpha=alpha, omega=omega, u=u)


class LayerExponents(Frozen):
    """Per-layer exponents: multiplier n^-a, init std n^-b, learning rate (n/base)^-c."""

    a: FloatNotBool = Field(allow_inf_nan=False)
    b: FloatNotBool = Field(allow_inf_nan=False)
    c: FloatNotBool = Field(0.0, allow_inf_nan=False)


class ABTable(Frozen):
    """A user-defined (a, b) table, one entry per layer type (c comes from the solver)."""

    embedding: LayerExponents
    hidden: LayerExponents
    readout: LayerExponents

    def __getitem__(self, layer: Layer | str) -> LayerExponents:
        return getattr(self, Layer.parse(layer).value)


class PerLayer(Frozen):
    """Optional per-layer-type floats (gammas, multiplier or init constants); missing = 1."""

    embedding: FloatNotBool = Field(1.0, ge=SCALE_MIN, le=SCALE_MAX)
    hidden: FloatNotBool = Field(1.0, ge=SCALE_MIN, le=SCALE_MAX)
    readout: FloatNotBool = Field(1.0, ge=SCALE_MIN, le=SCALE_MAX)

    def __getitem__(self, layer: Layer | str) -> float:
        return getattr(self, Layer.parse(layer).value)

    @classmethod
    def parse(cls, value: Any) -> PerLayer:
        """Accept None (all 1), a number (all layers), ``"e,h,r"``, or a mapping keyed by layer."""
        if isinstance(value, PerLayer):
            return value
        return cls(**cls.table(value))

    @classmethod
    def table(cls, value: Any) -> dict[str, Any]:
        """What :meth:`parse` takes, as the table by layer it means, not yet validated (a model's field validates
        it, naming the layer a bad value sits at)."""
        if value is None:
            return {}
        if isinstance(value, PerLayer):
            return value.model_dump()
        if isinstance(value, bool) or isinstance(value, dict) and any(isinstance(v, bool) for v in value.values()):
            raise ValueError(f"expected numbers, not true/false: {value!r}")  # True would be 1.0 on every layer
        if isinstance(value, Real):  # numpy's scalars too
            return {"embedding": value, "hidden": value, "readout": value}
        if isinstance(value, list | tuple) or (hasattr(value, "tolist") and getattr(value, "ndim", None) == 1):
            # (e, h, r) as the CLI's 'e,h,r' (Python only: a REST body's table is an object, its JSON types checked)
            items = list(value.tolist() if hasattr(value, "tolist") else value)
            if any(isinstance(x, bool) for x in items):
                raise ValueError(f"expected numbers, not true/false: {items!r}")
            if len(items) not in (1, 3):
                raise ValueError(f"expected one number or 3 (e, h, r), got {len(items)}: {items!r}")
            e, h, r = items * 3 if len(items) == 1 else items
            return {"embedding": e, "hidden": h, "readout": r}
        if isinstance(value, str):
            parts = value.split(",")
            try:
                numbers = [float(p) for p in parts]
            except ValueError:  # float's own "could not convert string to float: 'x'" names no form
                numbers = []
            if len(parts) not in (1, 3) or len(numbers) != len(parts):
                raise ValueError(f"expected one number or 3 comma-separated numbers (e,h,r), got {value!r}")
            e, h, r = numbers * 3 if len(numbers) == 1 else numbers
            return {"embedding": e, "hidden": h, "readout": r}
        if isinstance(value, dict):
            return by_layer(value, strict=True)
        raise ValueError(f"expected a number, 'e,h,r', (e, h, r) or a table by layer, got {value!r}")


class LayerSetting(Frozen):
    """The concrete hyperparameters of one layer type at one width."""

    layer: Layer
    multiplier: float = Field(gt=0, allow_inf_nan=False)
    init_std: float = Field(gt=0, allow_inf_nan=False)
    lr: float = Field(gt=0, allow_inf_nan=False)
    epsilon: float | None = Field(None, ge=0, allow_inf_nan=False)
    weight_decay: float | None = Field(None, ge=0, allow_inf_nan=False, description="decoupled weight decay "
                                       "(AdamW; docs/theory.md section 9); None for an optimizer without it")


def layers_text(layers: Sequence[LayerSetting]) -> list[str]:
    """One line a layer type, for a result's summary: ``hidden: lr 0.00025, init std 0.0313, multiplier 1``
    (epsilon and weight decay where the optimizer has them)."""
    lines = []
    for s in layers:
        parts = [f"lr {s.lr:.3g}", f"init std {s.init_std:.3g}", f"multiplier {s.multiplier:.3g}"]
        parts += [f"epsilon {s.epsilon:.3g}"] if s.epsilon is not None else []
        parts += [f"weight decay {s.weight_decay:.3g}"] if s.weight_decay is not None else []
        lines.append(f"{s.layer.value}: {', '.join(parts)}")
    return lines


def warnings_text(warnings: Sequence[str]) -> list[str]:
    """A summary's last line: how many warnings a result carries (``.warnings`` has them)."""
    return [f"{len(warnings)} warning{'' if len(warnings) == 1 else 's'} (.warnings)"] if warnings else []


class _ByLayer:
    """``setting["hidden"]``: the LayerSetting of one layer type (for models with a ``layers`` list)."""

    if TYPE_CHECKING:
        layers: list[LayerSetting]

    def __getitem__(self, layer: Layer | str) -> LayerSetting:
        return self.abc_setting(layer)

    def __contains__(self, layer: object) -> bool:
        """``"hidden" in rec``: whether ``layer`` names one of the paper's layer types (aliases too), whatever
        form a recommendation was asked in (``rec[layer]`` is the abc form's alone). pydantic's ``__iter__``
        answered it before, over (field, value) pairs: always False (a review)."""
        if isinstance(layer, Layer):
            return True
        try:
            return isinstance(layer, str) and Layer.parse(layer) in {s.layer for s in self.layers}
        except ValueError:
            return False

    # a frozen model hashes its fields, and the layers are a list: "unhashable type: 'list'" said nothing of why
    def __hash__(self) -> int:
        raise TypeError(f"a {type(self).__name__} is not hashable (it holds lists)")

    def abc_setting(self, layer: Layer | str) -> LayerSetting:
        """One layer type's setting in the abc form (``layers``), whatever form a recommendation was asked in."""
        if isinstance(layer, str) and getattr(self, "groups", None) is not None \
                and layer.strip().lower() in ("vector", "vec", "bias", "norm", "vector_like", "fixed", "scalar"):
            # a Recommendation's table prints the vector and fixed rows
            role = "fixed" if layer.strip().lower() in ("fixed", "scalar") else "vector"
            what = "the vector-like role (biases, norm gains)" if role == "vector" else (
                "the fixed role (the readout's bias, scalars: no width-sized axis)")
            raise ValueError(f"{layer!r}: the layers are the paper's embedding, hidden and readout; {what} is in "
                             f".groups[{role!r}]")
        kind = Layer.parse(layer)
        return next(s for s in self.layers if s.layer == kind)


class Setting(_ByLayer, Frozen):
    """A whole-model setting at ``width``: one LayerSetting per layer type."""

    parameterization: Parameterization | None = None
    optimizer: Optimizer
    width: int = Field(gt=0)
    layers: list[LayerSetting]

    @field_validator("layers")
    @classmethod
    def _one_per_layer(cls, v: list[LayerSetting]) -> list[LayerSetting]:
        kinds = sorted(s.layer.value for s in v)
        if kinds != sorted(x.value for x in Layer):
            raise ValueError("layers must hold exactly one entry per layer type (embedding, hidden, readout)")
        return sorted(v, key=lambda s: list(Layer).index(s.layer))


class ExponentRow(Frozen):
    """One row of the theory table (``abcscale theory table --json``)."""

    parameterization: str
    optimizer: Optimizer
    alignment: Alignment
    layer: Layer
    a: float
    b: float
    c: float
    unique: bool
    global_c: float = Field(description="exponent of a single shared LR: the smallest c every layer can share")
    epsilon_exponent: float | None = Field(None, description="Adam per-layer epsilon exponent e_l "
                                           "(docs/theory.md s.5), for per-layer LRs")
    c_range: tuple[float, float] | None = Field(None, description="where unique is false: the range this layer's c "
                                                "spans on the optimal face (layers trade LR against each other)")
    lower_bound: float | None = Field(None, description="this layer's own smallest stable c: below c where the "
                                      "layers trade LR (it reaches it alone only by raising another layer's c), "
                                      "even where the prescription is one point (unique)")

    def __repr__(self) -> str:  # theory_table()'s list showed every field, 38,000 characters (session 81)
        return (f"ExponentRow({self.parameterization} + {self.optimizer.value}, {self.alignment.name} alignment, "
                f"{self.layer.value}: a={self.a:g}, b={self.b:g}, c={self.c:g}"
                + (f", epsilon e={self.epsilon_exponent:g}" if self.epsilon_exponent is not None else "")
                + ("" if self.unique else f", c in {self.c_range}") + ")")



class Constants(Frozen):
    """What is tuned at the base width besides the base LR: per-layer constants and Adam's epsilon.

    The one model of these constants: :class:`BaseConfig` extends it with the base width and LR, and the
    fit-based recommendation, ``abcscale check`` and the sweep spec compose it.
    """

    gamma: PerLayer = Field(default_factory=PerLayer, description="per-layer LR constants gamma_l")
    init_scale: PerLayer = Field(default_factory=PerLayer, description="init std constants sigma_l")
    multiplier: PerLayer = Field(default_factory=PerLayer, description="multiplier constants m_l")
    epsilon: FloatNotBool = Field(1e-8, ge=0, le=SCALE_MAX, description="Adam epsilon at the base width")
    epsilon_mode: EpsilonMode = Field(EpsilonMode.per_layer, description="constant | per_layer (docs/theory.md §5)")
    weight_decay: FloatNotBool = Field(0.0, ge=0, le=SCALE_MAX, description="decoupled weight decay at the base "
                                "width (adamw; docs/theory.md section 9)")
    weight_decay_mode: WeightDecayMode = Field(WeightDecayMode.coupled, description="coupled (the step subtracts "
                                               "lr * wd * W, as torch/optax AdamW) | independent (wd * W)")

    def given(self) -> dict[str, Any]:
        """The fields set explicitly (not left at their defaults), as keywords: what a model built from them keeps
        as given, so a note can tell an explicit default (``epsilon 1e-8`` to SGD) from none."""
        return {k: getattr(self, k) for k in self.model_fields_set}

    @model_validator(mode="before")
    @classmethod
    def _coerce(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for key in ("gamma", "init_scale", "multiplier"):
                if key in data and isinstance(data[key], dict):
                    try:
                        data[key] = by_layer(data[key], strict=False)
                    except ValueError as exc:
                        raise ValueError(f"{key}: {exc}") from None
                elif key in data and not isinstance(data[key], PerLayer):
                    try:  # as a table by layer, which the field validates: an error keeps its name (gamma.hidden)
                        data[key] = PerLayer.table(data[key])
                    except ValueError as exc:
                        raise ValueError(f"{key}: {exc}") from None
        return data


def by_layer(table: Mapping[Any, Any], *, strict: bool) -> dict[Any, Any]:
    """A table by layer keyed by the layers' names, their aliases read as them (``{"emb": 2}``), a layer named twice
    refused: ``{"emb": 1, "embedding": 2}`` kept the later, silently (a review, session 80). A key that names no
    layer is an error (``strict``) or kept for the model's own check to name (``gamma.foo``): a constants table by
    layer refused the aliases ``convert(lr=)`` and ``PerLayer.parse`` take."""
    def name(k: Any) -> Any:
        if strict:
            return Layer.parse(k).value
        try:
            return Layer.parse(k).value if isinstance(k, str) else k
        except ValueError:
            return k

    out: dict[Any, Any] = {}
    for k, v in table.items():
        if (layer := name(k)) in out:
            first = next(x for x in table if name(x) == layer)
            raise ValueError(f"{layer}: given twice ({first!r} and {k!r}); give it once")
        out[layer] = v
    return out


def nest_constants(data: Any, flat: Mapping[str, str] | None = None) -> Any:
    """A model's before-validation step: the flat constant keys of ``data`` moved under ``constants``.

    ``flat`` maps each flat key to its :class:`Constants` field (default: the field names themselves).
    Giving both forms at once is an error naming the flat keys, whichever model it is (a sweep spec, a
    check config): neither form silently wins.
    """
    flat = flat if flat is not None else {k: k for k in Constants.model_fields}
    if not isinstance(data, dict) or not flat.keys() & data.keys():
        return data
    given = [k for k in flat if k in data]
    if data.get("constants") is not None:
        raise ValueError("give the base-width constants under `constants` or as flat keys ("
                         + ", ".join(given) + "), not both")
    data = dict(data)
    data["constants"] = {flat[k]: data.pop(k) for k in given}
    return data


class BaseConfig(Constants):
    """What was tuned at the base width: the base LR beta and the :class:`Constants`."""

    width: IntNotBool = Field(gt=0, le=MAX_WIDTH, description="base width (model dim D) the constants were tuned at")
    beta: FloatNotBool = Field(ge=SCALE_MIN, le=SCALE_MAX, description="base learning rate tuned at `width`")


class Transfer(_ByLayer, Frozen):
    """The analytic transfer result: settings at the target width and the exponents used."""

    parameterization: str
    optimizer: Optimizer
    alignment: Alignment
    lr_mode: LrMode
    width: int
    base_width: int
    layers: list[LayerSetting]
    exponents: dict[str, LayerExponents]
    global_c: float
    unique: bool
    weight_decay_mode: WeightDecayMode | None = Field(
        None, description="the form of the layers' weight_decay; None for an optimizer without decoupled decay")
    warnings: list[str] = Field(default_factory=list)

    def summary(self) -> str:
        """The answer in a few lines: the setup, the widths, each layer type's settings, how many warnings (every
        field: ``model_dump()``)."""
        head = (f"{self.parameterization} + {self.optimizer.value} ({self.lr_mode.value} LRs, {self.alignment.name} "
                f"alignment) at width {self.width}, from base width {self.base_width}")
        return "\n".join([head, *(f"  {line}" for line in [*layers_text(self.layers), *warnings_text(self.warnings)])])

    def __repr__(self) -> str:  # a notebook showed every field, 3,500 characters (session 81)
        return f"{type(self).__name__}({self.summary()})"
