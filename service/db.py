"""Tables and the engine. SQLite (WAL) by default; any SQLAlchemy URL, e.g. PostgreSQL, works unchanged.

A fit is one ``fits`` row holding the FitResult JSON, its input table as one Parquet blob in ``fit_inputs``
(written in the same transaction) and, once asked for, its plots as PNG blobs in ``fit_plots``. A fit created
with an ``Idempotency-Key`` header has that key in ``idempotency_keys``, also written in the fit's transaction.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, String, Text, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool

from abcscale.service.config import Settings


class Base(DeclarativeBase):
    pass


class Fit(Base):
    __tablename__ = "fits"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    n_rows: Mapped[int] = mapped_column(Integer)
    n_groups: Mapped[int] = mapped_column(Integer)
    input_hash: Mapped[str] = mapped_column(String(128))
    result_json: Mapped[str] = mapped_column(Text)


class FitInput(Base):
    __tablename__ = "fit_inputs"

    fit_id: Mapped[str] = mapped_column(ForeignKey("fits.id", ondelete="CASCADE"), primary_key=True)
    format: Mapped[str] = mapped_column(String(16), default="parquet")
    data: Mapped[bytes] = mapped_column(LargeBinary)


class FitPlot(Base):
    __tablename__ = "fit_plots"

    fit_id: Mapped[str] = mapped_column(ForeignKey("fits.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    png: Mapped[bytes] = mapped_column(LargeBinary)


class IdempotencyKey(Base):
    """The key a fit was created with: the primary key makes a second fit with the same key impossible, even
    from two requests at once; deleting the fit deletes its key (so the key can be used again)."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fit_id: Mapped[str] = mapped_column(ForeignKey("fits.id", ondelete="CASCADE"), index=True)
    request_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the request's content, to refuse reuse
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def make_engine(settings: Settings) -> Engine:
    url = make_url(settings.resolved_database_url)
    kwargs: dict = {}
    if url.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False}
        if not url.database or url.database == ":memory:":
            kwargs["poolclass"] = StaticPool  # one shared connection, or every session sees an empty database
        else:
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    Base.metadata.create_all(engine)
    return engine


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL lets readers go on while a fit is written; foreign keys make DELETE cascade to rows and plots.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
