"""``abcscale recommend --form ... --format table|json|torch|optax [--rules FILE]`` as a user runs it: the groups
in the JSON are the use case's, the table has one row per role, the snippets parse, embed the spec and hand it
to ``abcscale.torch`` / ``abcscale.optax``; bad flags exit 2 on one line naming the flag."""

from __future__ import annotations

import ast
import json
import sys
import types

import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app
from abcscale.schemas.groups import Form, GroupRule, GroupSpec

runner = CliRunner()
BASE = ["recommend", "-p", "mup", "-o", "adam", "-n", "4096", "--base-width", "256", "--base-lr", "3e-3"]


def run(*args: str):
    return runner.invoke(app, [*BASE, *args])


def _embedded_spec(code: str) -> GroupSpec:
    """The spec the snippet embeds: the string argument of its ``GroupSpec.model_validate_json`` call."""
    calls = [n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and n.func.attr == "model_validate_json"]
    assert len(calls) == 1
    (arg,) = calls[0].args
    assert isinstance(arg, ast.Constant) and isinstance(arg.value, str)
    return GroupSpec.model_validate(json.loads(arg.value))


@pytest.mark.parametrize("form", ["abc", "multiplier-free", "plain", "mup"])
def test_json_groups_equal_the_python_api(form):
    res = run("--form", form, "--format", "json")
    assert res.exit_code == 0, res.output
    api = abcscale.recommend("mup", "adam", width=4096, base_width=256, beta=3e-3, form=form)
    assert json.loads(res.stdout) == api.model_dump(mode="json")
    assert api.groups is not None and api.groups.form is Form.parse(form)
    assert run("--form", form, "--json").stdout == res.stdout  # --json is --format json


@pytest.mark.parametrize("form, columns", [
    ("abc", ["multiplier", "init std", "learning rate", "epsilon"]),
    ("multiplier-free", ["init std", "learning rate", "epsilon"]),
    ("mup", ["init std", "learning rate", "epsilon", "multiplier", "MuAdam lr", "mup.init std (base)"]),
])
def test_table_has_one_row_per_role(form, columns):
    res = run("--form", form)
    assert res.exit_code == 0, res.output
    rows = [line for line in res.stdout.splitlines() if line.startswith("│")]
    assert [r.split("│")[1].strip() for r in rows] == ["embedding", "hidden", "readout", "vector", "fixed"]
    header = next(line for line in res.stdout.splitlines() if line.startswith("┃"))
    assert [c.strip() for c in header.split("┃")[2:-1]][-len(columns):] == columns
    assert ("multiplier" in header) == (form != "multiplier-free")
    assert "x r^-1/2" in res.stdout  # the hidden fan-in rule
    if form == "mup":
        assert "MuReadout(output_mult=1)" in res.stdout and "base width 256" in res.stdout


def test_table_shows_the_decay_for_adamw():
    res = runner.invoke(app, ["recommend", "-p", "mup", "-o", "adamw", "-n", "4096", "--base-width", "256",
                              "--base-lr", "3e-3", "--weight-decay", "0.1", "--form", "plain"])
    assert res.exit_code == 0, res.output
    assert "weight decay (coupled)" in res.stdout


def _stub(monkeypatch, name: str, **attrs) -> types.SimpleNamespace:
    """A stand-in module ``name`` recording its calls (torch and the export helpers are not needed here)."""
    calls: list = []
    mod = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(mod, key, value)
    mod.calls = calls
    monkeypatch.setitem(sys.modules, name, mod)
    parent, _, child = name.rpartition(".")
    if parent == "abcscale":
        monkeypatch.setattr(abcscale, child, mod, raising=False)
    return mod


