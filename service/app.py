"""The FastAPI application: ``create_app(settings)`` wires settings, database and routers together."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic.json_schema import models_json_schema
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from abcscale.schemas.api import FitCreate
from abcscale.schemas.errors import error_text
from abcscale.service import crud, pages
from abcscale.service.config import Settings
from abcscale.service.db import damaged, make_engine, make_sessionmaker
from abcscale.service.deps import IDEMPOTENCY_HEADER, QueryDep, ReaderDep, check_tokens
from abcscale.service.http import EMPTY_BODY, HeadAsGet, JsonTooLarge, complete_responses, is_api_path, too_large_text
from abcscale.service.plots import PlotRenderer, check_plot_dir
from abcscale.service.routes import fits, health, recommend, theory
from abcscale.usecases import version

REF_TEMPLATE = "#/components/schemas/{model}"

log = logging.getLogger("abcscale.service")

#: every resource lives under /v1; routers are included one level deep (each nesting level costs per request).
API_ROUTERS = (recommend.router, fits.router, theory.router)


def _operation_id(route: APIRoute) -> str:
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def _document_manual_bodies(app: FastAPI, tokens: bool = True) -> None:
    """Add the models of bodies that routes parse themselves (POST /v1/fits takes JSON or multipart).

    Without a token (``tokens`` false) no operation asks for one: the bearer scheme and the 401 go, and a write
    keeps its 403 (a cross-origin write is refused whatever the tokens)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = build()  # cached by FastAPI as app.openapi_schema: the additions below stay
        _, defs = models_json_schema([(FitCreate, "validation")], ref_template=REF_TEMPLATE)
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in defs.get("$defs", {}).items():
            schemas.setdefault(name, schema)
        spec = complete_responses(spec)  # 401/403 where a token guards, 413 where a body is read
        if not tokens:
            for operations in spec.get("paths", {}).values():
                for operation in operations.values():
                    if operation.pop("security", None) is not None:
                        operation["responses"].pop("401", None)
        return spec

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema


