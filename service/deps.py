"""Dependencies as ``Annotated`` aliases, so route signatures read like declarations."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
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

_bearer = HTTPBearer(auto_error=False, description="needed for writes when ABCSCALE_API_TOKEN is set")


def require_writer(
    settings: SettingsDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Writes need the bearer token when one is configured: 401 without one, 403 with a wrong one."""
    if settings.api_token is None:
        return
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, detail="Not authenticated", headers={"WWW-Authenticate": "Bearer"})
    expected = settings.api_token.get_secret_value().encode()
    if not secrets.compare_digest(credentials.credentials.encode(), expected):
        raise HTTPException(403, detail="Invalid token")


WriterDep = Depends(require_writer)

FitId = Annotated[str, Path(min_length=1, max_length=64, description="id of a stored fit")]


def get_fit_record(fit_id: FitId, session: SessionDep) -> Fit:
    record = crud.get_fit(session, fit_id=fit_id)
    if record is None:
        raise HTTPException(404, detail="Fit not found")
    return record


FitDep = Annotated[Fit, Depends(get_fit_record)]


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
