"""Request and response models of the REST API that the other contracts don't already cover.

Requests forbid unknown keys, so a mistyped field is a 422 naming it rather than a silently ignored value.
Answers reuse the shared contracts: ``Recommendation`` for ``/v1/recommend``, ``FitResult`` inside ``FitPublic``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import JsonDict, JsonValue, WithJsonSchema
from pydantic_core import InitErrorDetails, PydanticCustomError

from abcscale.schemas.enums import EpsilonMode, LrMode, Optimizer, Parameterization, WeightDecayMode
from abcscale.schemas.errors import field_errors
from abcscale.schemas.fit import MAX_PARAMS, ColumnMapping, FitResult, comma_list, distinct_covariates, max_size
from abcscale.schemas.groups import Form, GroupRule, shadowed_rule
from abcscale.schemas.theory import (
    MAX_WIDTH,
    SCALE_MAX,
    SCALE_MIN,
    Alignment,
    BaseConfig,
    Constants,
    PerLayer,
    Setting,
    layers_text,
    unsigned_zero,
    warnings_text,
)
from abcscale.schemas.tune import check_file_identity


def _alignment_spec(value: Any) -> Any:
    """An alignment as the other faces read it: 'full' and 'none' in any letter case (as every enum field of a body
    takes its names, and ``Alignment.parse`` these two; "NONE" was refused as "not a string", a review); an object
    read as the Alignment it is, so a bad one is its one error (``[..., "alignment", "omega"]``), not after the
    literal's "Input should be 'full' or 'none'" too. Any other string stays the union's to refuse (the service says
    it in words: ``service.app._ALIGNMENT_TEXT``; a form field's ALPHA,OMEGA,U is read before this)."""
    if isinstance(value, str) and value.strip().lower() in ("full", "none"):
        return value.strip().lower()
    if isinstance(value, dict):
        return Alignment.model_validate(value)
    return value


#: "full", "none" (any letter case) or {alpha, omega, u}
AlignmentSpec = Annotated[Literal["full", "none"] | Alignment, BeforeValidator(_alignment_spec)]

Scalar = bool | int | float | str | None


# --- JSON types as the schema states them ------------------------------------------------------------------
# pydantic's lax mode reads "64" as 64, and the theory models' own before-steps read "1,2,3", 2 or null as a
# PerLayer (what the CLI and Python API give them). A JSON body must be what its OpenAPI schema says: each
# value's JSON type is checked against the field's annotation first. Form fields are text by nature: a
# validation ``context={"form": True}`` leaves them to pydantic's parsing.

_KINDS = {type(None): "null", bool: "boolean", int: "integer", float: "number", str: "string", dict: "object",
          list: "array"}
_NAMES = {"number": "a number", "integer": "an integer", "string": "a string", "boolean": "true/false",
          "object": "an object", "array": "a list", "null": "null"}


def json_kind(value: Any) -> str:
    """A parsed JSON value's type in the words the API's messages use ("a list", "null", "true/false")."""
    return _NAMES.get(_KINDS.get(type(value), ""), "a value")


def _admits(annotation: Any) -> set[str]:
    """The JSON types a value of ``annotation`` may have ("any" for an unconstrained one)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _admits(args[0])
    if origin in (Union, UnionType):
        return set().union(*map(_admits, args))
    if origin is Literal:
        return {_KINDS.get(type(a), "any") for a in args}
    if origin in (list, tuple, set, frozenset):
        return {"array"}
    if origin is dict or annotation is dict:
        return {"object"}
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return {"object"}
        if issubclass(annotation, Enum):
            return {"string"}
        if annotation in (int, float, str, bool, type(None)):
            return {_KINDS[annotation]} | ({"integer"} if annotation is float else set())
    return {"any"}


def _members(annotation: Any) -> list[Any]:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _members(args[0])
    return [m for a in args for m in _members(a)] if origin in (Union, UnionType) else [annotation]


def _check_json_types(value: Any, annotation: Any, path: str) -> None:
    """Raise a ``json_type`` error naming ``path`` where ``value`` has a JSON type ``annotation`` does not admit."""
    kind = _KINDS.get(type(value))
    admitted = _admits(annotation)
    if kind is None or "any" in admitted:
        return  # a Python object (a model instance from the CLI), or a field of any type
    if kind == "boolean" and "boolean" not in admitted and admitted & {"integer", "number"}:
        # in Number's words: width=True was "an integer, not true/false", base_width=True (in `base`) "a number"
        # the message formatted here, not from a context that every 422 body would then carry ({"path": ""})
        raise PydanticCustomError("number_type", f"{path + ': ' if path else ''}Input should be a number, not "
                                  "true/false")
    if kind not in admitted and not (kind == "number" and "integer" in admitted):  # 64.0 is an integer in JSON
        if {"integer", "number"} <= admitted:
            admitted -= {"integer"}
        expected = " or ".join(_NAMES[k] for k in sorted(admitted, key=list(_NAMES).index))
        raise PydanticCustomError("json_type", f"{path + ': ' if path else ''}Input should be {expected}, not "
                                  f"{_NAMES[kind]}")
    for member in _members(annotation):
        origin, args = get_origin(member), get_args(member)
        if kind == "object" and isinstance(member, type) and issubclass(member, BaseModel):
            fields = {f.alias or n: f for n, f in member.model_fields.items()} | member.model_fields
            for key, item in value.items():
                if key in fields:
                    _check_json_types(item, fields[key].annotation, f"{path}.{key}" if path else key)
        elif kind == "object" and origin is dict and args:
            for key, item in value.items():
                _check_json_types(item, args[1], f"{path}.{key}" if path else str(key))
        elif kind == "array" and origin in (list, tuple) and args:
            for i, item in enumerate(value):
                _check_json_types(item, args[0], f"{path}[{i}]")


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _json_types(cls, value: Any, info: ValidationInfo) -> Any:
        if not (info.context or {}).get("form") and info.field_name is not None:
            _check_json_types(value, cls.model_fields[info.field_name].annotation, "")
        return value


def _not_bool(value: Any) -> Any:
    # pydantic's lax mode reads true as 1 and false as 0: a width of true would be a width of 1.
    if isinstance(value, bool):
        raise PydanticCustomError("number_type", "Input should be a number, not true/false")
    # and a form field's "1_024" as 1024 ("0_0.9" as 0.9), where the calculator's fields and the API refuse Python's
    # digit separators (a review: the pages read numbers three ways)
    if isinstance(value, str) and "_" in value:
        raise PydanticCustomError("number_parsing", "Input should be a number without `_` separators (1024, not "
                                  "1_024)")
    return value


def _bools(value: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], bool]]:
    if isinstance(value, bool):
        return [(path, value)]
    if isinstance(value, dict):
        return [b for k, v in value.items() for b in _bools(v, (*path, str(k)))]
    return []


def _no_bools_inside(value: Any) -> Any:
    """Refuse true/false anywhere in a nested numeric block (``base``, per-layer tables, an alignment), each at its
    own loc (``[..., base, epsilon]``), as a misspelt number elsewhere is."""
    if found := _bools(value):
        raise ValidationError.from_exception_data("number", [InitErrorDetails(
            type=PydanticCustomError("number_type", "Input should be a number, not true/false"), loc=path,
            input=flag) for path, flag in found])
    return value


#: a number field: never true/false (everything else pydantic accepts as before, e.g. "64" from a form field)
Number = BeforeValidator(_not_bool)
#: a non-negative number read with a negative zero as zero (``-0`` printed as ``-0`` in every answer)
Unsigned = AfterValidator(lambda x: None if x is None else unsigned_zero(x))


def _integer_width(value: Any) -> Any:
    # Widths are integers. A whole float (4096.0, what a Python client's json.dumps writes for a computed width)
    # is that integer, as the CLI's --width 4096.0 reads it; 16.5 is refused with the same words everywhere
    if isinstance(value, float):
        if not value.is_integer():
            raise PydanticCustomError("width_type", f"expected an integer width, got {value}")
        return int(value)
    return value


#: a width field: an integer (a whole float such as 16.0 reads as 16; never true/false); text from a form as before
Width = BeforeValidator(_integer_width)


def _drop_nulls(data: Any, keys: tuple[str, ...]) -> Any:
    """An explicit ``null`` for the other mode's fields means "not given" (the API has always accepted it)."""
    if isinstance(data, dict) and any(k in data and data[k] is None for k in keys):
        return {k: v for k, v in data.items() if not (k in keys and v is None)}
    return data


#: at most this many user rules in a request (a model names its groups with a handful)
MAX_RULES = 256


class _Groups(_Request):
    """How the answer's parameter groups (``Recommendation.groups``) are written and which names they select."""

    form: Form = Field(Form.abc, description="abc | multiplier_free (aliases plain, multiplier-free) | mup: how "
                       "the answer's `groups` are written; the per-layer `layers` stay in the abc form")
    # a tuple, not a list: the analytic request is hashed (the service caches its answers)
    rules: tuple[GroupRule, ...] | None = Field(None, max_length=MAX_RULES, description="[{pattern, role}] tried "
                                                "before the default name rules (first match wins)")

    @field_validator("rules")
    @classmethod
    def _none_shadowed(cls, v: tuple[GroupRule, ...] | None) -> tuple[GroupRule, ...] | None:
        if v is not None and (said := shadowed_rule(v)) is not None:
            raise ValueError(said)
        return v


#: the optimizers with a decoupled weight decay (theory.rules' ``weight_decay``; schemas cannot import theory):
#: the one list behind the validators and the schema's ``if``/``then`` below
DECOUPLED_DECAY: frozenset[Optimizer] = frozenset({Optimizer.adamw, Optimizer.lion, Optimizer.muon, Optimizer.sgd})
_DECAY_NAMES: list[JsonValue] = [o.value for o in sorted(DECOUPLED_DECAY)]
_NOT_ADAMW: JsonDict = {"properties": {"optimizer": {"not": {"enum": _DECAY_NAMES}}}, "required": ["optimizer"]}


def _decay_needs_adamw(v: float | None, info: ValidationInfo) -> float | None:
    # adamw, lion and muon decay (decoupled: abcscale.theory.rules), sgd by its L2 term; 0 means none
    opt = info.data.get("optimizer")
    if v and opt is not None and opt not in DECOUPLED_DECAY:
        names = sorted(o.value for o in DECOUPLED_DECAY)
        raise ValueError(f"{opt.value} has no weight decay that abcscale transfers, coupled or independent (its L2 "
                         f"term would pass through its normalisation); use {', '.join(names[:-1])} or {names[-1]} "
                         "(sgd: its L2 term), or leave it out")
    return v


class AnalyticRecommend(_Groups):
    """Settings at ``width`` from what was tuned at ``base.width``: the analytic transfer (theory)."""

    model_config = ConfigDict(json_schema_extra={"if": _NOT_ADAMW, "then": {
        "properties": {"base": {"properties": {"weight_decay": {"const": 0}}}}}})

    parameterization: Parameterization
    optimizer: Optimizer
    alignment: AlignmentSpec = Field("full", description="'full', 'none' (any letter case) or {alpha, omega, u}")
    lr_mode: LrMode = LrMode.per_layer
    width: Annotated[int, Number, Width] = Field(gt=0, le=MAX_WIDTH, description="target width (model dim D)")
    base: BaseConfig = Field(description="what was tuned at the base width")

    @model_validator(mode="before")
    @classmethod
    def _nulls(cls, data: Any) -> Any:
        data = _drop_nulls(data, ("fit_id", "group", "constants", "tuned"))
        if isinstance(data, dict) and ("group" in data or "constants" in data):
            raise ValueError("`group` and `constants` go with `fit_id`; with `base`, put constants in `base`")
        return data

    _strict_blocks = field_validator("base", "alignment", mode="before")(_no_bools_inside)

    @field_validator("base", mode="before")
    @classmethod
    def _base_integer_width(cls, v: Any) -> Any:
        if isinstance(v, dict) and isinstance(w := v.get("width"), float) and not w.is_integer():
            raise field_errors("BaseConfig", {"width": f"expected an integer width, got {w}"}, v)
        return v

    @field_validator("base")
    @classmethod
    def _base_width(cls, v: BaseConfig) -> BaseConfig:
        if v.width > MAX_WIDTH:
            raise ValueError(f"base.width must be <= {MAX_WIDTH}")
        return v


class FitRecommend(_Groups):
    """Settings at ``width`` from the stored fit ``fit_id``: its fitted LR, theory's per-layer exponents.

    ``parameterization``, ``optimizer``, ``lr_mode`` and ``alignment`` narrow the fit's group as ``group`` does
    (``abcscale.usecases.selector_from``), and stand in for columns the fit's table lacks.
    """

    fit_id: str = Field(min_length=1, max_length=64, description="id of a stored fit")
    width: Annotated[int, Number, Width] = Field(gt=0, le=MAX_WIDTH, description="target width (model dim D)")
    parameterization: Parameterization | None = Field(None, description="selects the fit's group")
    optimizer: Optimizer | None = Field(None, description="selects the fit's group")
    alignment: AlignmentSpec | None = Field(None, description="selects the fit's group when given")
    lr_mode: LrMode | None = Field(None, description="selects the fit's group, and says the mode of a table "
                                   "without an lr_mode column (required then)")
    group: dict[str, str | int | float | bool] | None = Field(
        None, description="pick the fit's group by its column values")
    constants: Constants | None = Field(
        None, description="constants and epsilon to apply; a kind not given (gamma, init_scale, multiplier, epsilon, "
        "epsilon_mode) is the fit's: swept, or what its runs trained with, else the default")
    strict: bool = Field(False, description="answer 422 when the fitted band is unreliable (`band.unreliable` "
                         "names why), as `abcscale recommend --fit FIT --strict`")

    # ``group`` may hold true/false (a boolean group column); the numeric blocks may not
    _strict_blocks = field_validator("constants", "alignment", mode="before")(_no_bools_inside)

    @model_validator(mode="before")
    @classmethod
    def _nulls(cls, data: Any) -> Any:
        return _drop_nulls(data, ("base", "tuned"))


class FitPredict(_Request):
    """LR* at ``size`` (and covariate values ``at``) from the stored fit in the path, without its table: what
    ``abcscale fit --target-size N --at ...`` would have predicted (``abcscale predict``)."""

    size: Annotated[float, Number] = Field(
        gt=0, allow_inf_nan=False, description="the size to predict at: a width (a whole number up to 2**40), or a "
        f"parameter count for a fit of size_kind params (up to {MAX_PARAMS:.0e})",
        json_schema_extra={"maximum": MAX_PARAMS})
    at: dict[str, Annotated[float, Number]] | None = Field(
        None, max_length=8, description="covariate values to predict at (a fit with covariates: its joint law), "
        "e.g. {\"D\": 1e10}; covariates left out sit at their bases")
    group: dict[str, str | int | float | bool] | None = Field(
        None, description="pick the fit's group (or joint law) by its column values")
    strict: bool = Field(False, description="answer 422 when the prediction is unreliable (naming why), as "
                         "`abcscale predict --strict`")
    # the bound is the fit's size kind's (2**40 for a width, 1e18 for a parameter count), checked with the fit:
    # a width fit asked at 1e19 was told "at most 1e+18" (a review)


#: ``ALPHA,OMEGA,U`` within the exponents' ranges (alpha and u in [0, 2], omega in [0, 1/2]), as a constants file
#: writes a custom alignment: the schema says what the file's text may be, so that every string it allows is read
_TWO, _HALF = r"(?:[01](?:\.\d*)?|2(?:\.0*)?|\.\d+)", r"(?:0(?:\.(?:[0-4]\d*|50*)?)?|\.(?:[0-4]\d*|50*))"
_ALIGNMENT_TEXT = rf"^ *{_TWO} *, *{_HALF} *, *{_TWO} *$"


def _with_alignment_text(schema: JsonDict) -> None:
    """The field's schema with the file's ``ALPHA,OMEGA,U`` text beside 'full' / 'none' and the object."""
    options = schema["anyOf"]
    assert isinstance(options, list)
    options.insert(1, {"type": "string", "pattern": _ALIGNMENT_TEXT,
                       "description": "a custom alignment as the file writes it"})


class TunedFile(_Request):
    """What ``POST /v1/recommend`` reads from a constants file (``abcscale tune --out``, sent as it is): the beta
    and constants tuned at ``base_width`` for one parameterization x optimizer. The file's other keys (its
    provenance: settings, trials, transfer checks) are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True, json_schema_extra={"if": _NOT_ADAMW, "then": {
        "properties": {"constants": {"properties": {"weight_decay": {"const": 0}}}}}})

    kind: Literal["abcscale.tuned-constants"] = Field(description="marks a constants file from `abcscale tune`")
    parameterization: Parameterization
    optimizer: Optimizer
    alignment: AlignmentSpec = Field(json_schema_extra=_with_alignment_text)
    lr_mode: LrMode = Field(description="the LR mode the search trained in: the request's default")
    optimizer_variant: str | None = Field(None, max_length=64, description="the runner's variant trained")
    version: int | None = Field(None, description="the file's format version")

    @model_validator(mode="after")
    def _identity(self) -> TunedFile:  # as a file read from disk is checked (abcscale.usecases.tune.load_constants)
        check_file_identity(self.version, self.optimizer, self.optimizer_variant)
        return self
    base_width: Annotated[int, Number, Width] = Field(gt=0, le=MAX_WIDTH, description="the width tuned at")
    beta: Annotated[float, Number] = Field(ge=SCALE_MIN, le=SCALE_MAX, description="the tuned base LR")
    # required, as the file always has it: a missing (or misspelt) key was the default constants, silently
    constants: Constants = Field(description="the tuned base-width constants")

    _strict_blocks = field_validator("constants", "alignment", mode="before")(_no_bools_inside)

    @field_validator("alignment", mode="before")
    @classmethod
    def _files_own_text(cls, v: Any) -> Any:
        """The file writes a custom alignment as ``tune -a`` took it, ``"ALPHA,OMEGA,U"`` (``TunedConstants``): the
        file "as it is" was refused for it where ``recommend --constants`` read it (a review)."""
        if not isinstance(v, str) or v.strip().lower() in ("full", "none"):
            return v
        try:
            return Alignment.parse(v)
        except ValidationError as exc:  # a number out of its range
            # formatted here: a template's context would read a "{reason}" in the user's text as a placeholder
            reason = exc.errors(include_url=False)[0]["msg"]
            raise PydanticCustomError("alignment", "ALPHA,OMEGA,U with alpha and u in [0, 2], omega in [0, 1/2], "
                                      f"got {v[:40]} ({reason})") from None
        except ValueError:
            raise PydanticCustomError("alignment", "'full', 'none' or ALPHA,OMEGA,U (three numbers, e.g. "
                                      f"0.75,0.5,0.75), got {v[:40]}") from None


class TunedRecommend(_Groups):
    """Settings at ``width`` from a constants file (``tuned``): the analytic transfer of its beta and constants,
    as ``abcscale recommend --constants FILE``."""

    tuned: TunedFile = Field(description="a constants file from `abcscale tune`, as it is")
    width: Annotated[int, Number, Width] = Field(gt=0, le=MAX_WIDTH, description="target width (model dim D)")
    lr_mode: LrMode | None = Field(None, description="default: the file's `lr_mode`")
    # as `recommend --constants FILE -p P -o O -a A`: the file's setup, said again, must be the file's (constants hold
    # for the setup they were tuned for); a body written like an analytic one with `tuned` in place of `base` reads
    parameterization: Parameterization | None = Field(None, description="the file's, if given (must agree)")
    optimizer: Optimizer | None = Field(None, description="the file's, if given (must agree)")
    alignment: AlignmentSpec | None = Field(None, description="the file's, if given (must agree)")

    _strict_alignment = field_validator("alignment", mode="before")(_no_bools_inside)

    @model_validator(mode="before")
    @classmethod
    def _nulls(cls, data: Any) -> Any:
        # as the other two sources take the others' fields as null (a review: "tuned": null beside "base" was an
        # extra input, "fit_id": null beside "tuned" too)
        return _drop_nulls(data, ("base", "fit_id", "group", "constants"))


def _source(data: Any) -> str | None:
    """``analytic`` with ``base``, ``fit`` with ``fit_id``; neither or both is an error (None)."""
    get = data.get if isinstance(data, dict) else lambda k: getattr(data, k, None)
    base, fit_id = get("base") is not None, get("fit_id") is not None
    return None if base == fit_id else "analytic" if base else "fit"


#: ``POST /v1/recommend``'s body: one of the two sources, told apart by which of ``base``/``fit_id`` it has.
RecommendRequest = Annotated[
    Annotated[AnalyticRecommend, Tag("analytic")] | Annotated[FitRecommend, Tag("fit")],
    Discriminator(_source, custom_error_type="source",
                  custom_error_message="give exactly one of `base` (analytic transfer) or `fit_id` (a stored fit)"),
]


def _body_source(data: Any) -> str | None:
    """:func:`_source`, or ``tuned`` with ``tuned`` alone; more than one source is an error (None)."""
    get = data.get if isinstance(data, dict) else lambda k: getattr(data, k, None)
    if get("tuned") is None:
        return _source(data)
    return "tuned" if get("base") is None and get("fit_id") is None else None


#: ``POST /v1/recommend``'s body: :data:`RecommendRequest`, or a constants file to transfer (``tuned``).
RecommendBody = Annotated[
    Annotated[AnalyticRecommend, Tag("analytic")] | Annotated[FitRecommend, Tag("fit")]
    | Annotated[TunedRecommend, Tag("tuned")],
    Discriminator(_body_source, custom_error_type="source",
                  custom_error_message="give exactly one of `base` (analytic transfer), `fit_id` (a stored fit) or "
                  "`tuned` (a constants file from `abcscale tune`)"),
]


class FitOptions(_Request):
    """Column roles and fit settings, as JSON fields or multipart form fields (the CLI's ``abcscale fit`` flags).

    Omitted column keys keep the sweep-table contract's names (``width``, ``beta``, ``seed``); an omitted loss
    column is the held-out ``eval_loss`` where the table has it, else ``final_loss``.
    """

    name: str | None = Field(None, max_length=200, description="a label for the stored fit")
    size_col: str | None = Field(None, min_length=1, max_length=200, description="width column (null: width)")
    lr_col: str | None = Field(None, min_length=1, max_length=200, description="learning-rate column (null: beta)")
    loss_col: str | None = Field(None, min_length=1, max_length=200, description="loss column (null: eval_loss "
                                 "where the table has it, else final_loss)")
    seed_col: str | None = Field(None, max_length=200, description="seed column (null: none)")
    group_cols: list[str] | None = Field(None, max_length=32, description="grouping columns (a form field: 'a,b')")
    diverged_col: str | None = Field(None, max_length=200, description="divergence flag column (null: none)")
    constant_cols: list[str] | None = Field(None, max_length=32,
                                            description="swept per-layer constant columns (a form field: 'a,b')")
    # before the sizes: their bound is the size kind's (validated in field order, _size_bound reads it)
    size_kind: Literal["width", "params"] = Field("width", description="what the size column counts: width, or "
                                                  "parameters (labels and messages say size)")
    # the schema's maximum is the larger (a parameter count's); a width fit's 2**40 is _size_bound's
    target_width: Annotated[int | None, Number, Width] = Field(
        None, gt=0, description=f"predict the LR at this width (at most {MAX_WIDTH}, 2**40; with size_kind params "
        f"this parameter count, at most {MAX_PARAMS:.0e})", json_schema_extra={"maximum": MAX_PARAMS})
    base_width: Annotated[int | None, Number, Width] = Field(
        None, gt=0, description="width the constant C refers to (with size_kind params a parameter count; bounded "
        "as target_width)", json_schema_extra={"maximum": MAX_PARAMS})
    alignment: AlignmentSpec | None = Field(None, description="alignment used for the theory exponent")
    n_boot: Annotated[int, Number] = Field(1000, ge=20, le=20000, description="bootstrap resamples")
    seed: Annotated[int, Number] = Field(0, ge=0, le=2**32 - 1, description="bootstrap seed")
    # a floor: 1e-320 (a subnormal) was taken as a "1e-318 % interval"; below 1% an interval is a point
    confidence_level: Annotated[float, Number] = Field(0.95, ge=0.01, lt=1, allow_inf_nan=False,
                                                       description="level of every interval, from 0.01 to under 1")
    covariates: list[str] | None = Field(None, max_length=8, description="numeric axes fitted in one joint law "
                                         "with the size, e.g. tokens and batch size (a form field: 'a,b')")
    derive: list[str] | None = Field(None, max_length=8, description="derived columns 'NAME=A/B' or 'NAME=A*B' "
                                     "(B a column or a positive number: 'width=width_mult*256'), optionally ':round' "
                                     "or ':log2round', or 'NAME=A' (a copy: 'parameterization=config.param'; a form "
                                     "field: comma-separated)")
    at: dict[str, Annotated[float, Number]] | None = Field(
        None, max_length=8, description="covariate values to predict at with target_width (the target size), "
        "e.g. {\"D\": 1e10}; covariates left out sit at their bases")
    blowup: Annotated[float, Number] = Field(1.5, ge=0, le=1e6, allow_inf_nan=False, description="a finite loss "
                                             "above this multiple of its curve's best, at a larger LR, counts as "
                                             "diverged (0: off)")
    strict: bool = Field(False, description="answer 422 when a prediction is unreliable (naming the group and why)")
    drop_cut_short: bool = Field(False, description="leave out runs that stopped at a lower step count than the rest "
                                 "of their curve (a step column such as _step; otherwise named in a warning), naming "
                                 "them in a warning")
    parameterization: Parameterization | None = Field(None, description="the runs' parameterization, for a table "
                                                      "without that column (theory's exponent and prior need it; "
                                                      "as `abcscale fit -p`)")
    optimizer: Optimizer | None = Field(None, description="the runs' optimizer, for a table without that column")
    lr_mode: LrMode | None = Field(None, description="how the runs set their LRs (global or per_layer), for a "
                                   "table without that column")

    _strict_blocks = field_validator("alignment", mode="before")(_no_bools_inside)

    @field_validator("target_width", "base_width")
    @classmethod
    def _size_bound(cls, v: int | None, info: ValidationInfo) -> int | None:
        """A width up to 2**40 (pydantic's words, as every width field says them); a parameter count (size_kind
        params) up to MAX_PARAMS: a 2T-parameter target was refused at a width's bound (a review)."""
        kind = info.data.get("size_kind", "width")
        bound, words = max_size(kind)
        if v is not None and v > bound:
            if kind == "params":
                raise PydanticCustomError("less_than_equal", "Input should be less than or equal to {words}, a "
                                          "parameter count's bound", {"le": bound, "words": words})
            raise PydanticCustomError("less_than_equal", "Input should be less than or equal to {le}", {"le": bound})
        return v

    def setup(self) -> dict[str, str]:
        """The theory setup given for a table that lacks its columns (``usecases.fits.with_setup``)."""
        return {k: getattr(self, k).value for k in ("parameterization", "optimizer", "lr_mode")
                if getattr(self, k) is not None}

    @field_validator("group_cols", "constant_cols", "covariates", "derive", mode="before")
    @classmethod
    def _comma_lists(cls, v: Any, info: ValidationInfo) -> Any:
        """A form field, a flag or a Python caller gives the names as one ``'a,b'`` string ("" = none); a JSON body
        as its schema's list: a string there ("" from an unset template variable) silently fitted every setup as
        one group (a review)."""
        if isinstance(v, str) and (info.context or {}).get("json"):
            # derive's items are no names (a review)
            items = ("a list of NAME=A/B, NAME=A*B or NAME=A specs, e.g. [\"tpp=D/N:round\"]"
                     if info.field_name == "derive" else "a list of names, e.g. [\"a\", \"b\"]")
            raise PydanticCustomError("json_type", f"Input should be {items} ([] for none), not a string ('a,b' is "
                                      "the CLI's flag and a form field's)")
        return comma_list(v)

    @field_validator("alignment", mode="before")
    @classmethod
    def _alignment_text(cls, v: Any, info: ValidationInfo) -> Any:
        """A form field (the page's upload, a multipart ``POST /v1/fits``) gives custom exponents as
        ``'ALPHA,OMEGA,U'``, as ``abcscale fit --alignment`` does; JSON gives ``{alpha, omega, u}``."""
        form = bool((info.context or {}).get("form"))
        if not isinstance(v, str):
            return v
        if v.strip().lower() in ("full", "none"):  # any letter case, a form field's or JSON's, as the CLI's
            return v.strip().lower()
        if not form:
            raise PydanticCustomError("json_type", "Input should be 'full', 'none' or an object {alpha, omega, u}, "
                                      "not a string ('ALPHA,OMEGA,U' is the CLI's --alignment and a form field's)")
        try:
            return Alignment.parse(v)
        except ValidationError as exc:  # a number out of its range
            raise ValueError(f"'full', 'none' or ALPHA,OMEGA,U with alpha and u in [0, 2], omega in [0, 1/2], got "
                             f"{v[:40]!r} "
                             f"({exc.errors(include_url=False)[0]['msg']})") from None
        except ValueError:
            raise ValueError(f"'full', 'none' or ALPHA,OMEGA,U (three numbers, e.g. 0.75,0.5,0.75), got "
                             f"{v[:40]!r}") from None

    _distinct_covariates = field_validator("covariates")(distinct_covariates)

    @field_validator("at", mode="before")
    @classmethod
    def _pairs(cls, v: Any, info: ValidationInfo) -> Any:
        """A form field gives the values as one ``'D=1e10,batch_size=64'`` string; a JSON body as an object."""
        if not isinstance(v, str):
            return v
        if not (info.context or {}).get("form"):
            raise PydanticCustomError("json_type", "Input should be an object of covariate values, e.g. "
                                      "{\"tokens\": 1e10}, not a string ('NAME=VALUE' pairs are the CLI's --at "
                                      "and a form field's)")
        out = {}
        for part in filter(None, (p.strip() for p in v.split(","))):
            name, sep, value = part.partition("=")
            if not sep or not name.strip():
                raise ValueError(f"expected NAME=VALUE pairs, e.g. D=1e10, got {part!r}")
            if name.strip() in out:  # as --at: the last one won in silence (a review)
                raise ValueError(f"{name.strip()}: given twice; each covariate once")
            out[name.strip()] = value.strip()
        return out

    @field_validator("strict")
    @classmethod
    def _strict_needs_target(cls, v: bool, info: ValidationInfo) -> bool:
        # a gate that could never fail is a mistake, not a pass (the CLI's --strict says the same)
        if v and "target_width" in info.data and info.data["target_width"] is None:  # not one that failed its own
            raise ValueError("refuses an unreliable prediction, and without target_width there is none to check; "
                             "give the width you will train at")
        return v

    @field_validator("blowup")
    @classmethod
    def _blowup(cls, v: float) -> float:
        if v != 0 and not v > 1:
            raise ValueError(f"must be above 1 (or 0 for off), got {v:g}")
        return v

    @field_validator("at")
    @classmethod
    def _positive(cls, v: dict[str, float] | None, info: ValidationInfo) -> dict[str, float] | None:
        if v is not None and (bad := [k for k, x in v.items() if not x > 0 or x == float("inf")]):
            raise ValueError(f"{', '.join(bad)}: covariate values must be positive finite numbers")
        # said at `at` (a model-level check named only the body, and echoed the whole request); a covariates list
        # that failed its own check is not in info.data, and has its own error
        covs = info.data.get("covariates") if "covariates" in info.data else None
        if v and "covariates" in info.data and (bad := [k for k in v if k not in (covs or [])]):
            raise ValueError(f"{', '.join(bad)} is not a covariate (covariates: {', '.join(covs or []) or 'none'})")
        return v

    def mapping(self) -> ColumnMapping:
        # a null (or a form's empty field) for a column every table has is the contract's name, as an omitted key:
        # passed on, it was a 422 holding pydantic's multi-line dump of ColumnMapping (a review); a null seed or
        # divergence column means the table has none
        keys = {k for k in set(ColumnMapping.model_fields) & self.model_fields_set
                if getattr(self, k) is not None or k not in _REQUIRED_COLUMNS}
        return ColumnMapping(**{k: getattr(self, k) for k in keys})


#: the column roles every table has: null for one of them means its default name
_REQUIRED_COLUMNS = ("size_col", "lr_col", "loss_col")


class FitCreate(FitOptions):
    """A batch fit from rows given inline (one object per training run)."""

    rows: list[dict[str, Scalar | list[Any] | dict[str, Any]]] = Field(
        min_length=1, description="the sweep table, one object per run; a list or object cell (a run's tags, a "
                                  "config) is read as its JSON text, as a parquet list column is")


class FitSummary(BaseModel):
    """A stored fit without its result (list entries)."""

    id: str
    name: str | None = None
    created_at: datetime
    n_rows: int
    n_groups: int
    input_hash: str

    @field_validator("created_at")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        # SQLite hands back naive datetimes; they were stored as UTC.
        return v if v.tzinfo is not None else v.replace(tzinfo=UTC)


class FitPublic(FitSummary):
    """A stored fit: its id, where its plots are, and the FitResult (the JSON of ``abcscale fit --json``)."""

    plots: dict[str, str] = Field(default_factory=dict, description="plot name -> URL path of its PNG")
    result: FitResult


class FitsPublic(BaseModel):
    """A page of stored fits, newest first; ``count`` is the total."""

    data: list[FitSummary]
    count: int


class ConvertRequest(_Request):
    """A setting in one parameterization expressed in another (``abcscale theory convert``).

    The setting at ``width`` is the analytic one from ``base_lr`` at ``base_width``, with any of
    ``lr``, ``multiplier``, ``init_std`` replaced by actual per-layer values.
    """

    # "weight_decay only with adamw" (``_adamw_only``) in the schema's words: other optimizers take 0 or null
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, json_schema_extra={
        "if": _NOT_ADAMW, "then": {"properties": {"weight_decay": {"anyOf": [{"const": 0}, {"type": "null"}]}}}})

    optimizer: Optimizer
    source: Parameterization = Field(alias="from", description="parameterization the setting is in")
    target: Parameterization = Field(alias="to", description="parameterization to express it in")
    width: Annotated[int, Number, Width] = Field(gt=0, le=MAX_WIDTH)
    alignment: AlignmentSpec = "full"
    base_width: Annotated[int | None, Number, Width] = Field(None, gt=0, le=MAX_WIDTH,
                                                      description="base width of base_lr (default: width)")
    base_lr: Annotated[float, Number] = Field(1e-3, ge=SCALE_MIN, le=SCALE_MAX)
    lr: PerLayer | None = Field(None, description="actual per-layer LRs; a layer left out keeps its analytic LR")
    multiplier: PerLayer | None = Field(None, description="actual multipliers; a layer left out keeps its "
                                        "analytic one")
    init_std: PerLayer | None = Field(None, description="actual init stds; a layer left out keeps its analytic "
                                      "one")
    epsilon: Annotated[float, Field(ge=0, le=SCALE_MAX), Number, Unsigned] | PerLayer | None = Field(
        None, description="Adam epsilon: one number for every layer, or per layer {embedding, hidden, readout} (a "
        "converted setting's, to convert it back; a layer left out keeps 1e-8)")
    weight_decay: Annotated[float | None, Number, Unsigned] = Field(
        None, ge=0, le=SCALE_MAX, description="AdamW decoupled weight decay at base_width, every layer "
        "(at `width` itself when base_width is not given); only with optimizer adamw, lion, muon or sgd")
    weight_decay_mode: WeightDecayMode = Field(WeightDecayMode.coupled, description="coupled (the step subtracts "
                                               "lr * wd * W: torch, optax) | independent (wd * W)")

    @model_validator(mode="before")
    @classmethod
    def _beta(cls, data: Any) -> Any:
        """``beta``, recommend's name for the base LR, is ``base_lr`` here (the Python ``convert(beta=)`` too)."""
        if isinstance(data, dict) and "beta" in data:
            beta = data["beta"]
            # at the key the client sent (its loc: ["body", "beta"]), not at base_lr, which it did not send
            if "base_lr" in data:
                raise field_errors(cls.__name__, {"beta": "the same as base_lr; give one"}, data)
            if isinstance(beta, bool) or not isinstance(beta, int | float) or not SCALE_MIN <= beta <= SCALE_MAX:
                raise field_errors(cls.__name__, {"beta": f"must be a number from {SCALE_MIN:g} to {SCALE_MAX:g}, "
                                                          f"got {beta!r}"}, data)
            data = {("base_lr" if k == "beta" else k): v for k, v in data.items()}
        return data

    _strict_blocks = field_validator("alignment", "lr", "multiplier", "init_std", mode="before")(_no_bools_inside)

    _adamw_only = field_validator("weight_decay")(_decay_needs_adamw)


class ConvertResponse(BaseModel):
    """The same JSON as ``abcscale theory convert --json`` (dumped by alias: ``from``, ``to``)."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    optimizer: Optimizer
    source_parameterization: str = Field(alias="from")
    target_parameterization: str = Field(alias="to")
    width: int
    k: int
    symmetric: bool
    source: Setting
    converted: Setting
    theta: dict[str, float]
    c_from: dict[str, float]
    c_to: dict[str, float]
    weight_decay_mode: WeightDecayMode | None = Field(
        None, description="the form of the layers' weight_decay; None for an optimizer without decoupled decay")
    warnings: list[str]

    def summary(self) -> str:
        """The conversion in a few lines: from and to, the width, each layer type's converted settings."""
        head = (f"{self.optimizer.value}: {self.source_parameterization} -> {self.target_parameterization} at width "
                f"{self.width}" + (" (the same training: symmetric)" if self.symmetric else ""))
        lines = [*layers_text(self.converted.layers), *warnings_text(self.warnings)]
        return "\n".join([head, *(f"  {line}" for line in lines)])

    def __repr__(self) -> str:  # a notebook showed every field, 1,700 characters (session 81)
        return f"ConvertResponse({self.summary()})"



class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str


__all__ = [
    "RecommendRequest", "RecommendBody", "TunedRecommend", "TunedFile",
    "AnalyticRecommend", "FitRecommend", "FitOptions", "FitCreate", "FitSummary", "FitPublic",
    "FitsPublic", "FitPredict", "ConvertRequest", "ConvertResponse", "Health", "AlignmentSpec", "MAX_WIDTH",
]


# --- microsoft/mup in and out (``abcscale mup``, ``POST /v1/theory/from-mup`` and ``/to-mup``) ---------------

from abcscale.schemas.groups import ROLES, SPEC_ROLES, MupSetup, Role, RoleSetting  # noqa: E402

# mup's numbers become ratios of each other (constants relative to the hidden LR) times width factors: a
# narrower range keeps those ratios inside [SCALE_MIN, SCALE_MAX], the range of the constants they make.
MUP_MIN, MUP_MAX = 1e-10, 1e10
_Positive = Annotated[float, Field(ge=MUP_MIN, le=MUP_MAX)]
# One number, or a table by role; ``lr`` needs every role (``init_std`` any of them), and the schema says so.
_ROLE_NUMBER = {"type": "number", "minimum": MUP_MIN, "maximum": MUP_MAX}
# ``fixed`` (a readout's bias: no width-sized axis) is optional: it shares the vector-like group's number unless given
_LR_BY_ROLE = {"type": "object", "additionalProperties": False, "required": [r.value for r in ROLES],
               "properties": {r.value: _ROLE_NUMBER for r in SPEC_ROLES}}
PerRole = _Positive | Annotated[dict[Role, _Positive], WithJsonSchema(_LR_BY_ROLE)]
# init stds: the three layers only (vector-like and fixed parameters keep their init: gains 1, biases 0)
SomeRoles = _Positive | Annotated[dict[Role, _Positive], WithJsonSchema({**_LR_BY_ROLE, "required": [], "properties": {
    r.value: _ROLE_NUMBER for r in (Role.embedding, Role.hidden, Role.readout)}})]
_Epsilon = Annotated[float, Field(ge=0, le=SCALE_MAX), Number, Unsigned]
_EPS_BY_ROLE = {**_LR_BY_ROLE, "required": [], "properties": {
    r.value: {"type": "number", "minimum": 0, "maximum": SCALE_MAX} for r in SPEC_ROLES}}


class MupImportRequest(_Request):
    """A microsoft/mup setup to carry into abcscale: what its user passes to ``set_base_shapes`` (the base
    width), MuAdam/MuSGD (``lr``, one number or per role), ``MuReadout(output_mult=...)`` and ``mup.init``
    (``init_std`` at the base width, per role)."""

    optimizer: Optimizer
    base_width: Annotated[int, Number, Width] = Field(gt=0, le=MAX_WIDTH, description="set_base_shapes' base width")
    width: Annotated[int | None, Number, Width] = Field(None, gt=0, le=MAX_WIDTH,
                                                 description="the width the run trains at (default: base_width)")
    lr: PerRole = Field(description="what MuAdam/MuSGD is given: one number, or per role "
                                    "(embedding, hidden, readout, vector)")
    output_mult: Annotated[float, Number] = Field(1.0, ge=MUP_MIN, le=MUP_MAX,
                                                  description="MuReadout's output_mult")
    init_std: SomeRoles | None = Field(None, description="init stds at the base width (embedding, hidden, readout); "
                                     "a hidden std is for fan-in = base width")
    epsilon: _Epsilon | Annotated[dict[Role, _Epsilon], WithJsonSchema(_EPS_BY_ROLE)] | None = Field(
        None, description="Adam epsilon (mup keeps it unscaled): one number, or each param group's eps per role "
                          "(embedding, hidden, readout, vector; a role left out has none, as Muon's hidden groups)")
    weight_decay: Annotated[float | None, Number, Unsigned] = Field(
        None, ge=0, le=SCALE_MAX, description="MuAdamW's or MuSGD's decay; only with an optimizer that decays (adamw, "
        "lion, muon, sgd)")
    epsilon_mode: EpsilonMode = Field(
        EpsilonMode.constant, description="how the constants carry epsilon to other widths: constant (one epsilon in "
        "abcscale's form, nearest mup's one) or per_layer (the theory's rule); the two agree at the base width")

    model_config = ConfigDict(json_schema_extra={
        "if": _NOT_ADAMW, "then": {"properties": {"weight_decay": {"anyOf": [{"const": 0}, {"type": "null"}]}}}})

    _strict_blocks = field_validator("lr", "init_std", "epsilon", mode="before")(_no_bools_inside)
    _adamw_only = field_validator("weight_decay")(_decay_needs_adamw)

    @field_validator("lr", "init_std")
    @classmethod
    def _positive(cls, v: SomeRoles | None) -> SomeRoles | None:
        values = v.values() if isinstance(v, dict) else [] if v is None else [v]
        if not all(0 < x < float("inf") for x in values):
            raise ValueError("must be positive finite numbers")
        return v

    @field_validator("init_std")
    @classmethod
    def _matrix_roles(cls, v: SomeRoles | None) -> SomeRoles | None:
        if isinstance(v, dict) and (kept := [r.value for r in v if r in (Role.vector, Role.fixed)]):
            raise ValueError(f"{', '.join(kept)}: vector-like and fixed parameters keep their init (gains 1, biases "
                             "0), so no std is read for them; give embedding, hidden and readout")
        return v

    @field_validator("lr")
    @classmethod
    def _every_role(cls, v: PerRole) -> PerRole:
        missing = [r.value for r in ROLES if isinstance(v, dict) and r not in v]
        if missing:
            raise ValueError(f"give one number or every role (embedding, hidden, readout, vector); missing "
                             f"{', '.join(missing)}")
        return v

    def setup(self) -> MupSetup:
        """The :class:`~abcscale.schemas.groups.MupSetup` at ``width`` (the base width when not given)."""
        return MupSetup.model_validate({  # MupSetup reads one number as every role
            "optimizer": self.optimizer, "base_width": self.base_width, "width": self.width or self.base_width,
            "lr": self.lr, "output_mult": self.output_mult, "init_std": self.init_std or {}, "epsilon": self.epsilon,
            "weight_decay": self.weight_decay})


class MupImport(BaseModel):
    """abcscale's terms for a microsoft/mup setup (``abcscale mup import``, ``POST /v1/theory/from-mup``)."""

    setup: MupSetup = Field(description="the mup setup as read, at its width")
    constants: BaseConfig = Field(description="abcscale's muP constants that reproduce it at every width")
    recommend: AnalyticRecommend = Field(description="the equivalent POST /v1/recommend body")
    command: str = Field(description="the equivalent `abcscale recommend` command line")
    warnings: list[str] = Field(default_factory=list)

    # unannotated return: annotated, the response's JSON schema became a bare object
    @model_serializer(mode="wrap")
    def _no_epsilon(self, handler: SerializerFunctionWrapHandler):
        """Without the epsilon an optimizer has none of (theory.groups.from_mup sets neither field for sgd, lion,
        adafactor): their defaults, dumped, read back as given and warned "epsilon: lion has no epsilon; the 1e-08
        given changes nothing" in a REST round trip (POST its ``recommend`` or ``constants`` back)."""
        data = handler(self)
        if not {"epsilon", "epsilon_mode"} & self.constants.model_fields_set:
            for part in (data.get("constants"), (data.get("recommend") or {}).get("base")):
                if isinstance(part, dict):
                    part.pop("epsilon", None)
                    part.pop("epsilon_mode", None)
        return data

    def summary(self) -> str:
        """The import in a few lines: the mup setup read, abcscale's constants for it, the equivalent command."""
        c = self.constants
        head = (f"microsoft/mup + {self.setup.optimizer.value} at base width {self.setup.base_width}"
                + (f", width {self.setup.width}" if self.setup.width is not None else "")
                + f" as muP constants: beta {c.beta:.3g} at width {c.width}")
        return "\n".join([head, f"  {self.command}", *(f"  {w}" for w in warnings_text(self.warnings))])

    def __repr__(self) -> str:  # a notebook showed every field, 2,000 characters (session 81)
        return f"MupImport({self.summary()})"



class MupExport(BaseModel):
    """A recommendation as a microsoft/mup setup (``abcscale mup export``, ``POST /v1/theory/to-mup``):
    ``setup`` is what to pass to set_base_shapes, MuAdam/MuSGD, MuReadout and mup.init; ``roles`` are the
    values that apply at ``setup.width`` (the mup form)."""

    setup: MupSetup
    roles: list[RoleSetting]
    warnings: list[str] = Field(default_factory=list)


__all__ += ["MupImportRequest", "MupImport", "MupExport"]
