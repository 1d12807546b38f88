"""Adding the next optimizer is one entry in OPTIMIZER_RULES (issue 15, item 5): the entry is all that theory, the
CLI and REST read, and an optimizer without one is an error naming the table.

Why the test puts its toy rule under an existing name: ``schemas.enums.Optimizer`` is the vocabulary every request
schema, CLI flag and the OpenAPI document validate against, and the schemas sit below the theory layer, so they
cannot read the registry to learn new names. A new optimizer is therefore two lines: its member in the enum and its
entry here (plus its derivation in docs/theory.md). What the test shows is that nothing past the name is hard-coded:
swap lion's entry for a toy rule and the exponents the toy implies come out of theory, ``abcscale recommend`` and
``POST /v1/recommend``; drop the entry and each says what to add.
"""

from __future__ import annotations

import json
import warnings

import pytest
from typer.testing import CliRunner

from abcscale import theory
from abcscale.cli import app
from abcscale.schemas.enums import LAYERS, Optimizer
from abcscale.schemas.theory import BaseConfig
from abcscale.theory.rules import OPTIMIZER_RULES, OptimizerRule
from tests.theory.test_solver import PARAMS, PUBLISHED

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from abcscale.service.app import create_app
from abcscale.service.config import Settings

#: A made-up optimizer whose step is n^(1/2) times smaller than Adam's sign-like one: U_l = a_l + c_l + 1/2.
TOY = OptimizerRule(k=1, update_a=1, update_b=0, update_shift=0.5)
WIDTH, BASE, BETA = 640, 160, 0.0037  # a request no other test sends (the service caches analytic answers)
MISSING = "no theory rule for optimizer 'lion'; add one to OPTIMIZER_RULES in theory/rules.py"


def _toy_c(param: str, alignment: str) -> tuple[float, ...]:
    """Hand derivation: every constraint on c goes through U_l (or does not involve c), and the toy's U_l at c is
    Adam's at c + 1/2; so the toy's stable set is Adam's shifted by -1/2 and so is its smallest point."""
    return tuple(c - 0.5 for c in PUBLISHED[("adam", alignment)][PARAMS.index(param)])


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(OPTIMIZER_RULES, Optimizer.lion, TOY)


@pytest.fixture
def without_lion(monkeypatch):
    monkeypatch.delitem(OPTIMIZER_RULES, Optimizer.lion)


@pytest.fixture
def client(tmp_path):
    with TestClient(create_app(Settings(data_dir=tmp_path, database_url=None, api_token=None))) as c:
        yield c


def _body() -> dict:
    return {"parameterization": "mup", "optimizer": "lion", "width": WIDTH, "base": {"width": BASE, "beta": BETA}}


@pytest.mark.parametrize("alignment", ["full", "none"])
@pytest.mark.parametrize("param", PARAMS)
def test_a_toy_rule_sets_the_solvers_exponents(toy, param, alignment):
    sol = theory.solve_exponents(param, "lion", alignment)
    assert tuple(sol.c[l] for l in LAYERS) == _toy_c(param, alignment)


def test_a_toy_rule_flows_through_transfer(toy):
    tr = theory.transfer("mup", "lion", BaseConfig(width=BASE, beta=BETA), WIDTH)
    want = _toy_c("mup", "full")
    assert [s.lr for s in tr.layers] == pytest.approx([BETA * (WIDTH / BASE) ** -c for c in want])
    assert all(s.epsilon is None for s in tr.layers)  # the toy has no epsilon rule, so no epsilon


def test_a_toy_rule_flows_through_the_cli(toy):
    res = CliRunner().invoke(app, ["recommend", "-p", "mup", "-o", "lion", "--width", str(WIDTH),
                                   "--base-width", str(BASE), "--base-lr", str(BETA), "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)["exponents"]
    assert tuple(got[l.value]["c"] for l in LAYERS) == _toy_c("mup", "full")


def test_a_toy_rule_flows_through_rest(toy, client):
    r = client.post("/v1/recommend", json=_body())
    assert r.status_code == 200, r.text
    got = r.json()["exponents"]
    assert tuple(got[l.value]["c"] for l in LAYERS) == _toy_c("mup", "full")


def test_theory_without_the_entry_says_what_to_add(without_lion):
    with pytest.raises(ValueError, match=MISSING):
        theory.transfer("mup", "lion", BaseConfig(width=BASE, beta=BETA), WIDTH)
    with pytest.raises(ValueError, match=MISSING):
        theory.layer_rules("lion")


def test_cli_without_the_entry_is_one_line_exit_2(without_lion):
    res = CliRunner().invoke(app, ["recommend", "-p", "mup", "-o", "lion", "--width", str(WIDTH + 1),
                                   "--base-width", str(BASE), "--base-lr", str(BETA)])
    assert res.exit_code == 2
    assert MISSING in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_rest_without_the_entry_is_a_4xx_naming_the_table(without_lion, client):
    r = client.post("/v1/recommend", json={**_body(), "width": WIDTH + 2})
    assert 400 <= r.status_code < 500, r.text
    assert MISSING in r.text


def test_a_per_layer_entry_missing_a_layer_says_which(monkeypatch):
    monkeypatch.setitem(OPTIMIZER_RULES, Optimizer.lion, {l: TOY for l in LAYERS[:-1]})
    with pytest.raises(ValueError, match=r"OPTIMIZER_RULES\['lion'\] has no rule for readout"):
        theory.solve_exponents("mup", "lion", "full")
