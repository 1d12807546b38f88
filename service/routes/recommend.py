"""POST /v1/recommend: per-layer settings at a target width, from theory (``base``) or a stored fit."""

from __future__ import annotations

import functools

from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from abcscale import theory
from abcscale.schemas.api import FitConstants, RecommendRequest, alignment_of
from abcscale.schemas.enums import LrMode, Optimizer, Parameterization
from abcscale.schemas.recommend import Recommendation
from abcscale.schemas.theory import Alignment, BaseConfig
from abcscale.service import crud
from abcscale.service.http import StrictJSONRoute, describe, value_error

router = APIRouter(tags=["recommend"], route_class=StrictJSONRoute)



@functools.lru_cache(maxsize=4096)
def _analytic(p: Parameterization, opt: Optimizer, base: BaseConfig, width: int, al: Alignment,
              mode: LrMode) -> bytes:
    # A pure function of validated, immutable inputs: the serialized answer can be reused as it is.
    return theory.recommend(p, opt, base, width, al, mode).model_dump_json().encode()


@router.post("/recommend", response_model=Recommendation, responses={404: {"description": "Fit not found"}})
async def recommend(req: RecommendRequest, request: Request) -> Response:
    """Per-layer multiplier, init std, LR and epsilon at ``width`` (``abcscale recommend --json``)."""
    al = alignment_of(req.alignment)
    if req.base is not None:
        try:
            body = _analytic(req.parameterization, req.optimizer, req.base, req.width, al, req.lr_mode)
        except ValueError as exc:  # e.g. a width ratio so extreme that an LR under/overflows
            value_error(describe(exc))
        return Response(body, media_type="application/json")
    rec = await run_in_threadpool(_from_fit, request, req)
    return Response(rec.model_dump_json().encode(), media_type="application/json")


def _from_fit(request: Request, req: RecommendRequest) -> Recommendation:
    from abcscale.fitting.predict import recommend_from_fit

    # A session only on this path: the analytic answers (the hot path) never touch the database.
    with request.app.state.sessionmaker() as session:
        record = crud.get_fit(session, fit_id=req.fit_id)
        if record is None:
            raise HTTPException(404, detail="Fit not found")
        fit = crud.fit_result(record)
    selector: dict[str, object] = dict(req.group or {})
    for key in ("parameterization", "optimizer", "lr_mode"):
        value = getattr(req, key)
        # As in the CLI: the body's fields narrow the group unless the selector already names them;
        # per_layer is the default mode and selects nothing.
        if value is not None and key not in selector and not (key == "lr_mode" and value is LrMode.per_layer):
            selector[key] = value.value
    if "alignment" in req.model_fields_set and "alignment" not in selector:
        selector["alignment"] = alignment_of(req.alignment).name
    try:
        # FitConstants' defaults are what ``abcscale recommend --fit`` passes without flags: both answer the same.
        constants = (req.constants or FitConstants()).as_kwargs()
        rec = recommend_from_fit(fit, req.width, selector=selector, constants=constants)
    except ValueError as exc:
        value_error(str(exc), ("body", "fit_id"))
    return rec.model_copy(update={"fit_id": req.fit_id}) if rec.fit_id is None else rec
