"""Session 61: a CLI bad-input review of configs and constants. A boolean read as the number 1 in a constants file
(`epsilon: true` was an epsilon of 1 at every layer), `check -` with standard input closed was a traceback,
`--map width=width,width=base_width` kept the later path in silence, a fit's base-width clash named
`constants_file` where the user typed `--constants`, a rules pattern holding a newline made the `--format torch`
snippet no Python, `serve --db` with the password `p` masked every letter p of the driver's message, and a
config's beta that replaced the constants file's tuned one was not said."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest
import yaml
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app
from abcscale.schemas.theory import Alignment, BaseConfig, Constants, PerLayer
from tests.helpers import tune_file

runner = CliRunner()


def _words(text: str) -> str:
    return " ".join(text.split())


def _recommend(*extra: str):
    return runner.invoke(app, ["recommend", "-p", "mup", "-o", "adamw", "--base-width", "32", "--base-lr", "0.01",
                               "-n", "32", *extra])


# --- 1: true/false is no number, at every door ------------------------------------------------------------------


@pytest.mark.parametrize(("text", "said"), [
    ("epsilon: true\nweight_decay: true\n", ["epsilon: a number, not true/false",
                                             "weight_decay: a number, not true/false"]),
    ("gamma: {embedding: true}\n", ["gamma.embedding: a number, not true/false"]),
    ("init_scale: {hidden: false}\n", ["init_scale.hidden: a number, not true/false"]),
    ("constants: {multiplier: {readout: true}}\n", ["multiplier.readout: a number, not true/false"]),
])
def test_a_constants_file_with_true_for_a_number_is_refused_naming_the_key(tmp_path, text, said):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    res = _recommend("--constants", str(path))
    assert res.exit_code == 2, res.output  # it was exit 0, with epsilon 1 and weight decay 1 everywhere
    assert res.output.startswith(f"error: --constants: {path}: ") and res.output.count("\n") == 1, res.output
    assert all(s in res.output for s in said), res.output
    res = _recommend("--constants", str(path), "--json")
    assert res.exit_code == 2
    out = json.loads(res.stdout)
    assert out["ok"] is False and out["exit_code"] == 2 and all(s in out["errors"][0] for s in said)


@pytest.mark.parametrize(("block", "key"), [
    ({"constants": {"epsilon": True}}, "constants.epsilon"),
    ({"constants": {"gamma": {"hidden": True}}}, "constants.gamma.hidden"),
    ({"base_epsilon": True}, "base_epsilon"),  # a flat key is named as the config wrote it, not constants.epsilon
    ({"gamma": {"readout": False}}, "gamma.readout"),
])
def test_a_check_config_with_true_for_a_constant_is_refused(tmp_path, block, key):
    cfg = {"parameterization": "mup", "optimizer": "adam", "width": 64, "base_width": 32, "beta": 0.01,
           "lr": 0.01, **block}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = runner.invoke(app, ["check", str(path), "--json"])
    assert res.exit_code == 2, res.output  # it was a PASS with epsilon 1
    assert json.loads(res.stdout)["errors"] == [f"{key}: a number, not true/false"]


def test_the_schema_refuses_true_for_every_number_python_too():
    for build in (lambda: Constants(epsilon=True), lambda: Constants(weight_decay=True),
                  lambda: Constants.model_validate({"gamma": {"embedding": True}}),
                  lambda: PerLayer(hidden=True), lambda: BaseConfig(width=True, beta=0.01),
                  lambda: BaseConfig(width=32, beta=True), lambda: Alignment(alpha=True, omega=0.5, u=1.0)):
        with pytest.raises(ValueError, match="a number, not true/false"):
            build()
    import numpy as np

    with pytest.raises(ValueError, match="a number, not true/false"):
        PerLayer(readout=np.True_)  # numpy's bool is no bool, and was 1.0 too
    assert PerLayer(hidden=np.float64(2.0)).hidden == 2.0 and Constants(epsilon="1e-6").epsilon == 1e-6
    with pytest.raises(ValueError, match=r"constants \(epsilon\): a number, not true/false"):
        abcscale.recommend("mup", "adam", width=64, base_width=32, beta=0.01, constants={"epsilon": True})


def test_rest_refuses_true_for_a_constant_naming_it(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from abcscale.service.app import create_app
    from abcscale.service.config import Settings

    with TestClient(create_app(Settings(data_dir=tmp_path, database_url=None, api_token=None))) as client:
        for base, key in (({"epsilon": True}, "epsilon"), ({"gamma": {"embedding": True}}, "gamma.embedding")):
            res = client.post("/v1/recommend", json={"parameterization": "mup", "optimizer": "adam", "width": 4096,
                                                     "base": {"width": 256, "beta": 3e-3, **base}})
            assert res.status_code == 422, res.text
            (err,) = res.json()["detail"]
            # at the field itself (session 62), not at `base` with the field in the message
            assert err["loc"] == ["body", "analytic", "base", *key.split(".")], err
            assert err["msg"] == "Input should be a number, not true/false"


# --- 4b: check - with standard input closed ----------------------------------------------------------------------


@pytest.mark.parametrize("as_json", [False, True])
def test_check_from_a_closed_standard_input_is_bad_input(as_json):
    res = subprocess.run(f"{sys.executable} -m abcscale check - {'--json' if as_json else ''} <&-", shell=True,
                         executable="/bin/bash", capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    said = "-: standard input is closed: pipe the config into it"
    assert res.stderr.startswith(f"error: {said}") and res.stderr.count("\n") == 1, res.stderr
    if as_json:
        out = json.loads(res.stdout)
        assert out["ok"] is False and out["exit_code"] == 2 and out["errors"][0].startswith(said)


def test_check_from_standard_input_that_is_not_utf8_says_so():
    res = runner.invoke(app, ["check", "-"], input=b"\xff\xfe width: 1\n")
    assert res.exit_code == 2
    assert _words(res.output) == ("error: -: standard input is not UTF-8 (byte 0xff at offset 0): save the config "
                                  "as UTF-8")
    good = {"parameterization": "mup", "optimizer": "adam", "width": 64, "base_width": 32, "beta": 0.01, "lr": 0.005}
    res = runner.invoke(app, ["check", "-", "--json"], input="\ufeff" + json.dumps(good))
    assert res.exit_code == 0 and json.loads(res.stdout)["ok"], res.output


# --- 10: a key given twice in --map ------------------------------------------------------------------------------


def test_a_map_key_given_twice_is_refused_naming_it():
    res = runner.invoke(app, ["check", "examples/check-config.yaml", "--map", "width=width,width=base_width"])
    assert res.exit_code == 2, res.output  # the later path won: a width of 256, and a FAIL
    assert _words(res.output) == ("error: --map: width: given twice (mapped to 'width' and to 'base_width'); map "
                                  "each key once")
    res = runner.invoke(app, ["check", "examples/check-config.yaml", "--json", "--map", "width=width,width=width"])
    assert res.exit_code == 2 and json.loads(res.stdout)["errors"][0].startswith("--map: width: given twice")


def test_a_map_file_giving_a_key_twice_is_refused(tmp_path):
    both = tmp_path / "both.toml"
    both.write_text('[map]\nwidth = "model.d_model"\n[values]\nwidth = 64\n')
    res = runner.invoke(app, ["check", "examples/train-config.yaml", "--map-file", str(both)])
    assert res.exit_code == 2
    assert _words(res.output) == (f"error: --map-file: {both}: values.width: also in the map (map.width); give it "
                                  "in one of them")
    nested = tmp_path / "nested.yaml"
    nested.write_text('map: {"lr.hidden": optim.param_groups.1.lr, lr: {hidden: optim.param_groups.0.lr}}\n')
    res = runner.invoke(app, ["check", "examples/train-config.yaml", "--map-file", str(nested)])
    assert res.exit_code == 2 and "map.lr.hidden: given twice" in _words(res.output), res.output
    # the shipped map still reads
    assert runner.invoke(app, ["check", "examples/train-config.yaml", "--map-file",
                               "examples/train-config.map.toml"]).exit_code == 0


# --- 11 and 15: a constants file beside a fit, and a beta that replaces its tuned one ----------------------------


@pytest.fixture
def tuned_file(tmp_path):
    return tune_file(tmp_path)[1]


RUN = {"parameterization": "mup", "optimizer": "adam", "width": 1024,
       "lr": {"embedding": 7.1e-4, "hidden": 8.5e-4, "readout": 0.05}}


def test_a_constants_file_tuned_at_another_base_width_than_the_fit_names_the_flag_that_gave_it(tmp_path, tuned_file):
    from abcscale.fitting import fit_table
    from abcscale.fitting.synthetic import synthetic_sweep

    group = {"parameterization": "mup", "optimizer": "adam", "lr_mode": "per_layer", "alignment": "full"}
    fit = fit_table(synthetic_sweep((64, 128, 256, 512), exponent=0.0, lr_base=3e-3, base_width=64, seeds=2,
                                    group=group), n_boot=50)
    fit_path = tmp_path / "fit.json"
    fit_path.write_text(fit.model_dump_json())
    run = tmp_path / "run.yaml"
    run.write_text(yaml.safe_dump(RUN))
    res = runner.invoke(app, ["check", str(run), "--constants", str(tuned_file), "--fit", str(fit_path)])
    assert res.exit_code == 2
    assert _words(res.output).startswith(f"error: --constants: {tuned_file} was tuned at width 16, the fit's base "
                                         "width is 64"), res.output
    keyed = tmp_path / "keyed.yaml"  # the config's own key: named as the config wrote it
    keyed.write_text(yaml.safe_dump({**RUN, "constants_file": "t.json"}))
    res = runner.invoke(app, ["check", str(keyed), "--fit", str(fit_path), "--json"])
    assert res.exit_code == 2
    assert json.loads(res.stdout)["errors"][0].startswith("constants_file: "), res.stdout


def test_a_config_beta_that_replaces_the_files_tuned_one_is_said(tmp_path, tuned_file):
    run = tmp_path / "run.yaml"
    run.write_text(yaml.safe_dump({**RUN, "beta": 0.1}))
    res = runner.invoke(app, ["check", str(run), "--constants", str(tuned_file), "--json"])
    assert res.exit_code in (0, 1), res.output
    notes = [w for w in json.loads(res.stdout)["warnings"] if w.startswith("beta:")]
    assert notes == [f"beta: 0.1 replaces the beta 0.05 tuned in {tuned_file} (--constants), whose gammas were tuned "
                     "jointly with it: every LR is 2x the tuned transfer's (drop beta to use the file's)"]
    run.write_text(yaml.safe_dump({**RUN, "beta": 0.05}))  # the file's own beta, said again: no note
    res = runner.invoke(app, ["check", str(run), "--constants", str(tuned_file), "--json"])
    assert not [w for w in json.loads(res.stdout)["warnings"] if w.startswith("beta:")]


def test_the_beta_note_helper():
    from abcscale.usecases.tune import beta_override_note

    assert beta_override_note(0.05, None, name="--base-lr", path="t.json") is None
    assert beta_override_note(0.05, 0.05 * (1 + 1e-12), name="--base-lr", path="t.json") is None
    assert beta_override_note(0.05, 0.025, name="--base-lr", path="t.json") == (
        "--base-lr: 0.025 replaces the beta 0.05 tuned in t.json, whose gammas were tuned jointly with it: every LR "
        "is 0.5x the tuned transfer's (drop --base-lr to use the file's)")


# --- 12: a snippet is Python whatever a rule's pattern holds ----------------------------------------------------


@pytest.mark.parametrize("kind", ["torch", "optax"])
def test_a_snippet_with_a_pattern_holding_a_newline_compiles(tmp_path, kind):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps([{"pattern": "x\ny", "role": "hidden"}, {"pattern": 'a"b\\\\', "role": "vector"},
                                 {"pattern": "nul\x00z\u2028\r", "role": "vector"},
                                 {"pattern": r"(^|\.)bias$", "role": "readout"}]))
    res = runner.invoke(app, ["recommend", "-p", "mup", "-o", "adam", "-n", "4096", "--base-width", "256",
                              "--base-lr", "3e-3", "--format", kind, "--rules", str(rules)])
    assert res.exit_code == 0, res.output
    compile(res.stdout, "s.py", "exec")  # a SyntaxError before: the newline ended the comment
    lines = res.stdout.splitlines()
    assert "#   'x\\ny' -> hidden" in lines
    assert "#   'a\"b\\\\\\\\' -> vector" in lines
    assert "#   'nul\\x00z\\u2028\\r' -> vector" in lines
    assert '#   r"(^|\\.)bias$" -> readout' in lines  # a plain one stays the raw literal it was


def test_comment_text_escapes_only_what_is_not_printable():
    from abcscale.usecases.snippets import comment_text

    assert comment_text("# plain -> text é") == "# plain -> text é"
    assert comment_text("# a\nb\tc\x00") == "# a\\nb\\tc\\x00"


# --- 14: serve masks the database password, not its letters -----------------------------------------------------


def test_serve_masks_the_password_not_every_letter_of_it():
    res = runner.invoke(app, ["serve", "--db", "postgresql://u:p@127.0.0.1:1/db", "--port", "0"])
    assert res.exit_code == 2
    out = _words(res.output)
    # postgresql:// is psycopg 3's since session 67, said with the driver it tried
    assert out.startswith("error: --db: cannot open postgresql+psycopg://u:***@127.0.0.1:1/db"), out
    assert "port 1" in out and "***ort" not in out and "***" not in out.split("/db", 1)[1], out


def test_unsecret_masks_the_password_where_it_stands_as_one():
    from abcscale.cli.serve import _unsecret

    url = "postgresql://u:p@h:5432/db"
    assert _unsecret("to server at h, port 5432 failed: postgresql://u:p@h:5432/db user=u password='p' and "
                     "password=p", url) == ("to server at h, port 5432 failed: postgresql://u:***@h:5432/db user=u "
                                            "password='***' and password=***")
    encoded = "postgresql+psycopg://u:p%40ss@h/db"
    assert _unsecret("postgresql+psycopg://u:p%40ss@h/db: p@ss failed; pass", encoded) == (
        "postgresql+psycopg://u:***@h/db: *** failed; pass")
    assert _unsecret("s3cret-long-pw in a word: xs3cret-long-pwx", "postgresql://u:s3cret-long-pw@h/db") == (
        "*** in a word: x***x")
    assert _unsecret("no password here", "sqlite:///x.db") == "no password here"
