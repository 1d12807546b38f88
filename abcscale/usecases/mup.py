"""microsoft/mup in and out: a mup setup in abcscale's terms (import), a recommendation as a mup setup (export).

Both directions are :mod:`abcscale.theory.groups`' (``from_mup``, ``group_spec(..., "mup")``, ``to_mup``); this
module wraps them for the CLI (``abcscale mup``), the REST service (``/v1/theory/from-mup``, ``/to-mup``) and
the Python API (:func:`abcscale.from_mup`), and writes the equivalent ``abcscale recommend`` command line.
"""

from __future__ import annotations

from abcscale.schemas.api import AnalyticRecommend, MupExport, MupImport, MupImportRequest
from abcscale.schemas.enums import LAYERS, EpsilonMode, LrMode, Parameterization
from abcscale.schemas.groups import ROLES, Form, Role
from abcscale.schemas.theory import BaseConfig, PerLayer
from abcscale.theory import layer_rules
from abcscale.theory.groups import from_mup, group_spec, mup_epsilons_differ, mup_scaling_warnings
from abcscale.usecases.recommend import recommend


def mup_import(req: MupImportRequest) -> MupImport:
    """The abcscale constants that reproduce ``req``'s mup setup, the equivalent recommend request (at the
    setup's width) and its command line."""
    setup = req.setup()
    constants = from_mup(setup)
    rec = AnalyticRecommend(parameterization=Parameterization.mup, optimizer=setup.optimizer, width=setup.width,
                            base=constants, lr_mode=LrMode.per_layer)
    warnings = []
    missing = [r.value for r in (Role.embedding, Role.hidden, Role.readout) if r not in setup.init_std]
    if missing:
        warnings.append(f"init_std not given for {', '.join(missing)}: its init scale is abcscale's default (1), "
                        "not your model's; give the stds your mup.init uses at the base width to carry them over")
    if setup.lr[Role.vector] != setup.lr[Role.embedding]:
        # with the number it comes to: a review found biases and gains 16x hotter after an import, said only in words
        ours = constants.beta * constants.gamma.embedding
        warnings.append("lr: the vector-like groups' (biases, norm gains) differs from the embedding's; abcscale's "
                        "vector-like rule follows the embedding's LR, so the constants do not carry it: "
                        f"recommend gives them {ours:.4g} at the base width where yours use "
                        f"{setup.lr[Role.vector]:.4g} ({ours / setup.lr[Role.vector]:.3g}x); set their LR by hand")
    if Role.fixed in setup.lr and setup.lr[Role.fixed] != setup.lr[Role.embedding]:
        ours = constants.beta * constants.gamma.embedding
        warnings.append("lr: the fixed group's (the readout's bias, scalars) differs from the embedding's; abcscale's "
                        "fixed rule takes the embedding's LR at the base width, so the constants do not carry it: "
                        f"recommend gives it {ours:.4g} where yours uses {setup.lr[Role.fixed]:.4g} "
                        f"({ours / setup.lr[Role.fixed]:.3g}x); set its LR by hand")
    if setup.weight_decay and setup.weight_decay.get(Role.vector):
        warnings.append("weight_decay: microsoft/mup decays the vector-like groups (biases, norm gains) too; "
                        "abcscale's recommendation leaves them undecayed, so the constants do not carry it")
    warnings += mup_scaling_warnings(setup.optimizer)
    if req.epsilon and not layer_rules(setup.optimizer).has_epsilon:  # accepted, as recommend does, and said
        given = req.epsilon if isinstance(req.epsilon, float) else ", ".join(f"{v:g}" for v in req.epsilon.values())
        warnings.append(f"epsilon: {setup.optimizer.value} has no epsilon; the {given} given changes nothing")
    if layer_rules(setup.optimizer).has_epsilon and (differ := mup_epsilons_differ(setup)):
        warnings.append(differ)
    if layer_rules(setup.optimizer).has_epsilon:
        # mup's one epsilon equals the abc form's at the base width only: the multipliers differ elsewhere
        warnings.append("epsilon: microsoft/mup keeps Adam's epsilon unscaled, abcscale's rule does not (with "
                        "epsilon_mode constant the two agree at the base width); `abcscale check` accepts mup's "
                        "within --eps-tolerance and says so")
    return MupImport(setup=setup, constants=constants, recommend=rec, command=recommend_command(rec),
                     warnings=warnings)


