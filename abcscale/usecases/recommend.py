"""Recommend per-layer settings at a target width, from theory or from a fit; the one group-selection rule.

The CLI and ``POST /v1/recommend`` both end here, so their answers agree by construction:

- :func:`recommend_analytic`: theory's transfer from what was tuned at the base width, labelled as a
  :class:`~abcscale.schemas.recommend.Recommendation` with ``source="theory"``.
- :func:`recommend_from_fit`: the fitted LR at the target width (with its band), spread over the layers by
  theory's per-layer exponents.
- :func:`recommend`: either, from a typed :data:`~abcscale.schemas.api.RecommendRequest`;
  :func:`recommend_request` builds one from loose inputs (the CLI's flags, the Python API's keywords), so
  the three agree on which inputs go with which source too.
- Every answer carries ``groups``: the same settings as parameter groups (:func:`abcscale.theory.groups.group_spec`)
  in the requested form, with the caller's name rules tried before :data:`~abcscale.theory.groups.DEFAULT_RULES`;
  :func:`parse_rules` and :func:`read_rules` read those rules from loose inputs and files.

The fitting package (pandas, statsmodels) is imported by the functions that need it, so the CLI and the
service start without it.
"""

from __future__ import annotations

import decimal
import json
import math
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from abcscale import theory
from abcscale.schemas.api import AnalyticRecommend, FitRecommend, MupImport, RecommendRequest, _check_json_types
from abcscale.schemas.enums import EpsilonMode, LrMode, Optimizer, Parameterization, mup_wrapper
from abcscale.schemas.errors import field_errors, validation_message
from abcscale.schemas.fit import FitResult, GroupFit, value_text
from abcscale.schemas.groups import Form, GroupRule, GroupSpec, Role, shadowed_rule
from abcscale.schemas.recommend import LrBand, Recommendation
from abcscale.schemas.theory import Alignment, BaseConfig, Constants, Transfer
from abcscale.theory.groups import DEFAULT_RULES, group_spec

#: the ``fit_id`` of a fit handed over in process (the CLI's ``--fit`` file, the API's ``fit=``): it only
#: labels the request, and the answer carries no ``fit_id``.
LOCAL_FIT = "local"


def recommend_analytic(req: AnalyticRecommend) -> Recommendation:
    r"""Theory's transfer from ``req.base`` to ``req.width`` (see :func:`abcscale.theory.transfer`):

    .. math:: \eta_l = \beta \gamma_l (n / b)^{-c_l}, \quad m_l = M_l n^{-a_l}, \quad \sigma_l = S_l n^{-b_l}
    """
    tr = theory.transfer(req.parameterization, req.optimizer, req.base, req.width, req.alignment, req.lr_mode)
    groups = groups_of(tr, req.form, req.rules, req.base.epsilon_mode, base=req.base)
    # the form's caveats (a mup setup that agrees at one width only, ...) where a CI step reads them, once
    warnings = list(dict.fromkeys([*tr.warnings, *groups.warnings]))
    rec = Recommendation(**{**dict(tr), "warnings": warnings}, source="theory", beta=req.base.beta, groups=groups,
                         epsilon_mode=req.base.epsilon_mode)
    if note := plain_beta_note(req, rec):
        rec = rec.model_copy(update={"warnings": [*rec.warnings, note]})
    if far := far_width_note(rec.width, rec.base_width):  # as a fit's far prediction says (a zero too many?)
        rec = rec.model_copy(update={"warnings": [*rec.warnings, far]})
    return _with_mup_beta_note(rec, req.base.model_fields_set)


#: a target this many times past the base width (or below it) reads as a typo, as a fit refuses a prediction that far
#: past its widths (abcscale.fitting.predict.EXTRAPOLATION_UNRELIABLE, not imported: it loads scipy); Python,
#: REST and the CLI say it (it was the CLI's alone: a code review)
FAR_WIDTH = 1024.0


def far_width_note(width: int, base_width: int) -> str | None:
    """A warning for an analytic transfer to a width more than :data:`FAR_WIDTH` times past the base width, or as
    far below it, in the words predict and recommend --fit say a fit's far target with; None otherwise."""
    ratio = width / base_width
    if ratio > FAR_WIDTH:
        return (f"transferring {ratio:.3g}x past the base width ({base_width}), beyond {FAR_WIDTH:g}x: check the "
                "target (a zero too many?)")
    if ratio < 1 / FAR_WIDTH:
        return (f"transferring {1 / ratio:.3g}x below the base width ({base_width}), beyond {FAR_WIDTH:g}x: check "
                "the target (a zero missing?)")
    return None


