"""All storage access: plain keyword-only functions that receive the session (nothing else touches tables)."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from pydantic import ValidationError
from sqlalchemy import delete, func, select
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from abcscale._version import version
from abcscale.schemas.fit import FitResult, older_writer
from abcscale.service.config import Settings
from abcscale.service.db import Fit, FitInput, FitPlot, IdempotencyKey, make_engine, make_sessionmaker

if TYPE_CHECKING:  # loaded where a table is stored or read: pandas is 0.5 s of a server's 1.2 s start (session 81)
    import pandas as pd


@contextmanager
def open_session(settings: Settings | None = None) -> Iterator[Session]:
    """A session on the database ``settings`` name (made or upgraded to the newest schema); for scripts such as
    the demo."""
    engine = make_engine(settings or Settings())
    try:
        with make_sessionmaker(engine)() as session:
            yield session
    finally:
        engine.dispose()


def _parquet(rows: pd.DataFrame) -> bytes:
    """The table as Parquet, types kept; only columns Arrow cannot type (mixed str/number, ints beyond 64 bits)
    become text."""
    import pandas as pd
    import pyarrow as pa

    df = rows.rename(columns=str).reset_index(drop=True)
    for col in [c for c in df.columns if pd.api.types.is_object_dtype(df[c])]:
        try:
            pa.array(df[col], from_pandas=True)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            df[col] = df[col].map(lambda v: v if v is None or isinstance(v, str) else str(v))
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


@dataclass(frozen=True)
class KeyUse:
    """A stored idempotency key: the fit it created and the hash of the request that created it."""

    fit_id: str
    request_hash: str


class KeyTaken(Exception):
    """Another request stored a fit with this idempotency key first (nothing of this one was stored)."""


#: characters a fit's name may not hold: PostgreSQL refuses NUL in text (a 500 there; SQLite stored it), and the
#: other C0 controls but tab and newline only garble the pages and logs that show a name
_CONTROLS = frozenset(chr(c) for c in range(32)) - {"\t", "\n"}


def name_problem(name: str | None) -> str | None:
    """Why a fit cannot be stored under ``name`` on every backend, or None when it can."""
    if name is None or not (bad := next((c for c in name if c in _CONTROLS), None)):
        return None
    return f"must not contain control characters (found U+{ord(bad):04X} at position {name.index(bad)})"


def create_fit(
    session: Session, fit: FitResult, rows: pd.DataFrame, *, name: str | None = None,
    idempotency: tuple[str, str] | None = None,
) -> str:
    """Store a fit, the rows it was fitted from and its ``(idempotency key, request hash)`` in one transaction;
    returns the new fit's id. Raises KeyTaken, storing nothing, when the key is already stored; ValueError for a
    name no backend could store alike (:func:`name_problem`)."""
    if (why := name_problem(name)) is not None:
        raise ValueError(f"name: {why}")
    now = datetime.now(UTC)
    record = Fit(
        id=uuid.uuid4().hex, name=name, created_at=now, n_rows=len(rows), n_groups=len(fit.groups),
        input_hash=fit.provenance.input_hash, result_json=fit.model_dump_json(),
    )
    blob = _parquet(rows)
    try:
        session.add(record)
        session.add(FitInput(fit_id=record.id, format="parquet", data=blob))
        if idempotency is not None:
            key, request_hash = idempotency
            session.add(IdempotencyKey(key=key, fit_id=record.id, request_hash=request_hash, created_at=now))
        session.commit()
    except IntegrityError:
        session.rollback()
        # the key's primary key is the only constraint a new random fit id can meet: a concurrent request won
        if idempotency is not None and find_key(session, key=idempotency[0]) is not None:
            raise KeyTaken(idempotency[0]) from None
        raise
    except Exception:
        session.rollback()
        raise
    return record.id


def find_key(session: Session, *, key: str) -> KeyUse | None:
    """The fit stored with this idempotency key, if any (a plain value: it outlives the session's transaction)."""
    row = session.execute(
        select(IdempotencyKey.fit_id, IdempotencyKey.request_hash).where(IdempotencyKey.key == key)).first()
    session.rollback()  # end the read transaction: none stays open over the (long) fit that may follow
    return None if row is None else KeyUse(fit_id=row.fit_id, request_hash=row.request_hash)


def get_fit(session: Session, *, fit_id: str) -> Fit | None:
    return session.get(Fit, fit_id)


def fit_stored(session: Session, *, fit_id: str) -> bool:
    """Whether the database holds the fit now (a query, not the session's identity map)."""
    return session.scalar(select(Fit.id).where(Fit.id == fit_id)) is not None


def stored_ids(session: Session, *, fit_ids: list[str]) -> set[str]:
    """Which of ``fit_ids`` the database holds now (one query; keep the list to a few hundred ids)."""
    held = set(session.scalars(select(Fit.id).where(Fit.id.in_(fit_ids))))
    session.rollback()  # end the read transaction
    return held


class UnreadableFit(Exception):
    """A stored result that no longer reads as a ``FitResult`` (e.g. written by a version that let a NaN
    through as null): the app answers 409, and the registry lists it without its groups."""

    def __init__(self, fit_id: str, where: str) -> None:
        super().__init__(f"fit {fit_id}: its stored result cannot be read ({where}); its rows are at "
                         f"/fits/{fit_id}/rows.csv (with a token: /v1/fits/{fit_id}/rows.csv): delete the fit and "
                         "fit them again")
        self.fit_id = fit_id


def fit_result(record: Fit) -> FitResult:
    try:
        return FitResult.model_validate_json(record.result_json)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
        try:  # an older version's fit: say which (a review, session 71)
            written = older_writer(json.loads(record.result_json), version())
        except (ValueError, RecursionError):  # not JSON, or nested past Python's limit: no version to name
            written = None
        said = where if written is None else f"written by abcscale {written}; {where}"
        raise UnreadableFit(record.id, said) from None


def list_fits(session: Session, *, skip: int = 0, limit: int = 100) -> tuple[list[Fit], int]:
    """A page of fits, newest first, and the total count."""
    # The total rides on the page's own statement: two statements read two snapshots (SQLite opens no transaction
    # for a SELECT), and a fit committed between them was on the page but not in the count. It is counted over the
    # ids alone: over whole rows, SQLite carried every fit's result JSON through the window and the sort
    # (20,000 fits: 1 s for limit=1); only the page's rows are loaded whole.
    order = (Fit.created_at.desc(), Fit.id)
    page = (select(Fit.id, func.count().over().label("total")).order_by(*order).offset(skip).limit(limit)
            .subquery())
    rows = session.execute(select(Fit, page.c.total).join(page, Fit.id == page.c.id).order_by(*order)).all()
    if rows:
        return [row[0] for row in rows], int(rows[0][1])
    return [], session.scalar(select(func.count()).select_from(Fit)) or 0


def delete_fit(session: Session, *, fit_id: str) -> bool:
    """Delete a fit with its rows and plots; False when there was none."""
    try:
        # Explicit child deletes keep this correct on databases where foreign keys don't cascade.
        session.execute(delete(FitPlot).where(FitPlot.fit_id == fit_id))
        session.execute(delete(FitInput).where(FitInput.fit_id == fit_id))
        session.execute(delete(IdempotencyKey).where(IdempotencyKey.fit_id == fit_id))  # the key is free again
        # a DML statement's result is a CursorResult, which counts the rows it touched
        deleted = cast(CursorResult[Any], session.execute(delete(Fit).where(Fit.id == fit_id))).rowcount
        session.commit()
    except Exception:
        session.rollback()
        raise
    return bool(deleted)


def get_rows(session: Session, *, fit_id: str) -> pd.DataFrame | None:
    """The input table a fit was made from."""
    blob = session.get(FitInput, fit_id)
    if blob is None:
        return None
    import pandas as pd

    return pd.read_parquet(io.BytesIO(blob.data))


def get_rows_blob(session: Session, *, fit_id: str) -> bytes | None:
    """The input table as stored (Parquet bytes), not decoded: the plot worker decodes it under the caps."""
    blob = session.get(FitInput, fit_id)
    return None if blob is None else blob.data


def get_plot(session: Session, *, fit_id: str, name: str) -> bytes | None:
    plot = session.get(FitPlot, (fit_id, name))
    return None if plot is None else plot.png


def save_plots(session: Session, *, fit_id: str, plots: dict[str, bytes]) -> None:
    """Cache rendered plots; a concurrent request that stored them first wins (same bytes)."""
    try:
        for name, png in plots.items():
            if session.get(FitPlot, (fit_id, name)) is None:
                session.add(FitPlot(fit_id=fit_id, name=name, png=png))
        session.commit()
    except IntegrityError:
        session.rollback()
