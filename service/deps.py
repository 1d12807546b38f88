"""Dependencies as ``Annotated`` aliases, so route signatures read like declarations."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Annotated, Any, get_args, get_origin
from urllib.parse import urlsplit

from fastapi import Depends, Header, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from abcscale.service import crud
from abcscale.service.config import Settings
from abcscale.service.db import Fit
from abcscale.service.http import value_error


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessionmaker() as session:
        yield session


async def get_sessions(request: Request) -> sessionmaker[Session]:
    # For a route that needs a session on some paths only: a yield dependency costs every request a worker
    # thread hop (measured: half the throughput of the analytic recommend path).
    return request.app.state.sessionmaker


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
SessionsDep = Annotated[sessionmaker[Session], Depends(get_sessions)]

_bearer = HTTPBearer(auto_error=False, description="the write token (ABCSCALE_API_TOKEN) for writes; with "
                     "protected reads, the read token (ABCSCALE_READ_TOKEN) or the write token for any /v1 route")


#: what each kind of request needs, as a 401 and 403 say it (the tokens by the settings that set them)
WRITE_TOKEN = "the write token (the service's ABCSCALE_API_TOKEN)"
READ_TOKEN = "the read token (ABCSCALE_READ_TOKEN) or the write token (ABCSCALE_API_TOKEN)"


def _matches(credentials: HTTPAuthorizationCredentials | None, *tokens: SecretStr | None, needs: str) -> bool:
    """Whether a bearer credential was sent (else a 401 saying what ``needs``) and equals one of ``tokens``."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, detail=f"Not authenticated: this request needs {needs}, sent as the header "
                                        "'Authorization: Bearer TOKEN' (the CLI's --token)",
                            headers={"WWW-Authenticate": "Bearer"})
    given = credentials.credentials.encode()
    # every token compared, in constant time each: which one matched is not timed either
    return sum(secrets.compare_digest(given, t.get_secret_value().encode()) for t in tokens if t) > 0


def cross_origin(request: Request, trusted: list[str]) -> str | None:
    """Why a write comes from a browser page of another origin (a CSRF), or None when it does not.

    The Fetch Metadata check (OWASP's CSRF cheat sheet; Go 1.25's ``http.CrossOriginProtection``): browsers
    send ``Sec-Fetch-Site`` on every request, and ``Origin`` on every cross-origin POST, form posts included; a
    page cannot forge either. A request with neither is no browser's (curl, scripts) and passes; so does one
    from an origin of ``ABCSCALE_CORS_ORIGINS``.
    """
    origin = request.headers.get("origin")
    if origin is not None and origin.rstrip("/").lower() in trusted:
        return None
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return None if site.lower() in ("same-origin", "none") else f"Sec-Fetch-Site: {site}"
    if origin is None or urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower():
        return None
    return f"Origin: {origin}"


