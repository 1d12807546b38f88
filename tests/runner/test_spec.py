"""The sweep spec: parsing, validation messages, cells, and no JAX at import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from abcscale.runner.spec import SweepSpec, parse_lr_grid
from abcscale.schemas.enums import EpsilonMode
from abcscale.schemas.theory import Constants, PerLayer


def test_lr_grid_includes_stop():
    assert parse_lr_grid("-12:-4:0.5")[0] == -12 and parse_lr_grid("-12:-4:0.5")[-1] == -4
    assert len(parse_lr_grid("-12:-4:0.5")) == 17
    assert parse_lr_grid("-3,-1") == [-3.0, -1.0]


@given(st.integers(-20, 0), st.integers(0, 12), st.sampled_from([0.25, 0.5, 1.0]))
def test_lr_grid_is_evenly_spaced(start, span, step):
    grid = parse_lr_grid(f"{start}:{start + span}:{step}")
    assert grid[0] == start and abs(grid[-1] - (start + span)) < 1e-9
    assert all(abs(b - a - step) < 1e-9 for a, b in zip(grid, grid[1:], strict=False))


@pytest.mark.parametrize("bad", ["-4:-12:0.5", "-12:-4:0", "1:2"])
def test_bad_lr_grid(bad):
    with pytest.raises(ValidationError, match="log2_lr"):
        SweepSpec(log2_lr=bad)


def test_lists_from_comma_strings_and_aliases():
    spec = SweepSpec(parameterizations="sp,mf", optimizers="adam,atan2", lr_modes="global,per_layer",
                     widths="64,32", alignments="full;0.5,0.5,0.5")
    assert spec.parameterizations == ["standard", "mean_field"]
    assert spec.optimizers == ["adam", "adam_atan2"]
    assert spec.widths == [32, 64]
    assert spec.base == 32
    assert len(spec.cells()) == 2 * 2 * 2 * 2 * 2  # "full;A,O,U" is two alignments


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"parameterizations": "foo"}, "parameterizations"), ({"optimizers": "sophia"}, "optimizers"),
    ({"widths": [0]}, "widths"), ({"steps": 0}, "steps"), ({"seq_len": 1}, "seq_len"),
    ({"typo_key": 1}, "typo_key"),
])
def test_errors_name_the_field(kwargs, field):
    with pytest.raises(ValidationError, match=field):
        SweepSpec(**kwargs)


def test_head_dim_must_divide_widths():
    with pytest.raises(ValidationError, match="head_dim"):
        SweepSpec(model="transformer", widths=[24], head_dim=16)
    SweepSpec(model="mlp", widths=[24], head_dim=16)  # the default, as a spec.json written by the runner holds it


@pytest.mark.parametrize("model", ["mlp", "examples/user_model.py:factory"])
@pytest.mark.parametrize("field, value", [("head_dim", 8), ("attn_scale", "linear")])
def test_attention_settings_without_attention_are_refused(model, field, value):
    """An mlp or a user model has no attention of the runner's: a head_dim or attn_scale given for it changed
    nothing (and only split the cache key); it is refused, naming the field."""
    with pytest.raises(ValidationError, match=f"{field}: only the transformer"):
        SweepSpec(model=model, widths=[32], **{field: value})


def test_from_toml_with_sweep_table_and_custom_table(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text("""
[sweep]
model = "mlp"
parameterizations = ["mine", "mup"]
log2_lr = "-8:-4:1"
widths = [16, 32]

