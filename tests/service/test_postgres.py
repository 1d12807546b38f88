"""The storage tests of test_fits.py and test_idempotency.py again, on a real PostgreSQL server (make test starts
one; see tests/service/pg.py). The ``settings`` fixture below replaces conftest's for this module, so the tests
imported here (and conftest's ``client`` and ``stored_fit``, built on ``settings``) run against a fresh
PostgreSQL database each."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from abcscale.fitting import fit_table
from abcscale.service import crud
from abcscale.service.config import Settings
from tests.service.conftest import N_BOOT, PLOT_WAIT_S
from tests.service.pg import ENV, REQUIRE, fresh_database, server_url
from tests.service.test_fits import (  # noqa: F401 - collected again here, on PostgreSQL
    test_crud_round_trip_for_scripts,
    test_json_rows_fit_equals_fit_table,
    test_list_read_delete,
    test_plots_are_pngs_and_kept,
    test_stored_rows_keep_their_types,
)
from tests.service.test_idempotency import (  # noqa: F401 - collected again here, on PostgreSQL
    _post,
    race_two_retries,
    test_a_failed_request_does_not_use_up_its_key,
    test_deleting_the_fit_frees_its_key,
    test_key_stored_in_the_fits_transaction,
    test_retry_answers_the_first_fit_and_stores_nothing,
)
from tests.with_postgres import _binaries

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(tmp_path):
    with fresh_database() as url:
        yield Settings(data_dir=tmp_path, database_url=url, api_token=None, plot_wait_s=PLOT_WAIT_S)


def test_the_server_is_there_when_required():
    """make test sets ABCSCALE_REQUIRE_POSTGRES=1: a CI without the server fails here (and in every test above)
    instead of passing with them skipped."""
    if os.environ.get(REQUIRE) != "1" and not os.environ.get(ENV):
        pytest.skip(f"{REQUIRE} unset and no server")
    engine = create_engine(server_url())
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW server_version_num").scalar_one() >= "130000"  # DROP ... FORCE
    finally:
        engine.dispose()


def test_make_tests_server_is_stopped_and_removed_even_when_the_tests_fail(tmp_path):
    """tests/with_postgres.py as make test runs it, around a command that fails: the command saw a working server,
    its exit code comes through, and afterwards the server is down and its folder gone."""
    if _binaries() is None:
        server_url()  # skips, or fails when required
        pytest.skip("no PostgreSQL binaries")
    probe = ("import os, sys, sqlalchemy as sa; u = os.environ['ABCSCALE_TEST_POSTGRES_URL']; "
             "sa.create_engine(u).connect().close(); print(u); sys.exit(3)")
    env = {k: v for k, v in os.environ.items() if k != ENV}
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "with_postgres.py"), "--", sys.executable, "-c",
                          probe], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 3, out.stderr
    url = make_url(out.stdout.strip())
    engine = create_engine(url, connect_args={"connect_timeout": 2})
    try:
        with pytest.raises(OperationalError):
            engine.connect()
    finally:
        engine.dispose()
    folder = Path(re.search(r" in (\S+)", out.stderr).group(1))
    assert folder.name.startswith("abcscale-pg-") and not folder.exists()


def test_the_settings_here_are_postgres(settings):
    assert settings.resolved_database_url.startswith("postgresql+psycopg://")


def test_fit_and_rows_are_one_transaction(settings, sweep, monkeypatch):
    """A failure while storing the rows leaves no fit behind (PostgreSQL's wording of the NOT NULL failure)."""
    fit = fit_table(sweep, n_boot=N_BOOT)
    real = crud.FitInput
    monkeypatch.setattr(crud, "FitInput", lambda **kw: real(**{**kw, "data": None}))
    with crud.open_session(settings) as session:
        with pytest.raises(Exception, match="not-null constraint"):
            crud.create_fit(session, fit=fit, rows=sweep)
        assert crud.list_fits(session)[1] == 0


def test_racing_retries_store_one_fit(client, settings, sweep_rows, monkeypatch):
    """Both requests pass the look-up before either stores: on PostgreSQL the second insert of the key waits for
    the first transaction, then fails on the primary key, and that request answers the first fit."""
    race_two_retries(client, settings, sweep_rows, monkeypatch)
