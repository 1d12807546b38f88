"""Request and response models of the REST API that the other contracts don't already cover.

Requests forbid unknown keys, so a mistyped field is a 422 naming it rather than a silently ignored value.
Answers reuse the shared contracts: ``Recommendation`` for ``/v1/recommend``, ``FitResult`` inside ``FitPublic``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from abcscale.schemas.enums import EpsilonMode, LrMode, Optimizer, Parameterization
from abcscale.schemas.fit import ColumnMapping, FitResult
from abcscale.schemas.theory import Alignment, BaseConfig, PerLayer, Setting

#: widths beyond this overflow float powers long before they mean anything (2^40 ~ 1e12).
MAX_WIDTH = 2**40

AlignmentSpec = Literal["full", "none"] | Alignment
Scalar = bool | int | float | str | None


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def alignment_of(spec: AlignmentSpec) -> Alignment:
    return Alignment.parse(spec)


class FitConstants(_Request):
    """With ``fit_id``: the per-layer constants and Adam epsilon to apply (``recommend --fit``'s flags).

    Constants left at 1 are filled from the fit when it swept them.
    """

    gamma: PerLayer = Field(default_factory=PerLayer, description="per-layer LR constants gamma_l")
    init_scale: PerLayer = Field(default_factory=PerLayer, description="init std constants")
    multiplier: PerLayer = Field(default_factory=PerLayer, description="multiplier constants")
    epsilon: float = Field(1e-8, ge=0, allow_inf_nan=False, description="Adam epsilon at the base width")
    epsilon_mode: EpsilonMode = EpsilonMode.per_layer

    def as_kwargs(self) -> dict:
        return {"gamma": self.gamma, "init_scale": self.init_scale, "multiplier": self.multiplier,
                "epsilon": self.epsilon, "epsilon_mode": self.epsilon_mode.value}


class RecommendRequest(_Request):
    """Settings at ``width`` from what was tuned at ``base.width`` (theory), or from the stored fit ``fit_id``."""

    parameterization: Parameterization | None = Field(
        None, description="required with `base`; with `fit_id` it selects the fit's group")
    optimizer: Optimizer | None = Field(None, description="required with `base`; with `fit_id` it selects the group")
    alignment: AlignmentSpec = Field("full", description="'full', 'none' or {alpha, omega, u}")
    lr_mode: LrMode = LrMode.per_layer
    width: int = Field(gt=0, le=MAX_WIDTH, description="target width (model dim D)")
    base: BaseConfig | None = Field(None, description="what was tuned at the base width (analytic transfer)")
    fit_id: str | None = Field(None, min_length=1, max_length=64, description="id of a stored fit")
    group: dict[str, str | int | float | bool] | None = Field(
        None, description="with `fit_id`: pick the fit's group by its column values")
    constants: FitConstants | None = Field(None, description="with `fit_id`: constants and epsilon to apply")

    @model_validator(mode="after")
    def _one_source(self) -> RecommendRequest:
        if (self.base is None) == (self.fit_id is None):
            raise ValueError("give exactly one of `base` (analytic transfer) or `fit_id` (a stored fit)")
        if self.base is not None:
            missing = [k for k in ("parameterization", "optimizer") if getattr(self, k) is None]
            if missing:
                raise ValueError("analytic mode (`base`) needs " + " and ".join(f"`{k}`" for k in missing))
            if self.base.width > MAX_WIDTH:
                raise ValueError(f"base.width must be <= {MAX_WIDTH}")
            if self.group is not None or self.constants is not None:
                raise ValueError("`group` and `constants` go with `fit_id`; with `base`, put constants in `base`")
        return self


class FitOptions(_Request):
    """Column roles and fit settings, as JSON fields or multipart form fields (the CLI's ``abcscale fit`` flags).

    Omitted column keys keep the sweep-table contract's names (``width``, ``beta``, ``final_loss``, ``seed``).
    """

    name: str | None = Field(None, max_length=200, description="a label for the stored fit")
    size_col: str | None = Field(None, min_length=1, max_length=200, description="width column")
    lr_col: str | None = Field(None, min_length=1, max_length=200, description="learning-rate column")
    loss_col: str | None = Field(None, min_length=1, max_length=200, description="loss column")
    seed_col: str | None = Field(None, max_length=200, description="seed column (null: none)")
    group_cols: list[str] | None = Field(None, max_length=32, description="grouping columns")
    diverged_col: str | None = Field(None, max_length=200, description="divergence flag column (null: none)")
    constant_cols: list[str] | None = Field(None, max_length=32, description="swept per-layer constant columns")
    target_width: int | None = Field(None, gt=0, le=MAX_WIDTH, description="predict the LR at this width")
    base_width: int | None = Field(None, gt=0, le=MAX_WIDTH, description="width the constant C refers to")
    alignment: AlignmentSpec | None = Field(None, description="alignment used for the theory exponent")
    n_boot: int = Field(1000, ge=20, le=20000, description="bootstrap resamples")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="bootstrap seed")
    confidence_level: float = Field(0.95, gt=0, lt=1, allow_inf_nan=False)

    def mapping(self) -> ColumnMapping:
        keys = set(ColumnMapping.model_fields) & self.model_fields_set
        return ColumnMapping(**{k: getattr(self, k) for k in keys})


class FitCreate(FitOptions):
    """A batch fit from rows given inline (one object per training run)."""

    rows: list[dict[str, Scalar]] = Field(min_length=1, description="the sweep table, one object per run")


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

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    optimizer: Optimizer
    source: Parameterization = Field(alias="from", description="parameterization the setting is in")
    target: Parameterization = Field(alias="to", description="parameterization to express it in")
    width: int = Field(gt=0, le=MAX_WIDTH)
    alignment: AlignmentSpec = "full"
    base_width: int | None = Field(None, gt=0, le=MAX_WIDTH, description="base width of base_lr (default: width)")
    base_lr: float = Field(1e-3, gt=0, allow_inf_nan=False)
    lr: PerLayer | None = Field(None, description="actual per-layer LRs")
    multiplier: PerLayer | None = None
    init_std: PerLayer | None = None
    epsilon: float | None = Field(None, ge=0, allow_inf_nan=False, description="Adam epsilon, same on every layer")


class ConvertResponse(BaseModel):
    """The same JSON as ``abcscale theory convert --json``."""

    model_config = ConfigDict(populate_by_name=True)

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
    warnings: list[str]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str


__all__ = [
    "RecommendRequest", "FitConstants", "FitOptions", "FitCreate", "FitSummary", "FitPublic", "FitsPublic",
    "ConvertRequest", "ConvertResponse", "Health", "AlignmentSpec", "alignment_of", "MAX_WIDTH",
]
