"""The FastAPI application: ``create_app(settings)`` wires settings, database and routers together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic.json_schema import models_json_schema

from abcscale.schemas.api import FitCreate
from abcscale.service.config import Settings
from abcscale.service.db import make_engine, make_sessionmaker
from abcscale.service.routes import fits, health, recommend, theory
from abcscale.usecases import version

REF_TEMPLATE = "#/components/schemas/{model}"

#: every resource lives under /v1; routers are included one level deep (each nesting level costs per request).
API_ROUTERS = (recommend.router, fits.router, theory.router)


def _operation_id(route: APIRoute) -> str:
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def _document_manual_bodies(app: FastAPI) -> None:
    """Add the models of bodies that routes parse themselves (POST /v1/fits takes JSON or multipart)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = build()  # cached by FastAPI as app.openapi_schema: the additions below stay
        _, defs = models_json_schema([(FitCreate, "validation")], ref_template=REF_TEMPLATE)
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in defs.get("$defs", {}).items():
            schemas.setdefault(name, schema)
        return spec

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema


def create_app(settings: Settings | None = None) -> FastAPI:
    """A ready app on the database ``settings`` names (tables are created if missing)."""
    settings = settings or Settings()
    engine = make_engine(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(
        title="abcscale",
        summary="Per-layer learning rates, init and multipliers at width N from abc-parameterization theory "
                "and small-width sweeps.",
        version=version(),
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        # Counted as the body streams in (and refused at once from Content-Length): 413, nothing buffered.
        max_body_size=settings.max_upload_bytes,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.include_router(health.router)
    for router in API_ROUTERS:
        app.include_router(router, prefix="/v1")
    _document_manual_bodies(app)
    return app
