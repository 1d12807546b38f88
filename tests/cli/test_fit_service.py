"""`abcscale fit TABLE --service URL` against a real `abcscale serve` on a free port: the stored fit's id and
summary, a rerun stores nothing twice (Idempotency-Key), the write token, the service's 4xx message as exit 2,
an unreachable service as one line. Messages speak the caller's words: flags on the CLI, fields over REST."""

from __future__ import annotations

import json
from types import SimpleNamespace

import httpx
import pytest
from typer.testing import CliRunner

from abcscale.cli import app
from abcscale.fitting.synthetic import synthetic_sweep
from tests.helpers import free_port
from tests.usecases.test_check_service import READ, TOKENS, WRITE, shared_service

runner = CliRunner()
TOKEN = WRITE  # the service's write token
READS = {"Authorization": f"Bearer {READ}"}  # this file's own reads of what the CLI stored (its count, a fit)
MUP = {"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"}


@pytest.fixture(scope="module")
def server(request) -> SimpleNamespace:
    """A service whose writes take TOKEN (and reads READ): the one tests/cli/test_check_token_s67.py and
    tests/usecases/test_check_service.py use too, one server start for the three. The counts below are of fits
    stored between two reads in one test, whatever else the service holds."""
    return SimpleNamespace(url=shared_service(request, TOKENS))


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("t") / "sweep.csv"
    synthetic_sweep(widths=(64, 128, 256), seeds=1, step=0.5, half_range=2.0, group=MUP).to_csv(path, index=False)
    return path


def _count(server) -> int:
    return httpx.get(server.url + "/v1/fits", headers=READS).json()["count"]


def test_fit_on_the_service_stores_it_once_and_prints_its_id(server, table):
    args = ["fit", str(table), "--n-boot", "50", "--service", server.url, "--token", TOKEN]
    before = _count(server)
    res = runner.invoke(app, args, env={"ABCSCALE_API_TOKEN": None})
    assert res.exit_code == 0, res.output
    fit_id = res.stdout.split("with id ")[1].split()[0]
    stored = httpx.get(f"{server.url}/v1/fits/{fit_id}", headers=READS).json()
    assert stored["n_rows"] > 0 and stored["result"]["provenance"]["settings"]["n_boot"] == 50
    assert "e (95% CI)" in res.stdout  # the summary, printed from the service's result
    # the same table and options again: the same fit, nothing stored twice (the token from the environment)
    again = runner.invoke(app, [*args[:-2], "--json"], env={"ABCSCALE_API_TOKEN": TOKEN})
    assert again.exit_code == 0, again.output
    body = json.loads(again.stdout)
    assert body["id"] == fit_id and body["replayed"] is True and _count(server) == before + 1
    # the CI gate's format names the stored fit too, for a later `check --fit-id` (session 52, a review)
    gate = runner.invoke(app, [*args, "--summary", "--json"], env={"ABCSCALE_API_TOKEN": None})
    assert gate.exit_code == 0, gate.output
    body = json.loads(gate.stdout)
    assert body["id"] == fit_id and body["replayed"] is True and "gates" in body and _count(server) == before + 1
    # other options are another fit
    other = runner.invoke(app, [*args, "--seed", "1"])
    assert other.exit_code == 0 and fit_id not in other.stdout and _count(server) == before + 2


def test_service_errors_are_exit_2_with_its_message(server, table):
    args = ["fit", str(table), "--n-boot", "50", "--service", server.url]
    no_token = runner.invoke(app, args, env={"ABCSCALE_API_TOKEN": None})
    assert no_token.exit_code == 2 and "answered 401" in no_token.stderr
    assert len(no_token.stderr.strip().splitlines()) == 1
    # the service words a table problem for REST (the request field); the CLI says it as its flag, as a local fit
    # does (until session 32 it printed the request field)
    bad = runner.invoke(app, [*args, "--token", TOKEN, "--seed-col", "run"])
    assert bad.exit_code == 2, bad.output
    assert "answered 422" in bad.stderr and "run: missing column (the --seed-col column)" in bad.stderr
    assert "seed_col" not in bad.stderr and "body" not in bad.stderr
    local = runner.invoke(app, ["fit", str(table), "--n-boot", "50", "--seed-col", "run"])
    assert local.exit_code == 2 and "run: missing column (the --seed-col column)" in local.stderr


