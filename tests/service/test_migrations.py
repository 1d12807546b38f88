"""The schema is Alembic's: a new database is built by the revisions, the revisions make exactly the tables of
service/db.py, and a database made by an earlier build (``create_all``, no ``alembic_version``) is stamped and
upgraded with its fits intact. Each on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
import time
import warnings

import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, inspect, select
from sqlalchemy.orm import Session

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from abcscale.fitting import fit_table
from abcscale.service import crud
from abcscale.service.app import create_app
from abcscale.service.config import Settings
from abcscale.service.db import Base, Fit, make_engine
from tests.service.conftest import N_BOOT
from tests.service.pg import BACKENDS, database

HEAD = "0002"
#: the tables release 0.2.0 made with create_all (idempotency_keys came after it)
RELEASE_0_2_0 = ("fits", "fit_inputs", "fit_plots")


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    with database(request.param, tmp_path) as url:
        yield url


def _revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def _as_before_migrations(url: str, tables: tuple[str, ...], sweep, n: int) -> list[str]:
    """A database the way an earlier build left it: create_all of ``tables`` (a copy of today's definitions,
    which those tables have kept) and ``n`` fits stored by crud; no alembic_version. Returns the fit ids."""
    old = MetaData()
    for name in tables:
        Base.metadata.tables[name].to_metadata(old)
    engine = create_engine(url)
    try:
        old.create_all(engine)
        fit = fit_table(sweep, n_boot=N_BOOT)
        with Session(engine) as session:
            ids = [crud.create_fit(session, fit, sweep, name=f"old-{i}") for i in range(n)]
        assert "alembic_version" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()
    return ids


def test_a_new_database_is_built_by_the_revisions_and_matches_the_models(db_url):
    engine = make_engine(Settings(database_url=db_url))
    try:
        with engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == HEAD
            # autogenerate's comparison, types included: a model change without a revision shows up here
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diff == [], diff
    finally:
        engine.dispose()


@pytest.mark.parametrize("tables, stamped", [(RELEASE_0_2_0, "0001"), (tuple(Base.metadata.tables), HEAD)],
                         ids=["release-0.2.0", "dev-build"])
def test_a_database_from_an_earlier_build_is_upgraded_and_keeps_its_fits(db_url, sweep, sweep_rows, tables,
                                                                          stamped, monkeypatch):
    ids = _as_before_migrations(db_url, tables, sweep, n=2)
    stamps = []
    real_stamp = __import__("alembic.command", fromlist=["stamp"]).stamp
    monkeypatch.setattr("alembic.command.stamp", lambda cfg, rev: (stamps.append(rev), real_stamp(cfg, rev)))
    with TestClient(create_app(Settings(database_url=db_url))) as client:
        assert stamps == [stamped]
        listed = client.get("/v1/fits").json()
        assert listed["count"] == 2 and {f["id"] for f in listed["data"]} == set(ids)
        for fit_id in ids:
            got = client.get(f"/v1/fits/{fit_id}")
            assert got.status_code == 200 and got.json()["id"] == fit_id
        # the table release 0.2.0 lacked works after the upgrade
        post, again = (client.post("/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT},
                                   headers={"Idempotency-Key": "after-upgrade"}) for _ in range(2))
        assert post.status_code == again.status_code == 201, post.text
        assert post.json()["id"] == again.json()["id"]
        assert client.get("/v1/fits").json()["count"] == 3
    assert _revision(db_url) == HEAD
    with crud.open_session(Settings(database_url=db_url)) as session:  # the stored rows too, types kept
        for fit_id in ids:
            pd.testing.assert_frame_equal(crud.get_rows(session, fit_id=fit_id), sweep.reset_index(drop=True))


def test_a_database_with_some_of_the_tables_is_refused_by_name(db_url):
    engine = create_engine(db_url)
    try:
        Base.metadata.tables["fits"].to_metadata(MetaData()).create(engine)
    finally:
        engine.dispose()
    with pytest.raises(RuntimeError, match="missing fit_inputs, fit_plots"):
        make_engine(Settings(database_url=db_url))
    assert _revision(db_url) is None  # nothing stamped, nothing half-made


def test_a_server_starting_while_a_new_sqlite_file_is_locked_waits_for_it(tmp_path):
    """Turning a new SQLite file to WAL needs every other lock gone, and SQLite refuses it at once ("database is
    locked", without its busy handler) while another connection writes: servers starting together on a new
    database failed that way about once in 13 tries. A server now waits, as it waits for any other lock."""
    path = tmp_path / "service.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE other (a)")  # a file in SQLite's default (rollback journal) mode
    other.execute("BEGIN IMMEDIATE")
    committed: list[float] = []

    def commit() -> None:
        other.execute("COMMIT")
        committed.append(time.perf_counter())

    release = threading.Timer(0.5, commit)
    release.start()
    try:
        make_engine(Settings(database_url=f"sqlite:///{path}")).dispose()
        done = time.perf_counter()
    finally:
        release.join()
        other.close()
    assert committed and done > committed[0]  # it waited for the lock rather than racing past it
    assert _revision(f"sqlite:///{path}") == HEAD
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_servers_starting_together_migrate_once(db_url):
    """Four engines upgrade one new database at the same time: the migration lock lets one build it, the others
    find it built (no 'table already exists')."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(4, timeout=30)

    def start() -> None:
        try:
            barrier.wait()
            make_engine(Settings(database_url=db_url)).dispose()
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert _revision(db_url) == HEAD
    engine = make_engine(Settings(database_url=db_url))
    try:
        with Session(engine) as session:
            assert session.scalars(select(Fit)).all() == []
    finally:
        engine.dispose()


# --- session 83: `alembic upgrade head` on a database from before migrations ------------------------------------------

def _alembic_upgrade(url: str):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ABCSCALE_")}, "ABCSCALE_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=Path(__file__).parents[2],
                          env=env, capture_output=True, text=True, timeout=120)


def test_the_alembic_command_stamps_a_database_from_before_migrations(db_url, sweep):
    # it made the tables again ("table fits already exists", a traceback) and left an empty alembic_version
    ids = _as_before_migrations(db_url, RELEASE_0_2_0, sweep, n=1)
    done = _alembic_upgrade(db_url)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "stamped 0001" in done.stderr and _revision(db_url) == HEAD
    with TestClient(create_app(Settings(database_url=db_url))) as client:
        assert client.get(f"/v1/fits/{ids[0]}").status_code == 200


def test_an_empty_version_table_left_by_a_failed_upgrade_is_read_as_before_migrations(db_url, sweep):
    ids = _as_before_migrations(db_url, RELEASE_0_2_0, sweep, n=1)
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
    finally:
        engine.dispose()
    with TestClient(create_app(Settings(database_url=db_url))) as client:  # refused: "table fits already exists"
        assert client.get(f"/v1/fits/{ids[0]}").status_code == 200
    assert _revision(db_url) == HEAD
