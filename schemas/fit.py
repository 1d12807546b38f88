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

import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from abcscale.schemas.theory import MAX_WIDTH, Interval, LayerSetting

#: The largest size of a parameter-count table (``size_kind`` params: its size column, the target size and the base
#: size): 10**18, a million times a 2T-parameter model. A width's bound (2**40, ``MAX_WIDTH``) refused 2e12 (a review).
MAX_PARAMS = 10**18


def max_size(size_kind: str) -> tuple[int, str]:
    """The largest size of a fit by ``size_kind`` (width or params) and how messages write it."""
    return (MAX_PARAMS, "1e18") if size_kind == "params" else (MAX_WIDTH, "2**40")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def distinct_covariates(v: list[str] | None) -> list[str] | None:
    """A covariate named twice made the joint design singular, and the law was silently missing: refused."""
    if v and (dup := sorted({c for c in v if v.count(c) > 1})):
        raise ValueError(f"{', '.join(dup)} repeated; each covariate once")
    return v


def comma_list(v: Any) -> Any:
    """Columns given as one ``'a,b'`` string (a flag, a form field, a Python caller's shorthand; "" = none)."""
    return [c.strip() for c in v.split(",") if c.strip()] if isinstance(v, str) else v


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
    size_kind: Literal["width", "params"] = Field(
        "width", description="what the size column counts: model width, or parameters (labels and messages)")
    covariates: list[str] | None = Field(
        None, description="numeric axes fitted jointly with the size (tokens, batch size, depth): one law "
        "log2 LR* = log2 C + e_size log2(size/base) + sum_k e_k log2(x_k/base_k) per group")
    derive: list[str] | None = Field(
        None, description="derived columns 'NAME=A/B[:round|:log2round]' (or A*B), or 'NAME=A' (a copy under a "
        "role's name: 'parameterization=config.param'), computed before grouping")

    _comma_lists = field_validator("group_cols", "constant_cols", "covariates", "derive", mode="before")(comma_list)
    _distinct_covariates = field_validator("covariates")(distinct_covariates)


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
    model: str = Field("", description="quadratic | asymmetric | bracket (the quadratic through the grid argmin "
                       "and its neighbours, on a grid coarser than half an octave) | argmin")
    n_runs: int = 0
    n_diverged: int = 0
    n_seeds: int = 0
    loo_error_octaves: float | None = Field(None, description="LOO prediction minus fit at this width")
    message: str | None = None
    sd: float | None = Field(None, ge=0, description="sd (octaves) of lr_opt's error as ci's bootstrap draws show it "
                             "(their central 95% read as normal, the grid floor included): the same at every "
                             "confidence level, as ci is not; what a covariate law weighs each curve by. null where "
                             "unidentified and in fits stored before it was kept (ci is read then)")
    shape_sd: float | None = Field(None, ge=0, description="sd (octaves) of the error ci holds beyond the seed noise: "
                                   "the local fit missed the cells (lack of fit), an error the widths may share")
    noise_sd: float | None = Field(None, ge=0, description="sd (octaves) of lr_opt's error as this width's bootstrap "
                                   "draws show it, before the grid floor widened ci (never above ci's; for a "
                                   "lopsided basin's bracket drawn from the seeds' spread, with how its shape error "
                                   "moves between widths added): what a covariate law's between-curve scatter is "
                                   "measured against where error_sd is not kept; null where unidentified and in fits "
                                   "stored before it was kept")
    error_sd: float | None = Field(None, ge=0, description="sd (octaves) of lr_opt's error at the noise level as "
                                   "measured: the same bootstrap with the noise level fixed, not drawn from its "
                                   "posterior (which spreads noise_sd's draws as a t: 2x at 4 dof, one seed on a "
                                   "coarse grid): what a covariate law's between-curve scatter is measured against; "
                                   "null where noise_sd is, for a lopsided basin's bracket (noise_sd is then read), "
                                   "and in fits stored before it was kept")


