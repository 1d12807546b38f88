"""The documented Python API (``abcscale/__init__.py``): every name resolves, importing it is cheap, its numbers
are the CLI's and the service's, and the README's example runs as printed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.schemas.api import FitOptions
from tests.readme_code import run_as_printed

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette suggests httpx2 for its TestClient
    from fastapi.testclient import TestClient

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
GROUP = {"parameterization": "mup", "optimizer": "adam", "lr_mode": "global"}


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def sweep():
    return synthetic_sweep(widths=(64, 128, 256, 512), seeds=2, step=0.5, half_range=2.0, group=GROUP)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from abcscale.service.app import create_app
    from abcscale.service.config import Settings

    with TestClient(create_app(Settings(data_dir=tmp_path_factory.mktemp("api")))) as c:
        yield c


def test_every_public_name_resolves():
    missing = [name for name in abcscale.__all__ if getattr(abcscale, name, None) is None]
    assert not missing
    assert set(abcscale.__all__) <= set(dir(abcscale))
    assert re.fullmatch(r"\d+\.\d+.*|0\+unknown", abcscale.__version__)
    with pytest.raises(AttributeError, match="no attribute 'recomend'"):
        abcscale.recomend  # noqa: B018


def test_import_is_cheap():
    out = _run("import sys, abcscale; print(sorted({m.split('.')[0] for m in sys.modules} & "
               "{'jax', 'pandas', 'scipy', 'fastapi', 'numpy'}))")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_users_own_module_names_do_not_shadow_the_api(tmp_path):
    (tmp_path / "schemas.py").write_text("raise RuntimeError('the user module was imported')\n")
    out = subprocess.run([sys.executable, "-c", "import abcscale; print(abcscale.recommend('mup', 'adam', "
                          "width=512, base_width=256, beta=1e-3).source)"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "theory"


def test_readme_example_runs_as_printed(capsys):
    section = README.split("## Python API", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    printed = re.search(r"which prints\s+```text\n(.*?)```", section, re.S).group(1)
    capsys.readouterr()
    run_as_printed(code, "README.md's Python API example")  # in this process, as a fresh interpreter would run it
    assert capsys.readouterr().out == printed


def test_an_example_reading_a_submodule_it_never_imported_is_refused():
    """In this process ``abcscale.optax`` may be set by an earlier import; a user's fresh interpreter has no such
    attribute after a bare ``import abcscale`` (a review of the in-process README runs, session 73)."""
    import abcscale.optax  # noqa: F401  (as tests/test_exports.py does, in whichever worker runs it first)

    with pytest.raises(AssertionError, match="abcscale.optax without importing it"):
        run_as_printed("import abcscale as ab\nab.optax.transform\n", "an example")
    run_as_printed("import abcscale.optax\nabcscale.optax.transform\n", "an example")  # imported: fine


def test_recommend_equals_the_cli_and_the_service(client):
    from abcscale.cli import app

    api = abcscale.recommend("sp", "adam", width=2048, base_width=128, beta=1e-2, alignment="none",
                             lr_mode="global", constants=abcscale.Constants(gamma="1,2,0.5", epsilon_mode="constant"))
    cli = CliRunner().invoke(app, ["recommend", "-p", "sp", "-o", "adam", "-n", "2048", "--base-width", "128",
                                   "--base-lr", "1e-2", "-a", "none", "--lr-mode", "global", "--gamma", "1,2,0.5",
                                   "--epsilon-mode", "constant", "--json"])
    assert cli.exit_code == 0, cli.output
    rest = client.post("/v1/recommend", json={
        "parameterization": "sp", "optimizer": "adam", "width": 2048, "alignment": "none", "lr_mode": "global",
        "base": {"width": 128, "beta": 1e-2, "gamma": {"embedding": 1, "hidden": 2, "readout": 0.5},
                 "epsilon_mode": "constant"}})
    assert rest.status_code == 200, rest.text
    assert api.model_dump(mode="json") == json.loads(cli.stdout) == rest.json()


@pytest.mark.parametrize("mode", ["coupled", "independent"])
def test_recommend_adamw_with_weight_decay_equals_the_cli_and_the_service(client, mode):
    from abcscale.cli import app

    api = abcscale.recommend("mup", "adamw", width=4096, base_width=256, beta=3e-3, weight_decay=0.1,
                             weight_decay_mode=mode)
    cli = CliRunner().invoke(app, ["recommend", "-p", "mup", "-o", "adamw", "-n", "4096", "--base-width", "256",
                                   "--base-lr", "3e-3", "--weight-decay", "0.1", "--weight-decay-mode", mode,
                                   "--json"])
    assert cli.exit_code == 0, cli.output
    rest = client.post("/v1/recommend", json={
        "parameterization": "mup", "optimizer": "adamw", "width": 4096,
        "base": {"width": 256, "beta": 3e-3, "weight_decay": 0.1, "weight_decay_mode": mode}})
    assert rest.status_code == 200, rest.text
    assert api.model_dump(mode="json") == json.loads(cli.stdout) == rest.json()
    assert api.weight_decay_mode == mode and all(s.weight_decay is not None for s in api.layers)
    # a weight decay with an optimizer that has none: one line naming it, exit 2, a 422
    cli = CliRunner().invoke(app, ["recommend", "-p", "mup", "-o", "adam", "-n", "4096", "--base-width", "256",
                                   "--base-lr", "3e-3", "--weight-decay", "0.1"])
    assert cli.exit_code == 2 and "--weight-decay: adam has no weight decay that abcscale transfers" in cli.output
    rest = client.post("/v1/recommend", json={"parameterization": "mup", "optimizer": "adam", "width": 4096,
                                              "base": {"width": 256, "beta": 3e-3, "weight_decay": 0.1}})
    assert rest.status_code == 422 and "weight_decay" in rest.text


def test_convert_and_theory_table_equal_the_service(client):
    api = abcscale.convert("sgd", "sp", "mup", width=1024, base_width=64, lr="1e-2,1e-3,1e-3")
    rest = client.post("/v1/theory/convert", json={"optimizer": "sgd", "from": "sp", "to": "mup", "width": 1024,
                                                   "base_width": 64, "lr": {"embedding": 1e-2, "hidden": 1e-3,
                                                                            "readout": 1e-3}})
    assert rest.status_code == 200, rest.text
    assert api.model_dump(mode="json") == rest.json()
    rows = abcscale.theory_table("mup", ["adam", "sgd"], "full")
    rest = client.get("/v1/theory/exponents", params={"parameterization": "mup", "optimizer": ["adam", "sgd"],
                                                      "alignment": "full"})
    assert [r.model_dump(mode="json") for r in rows] == rest.json() and len(rows) == 6


@pytest.mark.parametrize("form", ["abc", "plain", "mup"])
def test_recommend_groups_equal_the_cli_and_the_service(client, tmp_path, form):
    from abcscale.cli import app

    rules = [{"pattern": r"mlp\.c_proj", "role": "hidden"}]
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules))
    api = abcscale.recommend("mup", "adamw", width=4096, base_width=256, beta=3e-3, weight_decay=0.1, form=form,
                             rules=rules)
    assert api == abcscale.recommend("mup", "adamw", width=4096, base_width=256, beta=3e-3, weight_decay=0.1,
                                     form=form, rules=path)  # a rules file reads the same
    cli = CliRunner().invoke(app, ["recommend", "-p", "mup", "-o", "adamw", "-n", "4096", "--base-width", "256",
                                   "--base-lr", "3e-3", "--weight-decay", "0.1", "--form", form, "--rules", str(path),
                                   "--json"])
    assert cli.exit_code == 0, cli.output
    rest = client.post("/v1/recommend", json={
        "parameterization": "mup", "optimizer": "adamw", "width": 4096, "form": form, "rules": rules,
        "base": {"width": 256, "beta": 3e-3, "weight_decay": 0.1}})
    assert rest.status_code == 200, rest.text
    assert api.model_dump(mode="json") == json.loads(cli.stdout) == rest.json()
    assert isinstance(api.groups, abcscale.GroupSpec) and api.groups.form is abcscale.Form.parse(form)
    assert api.groups.rules[0] == abcscale.GroupRule(pattern=r"mlp\.c_proj", role="hidden")


@pytest.mark.parametrize("mode", ["coupled", "independent"])
def test_convert_with_weight_decay_equals_the_cli_and_the_service(client, mode):
    from abcscale.cli import app

    api = abcscale.convert("adamw", "mup", "sp", width=1024, base_width=256, weight_decay=0.1,
                           weight_decay_mode=mode)
    cli = CliRunner().invoke(app, ["theory", "convert", "-o", "adamw", "--from", "mup", "--to", "sp", "-n", "1024",
                                   "--base-width", "256", "--weight-decay", "0.1", "--weight-decay-mode", mode,
                                   "--json"])
    assert cli.exit_code == 0, cli.output
    rest = client.post("/v1/theory/convert", json={"optimizer": "adamw", "from": "mup", "to": "sp", "width": 1024,
                                                   "base_width": 256, "weight_decay": 0.1,
                                                   "weight_decay_mode": mode})
    assert rest.status_code == 200, rest.text
    assert api.model_dump(mode="json") == json.loads(cli.stdout) == rest.json()
    assert api.weight_decay_mode == mode and all(s.weight_decay for s in api.converted.layers)
    # a weight decay with an optimizer that has none: a 422 naming the field, a ValueError naming the keyword
    rest = client.post("/v1/theory/convert", json={"optimizer": "adam", "from": "mup", "to": "sp", "width": 1024,
                                                   "weight_decay": 0.1})
    assert rest.status_code == 422 and rest.json()["detail"][0]["loc"] == ["body", "weight_decay"]
    with pytest.raises(ValueError, match="^weight_decay: adam has no weight decay that abcscale transfers"):
        abcscale.convert("adam", "mup", "sp", width=1024, weight_decay=0.1)


def test_fit_predict_and_recommend_from_fit_equal_the_service(client, sweep, tmp_path):
    import pandas as pd

    rows = json.loads(sweep.to_json(orient="records"))  # what the service receives (diverged losses as null)
    fit = abcscale.fit(pd.DataFrame.from_records(rows), n_boot=50, target_width=1024)
    posted = client.post("/v1/fits", json={"rows": rows, "n_boot": 50, "target_width": 1024})
    assert posted.status_code == 201, posted.text
    stored = abcscale.FitResult.model_validate(posted.json()["result"])
    assert fit.groups == stored.groups  # only provenance's timestamp may differ
    path = tmp_path / "fit.json"
    path.write_text(fit.model_dump_json())
    rec = abcscale.recommend(fit=path, width=1024, lr_mode="global")
    rest = client.post("/v1/recommend", json={"fit_id": posted.json()["id"], "width": 1024, "lr_mode": "global"})
    assert rest.status_code == 200, rest.text
    assert {**rest.json(), "fit_id": None} == rec.model_dump(mode="json")
    assert rec == abcscale.recommend_from_fit(fit, 1024)
    pred = abcscale.predict(fit, 1024)
    assert pred.lr == rec.band.lr == fit.groups[0].prediction.lr
    # the synthetic truth: LR* = 1e-2 (w/64)^-1, so 6.25e-4 at 1024; the 95% band holds it
    assert pred.ci95[0] < 1e-2 / 16 < pred.ci95[1]


def test_fit_takes_a_path_and_options(sweep, tmp_path):
    from abcscale.usecases import fit_sweep

    path = tmp_path / "sweep.csv"
    sweep.rename(columns={"width": "d_model"}).to_csv(path, index=False)
    got = abcscale.fit(path, n_boot=50, confidence_level=0.5,
                       mapping=abcscale.ColumnMapping(size_col="d_model"))
    want = fit_sweep(sweep, FitOptions(n_boot=50, confidence_level=0.5))
    assert got.groups == want.groups


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"width": 0, "base_width": 256, "beta": 1e-3}, "width"),
    ({"width": 1024, "base_width": 256, "beta": -1.0}, "beta"),
    ({"width": 1024, "base_width": 256}, "beta"),
    ({"width": 1024, "base_width": 256, "beta": 1e-3, "alignment": "sideways"}, "alignment"),
    ({"width": 1024, "base_width": 256, "beta": 1e-3, "form": "mupp"}, "form"),
    ({"width": 1024, "base_width": 256, "beta": 1e-3, "rules": [("(", "hidden")]}, r"rules\[0\] \(pattern\)"),
    ({"width": 1024, "base_width": 256, "beta": 1e-3, "rules": "no-such-rules.yaml"}, "rules: no-such-rules.yaml"),
])
def test_bad_input_is_a_value_error_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        abcscale.recommend("mup", "adam", **kwargs)


def test_sweep_without_jax_names_the_runner_extra(tmp_path):
    # a `jax` that cannot be imported, first on sys.path: what a machine without the runner extra sees
    (tmp_path / "jax").mkdir()
    (tmp_path / "jax" / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'jax'\", name='jax')\n")
    code = ("import abcscale\n"
            "try:\n    abcscale.sweep(abcscale.SweepSpec(), 'out')\n"
            "except ImportError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "runner extra" in out.stdout and "abcscale[runner]" in out.stdout


@pytest.fixture(scope="module")
def fit_file(sweep, tmp_path_factory):
    path = tmp_path_factory.mktemp("fit") / "fit.json"
    path.write_text(abcscale.fit(sweep, n_boot=50).model_dump_json())
    return path


ANALYTIC = {"parameterization": "mup", "optimizer": "adam", "width": 1024}
# (CLI flags, REST body, API keywords, what each names): an input that does not belong to the chosen source
OTHER_SOURCE = {
    "group without a fit": (
        ["--base-width", "64", "--base-lr", "1e-3", "--group", "lr_mode=global"],
        {**ANALYTIC, "base": {"width": 64, "beta": 1e-3}, "group": {"lr_mode": "global"}},
        {"base_width": 64, "beta": 1e-3, "group": "lr_mode=global"},
        ("--group", "group", "group")),
    "base width with a fit": (
        ["--fit", "FIT", "--base-width", "64"],
        {**ANALYTIC, "fit_id": "0" * 32, "base": {"width": 64, "beta": 1e-3}},
        {"fit": "FIT", "base_width": 64},
        ("--base-width", "base", "base_width")),
    "base LR with a fit": (
        ["--fit", "FIT", "--base-lr", "1e-3"],
        {**ANALYTIC, "fit_id": "0" * 32, "base": {"width": 64, "beta": 1e-3}},
        {"fit": "FIT", "beta": 1e-3},
        ("--base-lr", "base", "beta")),
}


@pytest.mark.parametrize("case", OTHER_SOURCE)
def test_an_input_of_the_other_source_is_an_error_in_the_cli_the_service_and_the_api(client, fit_file, case):
    """One rule (usecases.recommend_request and the REST union): CLI exit 2 on one line, REST 422, API ValueError,
    each naming the input as its caller spells it."""
    from abcscale.cli import app

    flags, body, kwargs, (flag, field, keyword) = OTHER_SOURCE[case]
    flags = [str(fit_file) if f == "FIT" else f for f in flags]
    cli = CliRunner().invoke(app, ["recommend", "-p", "mup", "-o", "adam", "-n", "1024", *flags])
    assert cli.exit_code == 2 and len(cli.output.strip().splitlines()) == 1, cli.output
    assert f"{flag}:" in cli.output
    rest = client.post("/v1/recommend", json=body)
    assert rest.status_code == 422, rest.text
    assert f"`{field}`" in rest.json()["detail"][0]["msg"]
    kwargs = {k: fit_file if v == "FIT" else v for k, v in kwargs.items()}
    with pytest.raises(ValueError, match=f"^{keyword}: "):
        abcscale.recommend("mup", "adam", width=1024, **kwargs)


def test_the_same_inputs_without_the_stray_one_are_answered(fit_file):
    assert abcscale.recommend("mup", "adam", width=1024, base_width=64, beta=1e-3).source == "theory"
    assert abcscale.recommend("mup", "adam", width=1024, fit=fit_file, group="lr_mode=global").source == "fit"


@pytest.mark.parametrize(("call", "field"), [
    (lambda: abcscale.recommend("mup", "adam", width=-1, base_width=0, beta=1e-3), "width"),
    (lambda: abcscale.convert("adam", "sp", "mup", width=64, init_std="1,-1,1"), "init_std"),
    (lambda: abcscale.convert("adam", "sp", "mup", width=64, alignment={"alpha": 9, "omega": 1, "u": 1}),
     "alignment"),
    (lambda: abcscale.theory_table(alignment=(1, 0.5, 7)), "alignment"),
])
def test_errors_are_one_line_value_errors_without_pydantic_urls(call, field):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert type(info.value) is ValueError and message.startswith(field)
    assert "\n" not in message and "errors.pydantic.dev" not in message


def test_theory_table_takes_three_numbers_as_one_alignment():
    one = abcscale.theory_table("mup", "adam", (1, 0.5, 1))
    assert one == abcscale.theory_table("mup", "adam", "full") and len(one) == 3
    several = abcscale.theory_table("mup", "adam", [(1, 0.5, 1), [0.5, 0.5, 0.5]])
    assert {r.alignment.name for r in several} == {"full", "none"} and len(several) == 6


def test_dir_lists_the_public_names_not_the_helpers():
    names = set(dir(abcscale))
    assert set(abcscale.__all__) <= names and "__version__" in names
    assert not {n for n in names if not n.startswith("__")} - set(abcscale.__all__)


def test_a_base_config_with_a_fit_must_be_tuned_at_the_fits_base_width(sweep):
    """A BaseConfig's constants hold at its width; with a fit, multipliers are carried from the fit's base width,
    so a BaseConfig tuned elsewhere was applied from the wrong width (its width silently dropped)."""
    fit = abcscale.fit(sweep, n_boot=20, target_width=1024)
    at_64 = abcscale.BaseConfig(width=64, beta=3e-3, multiplier={"hidden": 2.0})
    rec = abcscale.recommend(fit=fit, width=1024, constants=at_64)
    plain = abcscale.recommend(fit=fit, width=1024, constants=abcscale.Constants(multiplier={"hidden": 2.0}))
    assert rec.layers == plain.layers and rec.base_width == 64
    assert any("beta 0.003 is not used" in w for w in rec.warnings)
    with pytest.raises(ValueError, match="^constants: the BaseConfig was tuned at width 256, the fit's base width "
                                         "is 64"):
        abcscale.recommend(fit=fit, width=1024, constants=at_64.model_copy(update={"width": 256}))


def test_rest_convert_takes_beta_as_python_does(client):
    """`convert(beta=)` was Python-only: REST answered 422 "Extra inputs are not permitted" for recommend's name."""
    body = {"optimizer": "adam", "from": "mup", "to": "sp", "width": 1024, "base_width": 256}
    by_beta = client.post("/v1/theory/convert", json={**body, "beta": 3e-3})
    assert by_beta.status_code == 200, by_beta.text
    assert by_beta.json() == client.post("/v1/theory/convert", json={**body, "base_lr": 3e-3}).json()
    assert by_beta.json() == json.loads(abcscale.convert("adam", "mup", "sp", width=1024, base_width=256,
                                                         beta=3e-3).model_dump_json())
    both = client.post("/v1/theory/convert", json={**body, "beta": 3e-3, "base_lr": 3e-3})
    assert both.status_code == 422 and both.json()["detail"][0]["loc"] == ["body", "beta"]  # the key it sent
    assert both.json()["detail"][0]["msg"] == "the same as base_lr; give one"
    bad = client.post("/v1/theory/convert", json={**body, "beta": -1})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "beta"] and "base_lr" not in bad.text
    assert bad.json()["detail"][0]["msg"].startswith("must be a number from 1e-30")
