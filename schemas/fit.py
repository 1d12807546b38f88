"""Contracts of the fitter: column mapping in, FitResult out (JSON round-trippable, frozen).

Stable keys (documented in the README): ``groups[*].group``, ``exponent.estimate``, ``exponent.ci``,
``constant``, ``base_width``, ``theory_exponent``, ``consistent``, ``per_width[*].{width, lr_opt,
ci, on_edge}``, ``loo_error_octaves`` and, with a target width, ``prediction.{width, lr, ci, ci68, ci95,
safe_lr, expected_loss_penalty}``.

Every interval the fit reports at the caller's ``confidence_level`` is an :class:`Interval` that says its
level (``{"low", "high", "confidence_level"}``); only the prediction's ``ci68``/``ci95`` bands are fixed
by design and stay ``[low, high]`` pairs.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from abcscale.schemas.theory import Interval, LayerSetting


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnMapping(_Model):
    """Which columns of a user's table play which role (defaults: the sweep-table contract)."""

    size_col: str = "width"
    lr_col: str = "beta"
    loss_col: str = "final_loss"
    seed_col: str | None = "seed"
    group_cols: list[str] | None = Field(
        None, description="grouping columns; None = the contract's group columns that are present"
    )
    diverged_col: str | None = "diverged"
    constant_cols: list[str] | None = Field(
        None, description="swept per-layer constants (gamma_*, init_scale_*, multiplier_*); None = those that vary"
    )


class Estimate(_Model):
    """A point estimate with its interval at the fit's confidence level (and standard error where defined)."""

    estimate: float
    ci: Interval
    se: float | None = None
    method: str = ""


class WidthOptimum(_Model):
    """The optimal LR at one width."""

    width: int
    lr_opt: float | None = Field(description="fitted optimum; None when unidentified")
    ci: Interval | None = Field(None, description="bootstrap percentile interval of lr_opt")
    on_edge: bool = False
    identified: bool = True
    grid_argmin_lr: float | None = None
    best_loss: float | None = None
    largest_stable_lr: float | None = None
    curvature: float | None = Field(None, description="loss per octave^2 at the optimum")
    band_0p1: tuple[float, float] | None = Field(None, description="LR range costing < 0.1% loss")
    band_0p5: tuple[float, float] | None = Field(None, description="LR range costing < 0.5% loss")
    model: str = Field("", description="quadratic | asymmetric | argmin")
    n_runs: int = 0
    n_diverged: int = 0
    n_seeds: int = 0
    loo_error_octaves: float | None = Field(None, description="LOO prediction minus fit at this width")
    message: str | None = None


class ScalingLaw(_Model):
    """log2 y*(w) = log2_constant + exponent * log2(w / base_width), as fitted (enough to predict anywhere).

    ``cov`` is the Knapp-Hartung covariance of (log2_constant, exponent) (residual scale, never below 1);
    predictions add ``tau2`` and use t quantiles with ``df`` (0: a normal quantile, two widths leave no
    residual). ``cov_boot`` is the cluster bootstrap's over widths, a cross-check only: with few widths
    the resampled designs lose their spread and it overstates the spread (about 2x at 5 widths).
    """

    log2_constant: float
    exponent: float
    base_width: int
    cov: list[list[float]]
    cov_boot: list[list[float]] | None = None
    tau2: float = 0.0
    df: int = 0
    widths: list[int] = Field(default_factory=list)
    n_boot_used: int = 0


class Basin(_Model):
    """Relative loss increase per octave^2 below (left) and above (right) the optimum."""

    k_left: float
    k_right: float
    source: str = Field("quadratic", description="quadratic | asymmetric: the model the widths' fits chose; "
                        "after a symmetric fit, predictions assume overshooting costs 2x (fitting.predict)")


class ConstantFit(_Model):
    """Optimum of a per-layer constant (gamma, init scale, multiplier) at the base width, and its drift."""

    name: str
    optimum: Estimate
    drift_exponent: Estimate | None = None


class LossLaw(_Model):
    """L*(w) = E + A w^-alpha."""

    E: Estimate
    A: Estimate
    alpha: Estimate


class Prediction(_Model):
    """LR* at a target width, its bands and the recommended safe-side LR.

    ``ci`` is at the fit's confidence level; ``ci68`` and ``ci95`` are fixed by design (the 1- and 2-sigma
    bands a recommendation quotes).
    """

    width: int
    lr: float
    ci: Interval
    ci68: tuple[float, float]
    ci95: tuple[float, float]
    safe_lr: float
    expected_loss_penalty: float = Field(description="relative loss penalty expected at `lr` (fraction)")
    safe_expected_loss_penalty: float | None = None
    extrapolation_factor: float
    stability_edge_lr: float | None = None
    layers: list[LayerSetting] | None = None
    warnings: list[str] = Field(default_factory=list)


class GroupFit(_Model):
    """Everything fitted for one group (parameterization, optimizer, alignment, lr_mode, ...)."""

    group: dict[str, Any]
    n_rows: int
    n_diverged: int = 0
    exponent: Estimate | None = None
    exponent_boot: Estimate | None = Field(None, description="cluster bootstrap over widths (percentile)")
    constant: float | None = Field(None, description="fitted LR* at base_width (C)")
    constant_ci: Interval | None = None
    base_width: int | None = None
    theory_exponent: float | None = None
    consistent: bool | None = Field(None, description="theory's exponent lies in the exponent's interval "
                                    "(None: no theory exponent or no across-width fit)")
    width_independent: bool | None = Field(
        None, description="at the target width, C may be used as a width-independent constant: consistent, "
        "and the residual drift there stays inside the 0.5% loss band of the fitted basin (checked when a basin "
        "was fitted). None: no target width, or no theory verdict")
    per_width: list[WidthOptimum] = Field(default_factory=list)
    loo_error_octaves: float | None = Field(None, description="RMS leave-one-width-out error (octaves)")
    law: ScalingLaw | None = None
    basin: Basin | None = None
    stability_edge: Estimate | None = Field(None, description="exponent of the largest stable LR")
    edge_law: ScalingLaw | None = None
    constants: list[ConstantFit] = Field(default_factory=list)
    loss_law: LossLaw | None = None
    prediction: Prediction | None = None
    warnings: list[str] = Field(default_factory=list)


class Provenance(_Model):
    input_hash: str
    n_rows: int
    n_rows_used: int
    n_diverged: int
    settings: dict[str, Any] = Field(default_factory=dict)
    created_at: str
    abcscale_version: str


class FitResult(_Model):
    """The whole fit: one GroupFit per group plus provenance."""

    groups: list[GroupFit]
    provenance: Provenance
    mapping: ColumnMapping = Field(default_factory=ColumnMapping)
    warnings: list[str] = Field(default_factory=list)
