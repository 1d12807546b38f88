"""Alembic's entry point. At start-up the service hands over a connection that already holds the migration lock
(``abcscale.service.db.migrate``); run by the ``alembic`` command (``[tool.alembic]`` in pyproject.toml), it opens
``ABCSCALE_DATABASE_URL`` itself."""

from __future__ import annotations

import logging
from logging.config import fileConfig
from pathlib import Path

from alembic import context
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from abcscale.service.config import Settings, StartupRefused
from abcscale.service.db import Base, _legacy_revision, remake_missing

config = context.config
#: how alembic's own alembic.ini template writes its lines: ``INFO  [alembic.runtime.migration] Running upgrade ...``
LOG_FORMAT = "%(levelname)-5.5s [%(name)s] %(message)s"


def _cli_logging() -> None:
    """Alembic's INFO lines on stderr, as alembic.ini's [loggers] would give them: the config lives in pyproject.toml,
    which has no logging, so `alembic upgrade head` printed nothing whether it applied revisions or not. Only when
    run by the ``alembic`` command (``cmd_opts`` set): the service's own start-up logs its one line itself."""
    ini = Path(config.config_file_name or "")
    if ini.is_file() and "[loggers]" in ini.read_text(errors="replace"):
        fileConfig(ini, disable_existing_loggers=False)  # an operator's own alembic.ini says how
        return
    logging.basicConfig(format=LOG_FORMAT, level=logging.WARNING)  # as alembic.ini's root: warnings, on stderr
    logging.getLogger("alembic").setLevel(logging.INFO)


def _configure(**kwargs) -> None:
    url = kwargs.get("url") or kwargs["connection"].engine.url
    # SQLite alters a table by copying it ("batch" mode); needed by any later revision that changes a column.
    context.configure(target_metadata=Base.metadata, render_as_batch=str(url).startswith("sqlite"),
                      compare_type=True, **kwargs)


def _upgrading() -> bool:
    """Whether this is `alembic upgrade` (not `current`, `downgrade`, ...: they make no table)."""
    cmd = getattr(config.cmd_opts, "cmd", None)
    if not cmd:
        return False
    return getattr(cmd[0], "__name__", "") == "upgrade"


def main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    if config.cmd_opts is not None:
        _cli_logging()
    url = Settings().resolved_database_url
    if context.is_offline_mode():  # `alembic upgrade head --sql`: the SQL, for a DBA to run
        _configure(url=url, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and (parsed.database or "").startswith("~"):
        # as the service opens it (service.db.make_engine): SQLite alone would open a folder named "~"
        parsed = parsed.set(database=str(Path(parsed.database or "").expanduser()))
    engine = create_engine(parsed)
    try:
        with engine.connect() as conn:
            if _upgrading():  # as the service's start does (service.db.migrate): a table dropped since is made or said
                try:
                    current = MigrationContext.configure(conn).get_current_revision()
                    # a database from before migrations is stamped with the revision its tables are, as the
                    # service's start does: `alembic upgrade head` made its tables again ("table fits already
                    # exists", a traceback) and left an empty version table behind (a review, session 83)
                    if legacy := _legacy_revision(conn, current):
                        MigrationContext.configure(conn).stamp(ScriptDirectory.from_config(config), legacy)
                        logging.getLogger("alembic").info("database from before migrations: stamped %s", legacy)
                    remake_missing(conn, current or legacy)
                except StartupRefused as exc:
                    raise CommandError(str(exc)) from None  # `FAILED: ...` and exit 1, not a traceback
            _configure(connection=conn)
            with context.begin_transaction():
                context.run_migrations()
            conn.commit()
    finally:
        engine.dispose()


main()
