"""Proposed with cli_recommend.diff (tests/cli/): the dead end says the way that works, and the mup form's
mup.init column says x r^-1/2 on hidden."""

import json

from typer.testing import CliRunner

from abcscale.cli import app

runner = CliRunner()


def test_epsilon_mode_beside_an_import_says_to_import_again(tmp_path):
    res = runner.invoke(app, ["mup", "import", "-o", "adamw", "--base-width", "256", "--lr", "3e-3", "--json"])
    path = tmp_path / "import.json"
    path.write_text(res.stdout)
    res = runner.invoke(app, ["recommend", "--constants", str(path), "-n", "2048", "--epsilon-mode", "per_layer"])
    assert res.exit_code == 2 and "mup import ... --epsilon-mode per_layer" in res.output
    assert json.loads(path.read_text())["constants"]["epsilon_mode"] == "constant"


def test_the_mup_form_table_says_the_hidden_std_per_fan_in(tmp_path):
    res = runner.invoke(app, ["recommend", "-p", "mup", "-o", "adam", "-n", "1024", "--base-width", "256",
                              "--base-lr", "3e-3", "--form", "mup"], env={"COLUMNS": "250"})
    row = next(line for line in res.output.splitlines() if line.strip("│ ").startswith("hidden"))
    assert row.count("x r^-1/2") == 2  # the init std column and mup.init's


def test_python_and_rest_take_the_import_epsilon_mode_as_the_cli_does():
    import abcscale

    per = abcscale.from_mup("adamw", base_width=256, lr=3e-3, epsilon=1e-8, epsilon_mode="per_layer")
    assert per.constants.epsilon_mode.value == "per_layer"
    cli = runner.invoke(app, ["mup", "import", "-o", "adamw", "--base-width", "256", "--lr", "3e-3", "--epsilon",
                              "1e-8", "--epsilon-mode", "per_layer", "--json"])
    assert json.loads(cli.stdout)["constants"] == per.constants.model_dump(mode="json")
