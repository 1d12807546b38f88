"""The answer as parameter groups: which of a model's parameters get which init std, LR, epsilon and decay.

A recommendation is per layer *type*; a real model has named tensors. A :class:`GroupSpec` carries both: one
:class:`RoleSetting` per role (the paper's three layer types plus ``vector`` for biases, norm gains and other
parameters with no width-sized fan-in), the :class:`GroupRule` list that assigns a parameter name to a role,
and the form the numbers are written in (:class:`Form`). :mod:`abcscale.theory.groups` computes it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from abcscale.schemas.enums import Optimizer, WeightDecayMode, _AliasedEnum
from abcscale.schemas.theory import Frozen


class Role(_AliasedEnum):
    """What a parameter is to the theory.

    ``embedding``: fixed fan-in (vocabulary, positions), width-sized fan-out. ``hidden``: both width-sized.
    ``readout``: width-sized fan-in, fixed fan-out. ``vector``: one width-sized axis that is not a fan-in of a
    matrix product: biases and LayerNorm/RMSNorm gains (docs/theory.md section 10). ``fixed``: no width-sized
    axis at all: the readout's bias (classes, vocabulary), a scalar gate or temperature; its numbers do not change
    with the width (microsoft/mup's "fixed" parameters, which MuSGD and MuAdam leave unscaled).
    """

    embedding = "embedding"
    hidden = "hidden"
    readout = "readout"
    vector = "vector"
    fixed = "fixed"

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        return {"emb": "embedding", "hid": "hidden", "out": "readout", "output": "readout", "vec": "vector",
                "vector_like": "vector", "bias": "vector", "norm": "vector", "scalar": "fixed",
                "fixed_size": "fixed"}


#: the roles a setup is given per role (a microsoft/mup setup's groups, a config to check): the fixed role's
#: numbers follow from the vector role's (at the base width), so a setup need not name it
ROLES: tuple[Role, ...] = (Role.embedding, Role.hidden, Role.readout, Role.vector)
#: the roles a :class:`GroupSpec` carries a setting for
SPEC_ROLES: tuple[Role, ...] = (*ROLES, Role.fixed)


class Form(_AliasedEnum):
    """How the same answer is written (docs/theory.md section 10); all three train identically.

    ``abc``: the paper's convention, width-dependent forward multipliers. ``multiplier_free``: every multiplier
    folded into init std and LR, for a plain model. ``mup``: microsoft/mup's convention (multiplier 1 on embedding
    and hidden, ``output_mult / width_mult`` on the readout), with what to pass to MuAdam/MuSGD.
    """

    abc = "abc"
    multiplier_free = "multiplier_free"
    mup = "mup"

    @classmethod
    def _aliases(cls) -> dict[str, str]:
        return {"plain": "multiplier_free", "multiplierfree": "multiplier_free", "no_multipliers": "multiplier_free",
                "microsoft_mup": "mup"}


class GroupRule(Frozen):
    """Parameters whose name matches ``pattern`` (``re.search``, ignoring case, on the name with ``/`` and ``.``
    both written ``.``; a ``/`` in the pattern is that ``.`` too) take ``role``. The first matching rule wins."""

    pattern: str = Field(min_length=1)
    role: Role

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        except (OverflowError, RecursionError) as exc:  # a{99999999999}, a pattern nested past the compiler's depth:
            # a traceback (exit 1) where every other bad pattern is exit 2 (a review, session 83)
            raise ValueError(f"not a regular expression Python can compile: {exc}") from None
        return v

    @field_validator("role", mode="before")
    @classmethod
    def _known_role(cls, v: Any) -> Any:
        # pydantic's own message lists the four roles; Role.parse's their aliases too (output, bias, ...)
        return Role.parse(v) if isinstance(v, str) else v


def shadowed_rule(rules: Sequence[GroupRule]) -> str | None:
    """Why one of ``rules`` never applies, or None: the first match wins, so a later rule of an earlier one's pattern
    and another role is dead (``lm_head`` -> embedding after ``lm_head`` -> readout, accepted in silence: a review),
    unless the earlier is a matrix role and the later a vector or fixed one, which takes the 1-D parameters the
    earlier leaves (``ln`` -> hidden, then ``ln`` -> vector)."""
    any_shape = (Role.vector, Role.fixed)
    for j, later in enumerate(rules):
        for i, earlier in enumerate(rules[:j]):
            if earlier.pattern == later.pattern and earlier.role is not later.role \
                    and (earlier.role in any_shape or later.role not in any_shape):
                return (f"the pattern {later.pattern!r} of rules[{j}] is rules[{i}]'s, which takes every parameter "
                        f"it matches ({earlier.role.value}), so rules[{j}] ({later.role.value}) never applies: drop "
                        "one")
    return None


class RoleSetting(Frozen):
    """One role's numbers at the target width, in the spec's form.

    ``init_std`` is for a parameter whose fan-in is the width (a fan-in of ``r`` times the width takes
    ``init_std * r**-b``: :meth:`GroupSpec.init_std`); None for ``vector`` and ``fixed`` parameters, which keep
    their model's init (gains 1, biases 0). ``multiplier`` is None in the multiplier-free form. ``mup_lr`` (mup
    form only) is the learning rate to give MuAdam/MuSGD for this group, which rescale it into ``lr``.
    ``optimizer`` is the update the group takes (a mixed optimizer such as Muon runs different ones on different
    groups).
    """

    role: Role
    init_std: float | None = Field(None, gt=0, allow_inf_nan=False)
    init_exponent: float = Field(0.0, description="a + b of the role: a fan-in r times the width scales init by "
                                 "r^-(a+b)")
    lr: float = Field(gt=0, allow_inf_nan=False)
    epsilon: float | None = Field(None, ge=0, allow_inf_nan=False)
    weight_decay: float | None = Field(None, ge=0, allow_inf_nan=False)
    multiplier: float | None = Field(None, gt=0, allow_inf_nan=False)
    mup_lr: float | None = Field(None, gt=0, allow_inf_nan=False)
    param_scale_floor: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="Adafactor only: the floor on rms(W) in its parameter "
        "scaling (step x max(rms(W), floor)); 1e-3 in the abc form, as optax and torch default, and divided by "
        "the form's factor t like the init std, so that every form trains alike")
    optimizer: str | None = Field(None, description="the update this group takes: the spec's optimizer, or its "
                                  "part for a mixed one (Muon: muon on hidden matrices, adamw elsewhere)")


#: the name ``abcscale.torch.param_groups`` gives a role's group at another fan-in: "hidden (fan-in 4x width)"
_AT_FAN_IN = re.compile(r"(\w+) \(fan-in [^)]*\)")


class GroupTable(dict[Role, float]):
    """A mup setup's per-role table (``lr``, ``epsilon``, ...), also read by the name of each group
    ``abcscale.torch.param_groups`` makes (a review: ``spec.mup.lr[group["name"]]`` was a KeyError for the fixed
    group under SGD): ``"fixed"``, where the setup gives the fixed role no group of its own, reads the vector
    role's number, the group it shares (unscaled by MuAdam/MuSGD either way), and ``"hidden (fan-in 4x width)"``
    the hidden role's (MuAdam/MuSGD scale by each tensor's own width_mult). Given a group's name (a string), ``in``
    and ``get`` agree with ``[]``: ``"hidden (fan-in 4x width)" in table`` was False and ``table.get(name)`` None
    where ``table[name]`` answered (a review, session 65). Given a :class:`Role`, they say what the setup itself
    holds (``Role.fixed not in spec.mup.lr`` where the fixed parameters share the vector group)."""

    def __contains__(self, key: object) -> bool:
        if isinstance(key, Role) or not isinstance(key, str):
            return super().__contains__(key)
        try:
            self[key]  # type: ignore[index]  # a group's name: __missing__ reads it
        except KeyError:
            return False
        return True

    def get(self, key: Any, default: Any = None) -> Any:
        if isinstance(key, Role) or not isinstance(key, str):
            return super().get(key, default)
        try:
            return self[key]
        except KeyError:
            return default

    def __missing__(self, key: object) -> float:
        name = key.value if isinstance(key, Role) else key
        if isinstance(name, str) and (m := _AT_FAN_IN.fullmatch(name)):
            name = m.group(1)
        role = next((r for r in Role if r.value == name), None)
        if role is not None and role in self:
            return self[role]
        if role is Role.fixed and Role.vector in self:
            return self[Role.vector]
        raise KeyError(key)


#: the fan-in ratio in such a group's name: "hidden (fan-in 4x width)" -> 4
_FAN_IN_RATIO = re.compile(r"hidden \(fan-in ([0-9.eE+-]+)x width\)")


class StdTable(GroupTable):
    """A mup setup's ``init_std``: as :class:`GroupTable`, but a hidden group at another fan-in reads the hidden std
    times r^-1/2, what ``abcscale.torch.init_`` draws there (fan-in^-1/2). ``mup.init.normal_`` scales a tensor by its
    own width_mult only, so ``spec.mup.init_std[group["name"]]`` gave an MLP's 4D -> D projection the hidden std
    itself, 2x what the exports draw (a review, session 63). A readout at another fan-in (``"readout (fan-in 2x
    width)"``: a ResNet's fc on 2C channels) has no entry (a KeyError; ``in`` False, ``get`` None): its std scales
    as r to the readout's own exponent, which depends on the parameterization and which the setup does not hold;
    ``spec.init_std("readout", r)``, the mup form's, is the std to give ``mup.init.normal_`` for it."""

    def __missing__(self, key: object) -> float:
        if isinstance(key, str) and (m := _AT_FAN_IN.fullmatch(key)) and m.group(1) == Role.readout.value:
            raise KeyError(key)
        std = super().__missing__(key)
        if isinstance(key, str) and (m := _FAN_IN_RATIO.fullmatch(key)):
            return std * float(m.group(1)) ** -0.5
        return std


