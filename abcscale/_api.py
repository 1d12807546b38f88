"""The documented Python API: keyword forms over the use cases (what ``abcscale/__init__.py`` re-exports).

Each function builds the same typed request the CLI and the REST service build and hands it to
:mod:`abcscale.usecases`, so a number from here equals the CLI's and the service's. Bad input raises a
one-line ValueError that names each bad argument (never pydantic's multi-line report).
"""

from __future__ import annotations

import contextlib
import functools
import numbers
import re
import tomllib
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar, overload

from pydantic import BaseModel, ValidationError

from abcscale import usecases
from abcscale.schemas.api import ConvertRequest, ConvertResponse, FitOptions, MupImport, MupImportRequest
from abcscale.schemas.enums import EpsilonMode, LrMode, Optimizer, Parameterization, WeightDecayMode
from abcscale.schemas.errors import python_limit, validation_message
from abcscale.schemas.fit import ColumnMapping, FitResult, JointPrediction, Prediction
from abcscale.schemas.groups import Form, GroupRule
from abcscale.schemas.recommend import Recommendation
from abcscale.schemas.theory import Alignment, BaseConfig, Constants, ExponentRow, PerLayer, is_bool
from abcscale.schemas.tune import TunedConstants
from abcscale.usecases.recommend import SELECT_HINT, check_constant_numbers, read_rules

if TYPE_CHECKING:
    import pandas as pd

    from abcscale.runner.spec import SweepSpec

#: what a per-layer argument may be: a PerLayer, one number for every layer, "e,h,r", or a dict by layer.
PerLayerLike = PerLayer | float | str | dict[str, float]
#: name rules: [GroupRule | {"pattern", "role"} | (pattern, role)], {pattern: role}, or a rules file's path.
RulesLike = list[GroupRule | dict[str, str] | tuple[str, str]] | dict[str, str] | str | Path
#: a fit, or the path of its JSON (``abcscale fit --out``).
FitLike = FitResult | str | Path
#: an alignment: "full", "none", "ALPHA,OMEGA,U", 3 numbers, a dict or an Alignment.
AlignmentLike = Alignment | str | dict[str, float] | tuple[float, float, float] | list[float]

P = ParamSpec("P")
R = TypeVar("R")

#: request fields -> the keyword arguments that set them, so errors name what the caller passed.
_NAMES = {"base.width": "base_width", "base.beta": "beta", "from": "source", "to": "target"}


def _one_line(fn: Callable[P, R]) -> Callable[P, R]:
    """Report a pydantic ValidationError as a one-line ValueError naming each bad argument."""
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ValidationError as exc:
            # base_lr is beta's other name: its range errors (loc base.beta) said as the keyword passed too
            said = validation_message(exc, {**_NAMES, "base.beta": "base_lr"} if kwargs.get("base_lr") is not None
                                      else _NAMES)
            # a check inside `base` names its field in its message ("base: beta: ..."): said as the keyword passed
            # (base_lr is beta's other name; a review)
            beta = "base_lr" if kwargs.get("base_lr") is not None else "beta"
            said = re.sub(r"(^|; )base: beta: ", rf"\1{beta}: ", re.sub(r"(^|; )base: width: ", r"\1base_width: ",
                                                                         said))
            raise ValueError(said) from None
        except ValueError as exc:  # a fit's group-selection message, said with this API's argument
            if SELECT_HINT not in str(exc):
                raise
            raise ValueError(str(exc).replace(SELECT_HINT, "select one with group='key=value,...' or "
                                              "group={'key': value, ...}")) from None
    return wrapper