def plain_beta_note(req: AnalyticRecommend, rec: Recommendation) -> str | None:
    """What a multiplier_free answer for muP from abcscale's default LR constants assumes of its beta: that it is
    abcscale's muP base LR, under which the roles' LRs already differ at the base width (Adam at 256: embedding
    16x beta, readout beta/16), not an LR the team's own model was tuned with. A review's SP team (AdamW 3e-3 at
    256, one LR for every matrix) gave that LR as --base-lr and got those LRs, unsaid, where the mup form says it
    (:func:`mup_beta_note`). Their model at the base width is microsoft/mup's setup at width_mult 1, which ``mup
    import`` carries. None where the roles' LRs at the base width are all beta (nothing to mistake) or the caller
    gave gamma or multipliers (they chose the constants)."""
    spec = rec.groups
    if spec is None or spec.form is not Form.multiplier_free or rec.lr_mode is LrMode.global_ \
            or _LR_CONSTANTS & set(req.base.model_fields_set):
        return None
    at_base = recommend_analytic_plain(req.model_copy(update={"width": req.base.width}))
    roles = [s for s in at_base.roles if s.role in (Role.embedding, Role.hidden, Role.readout)]
    if all(math.isclose(s.lr, req.base.beta, rel_tol=1e-3) for s in roles):
        return None  # standard: no multiplier to fold, the abc and plain forms are one
    lrs = ", ".join(f"{s.role.value} {s.lr:.4g}" for s in roles)
    times = ", ".join(f"{s.lr / req.base.beta:.3g}x" for s in roles)
    o, b, beta = rec.optimizer.value, req.base.width, req.base.beta
    p = _norm("parameterization", rec.parameterization)
    head = (f"multiplier_free form: at the base width {b} the roles' LRs are {lrs} ({times} beta {beta:g}, "
            f"abcscale's {p} base LR under its default constants); if {beta:g} is the one LR your own model was "
            f"tuned with at width {b} (an SP model, or microsoft/mup's at its base shapes), ")
    if p == Parameterization.mup.value:
        return head + (f"carry that model instead: `abcscale mup import -o {o} --base-width {b} --lr {beta:g} "
                       f"--init-std E,H,R` (E,H,R: its init stds at width {b}; REST: POST /v1/theory/from-mup), its "
                       "--json given as --constants (Python: from_mup(...).constants), and every role's LR at width "
                       f"{b} is {beta:g}")
    gammas = ",".join(f"{req.base.beta / s.lr:.4g}" for s in roles)
    return head + (f"give the constants that make it every role's there: --gamma {gammas} (and --init-scale for "
                   f"its init stds), or carry the model as muP with `abcscale mup import -o {o} --base-width {b} "
                   f"--lr {beta:g} --init-std E,H,R`")


def recommend_analytic_plain(req: AnalyticRecommend) -> GroupSpec:
    """The multiplier_free parameter groups of ``req`` alone (no notes): what :func:`plain_beta_note` compares."""
    tr = theory.transfer(req.parameterization, req.optimizer, req.base, req.width, req.alignment, req.lr_mode)
    return groups_of(tr, Form.multiplier_free, req.rules, req.base.epsilon_mode, base=req.base)


def _with_mup_beta_note(rec: Recommendation, given: Iterable[str]) -> Recommendation:
    """``rec`` with :func:`mup_beta_note` among its warnings where it says something."""
    note = mup_beta_note(rec, given)
    return rec if note is None else rec.model_copy(update={"warnings": [*rec.warnings, note]})


def groups_of(tr: Transfer, form: Form | str = Form.abc, rules: Iterable[GroupRule] | None = None,
              epsilon_mode: EpsilonMode | str = EpsilonMode.per_layer, base: BaseConfig | None = None) -> GroupSpec:
    """``tr`` as parameter groups in ``form``; ``rules`` are tried before the default name rules, and the spec
    carries both, so it selects a model's parameters on its own (``abcscale.torch``, ``abcscale.optax``). ``base``
    (the config ``tr`` came from) makes the fixed role's LR and epsilon the base values exactly."""
    return group_spec(tr, form, [*(rules or ()), *DEFAULT_RULES], epsilon_mode, base)