class ScalingLaw(_Model):
    """log2 y*(w) = log2_constant + exponent * log2(w / base_width), as fitted (enough to predict anywhere).

    ``method`` free: ``cov`` is the Knapp-Hartung covariance of (log2_constant, exponent) with the residual
    scale held at >= 1, which the constant and predictions use; predictions add ``tau2`` and use t quantiles
    with ``df`` (0: a normal quantile, two widths leave no residual). The exponent's own interval takes the
    residual scale as it is (``residual_scale``; an error every width shares cancels in a slope), never below
    the widths' own errors. ``method`` theory_prior (fitting.scaling.fit_law_prior): the posterior mean and
    covariance with a N(prior_mean, prior_sd^2) prior on the exponent and a half-normal(tau_scale) prior on
    tau, tau summed out; ``tau2`` is its posterior mean and quantiles are normal (``df`` 0). With ``prior_span``
    (a global LR) the prior's centre is spread evenly over the span and ``prior_mean`` is theory's exponent for the
    table's alignment, not the prior's mean. A free law with ``prior_mean`` set is one whose data conflicted with
    theory's prior. ``cov_boot`` is the cluster
    bootstrap's over widths, a cross-check only: with few widths the resampled designs lose their spread and
    it overstates the spread (about 2x at 5 widths).
    """

    log2_constant: float
    exponent: float
    base_width: int
    cov: list[list[float]]
    cov_boot: list[list[float]] | None = None
    tau2: float = 0.0
    df: int = 0
    widths: list[int] = Field(default_factory=list)
    shared_var: float = Field(0.0, ge=0, description="variance (octaves^2) of an error every width shares (a loss "
                              "basin the local model misses: WidthOptimum.shape_sd), added to the constant's and "
                              "every prediction's variance, not the exponent's")
    n_boot_used: int = 0
    residual_scale: float | None = Field(None, description="free law: the Knapp-Hartung residual scale; cov is the "
                                         "unit covariance x max(1, residual_scale), the exponent's interval uses "
                                         "residual_scale as it is (null with 2 widths, and in fits stored "
                                         "before it was kept)")
    method: str = Field("free", description="free: the exponent from the data alone (WLS, Knapp-Hartung); "
                        "theory_prior: the posterior with a normal prior on the exponent centred on theory's "
                        "(prior_mean, prior_sd) and a half-normal prior on tau (tau_scale), tau summed out")
    prior_mean: float | None = None
    prior_sd: float | None = None
    tau_scale: float | None = None
    prior_span: list[float] | None = Field(None, description="theory_prior under a global LR: [low, high], theory's "
                                           "exponent from full to no alignment; the prior on the exponent is "
                                           "uniform over it convolved with N(0, prior_sd^2) (null: centred on "
                                           "prior_mean alone)")


class Basin(_Model):
    """Relative loss increase per octave^2 below (left) and above (right) the optimum."""

    k_left: float
    k_right: float
    source: str = Field("quadratic", description="quadratic | asymmetric: the model at least half the widths' "
                        "fits chose; after a symmetric fit, predictions assume overshooting costs 2x (fitting.predict)")


class ConstantFit(_Model):
    """Optimum of a per-layer constant (gamma, init scale, multiplier) at the base width, and its drift."""

    name: str
    optimum: Estimate
    drift_exponent: Estimate | None = None


class LossLaw(_Model):
    """L*(w) = E + A w^-alpha. ``identified`` is False, and ``notes`` say why, when alpha sits at the edge of its
    search range, the size term vanishes or is absurdly large, or alpha's interval is too wide to mean anything."""

    E: Estimate
    A: Estimate
    alpha: Estimate
    identified: bool = True
    notes: list[str] = Field(default_factory=list)