class MupSetup(Frozen):
    """A microsoft/mup setup: what its user writes down (``set_base_shapes`` base width, MuAdam/MuSGD ``lr``,
    ``MuReadout(output_mult=...)``, the init stds at the base width) and the width it runs at.

    ``lr``, ``init_std``, ``epsilon`` and ``weight_decay`` are per role (embedding, hidden, readout, vector); one
    number means every role. ``epsilon`` is each param group's ``eps``, which MuAdam passes to Adam unscaled.
    ``weight_decay`` is what each group is given, as ``lr`` is: MuAdam/MuAdamW multiply a hidden (matrix-like)
    group's by width_mult (and divide its LR), MuSGD divides the other groups' (and multiplies their LR), so the
    decay step lr * weight_decay keeps its size (microsoft/mup's ``mup/optim.py``).
    """

    optimizer: Optimizer
    base_width: int = Field(gt=0)
    width: int = Field(gt=0)
    lr: dict[Role, float]
    output_mult: float = Field(1.0, gt=0, allow_inf_nan=False)
    init_std: dict[Role, float] = Field(default_factory=dict, description="std at the base width per role "
                                        "(embedding, hidden, readout); a hidden std is for fan-in = base width, "
                                        "and a hidden matrix of fan-in r x width takes it x r^-1/2")
    epsilon: dict[Role, float] | None = Field(None, description="Adam epsilon per role (each param group's eps; "
                                              "MuAdam passes it on unscaled); a role left out: not set")
    weight_decay: dict[Role, float] | None = Field(None, description="the coupled decay each group is given "
                                                   "(MuAdamW's weight_decay), per role")

    @field_validator("lr", "init_std", "epsilon", "weight_decay", mode="before")
    @classmethod
    def _per_role(cls, v: object) -> object:
        if isinstance(v, int | float) and not isinstance(v, bool):
            return dict.fromkeys(("embedding", "hidden", "readout", "vector"), v)
        return v

    @field_validator("lr", "init_std")
    @classmethod
    def _positive(cls, v: dict[Role, float]) -> dict[Role, float]:
        bad = [r.value for r, x in v.items() if not (x > 0 and x < float("inf"))]
        if bad:
            raise ValueError(f"must be positive finite numbers ({', '.join(bad)})")
        return v

    @field_validator("epsilon", "weight_decay")
    @classmethod
    def _non_negative(cls, v: dict[Role, float] | None) -> dict[Role, float] | None:
        bad = [r.value for r, x in (v or {}).items() if not (x >= 0 and x < float("inf"))]
        if bad:
            raise ValueError(f"must be non-negative finite numbers ({', '.join(bad)})")
        return None if v is None else {r: x + 0.0 for r, x in v.items()}  # -0 read as 0, as FloatNotBool reads it

    @field_validator("lr", "init_std", "epsilon", "weight_decay")
    @classmethod
    def _by_group_name(cls, v: dict[Role, float] | None, info: ValidationInfo) -> dict[Role, float] | None:
        return None if v is None else StdTable(v) if info.field_name == "init_std" else GroupTable(v)

    @property
    def width_mult(self) -> float:
        return self.width / self.base_width