def create_app(settings: Settings | None = None) -> FastAPI:
    """A ready app on the database ``settings`` names (tables are created if missing)."""
    settings = settings or Settings()
    check_plot_dir(settings)  # first: a refused start leaves no new database behind
    engine = make_engine(settings)

    plots = PlotRenderer(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        plots.close()
        engine.dispose()

    app = _App(
        title="abcscale",
        summary="Per-layer learning rates, init and multipliers at width N from abc-parameterization theory "
                "and small-width sweeps.",
        version=version(),
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        # Counted as the body streams in (and refused at once from Content-Length): 413, nothing buffered.
        max_body_size=settings.max_upload_bytes,
        docs_url=None, redoc_url=None,  # FastAPI's load their script from a CDN: /docs is served here (_docs)
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.plots = plots

    def stored(fit_ids: list[str]) -> set[str]:
        with app.state.sessionmaker() as session:
            return crud.stored_ids(session, fit_ids=fit_ids)

    # servers sharing the database but not a disk: another's delete removed its own cache only (README, Service)
    plots.watch(stored, _identity(engine))
    app.include_router(health.router)  # open always, for health checks
    # Protected reads: every /v1 route needs a token. Open reads add nothing (no cost, no 401 in the OpenAPI).
    readers = [ReaderDep] if settings.reads_protected else []
    for router in API_ROUTERS:
        app.include_router(router, prefix="/v1", dependencies=[*readers, QueryDep])
    # The web pages (/, /fits, /fits/{id}) and their assets: out of the OpenAPI, same access model (service/pages.py)
    app.include_router(pages.router)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(crud.UnreadableFit, _unreadable)
    app.add_exception_handler(DatabaseError, _database_failed)  # OperationalError among them
    app.mount("/static", StaticFiles(directory=pages.STATIC_DIR), name="static")
    # the pages link it, and a browser asks for it on its own (JSON, /healthz): a 404 in every page's console before
    app.add_api_route("/favicon.ico", _favicon, include_in_schema=False)
    _docs(app)
    if settings.cors_origins:
        # Off by default: no page of another origin may read an answer. Bearer tokens, not cookies: no credentials.
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST", "DELETE"], max_age=600,
                           allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
                           expose_headers=["Idempotent-Replayed", "Retry-After"])
    app.add_middleware(HeadAsGet)  # outermost: CORS and the routes see the GET it stands for
    _document_manual_bodies(app, tokens=settings.api_token is not None)
    return app


def _identity(engine: Engine) -> str:
    """The database, as a plot cache's owner file names it: a SQLite file by its absolute path (however the URL
    spelled it), another database by its URL without the password."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database and not url.query.get("uri"):
        return f"sqlite:{Path(url.database).resolve()}"
    return url.render_as_string(hide_password=True)


async def _favicon() -> Response:
    return Response(FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})


def _docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` from the fastapi-offline package's copies of their files: FastAPI's own
    pages load them from a CDN, so on a machine without the internet, or behind a strict proxy, they were blank."""
    from importlib.resources import files

    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html

    assets = files("fastapi_offline") / "static"
    redoc_js: dict[str, bytes] = {}

    @app.get(f"{DOCS_ASSETS}/redoc.standalone.js", include_in_schema=False)  # before the mount, which it shadows
    async def redoc_script(request: Request) -> Response:
        """ReDoc's bundle with its logo's address replaced by an inline image: the bundle's sidebar loaded
        https://cdn.redoc.ly/redoc/logo-mini.svg, the one request /redoc made to another host (a review)."""
        if not redoc_js:
            import hashlib

            body = assets.joinpath("redoc.standalone.js").read_bytes().replace(REDOC_LOGO, INLINE_LOGO)
            redoc_js.update(body=body, etag=f'"{hashlib.sha256(body).hexdigest()[:32]}"'.encode())
        etag = redoc_js["etag"].decode()
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        return Response(redoc_js["body"], media_type="text/javascript", headers={"ETag": etag})

    app.mount(DOCS_ASSETS, StaticFiles(directory=str(assets)), name="docs-assets")
    redirect = "/docs/oauth2-redirect"

    def at(request: Request, path: str) -> str:  # behind a proxy's prefix (uvicorn --root-path)
        return f"{request.scope.get('root_path', '')}{path}"

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> Response:
        return get_swagger_ui_html(
            openapi_url=at(request, app.openapi_url or "/openapi.json"), title=f"{app.title} - API docs",
            oauth2_redirect_url=redirect, swagger_js_url=at(request, f"{DOCS_ASSETS}/swagger-ui-bundle.js"),
            swagger_css_url=at(request, f"{DOCS_ASSETS}/swagger-ui.css"),
            swagger_favicon_url=at(request, f"{DOCS_ASSETS}/favicon.png"))

    @app.get(redirect, include_in_schema=False)
    async def oauth2_redirect() -> Response:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> Response:
        return get_redoc_html(openapi_url=at(request, app.openapi_url or "/openapi.json"),
                              title=f"{app.title} - API reference", with_google_fonts=False,
                              redoc_js_url=at(request, f"{DOCS_ASSETS}/redoc.standalone.js"),
                              redoc_favicon_url=at(request, f"{DOCS_ASSETS}/favicon.png"))


#: where /docs and /redoc load their scripts and styles from (this service, not a CDN)
DOCS_ASSETS = "/docs-assets"
#: the pages' icon (an SVG, which browsers take at /favicon.ico): a rising line on the pages' accent colour
FAVICON = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" '
           b'fill="#1f5fbf"/><path d="M6 9 L13 15 L19 19 L26 22" fill="none" stroke="#fff" stroke-width="3" '
           b'stroke-linecap="round" stroke-linejoin="round"/></svg>')
#: the logo ReDoc's bundle loads from its CDN, and the inline image served in its place (a blank one)
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
INLINE_LOGO = b"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='1' height='1'/%3E"


class _App(FastAPI):
    """FastAPI with the body cap's 413 answered as JSON (:class:`JsonTooLarge`): the cap's middleware sits outside
    every user middleware, so this one wraps the whole stack."""

    def build_middleware_stack(self) -> Any:
        stack = super().build_middleware_stack()
        return stack if self.max_body_size is None else JsonTooLarge(stack, self.max_body_size, page=_too_large_page)


