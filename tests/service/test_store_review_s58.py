"""Review s58 of the store: damaged, foreign, newer or in-memory databases refused at start, NUL in a fit's name,
an unusable plot cache, the listing's cost, 503s in the log, plot workers outliving a killed server, the default
URL of an odd data folder, and startup errors that named the wrong setting."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError
from typer.testing import CliRunner

from abcscale.service import crud, db
from abcscale.service.app import create_app
from abcscale.service.config import Settings, StartupRefused
from abcscale.service.db import Fit, make_engine, make_sessionmaker

from .conftest import TestClient


def _serve(*args: str, env: dict[str, str] | None = None):
    from abcscale.cli import app

    return CliRunner().invoke(app, ["serve", "--port", "0", *args], env=env)


def _said(out) -> str:
    return " ".join(out.output.split())  # rich may wrap a long line


def _new_db(path) -> str:
    url = f"sqlite:///{path}"
    make_engine(Settings(database_url=url)).dispose()
    return url


# --- 1. a damaged SQLite file -----------------------------------------------------------------------------------

def _corrupted(path) -> str:
    """A database of a few hundred pages, in rollback-journal mode (so the damage is in the file itself), with
    bytes past its header overwritten."""
    url = _new_db(path)
    with sqlite3.connect(path) as conn:
        conn.executemany("INSERT INTO fits VALUES (?, 'x', '2026-01-01 00:00:00', 1, 1, 'h', ?)",
                         [(f"{i:032x}", "r" * 5000) for i in range(200)])
    conn.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    with open(path, "r+b") as f:
        f.seek(4096 * 3)
        f.write(os.urandom(4096 * 40))
    return url


def test_serve_refuses_a_malformed_sqlite_file(tmp_path):
    url = _corrupted(tmp_path / "bad.db")
    out = _serve("--db", url)
    assert out.exit_code == 2, out.output
    assert "error: --db: the SQLite file" in _said(out) and "bad.db is malformed" in _said(out)


def test_serve_refuses_a_file_that_is_no_database(tmp_path):
    (tmp_path / "notes.db").write_text("not a database at all\n" * 200)
    out = _serve("--db", f"sqlite:///{tmp_path / 'notes.db'}")
    assert out.exit_code == 2 and "malformed (file is not a database)" in _said(out)


def test_a_database_damaged_while_served_is_a_503_naming_it(client, monkeypatch, caplog):
    def damaged(*_, **__):
        raise DatabaseError("SELECT ...", {}, sqlite3.DatabaseError("database disk image is malformed"))

    monkeypatch.setattr(crud, "list_fits", damaged)
    with caplog.at_level(logging.WARNING, logger="abcscale.service"):
        r = client.get("/v1/fits")
    assert r.status_code == 503 and "the database file is malformed" in r.json()["detail"]
    assert r.headers["Retry-After"]
    assert any("malformed" in rec.getMessage() for rec in caplog.records)


def test_another_database_error_stays_a_500(settings, monkeypatch):
    def broken(*_, **__):
        raise IntegrityError("INSERT ...", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))

    monkeypatch.setattr(crud, "list_fits", broken)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        assert c.get("/v1/fits").status_code == 500  # a bug, not the database's state: not hidden as a 503


# --- 2. control characters in a fit's name ----------------------------------------------------------------------

def test_a_name_with_nul_is_a_422_at_name_json(client, sweep_rows):
    r = client.post("/v1/fits", json={"rows": sweep_rows, "name": "a\u0000b"})
    assert r.status_code == 422, r.text
    err = r.json()["detail"][0]
    assert err["loc"] == ["body", "name"] and "U+0000" in err["msg"]
    assert client.get("/v1/fits").json()["count"] == 0


def test_a_name_with_nul_is_a_422_at_name_multipart(client, sweep):
    r = client.post("/v1/fits", files={"file": ("s.csv", sweep.to_csv(index=False), "text/csv")},
                    data={"name": "a\u0001b"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "name"]


def test_a_name_with_nul_is_refused_by_the_upload_page(client, sweep):
    r = client.post("/fits", files={"file": ("s.csv", sweep.to_csv(index=False), "text/csv")},
                    data={"name": "a\u0000b"}, headers={"Accept": "text/html"})
    assert r.status_code == 422 and "control characters" in r.text
    assert client.get("/v1/fits").json()["count"] == 0


def test_name_problem_allows_tab_and_newline():
    assert crud.name_problem(None) is None and crud.name_problem("run\t2\nlong") is None
    assert "U+001B" in crud.name_problem("a\x1b[31m")


def test_create_fit_refuses_a_nul_name_whatever_calls_it(client):
    with client.app.state.sessionmaker() as session, pytest.raises(ValueError, match="name: must not contain"):
        crud.create_fit(session, None, None, name="\x00")  # type: ignore[arg-type]  # refused before any use


# --- 3. an unusable plot cache ----------------------------------------------------------------------------------

def test_a_plot_dir_that_is_a_file_refuses_to_start(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(StartupRefused) as exc:
        create_app(Settings(data_dir=tmp_path, plot_dir=tmp_path / "afile"))
    assert exc.value.setting == "ABCSCALE_PLOT_DIR"
    out = _serve("--db", f"sqlite:///{tmp_path / 'x.db'}", env={"ABCSCALE_PLOT_DIR": str(tmp_path / "afile")})
    assert out.exit_code == 2 and "error: ABCSCALE_PLOT_DIR:" in _said(out) and "is a file" in _said(out)
    assert not (tmp_path / "x.db").exists()  # refused before the database was made


def test_a_plot_cache_broken_while_served_is_a_503(client, stored_fit, settings, caplog):
    root = settings.resolved_plot_dir
    root.rmdir() if root.is_dir() else None
    root.write_text("not a folder")  # made a file behind the server's back
    with caplog.at_level(logging.WARNING, logger="abcscale.service"):
        r = client.get(f"/v1/fits/{stored_fit['id']}/plots/loss_vs_lr.png")
    assert r.status_code == 503, r.text
    assert "plot cache" in r.json()["detail"] and r.headers["Retry-After"]
    assert any("plot cache" in rec.getMessage() for rec in caplog.records)


# --- 4. a newer schema, a half-made database, the migration's log line --------------------------------------------

def test_serve_refuses_a_newer_schema_in_one_line(tmp_path):
    url = _new_db(tmp_path / "future.db")
    with sqlite3.connect(tmp_path / "future.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099'")
    conn.close()
    out = _serve("--db", url)
    assert out.exit_code == 2, out.output
    assert (f"error: --db: the database is at schema revision 0099, newer than this abcscale's ({db._head()}); "
            "upgrade abcscale") in _said(out)
    assert "Traceback" not in out.output


def test_serve_refuses_a_half_made_database_in_one_line(tmp_path):
    url = _new_db(tmp_path / "half.db")
    with sqlite3.connect(tmp_path / "half.db") as conn:
        conn.execute("DROP TABLE alembic_version")
        conn.execute("DROP TABLE fit_plots")
    conn.close()
    out = _serve("--db", url)
    assert out.exit_code == 2 and "error: --db: database holds only some" in _said(out)


def test_a_migration_says_what_it_did(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="abcscale.service"):
        url = _new_db(tmp_path / "m.db")
    assert any("tables made" in r.getMessage() for r in caplog.records)
    with sqlite3.connect(tmp_path / "m.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0001'")
        conn.execute("DROP TABLE idempotency_keys")
    conn.close()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="abcscale.service"):
        make_engine(Settings(database_url=url)).dispose()
    assert [r.getMessage() for r in caplog.records] == [
        f"database {url}: schema upgraded from revision 0001 to {db._head()}"]


# --- 5. the listing ------------------------------------------------------------------------------------------------

def test_listing_pages_newest_first_with_the_total(tmp_path):
    engine = make_engine(Settings(database_url=f"sqlite:///{tmp_path / 'l.db'}"))
    base = datetime(2026, 1, 1, tzinfo=UTC)
    # ties on created_at are ordered by id; ids not in time order
    made = [(f"{(i * 7919) % 1000:032x}", base + timedelta(seconds=i // 3)) for i in range(40)]
    with make_sessionmaker(engine)() as session:
        session.add_all(Fit(id=i, name=None, created_at=t, n_rows=1, n_groups=1, input_hash="h", result_json="{}")
                        for i, t in made)
        session.commit()
        expected = [i for i, _ in sorted(made, key=lambda m: (-m[1].timestamp(), m[0]))]
        for skip, limit in [(0, 1), (0, 100), (5, 7), (38, 5), (40, 3), (1000, 10)]:
            page, count = crud.list_fits(session, skip=skip, limit=limit)
            assert count == 40
            assert [f.id for f in page] == expected[skip:skip + limit]
        assert page == [] and crud.list_fits(session)[0][0].result_json == "{}"  # rows loaded whole
    engine.dispose()


def test_listing_sorts_only_ids_not_whole_rows(tmp_path):
    """The window and the sort run over (id, created_at) alone; the whole rows are joined to the page's ids.
    (20,067 fits of 24 KB results: limit=1 took 1175 ms, now 28 ms.)"""
    engine = make_engine(Settings(database_url=f"sqlite:///{tmp_path / 'q.db'}"))
    statements: list[str] = []
    from sqlalchemy import event

    def seen(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    with make_sessionmaker(engine)() as session:
        crud.list_fits(session, skip=0, limit=1)
    inner = statements[0].split("JOIN (", 1)[1]
    assert "count(*) OVER ()" in inner and "result_json" not in inner.split("LIMIT")[0]
    engine.dispose()


# --- 6. 503s in the server's log -----------------------------------------------------------------------------------

def test_a_database_503_is_logged_with_its_reason(client, monkeypatch, caplog):
    def locked(*_, **__):
        raise OperationalError("SELECT ...", {}, sqlite3.OperationalError("database is locked"))

    monkeypatch.setattr(crud, "list_fits", locked)
    with caplog.at_level(logging.WARNING, logger="abcscale.service"):
        assert client.get("/v1/fits").status_code == 503
    assert [r.getMessage() for r in caplog.records if r.name == "abcscale.service"] == [
        "503 for GET /v1/fits: the database failed (database is locked)"]


# --- 7. plot workers die with their server ---------------------------------------------------------------------------

def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "\nState:\tZ" not in f.read()  # a zombie is dead, only not reaped yet
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_servers_plot_workers_exit():
    code = textwrap.dedent("""
        import multiprocessing, os, sys, time
        from concurrent.futures import ProcessPoolExecutor
        from abcscale.service.plots import worker_init
        if __name__ == "__main__":
            pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=worker_init)
            print(pool.submit(os.getpid).result(), flush=True)
            time.sleep(120)
    """)
    server = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(server.stdout.readline())
        assert _alive(worker)
        os.kill(server.pid, signal.SIGKILL)  # as kill -9: no shutdown of the pool runs
        server.wait(timeout=10)
        deadline = time.monotonic() + 15
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(worker), "the plot worker outlived its server"
    finally:
        server.kill()
        server.wait()
        server.stdout.close()


# --- 8. the default URL of an odd data folder -------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["q?x", "p%41x", "h#x", "sp ace"])
def test_the_default_database_is_in_the_data_folder_whatever_its_name(tmp_path, name):
    settings = Settings(data_dir=tmp_path / name, database_url=None)
    assert make_url(settings.resolved_database_url).database == str(tmp_path / name / "abcscale.db")
    create_app(settings)
    assert (tmp_path / name / "abcscale.db").is_file()


def test_a_data_folder_under_home_is_expanded_once(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = Settings(data_dir="~/abc", database_url=None, plot_dir="~/plots")
    assert settings.data_dir == tmp_path / "abc" and settings.resolved_plot_dir == tmp_path / "plots"
    make_engine(settings).dispose()
    assert (tmp_path / "abc" / "abcscale.db").is_file()
    make_engine(Settings(database_url="sqlite:///~/given.db")).dispose()  # --db too: SQLite opened "./~/given.db"
    assert (tmp_path / "given.db").is_file()


# --- 9-12. serve's startup refusals, each naming the setting at fault ------------------------------------------------

@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"])
def test_serve_refuses_an_in_memory_database(url):
    out = _serve("--db", url)
    assert out.exit_code == 2 and "error: --db:" in _said(out) and "in-memory database" in _said(out)


def test_serve_names_the_environment_for_an_in_memory_database():
    out = _serve(env={"ABCSCALE_DATABASE_URL": "sqlite://"})
    assert out.exit_code == 2 and "error: ABCSCALE_DATABASE_URL: sqlite:// is an in-memory" in _said(out)


def test_serve_refuses_another_applications_sqlite_file_unchanged(tmp_path):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER, name TEXT)")
    conn.close()
    out = _serve("--db", f"sqlite:///{path}")
    assert out.exit_code == 2 and "error: --db: the SQLite file" in _said(out)
    assert "another application's database (tables users)" in _said(out)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["users"]
    conn.close()


@pytest.mark.parametrize("url", ["mysql://u:hunter2pw@db.example/x", "sqlite+pysqlcipher://:hunter2pw@/x.db"])
def test_serve_says_a_missing_driver_in_one_line(url):
    out = _serve("--db", url)
    assert out.exit_code == 2 and "error: --db: no driver for" in _said(out)
    assert "hunter2pw" not in out.output and "Traceback" not in out.output


@pytest.mark.parametrize("plots_elsewhere", [False, True])  # refused by the plot cache's check, or the database's
def test_a_data_folder_that_is_a_file_is_named(tmp_path, plots_elsewhere):
    (tmp_path / "afile").write_text("x")
    out = _serve(env={"ABCSCALE_DATA_DIR": str(tmp_path / "afile"), "ABCSCALE_DATABASE_URL": None,
                      "ABCSCALE_PLOT_DIR": str(tmp_path / "plots") if plots_elsewhere else None})
    assert out.exit_code == 2 and "--db" not in out.output
    assert f"error: ABCSCALE_DATA_DIR: {tmp_path / 'afile'} is a file, not a folder" in _said(out)


def test_an_address_of_no_interface_is_blamed_on_host(tmp_path):
    out = _serve("--db", f"sqlite:///{tmp_path / 'h.db'}", "--host", "192.0.2.1")  # TEST-NET-1: nobody's
    assert out.exit_code == 2 and "error: --host: cannot listen on 192.0.2.1" in _said(out)


def test_a_read_only_folder_says_sqlite_needs_it_writable():
    from abcscale.cli.serve import _sqlite_hint

    said = _sqlite_hint("sqlite:////srv/data/abcscale.db", "(sqlite3.OperationalError) attempt to write a readonly "
                        "database")
    assert "WAL needs the folder /srv/data writable" in said
    assert _sqlite_hint("postgresql://h/db", "readonly") == "" and _sqlite_hint("sqlite:////a/b.db", "locked") == ""


# --- 13. where plots live ----------------------------------------------------------------------------------------

def test_the_db_docstring_says_plots_are_not_in_the_database():
    assert "PNG blobs in ``fit_plots``" not in db.__doc__ and "Plots are never stored here" in db.__doc__


def test_a_fit_restored_from_a_backup_gets_its_plots_again(client, stored_fit, settings):
    import sqlite3

    fit_id, url = stored_fit["id"], stored_fit["plots"]["loss_vs_lr"]
    assert client.get(url).status_code == 200
    db = sqlite3.connect(settings.data_dir / "abcscale.db")
    kept = {t: db.execute(f"SELECT * FROM {t} WHERE {'id' if t == 'fits' else 'fit_id'} = ?", (fit_id,)).fetchall()
            for t in ("fits", "fit_inputs")}
    assert client.delete(f"/v1/fits/{fit_id}").status_code == 204
    assert client.get(url).status_code == 404
    for table, rows in kept.items():  # the backup's rows back in place
        for row in rows:
            db.execute(f"INSERT INTO {table} VALUES ({', '.join('?' * len(row))})", row)
    db.commit()
    db.close()
    assert client.get(f"/v1/fits/{fit_id}").status_code == 200
    got = client.get(url)  # it was a 404 for good: the delete's marker outlived the fit's return
    assert got.status_code == 200 and got.content.startswith(b"\x89PNG"), got.text