def recommend_from_fit(
    fit: FitResult, width: int, *, selector: dict[str, Any] | None = None, constants: Constants | None = None,
    form: Form | str = Form.abc, rules: Iterable[GroupRule] | None = None,
) -> Recommendation:
    r"""Per-layer settings at ``width`` from the fitted LR :math:`\hat\beta(n)` of the group ``selector`` picks.

    Per-layer mode: :math:`\eta_l = \hat\beta(n) \gamma_l (n / b)^{-c_l}`; global mode:
    :math:`\eta_l = \hat\beta(n) \gamma_l`. Constants left at their defaults are filled from the fit: a swept
    constant's optimum, else the value the group's runs trained with (``GroupFit.trained_constants``). ``band``
    carries the fitted LR's uncertainty, the method that made it and the reasons it is unreliable
    (``band.unreliable``; each is also a warning); a safe-side LR below the estimate is a warning.
    """
    from abcscale.fitting import group_transfer, predict_group
    from abcscale.fitting.predict import UNRELIABLE, transfer_epsilon_mode

    if fit.mapping.size_kind != "width":  # theory's per-layer scaling is in widths, not parameter counts
        raise ValueError("width: this fit's sizes are parameter counts (size_kind params), and per-layer settings "
                         "scale with the width: fit the table by its width column (size_kind width) to get them; "
                         "the fitted LR at any parameter count is `abcscale predict FIT --size 7e9` (REST POST "
                         "/v1/fits/{id}/predict, Python abcscale.predict)")
    g, hints = select_group(fit, selector)
    pred = predict_group(g, width, size_kind=fit.mapping.size_kind)
    tr, notes = group_transfer(g, int(width), pred.lr, alignment=fit.provenance.settings.get("alignment"),
                               hints=hints, constants=constants)
    warnings = [*tr.warnings, *pred.warnings, *notes]
    if not math.isclose(pred.safe_lr, pred.lr, rel_tol=5e-3):  # "scale by 1" says nothing
        warnings.append(f"safe-side LR {pred.safe_lr:.4g} (scale every layer's LR by "
                        f"{pred.safe_lr / pred.lr:.3g} to use it)")
    # the runs' epsilon mode where the caller gives none, as the transfer took it (the vector and fixed roles were
    # per_layer beside constant-mode layers: a code review)
    eps_mode = transfer_epsilon_mode(g, constants, tr.optimizer.value)
    groups = groups_of(tr, form, rules, eps_mode)
    # the band says what made it (theory's prior or the widths alone) and why it is unreliable, as fields,
    # so --strict and REST `strict` need not parse the warnings
    band = LrBand.of(pred, {s.layer.value: s.lr for s in tr.layers}, g.law)
    if extra := [n.removeprefix(UNRELIABLE) for n in notes if n.startswith(UNRELIABLE)]:  # the transfer's own
        band = band.model_copy(update={"unreliable": [*band.unreliable, *extra]})
    # and the table's (a scheduled LR fitted, width multipliers read as widths): the fit said them among its own
    # warnings only, and `recommend --fit --strict` passed (session 66)
    if table := [w for w in fit.warnings if w.startswith(UNRELIABLE)]:
        band = band.model_copy(update={"unreliable": [*band.unreliable, *(w.removeprefix(UNRELIABLE) for w in table)]})
        warnings += table
    rec = Recommendation(**{**dict(tr), "warnings": list(dict.fromkeys([*warnings, *groups.warnings]))},
                         source="fit", beta=base_beta(tr, pred.lr), band=band, group=g.group, groups=groups,
                         epsilon_mode=eps_mode)
    # constants the fit swept (gamma_embedding, ...) or its runs trained with (other than 1) fill the caller's
    # defaults: then they are not abcscale's defaults
    swept = {c.name.split("_")[0] for c in g.constants if c.name.startswith(tuple(f"{k}_" for k in _LR_CONSTANTS))}
    swept |= {k for k, v in g.trained_constants.items()
              if k in _LR_CONSTANTS and any(not math.isclose(x, 1.0) for x in v.values())}
    return _with_mup_beta_note(rec, {*(constants.model_fields_set if constants is not None else ()), *swept})


def base_beta(tr: Transfer, fitted: float) -> float:
    r"""``beta`` of a recommendation from a fit: the base LR at ``tr.base_width`` from which the analytic transfer
    (:func:`recommend_analytic`, a check config's ``base_width`` and ``beta``) gives ``tr``'s layer LRs, as every
    other answer's ``beta`` is. A per-layer sweep's fitted LR is that already (each layer's LR is
    :math:`\beta \gamma_l (n/b)^{-c_l}`); a global sweep's is every layer's LR at the target width, so its beta is
    it carried back by theory's :math:`(n/b)^{c}`, as :func:`abcscale.fitting.group_transfer` builds ``tr`` from.
    Until session 65 a global fit's ``beta`` was the target width's LR, which with ``base_width`` gave LRs
    :math:`(n/b)^{-c}` off (32x at 1024 over 32: a review)."""
    if tr.lr_mode is not LrMode.global_:
        return fitted
    return fitted * (tr.width / tr.base_width) ** tr.global_c


def recommend(req: RecommendRequest, fit: FitResult | None = None) -> Recommendation:
    """The answer to a recommend request: analytic, or from ``fit`` (the stored fit ``req.fit_id`` names)."""
    if isinstance(req, AnalyticRecommend):
        return recommend_analytic(req)
    if fit is None:
        raise ValueError(f"fit_id: the fit {req.fit_id!r} is needed to answer this request")
    selector = selector_from(req.group, parameterization=req.parameterization, optimizer=req.optimizer,
                             lr_mode=req.lr_mode, alignment=req.alignment)
    rec = recommend_from_fit(fit, req.width, selector=selector, constants=req.constants, form=req.form,
                             rules=req.rules)
    return rec if req.fit_id == LOCAL_FIT else rec.model_copy(update={"fit_id": req.fit_id})


#: the constants' per-layer tables, which take "e,h,r" and lists in Python
_PER_LAYER = frozenset({"gamma", "init_scale", "multiplier"})


def check_constant_numbers(constants: Mapping[str, Any]) -> None:
    """A constants table's numbers as a REST body's and convert()'s: ``{"epsilon": "1e-8"}`` was read as one. A
    per-layer table keeps Python's forms ("e,h,r", lists), which PerLayer reads. Said as a bool is: "constants
    (epsilon): a number, not a string"."""
    try:
        _check_json_types({k: v for k, v in constants.items() if k not in _PER_LAYER}, Constants, "")
    except PydanticCustomError as exc:
        where, _, what = str(exc).partition(": Input should be ")
        raise ValueError(f"constants ({where}): {what}" if what else f"constants: {exc}") from None


