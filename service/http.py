"""HTTP plumbing shared by the routes: strict JSON and 4xx answers shaped like pydantic's."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, NoReturn

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError


def _reject_constant(name: str) -> NoReturn:
    # json.loads accepts NaN/Infinity, which are not JSON; let FastAPI turn this into a 422 json_invalid.
    raise json.JSONDecodeError(f"{name} is not valid JSON (use null or a finite number)", name, 0)


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (math.inf, -math.inf):  # e.g. 1e400: valid JSON syntax, but no float holds it
        raise json.JSONDecodeError(f"{text} is out of the finite float range", text, 0)
    return value


def loads_strict(body: bytes | str) -> Any:
    return json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float)


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_strict(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """Routes whose JSON bodies refuse NaN and Infinity literals (422, not a 500 later)."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def strict_handler(request: Request):
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler


def unprocessable(errors: list[dict[str, Any]] | ValidationError, prefix: tuple = ("body",)) -> NoReturn:
    """Raise a 422 in FastAPI's shape; ``prefix`` is prepended to each error's ``loc``."""
    if isinstance(errors, ValidationError):
        errors = [
            {"type": e["type"], "loc": (*prefix, *e["loc"]), "msg": e["msg"], "input": e.get("input")}
            for e in errors.errors(include_url=False, include_context=False)
        ]
    raise RequestValidationError(errors)


def describe(exc: ValueError) -> str:
    """One line for a ValueError; a ValidationError raised while building a result means an input so extreme
    that a computed value left the float range (e.g. an LR that underflows to 0)."""
    if isinstance(exc, ValidationError):
        parts = [".".join(map(str, e["loc"])) + ": " + e["msg"] for e in exc.errors(include_url=False)]
        return f"inputs too extreme: a computed {exc.title} is invalid ({'; '.join(parts)})"
    return str(exc)


def value_error(msg: str, loc: tuple = ("body",)) -> NoReturn:
    raise RequestValidationError([{"type": "value_error", "loc": loc, "msg": msg, "input": None}])
