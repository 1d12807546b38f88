"""What each parameter of a sweep's model trains as, before anything trains (``abcscale sweep --show-roles``).

A sweep gives every parameter a role (embedding, hidden, readout, vector-like) and from it, per width, its init
std, its LR as a multiple of the swept base LR beta, its Adam epsilon, its per-layer weight decay and (the abc
form of the built-in models) its forward multiplier. For your own model the roles are read from the factory's
``roles``, a name rule (:data:`abcscale.theory.groups.DEFAULT_RULES`) or the shape (:mod:`abcscale.runner.user`);
a wrong guess trains a model other than yours, so this lists them, with how each was decided, for a look before
a sweep spends hours. The numbers are the ones the sweep trains with (:func:`abcscale.runner.sweep.layer_hyper`
and the model's parameter specs), not a second derivation.

An effective LR at step t is ``beta * lr_factor * schedule(t)``; an init std of a hidden matrix whose fan-in is r
times the width includes its ``r**-fan_in_exponent``. Ones/zeros inits (gains, biases) have no std.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from abcscale.runner.spec import Cell, SweepSpec

#: how a role was decided: the built-in model's own layout, the factory's ``roles``, its ``fan_in`` (a contracted
#: weight, hidden), a name rule, or the shape alone (1-D: vector-like; both matrix axes growing: hidden)
SOURCES = ("built-in", "roles", "fan_in", "name", "shape")


@dataclass(frozen=True)
class ParamRole:
    """One parameter under one configuration; the lists run over the spec's widths, in order."""

    name: str
    role: str  # the role at every width; where it changes with the width, each width's joined by " / "
    source: str  # one of SOURCES
    init: str  # normal | ones | zeros
    shape: list[list[int]]
    init_std: list[float | None]  # None where the init is ones or zeros
    lr_factor: list[float]  # LR = beta * lr_factor (times the schedule)
    epsilon: list[float | None]  # None where the optimizer has no epsilon
    weight_decay: list[float]
    multiplier: list[float]  # 1 in the multiplier-free form (a user model) and for vector-like parameters
    roles: list[str] = field(default_factory=list)  # the role each width trains, in the widths' order

    @property
    def changes_role(self) -> bool:
        """Whether the role differs between the widths (each width trains its own role's numbers)."""
        return len(set(self.roles)) > 1


@dataclass(frozen=True)
class ConfigRoles:
    """The parameters of one configuration (parameterization x optimizer x alignment x LR mode x gamma)."""

    parameterization: str
    optimizer: str
    alignment: str
    lr_mode: str
    gamma: list[float]
    form: str  # abc (built-in models) | multiplier_free (your own)
    widths: list[int]
    parameters: list[ParamRole] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Parameters per role, in the roles' order."""
        out = {r: 0 for r in ("embedding", "hidden", "readout", "vector")}
        for p in self.parameters:
            role = p.roles[0] if p.roles else p.role  # at the smallest width, where the role changes
            out[role] = out.get(role, 0) + 1  # fixed: only for a model that has one
        return out


def parameter_roles(spec: SweepSpec) -> list[ConfigRoles]:
    """Every configuration of ``spec`` with its parameters' roles and numbers at each width. A user model is
    checked first (:func:`abcscale.runner.sweep.check_model`): what would stop the sweep stops this too."""
    from abcscale.runner.optim import variant
    from abcscale.runner.sweep import ROLE_NAMES, _program, check_model, layer_hyper

    check_model(spec)
    configs: dict[tuple[Any, ...], list[Cell]] = {}
    for cell in spec.cells():
        key = (cell.parameterization, cell.optimizer, cell.alignment, cell.lr_mode, cell.gamma)
        configs.setdefault(key, []).append(cell)
    out = []
    for cells in configs.values():
        cells = sorted(cells, key=lambda c: c.width)
        first = cells[0]
        eps_used = variant(first.optimizer).uses_epsilon
        per_width = []
        for cell in cells:
            hyper = layer_hyper(spec, cell)
            per_width.append((hyper, _program(spec, cell, (), False).specs(), _sources(spec, cell.width)))
        names = sorted(per_width[0][1])
        params = []
        for name in names:
            specs = [s[name] for _, s, _ in per_width]
            # each width's own role and numbers: the smallest width's, shown at every width, hid a role that
            # changes with the width (a user review: a bias fixed at one width and vector at the others)
            roles = [ROLE_NAMES[s.layer] for s in specs]
            sources = list(dict.fromkeys(src.get(name, "built-in") for _, _, src in per_width))
            params.append(ParamRole(
                name=name, role=" / ".join(roles) if len(set(roles)) > 1 else roles[0], source=" / ".join(sources),
                init=" / ".join(dict.fromkeys(s.init for s in specs)), shape=[list(s.shape) for s in specs],
                # a vector-like or fixed one drawn normal (a depthwise conv's kernel) at std_const itself
                init_std=[(h.init_std[s.layer] if s.layer < 3 else 1.0) * s.std_const if s.init == "normal" else None
                          for (h, _, _), s in zip(per_width, specs, strict=True)],
                lr_factor=[h.lr_factor[s.layer] for (h, _, _), s in zip(per_width, specs, strict=True)],
                epsilon=[h.epsilon[s.layer] if eps_used else None for (h, _, _), s in zip(per_width, specs,
                                                                                          strict=True)],
                weight_decay=[h.weight_decay[s.layer] for (h, _, _), s in zip(per_width, specs, strict=True)],
                multiplier=[h.multiplier[s.layer] if s.layer < 3 else 1.0
                            for (h, _, _), s in zip(per_width, specs, strict=True)],
                roles=roles))
        out.append(ConfigRoles(parameterization=spec.parameterization_name(first.parameterization),
                               optimizer=first.optimizer, alignment=first.alignment, lr_mode=first.lr_mode.value,
                               gamma=[first.gamma.embedding, first.gamma.hidden, first.gamma.readout],
                               form=per_width[0][0].form, widths=[c.width for c in cells], parameters=params))
    return out


def _sources(spec: SweepSpec, width: int) -> dict[str, str]:
    """How a user model's roles were decided at ``width`` (empty for a built-in model)."""
    from abcscale.runner.user import build, is_reference, role_sources

    if not is_reference(spec.model):
        return {}
    return role_sources(build(spec.model, width, spec.depth, 256, spec.seq_len))
