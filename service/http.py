"""HTTP plumbing shared by the routes: strict JSON and 4xx answers shaped like pydantic's."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np
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


class RefusedJSON(json.JSONDecodeError):
    """Well-formed JSON this API refuses (a duplicated key, too deep); its message has no position."""

    def __init__(self, msg: str):
        super().__init__(msg, "", 0)

    def __str__(self) -> str:
        return self.msg


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) < len(pairs):  # json.loads would keep the last one silently
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise RefusedJSON(f"duplicated key {dup!r} in an object")
    return obj


#: how deep a JSON body may nest (objects and arrays); every body of this API needs fewer than 5 levels.
MAX_JSON_DEPTH = 64

_CHUNK = 1 << 20
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPEN, _CLOSE = (ord("["), ord("{")), (ord("]"), ord("}"))


def json_depth(body: bytes, bound: int = MAX_JSON_DEPTH) -> int:
    """The deepest nesting of objects/arrays in ``body``, counted without parsing (so without recursion).

    Brackets inside strings do not count; a quote after an odd run of backslashes is inside its string.
    Linear in the body, vectorized a chunk at a time; a body with at most ``bound`` brackets answers at once.
    """
    if body.count(b"[") + body.count(b"{") <= bound:  # every small request: no numpy at all
        return 0
    depth = deepest = 0
    in_string, backslashes = 0, 0  # carried from one chunk to the next
    for start in range(0, len(body), _CHUNK):
        a = np.frombuffer(body, np.uint8, count=min(_CHUNK, len(body) - start), offset=start)
        step = ((a == _OPEN[0]) | (a == _OPEN[1])).astype(np.int8) - ((a == _CLOSE[0]) | (a == _CLOSE[1]))
        quote = a == _QUOTE
        slash = a == _BACKSLASH
        if backslashes or slash.any():  # an odd run of backslashes escapes the quote after it
            idx = np.arange(a.size, dtype=np.int32)
            last_plain = np.maximum.accumulate(np.where(slash, -1, idx))  # last non-backslash so far
            run = np.empty(a.size, dtype=np.int32)  # backslashes right before each byte
            run[0] = backslashes
            run[1:] = idx[1:] - 1 - last_plain[:-1] + np.where(last_plain[:-1] < 0, backslashes, 0)
            quote &= run % 2 == 0
            backslashes = int(run[-1]) + 1 if slash[-1] else 0
        if in_string or quote.any():
            quotes = in_string + np.cumsum(quote, dtype=np.int32)
            step[quotes % 2 == 1] = 0  # inside a string
            in_string = int(quotes[-1] % 2)
        level = depth + np.cumsum(step, dtype=np.int32)
        deepest, depth = max(deepest, int(level.max())), int(level[-1])
    return deepest


def loads_strict(body: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that refuses NaN/Infinity, floats out of range, duplicated keys and deep nesting."""
    raw = body.encode() if isinstance(body, str) else body
    if (depth := json_depth(raw, max_depth)) > max_depth:
        # checked before parsing: the parser recurses per level (RecursionError, a 500, at ~1000 levels)
        raise RefusedJSON(f"nested {depth} levels deep, more than the bound of {max_depth} (ABCSCALE_MAX_JSON_DEPTH)")
    try:
        return json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float,
                          object_pairs_hook=_unique_keys)
    except RecursionError:
        raise RefusedJSON(f"nested too deep to parse (bound {max_depth}, ABCSCALE_MAX_JSON_DEPTH)") from None


def _max_depth(request: Request) -> int:
    settings = getattr(request.app.state, "settings", None)
    return getattr(settings, "max_json_depth", MAX_JSON_DEPTH)


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_strict(await self.body(), _max_depth(self))
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
