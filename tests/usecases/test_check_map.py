"""`abcscale check` on a team's own nested training config: read through a map, every problem listed at once."""

from __future__ import annotations

import copy
import json
import shlex
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from abcscale.cli import app
from abcscale.usecases.check import load_config
from abcscale.usecases.config_map import ConfigError, ConfigMap, lookup, parse_map

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "train-config.yaml"
EXAMPLE_MAP = ROOT / "examples" / "train-config.map.toml"
runner = CliRunner()

#: the example's map as --map text (the map file also sets alignment, the default anyway)
INLINE = ("width=model.d_model,parameterization=scaling.parameterization,base_width=scaling.base_width,"
          "beta=scaling.base_lr,optimizer=optim.name,lr.embedding=optim.param_groups.0.lr,"
          "lr.hidden=optim.param_groups.1.lr,lr.readout=optim.param_groups.2.lr,init_std=model.init_std,"
          "multiplier=model.multiplier,epsilon=optim.eps")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def nested(hidden_factor: float = 1.0) -> dict:
    data = yaml.safe_load(EXAMPLE.read_text())
    data = copy.deepcopy(data)
    data["optim"]["param_groups"][1]["lr"] *= hidden_factor
    return data


def write_toml(path: Path, data: dict) -> Path:
    """A small TOML writer for the example's shapes (tables, lists of tables, scalars, lists of numbers)."""
    def value(v):
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, bool):
            return str(v).lower()
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        return repr(v)

    lines = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for k, v in data.items():
        if isinstance(v, dict):
            lines += [f"[{k}]", *(f"{kk} = {value(vv)}" for kk, vv in v.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("fmt", ["yaml", "toml", "json"])
def test_nested_config_with_map_passes_and_fails(tmp_path, fmt):
    def write(data):
        p = tmp_path / f"train.{fmt}"
        if fmt == "toml":
            return write_toml(p, data)
        p.write_text(yaml.safe_dump(data) if fmt == "yaml" else json.dumps(data))
        return p

    good = write(nested())
    res = invoke("check", good, "--map", INLINE, "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    # 3 LRs, 3 init stds, 3 epsilons: the multipliers are not settings of their own (the invariants are);
    # they say which form the other numbers are in
    assert report["width"] == 4096 and len(report["checks"]) == 9
    bad = write(nested(hidden_factor=4.0))
    res = invoke("check", bad, "--map-file", EXAMPLE_MAP, "--json")
    assert res.exit_code == 1, res.output
    assert json.loads(res.stdout)["failed"] == ["lr (hidden) too high"]


def test_map_file_and_inline_map_read_the_same_config():
    from_file = load_config(EXAMPLE, ConfigMap().merged(_map_file()))
    inline = load_config(EXAMPLE, parse_map(INLINE))
    assert from_file == inline
    assert inline.width == 4096 and inline.base_width == 256 and inline.lr.hidden == 1.875e-4


def _map_file() -> ConfigMap:
    from abcscale.usecases.config_map import load_map

    return load_map(EXAMPLE_MAP)


def test_inline_map_overrides_the_map_file(tmp_path):
    data = nested()
    data["model"]["width_override"] = 1024
    p = tmp_path / "train.yaml"
    p.write_text(yaml.safe_dump(data))
    res = invoke("check", p, "--map-file", EXAMPLE_MAP, "--map", "width=model.width_override", "--json")
    assert json.loads(res.stdout)["width"] == 1024


def test_values_table_supplies_what_the_config_does_not_state(tmp_path):
    data = nested()
    del data["scaling"]["parameterization"]
    cfg_path = tmp_path / "train.yaml"
    cfg_path.write_text(yaml.safe_dump(data))
    map_text = EXAMPLE_MAP.read_text().replace('parameterization = "scaling.parameterization"\n', "")
    map_path = tmp_path / "map.toml"
    map_path.write_text(map_text + 'parameterization = "mup"\n')
    assert invoke("check", cfg_path, "--map-file", map_path).exit_code == 0
    map_path.write_text(map_text)
    res = invoke("check", cfg_path, "--map-file", map_path)
    assert res.exit_code == 2 and "parameterization: missing" in res.output


def test_a_bad_path_is_named_with_its_key(tmp_path):
    res = invoke("check", EXAMPLE, "--map", INLINE.replace("model.d_model", "model.d_modl"))
    assert res.exit_code == 2
    assert "width: mapped to 'model.d_modl'" in res.output and "did you mean 'd_model'" in res.output
    assert "width: missing" not in res.output
    res = invoke("check", EXAMPLE, "--map", INLINE.replace("param_groups.1.lr", "param_groups.7.lr"))
    assert res.exit_code == 2 and "lr.hidden: mapped to 'optim.param_groups.7.lr'" in res.output
    assert "is a list of 3" in res.output


def test_lookup_walks_tables_and_lists():
    data = {"optim": {"param_groups": [{"lr": 1.0}, {"lr": 2.0}]}, "model": {"d": 8}}
    assert lookup(data, "optim.param_groups.1.lr") == 2.0
    assert lookup(data, "model.d") == 8
    for path in ("model.e", "optim.param_groups.x", "model.d.x", "nope"):
        with pytest.raises(LookupError):
            lookup(data, path)


def test_unmapped_keys_of_a_nested_config_are_not_errors():
    # seed, data, trainer, optim.betas ... are neither schema keys nor mapped: a map reads past them
    assert invoke("check", EXAMPLE, "--map-file", EXAMPLE_MAP).exit_code == 0


def test_every_problem_is_listed_one_line_each(tmp_path):
    data = nested()
    data["model"]["d_model"] = -4
    data["scaling"]["parameterization"] = "mupp"
    data["optim"]["eps"] = "tiny"
    p = tmp_path / "train.yaml"
    p.write_text(yaml.safe_dump(data))
    res = invoke("check", p, "--map", INLINE.replace("scaling.base_lr", "scaling.base_learning_rate"))
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 4, res.output
    for key in ("width (model.d_model)", "parameterization (scaling.parameterization)", "epsilon (optim.eps)",
                "beta: mapped to 'scaling.base_learning_rate'"):
        assert sum(key in line for line in lines) == 1, (key, res.output)
    assert "more problem" not in res.output


def test_flat_config_lists_every_problem_and_names_a_misspelt_key(tmp_path):
    cfg = yaml.safe_load((ROOT / "examples" / "check-config.yaml").read_text())
    cfg["widht"] = cfg.pop("width")
    cfg["optimizer"] = "adamm"
    cfg["lr"]["hiden"] = cfg["lr"].pop("hidden")
    p = tmp_path / "run.yaml"
    p.write_text(yaml.safe_dump(cfg))
    res = invoke("check", p)
    assert res.exit_code == 2
    lines = [line.removeprefix("error: ") for line in res.output.splitlines()]
    assert "widht: unknown key (did you mean 'width'?)" in lines
    assert "lr.hiden: unknown key (did you mean 'hidden'?)" in lines
    assert any(line.startswith("optimizer: ") for line in lines)
    assert not any("width: missing" in line for line in lines) and len(lines) == 3, res.output


def test_config_error_keeps_every_problem():
    with pytest.raises(ConfigError) as info:
        load_config(EXAMPLE)  # a nested config without a map
    lines = info.value.lines
    assert "width: missing" in lines and "model: unknown key" in lines
    assert "--map" in lines[-1] and "model" in lines[-1]


@pytest.mark.parametrize(("text", "needle"), [("width", "--map: 'width' is not KEY=PATH"),
                                               ("width=", "--map: 'width=' is not KEY=PATH"), (",", "--map: no")])
def test_malformed_map_flag_exits_2(text, needle):
    res = invoke("check", EXAMPLE, "--map", text)
    assert res.exit_code == 2 and needle in res.output


def test_malformed_map_file_exits_2(tmp_path):
    p = tmp_path / "map.toml"
    p.write_text('[mapp]\nwidth = "model.d_model"\n')
    res = invoke("check", EXAMPLE, "--map-file", p)
    assert res.exit_code == 2 and "mapp: unknown table (did you mean 'map'?)" in res.output
    p.write_text("[map]\nwidth = 3\n")
    res = invoke("check", EXAMPLE, "--map-file", p)
    assert res.exit_code == 2 and "map.width: must be a dotted path" in res.output
    assert invoke("check", EXAMPLE, "--map-file", tmp_path / "none.toml").exit_code == 2


def test_readme_commands_run(monkeypatch):
    readme = (ROOT / "README.md").read_text()
    commands = [line.strip() for line in readme.splitlines()
                if line.strip().startswith("abcscale check examples/train-config.yaml")]
    assert len(commands) >= 2, "README's Use in CI shows the nested-config commands"
    monkeypatch.chdir(ROOT)
    for command in commands:
        res = runner.invoke(app, shlex.split(command)[1:])
        assert res.exit_code == 0, (command, res.output)


def test_values_and_paths_fill_one_table_without_touching_the_map():
    from abcscale.usecases.check import apply_map

    cmap = ConfigMap(paths={"lr.hidden": "optim.groups.1.lr"}, values={"lr": {"embedding": 1e-3}})
    flat, problems = apply_map({"optim": {"groups": [{"lr": 1.0}, {"lr": 2.0}]}, "lr": 5.0, "seed": 1}, cmap)
    assert problems == [] and flat == {"lr": {"embedding": 1e-3, "hidden": 2.0}}  # top-level lr is claimed
    assert cmap.values == {"lr": {"embedding": 1e-3}}


@pytest.mark.parametrize("order", ["lr.hidden=optim.groups.1.lr,lr=optim.lr",
                                   "lr=optim.lr,lr.hidden=optim.groups.1.lr"])
def test_a_key_mapped_whole_and_inside_is_an_error_in_either_order(tmp_path, order):
    """`lr` and `lr.hidden` both mapped: one order silently kept the global LR (and switched to a global check),
    the other was an error (session 30's review)."""
    cfg = tmp_path / "run.yaml"
    groups = [{"lr": 1e-3}, {"lr": 2e-4}]
    cfg.write_text(yaml.safe_dump({"model": {"d": 4096}, "optim": {"lr": 3e-3, "groups": groups}}))
    cmap = parse_map(f"width=model.d,{order}").merged(ConfigMap(values={"parameterization": "mup", "optimizer": "adam",
                                                                       "base_width": 256, "beta": 3e-3}))
    with pytest.raises(ConfigError, match="'lr' is given a value and keys inside it"):
        load_config(cfg, cmap)


def test_a_missing_base_width_and_beta_are_said_with_the_other_problems(tmp_path):
    """A nanoGPT config through a map: a bad width and no base width or beta were said one after the other (the
    second only once the first was fixed); now together, and not at all where a fit is the reference."""
    p = tmp_path / "nano.yaml"
    p.write_text("n_embd: -768\nlearning_rate: 6.0e-4\noptimizer: adamw\nparameterization: mup\n")
    res = invoke("check", p, "--map", "width=n_embd,lr=learning_rate")
    lines = [line.removeprefix("error: ") for line in res.output.splitlines()]
    assert res.exit_code == 2 and len(lines) == 2, res.output
    assert lines[0].startswith("width (n_embd): ")
    assert lines[1] == "base_width, beta: required unless a fit is given (--fit or --fit-id)"
    cmap = parse_map("width=n_embd,lr=learning_rate")
    with pytest.raises(ConfigError) as err:
        load_config(p, cmap, with_fit=True)
    assert [k for k, _ in err.value.problems] == ["width (n_embd)"]
    # only the one that is missing; none where the config gives both
    p.write_text("n_embd: -768\nlearning_rate: 6.0e-4\noptimizer: adamw\nparameterization: mup\nbeta: 1e-3\n")
    with pytest.raises(ConfigError) as err:
        load_config(p, cmap)
    assert [k for k, _ in err.value.problems] == ["width (n_embd)", "base_width"]
    p.write_text("n_embd: -768\nlearning_rate: 6.0e-4\noptimizer: adamw\nparameterization: mup\nbeta: 1e-3\n"
                 "base_width: 256\n")
    with pytest.raises(ConfigError) as err:
        load_config(p, cmap)
    assert [k for k, _ in err.value.problems] == ["width (n_embd)"]