class LossSurface(_Model):
    """The joint loss law L(N, D) = E + A (N / size_scale)^-alpha + B (D / tokens_scale)^-beta (Chinchilla form).

    N and D are normalised by their geometric means (``size_scale``, ``tokens_scale``), so ``A`` and ``B`` are
    each term's value at the centre of the data, in loss units. In the caller's units the law is
    E + A_user N^-alpha + B_user D^-beta with A_user = A size_scale^alpha (None when not a finite float).
    ``identified`` is False, and ``notes`` say why, when the data cannot pin the law (too few distinct N or D,
    an exponent at the edge of its range, a vanishing or absurd term, an exponent's interval wider than 1).
    """

    E: Estimate
    A: Estimate
    alpha: Estimate
    B: Estimate
    beta: Estimate
    size_scale: float
    tokens_scale: float
    A_user: float | None = None
    B_user: float | None = None
    n_points: int
    method: str = ""
    identified: bool = True
    notes: list[str] = Field(default_factory=list)

    def predict(self, size: float, tokens: float) -> float:
        """The fitted loss at N = ``size``, D = ``tokens`` (the caller's units)."""
        return (self.E.estimate + self.A.estimate * (size / self.size_scale) ** -self.alpha.estimate
                + self.B.estimate * (tokens / self.tokens_scale) ** -self.beta.estimate)


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
    method: str = Field("free", description="how the band was computed: the law's method (ScalingLaw.method)")
    lr_layer: str | None = Field(None, description="the layer whose own LR `lr` is, where the fit measured one "
                                 "layer's LR column (lr_col lr_hidden: hidden; no per-layer `layers` then); None: "
                                 "the sweep's LR (a per-layer sweep's beta, or the one global LR)")
    unreliable: list[str] = Field(default_factory=list, description="why the prediction is unreliable (each "
                                  "also a warning starting 'unreliable: '); --strict refuses it when not empty")


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
    lr_base_width: int | None = Field(None, description="the width the table's per-layer LRs and constants refer to "
                                      "(its base_width column), where base_width (C's reference, fit --base-width) "
                                      "differs from it; None: base_width")
    weight_decay: float | None = Field(None, description="the base width's weight decay the group's runs trained "
                                       "with (the runner's base_weight_decay column), which recommend carries "
                                       "unless told another; None: the table does not say (or mixes several)")
    weight_decay_mode: str | None = Field(None, description="coupled or independent: how that decay was applied")
    lr_exponents: dict[str, float] | None = Field(
        None, description="each layer's LR exponent c_l as the table's lr_embedding / lr_hidden / lr_readout columns "
        "show it (lr_l / (lr gamma_l) ~ width^-c_l in the abc form; all 0 in a global sweep), which recommend checks "
        "the alignment and LR mode it applies against; None: the table has no such columns, or they do not hold "
        "one line per layer (another form, one width)")
    theory_exponent: float | None = None
    theory_span: list[float] | None = Field(None, description="a global LR's exponent under full and under no "
                                            "alignment, [low, high], where they differ: theory puts the exponent "
                                            "in between (the prior spans it; consistent asks for overlap). Null: "
                                            "theory_exponent alone (per-layer LRs, a numeric alignment)")
    consistent: bool | None = Field(None, description="theory's exponent (or some of theory_span) lies in the "
                                    "exponent's interval (None: no theory exponent or no across-width fit)")
    width_independent: bool | None = Field(
        None, description="at the target width, C may be used as a width-independent constant: consistent, "
        "and the residual drift there stays inside the 0.5% loss band of the fitted basin (checked when a basin "
        "was fitted). None: no target width, or no theory verdict")
    per_width: list[WidthOptimum] = Field(default_factory=list)
    loo_error_octaves: float | None = Field(None, description="RMS leave-one-width-out error (octaves)")
    law: ScalingLaw | None = None
    basin: Basin | None = None
    stability_edge: Estimate | None = Field(None, description="exponent of the largest stable LR")
    edge_law: ScalingLaw | None = Field(None, description="the free line through each width's edge bracket (the "
                                        "midpoint between its largest stable and first diverged LR)")
    edge_law_theory: ScalingLaw | None = Field(
        None, description="the edge's law leaning on theory's exponent, where the free line's 95% interval holds it "
        "(the stability edge's prediction; the safe-side cap takes the lower of its bound and the free line's)")
    constants: list[ConstantFit] = Field(default_factory=list)
    lr_layer: str | None = Field(None, description="the layer whose own LR column the fit measured (lr_col "
                                 "lr_hidden: hidden), else None: its LR is that layer's, not the sweep's beta, and "
                                 "no per-layer settings are derived from it")
    trained_constants: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="the per-layer constants the group's runs trained with, by kind (gamma, "
        "init_scale, multiplier) and layer: a gamma_* / init_scale_* / multiplier_* column holding one value "
        "throughout the group (not swept, not one per width: the runner's effective multipliers, a multiplier_free "
        "form's folded ones). The fitted LR is the optimum under them: recommend fills them where the caller leaves "
        "the kind at its default, and says where the caller's differ. Empty: the table does not say (older fits)")
    trained_epsilon: float | None = Field(None, description="the base width's epsilon the group's runs trained with "
                                          "(the runner's epsilon column; null where the table does not say or its "
                                          "rows differ): recommend carries it as trained_constants")
    trained_epsilon_mode: str | None = Field(None, description="how those runs carried epsilon across widths "
                                             "(per_layer or constant)")
    loss_law: LossLaw | None = None
    prediction: Prediction | None = None
    warnings: list[str] = Field(default_factory=list)
    mixed_columns: list[str] = Field(default_factory=list, description="columns in which runs fitted as seeds "
                                     "of one cell differ (two configurations fitted as one): every prediction "
                                     "of the group is unreliable")

    def theory_text(self, fmt: str = "g") -> str:
        """Theory's exponent for a table cell: '-1', a global LR's span '-1..-0.5', or '-' without one."""
        if self.theory_exponent is None:
            return "-"
        if self.theory_span is None:
            return format(self.theory_exponent, fmt)
        return f"{format(min(self.theory_span), fmt)}..{format(max(self.theory_span), fmt)}"

    def summary(self) -> str:
        """One line: the group, its exponent with its interval and level against theory, C, the prediction with its
        band, and how many warnings (the whole fit: ``model_dump()``)."""
        label = group_label(self.group)
        parts = [f"{self.n_rows} runs" + (f", {self.n_diverged} diverged" if self.n_diverged else "")]
        if (e := self.exponent) is not None:
            verdict = {True: "consistent", False: "INCONSISTENT", None: "no verdict"}[self.consistent]
            theory = "no theory" if self.theory_exponent is None else f"theory {self.theory_text()}: {verdict}"
            parts.append(f"exponent {e.estimate:.3g}, {_level(e.ci)} [{e.ci.low:.3g}, {e.ci.high:.3g}] ({theory})")
        else:
            parts.append("no exponent")
        if self.constant is not None:
            parts.append(f"C (LR* at {self.base_width}) {self.constant:.3g}")
        if (p := self.prediction) is not None:
            parts.append(f"LR* at {p.width}: {p.lr:.3g}, {_level(p.ci)} [{p.ci.low:.3g}, {p.ci.high:.3g}]"
                         + (" (unreliable)" if p.unreliable else ""))
        n = len(self.said_warnings())  # as `abcscale fit --summary` counts them (it counted a restated note twice)
        parts.append(f"{n} warning{'' if n == 1 else 's'}")
        return f"{label}: {'; '.join(parts)}"

    def said_warnings(self) -> list[str]:
        """The group's warnings and its prediction's, each said once: a prediction's note that restates one of
        the group's (kept in the prediction for a reader of it alone, a recommendation from the fit) is the
        group's."""
        said = list(self.warnings)
        for w in self.prediction.warnings if self.prediction is not None else []:
            if not any(mine in w and any(theirs in x for x in self.warnings) for mine, theirs in _RESTATED):
                said.append(w)
        return said

    def __repr__(self) -> str:  # a notebook showed every field, 8,000 characters a group (a review)
        return f"GroupFit({self.summary()})"


