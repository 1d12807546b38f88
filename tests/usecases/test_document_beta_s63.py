"""A beta given beside a constants document that carries one (`abcscale mup import --json`'s; session 63): the CLI's
`recommend --base-lr` took it and said so, a check config's `beta` took it in silence (every reference LR 3.33x),
and the Python API refused it. All three now take it and say the same."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app

SAID = "replaces the beta 0.003 in "


@pytest.fixture(scope="module")
def document(tmp_path_factory) -> str:
    r = CliRunner().invoke(app, ["mup", "import", "-o", "adam", "--base-width", "256", "--lr", "3e-3", "--json"])
    assert r.exit_code == 0, r.output
    path = tmp_path_factory.mktemp("doc") / "mup.json"
    path.write_text(r.stdout)
    return str(path)


def _config(tmp_path, beta: float | None) -> str:
    lines = ["parameterization: mup", "optimizer: adam", "width: 1024", "base_width: 256",
             "lr: {embedding: 0.003, hidden: 0.00075, readout: 0.00075}"]
    path = tmp_path / "run.yaml"
    path.write_text("\n".join([*lines, *([f"beta: {beta}"] if beta is not None else [])]) + "\n")
    return str(path)


def test_check_says_a_config_beta_over_the_documents(document, tmp_path):
    r = CliRunner().invoke(app, ["check", _config(tmp_path, 0.01), "--constants", document, "--json"])
    out = json.loads(r.stdout)
    assert any(w.startswith("beta: 0.01 " + SAID) and "3.33x" in w for w in out["warnings"]), out["warnings"]
    hidden = next(c for c in out["checks"] if c["setting"] == "lr" and c["layer"] == "hidden")
    assert hidden["recommended"] == pytest.approx(0.0025)  # the config's beta, taken
    same = CliRunner().invoke(app, ["check", _config(tmp_path, 0.003), "--constants", document, "--json"])
    assert not any(SAID in w for w in json.loads(same.stdout)["warnings"])
    none = CliRunner().invoke(app, ["check", _config(tmp_path, None), "--constants", document, "--json"])
    assert not any(SAID in w for w in json.loads(none.stdout)["warnings"])


def test_python_takes_the_beta_and_says_it_as_the_cli_does(document):
    rec = abcscale.recommend("mup", "adam", width=1024, constants=document, beta=0.01)
    assert any(w.startswith("beta: 0.01 " + SAID) for w in rec.warnings), rec.warnings
    r = CliRunner().invoke(app, ["recommend", "-p", "mup", "-o", "adam", "--width", "1024", "--constants", document,
                                 "--base-lr", "0.01", "--json"])
    cli = json.loads(r.stdout)
    assert [s.lr for s in rec.layers] == [x["lr"] for x in cli["layers"]]
    assert any(w.startswith("--base-lr: 0.01 " + SAID) for w in cli["warnings"])
    # an in-memory BaseConfig with another beta is still two answers to one question: refused
    from abcscale.usecases.recommend import read_constants_document

    doc = read_constants_document(document)
    assert doc is not None
    with pytest.raises(ValueError, match="^beta: 0.01 here, 0.003 in `constants`"):
        abcscale.recommend("mup", "adam", width=1024, constants=doc.constants, beta=0.01)
