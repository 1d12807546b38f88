"""Session 67's operations review: the CI gates' token. A token with a trailing newline (a secret file's, a pasted CI
secret's) was put in the Authorization header as it was: httpx refused the header, and `check --service` printed
the token in plain text on stderr and in --json ("Illegal header value b'Bearer rtok-SECRET-456\\n'") and exited 3
(unreachable, which a CI step retries) where the input was bad; a non-ASCII token said "'ascii' codec can't encode"
without naming --token. Surrounding whitespace is now stripped; a control character or non-ASCII inside is exit 2
naming the flag (or the variable the token came from), never echoing the token. Against a real `abcscale serve`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from abcscale.cli import app
from tests.usecases.test_check_service import READ, TOKENS, WRITE, shared_service

runner = CliRunner()
CONFIG = "examples/check-config.yaml"
TABLE = "examples/tour-sweep.parquet"
SECRET = "SECRET"  # in every token of this file (WRITE is "wtok-SECRET-123", READ "rtok-SECRET-456"): no output
# may hold it


@pytest.fixture(scope="module")
def service(request) -> str:
    """A service whose writes take WRITE and reads READ (the one tests/usecases/test_check_service.py's token test
    uses too: one server start for both)."""
    return shared_service(request, TOKENS)


def _check(url: str, *extra: str, env: dict[str, str] | None = None):
    return runner.invoke(app, ["check", CONFIG, "--service", url, *extra],
                         env={"ABCSCALE_READ_TOKEN": None, "ABCSCALE_API_TOKEN": None, **(env or {})})


@pytest.mark.parametrize("token", [READ + "\n", READ + "\r\n", READ + "\r", f"  {READ}\t", WRITE + "\n"])
def test_surrounding_whitespace_is_stripped_and_the_check_runs(service, token):
    res = _check(service, "--token", token)
    assert res.exit_code == 0, res.output
    assert "PASS" in res.stdout


def test_a_token_from_the_environment_with_a_newline_runs_and_never_shows(service):
    res = _check(service, "--json", env={"ABCSCALE_READ_TOKEN": READ + "\n"})
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["ok"] is True
    assert SECRET not in res.output


@pytest.mark.parametrize("token", [READ + "\x01x", "rtok-SECRET\n456", "rtok-SECRET-456\x7f1", READ + "é",
                                   "rtok-SECRET-456\u2028x"])
def test_a_control_character_or_non_ascii_inside_is_bad_input_naming_the_flag(service, token):
    res = _check(service, "--token", token)
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("error: --token: "), res.stderr
    assert SECRET not in res.output and "codec" not in res.output
    res = _check(service, "--token", token, "--json")
    assert res.exit_code == 2, res.output
    doc = json.loads(res.stdout)
    assert doc["exit_code"] == 2 and doc["errors"][0].startswith("--token: ")
    assert SECRET not in res.output


def test_a_bad_token_from_the_environment_names_its_variable(service):
    res = _check(service, env={"ABCSCALE_READ_TOKEN": READ + "\x02x"})
    assert res.exit_code == 2, res.output
    assert "ABCSCALE_READ_TOKEN" in res.stderr and SECRET not in res.output


def test_a_local_check_ignores_the_variable_as_before(service):
    # a CI job exporting the token for its service calls runs local checks too: not read, not an error
    res = runner.invoke(app, ["check", CONFIG], env={"ABCSCALE_READ_TOKEN": READ + "\x01"})
    assert res.exit_code == 0, res.output


def test_fit_service_takes_a_token_with_a_newline_and_refuses_one_with_a_control_character(service):
    res = runner.invoke(app, ["fit", TABLE, "-q", "--n-boot", "20", "--loss-col", "final_loss", "--service", service,
                              "--token", WRITE + "\n", "--json"], env={"ABCSCALE_API_TOKEN": None})
    assert res.exit_code == 0, res.output
    assert SECRET not in res.output
    res = runner.invoke(app, ["fit", TABLE, "-q", "--n-boot", "20", "--service", service, "--token", WRITE + "é"],
                        env={"ABCSCALE_API_TOKEN": None})
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("error: --token: ") and SECRET not in res.output
