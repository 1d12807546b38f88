"""GET /healthz: liveness, and the cheapest route (the benchmark's baseline). GET /readyz: readiness, the database
answering a read (a load balancer's or Kubernetes' readiness probe)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from abcscale.schemas.api import Health
from abcscale.service.http import StrictJSONRoute
from abcscale.usecases import version

router = APIRouter(tags=["health"], route_class=StrictJSONRoute)

_OK = Health(version=version())
#: seconds a probe's client waits before asking again (the API's database 503s say the same: app.DB_RETRY_AFTER_S)
RETRY_AFTER_S = 5

log = logging.getLogger("abcscale.service")


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """Liveness: the process answers (no database round trip)."""
    return _OK


_READY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": 'the database answers: {"status": "ready", "version": ...}'},
    503: {"description": 'the database cannot be read: {"detail": why}, with Retry-After'},
}


@router.get("/readyz", responses=_READY_RESPONSES)
def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 when the database answers a read of its schema revision, 503 with ``{"detail": why}`` and
    Retry-After when it does not (a PostgreSQL server stopped or unreachable, a SQLite file locked or damaged).
    /healthz stays 200 meanwhile: the process is alive, restarting it would not help. Open, as /healthz is; with
    protected reads the driver's words (hosts, ports, paths) go to the server's log only."""
    app = request.app
    problem = _database_problem(app.state.engine)
    was_ready = getattr(app.state, "ready", True)
    app.state.ready = problem is None
    if problem is None:
        if not was_ready:
            log.warning("readiness: the database answers again")
        return JSONResponse({"status": "ready", "version": _OK.version})
    if was_ready:  # once as it goes down, not at every probe (one every few seconds)
        log.warning("readiness: 503, the database cannot be read (%s)", problem)
    said = "see the server's log" if app.state.settings.reads_protected else problem
    return JSONResponse({"detail": f"not ready: the database cannot be read ({said}); retry later"}, 503,
                        headers={"Retry-After": str(RETRY_AFTER_S)})


def _database_problem(engine: Engine) -> str | None:
    """Why the database cannot be read now, in the driver's words on one line; None when it can."""
    try:
        _read(engine)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            return _said(exc)
        # a pooled connection a restarted server closed fails once, and the pool drops them all: ask again on a
        # new one (the requests after a restart succeed; the probe should not say otherwise)
        try:
            _read(engine)
        except SQLAlchemyError as again:
            return _said(again)
    except SQLAlchemyError as exc:
        return _said(exc)
    return None


def _read(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT version_num FROM alembic_version")).all()


def _said(exc: Exception) -> str:
    return " ".join(str(getattr(exc, "orig", None) or exc).split())[:200]