def test_rest_message_names_the_request_field(server, table):
    import pandas as pd

    rows = json.loads(pd.read_csv(table).to_json(orient="records"))
    r = httpx.post(server.url + "/v1/fits", json={"rows": rows, "n_boot": 50, "group_cols": ["team"]},
                   headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 422
    msgs = [e["msg"] for e in r.json()["detail"]]
    assert "team: missing column (named in group_cols)" in msgs and not any("--" in m for m in msgs)


def test_unreachable_service_is_one_line(table):
    url = f"http://127.0.0.1:{free_port()}"
    res = runner.invoke(app, ["fit", str(table), "--n-boot", "50", "--service", url])
    assert res.exit_code == 3 and "--service: cannot reach" in res.stderr and "Traceback" not in res.output
    assert len(res.stderr.strip().splitlines()) == 1


def test_blowup_is_sent(server, table):
    res = runner.invoke(app, ["fit", str(table), "--n-boot", "50", "--service", server.url, "--token", TOKEN,
                              "--blowup", "2", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["result"]["provenance"]["settings"]["blowup_factor"] == 2.0


def test_respeak_turns_request_fields_into_flags_and_leaves_columns_alone():
    from abcscale.cli.fit import FLAGS
    from abcscale.usecases.fits import respeak

    msg = ("body.rows: run: missing column (the seed_col column); rows at the same width differ in batch: "
           "Name them as group columns (group_cols); base_width: not a number in row(s) 3; --size-col stays")
    assert respeak(msg, FLAGS) == ("body.rows: run: missing column (the --seed-col column); rows at the same width "
                                   "differ in batch: Name them as group columns (--group-cols); base_width: not a "
                                   "number in row(s) 3; --size-col stays")


def test_a_typed_parquet_fits_alike_here_and_on_the_service(server, tmp_path):
    """A wandb-style parquet (nullable integer seeds, a timestamp, a category, a diverged run logged as inf): the
    service fits the JSON rows the CLI sends, and says the same input_hash as a local fit of the file (it used to
    hash the reader's types, so the two disagreed; an inf loss was a JSON error, exit 2)."""
    import math

    import pandas as pd

    df = synthetic_sweep(widths=(64, 128, 256), seeds=2, step=0.5, half_range=2.0, group=MUP)
    df["seed"] = pd.array(df["seed"], dtype="Int64")
    df["restarts"] = pd.array([0] * len(df), dtype="Int64")
    df.loc[5, "restarts"] = pd.NA
    df["created"] = pd.Timestamp("2026-11-30 12:00")
    df["team"] = pd.Categorical(["a"] * len(df))
    top = df["beta"].idxmax()
    df.loc[top, "final_loss"] = math.inf
    path = tmp_path / "runs.parquet"
    df.to_parquet(path)
    args = ["fit", str(path), "--n-boot", "50", "--json"]
    local = runner.invoke(app, args)
    remote = runner.invoke(app, [*args, "--service", server.url, "--token", TOKEN])
    assert local.exit_code == 0 and remote.exit_code == 0, local.output + remote.output
    here, there = json.loads(local.stdout), json.loads(remote.stdout)["result"]
    assert here["provenance"]["input_hash"] == there["provenance"]["input_hash"]
    assert here["groups"] == there["groups"]
    # the hash is the rows' content: another value in any cell is another hash
    df.loc[0, "created"] = pd.Timestamp("2026-12-01")
    df.to_parquet(path)
    changed = runner.invoke(app, args)
    assert json.loads(changed.stdout)["provenance"]["input_hash"] != here["provenance"]["input_hash"]


def test_expect_theory_on_a_table_without_the_setup_stores_nothing_on_the_service(server, tmp_path):
    # the gate's columns were checked after the fit was posted: every failed CI run left a stray fit there
    bare = tmp_path / "bare.csv"
    synthetic_sweep(widths=(64, 128, 256), seeds=1, step=0.5, half_range=2.0).to_csv(bare, index=False)
    before = _count(server)
    res = runner.invoke(app, ["fit", str(bare), "--n-boot", "50", "--service", server.url, "--token", TOKEN,
                              "--expect-theory"])
    assert res.exit_code == 2 and "--expect-theory: no group holds parameterization" in res.output
    assert _count(server) == before
