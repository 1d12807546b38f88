"""microsoft/mup in and out: a mup setup in abcscale's terms (import), a recommendation as a mup setup (export).

Both directions are :mod:`abcscale.theory.groups`' (``from_mup``, ``group_spec(..., "mup")``, ``to_mup``); this
module wraps them for the CLI (``abcscale mup``), the REST service (``/v1/theory/from-mup``, ``/to-mup``) and
the Python API (:func:`abcscale.from_mup`), and writes the equivalent ``abcscale recommend`` command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from abcscale.schemas.api import AnalyticRecommend, MupExport, MupImport, MupImportRequest
from abcscale.schemas.enums import LAYERS, EpsilonMode, LrMode, Parameterization, mup_wrapper
from abcscale.schemas.groups import ROLES, Form, GroupSpec, Role
from abcscale.schemas.theory import BaseConfig, Constants, PerLayer
from abcscale.theory import layer_rules
from abcscale.theory.groups import from_mup, group_spec, mup_epsilons_differ, mup_scaling_warnings
from abcscale.usecases.recommend import recommend


def mup_import(req: MupImportRequest, *, epsilon_mode: EpsilonMode | str | None = None) -> MupImport:
    """The abcscale constants that reproduce ``req``'s mup setup, the equivalent recommend request (at the
    setup's width) and its command line. ``epsilon_mode`` (default ``constant``, as mup keeps its one epsilon;
    ``req.epsilon_mode`` where the request has one) is how the constants carry epsilon to other widths: both agree
    at the base width, where the import holds."""
    setup = req.setup()
    given_mode = epsilon_mode if epsilon_mode is not None else getattr(req, "epsilon_mode", None)
    mode = EpsilonMode.constant if given_mode is None else EpsilonMode.parse(given_mode)
    constants = from_mup(setup, epsilon_mode=mode)
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
    if Role.hidden in setup.init_std:
        # the hidden std is a matrix of fan-in = the width's; the exports draw a wider fan-in's by the fan-in^-1/2
        # rule, which a model of one std for every matrix (GPT-2's 0.02) does not: its down projection came out at
        # half its std, at the base width too, unsaid (a review, session 63)
        h = setup.init_std[Role.hidden]
        warnings.append(f"init_std: the hidden std {h:g} is that of a hidden matrix of fan-in = the width; abcscale's "
                        f"exports draw one of fan-in r x the width (an MLP's 4D -> D projection, GPT-2's mlp.c_proj) "
                        f"at {h:g} x r^-1/2 ({h * 0.5:g} at r = 4, at the base width too), as 1/sqrt(fan_in) "
                        f"would. If your model draws it at {h:g} too, keep that by giving its fan-in as the width: "
                        "abctorch.init_(model, FILE, width=N, fan_in={name: N}) (abcoptax.init likewise), or, with "
                        f"microsoft/mup, mup.init.normal_(p, std={h:g}) on it (it takes each tensor's base-width std "
                        "as given)")
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
        how = ("epsilon_mode constant, this import's default, keeps one epsilon in abcscale's own form; "
               "epsilon_mode per_layer (`mup import --epsilon-mode per_layer`) scales it with each layer's gradient, "
               "the theory's rule" if mode is EpsilonMode.constant else
               "epsilon_mode per_layer, as asked, scales it with each layer's gradient, the theory's rule")
        warnings.append(f"epsilon: microsoft/mup keeps Adam's epsilon unscaled, abcscale's rule does not (the two "
                        f"agree at the base width: {how}); `abcscale check` accepts mup's within --eps-tolerance "
                        "and says so")
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
    spec = group_spec(rec, Form.mup, epsilon_mode=base.epsilon_mode, base=base)
    assert spec.mup is not None  # a mup-form spec always carries its setup
    warnings = list(spec.warnings)
    if len(set((spec.mup.epsilon or {}).values())) > 1:
        warnings.append(f"epsilon: per param group (each group's eps; {mup_wrapper(spec.optimizer)} passes it to "
                        "the optimizer unscaled): the rule's "
                        f"differ by layer in the mup form, as its multipliers do, and hold at width {spec.width} "
                        "(microsoft/mup does not rescale them with width_mult): export again for another width")
    return MupExport(setup=spec.mup, roles=spec.roles, warnings=warnings)


__all__ = ["export_spec", "mup_import", "mup_export", "recommend_command", "wide_fan_in_note"]


#: the files an export takes in place of a spec, as its errors name them
EXPORT_KINDS = ("recommend(...).groups or a Recommendation; a saved answer's path (`abcscale recommend --format json`, "
                "rec.groups.model_dump_json()); with width=: a constants file from `abcscale tune` or `abcscale mup "
                "import --json`'s document or abcscale.from_mup(...)'s answer")


def export_spec(spec: Any, *, width: int | None, form: Form | str | None) -> tuple[GroupSpec, MupImport | None]:
    """The parameter groups an export (``abcscale.torch``, ``abcscale.optax``) is given, and the `abcscale mup
    import --json` document they came from, if they did.

    :func:`abcscale.usecases.tune.group_spec` reads a spec, a saved answer and a tune file. `mup import`'s
    document, which ``recommend --constants`` and ``recommend(constants=)`` take, was refused as "not a constants
    file from `abcscale tune`" with 22 fields (a review, session 63): it is read here as they read it, its setup
    (muP, its optimizer) and base width and beta with its constants, at ``width`` in ``form`` (default
    multiplier_free, as a tune file's). A hand-written constants file names no setup (nor, without ``width`` and
    ``beta`` beside its constants, the base): a one-line error says what to give; so does a file of none of the
    kinds."""
    from abcscale.usecases.recommend import _TUNE_ONLY, read_constants_document
    from abcscale.usecases.tune import _saved_groups, group_spec, target_of_file

    if isinstance(spec, str | Path) and not Path(spec).is_file():
        # said as the file, with `spec:`: without width it was "a constants file needs the target width"
        what = ("the path is empty" if not str(spec).strip() else f"{spec} is a folder, not a file"
                if Path(spec).is_dir() else f"no such file {spec}")
        raise ValueError(f"spec: {what}")
    if isinstance(spec, MupImport):  # abcscale.from_mup's answer, as recommend(constants=) takes it (session 80)
        width, form = target_of_file(width, form)
        return _imported_groups(spec, width, form), spec
    if not isinstance(spec, str | Path) or _saved_groups(spec) is not None:
        return group_spec(spec, width=width, form=form), None
    doc = read_constants_document(spec)
    if doc is not None and doc.mup_import is None:
        base = doc.base
        what = ("a constants object with the base width and beta they hold at" if base is not None else
                "a hand-written constants file (its constants alone)")
        raise ValueError(f"spec: {spec} is {what}, which names no setup (parameterization, optimizer"
                         f"{'' if base is not None else ', base width, beta'}) for the exports to transfer: give "
                         "abcscale.recommend(parameterization=..., optimizer=..., "
                         f"{'' if base is not None else 'base_width=..., beta=..., '}constants={str(spec)!r}, "
                         "width=..., form=...).groups, or `abcscale mup import --json`'s whole document")
    if doc is not None and doc.mup_import is not None:
        width, form = target_of_file(width, form)
        return _imported_groups(doc.mup_import, width, form), doc.mup_import
    try:
        return group_spec(spec, width=width, form=form), None
    except ValueError as exc:
        if not str(exc).startswith(f"{spec}: not a constants file from `abcscale tune` (") or _tune_like(spec,
                                                                                                         _TUNE_ONLY):
            raise  # a file that is one, with a bad field: its fields said
        raise ValueError(f"spec: {spec} is none of the files the exports read: {EXPORT_KINDS}") from None


def _tune_like(path: str | Path, tune_only: frozenset[str]) -> bool:
    """Whether the JSON at ``path`` says it is `abcscale tune`'s file (its ``kind``, or a field only it has), so
    that its fields are worth listing."""
    import json

    from abcscale.schemas.textfile import read_text

    try:
        data = json.loads(read_text(path))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and ("kind" in data or bool(set(data) & tune_only))


def _imported_groups(imported: MupImport, width: int, form: Form | str | None) -> GroupSpec:
    """`mup import`'s document at ``width`` in ``form`` (default multiplier_free): the request
    ``abcscale.recommend(constants=FILE, width=..., form=...)`` and ``recommend --constants FILE`` make of it (its
    setup's parameterization and optimizer, its base width and beta, its constants without them)."""
    from abcscale.usecases.recommend import recommend_request

    base = imported.constants
    req = recommend_request(width=width, parameterization=imported.recommend.parameterization,
                            optimizer=imported.setup.optimizer, base_width=base.width, beta=base.beta,
                            constants=Constants.model_validate(base.model_dump(exclude={"width", "beta"},
                                                                               exclude_unset=True)),
                            form=Form.multiplier_free if form is None else form)
    assert isinstance(req, AnalyticRecommend)  # no fit: the analytic transfer
    groups = recommend(req).groups
    assert groups is not None  # an analytic answer always carries its groups
    return groups


def wide_fan_in_note(imported: MupImport, spec: GroupSpec, wide: dict[str, float], call: str) -> str | None:
    """The warning for hidden matrices of another fan-in than the width (``wide``: name -> fan-in over the width)
    drawn from `mup import`'s document: their std is the imported hidden std x r^-1/2 (the fan-in^-1/2 rule; at the
    base width too), not the std ``--init-std`` gave, which a model initialised with one std for every matrix
    (GPT-2's 0.02) also draws them at (2x at r = 4, unsaid: a review, session 63). ``call`` is the export's own
    spelling of the way to keep the model's std, ``fan_in=``."""
    given = imported.setup.init_std.get(Role.hidden)
    std = spec[Role.hidden].init_std
    if given is None or std is None or not wide:
        return None
    b, n = imported.setup.base_width, spec.width
    said = ", ".join(f"{name} ({r:g}x: {given * r ** -0.5:.4g} at base width {b})"
                     for name, r in list(wide.items())[:4])
    more = f" and {len(wide) - 4} more" if len(wide) > 4 else ""
    first = next(iter(wide))
    return (f"{said}{more}: hidden matrices whose fan-in is r x the width are drawn at the imported hidden std "
            f"{given:.4g} x r^-1/2 (the fan-in^-1/2 rule), not at {given:.4g}: `mup import --init-std` gives the std "
            f"of a hidden matrix of fan-in = the width. If your model draws them at {given:.4g} too (GPT-2's one std "
            f"for every matrix; microsoft/mup's mup.init keeps each tensor's own std at the base width), keep it by "
            f"reading them as fan-in = the width: {call}(..., fan_in={{{first!r}: {n}, ...}}) draws {std:.4g} at "
            f"width {n}")


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
    if getattr(value, "ndim", None) in (0, 1) and hasattr(value, "tolist"):  # a numpy array or scalar, as convert()
        value = value.tolist()  # takes one (pydantic said "a valid number ... a valid dictionary" of a 1-D array)
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
