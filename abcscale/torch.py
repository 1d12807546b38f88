"""The parameter-group spec for a PyTorch model, without importing PyTorch.

Works on anything with ``named_parameters()`` yielding ``(name, tensor)`` (an ``nn.Module``), through the
tensors' own methods, so PyTorch stays the user's dependency, not abcscale's::

    from abcscale import torch as abctorch
    abctorch.init_(model, spec)                                          # init stds of the spec, in place
    opt = torch.optim.AdamW(abctorch.param_groups(model, spec), betas=(0.9, 0.95))
    abctorch.multipliers(model, spec)      # abc/mup forms: what the forward must multiply, e.g. the readout's

Names are PyTorch's (``transformer.h.0.attn.c_attn.weight``) and ``nn.Linear`` weights are [out, in], so the
fan-in is the last axis. A parameter that no rule names and whose shape does not say is a ValueError naming it;
pass ``rules`` (tried in order) to place it. Use a spec in the ``multiplier_free`` form for a plain model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from abcscale.schemas.enums import Optimizer, WeightDecayMode
from abcscale.schemas.groups import GroupRule, GroupSpec, Role
from abcscale.theory.groups import assign

#: the group keys param_groups sets from the spec; ``extra`` may not override them
_SPEC_KEYS = ("params", "lr", "eps", "weight_decay", "name")


def _named(model: Any) -> list[tuple[str, Any]]:
    if not callable(getattr(model, "named_parameters", None)):
        raise TypeError(f"model: expected an object with named_parameters() (an nn.Module), got "
                        f"{type(model).__name__}")
    return list(model.named_parameters())


def _placed(model: Any, spec: GroupSpec, rules: Sequence[GroupRule] | None
            ) -> list[tuple[str, Any, Role, float]]:
    """Each parameter's name, tensor, role and fan-in as a multiple of the width."""
    rules = spec.rules if rules is None else list(rules)
    return [(name, p, *assign(name, tuple(p.shape), spec.width, rules, layout="torch"))
            for name, p in _named(model)]


def _check_decay(spec: GroupSpec) -> None:
    if spec.weight_decay_mode is WeightDecayMode.independent and any(s.weight_decay for s in spec.roles):
        raise ValueError("weight_decay_mode: torch.optim.AdamW decays by lr * weight_decay (coupled); an "
                         "independent decay (wd * W whatever the LR and schedule) has no torch.optim form: "
                         "recommend with weight_decay_mode=coupled, or apply the decay yourself")


def param_groups(model: Any, spec: GroupSpec, *, rules: Sequence[GroupRule] | None = None,
                 **extra: Any) -> list[dict[str, Any]]:
    """``torch.optim`` parameter groups: one per role and fan-in ratio, each with the role's ``lr``, Adam's
    ``eps`` (adam, adamw) and ``weight_decay`` (adamw: torch.optim.AdamW's coupled form), and a ``name``.

    ``extra`` goes into every group (e.g. ``betas=(0.9, 0.95)``, SGD's ``momentum``). Give the groups to the
    optimizer the spec was made for: ``torch.optim.AdamW`` for adamw (``torch.optim.Adam``'s weight_decay is an
    L2 term, not a decoupled decay), ``Adam`` for adam, ``SGD`` for sgd."""
    clash = sorted(set(extra) & set(_SPEC_KEYS))
    if clash:
        raise ValueError(f"{', '.join(clash)}: set per group from the spec; leave {'it' if len(clash) == 1 else 'them'}"
                         " out of the extra keys")
    _check_decay(spec)
    groups: dict[tuple[Role, float], dict[str, Any]] = {}
    for _, p, role, ratio in _placed(model, spec, rules):
        g = groups.get((role, ratio))
        if g is None:
            s = spec[role]
            g = {"params": [], "name": role.value if ratio == 1.0 else f"{role.value} (fan-in {ratio:g}x width)",
                 "lr": s.lr, **extra}
            if spec.optimizer in (Optimizer.adam, Optimizer.adamw) and s.epsilon is not None:
                g["eps"] = s.epsilon
            if spec.optimizer is Optimizer.adamw:
                g["weight_decay"] = s.weight_decay or 0.0
            groups[(role, ratio)] = g
        g["params"].append(p)
    return list(groups.values())


def init_(model: Any, spec: GroupSpec, *, rules: Sequence[GroupRule] | None = None,
          generator: Any = None) -> dict[str, float]:
    """Redraw every parameter that has an init std as normal(0, std), in place (``p.data``, so outside
    autograd); vector-like ones (biases, norm gains) keep their init. Returns ``{name: std}`` of those drawn.
    A parameter tied to another (one tensor, two names) appears once in ``named_parameters()``."""
    drawn = {}
    for name, p, role, ratio in _placed(model, spec, rules):
        std = spec.init_std(role, ratio)
        if std is not None:
            p.data.normal_(0.0, std, generator=generator)
            drawn[name] = std
    return drawn


def multipliers(model: Any, spec: GroupSpec, *, rules: Sequence[GroupRule] | None = None) -> dict[str, float]:
    """``{name: multiplier}`` for each parameter whose output the forward must scale (a multiplier other than
    1): the abc form's embedding and readout, the mup form's readout (``MuReadout``'s 1/width_mult). Empty for
    the multiplier_free form, whose model applies none."""
    out = {}
    for name, _, role, _ in _placed(model, spec, rules):
        m = spec[role].multiplier
        if m is not None and m != 1.0:
            out[name] = m
    return out


__all__ = ["init_", "multipliers", "param_groups"]