#: a prediction's notes that restate one of its group's, by a phrase of each (:meth:`GroupFit.said_warnings`)
_RESTATED = (("is inconsistent with theory", "is inconsistent with theory"),
             ("had no identified optimum", "have no identified optimum"))


class JointPrediction(_Model):
    """log2 LR* at a size and covariate values (swept or not) from a :class:`JointLaw`, with its band.

    ``ci`` is at the fit's confidence level; ``ci68``/``ci95`` are fixed. ``extrapolation`` is, per axis, how
    many octaves ``size``/``at`` lie outside the swept range (0 inside it).
    """

    size: float
    at: dict[str, float] = Field(default_factory=dict)
    lr: float
    log2_lr: float
    sd_log2: float
    ci: Interval
    ci68: tuple[float, float]
    ci95: tuple[float, float]
    extrapolation: dict[str, float] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    unreliable: list[str] = Field(default_factory=list, description="why the prediction is unreliable (each also "
                                  "a warning starting 'unreliable: '); strict refuses it when not empty")


class JointLaw(_Model):
    """One law across every curve optimum of a group (the group columns without the covariates):
    ``log2 LR* = log2_constant + sum_k exponents[k] * log2(x_k / bases[k])`` over ``names`` (the size column
    first, then the covariates).

    Each curve (size x covariate combination) contributes its optimum, weighted by 1/(its own variance from its
    interval + ``tau2``); ``tau2`` is the between-curve variance by the method of moments, measured against each
    optimum's error before the grid floor (``WidthOptimum.noise_sd``). ``cov`` is the Knapp-Hartung covariance of
    (log2_constant, exponents in ``names`` order) with the residual scale held at >= 1, which the constant and
    predictions use; an exponent's interval takes the residual scale as it is, never below the sandwich variance
    with the optima's own errors + ``tau2``. Intervals use t with ``df``.
    """

    group: dict[str, Any] = Field(default_factory=dict)
    size_col: str
    size_kind: str = "width"
    names: list[str]
    exponents: dict[str, Estimate]
    log2_constant: Estimate
    constant: float = Field(description="LR* at the bases")
    constant_ci: Interval
    bases: dict[str, float]
    ranges: dict[str, tuple[float, float]] = Field(default_factory=dict, description="swept range per axis")
    cov: list[list[float]]
    tau2: float = 0.0
    shared_var: float = Field(0.0, ge=0, description="variance (octaves^2) of an error every curve shares (their "
                              "optima's shape_sd), in the constant's interval and every prediction's band")
    df: int = 0
    n_curves: int
    n_sizes: int = 0
    n_unidentified: int = 0
    method: str = ""
    prediction: JointPrediction | None = None
    loss_surface: LossSurface | None = Field(None, description="L(N, D) = E + A N^-alpha + B D^-beta over the "
                                             "size and the first covariate (D); only when identified")
    notes: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    plane_misses: dict[str, list[tuple[float, float]]] = Field(
        default_factory=dict, description="per covariate whose bend the lack-of-fit test flagged: (swept value, "
        "octaves the optima sit above the law's plane there, their weighted mean residual with one level per size); "
        "a prediction between swept values, or at one missed by more than its 68% band, is unreliable")


