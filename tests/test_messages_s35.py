"""Session 35's findings on the CLI: ``abcscale fit`` takes a sweep's folder (what ``abcscale sweep --out DIR``
printed) as its table; a fit's group selection that matches nothing is said in the flags that made it."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from abcscale.cli import app
from abcscale.fitting import fit_table
from abcscale.fitting.reading import TableError, read_table
from abcscale.fitting.synthetic import synthetic_sweep

runner = CliRunner()


def _error(res) -> str:
    assert res.exit_code == 2 and res.stderr.startswith("error: "), res.output
    return " ".join(res.stderr.removeprefix("error: ").split())


def test_a_sweep_folder_reads_its_results(tmp_path):
    rows = synthetic_sweep((64, 128, 256), seeds=1)
    (tmp_path / "sweep").mkdir()
    rows.to_parquet(tmp_path / "sweep" / "results.parquet")
    pd.testing.assert_frame_equal(read_table(tmp_path / "sweep"), read_table(tmp_path / "sweep" / "results.parquet"))
    res = runner.invoke(app, ["fit", str(tmp_path / "sweep"), "--out", str(tmp_path / "fit")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "fit" / "fit.json").is_file()
    with pytest.raises(TableError, match="is a folder; give a CSV or parquet file, or a sweep's folder"):
        read_table(tmp_path)
    said = _error(runner.invoke(app, ["fit", str(tmp_path)]))
    assert said.startswith(f"table: {tmp_path} is a folder")


@pytest.fixture(scope="module")
def mup_fit(tmp_path_factory):
    rows = synthetic_sweep((64, 128, 256), seeds=1, group={"parameterization": "mup", "optimizer": "adam",
                                                            "lr_mode": "global"})
    path = tmp_path_factory.mktemp("fit") / "fit.json"
    path.write_text(fit_table(rows, n_boot=20).model_dump_json())
    return path


@pytest.mark.parametrize("flags, said", [
    (["-p", "ntk"], "no group matches -p ntk:"),
    (["-p", "ntk", "-o", "sgd"], "no group matches -p ntk -o sgd:"),
    (["--group", "parameterization=ntk", "-o", "adam"], "no group matches -o adam --group parameterization=ntk:"),
])
def test_no_match_is_said_in_the_flags_given(mup_fit, flags, said):
    text = _error(runner.invoke(app, ["recommend", "--fit", str(mup_fit), "-n", "1024", *flags]))
    assert text.startswith(said), text
    assert "select one with -p, -o, -a, --lr-mode or --group key=value" in text
    assert "parameterization=mup" in text  # the fit's groups are listed
    assert "{" not in text  # not the selector's Python repr


def test_demo_serve_later_hint_serves_the_demos_database(tmp_path, monkeypatch):
    from abcscale.cli.demo import serve_later, service_settings
    from abcscale.service.config import Settings

    monkeypatch.delenv("ABCSCALE_DATABASE_URL", raising=False)
    settings = service_settings(tmp_path / "demo dir")
    assert serve_later(settings) == f"ABCSCALE_DATA_DIR='{tmp_path / 'demo dir' / 'service'}' abcscale serve"
    # another database in the environment would win over the data folder: the hint names the demo's with --db
    monkeypatch.setenv("ABCSCALE_DATABASE_URL", f"sqlite:///{tmp_path / 'other.db'}")
    settings = service_settings(tmp_path / "d")
    hint = serve_later(settings)
    db = f"sqlite:///{tmp_path / 'd' / 'service' / 'abcscale.db'}"
    assert hint.endswith(f"abcscale serve --db {db}")
    env = dict(x.split("=", 1) for x in hint.split(" abcscale serve")[0].split())
    served = Settings(data_dir=env["ABCSCALE_DATA_DIR"], database_url=hint.split("--db ")[1])
    assert served.resolved_database_url == settings.resolved_database_url


def test_a_negative_scale_is_said_positive_and_vector_is_pointed_to_groups():
    import abcscale

    said = _error(runner.invoke(app, ["recommend", "-p", "mup", "-o", "adam", "--base-width", "128", "--base-lr",
                                      "-3e-3", "-n", "1024"]))
    assert said == "--base-lr: Input should be positive (at least 1e-30)"
    said = _error(runner.invoke(app, ["recommend", "-p", "mup", "-o", "adam", "--base-width", "128", "--base-lr",
                                      "1e-31", "-n", "1024"]))
    assert said == "--base-lr: Input should be greater than or equal to 1e-30"  # positive, under the floor
    rec = abcscale.recommend("mup", "adam", width=1024, base_width=128, beta=3e-3)
    with pytest.raises(ValueError, match=r"vector-like role \(biases, norm gains\) is in .groups\['vector'\]"):
        rec["vector"]
    assert rec.groups["vector"].lr == pytest.approx(3e-3)


@pytest.mark.parametrize("name, where", [("convert", "abcscale theory convert"), ("import", "abcscale mup import")])
def test_a_sub_command_named_at_the_top_says_where_it_lives(name, where):
    said = _error(runner.invoke(app, [name]))
    assert said == f"No such command '{name}'; it is '{where}'"
    assert _error(runner.invoke(app, ["nosuch"])) == "No such command 'nosuch' (see 'abcscale --help')"


def test_fit_summary_shows_the_prediction_it_was_asked_for(tmp_path):
    from tests.fitting.test_review_s35 import _sweep

    path = tmp_path / "t.csv"
    _sweep().to_csv(path, index=False)
    res = runner.invoke(app, ["fit", str(path), "--n-boot", "20", "--target-width", "4096", "--summary"])
    assert res.exit_code == 0, res.output
    fit = fit_table(_sweep(), n_boot=20, target_width=4096)
    assert f"at width 4096: LR* {fit.groups[0].prediction.lr:.4g}, 95% [" in res.stdout
    res = runner.invoke(app, ["fit", str(path), "--n-boot", "20", "--summary"])
    assert res.exit_code == 0 and "LR*" not in res.stdout.split("\n", 1)[1]


def test_check_says_what_beta_means_beside_a_per_group_mup_table(tmp_path):
    """`recommend --form mup` writes abc's base LR as per-group MuAdam lrs; `check` with that table and the same
    beta read beta as microsoft/mup's one lr for every group and failed, without a word on why."""
    table = ("mup: {base_width: 128, lr: {embedding: 0.03394, hidden: 0.003, readout: 0.0002652, vector: 0.003}, "
             "init_std: {embedding: 1.0, hidden: 0.08839, readout: 0.0078125}}\n")
    with_beta = tmp_path / "a.yaml"
    with_beta.write_text("optimizer: adam\nwidth: 1024\nbeta: 0.003\n" + table)
    res = runner.invoke(app, ["check", str(with_beta)])
    text = " ".join(res.output.split())
    assert res.exit_code == 1 and "beta with a mup table is the one lr MuAdam gives every group" in text
    without = tmp_path / "b.yaml"
    without.write_text("optimizer: adam\nwidth: 1024\n" + table)
    res = runner.invoke(app, ["check", str(without)])
    assert res.exit_code == 0 and "PASS" in res.output and "one lr MuAdam" not in " ".join(res.output.split())


def test_check_config_says_a_tables_form_and_its_keys(tmp_path):
    head = "parameterization: mup\noptimizer: adam\nwidth: 1024\nbase_width: 128\nbeta: 0.003\n"
    listed = tmp_path / "a.yaml"
    listed.write_text(head + "lr: [0.03, 3.75e-4, 3e-5]\n")
    said = _error(runner.invoke(app, ["check", str(listed)]))
    assert said.endswith("lr: a number, or a table by role ({embedding: 0.03, hidden: 3.75e-4, ...}), not a list")
    unknown = tmp_path / "b.yaml"
    unknown.write_text(head + "lr: {lm_head: 0.1, hidden: 3.75e-4}\n")
    said = _error(runner.invoke(app, ["check", str(unknown)]))
    assert said.endswith("lr.lm_head: unknown key; keys are: embedding, fixed, hidden, readout, vector")
