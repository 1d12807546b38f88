"""POST /v1/recommend: per-layer settings at a target width, from theory (``base``) or a stored fit (``fit_id``).

The answer is :func:`abcscale.usecases.recommend`'s, as for ``abcscale recommend --json``: a
:class:`~abcscale.schemas.recommend.Recommendation`, serialized here (``_json``) rather than by FastAPI's
response-model pass. That pass would validate the model again and cost about 40 us per request, a quarter of
the cached path (measured with tests/benchmarks/bench_service.py); ``responses`` declares the body for
OpenAPI, and the schemathesis test checks every answer against it.
"""

from __future__ import annotations

import functools

from fastapi import APIRouter, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from abcscale import usecases
from abcscale.schemas.api import AnalyticRecommend, FitRecommend, RecommendBody, TunedRecommend
from abcscale.schemas.errors import validation_message
from abcscale.schemas.recommend import Recommendation
from abcscale.schemas.theory import Constants
from abcscale.schemas.tune import VARIANT_EPSILON
from abcscale.service import crud
from abcscale.service.deps import SessionsDep, get_fit_record
from abcscale.service.http import StrictJSONRoute, describe, error, value_error
from abcscale.usecases.tune import analytic_request, setting_name, with_variant_notes

router = APIRouter(tags=["recommend"], route_class=StrictJSONRoute)


def _json(rec: Recommendation) -> bytes:
    return rec.model_dump_json().encode()


def _analytic(req: AnalyticRecommend) -> bytes:
    # which base fields the body gave is part of the answer (an epsilon given to SGD is said), and equal models
    # compare by value only: the cache keys both
    return _analytic_cached(req, frozenset(req.base.model_fields_set))


@functools.lru_cache(maxsize=4096)
def _analytic_cached(req: AnalyticRecommend, given: frozenset[str]) -> bytes:
    # A pure function of a validated, frozen request: its serialized answer is reused as it is (the hot path).
    return _json(usecases.recommend_analytic(req))


@router.post("/recommend", responses={200: {"model": Recommendation, "description": "the recommendation"},
                                      404: error("Fit not found"), 409: error("the stored fit no longer reads")})
async def recommend(req: RecommendBody, sessions: SessionsDep) -> Response:
    """Per-layer multiplier, init std, LR and epsilon at ``width`` (``abcscale recommend --json``), and ``groups``:
    the same as parameter groups in ``form`` (abc, multiplier_free, mup), with ``rules`` tried first. ``tuned``
    (a constants file from ``abcscale tune``, as it is) is the analytic transfer of its beta and constants."""
    tuned = req.tuned if isinstance(req, TunedRecommend) else None
    if isinstance(req, TunedRecommend):  # the file's analytic request: the same cached path
        _same_setup(req)
        try:
            req = analytic_request(req.tuned, req.width, lr_mode=req.lr_mode, form=req.form, rules=req.rules)
        except ValidationError as exc:  # its fields are the schema's; a combination theory refuses is a 422
            value_error(validation_message(exc), ("body", "tuned"))
    if isinstance(req, AnalyticRecommend):  # no database: the analytic answers are the hot path
        try:
            body = _analytic(req)
        except ValueError as exc:  # e.g. a width ratio so extreme that an LR under/overflows
            msg = describe(exc)  # theory names the base's weight decay when the optimizer has none: point at it
            # at the file's field as the schema's errors name it (the body's tag, then its `tuned` field)
            decay = ("body", "tuned", "tuned", "constants", "weight_decay") if tuned else ("body", "base",
                                                                                          "weight_decay")
            value_error(msg, decay if msg.startswith("weight_decay:") else ("body",))
        if tuned is not None and tuned.optimizer_variant in VARIANT_EPSILON:  # what the variant does with epsilon
            body = _json(with_variant_notes(Recommendation.model_validate_json(body), tuned))
    else:
        body = await run_in_threadpool(_from_fit, req, sessions)
    return Response(body, media_type="application/json")


def _same_setup(req: TunedRecommend) -> None:
    """A 422 at the field when the body names another setup than its constants file was tuned for, as
    ``recommend --constants`` refuses ``-p``/``-o``/``-a`` that differ from the file's."""
    for field in ("parameterization", "optimizer", "alignment"):
        given, file = getattr(req, field), getattr(req.tuned, field)
        if given is not None and setting_name(given) != setting_name(file):
            value_error(f"{field}: the constants in `tuned` were tuned for {setting_name(file)}, not "
                        f"{setting_name(given)}; leave {field} out (the file gives it) or tune for this setup",
                        ("body", field))