@_one_line
def recommend(
    parameterization: Parameterization | str | None = None,
    optimizer: Optimizer | str | None = None,
    *,
    width: int,
    base_width: int | None = None,
    beta: float | None = None,
    alignment: AlignmentLike | None = None,
    lr_mode: LrMode | str | None = None,
    constants: Constants | TunedConstants | MupImport | Mapping[str, Any] | str | Path | None = None,
    fit: FitLike | None = None,
    group: str | dict[str, Any] | None = None,
    weight_decay: float | None = None,
    weight_decay_mode: WeightDecayMode | str | None = None,
    form: Form | str = Form.abc,
    rules: RulesLike | None = None,
    base_lr: float | None = None,
    strict: bool = False,
) -> Recommendation:
    """Per-layer multiplier, init std, LR, epsilon and (AdamW) weight decay at ``width`` (``abcscale recommend``).

    Analytic: ``recommend("mup", "adam", width=4096, base_width=256, beta=3e-3)`` transfers what was tuned at
    ``base_width`` (alignment ``full`` and ``lr_mode`` ``per_layer`` unless given); ``group`` is an error. From a fit:
    ``recommend(fit="fit.json", width=4096)`` uses the fitted LR, so ``base_width`` and ``beta`` are errors;
    ``parameterization``, ``optimizer``, ``lr_mode``, ``alignment`` and ``group`` pick the fit's group
    (:func:`abcscale.usecases.selector_from`). ``constants`` are the base-width constants; ``weight_decay`` and
    ``weight_decay_mode`` set theirs (``recommend("mup", "adamw", ..., weight_decay=0.1)``), given once: as
    keywords or in ``constants``. The same rule as ``abcscale recommend`` and ``POST /v1/recommend``
    (:func:`abcscale.usecases.recommend_request`).

    ``rec.groups`` is the same answer as parameter groups (a ``GroupSpec``: ``rec.groups["hidden"].lr``) in
    ``form`` (``abc``, ``multiplier_free``/``plain`` or ``mup``); ``rules`` (``[{"pattern", "role"}]``, ``(pattern,
    role)`` pairs, ``{pattern: role}`` or a JSON/YAML/TOML file's path) are tried before the default name rules.

    ``constants`` may be a constants file from ``abcscale tune`` (its path or :class:`TunedConstants`): it gives
    the constants and, unless given here, the parameterization, optimizer, alignment, LR mode, base width and beta
    (with ``fit``, only the constants). A ``BaseConfig`` (``from_mup(...).constants``; a constants file with
    ``width`` and ``beta`` beside its constants, or ``abcscale mup import --json``'s output, is read as one, the
    latter, and ``from_mup(...)`` itself, also giving parameterization mup and its optimizer) gives its base width and
    beta where they are not given here; given and different, they are an error. With ``fit``, its width must be
    the fit's base width and its beta is not used (a warning says so). ``base_lr`` is ``beta`` by the CLI's name
    (``--base-lr``) and :func:`convert`'s; give one.

    A ``weight_decay`` beside a constants file from ``abcscale tune`` replaces the file's, with a warning (its beta
    and gammas were tuned jointly with its decay); a ``weight_decay_mode`` other than the file's needs a
    ``weight_decay`` for that mode beside it (a ValueError otherwise: the tuned number is another decay in the other
    mode), as ``abcscale recommend --constants FILE --weight-decay``.

    ``strict=True`` (with ``fit``) raises a ValueError, "strict: unreliable prediction: ..." listing
    ``rec.band.unreliable``, when the fitted band is unreliable (a huge expected loss penalty, a band too wide,
    extrapolation from 2 widths, ...), as ``abcscale recommend --fit FIT --strict`` exits 1 and ``POST
    /v1/recommend`` with ``strict`` answers 422; without ``fit`` it is a ValueError (an analytic answer has no band).
    Without it, read ``rec.band.unreliable`` yourself.
    """
    _flag("strict", strict)
    if strict and fit is None:  # the gate would always pass (the CLI's --strict and REST's `strict` refuse it too)
        raise ValueError("strict: it checks a fitted prediction; give fit")
    if base_lr is not None:  # the CLI's and convert()'s name: a TypeError before (a newcomer's review, session 53)
        if beta is not None:
            raise ValueError("beta: the same as base_lr; give one")
        beta = base_lr
    imported = None  # `abcscale mup import --json`'s document: muP constants of one optimizer's mup setup
    doc_path: str | Path | None = None  # the file a constants document (a BaseConfig) was read from
    beta_note: str | None = None
    if isinstance(constants, str | Path):
        # a hand-written file (gamma, init_scale, ... and no setup), as `recommend --constants FILE` takes it: the
        # API refused it as "not a constants file from abcscale tune" (a review); with width and beta beside the
        # constants, or mup import's JSON, a BaseConfig (below): its base width and beta are the base
        from abcscale.usecases.recommend import read_constants_document

        doc = _parse("constants", read_constants_document, constants)
        if doc is not None:
            doc_path, constants, imported = constants, doc.constants, doc.mup_import
    elif isinstance(constants, MupImport):  # from_mup(...) itself, read as its --json document is (a review: "beta:
        # required" named what it held, not what was wrong)
        from abcscale.usecases.recommend import without_epsilon

        imported = without_epsilon(constants)  # as a document is read: no epsilon for an optimizer without one
        constants = imported.constants
    if imported is not None:  # its setup is muP of one optimizer: the same, or left out (filled without a fit)
        from abcscale.usecases.tune import setting_name

        for name, its, asked in (("parameterization", imported.recommend.parameterization, parameterization),
                                 ("optimizer", imported.setup.optimizer, optimizer)):
            if asked is not None and setting_name(asked) != setting_name(its):
                raise ValueError(f"{name}: the constants are microsoft/mup's {imported.setup.optimizer.value} setup "
                                 f"as {setting_name(imported.recommend.parameterization)} (`abcscale mup import`), "
                                 f"not {setting_name(asked)}; leave {name} out or import the setup you train")
        if fit is None:
            parameterization = imported.recommend.parameterization if parameterization is None else parameterization
            optimizer = imported.setup.optimizer if optimizer is None else optimizer
    tuned_at: BaseConfig | None = None  # a BaseConfig with a fit: its width must be the fit's base width
    if isinstance(constants, BaseConfig):
        if fit is None:
            if doc_path is not None and beta is not None:
                # a file's beta is replaced and said, as `recommend --constants FILE --base-lr` and a tune file's
                from abcscale.usecases.recommend import document_beta_note

                beta_note = document_beta_note(constants.beta, beta, name="beta", path=doc_path)
            for key, theirs, ours in (("base_width", constants.width, base_width), ("beta", constants.beta, beta)):
                if ours is not None and ours != theirs and not (key == "beta" and doc_path is not None):
                    raise ValueError(f"{key}: {ours!r} here, {theirs!r} in `constants` (a BaseConfig); give one")
            base_width, beta = constants.width, constants.beta if beta is None else beta
        else:
            tuned_at = constants
        constants = Constants.model_validate(constants.model_dump(exclude={"width", "beta"},
                                                                  exclude_unset=True))
    file = None  # a constants file: its optimizer variant may say more about epsilon (usecases.tune)
    given_file = constants if isinstance(constants, str | Path) else None
    where = given_file if given_file is not None else "the constants file"
    typed_beta = beta  # before a file's fills it in: one that replaces it is said, as the CLI says it
    decay_note: str | None = None
    if isinstance(constants, str | Path | TunedConstants):
        from abcscale.usecases.tune import decay_override

        file = constants if isinstance(constants, TunedConstants) else _parse("constants", _load_constants, constants)
        given: dict[str, Any] = {"parameterization": parameterization, "optimizer": optimizer,
                                 "alignment": alignment, "base_width": base_width, "beta": beta, "lr_mode": lr_mode}
        constants, filled = _tuned(file, given, with_fit=fit is not None)
        parameterization, optimizer, alignment, base_width, beta, lr_mode = filled.values()
        # weight_decay= replaces the file's tuned decay, said; weight_decay_mode= alone, other than the file's, is
        # refused (the CLI's rule; this refused the one and took the other, by whether the file's value was a
        # default, a review)
        typed = Constants.model_validate({k: v for k, v in (("weight_decay", weight_decay),
                                                           ("weight_decay_mode", weight_decay_mode)) if v is not None})
        update, decay_note = decay_override(file, typed, names=("weight_decay", "weight_decay_mode"), path=where)
        constants = Constants.model_validate({**constants.given(), **update})
        weight_decay = weight_decay_mode = None
    constants = _with_weight_decay(constants, weight_decay=weight_decay, weight_decay_mode=weight_decay_mode)
    req = usecases.recommend_request(
        width=width, parameterization=parameterization, optimizer=optimizer, alignment=alignment, lr_mode=lr_mode,
        base_width=base_width, beta=beta, constants=constants, fit_id=None if fit is None else usecases.LOCAL_FIT,
        group=group, form=form, rules=_parse("rules", read_rules, rules) if isinstance(rules, str | Path) else rules)
    try:
        rec = usecases.recommend(req, None if fit is None else _fit(fit))
    except ValueError as exc:
        _no_law_gated(exc, strict)
        raise
    if file is not None:  # with a fit too: the file's constants, its epsilon included, are used
        from abcscale.usecases.tune import beta_override_note, with_variant_notes

        rec = with_variant_notes(rec, file)
        if fit is None and (note := beta_override_note(file.beta, typed_beta, name="beta", path=where)) is not None:
            rec = rec.model_copy(update={"warnings": [*rec.warnings, note]})  # its gammas go with its own beta
        if decay_note is not None:  # with a fit too: the file's gammas, tuned with its decay, are used
            rec = rec.model_copy(update={"warnings": [*rec.warnings, decay_note]})
    if file is not None and fit is not None and file.base_width != rec.base_width:  # as a BaseConfig's (above)
        raise ValueError(f"constants: the file was tuned at width {file.base_width}, the fit's base width is "
                         f"{rec.base_width}: give constants tuned at {rec.base_width}, or recommend from the file "
                         "without `fit`")
    if beta_note is not None:
        rec = rec.model_copy(update={"warnings": [*rec.warnings, beta_note]})
    if tuned_at is not None:
        # constants hold at the width they were tuned at; the fit's sweep starts at its own base width, so
        # carrying them from another one would scale the multipliers and inits from the wrong place
        if tuned_at.width != rec.base_width:
            raise ValueError(f"constants: the BaseConfig was tuned at width {tuned_at.width}, the fit's base width "
                             f"is {rec.base_width}: give constants tuned at "
                             f"{rec.base_width}, or recommend analytically without `fit`")
        if imported is not None and (setting_name(rec.parameterization), setting_name(rec.optimizer)) != (
                setting_name(imported.recommend.parameterization), setting_name(imported.setup.optimizer)):
            raise ValueError(f"constants: microsoft/mup's {imported.setup.optimizer.value} setup (`abcscale mup "
                             f"import`); the fit's group is {rec.parameterization} + {rec.optimizer.value}: import "
                             "the setup the sweep ran, or select its group")
        rec = rec.model_copy(update={"warnings": [
            *rec.warnings, f"constants: the BaseConfig's beta {tuned_at.beta:g} is not used; the LR is the fit's"]})
    return _gate(rec, strict)