def recommend_command(req: AnalyticRecommend) -> str:
    """``abcscale recommend ...``: the command line that answers ``req`` (flags left out where default)."""
    base = req.base
    parts = ["abcscale recommend", f"-p {req.parameterization.value}", f"-o {req.optimizer.value}",
             f"--width {req.width}", f"--base-width {base.width}", f"--base-lr {base.beta:.6g}"]
    for flag, field in (("--gamma", "gamma"), ("--multiplier", "multiplier"), ("--init-scale", "init_scale")):
        value: PerLayer = getattr(base, field)
        if any(getattr(value, l.value) != 1.0 for l in LAYERS):
            parts.append(f"{flag} {','.join(f'{getattr(value, l.value):.6g}' for l in LAYERS)}")
    if layer_rules(req.optimizer).has_epsilon:
        parts.append(f"--epsilon {base.epsilon:g}")
        if base.epsilon_mode is not EpsilonMode.per_layer:
            parts.append(f"--epsilon-mode {base.epsilon_mode.value}")
    if base.weight_decay:
        parts.append(f"--weight-decay {base.weight_decay:g}")
        if layer_rules(req.optimizer).weight_decay:
            parts.append(f"--weight-decay-mode {base.weight_decay_mode.value}")
    return " ".join(parts)


def mup_export(req: AnalyticRecommend) -> MupExport:
    """``req``'s recommendation as microsoft/mup's setup (what to pass to set_base_shapes, MuAdam/MuSGD,
    MuReadout and mup.init) and the mup-form values that apply at the target width."""
    rec = recommend(req)
    base: BaseConfig = req.base
    spec = group_spec(rec, Form.mup, epsilon_mode=base.epsilon_mode)
    assert spec.mup is not None  # a mup-form spec always carries its setup
    warnings = list(spec.warnings)
    if len(set((spec.mup.epsilon or {}).values())) > 1:
        warnings.append(f"epsilon: per param group (each group's eps; MuAdam passes it to Adam unscaled): the rule's "
                        f"differ by layer in the mup form, as its multipliers do, and hold at width {spec.width} "
                        "(microsoft/mup does not rescale them with width_mult): export again for another width")
    return MupExport(setup=spec.mup, roles=spec.roles, warnings=warnings)


__all__ = ["mup_import", "mup_export", "recommend_command"]


def per_role(value: object, n: int) -> object:
    """A per-role number as the CLI and Python take it: ``'3e-3'`` or one number (every role), ``'e,h,r'`` or a
    list/tuple of ``n`` numbers (the first ``n`` of embedding, hidden, readout, vector), or a mapping (as it is).
    A ValueError says what is expected."""
    if isinstance(value, str):
        try:
            value = [float(p) for p in value.split(",")]
        except ValueError:
            raise ValueError(f"'{value}' is not one number or {n} comma-separated numbers ("
                             f"{','.join(r.value[0] for r in ROLES[:n])})") from None
    if not isinstance(value, list | tuple):
        return value
    names = [r.value for r in ROLES][:n]
    if len(value) == 1:
        return value[0]
    if n == len(ROLES) and len(value) == n + 1:  # a fifth: the fixed group's (the readout's bias), as an export has
        names.append(Role.fixed.value)
    elif len(value) != n:
        more = " or 5 (e,h,r,v,f: a fixed group of its own, the readout's bias)" if n == len(ROLES) else ""
        raise ValueError(f"give one number or {n} ({','.join(x[0] for x in names)}){more}, got {len(value)}")
    return dict(zip(names, value, strict=True))
