"""An epsilon given to an optimizer without one is said to change nothing, the default's value included (the
base's fields used to arrive all set through one path, so an explicit `--epsilon 1e-8` could not be told from
none): the CLI, the Python API and REST alike, and nothing is said where a setup never named one."""

from __future__ import annotations

import json

from typer.testing import CliRunner

import abcscale as A
from abcscale.cli import app

runner = CliRunner()


def _said(res) -> str:
    return " ".join((res.stdout + res.stderr).split())



def test_an_explicit_default_epsilon_to_sgd_is_said_too(tmp_path):
    """`--epsilon 1e-8` (the default's value) to SGD changes nothing as any other value does: said, by the CLI,
    the Python API and REST alike; not given, nothing is said anywhere a setup passes through."""
    from fastapi.testclient import TestClient

    from abcscale.service.app import create_app
    from abcscale.service.config import Settings

    note = "epsilon: sgd has no epsilon; the 1e-08 given changes nothing"
    flags = ["recommend", "-p", "mup", "-o", "sgd", "-n", "1024", "--base-width", "256", "--base-lr", "0.1"]
    res = runner.invoke(app, [*flags, "--epsilon", "1e-8"])
    assert res.exit_code == 0 and note in _said(res), res.output
    plain = runner.invoke(app, flags)
    assert plain.exit_code == 0 and "learning rate" in plain.output, plain.output  # the table, without the note
    assert note not in _said(plain)
    kw = {"width": 1024, "base_width": 256, "beta": 0.1}
    assert note in A.recommend("mup", "sgd", constants=A.Constants(epsilon=1e-8), **kw).warnings
    assert A.recommend("mup", "sgd", constants=A.Constants(gamma={"embedding": 2.0}), **kw).warnings == []
    with TestClient(create_app(Settings(data_dir=tmp_path))) as client:
        body = {"parameterization": "mup", "optimizer": "sgd", "width": 1024, "base": {"width": 256, "beta": 0.1}}
        assert note not in client.post("/v1/recommend", json=body).json()["warnings"]
        body["base"]["epsilon"] = 1e-8
        assert note in client.post("/v1/recommend", json=body).json()["warnings"]
    # a setup that never named an epsilon: a mup import's constants, a check without one
    imported = A.from_mup("sgd", base_width=256, lr=0.1)
    assert note not in A.recommend("mup", "sgd", width=1024, constants=imported.constants).warnings
    cfg = tmp_path / "run.yaml"
    cfg.write_text("optimizer: sgd\nparameterization: mup\nwidth: 1024\nbase_width: 256\nbeta: 0.1\n"
                   "lr: {embedding: 1.6, hidden: 0.1, readout: 1.6}\n")
    checked = runner.invoke(app, ["check", str(cfg), "--json"])
    assert checked.exit_code == 1 and json.loads(checked.stdout)["checks"], checked.output  # judged (its LRs: 16x)
    assert note not in checked.output


def test_a_constants_file_for_sgd_says_nothing_of_its_default_epsilon(tmp_path):
    # a file writes every constant; its epsilon at the default's value was not chosen for SGD
    from abcscale.usecases.tune import save_constants
    from tests.usecases.test_tune import _tuned

    sgd = _tuned().model_copy(update={"optimizer": "sgd", "optimizer_variant": "sgd"})
    path = save_constants(sgd, tmp_path / "sgd.json")
    assert A.recommend(width=1024, constants=path).warnings == []
    chosen = sgd.model_copy(update={"constants": sgd.constants.model_copy(update={"epsilon": 1e-3})})
    said = A.recommend(width=1024, constants=save_constants(chosen, tmp_path / "eps.json")).warnings
    assert "epsilon: sgd has no epsilon; the 0.001 given changes nothing" in said