def _gate(rec: Recommendation, strict: bool) -> Recommendation:
    """``rec``, or with ``strict`` a ValueError listing why its fitted band is unreliable: REST's `strict` 422, in
    its words (the CLI's --strict exits 1 naming the same reasons)."""
    if strict and rec.band is not None and rec.band.unreliable:
        raise ValueError("strict: unreliable prediction: " + "; ".join(rec.band.unreliable))
    return rec


def _no_law_gated(exc: ValueError, strict: bool) -> None:
    """With ``strict``, a fit that predicts nothing at all (one width swept: ``NoLaw``) fails the gate in its words,
    as ``recommend --fit --strict`` exits 1 on it (the plain error was raised: a gate could not tell it from bad
    input, a review)."""
    if strict:
        from abcscale.fitting.predict import NoLaw

        if isinstance(exc, NoLaw):
            raise ValueError(f"strict: unreliable prediction: no prediction: {exc}") from None


@_one_line
def recommend_from_fit(
    fit: FitLike, width: int, *, group: str | dict[str, Any] | None = None,
    constants: Constants | Mapping[str, Any] | str | Path | None = None, strict: bool = False,
) -> Recommendation:
    """Per-layer settings at ``width`` from the fitted LR of the group ``group`` picks (``abcscale recommend
    --fit``); the answer's ``band`` holds the fitted LR's uncertainty. What a table lacks (lr_mode,
    parameterization, optimizer) goes in ``group`` (``group={"lr_mode": "global"}``). ``strict=True`` raises a
    ValueError listing ``band.unreliable`` when the band is unreliable, as :func:`recommend`'s ``strict``."""
    _flag("strict", strict)  # "no" turned the gate on (recommend's check, missed here: a review)
    f = _fit(fit)
    width = _size(width, f.mapping.size_kind)  # 4096.0 is 4096, as predict() and recommend(fit=...) take it
    if isinstance(constants, str | Path):  # a hand-written constants file, as recommend(fit=..., constants=) takes
        from abcscale.usecases.recommend import read_constants_document

        bare = _parse("constants", read_constants_document, constants)
        if bare is None or bare.base is not None:
            # a tune file, or constants with their base width (mup import's): recommend(fit=...) checks it against
            # the fit's, and says more
            return recommend(fit=f, width=width, group=group, constants=constants, strict=strict)
        constants = bare.constants
    if isinstance(constants, BaseConfig):  # its base width is checked against the fit's there (read as constants
        return recommend(fit=f, width=width, group=group, constants=constants, strict=strict)  # alone, unchecked)
    if constants is not None and not isinstance(constants, Constants):  # a mapping: AttributeError deep inside
        if isinstance(constants, Mapping):
            check_constant_numbers(constants)
        constants = _parse("constants", Constants.model_validate, constants)
    try:
        rec = usecases.recommend_from_fit(f, width, selector=usecases.selector_from(group), constants=constants)
    except ValueError as exc:
        _no_law_gated(exc, strict)
        if str(exc).startswith(("lr_mode:", "per-layer settings need")):  # said here as this function takes it
            raise ValueError(f"{exc} (here: group={{'lr_mode': 'global', ...}})") from None
        raise
    return _gate(rec, strict)


# `at` decides the answer's type: without it a Prediction, so `predict(fit, 4096).safe_lr` type-checks
@overload
def predict(fit: FitLike, width: int, *, group: str | dict[str, Any] | None = None,
            at: None = None) -> Prediction: ...


