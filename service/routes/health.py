"""GET /healthz: liveness, and the cheapest route (the benchmark's baseline)."""

from __future__ import annotations

from fastapi import APIRouter

from abcscale.schemas.api import Health
from abcscale.service.http import StrictJSONRoute
from abcscale.usecases import version

router = APIRouter(tags=["health"], route_class=StrictJSONRoute)

_OK = Health(version=version())


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """Liveness: the process answers (no database round trip)."""
    return _OK
