"""Operations leftovers (session 68), each met as an operator would: a database missing one of its tables, the
migration command that printed nothing, a plot cache another server's delete left behind, and a readiness probe
that stays green while the database is down. Real apps, real SQLite files, a real PostgreSQL cluster stopped and
started, `abcscale serve` and `alembic` as processes."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from alembic import command
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from abcscale.service import db as service_db
from abcscale.service.app import create_app
from abcscale.service.config import Settings
from tests.helpers import free_port, wait_healthy
from tests.service.conftest import N_BOOT, PLOT_WAIT_S, SharedPlotWorkers, TestClient
from tests.service.pg import BACKENDS, REQUIRE, database

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def _app(tmp_path: Path, url: str, plots: str = "plots", workers: SharedPlotWorkers | None = None
         ) -> Iterator[TestClient]:
    """A started app; ``workers``: it renders on the test process's shared plot workers (conftest)."""
    with TestClient(create_app(Settings(data_dir=tmp_path, database_url=url, api_token=None,
                                        plot_dir=tmp_path / plots, plot_wait_s=PLOT_WAIT_S))) as c:
        if workers is not None:
            workers.attach(c.app)
        yield c


def _at_0001_without(url: str, table: str | None) -> None:
    """The database at ``url`` (made by the service, maybe with fits) taken back to revision 0001, then ``table``
    dropped: a table an operator dropped, or a backup restored in part."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            cfg = service_db._config()
            cfg.attributes["connection"] = conn
            if MigrationContext.configure(conn).get_current_revision() != "0001":
                command.downgrade(cfg, "0001")
            if table:
                conn.exec_driver_sql(f"DROP TABLE {table}")
    finally:
        engine.dispose()


def _revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def _serve_refused(url: str) -> subprocess.CompletedProcess[str]:
    """`abcscale serve` on ``url``, expected to refuse at once (a failure, not a hang, if it serves instead)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABCSCALE_")}
    try:
        return subprocess.run([sys.executable, "-m", "abcscale", "serve", "--port", str(free_port()), "--db", url],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("abcscale serve started serving the database instead of refusing it")


def _alembic(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The README's migration command, from the checkout (``[tool.alembic]`` in pyproject.toml)."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ABCSCALE_")}, "ABCSCALE_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "alembic", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    with database(request.param, tmp_path) as url:
        yield url


# --- 1. a database at revision 0001 that lacks one of its tables --------------------------------------------------

def test_a_dropped_fit_plots_table_is_made_again_and_a_delete_answers(db_url, tmp_path, sweep_rows, caplog):
    """A database at 0001 without fit_plots was upgraded to head in silence, and every DELETE then answered 503
    ("no such table: fit_plots"). The table holds nothing now (plots are on disk): it is made again, said once."""
    with _app(tmp_path, db_url) as c:
        fit_id = c.post("/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT, "name": "kept"}).json()["id"]
    _at_0001_without(db_url, "fit_plots")
    with caplog.at_level(logging.WARNING, logger="abcscale.service"), _app(tmp_path, db_url) as c:
        assert c.get(f"/v1/fits/{fit_id}").json()["name"] == "kept"  # the fit kept
        r = c.delete(f"/v1/fits/{fit_id}")
        assert r.status_code == 204, r.text
        assert c.get("/v1/fits").json()["count"] == 0
    assert "the table fit_plots was missing" in caplog.text
    assert _revision(db_url) == "0002" and {"fit_plots", "idempotency_keys"} <= _tables(db_url)


def test_a_dropped_idempotency_keys_table_at_head_is_made_again(tmp_path, sweep_rows):
    """At head too (no migration to run, so nothing looked): a keyed POST and every DELETE were 503s."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    with _app(tmp_path, url) as c:
        fit_id = c.post("/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT}).json()["id"]
    with sqlite3.connect(tmp_path / "a.db") as conn:
        conn.execute("DROP TABLE idempotency_keys")
    with _app(tmp_path, url) as c:
        assert c.delete(f"/v1/fits/{fit_id}").status_code == 204
        r = c.post("/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT}, headers={"Idempotency-Key": "k-1"})
        assert r.status_code == 201, r.text


def test_a_missing_fits_table_is_refused_by_serve_and_by_the_migration_command(tmp_path):
    """fit_inputs (the rows of every fit) gone: nothing to make again. `abcscale serve` refuses with exit 2 naming
    the table and what to do; `alembic upgrade head` fails saying the same and changes nothing."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    service_db.make_engine(Settings(database_url=url)).dispose()
    _at_0001_without(url, "fit_inputs")
    out = _serve_refused(url)
    said = " ".join(out.stderr.split())
    assert out.returncode == 2, out.stderr
    assert "lacks the table fit_inputs" in said and "Restore the whole database from a backup" in said
    assert "Traceback" not in said
    ran = _alembic(url, "upgrade", "head")
    said = ran.stdout + ran.stderr  # alembic prints FAILED on stdout
    assert ran.returncode != 0 and "FAILED: the database (schema revision 0001) lacks the table fit_inputs" in said
    assert "Traceback" not in said
    assert _revision(url) == "0001"  # not upgraded past the problem


# --- 2. `alembic upgrade head` says what it applied ----------------------------------------------------------------

def test_the_migration_command_says_the_revisions_it_applied(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    service_db.make_engine(Settings(database_url=url)).dispose()
    _at_0001_without(url, None)
    ran = _alembic(url, "upgrade", "head")
    assert ran.returncode == 0, ran.stderr
    assert "INFO  [alembic.runtime.migration] Running upgrade 0001 -> 0002" in ran.stderr, ran.stderr
    assert _revision(url) == "0002"
    again = _alembic(url, "upgrade", "head")  # up to date: no revision applied, and it says none
    assert again.returncode == 0 and "Running upgrade" not in again.stderr


def test_the_server_start_stays_one_line_for_a_migration(tmp_path):
    """The server's own start-up migrates through the same env.py: still its one line, no alembic INFO lines."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    service_db.make_engine(Settings(database_url=url)).dispose()
    _at_0001_without(url, None)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABCSCALE_")}
    proc = subprocess.Popen([sys.executable, "-m", "abcscale", "serve", "--port", str(port), "--db", url,
                             "--log-level", "info"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
    finally:
        proc.terminate()
        err = proc.communicate(timeout=30)[1]
    assert "schema upgraded from revision 0001 to 0002" in err
    assert "alembic" not in err and "Running upgrade" not in err, err


# --- 3. two servers on one database: the other's plot cache of a deleted fit -----------------------------------------

def _drawn(c: TestClient, fit_id: str) -> None:
    r = c.get(f"/v1/fits/{fit_id}/plots/loss_vs_lr.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text


def test_a_fit_deleted_by_another_server_leaves_no_plots_in_this_ones_cache(tmp_path, sweep_rows, plot_workers):
    """Two servers on one database, each with its own disk (cache): server A's delete removed A's plots only;
    B's folder for the fit stayed for ever. Now B removes it when it finds the fit gone (a 404), and at start-up
    sweeps any its requests never met, keeping the plots of the fits still stored."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with _app(tmp_path, url, "plots-a", plot_workers) as a, _app(tmp_path, url, "plots-b", plot_workers) as b:
        gone, kept, missed = (a.post("/v1/fits", json={"rows": sweep_rows, "n_boot": N_BOOT}).json()["id"]
                              for _ in range(3))
        for fit_id in (gone, kept, missed):
            _drawn(b, fit_id)
        _drawn(a, gone)
        assert a.delete(f"/v1/fits/{gone}").status_code == 204
        assert a.delete(f"/v1/fits/{missed}").status_code == 204
        assert not (tmp_path / "plots-a" / gone).exists()  # A's own cache: as before
        assert (tmp_path / "plots-b" / gone).is_dir()  # B has not noticed yet
        assert b.get(f"/v1/fits/{gone}/plots/loss_vs_lr.png").status_code == 404
        assert not (tmp_path / "plots-b" / gone).exists()  # the 404 removed it
        assert (tmp_path / "plots-b" / missed).is_dir()  # never asked for on B
    with _app(tmp_path, url, "plots-b", plot_workers) as b:  # B restarted
        assert not (tmp_path / "plots-b" / missed).exists()
        assert (tmp_path / "plots-b" / kept / "loss_vs_lr.png").is_file()  # a stored fit's plots stay
        _drawn(b, kept)
    # a server of another database on the same plot folder (a misconfiguration): it sweeps none of them
    with _app(tmp_path, f"sqlite:///{tmp_path / 'other.db'}", "plots-b") as other:
        assert other.get(f"/v1/fits/{kept}").status_code == 404
    assert (tmp_path / "plots-b" / kept / "loss_vs_lr.png").is_file()


# --- 4. readiness: /readyz answers 503 while the database is down --------------------------------------------------

def test_readyz_is_503_while_a_sqlite_file_is_locked_and_healthz_stays_200(tmp_path, monkeypatch):
    monkeypatch.setattr(service_db, "SQLITE_BUSY_S", 0.2)
    url = f"sqlite:///{tmp_path / 'a.db'}"
    with _app(tmp_path, url) as c:
        assert c.get("/readyz").status_code == 200 and c.get("/readyz").json()["status"] == "ready"
        c.app.state.engine.dispose()  # its pooled connections closed: another process may take the whole file
        other = sqlite3.connect(tmp_path / "a.db", timeout=5)
        other.execute("PRAGMA locking_mode=EXCLUSIVE")
        other.execute("BEGIN EXCLUSIVE")
        other.execute("CREATE TABLE hold (x)")  # a writer holding the whole file: no reader gets in
        try:
            r = c.get("/readyz")
            assert r.status_code == 503, r.text
            assert "database is locked" in r.json()["detail"] and int(r.headers["Retry-After"]) > 0
            assert c.get("/healthz").status_code == 200
        finally:
            other.rollback()
            other.close()
        assert c.get("/readyz").status_code == 200
        assert c.head("/readyz").status_code == 200


def _pg_binaries():
    from tests.with_postgres import _binaries

    found = _binaries()
    if found is None:
        if os.environ.get(REQUIRE) == "1":
            pytest.fail("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin)", pytrace=False)
        pytest.skip("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin)")
    return found


def test_readyz_is_503_while_postgresql_is_stopped_and_200_once_it_is_back():
    """A cluster of its own (the suite's shared one is never stopped): `abcscale serve` on it, the cluster stopped
    (pg_ctl stop -m immediate), then started again."""
    from tests.with_postgres import Cluster

    cluster = Cluster(_pg_binaries())
    try:
        cluster.start()
        _serve_and_stop(cluster)
    finally:
        cluster.stop()


def _serve_and_stop(cluster) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABCSCALE_")}
    proc = subprocess.Popen([sys.executable, "-m", "abcscale", "serve", "--port", str(port), "--db", cluster.url,
                             "--log-level", "warning"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_healthy(base, proc)
        assert httpx.get(f"{base}/readyz", timeout=30).status_code == 200
        cluster._run("pg_ctl", "-D", str(cluster.data), "-m", "immediate", "-w", "stop")
        r = httpx.get(f"{base}/readyz", timeout=30)
        assert r.status_code == 503, r.text
        assert r.json()["detail"].startswith("not ready: the database cannot be read (") and r.headers["Retry-After"]
        assert httpx.get(f"{base}/healthz", timeout=30).status_code == 200  # liveness: the process is fine
        opts = f"-h 127.0.0.1 -p {cluster.port} -k {cluster.root}"
        cluster._run("pg_ctl", "-D", str(cluster.data), "-l", str(cluster.root / "log"), "-o", opts, "-w", "start")
        deadline = time.monotonic() + 30
        while (code := httpx.get(f"{base}/readyz", timeout=30).status_code) != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert code == 200
    finally:
        proc.terminate()
        err = proc.communicate(timeout=30)[1]
    assert "readiness: 503, the database cannot be read" in err and "readiness: the database answers again" in err
