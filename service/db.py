"""Tables, the engine and the schema's migrations. SQLite (WAL) by default; PostgreSQL with the ``postgres``
extra (``postgresql+psycopg://...``, tested against a real server by ``make test``).

A fit is one ``fits`` row holding the FitResult JSON and its input table as one Parquet blob in ``fit_inputs``
(written in the same transaction). A fit created with an ``Idempotency-Key`` header has that key in
``idempotency_keys``, also written in the fit's transaction. Plots are never stored here: they are a cache on
disk (service/plots.py). The ``fit_plots`` table, where release 0.2.0 kept them, stays in the schema, unused.

The schema is made and changed by the Alembic revisions in ``migrations/versions`` (``make_engine`` upgrades to
the newest at start), never by ``create_all``: a change to the classes below needs a new revision, and
tests/service/test_migrations.py fails until the revisions make exactly these tables.
"""

from __future__ import annotations

import logging
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

from abcscale.service.config import Settings, StartupRefused

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
#: what a database made by create_all before migrations existed holds, newest first: (revision, its tables).
#: Release 0.2.0 made the first three; development builds since also made idempotency_keys.
LEGACY = (("0002", frozenset({"fits", "fit_inputs", "fit_plots", "idempotency_keys"})),
          ("0001", frozenset({"fits", "fit_inputs", "fit_plots"})))
#: PostgreSQL advisory-lock key held while migrating, so servers starting together migrate one at a time.
PG_LOCK_KEY = 0x0ABC5CA1E
#: every table a revision of this schema ever made: a SQLite file with tables but none of these is another's
OWN_TABLES = frozenset({"alembic_version", *LEGACY[0][1]})

log = logging.getLogger("abcscale.service")


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
    """The engine on the database ``settings`` name, its schema upgraded to the newest; :class:`StartupRefused`
    for a database not to serve (a damaged file, a newer schema, only some of the tables)."""
    url = make_url(settings.resolved_database_url)
    kwargs: dict = {}
    existing: str | None = None  # a SQLite file that was there before: what it held, if fresh tables are made
    if url.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False}
        if not url.database or url.database == ":memory:":
            kwargs["poolclass"] = StaticPool  # one shared connection, or every session sees an empty database
        else:
            database: str = url.database
            if database.startswith("~"):  # SQLite would open a file under a folder literally named "~"
                database = str(Path(database).expanduser())
                url = url.set(database=database)
            folder = Path(database).parent
            if settings.database_url is None:  # the data folder's own file: its folder is made
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except FileExistsError:
                    raise StartupRefused(f"{folder} is a file, not a folder") from None
                except OSError as exc:
                    raise StartupRefused(f"cannot make the folder {folder} ({exc.strerror or exc})") from None
            elif not folder.is_dir():
                # a mistyped path would start on a new, empty database: the team's fits would seem gone
                raise FileNotFoundError(f"the folder {folder} does not exist; create it first for a new database")
            if not url.query.get("uri"):  # a file: URI names its own options (mode=memory, say): not checked
                check_sqlite_file(Path(database))
                existing = _existing_file(Path(database))
    engine = create_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if migrate(engine) == "made" and existing is not None:
        log.warning("database %s: %s", engine.url.render_as_string(hide_password=True), existing)
    return engine


def _existing_file(path: Path) -> str | None:
    """Why tables made in ``path`` are worth a warning: the file was there with bytes in it, or beside a -wal file,
    yet holds no table. What that likely is: a copy of a running service's database file alone, taken with cp
    while its fits were in its -wal file (WAL mode; a review's backup served an empty registry in silence). None
    for no file, or an empty one with no -wal (a new database, ``touch``'d first)."""
    wal = path.with_name(path.name + "-wal")
    size = path.stat().st_size if path.is_file() else 0
    if size == 0 and not wal.exists():
        return None
    where = f"{size} bytes" + (f", beside {wal.name}" if wal.exists() else "")
    return (f"tables made in a file that was already there ({where}) but held none of the service's tables. If it "
            f"is a copy of a running service's database, it holds none of its fits: in WAL mode they stay in "
            f"{path.name}-wal until a checkpoint, and a copy of {path.name} alone misses them. Stop this server "
            "and restore a real backup, taken while the service runs with sqlite3 SOURCE \".backup DEST\" or "
            "Python's sqlite3 backup API (README, Reliability); if the file was meant to be new, ignore this")


def check_sqlite_file(path: Path) -> None:
    """Refuse a damaged SQLite file before anything writes to it: one was served, 500s on reads and 201s on
    writes into it."""
    if not path.is_file() or path.stat().st_size == 0:
        return  # a new database
    try:
        with _closing(sqlite3.connect(str(path), timeout=SQLITE_BUSY_S)) as conn:  # a path, never a URI
            # O(file size), once at start: a file the server cannot read whole would fail requests at random
            problems = [row[0] for row in conn.execute("PRAGMA quick_check(3)")]
    except sqlite3.DatabaseError as exc:
        if not damaged(str(exc)):
            return  # locked, unreadable: the engine says it, as for any database
        problems = [str(exc)]
    if problems != ["ok"]:
        raise StartupRefused(f"the SQLite file {path} is malformed ({'; '.join(problems)[:300]}): restore it from "
                             "a backup; the service does not serve a damaged database")


