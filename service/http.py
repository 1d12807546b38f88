"""HTTP plumbing shared by the routes: strict JSON and 4xx answers shaped like pydantic's."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.routing import Match


def _reject_constant(name: str) -> NoReturn:
    # json.loads accepts NaN/Infinity, which are not JSON; let FastAPI turn this into a 422 json_invalid. The
    # parser does not say where: no position (it said "line 1 column 1 (char 0)" wherever the NaN was, a review)
    raise RefusedJSON(f"{name} is not valid JSON (use null or a finite number)")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (math.inf, -math.inf):  # e.g. 1e400: valid JSON syntax, but no float holds it
        raise json.JSONDecodeError(f"{text} is out of the finite float range", text, 0)
    return value


#: The most digits a JSON integer may have: beyond 308 no float holds it (every number field here is at most a
#: float; 10**400 in a sweep row would overflow the table's checks), and Python refuses to parse 4,300 or more.
MAX_INT_DIGITS = 308


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise RefusedJSON(f"an integer of {len(text.lstrip('-'))} digits is out of range (at most {MAX_INT_DIGITS})")
    return int(text)


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
        # decoded as UTF-8 (a UTF-8 BOM allowed) before parsing: json.loads on bytes takes UTF-16 and UTF-32 too,
        # and a UTF-16 body read as {} (a code review); JSON is UTF-8 (RFC 8259)
        value = json.loads(raw.decode("utf-8-sig"), parse_constant=_reject_constant, parse_float=_finite_float,
                           parse_int=_bounded_int, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise RefusedJSON(f"nested too deep to parse (bound {max_depth}, ABCSCALE_MAX_JSON_DEPTH)") from None
    except UnicodeDecodeError as exc:
        # not a JSONDecodeError: FastAPI would answer an undocumented 400 "error parsing the body"
        raise RefusedJSON(f"the body is not UTF-8 text (byte {exc.start}); JSON is UTF-8 (RFC 8259)") from None
    if _SURROGATE_ESCAPE.search(raw) and (where := _lone_surrogate(value)) is not None:
        # "\ud800" alone is valid JSON syntax but no Unicode text: a 422's echo of it, a table cell or a stored name
        # could not be written as UTF-8 (a 500 on every route, a review); a pair (an emoji) decodes to one character
        raise RefusedJSON(f"a lone UTF-16 surrogate escape in {where}: no Unicode character; escape a character "
                          "outside the BMP as its surrogate pair, or send it as UTF-8")
    return value


#: a \uD800-\uDFFF escape in the raw body: only then can a parsed string hold a surrogate (UTF-8 bytes cannot)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _lone_surrogate(value: Any) -> str | None:
    """Where in a parsed body a string (a key or a value) holds a surrogate code point, said as a path
    (``rows[3].note``, ``a key of rows[0]``); None where none does. JSON decodes a valid pair to one character, so
    any surrogate left is a lone one. Iterative: the body may be deep (up to its bound) and wide."""
    stack: list[tuple[Any, str]] = [(value, "")]  # "": the body itself
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return path or "the body"
        elif isinstance(item, dict):
            for k, v in item.items():
                if _SURROGATE.search(k):
                    return f"a key of {path or 'the body'}"
                stack.append((v, f"{path}.{k}" if path else k))
        elif isinstance(item, list):
            stack.extend((v, f"{path or 'the body'}[{i}]") for i, v in enumerate(item))
    return None


def _max_depth(request: Request) -> int:
    settings = getattr(request.app.state, "settings", None)
    return getattr(settings, "max_json_depth", MAX_JSON_DEPTH)


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_strict(await self.body(), _max_depth(self))
        return self._json


# --- what every route may answer besides its own codes (so the OpenAPI lists every status it can send) --------

#: FastAPI's shape of an error answer from HTTPException: ``{"detail": "..."}``.
DETAIL_SCHEMA = {"type": "object", "required": ["detail"], "properties": {"detail": {"type": "string"}}}


def error(description: str) -> dict[str, Any]:
    """A ``responses=`` entry for an error answered as ``{"detail": "..."}``."""
    return {"description": description, "content": {"application/json": {"schema": DETAIL_SCHEMA}}}


#: An operation guarded by a ``fastapi.security`` scheme (the bearer token, on writes, and on reads when they are
#: protected) answers these. Added to the OpenAPI by :func:`complete_responses` wherever an operation lists a
#: ``security`` requirement, however the guard was attached (route, router or app dependency).
AUTH_RESPONSES = {
    "401": error("no bearer token, where the service needs one; WWW-Authenticate: Bearer"),
    "403": error("a bearer token that is not the service's; for a write, also a browser page of another origin"),
}
#: Every operation that reads a body: the cap is counted as the body streams in (ABCSCALE_MAX_UPLOAD_MB).
BODY_RESPONSES = {"413": error("body over the size cap (ABCSCALE_MAX_UPLOAD_MB)"),
                  "415": error("a body that is not application/json (multipart too, where the operation takes it), or "
                               "one sent compressed (a Content-Encoding other than identity)")}
#: Every operation that touches the database (the fits, and recommendations from a stored fit).
DB_RESPONSES = {"503": error("the database could not do it (a full disk, a read-only file, a lock held past the "
                             "busy timeout, an unreachable server): nothing was stored; retry after Retry-After")}
DB_PATHS = ("/v1/fits", "/v1/recommend")
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def complete_responses(spec: dict[str, Any]) -> dict[str, Any]:
    """Document the answers every guarded or body-reading operation can give (an operation's own entry for a
    code wins), so that the OpenAPI lists every status the service sends."""
    for path, operations in spec.get("paths", {}).items():
        for operation in operations.values():
            extra = {**(AUTH_RESPONSES if operation.get("security") else {}),
                     **(BODY_RESPONSES if "requestBody" in operation else {}),
                     **(DB_RESPONSES if path.startswith(DB_PATHS) else {})}
            operation["responses"] = {**extra, **operation.get("responses", {})}
    return spec


def _allowed(scope: dict[str, Any]) -> str:
    """Every method some route of the app answers at this path (Starlette names only the first route's)."""
    router = scope["app"].router
    base = {"type": "http", "path": scope["path"], "root_path": scope.get("root_path", ""), "headers": []}
    found = [m for m in _METHODS if any(r.matches({**base, "method": m})[0] is Match.FULL for r in router.routes)]
    if "GET" in found and "HEAD" not in found:  # HeadAsGet answers HEAD wherever GET is
        found.insert(found.index("GET") + 1, "HEAD")
    return ", ".join(found)


def refuse_encoded(request: Request) -> None:
    """A request body is read as it is sent: a gzip one was read as its bytes and refused as "not UTF-8 text", one
    labelled ``br`` read as if plain (a review). A Content-Encoding other than identity is a 415 naming it, with
    ``Accept-Encoding: identity`` (RFC 9110, 15.5.16)."""
    coding = request.headers.get("content-encoding", "").strip().lower()
    if coding and coding != "identity":
        raise HTTPException(415, detail=f"Content-Encoding {coding[:40]}: send the request body uncompressed "
                                        "(identity); the service reads no compressed body",
                            headers={"Accept-Encoding": "identity"})


class StrictJSONRoute(APIRoute):
    """Routes whose JSON bodies refuse NaN and Infinity literals (422, not a 500 later), and whose 405 names
    every method of the path in ``Allow``."""

    async def handle(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().handle(scope, receive, send)
        except HTTPException as exc:
            if exc.status_code != 405:
                raise
            raise HTTPException(405, headers={"Allow": _allowed(scope)}) from None

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        takes_body = self.body_field is not None

        async def strict_handler(request: Request):
            if takes_body:
                refuse_encoded(request)
            ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if takes_body and ctype and ctype != "application/json" and not ctype.endswith("+json"):
                # FastAPI would read such a body as a string and answer a 422 blaming its content
                raise HTTPException(415, detail=f"send the body as application/json, not {ctype[:60]}")
            scope = request.scope
            if takes_body and not ctype:
                # no Content-Type (requests.post(url, data=json.dumps(body))): read as JSON, as POST /v1/fits does;
                # FastAPI left it a string and answered a 422 blaming the body's content (a user review)
                scope = {**scope, "headers": [*(h for h in scope["headers"] if h[0].lower() != b"content-type"),
                                              (b"content-type", b"application/json")]}
            strict = StrictJSONRequest(scope, request.receive)
            if takes_body and (body := await strict.body()) and not body.strip():
                # whitespace alone is no body: FastAPI then says it is missing after the route's dependencies (a
                # token's 401 first), as for no byte at all (app._empty_body); parsed, it failed before them
                strict._body = b""
            return await handler(strict)

        return strict_handler


def unprocessable(errors: list[dict[str, Any]] | ValidationError, prefix: tuple = ("body",)) -> NoReturn:
    """Raise a 422 in FastAPI's shape; ``prefix`` is prepended to each error's ``loc``."""
    if isinstance(errors, ValidationError):
        from abcscale.schemas.errors import error_text

        # the message said as every route says it (an enum's aliases read from its context, which is not sent)
        errors = [
            {"type": e["type"], "loc": (*prefix, *e["loc"]), "msg": error_text(e), "input": e.get("input")}
            for e in errors.errors(include_url=False)
        ]
    raise RequestValidationError(errors)


def describe(exc: ValueError) -> str:
    """One line for a ValueError; a ValidationError raised while building a result means an input so extreme
    that a computed value left the float range (e.g. an LR that underflows to 0)."""
    if isinstance(exc, ValidationError):
        parts = [".".join(map(str, e["loc"])) + ": " + e["msg"] for e in exc.errors(include_url=False)]
        # the model's class name (BaseConfig) is ours, not the request's: said as a computed value
        return f"inputs too extreme: a value computed from them is out of range ({'; '.join(parts)})"
    return str(exc)


#: what a route that reads a JSON body says of an empty one
EMPTY_BODY = "Field required: the body is empty; send a JSON object"


def value_error(msg: str, loc: tuple = ("body",)) -> NoReturn:
    raise RequestValidationError([{"type": "value_error", "loc": loc, "msg": msg, "input": None}])


class HeadAsGet:
    """HEAD answered as GET without the body, wherever GET is (RFC 9110 section 9.3.2: every general-purpose
    server supports both): FastAPI's routes answer only the methods they declare, so a HEAD of /healthz or a page
    was a 405. ASGI middleware: the request goes on as a GET and the response's body is dropped, its headers
    (Content-Length included) kept."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Any) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body"):
                    return  # a streamed chunk: only the end is sent, empty
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


def is_api_path(scope: Any) -> bool:
    """Whether a request's path answers JSON (the API, its schema, health, the assets) rather than a page for a
    browser; behind a proxy's prefix (``uvicorn --root-path``, which ASGI puts in the path too) as without."""
    # the app's own prefix: a mounted app (the static files) has the mount's path in root_path
    path, root = scope["path"], scope.get("app_root_path", scope.get("root_path", ""))
    if root and path.startswith(root):
        path = path[len(root):]
    return path.startswith(("/v1/", "/static/", "/docs-assets/")) or path in ("/v1", "/openapi.json", "/healthz")


def too_large_text(max_bytes: int) -> str:
    """What a 413 says: the cap and the setting that raises it."""
    return f"the request body is over the size cap of {max_bytes / 2**20:g} MB (ABCSCALE_MAX_UPLOAD_MB)"


class JsonTooLarge:
    """The body-size cap's 413 as JSON naming the cap, as the OpenAPI and every other error here say it: Starlette's
    limit answers it as plain text ("Content Too Large"), which a generated client cannot parse. ASGI middleware:
    that plain response is replaced whole; every other passes as it is."""

    def __init__(self, app: Any, max_bytes: int, page: Callable[[Any, str], Any] | None = None) -> None:
        self.app, self.max_bytes, self.page = app, max_bytes, page  # page(scope, message): a page's answer

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        replaced = False

        async def as_json(message: Any) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] == 413 and any(
                    k.lower() == b"content-type" and v.startswith(b"text/plain") for k, v in message["headers"]):
                replaced = True
                text = too_large_text(self.max_bytes)
                if self.page is not None and not is_api_path(scope):  # the upload form: a page
                    await self.page(scope, text)(scope, receive, send)
                    return
                body = json.dumps({"detail": text}).encode()
                await send({"type": "http.response.start", "status": 413, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
            if not replaced:
                await send(message)

        await self.app(scope, receive, as_json)