[sweep.custom_tables.mine]
embedding = {a = 0, b = 0}
hidden = {a = 0, b = 0.5}
readout = {a = 0.5, b = 0.5}
""")
    spec = SweepSpec.from_toml(p)
    assert spec.parameterizations == ["mine", "mup"] and spec.log2_lr == [-8, -7, -6, -5, -4]
    assert spec.parameterization("mine").readout.a == 0.5


def test_cell_key_changes_with_what_changes_results(tiny_spec):
    cell = tiny_spec.cells()[0]
    k = cell.key(tiny_spec, "h")
    assert k == cell.key(tiny_spec.with_overrides(chunk=2, batching="single"), "h")  # how, not what
    assert k != cell.key(tiny_spec.with_overrides(steps=13), "h")
    assert k != cell.key(tiny_spec, "other-data")


def test_spec_module_does_not_import_jax():
    code = "import sys, abcscale.runner.spec, abcscale.runner.sweep, abcscale.cli.runner; print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("argv", [["--help"], ["sweep", "--help"], ["theory", "table", "--json"]])
def test_cli_commands_that_train_nothing_do_not_import_jax(argv):
    code = (f"import sys\nfrom abcscale.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit as e:\n"
            f"    assert e.code == 0, e.code\nprint('jax' in sys.modules, file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.strip().splitlines()[-1] == "False"


def test_constants_are_the_one_constants_model_flat_or_nested(tmp_path):
    flat = SweepSpec(epsilon=1e-6, epsilon_mode="constant", init_scale="1,2,3", multiplier=2)
    nested = SweepSpec(constants={"epsilon": 1e-6, "epsilon_mode": "constant", "init_scale": "1,2,3",
                                  "multiplier": 2})
    assert isinstance(flat.constants, Constants) and flat.constants == nested.constants
    assert flat.constants.epsilon_mode is EpsilonMode.constant and flat.constants.init_scale.readout == 3
    toml = tmp_path / "s.toml"
    toml.write_text('[sweep]\nepsilon = 1e-6\nepsilon_mode = "constant"\ninit_scale = "1,2,3"\nmultiplier = 2\n')
    assert SweepSpec.from_toml(toml).constants == flat.constants
    # a flag (flat key) overrides the file's nested value; the JSON form round-trips
    assert flat.with_overrides(epsilon=1e-7).constants.epsilon == 1e-7
    assert SweepSpec.model_validate_json(flat.model_dump_json()) == flat
    with pytest.raises(ValidationError, match="epsilon"):
        SweepSpec(epsilon=-1)
    # both forms in one spec: an error naming the flat keys, as in a check config (neither silently wins)
    with pytest.raises(ValidationError, match=r"as flat keys \(epsilon\), not both"):
        SweepSpec(epsilon=1e-6, constants={"epsilon": 1e-7})


def test_gammas_default_to_the_constants_gamma():
    assert SweepSpec().gammas == [PerLayer()]
    assert SweepSpec(gamma="2,2,2").gammas == [PerLayer.parse("2,2,2")]
    assert SweepSpec(gammas="1,1,1;2,2,2").gammas == [PerLayer(), PerLayer.parse("2,2,2")]


def test_cell_key_is_the_same_for_flat_and_nested_constants(tiny_spec):
    """Resuming a sweep depends on the key: it sees the constants flat, whichever way they were written."""
    nested = tiny_spec.model_copy(update={"constants": Constants(epsilon=1e-6)})
    flat = tiny_spec.with_overrides(epsilon=1e-6)
    cell = tiny_spec.cells()[0]
    assert cell.key(nested, "h") == cell.key(flat, "h") != cell.key(tiny_spec, "h")
    fields = json.loads(json.dumps(flat.model_dump(mode="json")))
    assert "constants" in fields and "epsilon" not in fields


def test_the_example_spec_is_the_readme_one():
    import re
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    example = SweepSpec.from_toml(root / "examples" / "sweep.toml")
    block = re.search(r"```toml\n(\[sweep\].*?)```", (root / "README.md").read_text(), flags=re.S)
    assert block is not None
    assert SweepSpec.model_validate(tomllib.loads(block.group(1))["sweep"]) == example
    assert example.parameterizations == ["standard", "mup"] and example.constants.epsilon == 1e-8


def test_adamw_is_a_sweep_optimizer_with_adams_exponents():
    from abcscale.runner.spec import OPTIMIZER_FAMILY
    from abcscale.schemas.enums import Optimizer

    assert SweepSpec(optimizers="adam,adamw").optimizers == ["adam", "adamw"]
    assert OPTIMIZER_FAMILY["adamw"] is Optimizer.adamw
    with pytest.raises(ValidationError, match="unknown optimizer 'sophia'"):
        SweepSpec(optimizers="sophia")


def test_a_sweeps_weight_decay_stays_its_own_key_beside_the_constants(tiny_spec):
    """Constants gained weight_decay (docs/theory.md section 9); a sweep's flat `weight_decay` is still the
    runner's independent decay, a flag still sets it, and the per-layer one in `constants` is refused for a
    variant without decoupled decay (the default, adam; tests/runner/test_adamw_sweep.py has adamw's)."""
    flat = SweepSpec(weight_decay=0.1)
    assert flat.weight_decay == 0.1 and flat.constants.weight_decay == 0.0
    assert flat.with_overrides(weight_decay=0.2).weight_decay == 0.2
    with pytest.raises(ValidationError,
                       match="constants.weight_decay: adam has no weight decay that abcscale transfers"):
        SweepSpec(constants={"weight_decay": 0.1})
    # the constants' (inert) weight-decay mode does not change which results a cell has: resuming still works
    cell = tiny_spec.cells()[0]
    inert = tiny_spec.model_copy(update={"constants": Constants(weight_decay_mode="independent")})
    assert cell.key(inert, "h") == cell.key(tiny_spec, "h") != cell.key(tiny_spec.with_overrides(weight_decay=0.1),
                                                                        "h")
