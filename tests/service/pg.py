"""A fresh PostgreSQL database per test on the server ``ABCSCALE_TEST_POSTGRES_URL`` names (``make test`` starts
one: tests/with_postgres.py). Without that server the PostgreSQL tests skip, unless ``ABCSCALE_REQUIRE_POSTGRES=1``
(set by make test), where they fail: a CI that lost its server must not pass by skipping them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

ENV = "ABCSCALE_TEST_POSTGRES_URL"
REQUIRE = "ABCSCALE_REQUIRE_POSTGRES"


def server_url() -> str:
    """The test server's URL; a skip without one, a failure when one is required."""
    url = os.environ.get(ENV, "").strip()
    if url:
        return url
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{REQUIRE}=1 but {ENV} is not set: no PostgreSQL server to test against (make test starts one "
                    "when Debian's postgresql package is installed)", pytrace=False)
    pytest.skip(f"no PostgreSQL server ({ENV} unset; make test starts one)")


@contextmanager
def fresh_database() -> Iterator[str]:
    """The URL of a new, empty database on the test server, dropped afterwards."""
    url = make_url(server_url())
    name = f"abcscale_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:  # FORCE: a killed server's connections may linger for a moment
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def database(backend: str, tmp_path) -> Iterator[str]:
    """A fresh database URL of ``backend`` ("sqlite": a file under tmp_path; "postgresql": see above)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'service.db'}"
    else:
        with fresh_database() as url:
            yield url


BACKENDS = ("sqlite", "postgresql")