@overload
def predict(fit: FitLike, width: int, *, group: str | dict[str, Any] | None = None,
            at: Mapping[str, float] | Literal["bases"]) -> JointPrediction: ...


@_one_line
def predict(fit: FitLike, width: int, *, group: str | dict[str, Any] | None = None,
            at: Mapping[str, float] | Literal["bases"] | None = None) -> Prediction | JointPrediction:
    """The fitted optimal LR at ``width`` with its bands, safe-side LR and expected loss penalty. With ``at``
    (covariate values, ``{"D": 1e10}``) on a fit with covariates: the joint law's prediction at ``width`` (the
    size) and those values, as ``fit --at`` gives it (a ``JointPrediction``); a covariate left out sits at its base,
    and ``at="bases"`` puts every one there."""
    f = _fit(fit)
    width = _size(width, f.mapping.size_kind)
    said = {"at": "at=", "group": "group=", "covariates": "mapping={'covariates': [...]}"}
    answer = usecases.fits.predict_at(f, width, at=at, group=group, names=said)
    if answer.joint is not None:
        return answer.joint
    assert answer.prediction is not None
    return answer.prediction


def _flag(name: str, value: Any) -> bool:
    """A true/false argument, refused otherwise: ``strict="no"`` was truthy, a gate turned on by a "no"."""
    if not is_bool(value):
        raise ValueError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def _epsilon_given(value: Any) -> Any:
    """``convert``'s epsilon as a converted setting gives it back: a numpy scalar is a number; a per-layer list,
    tuple, array or dict leaves out its None layers (Muon's hidden matrices have none), and one number on every
    layer is that number (0 included, which a per-layer table refuses). Anything else as it is, for PerLayer to
    judge (a code review: both round trips were refused)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return _float("epsilon", value)
    if callable(tolist := getattr(value, "tolist", None)) and getattr(value, "ndim", None) == 1:
        value = tolist()
    if isinstance(value, list | tuple) and len(value) == 3:
        value = dict(zip(("embedding", "hidden", "readout"), value, strict=True))
    if isinstance(value, dict) and (kept := {k: v for k, v in value.items() if v is not None}):
        # the layers named as PerLayer names them (aliases; an unknown one refused), before any collapse: three
        # equal values under a misspelt key were one number on every layer (a code review)
        layers = _parse("epsilon", PerLayer.parse, dict.fromkeys(kept, 1.0)).model_fields_set
        given = [v for v in kept.values() if isinstance(v, numbers.Real) and not isinstance(v, bool)]
        if len(layers) == 3 and len(given) == 3 and len({_float("epsilon", v) for v in given}) == 1:
            return _float("epsilon", given[0])
        return kept
    return value


def _float(name: str, value: Any) -> float:
    """``float(value)``; an integer past the float range (10**400) a ValueError naming ``name``, not an
    OverflowError."""
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{name}: {str(value)[:20]}... is out of the float range") from None


def _size(value: Any, size_kind: str) -> Any:
    """``predict``'s width (a size in parameters or tokens for such a fit) as every entry point takes it
    (:func:`abcscale.usecases.fits.predict_size`): a whole number (``4096.0`` is 4096) from 1 to 2**40 for a width;
    a positive finite number for another size. The joint path checked nothing (a width of 1.5 or 2**41 was
    predicted); the width path refused 4096.0."""
    if getattr(value, "ndim", None) == 0 and callable(getattr(value, "item", None)) and not is_bool(value):
        value = value.item()  # a 0-d array (np.array(1024)), a number to every other function
    if isinstance(value, numbers.Real) and not isinstance(value, bool | float | numbers.Integral):
        value = _float("width", value)  # a Decimal or a numpy float: 10**400 as Decimal is a ValueError naming it
    return usecases.fits.predict_size(value, size_kind)


@_one_line
def convert(
    optimizer: Optimizer | str,
    source: Parameterization | str,
    target: Parameterization | str,
    *,
    width: int,
    base_width: int | None = None,
    base_lr: float | None = None,
    alignment: AlignmentLike = "full",
    lr: PerLayerLike | None = None,
    multiplier: PerLayerLike | None = None,
    init_std: PerLayerLike | None = None,
    epsilon: float | PerLayerLike | None = None,
    weight_decay: float | None = None,
    weight_decay_mode: WeightDecayMode | str = WeightDecayMode.coupled,
    beta: float | None = None,
) -> ConvertResponse:
    """The equivalent setting under ``target`` (``abcscale theory convert``): the analytic setting at ``width``
    from ``base_lr`` (default 1e-3; ``beta``, :func:`recommend`'s name for it, is the same) at ``base_width``,
    with ``lr``/``multiplier``/``init_std`` replaced where given; an AdamW ``weight_decay`` at ``base_width``
    (every layer) is transferred by its rule in ``weight_decay_mode``.

    ``epsilon`` (Adam's): one number for every layer, or per layer (``{"embedding": ..., ...}``, ``"e,h,r"``).
    Not given, the source setting's is 1e-8 on every layer, constant across width: not :func:`recommend`'s,
    which scales it per layer (``epsilon_mode`` ``per_layer``). To convert a recommended setting, pass its
    epsilons: ``epsilon={s.layer.value: s.epsilon for s in rec.layers}``."""
    if beta is not None and base_lr is not None:
        raise ValueError("beta: the same as base_lr; give one")
    base_lr = beta if beta is not None else 1e-3 if base_lr is None else base_lr
    per_layer = {k: _parse(k, PerLayer.parse, v)
                 for k, v in (("lr", lr), ("multiplier", multiplier), ("init_std", init_std)) if v is not None}
    epsilon = _epsilon_given(epsilon)
    if epsilon is not None and not isinstance(epsilon, int | float):  # per layer, as lr (one number: every layer)
        per_layer["epsilon"] = _parse("epsilon", PerLayer.parse, epsilon)
    try:
        req = ConvertRequest.model_validate({
            "optimizer": optimizer, "from": source, "to": target, "width": width, "base_width": base_width,
            "base_lr": base_lr, "alignment": _parse("alignment", Alignment.parse, alignment),
            "epsilon": epsilon if isinstance(epsilon, int | float | None) else None,
            "weight_decay": weight_decay, "weight_decay_mode": weight_decay_mode, **per_layer})
    except ValidationError as exc:
        if beta is None:
            raise
        # beta given: its errors said as beta, not as the request's base_lr (a review, session 80)
        raise ValueError(validation_message(exc, {**_NAMES, "base_lr": "beta"})) from None
    return usecases.convert_setting(req)


@_one_line
def theory_table(
    parameterization: Parameterization | str | Iterable[Parameterization | str] | None = None,
    optimizer: Optimizer | str | Iterable[Optimizer | str] | None = None,
    alignment: AlignmentLike | Iterable[AlignmentLike] | None = None,
) -> list[ExponentRow]:
    """The exponent table (``abcscale theory table``): one row per parameterization, optimizer, alignment and
    layer. Each filter is one value or several (three numbers are one alignment); none means all (full and no
    alignment)."""
    # a value given twice is one filter (rows were repeated); parsed first, so "sp" and "standard" are one too
    ps = list(dict.fromkeys(_parse("parameterization", Parameterization.parse, str(p))
                            for p in _many(parameterization, "parameterization"))) or None
    os_ = list(dict.fromkeys(_parse("optimizer", Optimizer.parse, str(o))
                             for o in _many(optimizer, "optimizer"))) or None
    if callable(tolist := getattr(alignment, "tolist", None)) and not isinstance(alignment, str | dict):
        alignment = tolist()  # a numpy array of three numbers: one alignment, as a list of them is
    one_alignment = isinstance(alignment, str | dict | Alignment) or _numbers(alignment)
    als = [_parse("alignment", Alignment.parse, a)
           for a in ([alignment] if one_alignment else _many(alignment, "alignment"))]
    als = [a for i, a in enumerate(als) if a not in als[:i]]
    return usecases.theory_table(ps, os_, als or None)


@_one_line
def fit(
    table: pd.DataFrame | list[dict[str, Any]] | str | Path,
    *,
    target_width: int | None = None,
    base_width: int | None = None,
    alignment: AlignmentLike | None = None,
    mapping: ColumnMapping | Mapping[str, Any] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    confidence_level: float = 0.95,
    blowup: float | None = None,
    parameterization: Parameterization | str | None = None,
    optimizer: Optimizer | str | None = None,
    lr_mode: LrMode | str | None = None,
    at: Mapping[str, float] | None = None,
    drop_cut_short: bool = False,
) -> FitResult:
    """Fit a sweep table (a DataFrame, a list of row dicts, or a CSV/parquet path) as ``abcscale fit`` does;
    ``mapping`` (a ColumnMapping or its dict) names the columns when they are not the sweep-table contract's.
    ``blowup``: a finite loss above this multiple of its curve's best, at a larger LR, counts as diverged (default
    1.5; 0 turns it off). ``parameterization``, ``optimizer``, ``lr_mode``: the theory setup of a table without
    those columns (``abcscale fit -p -o --lr-mode``), which theory's exponent and the band's prior need. ``at``:
    with covariates (``mapping={"covariates": ["D"]}``) and ``target_width`` (the target size), the covariate
    values the joint law predicts at (``{"D": 1e10}``; ``fit --at``), in ``FitResult.joint[i].prediction``.
    ``drop_cut_short``: leave out runs cut short (``fit --drop-cut-short``). Raises ``TableError`` listing every
    problem."""
    settings: dict[str, Any] = {"target_width": target_width, "base_width": base_width, "n_boot": n_boot,
                                "seed": seed, "confidence_level": confidence_level,
                                **{k: v for k, v in (("parameterization", parameterization), ("optimizer", optimizer),
                                                     ("lr_mode", lr_mode)) if v is not None},
                                "alignment": None if alignment is None else _parse("alignment", Alignment.parse,
                                                                                   alignment)}
    if blowup is not None:
        settings["blowup"] = blowup
    if _flag("drop_cut_short", drop_cut_short):
        settings["drop_cut_short"] = drop_cut_short
    if at is not None:
        settings["at"] = dict(at) if isinstance(at, Mapping) else at  # a text is refused, naming `at`
    # only the columns the caller named (as the CLI passes its flags): a default written out as if set would
    # pin loss_col to final_loss, where an unmapped table's eval_loss is the default loss
    if isinstance(mapping, ColumnMapping):
        columns = mapping.model_dump(exclude_unset=True)
    elif isinstance(mapping, Mapping):
        if unknown := [k for k in mapping if k not in ColumnMapping.model_fields]:
            import difflib

            close = difflib.get_close_matches(str(unknown[0]), list(ColumnMapping.model_fields), 1)
            raise ValueError(f"mapping: {unknown[0]!r} is not a key of a ColumnMapping"
                             + (f"; did you mean {close[0]!r}?" if close else
                                f" (its keys: {', '.join(ColumnMapping.model_fields)})"))
        try:
            columns = ColumnMapping.model_validate(dict(mapping)).model_dump(exclude_unset=True)
        except ValidationError as exc:  # "size_col: ..." named the key, not the argument (a review, session 80)
            raise ValueError(f"mapping: {validation_message(exc)}") from None
    elif mapping is None:
        columns = {}
    else:
        raise ValueError(f"mapping: expected a ColumnMapping or a dict of its fields, got {type(mapping).__name__}")
    import pandas as pd  # late: `import abcscale` stays free of pandas

    if isinstance(table, list) and all(isinstance(r, Mapping) for r in table):
        from abcscale.fitting.table import records_frame

        table = records_frame(table)
    elif not isinstance(table, pd.DataFrame | str | Path):
        raise ValueError(f"table: expected a DataFrame, a list of row dicts or a CSV/parquet path, got "
                         f"{type(table).__name__}")
    options = FitOptions.model_validate({**columns, **settings})
    if not isinstance(table, pd.DataFrame):
        return usecases.fit_sweep(table, options)
    from abcscale.fitting import TableError
    from abcscale.usecases.fits import _spoken

    index = table.index
    # messages count rows by position (df.iloc); a filtered or sorted frame's labels (df.loc) differ: said beside
    default = index.equals(pd.RangeIndex(len(table)))
    try:
        result = usecases.fit_sweep(table, options)
    except TableError as exc:
        problems = exc.problems if default else [_row_label(p, index) for p in exc.problems]
        # a groupby(...).mean() moves its keys into the index, where the fitter does not look
        if indexed := [str(n) for n in index.names if n is not None
                       and any(p.startswith(f"{n}: missing column") for p in problems)]:
            problems.append(f"{', '.join(indexed)}: in the DataFrame's index, not its columns (a groupby's keys?): "
                            "pass df.reset_index()")
        raise TableError(problems) from None
    return result if default else _spoken(result, None, lambda text, _: _row_label(text, index))


#: the row numbers in a fit's messages ("row(s) 7, 9", "e.g. row 3"): the first, and where its list ends
_ROWS = re.compile(r"\brow(?:\(s\))? (\d+)(?:, \d+)*")


def _row_label(text: str, index: pd.Index) -> str:
    """``text`` with the index label of the first row it names said beside the row numbers, which are positions."""
    if not (m := _ROWS.search(text)) or int(m[1]) >= len(index):
        return text
    label = index[int(m[1])]
    plain = tuple(map(_plain, label)) if isinstance(label, tuple) else _plain(label)  # np.int64(107) as 107
    return (f"{text[:m.end()]} (positions, as df.iloc counts them; this DataFrame's index labels differ: row {m[1]} "
            f"is label {plain!r}){text[m.end():]}")


def _plain(value: Any) -> Any:
    return value.item() if callable(getattr(value, "item", None)) else value


@_one_line
def sweep(spec: SweepSpec | str | Path, out_dir: str | Path, *, progress: bool = True, executor: str = "local",
          address: str | None = None) -> pd.DataFrame:
    """Run (or resume) a JAX sweep (``abcscale sweep``): ``spec`` is a SweepSpec, the path of its TOML (or of a
    sweep's spec.json), or the TOML text itself. ``executor="ray"`` sends the cells to a Ray cluster (``address``;
    None starts or joins a local one), as ``--executor ray`` does (the ray extra).

    Needs the ``runner`` extra (``pip install 'abcscale[runner]'``); returns the rows of ``results.parquet``.
    """
    if address is not None and executor != "ray":  # it would be ignored, and the sweep run here
        raise ValueError("address: a Ray cluster's address goes with executor='ray'")
    try:
        # runner.train imports JAX at the top: a missing runner extra shows here, before any work is done
        from abcscale.runner import train  # noqa: F401
        from abcscale.runner.sweep import run_sweep
    except ImportError as exc:
        if (exc.name or "").split(".")[0] in ("jax", "jaxlib", "optax"):
            raise ImportError(f"abcscale.sweep needs the runner extra (JAX, optax): pip install "
                              f"'abcscale[runner]' ({exc.name} is missing)") from exc
        raise
    if not isinstance(out_dir, str | Path) or not str(out_dir):  # pathlib's TypeError named no argument (a review)
        raise ValueError(f"out_dir: expected the path of a folder, got {repr(out_dir)[:60]}")
    if Path(out_dir).exists() and not Path(out_dir).is_dir():  # it was NotADirectoryError on OUT/cells
        raise ValueError(f"out_dir: {out_dir} is a file, not a folder")
    return run_sweep(_spec(spec), out_dir, progress=progress, executor=executor, address=address)


def _spec(spec: Any) -> Any:
    """A SweepSpec, or the one its TOML path states; a bad path is a ValueError naming ``spec``."""
    from abcscale.runner.spec import SweepSpec

    if isinstance(spec, SweepSpec):
        return spec
    if isinstance(spec, str) and ("\n" in spec or "=" in spec and not Path(spec).exists()):
        # the TOML itself, not a path (README: `sweep(spec_or_toml, ...)`)
        from abcscale.runner.spec import spec_data

        try:
            data = spec_data(spec)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"spec: the TOML text is not TOML ({exc})") from None
        except ValueError as exc:  # a number of 5000 digits: Python's advice, said in the spec's terms (a review)
            if "integer string conversion" not in str(exc):
                raise
            raise ValueError(f"spec: {python_limit(exc)}") from None
        if not data:
            raise ValueError("spec: the TOML text sets no keys; give SweepSpec() for the defaults")
        return SweepSpec.model_validate(data)
    try:
        return SweepSpec.from_toml(spec)
    except FileNotFoundError:
        raise ValueError(f"spec: no such file {str(spec)[:200]}") from None
    except OSError as exc:
        raise ValueError(f"spec: cannot read {spec} ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"spec: {spec} is not TOML ({exc})") from None
    except ValidationError:
        raise
    except ValueError as exc:  # a 5000-digit number (Python's advice, said in the file's terms), a corrupt spec.json
        said = python_limit(exc, spec)
        raise ValueError(said if said.startswith("spec: ") else f"spec: {said}") from None


def _with_weight_decay(constants: Constants | Mapping[str, Any] | None, **given: Any
                       ) -> Constants | Mapping[str, Any] | None:
    """``constants`` with the weight-decay keywords that were given; one given both ways is an error naming it. A
    mapping (``constants={"gamma": ...}``, which recommend takes as the service does) stays one, validated with the
    request (an AttributeError beside ``weight_decay=`` before: a theory review, session 54)."""
    given = {k: v for k, v in given.items() if v is not None}
    if not given:
        return constants
    if isinstance(constants, Mapping):
        twice = sorted(given.keys() & set(constants))
        mine = dict(constants)
    else:
        twice = sorted(given.keys() & (constants.model_fields_set if constants is not None else set()))
        mine = constants.given() if constants else {}
    if twice:
        raise ValueError(f"{', '.join(twice)}: give it as a keyword or in `constants`, not both")
    if isinstance(constants, Mapping):
        return {**mine, **given}
    return Constants.model_validate({**mine, **given})


def _tuned(file: TunedConstants | str | Path, given: dict[str, Any], *, with_fit: bool
           ) -> tuple[Constants, dict[str, Any]]:
    """A constants file's constants, and ``given`` with the file's values where a keyword was not given (with a
    fit, the file gives only its constants: the fit gives the LR)."""
    from abcscale.usecases.tune import load_for_transfer, recommend_inputs, setting_name, transferable

    tuned = recommend_inputs(_parse("constants", transferable, file) if isinstance(file, TunedConstants) else
                             _parse("constants", load_for_transfer, file))
    constants = tuned.pop("constants")
    # the constants hold for the setup and base width they were tuned at (the CLI refuses other -p/-o/-a/--base-width
    # the same way); another beta or LR mode is a choice
    for key in ("parameterization", "optimizer", "alignment", "base_width"):
        theirs, ours = tuned[key], given.get(key)
        if ours is not None and setting_name(ours) != setting_name(theirs):
            raise ValueError(f"{key}: the constants file was tuned for {setting_name(theirs)}, not "
                             f"{setting_name(ours)}; leave {key} out (the file gives it) or tune for this setup")
    if with_fit:
        return constants, given
    return constants, {k: tuned[k] if v is None else v for k, v in given.items()}


def _load_constants(path: str | Path) -> TunedConstants:
    from abcscale.usecases.tune import load_for_transfer

    return load_for_transfer(path)


def _fit(fit: FitLike) -> FitResult:
    return fit if isinstance(fit, FitResult) else usecases.load_fit(fit)


def _parse(name: str, parse: Callable[[Any], R], value: Any) -> R:
    """``parse(value)``; a bad value is a one-line ValueError naming ``name``."""
    try:
        return parse(value)
    except ValidationError as exc:
        raise ValueError(validation_message(exc, within=name)) from None
    except ValueError as exc:  # a message naming the argument already (not a file named like it: constants.yaml)
        raise ValueError(str(exc) if str(exc).startswith((f"{name}:", f"{name} ")) else f"{name}: {exc}") from None


def _many(value: Any, name: str = "value") -> list[Any]:
    """``value`` as a list: None -> [], a string -> [value]."""
    if value is None:
        return []
    if isinstance(value, bytes | int | float):
        raise ValueError(f"{name}: expected a name or a list of names, got {value!r}")
    if isinstance(value, BaseModel):  # an ABTable iterated as its fields read as names (a review)
        raise ValueError(f"{name}: expected a name or a list of names, got an object of type {type(value).__name__}"
                         + (" (a custom (a, b) table is a sweep's custom_tables, solved there; the table and "
                            "recommend take the four named parameterizations)" if name == "parameterization" else ""))
    return [value] if isinstance(value, str) else list(value)


#: tune()'s arguments by the spec's and the settings' names for them
_TUNE_ARGUMENTS = {"parameterizations": "parameterization", "optimizers": "optimizer", "alignments": "alignment",
                   "lr_modes": "lr_mode", "widths": "base_width", "tune": "search", "sampler_seed": "seed"}


def _as_arguments(message: str) -> str:
    """``message`` with each field it starts a clause with (``optimizers: ``, ``tune[0]: ``) said as tune()'s
    argument, once: ``widths[0]`` and ``base_width`` are both ``base_width``, whose 16.5 was said twice (a review)."""
    clauses, said = [], set()
    for clause in re.split(r"; (?=\w+(?:\[\d+\])?: )", message):
        if m := re.match(r"(\w+)(\[\d+\])?: ", clause):
            name = _TUNE_ARGUMENTS.get(m[1], m[1])
            if name in said and m[1] in ("widths", "base_width"):
                continue
            said.add(name)
            clause = f"{name}: {clause[m.end():]}"
        clauses.append(clause)
    return "; ".join(clauses)


def _numbers(value: Any) -> bool:
    """Whether ``value`` is a tuple or list of numbers: one alignment (of any length, so that (1, 1) is said as a
    triple short of a number, not as two alignments named 1), not several."""
    return (isinstance(value, list | tuple) and len(value) > 0  # numpy's numbers too (a list of an array's items)
            and all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in value))


@_one_line
def from_mup(
    optimizer: Optimizer | str,
    *,
    base_width: int,
    lr: float | str | Sequence[float] | dict[str, float],
    width: int | None = None,
    output_mult: float = 1.0,
    init_std: float | str | Sequence[float] | dict[str, float] | None = None,
    epsilon: float | str | Sequence[float] | dict[str, float] | None = None,
    weight_decay: float | None = None,
    epsilon_mode: EpsilonMode | str = "constant",
) -> MupImport:
    """A microsoft/mup setup in abcscale's terms (``abcscale mup import``, ``POST /v1/theory/from-mup``): the muP
    constants that reproduce it at every width (``.constants``), the equivalent recommend request at ``width``
    (``.recommend``, the ``POST /v1/recommend`` body; with ``r = m.recommend`` the same in keywords is
    ``recommend("mup", optimizer, width=r.width, base_width=r.base.width, beta=r.base.beta, constants=m.constants)``)
    and command line. The constants are muP's: under another parameterization they describe another model.

    ``lr`` is what MuAdam/MuSGD is given (one number, or per role: embedding, hidden, readout, vector, as a
    mapping, ``'e,h,r,v'`` or a list); ``init_std`` the stds at the base width (per role, ``'e,h,r'``, or one
    number); ``epsilon`` Adam's eps (one number, or each
    param group's per role); ``weight_decay`` what MuAdamW, MuAdam(impl=Lion) or MuSGD is given (adamw, lion, muon,
    sgd); ``epsilon_mode`` how the constants carry epsilon to other widths (``constant``, nearest mup's one, or
    ``per_layer``, the theory's rule).
    """
    from abcscale.usecases.mup import mup_import, per_role

    given = {}
    for name, value, n in (("lr", lr, 4), ("init_std", init_std, 3), ("epsilon", epsilon, 4)):
        try:  # 'e,h,r' and (e, h, r) as the CLI's --init-std takes them
            given[name] = per_role(value, n)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    return mup_import(MupImportRequest.model_validate({
        "optimizer": optimizer, "base_width": base_width, "width": width, "output_mult": output_mult,
        "weight_decay": weight_decay, "epsilon_mode": epsilon_mode, **given}))


@_one_line
def tune(
    parameterization: Parameterization | str,
    optimizer: str,
    *,
    base_width: int,
    alignment: str = "full",
    lr_mode: LrMode | str = LrMode.per_layer,
    search: Iterable[str] = ("gamma",),
    trials: int | None = None,
    seconds: float | None = None,
    beta_range: tuple[float, float] | None = None,
    gamma_range: tuple[float, float] | None = None,
    scale_range: tuple[float, float] | None = None,
    epsilon_range: tuple[float, float] | None = None,
    seeds: int = 1,
    reeval_seeds: int = 3,
    top: int = 3,
    seed: int = 0,
    spec: SweepSpec | str | Path | None = None,
    out: str | Path | None = None,
    storage: str | None = None,
    ray_workers: int | None = None,
    **training: Any,
) -> TunedConstants:
    """Tune beta jointly with the per-layer constants at ``base_width`` (``abcscale tune``).

    ``search`` names the constant groups searched (gamma: embedding and readout LR constants; init_scale,
    multiplier, epsilon); ``trials`` and/or ``seconds`` bound the search (30 trials when neither is given, as the
    CLI); ``beta_range`` is beta's log-uniform range (default 2^-14 to 2^-2), ``gamma_range`` each LR constant's
    (0.01 to 100), ``scale_range`` the init_scale and multiplier constants' (0.1 to 10), ``epsilon_range``
    epsilon's base-width value's (1e-12 to 1e-4), each given only for a group searched; the ``top`` trials are
    re-evaluated with ``reeval_seeds`` fresh seeds. The training setup is ``spec`` (a SweepSpec or its TOML) with
    ``training``'s sweep keys (``model``, ``data``, ``steps``, ...) replaced. ``out`` writes the constants file,
    which ``recommend(constants=...)`` takes. ``storage`` (an Optuna database URL, ``sqlite:///tune.db``) makes
    the search resumable: a rerun continues it. ``ray_workers`` evaluates that many trials at a time on Ray actors
    (the ray extra). Needs the runner extra.
    """
    from abcscale.runner.spec import SweepSpec
    from abcscale.schemas.tune import TuneSettings, unsearched_range
    from abcscale.usecases.tune import check_out, save_constants
    from abcscale.usecases.tune import tune as run_tune

    # arguments that reached deep code as bare TypeErrors, a Ray start or an endless search (a review, session 80)
    if clash := sorted(k for k in training if k in _TUNE_ARGUMENTS or k == "base_width"):
        argument = _TUNE_ARGUMENTS.get(clash[0], clash[0])
        raise ValueError(f"{clash[0]}: tune() sets it from its own argument {argument}=; give that instead"
                         if argument != clash[0] else f"{clash[0]}: give it once, as tune()'s own argument")
    if ray_workers is not None and (isinstance(ray_workers, bool) or not isinstance(ray_workers, numbers.Integral)
                                    or ray_workers < 1):
        raise ValueError(f"ray_workers: trials at a time on Ray actors, a whole number from 1, got {ray_workers!r}")
    if out is not None and (not isinstance(out, str | Path) or not str(out).strip()):
        raise ValueError(f"out: expected the constants file's path, got {out!r}")
    if not isinstance(search, str) and not (isinstance(search, Iterable) and all(isinstance(g, str) for g in search)):
        raise ValueError(f"search: expected a group's name or a list of them (gamma, init_scale, multiplier, "
                         f"epsilon; () for beta alone), got {search!r}")
    if not isinstance(parameterization, str):
        raise ValueError(f"parameterization: expected a name (standard, ntk, mup, mean_field), got "
                         f"{parameterization!r}")
    if storage is not None and not isinstance(storage, str):
        raise ValueError(f"storage: expected an Optuna database URL (sqlite:///tune.db), got {storage!r}")
    base = _spec(spec) if spec is not None else SweepSpec()
    ranges = {k: v for k, v in {"beta_range": beta_range, "gamma_range": gamma_range, "scale_range": scale_range,
                                "epsilon_range": epsilon_range}.items() if v is not None}
    if isinstance(optimizer, str) and optimizer.strip().lower().startswith("mu"):  # microsoft/mup's names, as
        with contextlib.suppress(ValueError):  # recommend takes them (MuAdam: adam); the runner knows its own
            optimizer = Optimizer.parse(optimizer).value
    try:  # the spec's and the settings' fields said as this function's arguments (a review: tune[0], optimizers)
        spec = base.with_overrides(parameterizations=[str(parameterization)], optimizers=[optimizer],
                                   alignments=[alignment], lr_modes=[lr_mode], widths=[base_width],
                                   base_width=base_width, **training)
        settings = TuneSettings.model_validate({"tune": [search] if isinstance(search, str) else list(search),
                                                "trials": 30 if trials is None and seconds is None else trials,
                                                "seconds": seconds, "seeds": seeds, "reeval_seeds": reeval_seeds,
                                                "top": top, "sampler_seed": seed, **ranges})
        if said := unsearched_range(settings, ranges, {}, "search", repr(search)):
            raise ValueError(said)
    except ValidationError as exc:
        raise ValueError(_as_arguments(validation_message(exc, _NAMES))) from None
    except ValueError as exc:
        raise ValueError(_as_arguments(str(exc))) from None
    if out is not None:  # before the search, not after it: a bad path would lose the result
        check_out(out, spec)
    failed: list[int] = []  # trials whose mean loss was NaN: the CLI's "fail  loss nan" line, Python's warning
    tuned = run_tune(spec, settings, storage=storage, ray_workers=None if ray_workers is None else int(ray_workers),
                     on_trial=lambda t: failed.append(t.number) if t.state == "FAIL" else None)
    if failed:
        warnings.warn(f"tune: {len(failed)} trial{'s' if len(failed) > 1 else ''} diverged (mean loss NaN; "
                      f"trial{'s' if len(failed) > 1 else ''} {', '.join(map(str, failed[:10]))}"
                      f"{', ...' if len(failed) > 10 else ''}); the search went on without "
                      f"{'them' if len(failed) > 1 else 'it'} (state FAIL in the history)", UserWarning, stacklevel=3)
    if out is not None:
        save_constants(tuned, out)
    return tuned