@pytest.mark.parametrize("form", ["abc", "multiplier-free", "mup"])
def test_torch_snippet_parses_embeds_the_spec_and_calls_the_helper(monkeypatch, form):
    res = runner.invoke(app, ["recommend", "-p", "mup", "-o", "adamw", "-n", "4096", "--base-width", "256",
                              "--base-lr", "3e-3", "--weight-decay", "0.1", "--form", form, "--format", "torch"])
    assert res.exit_code == 0, res.output
    code = res.stdout
    spec = _embedded_spec(code)
    assert spec == abcscale.recommend("mup", "adamw", width=4096, base_width=256, beta=3e-3, weight_decay=0.1,
                                      form=form).groups
    assert "# without abcscale" in code.lower() and f"{spec['hidden'].lr:.6g}" in code  # the plain fallback
    helper = _stub(monkeypatch, "abcscale.torch")
    helper.init_ = lambda model, s, **kw: helper.calls.append(("init_", model, s, kw))
    helper.param_groups = lambda model, s, **kw: helper.calls.append(("param_groups", model, s, kw)) or ["groups"]
    helper.multipliers = lambda model, s: {"name": 1.0}
    made = []
    optim = types.SimpleNamespace(Optimizer=object, AdamW=lambda groups: made.append(groups) or "opt")
    _stub(monkeypatch, "torch", nn=types.SimpleNamespace(Module=object), optim=optim)
    namespace: dict = {}
    exec(compile(code, "snippet", "exec"), namespace)
    out = namespace["configure"]("model")
    assert [c[0] for c in helper.calls] == ["init_", "param_groups"]
    assert all(c[1] == "model" and c[2] == spec for c in helper.calls) and made == [["groups"]]
    # a form keeping multipliers is said to the helper, whose forward then applies them (session 57)
    assert all(c[3] == ({} if form == "multiplier-free" else {"form": spec.form}) for c in helper.calls)
    assert out == ("opt" if form == "multiplier-free" else ("opt", {"name": 1.0}))