class FitPrediction(_Model):
    """LR* at a size (and covariate values) asked of a fit after it was made (``abcscale predict``, ``POST
    /v1/fits/{id}/predict``, ``abcscale.predict``): exactly one of ``prediction`` (one group's law across sizes,
    as ``GroupFit.prediction``) and ``joint`` (a joint law's, as ``JointLaw.prediction``) is set; ``group`` is
    the group or joint law that answered."""

    group: dict[str, Any] = Field(default_factory=dict, description="the fit's group (or joint law) that answered")
    size_kind: str = Field("width", description="what the size counts: width, or parameters (params)")
    prediction: Prediction | None = Field(None, description="one group's prediction (no covariate values asked)")
    joint: JointPrediction | None = Field(None, description="a joint law's prediction at the size and covariate "
                                          "values asked")

    @property
    def unreliable(self) -> list[str]:
        """Why the prediction is unreliable (empty: nothing says so): what ``--strict`` and ``strict`` refuse."""
        p = self.prediction if self.prediction is not None else self.joint
        return list(p.unreliable) if p is not None else []


class Provenance(_Model):
    input_hash: str
    n_rows: int
    n_rows_used: int
    n_diverged: int
    settings: dict[str, Any] = Field(default_factory=dict)
    created_at: str
    abcscale_version: str