def recommend_request(
    *,
    width: int,
    parameterization: Parameterization | str | None = None,
    optimizer: Optimizer | str | None = None,
    alignment: Alignment | str | dict[str, float] | list[float] | tuple[float, ...] | None = None,
    lr_mode: LrMode | str | None = None,
    base_width: int | None = None,
    beta: float | None = None,
    constants: Constants | Mapping[str, Any] | None = None,
    fit_id: str | None = None,
    group: str | dict[str, Any] | None = None,
    form: Form | str | None = None,
    rules: Any = None,
) -> RecommendRequest:
    """The typed request for loose inputs (None = not given): analytic without ``fit_id``, else from the fit.

    Analytic needs ``parameterization``, ``optimizer``, ``base_width`` and ``beta``, and ``constants`` go
    into ``base``; ``group`` selects a fit's group, so it is an error here. From a fit, ``base_width`` and
    ``beta`` are errors (the fit gives the LR). ``POST /v1/recommend`` takes the same union and refuses the
    same mixtures. ``form`` and ``rules`` (:func:`parse_rules`) shape the answer's ``groups`` for either
    source. Raises a ``ValidationError`` naming every bad input.
    """
    errors: dict[str, str] = {}
    if fit_id is None:
        required = {"parameterization": parameterization, "optimizer": optimizer, "base_width": base_width,
                    "beta": beta}
        errors |= {k: "required for the analytic transfer (or give a fit)" for k, v in required.items() if v is None}
        if group is not None:
            errors["group"] = "only with a fit (it selects the fit's group)"
    else:
        errors |= {k: "only for the analytic transfer (a fit gives the LR)"
                   for k, v in (("base_width", base_width), ("beta", beta)) if v is not None}
    al, selector = None, None
    try:
        al = None if alignment is None else Alignment.parse(alignment)
    except ValidationError as exc:  # a dict with bad numbers
        errors.setdefault("alignment", validation_message(exc))
    except ValueError as exc:
        errors.setdefault("alignment", str(exc).removeprefix("alignment "))
    try:
        selector = _parse_group(group) if isinstance(group, str) else group
    except ValueError as exc:
        errors.setdefault("group", str(exc).removeprefix("group: "))
    items = None
    try:  # the request model validates each rule, naming it (rules[0].pattern)
        items = None if rules is None else rule_items(rules)
    except ValueError as exc:
        errors["rules"] = str(exc).removeprefix("rules: ")
    if errors:
        raise field_errors("RecommendRequest", errors, {"group": group, "alignment": alignment, "rules": rules})
    given = {k: v for k, v in (("parameterization", parameterization), ("optimizer", optimizer),
                               ("alignment", al), ("lr_mode", lr_mode), ("form", form),
                               ("rules", items)) if v is not None}
    if isinstance(constants, Mapping):  # as a config file or a REST body gives them: {"gamma": {...}, ...}
        check_constant_numbers(constants)
        try:
            constants = Constants.model_validate(dict(constants))
        except ValidationError as exc:
            raise ValueError(validation_message(exc, within="constants")) from None
    if constants is not None and not isinstance(constants, Constants):
        raise ValueError(f"constants: expected Constants or a dict of its fields, got {type(constants).__name__}")
    if fit_id is None:
        base = {**(constants.given() if constants else {}), "width": base_width, "beta": beta}
        return AnalyticRecommend.model_validate({**given, "width": width, "base": base})
    return FitRecommend.model_validate({**given, "width": width, "fit_id": fit_id, "group": selector,
                                        "constants": constants})


#: the constants that set how a mup-form answer's per-group lrs follow from beta
_LR_CONSTANTS = frozenset({"gamma", "multiplier"})


def mup_beta_note(rec: Recommendation, given: Iterable[str] = ()) -> str | None:
    """What a mup-form answer from abcscale's default constants assumes of its beta (``given``: the constants the
    caller gave; gamma or multiplier among them says which beta): that it is abcscale's base LR (a sweep of
    abcscale's muP, exported to microsoft/mup: per-group lrs), not the one lr microsoft/mup gave every group (a
    MuAdam sweep, whose reading is the constants of ``abcscale mup import``: every group's lr is the swept one).
    Neither the fit nor the answer can tell; a review read a MuAdam sweep's fit as the first, silently (embedding lr
    x sqrt(128), readout / sqrt(128)). None where the answer is not muP's in the mup form, is a global LR's (no
    MuAdam sweep is one), or both readings agree."""
    spec = rec.groups
    if spec is None or spec.form is not Form.mup or rec.lr_mode is LrMode.global_ or _LR_CONSTANTS & set(given) \
            or _norm("parameterization", rec.parameterization) != Parameterization.mup.value:
        return None  # microsoft/mup's setup is muP: `mup import` gives muP constants
    matrices = [s for s in spec.roles if s.role in (Role.embedding, Role.hidden, Role.readout)]
    if any(s.mup_lr is None for s in matrices) or all(
            math.isclose(s.mup_lr or 0.0, rec.beta, rel_tol=1e-3) for s in matrices):
        return None
    mu = mup_wrapper(rec.optimizer)  # adafactor's was said MuAdam, which runs Adam
    lrs = ", ".join(f"{s.role.value} {s.mup_lr:.4g}" for s in matrices)
    beta, swept = ((f"the fitted beta {rec.beta:.4g}", "the sweep ran") if rec.source == "fit" else
                   (f"beta {rec.beta:g}", "it was tuned with"))
    return (f"mup form: the {mu} lrs ({lrs}) read {beta} as abcscale's base LR under its default muP constants "
            f"(a sweep of abcscale's muP, exported to microsoft/mup); if {swept} microsoft/mup, one {mu} lr for "
            f"every group, that lr is abcscale's beta only under the constants of `abcscale mup import -o "
            f"{rec.optimizer.value} --base-width {rec.base_width} --lr {rec.beta:.4g} --init-std E,H,R` (E,H,R: your "
            "mup.init stds at the base width; REST: POST /v1/theory/from-mup): give them as the constants (the "
            "CLI's --constants takes its --json; Python, from_mup(...).constants; REST, base's constants), and "
            f"every group's {mu} lr is {rec.beta:.4g}")