def check_not_foreign(url: str) -> None:
    """Refuse a SQLite file that holds tables, none of them abcscale's: another application's database, which
    the service would convert (its tables added, its journal turned to WAL). ``abcscale serve`` checks it; a
    program that creates the app on such a file means it."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.query.get("uri"):
        return
    path = Path(parsed.database).expanduser()
    if not path.is_file() or path.stat().st_size == 0:
        return
    try:
        with _closing(sqlite3.connect(str(path), timeout=SQLITE_BUSY_S)) as conn:
            tables = {row[0] for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'")}
    except sqlite3.DatabaseError:
        return  # damaged or unreadable: make_engine says which
    if tables and not tables & OWN_TABLES:
        raise StartupRefused(f"the SQLite file {path} is another application's database (tables "
                             f"{', '.join(sorted(tables)[:5])}{', ...' if len(tables) > 5 else ''}), none of "
                             "abcscale's: give a new file, or the service's own database")


def damaged(message: str) -> bool:
    """Whether a driver's error says the database file is damaged or no database at all."""
    return any(words in message for words in ("malformed", "not a database", "database disk image"))


@contextmanager
def _closing(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    try:  # sqlite3's own context manager commits; it does not close
        yield conn
    finally:
        conn.close()


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


def migrate(engine: Engine) -> str | None:
    """Bring the database to the newest revision (``alembic upgrade head``). A database made by ``create_all``
    (no ``alembic_version`` table) is first stamped with the revision its tables are; one holding only some of a
    revision's tables is refused, naming them, rather than guessed at; so is one at a revision this abcscale does
    not know (a newer abcscale's: the software was rolled back). One under Alembic that lacks a table of its
    revision has it made again or is refused (:func:`remake_missing`), at head too. Returns "made" when it made
    the tables in a database that had none, "upgraded" when it upgraded them, None when they were up to date."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:  # the common case, up to date: no lock taken, no env.py run
        current = MigrationContext.configure(conn).get_current_revision()
        if current == _head() and not missing_tables(conn, current):
            return None
    with _migration_lock(engine) as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        _check_known(current, conn)
        legacy = _legacy_revision(conn, current)
        # before upgrading: a later revision may alter a table that is not there (and at head, nothing else checks)
        remake_missing(conn, legacy or current)
        if current == _head():
            return None  # another server migrated it while this one waited for the lock (or only tables were made)
        cfg = _config()
        cfg.attributes["connection"] = conn
        if legacy is not None:
            command.stamp(cfg, legacy)
        command.upgrade(cfg, "head")
    where = engine.url.render_as_string(hide_password=True)
    if current is None and legacy is None:
        log.info("database %s: tables made (schema revision %s)", where, _head())
        return "made"
    log.info("database %s: schema upgraded from revision %s to %s", where, current or legacy, _head())
    return "upgraded"


def _check_known(revision: str | None, conn: Connection) -> None:
    if revision is None or revision in _revisions():
        return
    if "fits" in inspect(conn).get_table_names():
        raise StartupRefused(f"the database is at schema revision {revision}, newer than this abcscale's "
                             f"({_head()}); upgrade abcscale (or serve a backup made before the upgrade)")
    raise StartupRefused(f"the database is at schema revision {revision}, no abcscale schema (newest {_head()}): "
                         "another application's database?")


#: tables made again, empty, when a database under Alembic lacks them (an operator dropped one, a backup restored in
#: part), with what that costs: without them every DELETE (and a POST with an Idempotency-Key) was a 503. Neither
#: holds anything a request needs back: plots moved to disk, and lost keys stay lost whatever the service does.
#: Missing ``fits`` or ``fit_inputs`` refuse the start instead: their fits (or the rows to plot them) are gone.
REMADE = {"fit_plots": "unused since plots moved to the disk cache: nothing is lost",
          "idempotency_keys": "the Idempotency-Key of every stored fit is forgotten: a retried POST with one of "
                              "those keys stores a second fit"}


def missing_tables(conn: Connection, revision: str | None) -> list[str]:
    """The tables schema ``revision`` has that the database lacks (none for a new database, or a revision whose
    tables are unknown here)."""
    if revision is None:
        return []
    expected = set(Base.metadata.tables) if revision == _head() else dict(LEGACY).get(revision, set())
    return sorted(expected - set(inspect(conn).get_table_names()))


def remake_missing(conn: Connection, revision: str | None) -> None:
    """Make again the :data:`REMADE` tables of ``revision`` the database lacks (a warning each); refuse, naming
    them, when it lacks others. The tables are made from ``Base``: right while no revision after the one that
    made a :data:`REMADE` table changes it (a revision that does must make its own table here)."""
    missing = missing_tables(conn, revision)
    if not missing:
        return
    lost = [name for name in missing if name not in REMADE]
    if lost:
        raise StartupRefused(
            f"the database (schema revision {revision}) lacks the table{'s' * (len(lost) > 1)} {', '.join(lost)}, "
            "holding the stored fits and their rows: it was dropped, or a backup was restored only in part. Restore "
            "the whole database from a backup (README, Reliability); the service does not serve it without them")
    for name in missing:
        Base.metadata.tables[name].create(conn)
        log.warning("database %s: the table %s was missing (dropped, or a backup restored in part) and was made "
                    "again, empty; %s", conn.engine.url.render_as_string(hide_password=True), name, REMADE[name])


def _legacy_revision(conn: Connection, current: str | None) -> str | None:
    """The revision a database made before migrations (by ``create_all``) is at, from its tables; None for one
    under Alembic or a new one. An empty ``alembic_version`` table is no revision: `alembic upgrade head` left
    one on such a database when it failed (a review, session 83), and the service then refused the database."""
    tables = set(inspect(conn).get_table_names())
    if current is not None or not tables & LEGACY[0][1]:
        return None  # already under Alembic, or a new database
    for revision, made in LEGACY:
        if made <= tables:
            return revision
    raise StartupRefused(f"database holds only some of the service's tables ({', '.join(sorted(tables))}); "
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


@cache
def _revisions() -> frozenset[str]:
    from alembic.script import ScriptDirectory

    return frozenset(r.revision for r in ScriptDirectory.from_config(_config()).walk_revisions())