async def require_writer(
    request: Request, settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """A write from a page of another origin is a 403, with or without a token; with a token configured, a write
    needs it: 401 without one, 403 with a wrong one. Any holder of the write token may write and delete any fit."""
    if (why := cross_origin(request, settings.cors_origins)) is not None:
        raise HTTPException(403, detail=f"cross-origin write refused ({why}); a browser page may write only "
                                        "from an origin listed in ABCSCALE_CORS_ORIGINS")
    if settings.api_token is not None and not _matches(credentials, settings.api_token, needs=WRITE_TOKEN):
        assert credentials is not None  # _matches said 401 without one
        reader = settings.read_token is not None and secrets.compare_digest(
            credentials.credentials.encode(), settings.read_token.get_secret_value().encode())
        raise HTTPException(403, detail=f"Invalid token: the read token cannot write; writes need {WRITE_TOKEN}"
                            if reader else f"Invalid token: writes need {WRITE_TOKEN}")


async def require_reader(
    request: Request, settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """With protected reads (``ABCSCALE_READ_TOKEN`` or ``ABCSCALE_PROTECT_READS``), every /v1 route needs the
    read or the write token: 401 without one, 403 with another. Open reads: nothing to check. A write route's
    401 names the write token (this check runs first, and the read token would not do)."""
    if not settings.reads_protected:
        return
    writes = _writes(request) and settings.api_token is not None
    needs = WRITE_TOKEN if writes else READ_TOKEN
    if not _matches(credentials, settings.read_token, settings.api_token, needs=needs):
        raise HTTPException(403, detail=f"Invalid token: {'writes' if writes else 'reads'} need {needs}")


def _writes(request: Request) -> bool:
    """Whether the request's route is a write (it depends on :func:`require_writer`)."""
    stack = [getattr(request.scope.get("route"), "dependant", None)]
    while stack:
        if (dependant := stack.pop()) is None:
            continue
        if dependant.call is require_writer:
            return True
        stack += dependant.dependencies
    return False


async def check_tokens(request: Request) -> None:
    """The route's token checks (:func:`require_reader`, :func:`require_writer`, whichever it depends on), run
    where FastAPI refused the request before its dependencies ran: a body that is not JSON, or fails its schema,
    is a 401 or 403 to a caller without the token, not a 422 that describes the route's schema to it."""
    stack, calls = [getattr(request.scope.get("route"), "dependant", None)], set()
    while stack:
        if (dependant := stack.pop()) is None:
            continue
        calls.add(dependant.call)
        stack += dependant.dependencies
    if request.url.path.startswith("/v1/"):  # protected reads guard every /v1 router (create_app), not one route
        calls.add(require_reader)
    settings, credentials = request.app.state.settings, await _bearer(request)
    for check in (require_reader, require_writer):  # the order FastAPI runs them in: the router's, then the route's
        if check in calls:
            await check(request, settings, credentials)


WriterDep = Depends(require_writer)
ReaderDep = Depends(require_reader)

FitId = Annotated[str, Path(min_length=1, max_length=64, description="id of a stored fit")]


def _query_names(dependant: Any) -> list[str]:
    """The query parameters a route takes, its dependencies' included, in the order they are declared."""
    names = [p.alias for p in dependant.query_params]
    for sub in dependant.dependencies:
        names += [n for n in _query_names(sub) if n not in names]
    return names


async def known_query(request: Request) -> None:
    """A query parameter the route does not take is a 422 naming it (``?optimiser=sgd`` on
    ``/v1/theory/exponents`` answered every optimizer's rows; ``?page=2`` on the fit list its first page). On a
    write the token is checked first: a refused write stays the 401 or 403 it was, not a 422 (this check runs
    before the route's own dependencies)."""
    if not request.query_params:
        return
    route = request.scope.get("route")
    if (dependant := getattr(route, "dependant", None)) is None:
        return
    takes = _query_names(dependant)  # a few fields: only requests that carry a query pay for it
    if unknown := sorted(set(request.query_params) - set(takes)):
        said = ", ".join(repr(k[:40]) for k in unknown[:5])
        what = (" and ".join([", ".join(takes[:-1]), takes[-1]] if len(takes) > 1 else takes) if takes
                else "no query parameters")
        if _writes(request):
            await require_writer(request, request.app.state.settings, await _bearer(request))
        value_error(f"unknown query parameter(s) {said}: this endpoint takes {what}", ("query", unknown[0][:40]))
    lists = _list_names(dependant)
    if twice := sorted(k for k in set(request.query_params) if k not in lists
                       and len(request.query_params.getlist(k)) > 1):
        # ?limit=1&limit=2 answered the last one: refused, as a JSON key, form field or header sent twice is
        if _writes(request):
            await require_writer(request, request.app.state.settings, await _bearer(request))
        value_error(f"query parameter {twice[0]!r} given {len(request.query_params.getlist(twice[0]))} times: it "
                    "takes one value", ("query", twice[0]))


def _list_names(dependant: Any) -> set[str]:
    """The query parameters a route takes as lists (``?optimizer=sgd&optimizer=adam``), its dependencies' included."""
    out = {p.alias for p in dependant.query_params if _is_list(p.field_info.annotation)}
    for sub in dependant.dependencies:
        out |= _list_names(sub)
    return out


def _is_list(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        return True
    return origin is not None and any(_is_list(a) for a in get_args(annotation))


QueryDep = Depends(known_query)


def not_found(fit_id: str) -> HTTPException:
    """The 404 for an id no stored fit has: it says the id, so a caller with several knows which."""
    return HTTPException(404, detail=f"Fit not found: no stored fit has the id {fit_id!r}")


def get_fit_record(fit_id: FitId, session: SessionDep) -> Fit:
    record = crud.get_fit(session, fit_id=fit_id)
    if record is None:
        raise not_found(fit_id)
    return record


def _fit_of_path(request: Request, fit_id: FitId, session: SessionDep) -> Fit:
    """:func:`get_fit_record`, and on its 404 the fit's plots cached here go: another server sharing the database
    (not this disk) deleted it, and its delete removed its own cache only."""
    try:
        return get_fit_record(fit_id, session)
    except HTTPException:
        request.app.state.plots.forget(fit_id)
        raise


FitDep = Annotated[Fit, Depends(_fit_of_path)]


# The draft "The Idempotency-Key HTTP Header Field" makes the value a structured-field String ("..."); a bare
# token is accepted too, and both spell the same key. 1-255 printable ASCII characters; no leading or trailing
# space in the bare form, since HTTP strips it in transit.
_SF_STRING = r'"(?:[ !#-\[\]-~]|\\["\\]){1,255}"'
_BARE = r"[!#-~](?:[ -~]{0,253}[!-~])?"
KEY_PATTERN = rf"^(?:{_SF_STRING}|{_BARE})$"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def idempotency_key(
    request: Request,
    value: Annotated[str | None, Header(
        alias=IDEMPOTENCY_HEADER, pattern=KEY_PATTERN,
        description="a key unique to this request (e.g. a UUID; 1-255 printable ASCII, bare or as a quoted "
                    "structured-field string): a retry with the same key and body answers the stored fit "
                    "again and stores nothing; the same key with another body is a 422")] = None,
) -> str | None:
    """The request's idempotency key, unquoted; None without the header."""
    if value is None:
        return None
    if len(request.headers.getlist(IDEMPOTENCY_HEADER)) > 1:
        value_error("send one Idempotency-Key header, not several", ("header", IDEMPOTENCY_HEADER))
    if value.startswith('"'):
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


IdempotencyKeyDep = Annotated[str | None, Depends(idempotency_key)]
