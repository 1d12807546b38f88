"""GET /healthz: liveness, and the cheapest route (the benchmark's baseline)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter

from abcscale.schemas.api import Health
from abcscale.service.http import StrictJSONRoute

router = APIRouter(tags=["health"], route_class=StrictJSONRoute)

try:
    VERSION = version("abcscale")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0+unknown"

_OK = Health(version=VERSION)


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """Liveness: the process answers (no database round trip)."""
    return _OK