def parse_rules(value: Any) -> tuple[GroupRule, ...]:
    """Name rules from loose input (:func:`rule_items`), validated; a ValueError names the bad entry
    (``rules[1]: pattern: ...``)."""
    out = []
    for i, item in enumerate(rule_items(value)):
        try:
            out.append(item if isinstance(item, GroupRule) else GroupRule.model_validate(item))
        except ValidationError as exc:
            raise ValueError(f"rules[{i}]: " + validation_message(exc)) from None
    if (said := shadowed_rule(out)) is not None:
        raise ValueError(said)
    return tuple(out)


def rule_items(value: Any) -> list[Any]:
    """The entries of loose name rules, each a :class:`GroupRule` or a ``{pattern, role}`` dict to validate:
    from a list of rules, dicts or ``(pattern, role)`` pairs, a ``{pattern: role}`` mapping, or a document's
    ``{"rules": [...]}``."""
    if isinstance(value, Mapping) and set(value) == {"pattern", "role"}:
        # one {pattern, role} rule not in a list (TOML without [[rules]]): read as a {regex: role} mapping it was two
        # rules, `pattern -> vector` (the role alias bias) and `role -> readout` (a review)
        value = [value]
    elif isinstance(value, Mapping):
        if "rules" in value and set(value) != {"rules"}:  # read as a {pattern: role} mapping, "rules" was a pattern
            raise ValueError(f"rules: a document with 'rules' holds nothing else; also has "
                             f"{', '.join(sorted(str(k) for k in value if k != 'rules'))}")
        if set(value) != {"rules"} and (nested := [k for k, v in value.items() if isinstance(v, list | dict)]):
            # `[[rule]]` in TOML: read as a {pattern: role} mapping it was the pattern "rule" with a list for a role
            raise ValueError(f"rules: {str(nested[0])[:40]!r} holds a list or table, not a role: a document's rules "
                             "go under 'rules' ([[rules]] tables in TOML, rules: in YAML)")
        value = value["rules"] if set(value) == {"rules"} else [{"pattern": k, "role": v} for k, v in value.items()]
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValueError("rules: expected a list of {pattern, role}")
    if isinstance(value, tuple | list) and len(value) == 2 and all(isinstance(x, str) for x in value) \
            and value[1].strip().lower() in {r.value for r in Role}:
        value = [value]  # one (pattern, role) pair not wrapped in a list: each string was read as a rule (a review)
    return [{"pattern": x[0], "role": x[1]} if isinstance(x, list | tuple) and len(x) == 2 else x for x in value]


#: keys only `abcscale tune`'s file has: a document with them is one, whatever else it holds
_TUNE_ONLY = frozenset({"history", "candidates", "trials_run", "loss_std", "abcscale_version"})

#: keys every `abcscale mup import --json` document has (MupImport): a document with them is one
_MUP_IMPORT = frozenset({"setup", "constants", "recommend"})

#: the base width and LR a constants object may carry beside its constants (a BaseConfig: `mup import`'s
#: `constants`), and the words for them
_BASE_KEYS = {"width": "the base width they hold at", "beta": "the LR tuned there"}


@dataclass(frozen=True)
class ConstantsDocument:
    """What ``--constants FILE`` read when it is not `abcscale tune`'s file: the constants (a
    :class:`~abcscale.schemas.theory.BaseConfig` where the document gives the base width and beta beside them), and
    the `abcscale mup import --json` document they came from, if they did (its ``setup`` names the optimizer)."""

    constants: Constants
    mup_import: MupImport | None = None

    @property
    def base(self) -> BaseConfig | None:
        """The base width and beta the constants hold at, where the document gives them."""
        return self.constants if isinstance(self.constants, BaseConfig) else None


def read_constants(path: str | Path) -> Constants | None:
    """A hand-written constants file, as REST's ``constants`` block takes it: JSON, YAML or TOML (by suffix) with
    ``gamma``, ``init_scale``, ``multiplier``, ``epsilon``, ... at its top level or under ``constants``. None where
    the document is not one (no such key, or one only `abcscale tune`'s file has); a ValueError naming the file and
    the field where it is one with a bad value, and where it gives the base width and beta too (`abcscale mup import
    --json`'s document, or its ``constants``), which the constants alone would drop (they hold at that width):
    :func:`read_constants_document` reads those."""
    found = read_constants_document(path)
    if found is not None and (base := found.base) is not None:
        what = "an `abcscale mup import --json` document" if found.mup_import is not None else "a constants object"
        raise ValueError(f"{path}: {what} with the base width {base.width} and beta {base.beta:g} its constants hold "
                         "at, which constants alone would drop: give them as a BaseConfig (abcscale.BaseConfig of "
                         "its constants, or abcscale.from_mup(...).constants), which recommend() takes with its base "
                         "width and beta")
    return None if found is None else found.constants


