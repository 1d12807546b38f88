"""Alembic's entry point. At start-up the service hands over a connection that already holds the migration lock
(``abcscale.service.db.migrate``); run by the ``alembic`` command (``[tool.alembic]`` in pyproject.toml), it opens
``ABCSCALE_DATABASE_URL`` itself."""

from __future__ import annotations

from pathlib import Path

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from abcscale.service.config import Settings
from abcscale.service.db import Base

config = context.config


def _configure(**kwargs) -> None:
    url = kwargs.get("url") or kwargs["connection"].engine.url
    # SQLite alters a table by copying it ("batch" mode); needed by any later revision that changes a column.
    context.configure(target_metadata=Base.metadata, render_as_batch=str(url).startswith("sqlite"),
                      compare_type=True, **kwargs)


def main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
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
            _configure(connection=conn)
            with context.begin_transaction():
                context.run_migrations()
            conn.commit()
    finally:
        engine.dispose()


main()