def _too_large_page(scope: Any, message: str) -> Response:
    return pages.error_page(Request(scope), 413, "Upload too large", f"The file was not read: {message}. Upload a "
                            "smaller table, or ask whoever runs this service to raise the cap.")


async def _http_error(request: Request, exc: Exception) -> Response:
    """A page's 404 or 405 (an unknown path under /fits, say) as a page; the API's stay JSON, as FastAPI says them."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 413 and exc.detail == "Content Too Large" and request.app.max_body_size is not None:
        # a chunked body over the cap is refused while a route reads it, as Starlette's bare "Content Too Large"
        # (a Content-Length one before, replaced by JsonTooLarge): the same words for both (a review); the routes'
        # own 413s (a table over ABCSCALE_MAX_ROWS) say theirs
        text = too_large_text(request.app.max_body_size)
        if is_api_path(request.scope):
            return JSONResponse({"detail": text}, status_code=413)
        return _too_large_page(request.scope, text)
    if is_api_path(request.scope):
        return await http_exception_handler(request, exc)
    title = {404: "Page not found", 405: "Method not allowed"}.get(exc.status_code, "Request refused")
    message = ("No page here: the pages are the calculator (/), the stored fits (/fits) and each fit's report "
               "(/fits/ID)." if exc.status_code == 404 else str(exc.detail))
    settings: Settings = request.app.state.settings  # with closed reads the pages are 401s: no links to them
    page = pages.error_page(request, exc.status_code, title, message, links=not settings.reads_protected)
    page.headers.update(exc.headers or {})
    return page


def exposure_warning(host: str, settings: Settings) -> str | None:
    """What to warn about when serving on ``host``: a non-loopback address without a write token."""
    if settings.api_token is not None or _loopback(host):
        return None
    return (f"serving on {host} without ABCSCALE_API_TOKEN: anyone who can reach this port can store and delete "
            "fits, and read them all; set ABCSCALE_API_TOKEN (and ABCSCALE_READ_TOKEN to close reads)")


async def _invalid(request: Request, exc: Exception) -> Response:
    """FastAPI's 422, its messages' numbers in short form (a bound of 1e-30, not its 31 digits), without the
    "Value error, " pydantic puts before a validator's own message (as the CLI and Python API say it)."""
    assert isinstance(exc, RequestValidationError)
    try:  # FastAPI parses a body before the route's dependencies run: its token checks come first here too
        await check_tokens(request)
    except StarletteHTTPException as refused:
        return await _http_error(request, refused)
    errors = [_plain_ctx(_short_input(_key_said({**e, "msg": _empty_body(e) or _not_an_object(e) or _json_reason(e)
                                                                or error_text(e)})))
              if isinstance(e.get("msg"), str) else e for e in _union_said_once(list(exc.errors()))]
    return await request_validation_exception_handler(request, RequestValidationError(errors, body=exc.body))


def _plain_ctx(e: dict[str, Any]) -> dict[str, Any]:
    """An error's ``ctx`` without what is no constraint: a validator's exception (``{"error": ValueError(...)}``,
    which the JSON answer showed as ``"ctx": {"error": {}}``, its words being ``msg`` already) and a decode error's
    reason (in ``msg`` too, where its ``"input": {}`` claimed an empty object was sent: ``null``, as POST /v1/fits
    says it). Constraints stay (``{"gt": 0}``)."""
    if e.get("type") == "json_invalid":
        return {**{k: v for k, v in e.items() if k != "ctx"}, "input": None}
    ctx = e.get("ctx")
    if not isinstance(ctx, dict) or not any(isinstance(v, BaseException) for v in ctx.values()):
        return e
    kept = {k: v for k, v in ctx.items() if not isinstance(v, BaseException)}
    return {**{k: v for k, v in e.items() if k != "ctx"}, **({"ctx": kept} if kept else {})}


def _empty_body(e: dict[str, Any]) -> str | None:
    """A route's body missing altogether (no byte sent): said to be empty, as POST /v1/fits says it, not a bare
    "Field required". Said here, after the route's dependencies ran (a read-protected route answers 401 first: read
    early, the body's check came before them, a code review)."""
    return EMPTY_BODY if e.get("type") == "missing" and tuple(e.get("loc", ())) == ("body",) else None