def document_beta_note(doc_beta: float, beta: float | None, *, name: str, path: str | Path) -> str | None:
    """The note where ``beta`` (``recommend --base-lr``, ``recommend(beta=)``, a check config's ``beta``) replaces
    the beta of a constants document (``mup import --json``'s, a constants object with ``width`` and ``beta``):
    another LR for the same setup is a choice, taken, but every LR moves by the same factor. None where it agrees
    or none was given."""
    if beta is None or math.isclose(beta, doc_beta, rel_tol=1e-9):
        return None
    return (f"{name}: {beta:g} replaces the beta {doc_beta:g} in {path}: every LR is {beta / doc_beta:.3g}x the "
            f"file's transfer (drop {name} to use the file's)")


def read_constants_document(path: str | Path) -> ConstantsDocument | None:
    """A constants file as ``recommend --constants`` reads it when it is not `abcscale tune`'s: a hand-written one
    (:func:`read_constants`), with ``width`` and ``beta`` beside the constants where it gives them (its constants
    then a :class:`~abcscale.schemas.theory.BaseConfig`), or the JSON of ``abcscale mup import --json`` (its
    ``constants``, a BaseConfig, and the document, whose setup names the optimizer). None where it is neither; a
    ValueError naming the file and the field where it is one with a bad value."""
    path = Path(path)
    data = _document(path)
    hand = path.suffix.lower() in (".yaml", ".yml", ".toml")  # `abcscale tune` writes JSON: these are hand-written
    if hand and data is None:  # a YAML mistake was said as "Invalid JSON" of a tune file (a review)
        if _json_like(_text(path)):  # a tune file saved under such a name: read as it always was (a code review)
            return None
        _said_why(path)
    if isinstance(data, dict) and _MUP_IMPORT <= set(data) and not set(data) & _TUNE_ONLY:
        # `abcscale mup import --json`: refused as "not a constants file from `abcscale tune`" listing 20 fields
        # (a review); its constants are a BaseConfig, the base width and beta included
        try:
            imported = without_epsilon(MupImport.model_validate(data))
        except ValidationError as exc:
            raise ValueError(f"{path}: an `abcscale mup import --json` document: "
                             f"{validation_message(exc)}") from None
        return ConstantsDocument(imported.constants, imported)
    if hand and isinstance(data, dict) and isinstance(data.get("constants"), dict) and set(data) != {"constants"} \
            and "kind" not in data and not set(data) & _TUNE_ONLY:
        # the constants under `constants` and another key beside them: said "no constants in it" (a review)
        raise ValueError(f"{path}: " + "; ".join(
            f"{k}: a constant beside the `constants` table: put it inside it (or every constant at the top level)"
            if k in Constants.model_fields else
            f"{k} ({_BASE_KEYS[k]}) beside the `constants` table: put it inside it, beside the constants (or every "
            "key at the top level)" if k in _BASE_KEYS else
            f"{k}: unknown key beside constants (a hand-written constants file holds the constants alone, at its "
            "top level or under constants, with the base width and beta they hold at as width and beta; the setup "
            "is the flags')" for k in data if k != "constants"))
    if isinstance(data, dict) and set(data) == {"constants"} and isinstance(data["constants"], dict):
        data = data["constants"]
    if not isinstance(data, dict) or not set(data) & set(Constants.model_fields) or set(data) & _TUNE_ONLY:
        if hand and not (isinstance(data, dict) and set(data) & _TUNE_ONLY):
            raise ValueError(f"{path}: no constants in it (gamma, init_scale, multiplier, epsilon, weight_decay, ... "
                             "at its top level or under constants)")
        return None
    base = [k for k in _BASE_KEYS if k in data]
    if len(base) == 1:  # a BaseConfig is both: a width alone would be checked and a beta alone used, or not
        other = next(k for k in _BASE_KEYS if k not in data)
        raise ValueError(f"{path}: {base[0]} without {other}: a constants object gives the base width and beta "
                         f"together beside the constants (width: {_BASE_KEYS['width']}, beta: {_BASE_KEYS['beta']}; "
                         "as `abcscale mup import --json` writes them), or neither")
    try:  # width and beta beside the constants: `mup import --json`'s `constants` (a review: "width: Extra inputs")
        return ConstantsDocument((BaseConfig if base else Constants).model_validate(data))
    except ValidationError as exc:
        raise ValueError(f"{path}: {validation_message(exc)}") from None


def without_epsilon(imported: MupImport) -> MupImport:
    """``imported`` with no epsilon where its optimizer has none (sgd, lion, adafactor): its JSON holds every constant,
    epsilon's default and (before session 64) epsilon_mode constant too, which read back as given warned "epsilon:
    lion has no epsilon; the 1e-08 given changes nothing" though nobody gave one (a review)."""
    if theory.layer_rules(imported.setup.optimizer).has_epsilon:
        return imported
    kept = imported.constants.model_dump(exclude={"epsilon", "epsilon_mode"}, exclude_unset=True)
    return imported.model_copy(update={"constants": BaseConfig.model_validate(kept)})


def _document(path: Path) -> Any:
    """The parsed JSON, YAML or TOML document at ``path`` (by suffix; JSON where the suffix says none), or None."""
    from abcscale.schemas.textfile import UnreadableText, read_text
    from abcscale.usecases.config_map import DuplicateKey, load_json, load_yaml

    loads: dict[str, Callable[[str], Any]] = {".toml": tomllib.loads, ".yaml": load_yaml, ".yml": load_yaml}
    try:
        return loads.get(path.suffix.lower(), load_json)(read_text(path))
    except (UnreadableText, OSError, DuplicateKey, json.JSONDecodeError, tomllib.TOMLDecodeError, yaml.YAMLError,
            ValueError):
        return None