def older_writer(data: object, current: str) -> str | None:
    """The abcscale version that wrote a fit's JSON (``provenance.abcscale_version``) when it is not ``current``
    (this one's), for a fit that does not read: 0.1.0's files (their intervals ``ci95: [low, high]``, renamed in
    0.2.0) were refused as "not a FitResult (groups.0.exponent.ci: Field required and 16 more)", saying neither why
    nor what to do."""
    provenance = data.get("provenance") if isinstance(data, dict) else None
    written = provenance.get("abcscale_version") if isinstance(provenance, dict) else None
    return written if isinstance(written, str) and written != current else None


def value_text(value: object) -> str:
    """A group's value as headings and messages show it: a number as the shortest text that reads back to it
    (``1e+08``, ``2.5e+08``, ``256``, ``123456789``, ``0.0003``), anything else as ``str`` does. A float group
    value (a token budget, a batch size read with blanks) read ``100000000.0`` through ``str`` and ``1.23457e+08``
    through ``:g``, which shows 123456789 and 123457000 alike (session 80)."""
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    plain = repr(float(value)).removesuffix(".0")  # Python's shortest round-trip text
    short = f"{value:g}"
    return short if len(short) < len(plain) and float(short) == value else plain


def group_label(group: Mapping[str, object]) -> str:
    """A group as messages name it: ``key=value, ...`` (``(all rows)`` for a table without groups)."""
    return ", ".join(f"{k}={value_text(v)}" for k, v in group.items()) or "(all rows)"


def _level(ci: Interval) -> str:
    """An interval's level as a label: '95% CI'."""
    return f"{100 * ci.confidence_level:g}% CI"


#: the verdict `abcscale fit --json` adds to the fit where a gate is given (abcscale.cli.fit), as `check --json`'s
VERDICT_KEYS = frozenset({"ok", "exit_code", "failed"})


class FitResult(_Model):
    """The whole fit: one GroupFit per group plus provenance. Its repr is a summary, a line a group
    (:meth:`GroupFit.summary`); every field is in ``model_dump()``."""

    groups: list[GroupFit]
    provenance: Provenance
    mapping: ColumnMapping = Field(default_factory=ColumnMapping)
    warnings: list[str] = Field(default_factory=list)
    joint: list[JointLaw] = Field(default_factory=list, description="with covariates: one joint law per group")

    @model_validator(mode="before")
    @classmethod
    def _without_verdict(cls, data: Any) -> Any:
        """A gated ``abcscale fit --json`` ends in the gate's verdict (``ok``, ``exit_code``, ``failed``): the fit is
        the rest, so ``FitResult.model_validate_json`` reads it as ``load_fit`` does (it refused them as extra)."""
        if isinstance(data, dict) and "groups" in data and VERDICT_KEYS & data.keys():
            return {k: v for k, v in data.items() if k not in VERDICT_KEYS}
        return data

    def summary(self) -> str:
        """The fit in a few lines: what it fitted by (width or parameter count), each group's line
        (:meth:`GroupFit.summary`), the joint laws and the fit's own warnings."""
        level = f"{100 * self._confidence_level():g}% intervals" if self.groups else "no groups"
        head = (f"{len(self.groups)} group{'' if len(self.groups) == 1 else 's'} by "
                f"{'parameter count' if self.mapping.size_kind == 'params' else 'width'}, {level}"
                + (f", {len(self.joint)} joint law{'' if len(self.joint) == 1 else 's'}" if self.joint else "")
                + (f", {len(self.warnings)} warning{'' if len(self.warnings) == 1 else 's'}" if self.warnings else ""))
        return "\n".join([head, *(f"  {g.summary()}" for g in self.groups)])

    def _confidence_level(self) -> float:
        """The confidence level the fit's intervals are at (its first group's exponent's; 0.95 without one)."""
        return next((g.exponent.ci.confidence_level for g in self.groups if g.exponent is not None), 0.95)

    def __repr__(self) -> str:  # a notebook showed every field, 31,000 characters for the tour's fit (a review)
        return f"FitResult({self.summary()})"