class GroupSpec(Frozen):
    """The answer as parameter groups (module docstring). ``spec["hidden"]`` is one role's setting."""

    form: Form
    parameterization: str
    optimizer: Optimizer
    width: int
    base_width: int
    roles: list[RoleSetting]
    rules: list[GroupRule]
    weight_decay_mode: WeightDecayMode | None = None
    mup: MupSetup | None = Field(None, description="mup form: the microsoft/mup setup that trains like this")
    warnings: list[str] = Field(default_factory=list)

    def __getitem__(self, role: Role | str) -> RoleSetting:
        kind = Role.parse(role)
        found = next((r for r in self.roles if r.role == kind), None)
        if found is None:  # a spec written before the fixed role has four
            raise ValueError(f"this spec has no {kind.value} role's setting (it holds "
                             f"{', '.join(r.role.value for r in self.roles)}; a spec saved by abcscale 0.2.0 or "
                             "older has no fixed role): make it again with abcscale.recommend(...).groups")
        return found

    def init_std(self, role: Role | str, fan_in_factor: float = 1.0) -> float | None:
        """Init std of a parameter of ``role`` whose fan-in is ``fan_in_factor`` times the width (a positive,
        finite factor: a zero-size parameter has no fan-in to scale by)."""
        if isinstance(fan_in_factor, bool) or not (math.isfinite(fan_in_factor) and fan_in_factor > 0):
            raise ValueError(f"fan_in_factor: must be a positive finite number (the parameter's fan-in over the "
                             f"width), got {fan_in_factor!r}")
        r = self[role]
        return None if r.init_std is None else r.init_std * fan_in_factor ** (-r.init_exponent)


__all__ = ["ROLES", "SPEC_ROLES", "Form", "GroupRule", "GroupSpec", "MupSetup", "Role", "RoleSetting"]