def _text(path: Path) -> str:
    from abcscale.schemas.textfile import UnreadableText, read_text

    try:
        return read_text(path)
    except (UnreadableText, OSError):
        return ""


def _said_why(path: Path) -> None:
    """A hand-written YAML or TOML file that does not parse: its parser's words, one line."""
    from abcscale.schemas.textfile import UnreadableText, read_text
    from abcscale.usecases.config_map import DuplicateKey, load_yaml

    kind = "TOML" if path.suffix.lower() == ".toml" else "YAML"
    try:
        data = (tomllib.loads if kind == "TOML" else load_yaml)(read_text(path))
    except (UnreadableText, OSError, DuplicateKey) as exc:
        raise ValueError(f"{path}: {exc}") from None
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: not valid {kind}: {' '.join(str(exc).split())}") from None
    if data is None:
        raise ValueError(f"{path}: empty; give the constants (gamma, init_scale, multiplier, ...)")


def _json_like(text: str) -> bool:
    """Whether a file of no suffix reads as JSON: it opens with ``{`` or ``[`` and parses so."""
    if text.lstrip()[:1] not in ("{", "["):
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def read_rules(path: str | Path) -> tuple[GroupRule, ...]:
    """Name rules from a JSON, YAML or TOML file (by suffix): a list of ``{pattern, role}`` or, for TOML,
    ``[[rules]]`` tables. A ValueError names the file and the bad entry."""
    path = Path(path)
    from abcscale.schemas.textfile import UnreadableText, read_text
    from abcscale.usecases.config_map import DuplicateKey, load_json, load_yaml

    try:
        text = read_text(path)
    except UnreadableText as exc:
        raise ValueError(f"{path}: {exc}") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.__class__.__name__})") from None
    suffix = path.suffix.lower()

    loads: dict[str, Callable[[str], Any]] = {".json": load_json, ".toml": tomllib.loads, ".yaml": load_yaml,
                                              ".yml": load_yaml}
    if suffix not in loads:
        if suffix:
            raise ValueError(f"{path}: unknown format; use .json, .yaml, .yml or .toml")
        # no suffix at all (a pipe, `--rules <(echo '[...]')`, is /dev/fd/63): JSON when it opens as JSON (a
        # tab-indented one is no YAML), else YAML
        suffix = ".json" if _json_like(text) else ".yaml"
    try:
        data = loads[suffix](text)
    except DuplicateKey as exc:
        raise ValueError(f"{path}: {exc}") from None
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: not valid {suffix[1:].upper()}: {' '.join(str(exc).split())}") from None
    try:
        rules = parse_rules(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    if not rules:  # an empty TOML file read as no rules at all, where an empty JSON or YAML one was refused
        raise ValueError(f"{path}: no rules in it; give [[rules]] tables (TOML) or a list of {{pattern, role}}")
    return rules


def selector_from(
    group: str | dict[str, Any] | None,
    *,
    parameterization: Parameterization | str | None = None,
    optimizer: Optimizer | str | None = None,
    lr_mode: LrMode | str | None = None,
    alignment: Alignment | str | dict[str, float] | None = None,
) -> dict[str, Any]:
    """The selector for :func:`select_group`: ``group`` (``'key=value,...'``, a JSON object, or a dict), narrowed
    by the other arguments unless ``group`` already names them.

    ``alignment`` is compared by its name. A key the fit's table has no column for stands in for that column
    (:func:`select_group`'s hints): a table without ``lr_mode`` needs one.
    """
    if group is not None and not isinstance(group, str | dict):
        raise ValueError(f"group: expected 'key=value,...' or a dict, got {type(group).__name__}")
    selector = _parse_group(group) if isinstance(group, str) else dict(group or {})
    for key, value in (("parameterization", parameterization), ("optimizer", optimizer), ("lr_mode", lr_mode)):
        if value is None:
            continue
        if key not in selector:
            selector[key] = str(value)
        elif _norm(key, value) != _norm(key, selector[key]):  # it answered the group's, in silence
            raise ValueError(f"{key}: {str(value)!r} contradicts the group's {key}={selector[key]}; give it once")
    if alignment is not None:
        name = Alignment.parse(alignment).name
        if "alignment" not in selector:
            selector["alignment"] = name
        elif _norm("alignment", name) != _norm("alignment", selector["alignment"]):  # compared as select_group does
            raise ValueError(f"alignment: {name!r} contradicts the group's alignment={selector['alignment']}; give "
                             "it once")
    return selector


def group_text(group: Mapping[str, Any]) -> str:
    """A group as ``group`` takes it: ``key=value,...``, or a JSON object where a key or value holds ``,`` or
    ``=`` (which the pairs cannot spell)."""
    pairs = {str(k): value_text(v) for k, v in group.items()}
    if any(c in x for x in (*pairs, *pairs.values()) for c in ",=") or any(x != x.strip() for x in pairs.values()):
        return json.dumps(pairs, ensure_ascii=False)
    return ",".join(f"{k}={v}" for k, v in pairs.items())


def _parse_group(text: str) -> dict[str, str]:
    def once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:  # json's object hook: the later value won silently
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise ValueError(f"group: {key}: given twice ({out[key]!r} and {value!r}); give each key once")
            out[key] = value
        return out

    if text.lstrip().startswith("{"):  # a JSON object: values with ',' or '=' in them
        try:
            data = json.loads(text, object_pairs_hook=once)
        except json.JSONDecodeError as exc:
            raise ValueError(f"group: not a JSON object: {exc.msg} at character {exc.pos}") from None
        if not isinstance(data, dict) or not all(isinstance(v, str | int | float) and not isinstance(v, bool)
                                                  for v in data.values()):
            raise ValueError("group: a JSON group is an object of key: value (a string or a number)")
        return {str(k): str(v) for k, v in data.items()}
    selector: dict[str, str] = {}
    for part in text.split(",") if text.strip() else []:
        if "=" not in part:
            raise ValueError(f"group: expected key=value pairs, got {part!r}")
        key, value = (s.strip() for s in part.split("=", 1))
        if key in selector:  # the later value won silently (lr_mode=global,lr_mode=per_layer: per_layer)
            raise ValueError(f"group: {key}: given twice ({selector[key]!r} and {value!r}); give each key once")
        selector[key] = value
    return selector


def _norm(key: str, value: Any) -> str:
    """Compare group values loosely: enum aliases and letter case do not matter."""
    s = str(value).strip()
    parsers: dict[str, Any] = {"parameterization": Parameterization, "optimizer": Optimizer, "lr_mode": LrMode}
    try:
        if key in parsers:
            return parsers[key](s).value
        if key == "alignment":
            return Alignment.parse(s).name
    except ValueError:
        pass
    return s.lower()


_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def group_value_matches(key: str, stored: Any, given: Any) -> bool:
    """Whether a selector's ``given`` value picks a group whose ``key`` holds ``stored`` (:func:`select_group`'s
    comparison: enum aliases and case do not matter, and a number written another way is the same number)."""
    return _norm(key, stored) == _norm(key, given) or _same_number(stored, given)


def _same_number(stored: Any, given: Any) -> bool:
    """A numeric group value (a table's float 1.0, an integer id) and a selector written another way (``1``,
    ``1e0``; a JSON client sends 1.0 as 1): equal as exact decimals. Text labels ("1" beside "1.0") are not
    numbers, and plain digits only are read (not ``1_0``)."""
    if isinstance(stored, bool) or not isinstance(stored, int | float):
        return False
    text = str(given).strip()
    if not _PLAIN_NUMBER.fullmatch(text) or (isinstance(stored, float) and not math.isfinite(stored)):
        return False
    return decimal.Decimal(repr(stored) if isinstance(stored, float) else str(stored)) == decimal.Decimal(text)


#: how select_group's message says to pick a group, in the REST body's words: the CLI (``--group``) and the Python
#: API (``group=``) say it with theirs
SELECT_HINT = "select one with group key=value,..."


class GroupSelectError(ValueError):
    """No group, or several, match a selector; ``filters`` is the selector's part that was matched (the CLI says
    it in its flags' words)."""

    def __init__(self, message: str, filters: dict[str, Any], unmatched: tuple[str, ...] = (),
                 several: bool = False) -> None:
        super().__init__(message)
        self.filters = filters
        self.unmatched = unmatched  # the keys whose value no group holds (the selection's fault, where known)
        self.several = several  # more than one group matched: no field is wrong, one is missing


def select_group(fit: FitResult, selector: dict[str, Any] | None) -> tuple[GroupFit, dict[str, Any]]:
    """The unique group matching ``selector``; keys no group has but theory needs are returned as hints."""
    from abcscale.fitting.predict import THEORY_KEYS

    selector = dict(selector or {})
    cols = sorted({k for g in fit.groups for k in g.group})
    hints, filters = {}, {}
    for k, v in selector.items():
        if k in cols:
            filters[k] = v
        elif k in THEORY_KEYS:
            hints[k] = v
        else:
            raise ValueError(f"group key {k!r}: not a group column of this fit; group columns are: "
                             + (", ".join(cols) or "(none)"))
    matches = [g for g in fit.groups
               if all(k in g.group and _norm(k, g.group[k]) == _norm(k, v) for k, v in filters.items())]
    if not matches:  # the selector's numbers written another way than the stored ones (1 for 1.0)
        matches = [g for g in fit.groups if all(k in g.group and (_norm(k, g.group[k]) == _norm(k, v)
                                                                  or _same_number(g.group[k], v))
                                                for k, v in filters.items())]
    if len(matches) != 1:
        listing = "; ".join(",".join(f"{k}={value_text(v)}" for k, v in g.group.items()) or "(all rows)"
                            for g in fit.groups)
        what = "no group matches" if not matches else f"{len(matches)} groups match"
        unmatched = tuple(k for k, v in filters.items() if not any(
            k in g.group and (_norm(k, g.group[k]) == _norm(k, v) or _same_number(g.group[k], v)) for g in fit.groups))
        from abcscale.usecases.fits import selector_text  # each value cut short: a 1 MB value came back whole

        raise GroupSelectError(f"{what} {selector_text(filters)}: {SELECT_HINT}; available groups: {listing}",
                               filters, unmatched, several=bool(matches))
    return matches[0], hints


__all__ = ["recommend", "recommend_request", "recommend_analytic", "recommend_from_fit", "selector_from",
           "select_group", "GroupSelectError", "groups_of", "parse_rules", "rule_items", "read_rules", "LOCAL_FIT",
           "read_constants", "read_constants_document", "ConstantsDocument", "mup_beta_note"]