def test_optax_snippet_parses_embeds_the_spec_and_calls_the_helper(monkeypatch, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("- {pattern: 'mlp\\.c_proj', role: hidden}\n")
    res = run("--form", "plain", "--format", "optax", "--rules", str(rules))
    assert res.exit_code == 0, res.output
    spec = _embedded_spec(res.stdout)
    assert spec.rules[0] == GroupRule(pattern=r"mlp\.c_proj", role="hidden") and spec.form is Form.multiplier_free
    helper = _stub(monkeypatch, "abcscale.optax")
    helper.init = lambda s, params, key: helper.calls.append(("init", s, key)) or {"w": "new"}
    tx = types.SimpleNamespace(init=lambda params: ("state", params))
    helper.transform = lambda s, params: helper.calls.append(("transform", s, params)) or tx
    _stub(monkeypatch, "jax", Array=object)
    namespace: dict = {}
    exec(compile(res.stdout, "snippet", "exec"), namespace)
    params, got_tx, state = namespace["configure"]({"w": "old"}, "key")
    assert params == {"w": "new"} and got_tx is tx and state == ("state", {"w": "new"})
    assert helper.calls == [("init", spec, "key"), ("transform", spec, {"w": "new"})]


def test_rules_file_goes_first_in_every_format(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps([{"pattern": "lm_head", "role": "embedding"}]))
    res = run("--rules", str(path), "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["groups"]["rules"][0] == {"pattern": "lm_head", "role": "embedding"}


@pytest.mark.parametrize("args, flag", [
    (["--form", "mupp"], "--form"),
    (["--format", "pytorch"], "--format"),
    (["--format", "torch", "--json"], "--json"),
    (["--rules", "/nonexistent/rules.json"], "--rules"),
    (["--weight-decay-mode", "often"], "--weight-decay-mode"),
])
def test_bad_flags_exit_2_on_one_line_naming_the_flag(args, flag):
    res = run(*args)
    assert res.exit_code == 2, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and flag in lines[0] and "Traceback" not in res.output
    # stdout: nothing, or with --json the same line as JSON
    assert not res.stdout or json.loads(res.stdout)["errors"] == [lines[0].removeprefix("error: ")]


@pytest.mark.parametrize("text, says", [
    ('[{"pattern": "(", "role": "hidden"}]', "rules[0]: pattern"),
    ('[{"pattern": "x", "role": "weights"}]', "rules[0]: role"),
    ('{"pattern": "x"', "not valid JSON"),
])
def test_bad_rules_file_exits_2_naming_the_flag_and_entry(tmp_path, text, says):
    path = tmp_path / "rules.json"
    path.write_text(text)
    res = run("--rules", str(path))
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "--rules" in lines[0] and says in lines[0], res.output


def test_adamw_works_from_a_fit_too(tmp_path):
    from abcscale.fitting.synthetic import synthetic_sweep

    sweep = synthetic_sweep(widths=(64, 128, 256, 512), seeds=2, step=0.5, half_range=2.0,
                            group={"parameterization": "mup", "optimizer": "adamw", "lr_mode": "per_layer"})
    fit = abcscale.fit(sweep)
    path = tmp_path / "fit.json"
    path.write_text(fit.model_dump_json())
    res = runner.invoke(app, ["recommend", "--fit", str(path), "-n", "2048", "--weight-decay", "0.1",
                              "--form", "mup", "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    assert got["optimizer"] == "adamw" and got["groups"]["form"] == "mup"
    assert all(r["weight_decay"] is not None for r in got["groups"]["roles"])


def test_optax_snippet_runs_on_a_parameter_tree(tmp_path):
    """The printed snippet, run as printed with the real ``abcscale.optax``: init stds (fan-in aware) and the
    first Adam step's size per role are the spec's."""
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    res = runner.invoke(app, ["recommend", "-p", "mup", "-o", "adam", "-n", "64", "--base-width", "32",
                              "--base-lr", "1e-2", "--form", "plain", "--format", "optax"])
    assert res.exit_code == 0, res.output
    spec = _embedded_spec(res.stdout)
    namespace: dict = {}
    exec(compile(res.stdout, "snippet", "exec"), namespace)
    params = {"wte": {"embedding": jnp.zeros((512, 64))}, "h0": {"kernel": jnp.zeros((64, 256))},
              "h1": {"kernel": jnp.zeros((256, 64))}, "lm_head": {"kernel": jnp.zeros((64, 512))},
              "ln_f": {"scale": jnp.ones((64,))}}
    new, tx, state = namespace["configure"](params, jax.random.PRNGKey(0))
    std = {k: float(jnp.std(next(iter(v.values())))) for k, v in new.items()}
    assert std["wte"] == pytest.approx(spec.init_std("embedding"), rel=0.05)
    assert std["h0"] == pytest.approx(spec.init_std("hidden"), rel=0.05)
    assert std["h1"] == pytest.approx(spec.init_std("hidden", 4.0), rel=0.05)  # a 4D -> D projection
    assert std["lm_head"] == pytest.approx(spec.init_std("readout"), rel=0.05)
    assert bool(jnp.all(new["ln_f"]["scale"] == 1.0))  # gains keep their init
    updates, _ = tx.update(jax.tree_util.tree_map(jnp.ones_like, new), state, new)
    step = {k: float(jnp.abs(next(iter(v.values()))).mean()) for k, v in updates.items()}
    role = {"wte": "embedding", "h0": "hidden", "h1": "hidden", "lm_head": "readout", "ln_f": "vector"}
    for name, r in role.items():
        assert step[name] == pytest.approx(spec[r].lr, rel=1e-3), name  # Adam's first step is lr * sign(g)


def test_adafactor_in_the_multiplier_free_form_names_each_groups_floor():
    res = runner.invoke(app, ["recommend", "-p", "mup", "-o", "adafactor", "-n", "4096", "--base-width", "256",
                              "--base-lr", "1e-2", "--form", "plain"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "max(rms(W), floor)" in text and "readout 1.563e-05" in text  # 1e-3 x (1/4096) / (1/64)
    res = runner.invoke(app, ["recommend", "-p", "mup", "-o", "adafactor", "-n", "4096", "--base-width", "256",
                              "--base-lr", "1e-2", "--form", "mup"])
    assert "epsilon - unscaled" not in res.output and "width_mult^-1/2" in " ".join(res.output.split())
