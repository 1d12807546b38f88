"""What ``abcscale recommend``, ``POST /v1/recommend`` and ``abcscale check`` answer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from abcscale.schemas.enums import EpsilonMode, Layer
from abcscale.schemas.fit import Prediction, ScalingLaw
from abcscale.schemas.groups import Form, GroupSpec
from abcscale.schemas.theory import Frozen, Interval, LayerSetting, Transfer


class LrBand(Frozen):
    """Uncertainty of a fitted LR at the target width (all LRs scale together with it): a view of a
    :class:`~abcscale.schemas.fit.Prediction`, built by :meth:`of`."""

    lr: float = Field(description="point estimate of the swept LR at the target width (the same as `base_lr`): "
                      "per_layer, the base LR beta each layer's factor scales, not a layer's LR; global, the one LR "
                      "every layer takes there (times its gamma), whose base width's equivalent is the answer's "
                      "`beta`")
    ci: Interval = Field(description="interval at the fit's confidence level")
    ci68: tuple[float, float] = Field(description="68% band (fixed by design)")
    ci95: tuple[float, float] = Field(description="95% band (fixed by design)")
    safe_lr: float = Field(description="recommended safe-side LR: the one that minimises the expected loss penalty "
                           "over the band, below the point estimate unless the fitted basin is steeper on the low "
                           "side, never above the predicted stability edge's lower bound")
    expected_loss_penalty: float = Field(description="relative loss penalty expected at `lr` (fraction)")
    safe_expected_loss_penalty: float | None = Field(None, description="relative loss penalty expected at "
                                                     "`safe_lr` (fraction); None in fits stored without it")
    extrapolation_factor: float = Field(description="target width / largest fitted width")
    base_lr: float | None = Field(None, description="the fitted swept LR at the target width (= `lr`)")
    layer_lrs: dict[str, float] | None = Field(None, description="each layer's LR at the target width from "
                                               "`base_lr` in the abc form (embedding, hidden, readout; as "
                                               "`layers[*].lr`), whatever the answer's `form`: `groups` holds the "
                                               "requested form's (`roles[*].lr`; `mup_lr` in the mup form)")
    method: str | None = Field(None, description="what made the band: theory_prior (the fitted exponent's "
                               "posterior with a normal prior centred on theory's exponent, `prior_exponent`, "
                               "or spread over theory's span, `prior_span`; sd `prior_sd`), or free (the exponent "
                               "from the fitted widths alone); None: not recorded")
    prior_exponent: float | None = Field(None, description="theory's exponent the prior was centred on "
                                         "(with method theory_prior, or a free band whose data rejected it)")
    prior_sd: float | None = Field(None, description="the prior's standard deviation on the exponent")
    prior_span: list[float] | None = Field(None, description="a global LR's theory: [low, high], its exponent "
                                           "from full to no alignment, which the prior's centre spread over "
                                           "(null: centred on prior_exponent alone)")
    unreliable: list[str] = Field(default_factory=list, description="why the prediction should not be acted on "
                                  "(each also a warning starting 'unreliable: '); `strict` refuses the answer "
                                  "when it is not empty")

    @classmethod
    def of(cls, prediction: Prediction, layer_lrs: dict[str, float] | None = None,
           law: ScalingLaw | None = None) -> LrBand:
        """The band's fields of ``prediction`` (same names, same meaning: its ``method`` and ``unreliable``
        reasons too), with the per-layer LRs and the prior of ``law`` (the law the prediction came from)."""
        band = cls.model_validate(prediction, from_attributes=True)
        prior = {} if law is None else {"prior_exponent": law.prior_mean, "prior_sd": law.prior_sd,
                                        "prior_span": law.prior_span}
        return band.model_copy(update={"base_lr": band.lr, "layer_lrs": layer_lrs, **prior})


class Recommendation(Transfer):
    """Per-layer settings at the target width, where they came from, and (for fits) the LR band.

    ``layers`` are the paper's three layer types in the abc form; ``groups`` is the same answer for a real
    model: one setting per role (vector-like parameters included), in the requested form, with the name rules.
    """

    source: Literal["theory", "fit"]
    beta: float = Field(description="the base LR at `base_width` the per-layer LRs were computed from (with "
                        "`base_width`, what an analytic answer needs for the same LRs): the given one; from a fit, a "
                        "per-layer sweep's fitted beta, or a global sweep's fitted LR at the target width (`band.lr`) "
                        "carried back by theory's (width/base_width)^c under the answer's alignment, not the fit's "
                        "own LR* at the base width")
    band: LrBand | None = None
    fit_id: str | None = None
    group: dict[str, Any] | None = None
    epsilon_mode: EpsilonMode | None = Field(None, description="how the answer carries epsilon across widths (its "
                                             "base's, or a fit's runs' where not given): the vector and fixed roles' "
                                             "epsilon follows it")
    groups: GroupSpec | None = Field(None, description="the answer as parameter groups in the requested form "
                                     "(abcscale.theory.groups.group_spec)")

    def __getitem__(self, layer: Layer | str) -> LayerSetting:
        """``rec["hidden"]``: the abc form's setting of one layer type. Asked in another form (``multiplier_free``,
        ``mup``) that is not the form's numbers, so it is an error pointing at ``rec.groups[...]``: it returned the
        abc numbers in silence, a plain model's embedding LR 32x too small at 1024 over 256 (a review)."""
        if self.groups is not None and self.groups.form is not Form.abc:
            name = layer.value if isinstance(layer, Layer) else str(layer)
            raise ValueError(f"{name!r}: this recommendation is in the {self.groups.form.value} form, and "
                             f"rec[{name!r}] would be the abc form's numbers (multipliers not folded in); read "
                             f"rec.groups[{name!r}] for this form's, or rec.abc_setting({name!r}) for the abc form's")
        return self.abc_setting(layer)

    def summary(self) -> str:
        """:meth:`Transfer.summary` and where the answer came from: theory with its base LR, or a fit with the
        LR's band at its level and its safe-side LR. Asked in another form than abc, the lines are that form's
        (``groups``' roles), as ``rec["embedding"]`` refuses the abc numbers there."""
        lines = super().summary().split("\n")
        if self.groups is not None and self.groups.form is not Form.abc:
            g = self.groups
            lines = [f"{lines[0]}, in the {g.form.value} form (rec.groups)", *(f"  {line}" for line in _roles_text(g)),
                     *(line for line in lines[1:] if line.strip().endswith("(.warnings)"))]
        if self.band is not None:
            ci = self.band.ci
            lines.insert(1, f"  from a fit: LR {self.band.lr:.3g}, {100 * ci.confidence_level:g}% CI [{ci.low:.3g}, "
                            f"{ci.high:.3g}], safe-side {self.band.safe_lr:.3g}"
                            + (" (unreliable)" if self.band.unreliable else ""))
        else:
            lines.insert(1, f"  from {self.source}: base LR {self.beta:.3g} at width {self.base_width}")
        return "\n".join(lines)


def _roles_text(spec: GroupSpec) -> list[str]:
    """One line a role of a group spec: ``embedding: lr 0.00566, init std 1, multiplier 1`` (mup's own LR where
    the mup form has one, epsilon and decay where set)."""
    lines = []
    for r in spec.roles:
        parts = [f"lr {r.lr:.3g}"]
        parts += [f"{name} {value:.3g}" for name, value in (("init std", r.init_std), ("multiplier", r.multiplier),
                                                             ("mup lr", r.mup_lr), ("epsilon", r.epsilon),
                                                             ("weight decay", r.weight_decay)) if value is not None]
        lines.append(f"{r.role.value}: {', '.join(parts)}")
    return lines