#: the errors pydantic and the recommend body's source check give a whole body of the wrong JSON type
_WHOLE_BODY_TYPES = ("source", "model_type", "model_attributes_type", "dict_type")


def _not_an_object(e: dict[str, Any]) -> str | None:
    """A body that is JSON but no object (null, a list, a string, a number), said so on every route: POST /v1/fits
    named its model ("a valid dictionary or instance of FitCreate"), the theory routes said "an object to extract
    fields from" and POST /v1/recommend asked for `base` or `fit_id` (a review)."""
    if tuple(e.get("loc", ())) != ("body",) or e.get("type") not in _WHOLE_BODY_TYPES or "input" not in e \
            or isinstance(e["input"], dict):
        return None
    from abcscale.schemas.api import json_kind

    return f"Input should be a JSON object, not {json_kind(e['input'])}"


def _json_reason(e: dict[str, Any]) -> str | None:
    """A body that is no JSON this API takes, with the parser's reason: FastAPI says "JSON decode error" and keeps
    why (NaN, a duplicated key, not UTF-8) in ``ctx``, where a reader of ``msg`` never looked (the fits route said
    it; the others did not, a review)."""
    why = (e.get("ctx") or {}).get("error") if e.get("type") == "json_invalid" else None
    return f"JSON decode error: {why}" if why else None


#: patterns said in words (the field's last named part of ``loc``): the regular expression helps no one
_PATTERNS_SAID = {
    IDEMPOTENCY_HEADER: "must be 1-255 printable ASCII characters (a UUID, say), bare or as a quoted structured-field "
                        "string",
    "alignment": "must be 'full', 'none' or 'ALPHA,OMEGA,U' (decimals: alpha and u in [0, 2], omega in [0, 1/2]; "
                 "e.g. 1,0.5,1)",
}


def _union_said_once(errors: list[Any]) -> list[Any]:
    """A value a union field refused, said once, at the field: `"lr": 1e11` was two errors, "less than or equal
    to 1e10" at ["body", "lr", "constrained-float"] and "a valid dictionary" at ["body", "lr", "dict[...]"]
    (the CLI's messages already drop the member it is not even the kind of)."""
    from abcscale.schemas.errors import _union_errors_said_once, _union_tag

    kept = _union_errors_said_once(errors)
    return [{**e, "loc": tuple(x for x in e["loc"] if not _union_tag(x))} if len(kept) < len(errors) else e
            for e in kept]


#: a JSON alignment given as the CLI's text: the literal's "Input should be 'full' or 'none'" hid the object form (a
#: review: a user copying `-a 0.75,0.5,0.75` concluded custom alignments were not taken), as POST /v1/fits says it
_ALIGNMENT_TEXT = ("Input should be 'full', 'none' or an object {alpha, omega, u}, not a string ('ALPHA,OMEGA,U' is "
                   "the CLI's --alignment and a form field's)")


def _key_said(error: dict[str, Any]) -> dict[str, Any]:
    """A malformed Idempotency-Key or alignment in words, not as the 100-200-character pattern it failed."""
    named = [part for part in error.get("loc", ()) if isinstance(part, str)]
    if error.get("loc", ())[:1] == ("header",) and isinstance(text := error.get("input"), str):
        # HTTP hands a header's bytes over as Latin-1: a UTF-8 key `ké` was echoed back as `kÃ©` (a review)
        with contextlib.suppress(UnicodeError):
            error = {**error, "input": text.encode("latin-1").decode("utf-8")}
    if error.get("type") == "string_pattern_mismatch":
        if named and (said := _PATTERNS_SAID.get(named[-1])):
            return {**{k: v for k, v in error.items() if k != "ctx"}, "msg": said}
    if (error.get("type") == "literal_error" and isinstance(error.get("input"), str) and named
            and named[-1] == "alignment"):
        return {**{k: v for k, v in error.items() if k != "ctx"}, "msg": _ALIGNMENT_TEXT}
    return error


#: the longest `input` a 422 echoes: a rows-level error would otherwise send the whole table back (megabytes)
MAX_ECHO_CHARS = 2000