#: the body's fields that select the fit's group (and stand in for its table's missing columns)
_SELECTING = ("parameterization", "optimizer", "alignment", "lr_mode")
#: "per-layer settings need the group's parameterization and optimizer: the fit's table has no such column; ..."
_NEEDS = "per-layer settings need the group's "


def _selection_field(exc: ValueError, req: FitRecommend) -> tuple[str, ...]:
    """Where a fit's error points: the body's field at fault, as the analytic body's errors name theirs (a review:
    they all pointed at ``fit_id``). The field that made a group selection that matches nothing (``group``, or the
    one selecting field such as ``optimizer``), one that contradicts ``group`` or the sweep, a setup field the fit's
    table lacks and none was given, a constant of ``constants`` the answer refuses (``weight_decay`` for adam), the
    width; else the fit itself (its own data: a setup column theory cannot read, too few widths)."""
    from abcscale.fitting.predict import GroupSetupError
    from abcscale.usecases.recommend import GroupSelectError

    message = str(exc)
    if message.startswith(("group key ", "group: ")):
        return ("body", "group")
    if isinstance(exc, GroupSetupError):  # the fit's table's own column
        return ("body", "fit_id")
    if message.startswith(_NEEDS):  # the setup the table lacks, none given: the first field to give
        asked = message.removeprefix(_NEEDS).partition(":")[0]
        return ("body", next((k for k in _SELECTING if k in asked.split(" and ")), "fit_id"))
    field = message.partition(": ")[0]
    if field in _SELECTING:  # one that contradicts `group` or the sweep's exponents (the table's lr_* columns)
        return ("body", field) if getattr(req, field) is not None or field not in (req.group or {}) else (
            "body", "group")
    if field in Constants.model_fields:  # a constant the body gave (a carried one is the fit's: its runs')
        return ("body", "constants", field) if req.constants is not None and \
            field in req.constants.model_fields_set else ("body", "fit_id")
    if field in ("width", "form", "rules"):
        return ("body", field)
    if not isinstance(exc, GroupSelectError):
        return ("body", "fit_id")
    if exc.several:  # nothing given is wrong: a field that tells the groups apart is missing, which `group` adds
        return ("body", "group")  # (with no selector at all too: it was `fit_id`'s, a review)
    if not exc.filters:
        return ("body", "fit_id")
    by_group = set(req.group or {})
    if len(exc.unmatched) == 1:  # the one value no group holds (parameterization "ntk" in a fit of mup and sp)
        (key,) = exc.unmatched
        return ("body", "group") if key in by_group else ("body", key)
    fields = {k for k in exc.filters if k not in by_group}
    if not fields:
        return ("body", "group")
    if len(fields) == 1 and not by_group & set(exc.filters):
        return ("body", fields.pop())
    # several fields selected together: the group where it took part, else the first (a loc names one field)
    return ("body", "group") if by_group & set(exc.filters) else ("body", sorted(fields)[0])


def _no_law_gated(exc: ValueError, strict: bool) -> None:
    """With ``strict``, a fit that predicts nothing (one width swept) fails the gate at `strict`, as the CLI's
    ``--strict`` exits 1 on it and the Python API's raises "strict: ..." (it was a 422 at the fit, a review)."""
    from abcscale.fitting.predict import NoLaw

    if strict and isinstance(exc, NoLaw):
        value_error(f"strict: unreliable prediction: no prediction: {exc}", ("body", "strict"))


def _rest_words(message: str) -> str:
    """A selection hint in the request's words: `group` is an object here, not the CLI's key=value text."""
    from abcscale.usecases.recommend import SELECT_HINT

    return message.replace(SELECT_HINT, "select one with `group` (an object, column: value) or the parameterization, "
                                        "optimizer, lr_mode and alignment fields")


def _from_fit(req: FitRecommend, sessions: sessionmaker[Session]) -> bytes:
    with sessions() as session:
        fit = crud.fit_result(get_fit_record(req.fit_id, session))  # 404 as GET /v1/fits/{fit_id}
    try:
        rec = usecases.recommend(req, fit)
    except ValueError as exc:  # no group matches, no across-width fit, an LR out of range at this width, ...
        _no_law_gated(exc, req.strict)
        value_error(_rest_words(describe(exc)), _selection_field(exc, req))
    if req.strict and rec.band is not None and rec.band.unreliable:  # as `recommend --fit --strict`
        value_error("strict: unreliable prediction: " + "; ".join(rec.band.unreliable), ("body", "strict"))
    return _json(rec)
