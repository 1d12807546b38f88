"""A range error says its bound in short form: pydantic writes a bound of 1e-30 out in full
("0.000000000000000000000000000001"), which the CLI, REST, the web page and `check` printed as it was
(a README review, session 33)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from abcscale.cli import app
from abcscale.schemas.errors import plain_numbers


@pytest.mark.parametrize(("text", "said"), [
    ("Input should be greater than or equal to 0.000000000000000000000000000001",
     "Input should be greater than or equal to 1e-30"),
    ("Input should be less than or equal to 1000000000000000000000000000000", "Input should be less than or equal "
                                                                             "to 1e+30"),
    ("width 1099511627776, lr 0.003, seed 12", "width 1099511627776, lr 0.003, seed 12"),  # short numbers stay
    ("id 0f00000000000000000001ab", "id 0f00000000000000000001ab"),  # not a number
    ("got '1234567890123456789', less than 5", "got '1234567890123456789', less than 5"),  # a user's value stays
])
def test_plain_numbers(text, said):
    assert plain_numbers(text) == said


def test_the_cli_the_service_and_check_say_1e_30(tmp_path):
    from abcscale.service.app import create_app
    from abcscale.service.config import Settings

    cli = CliRunner().invoke(app, ["recommend", "-p", "mup", "-o", "adam", "--width", "4096", "--base-width", "256",
                                   "--base-lr", "0"])
    assert cli.exit_code == 2
    assert cli.stderr.strip() == "error: --base-lr: Input should be positive (at least 1e-30)"  # 0: say what it means
    with TestClient(create_app(Settings(data_dir=tmp_path))) as client:
        r = client.post("/v1/recommend", json={"parameterization": "mup", "optimizer": "adam", "width": 4096,
                                               "base": {"width": 256, "beta": 0}})
        assert r.status_code == 422
        assert r.json()["detail"][0]["msg"] == "Input should be positive (at least 1e-30)"
        assert r.json()["detail"][0]["loc"] == ["body", "analytic", "base", "beta"]
    config = tmp_path / "run.yaml"
    config.write_text("parameterization: mup\noptimizer: adam\nwidth: 4096\nbase_width: 256\nbeta: 1e-3\nlr: 1e-3\n"
                      "init_scale: {hidden: 0}\n")
    check = CliRunner().invoke(app, ["check", str(config)])
    assert check.exit_code == 2 and "Input should be positive (at least 1e-30)" in check.output, check.output


def test_the_calculator_page_says_a_per_layer_bound_in_one_line():
    from abcscale.service.pages import calculator_request

    _, errors = calculator_request({"parameterization": "mup", "optimizer": "adam", "width": "1024",
                                    "base_width": "256", "base_lr": "0.003", "gamma": "0,1,1"})
    assert errors == {"gamma": "'embedding,hidden,readout' or one number (embedding: Input should be positive "
                               "(at least 1e-30))"}
