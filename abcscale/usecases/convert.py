"""Express a setting in another parameterization (``abcscale theory convert``, ``POST /v1/theory/convert``)."""

from __future__ import annotations

from abcscale import theory
from abcscale.schemas.api import ConvertRequest, ConvertResponse
from abcscale.schemas.enums import LAYERS, EpsilonMode, LrMode
from abcscale.schemas.theory import BaseConfig, PerLayer, Setting
from abcscale.theory.groups import PARAM_SCALE_FLOOR
from abcscale.theory.transfer import alignment_range


def source_setting(req: ConvertRequest) -> Setting:
    """The setting to convert: the analytic one at ``req.width`` (from ``base_lr`` at ``base_width``), with the
    per-layer ``lr``, ``multiplier`` and ``init_std`` the request gives put in its place. An AdamW
    ``weight_decay`` is transferred from ``base_width`` by its rule in ``req.weight_decay_mode``, so without a
    base width it is the decay of every layer at ``width``."""
    base = BaseConfig(width=req.base_width or req.width, beta=req.base_lr, epsilon_mode=EpsilonMode.constant,
                      weight_decay=req.weight_decay or 0.0, weight_decay_mode=req.weight_decay_mode)
    if isinstance(req.epsilon, int | float):  # else Constants' default (per layer: put in below)
        base = base.model_copy(update={"epsilon": req.epsilon})
    start = theory.transfer(req.source, req.optimizer, base, req.width, req.alignment, LrMode.per_layer)
    rules = theory.layer_rules(req.optimizer)
    layers = []
    for s in start.layers:
        # the given values were validated as PerLayer (positive, finite): copying them in keeps s valid. A layer
        # the request leaves out keeps its analytic value (PerLayer's default of 1 would be an LR of 1.0)
        # epsilon per layer too: a converted setting's own (they differ by layer) converts back (a review: the
        # one number on every layer made a round trip 64x off at the hidden layer)
        actual: dict[str, float | None] = {key: given[s.layer] for key in ("lr", "multiplier", "init_std", "epsilon")
                                           if isinstance(given := getattr(req, key), PerLayer)
                                           and s.layer.value in given.model_fields_set}
        if not rules[s.layer].has_epsilon:  # Muon: Adam's epsilon off the hidden matrices
            actual["epsilon"] = None
        layers.append(s.model_copy(update=actual))
    return Setting(parameterization=req.source, optimizer=req.optimizer, width=req.width, layers=layers)


def convert_setting(req: ConvertRequest) -> ConvertResponse:
    """The equivalent setting under ``req.target``: the same function and, when ``symmetric``, the same
    training dynamics at every width (:func:`abcscale.theory.convert`)."""
    setting = source_setting(req)
    # SGD's L2 term only where one is given (its settings carry none otherwise, as recommend's)
    has_decay = theory.layer_rules(req.optimizer).weight_decay and (req.optimizer.value != "sgd"
                                                                    or bool(req.weight_decay))
    conv = theory.convert(setting, req.source, req.target, req.alignment, weight_decay_mode=req.weight_decay_mode)
    return ConvertResponse(
        optimizer=req.optimizer, source_parameterization=req.source.value, target_parameterization=req.target.value,
        width=req.width, k=conv.k, symmetric=conv.symmetric, source=setting, converted=conv.setting,
        theta={l.value: conv.theta[l] for l in LAYERS}, c_from={l.value: conv.c_from[l] for l in LAYERS},
        c_to={l.value: conv.c_to[l] for l in LAYERS}, weight_decay_mode=req.weight_decay_mode if has_decay else None,
        # an alignment past none..full, said as recommend says it (convert said nothing of it: a review)
        warnings=[*conv.warnings, *alignment_range(req.alignment), *_unused_epsilon(req),
                  *_below_floor(req, setting, "source"),
                  *_below_floor(req, conv.setting, "converted")],
    )


def _below_floor(req: ConvertRequest, setting: Setting, which: str) -> list[str]:
    """Adafactor scales its step by max(rms(W), 1e-3): the symmetry keeps training alike only while both the
    source's and the converted init stds stay above that floor (a theory review, session 51: muP -> standard at
    4096 from 64 put the readout's at 2.4e-4, its step 4x larger than the symmetry says, unsaid)."""
    if req.optimizer.value != "adafactor":
        return []
    low = [f"{s.layer.value} {s.init_std:.3g}" for s in setting.layers if s.init_std is not None
           and s.init_std < PARAM_SCALE_FLOOR]
    if not low:
        return []
    return [f"init_std: the {which} setting's {', '.join(low)} below Adafactor's {PARAM_SCALE_FLOOR:g} floor on "
            f"rms(W): its step is max(rms(W), {PARAM_SCALE_FLOOR:g}) x the update, so there the two settings do "
            "not train alike (the one below the floor steps floor / init_std times larger than the symmetry "
            "says); keep the floor with the parameter (recommend's groups carry it as param_scale_floor, exported "
            "to optax and torch)"]


def _unused_epsilon(req: ConvertRequest) -> list[str]:
    """An epsilon given to an optimizer without one: accepted, as recommend does, and said."""
    if req.epsilon and not theory.layer_rules(req.optimizer).has_epsilon:
        said = f"{req.epsilon:g}" if isinstance(req.epsilon, int | float) else "per-layer epsilon"
        return [f"epsilon: {req.optimizer.value} has no epsilon; the {said} given changes nothing"]
    return []


__all__ = ["convert_setting", "source_setting"]
