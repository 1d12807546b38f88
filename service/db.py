"""Tables, the engine and the schema's migrations. SQLite (WAL) by default; PostgreSQL with the ``postgres``
extra (``postgresql+psycopg://...``, tested against a real server by ``make test``).

A fit is one ``fits`` row holding the FitResult JSON, its input table as one Parquet blob in ``fit_inputs``
(written in the same transaction) and, once asked for, its plots as PNG blobs in ``fit_plots``. A fit created
with an ``Idempotency-Key`` header has that key in ``idempotency_keys``, also written in the fit's transaction.

The schema is made and changed by the Alembic revisions in ``migrations/versions`` (``make_engine`` upgrades to
the newest at start), never by ``create_all``: a change to the classes below needs a new revision, and
tests/service/test_migrations.py fails until the revisions make exactly these tables.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import (
    Connection,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool

from abcscale.service.config import Settings

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
#: what a database made by create_all before migrations existed holds, newest first: (revision, its tables).
#: Release 0.2.0 made the first three; development builds since also made idempotency_keys.
LEGACY = (("0002", frozenset({"fits", "fit_inputs", "fit_plots", "idempotency_keys"})),
          ("0001", frozenset({"fits", "fit_inputs", "fit_plots"})))
#: PostgreSQL advisory-lock key held while migrating, so servers starting together migrate one at a time.
PG_LOCK_KEY = 0x0ABC5CA1E


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
        elif settings.database_url is None:  # the data folder's own file: its folder is made
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        elif not (folder := Path(url.database).expanduser().parent).is_dir():
            # a mistyped path would start on a new, empty database: the team's fits would seem gone
            raise FileNotFoundError(f"the folder {folder} does not exist; create it first for a new database")
    engine = create_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    migrate(engine)
    return engine


#: how long a SQLite connection waits for another's lock (busy_timeout), in seconds
SQLITE_BUSY_S = 5.0


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL lets readers go on while a fit is written; foreign keys make DELETE cascade to rows and plots.
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_S * 1000)}")
    if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        _set_wal(cur)
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _set_wal(cur) -> None:
    """Turn a new database file to WAL (the mode stays in the file). SQLite answers "database is locked" at once,
    without its busy handler, when another connection holds a lock meanwhile: servers starting together on a
    new database did (3 of 40 tries of tests/service/test_migrations.py's four engines). So retry until the
    busy timeout, as the busy handler would."""
    deadline = time.monotonic() + SQLITE_BUSY_S
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


def migrate(engine: Engine) -> None:
    """Bring the database to the newest revision (``alembic upgrade head``). A database made by ``create_all``
    (no ``alembic_version`` table) is first stamped with the revision its tables are; one holding only some of a
    revision's tables is refused, naming them, rather than guessed at."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:  # the common case, up to date: no lock taken, no env.py run
        if MigrationContext.configure(conn).get_current_revision() == _head():
            return
    with _migration_lock(engine) as conn:
        if MigrationContext.configure(conn).get_current_revision() == _head():
            return  # another server migrated it while this one waited for the lock
        cfg = _config()
        cfg.attributes["connection"] = conn
        legacy = _legacy_revision(conn)
        if legacy is not None:
            command.stamp(cfg, legacy)
        command.upgrade(cfg, "head")


def _legacy_revision(conn: Connection) -> str | None:
    tables = set(inspect(conn).get_table_names())
    if "alembic_version" in tables or not tables & LEGACY[0][1]:
        return None  # already under Alembic, or a new database
    for revision, made in LEGACY:
        if made <= tables:
            return revision
    raise RuntimeError(f"database holds only some of the service's tables ({', '.join(sorted(tables))}); "
                       f"missing {', '.join(sorted(LEGACY[-1][1] - tables))}: restore it or use another")


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that only one migrating process at a time holds; committed at the end."""
    backend = engine.url.get_backend_name()
    if backend == "postgresql":  # DDL is transactional; a second server waits here, then finds nothing to do
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
            yield conn
    elif backend == "sqlite":  # the driver would start its own transactions: take the write lock ourselves
        with engine.connect() as plain:
            conn = plain.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")
    else:
        with engine.begin() as conn:
            yield conn


def _config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@cache
def _head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()