#: the longest key of the request a 422 echoes in its ``loc`` or ``msg`` (an unknown key of 100 kB came back whole)
MAX_KEY_CHARS = 200
_KEY_CUT_FROM = MAX_KEY_CHARS + 30  # what the cut adds: "... (NNNNNN characters)"
#: a run of text in a message as long as no word of ours: a key or column name the request sent
_LONG_WORD = re.compile(rf"[^\s,;:()'`\"]{{{_KEY_CUT_FROM + 1},}}")


def _short_input(error: dict[str, Any]) -> dict[str, Any]:
    """An error whose echoed ``input`` is too long to help: the input's kind and size instead; a key of the
    request too long to help, cut in ``loc`` and ``msg``."""
    value = error.get("input")
    if isinstance(value, list | dict | str) and len(repr(value)) > MAX_ECHO_CHARS:
        what = (f"a list of {len(value)} items" if isinstance(value, list) else f"an object of {len(value)} keys"
                if isinstance(value, dict) else f"a string of {len(value)} characters")
        error = {**error, "input": f"({what}, not echoed)"}
    def cut(key: str) -> str:
        return f"{key[:MAX_KEY_CHARS]}... ({len(key)} characters)"

    # a key cut only where that shortens it (a 201-character key came back as 220)
    if any(isinstance(part, str) and len(part) > _KEY_CUT_FROM for part in error.get("loc", ())):
        error = {**error, "loc": tuple(cut(p) if isinstance(p, str) and len(p) > _KEY_CUT_FROM else p
                                       for p in error["loc"])}
    if isinstance(msg := error.get("msg"), str) and _LONG_WORD.search(msg):  # a key or column name inside it
        error = {**error, "msg": _LONG_WORD.sub(lambda m: cut(m.group()), msg)}
    if isinstance(msg := error.get("msg"), str) and len(msg) > MAX_ECHO_CHARS:  # many of them
        error = {**error, "msg": f"{msg[:MAX_ECHO_CHARS]}... (the message cut at {MAX_ECHO_CHARS} of {len(msg)} "
                                 "characters)"}
    return error


async def _unreadable(request: Request, exc: Exception) -> Response:
    """409, not 500, for a stored fit whose result no longer reads: the record is there, its answer is not."""
    if request.url.path.startswith("/v1/"):
        return JSONResponse({"detail": str(exc)}, status_code=409)
    return pages.error_page(request, 409, "Unreadable fit", str(exc))


#: seconds a client waits before retrying a request the database could not do
DB_RETRY_AFTER_S = 5


async def _database_failed(request: Request, exc: Exception) -> Response:
    """503, not a bare 500, when the database refuses: a full disk, a read-only file, a lock held past the busy
    timeout, a server that does not answer, a SQLite file that went bad while served (the start refuses one that
    already was, service/db.py). The session rolled back, so nothing of the request was stored. Any other
    database error stays the bug it is (a 500)."""
    reason = _reason(exc)
    if damaged(reason):
        log.warning("503 for %s %s: the database file is malformed (%s)", request.method, request.url.path, reason)
        return _unavailable(request, f"the database file is malformed ({reason}); nothing was stored by this "
                                     "request. Whoever runs the service must restore it from a backup")
    if not isinstance(exc, OperationalError):
        raise exc
    log.warning("503 for %s %s: the database failed (%s)", request.method, request.url.path, reason)
    return _unavailable(request, f"the database could not do this ({reason}); nothing was stored by this request. "
                                 "Retry later, or check the database's disk, permissions and server")


def _reason(exc: Exception) -> str:
    """The driver's own words, on one line, without SQLAlchemy's statement and link."""
    return " ".join(str(getattr(exc, "orig", None) or exc).split())[:200]


def _unavailable(request: Request, message: str) -> Response:
    headers = {"Retry-After": str(DB_RETRY_AFTER_S)}
    if request.url.path.startswith("/v1/"):
        return JSONResponse({"detail": message}, status_code=503, headers=headers)
    page = pages.error_page(request, 503, "Database unavailable", message)
    page.headers.update(headers)
    return page


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False
