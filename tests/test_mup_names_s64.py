"""Session 64, a review of the microsoft/mup optimizer names abcscale prints: several tables mapped abcscale's
optimizer to a mup wrapper, and most fell back to MuAdam, so AdamW, Lion, Adafactor and Muon users were told to use
the wrong one (`check`'s notes, the decay warnings, `mup export`/`import`, `recommend --form mup`, `--format torch`).
The right ones: sgd MuSGD, adam MuAdam, adamw MuAdamW, lion MuAdam(impl=Lion), adafactor MuAdam(impl=Adafactor),
muon MuAdamW on the non-hidden groups and plain Muon on the hidden ones (mup has no Muon wrapper). Also: `mup
import` of an optimizer without an epsilon gave constants that warned "epsilon: lion has no epsilon; the 1e-08 given
changes nothing" downstream, though none was given; `-o adam_scaled` did not say which optimizer to give.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app

runner = CliRunner()

#: what each abcscale optimizer runs as under microsoft/mup, in a table's header or a sentence
NAME = {"sgd": "MuSGD", "adam": "MuAdam", "adamw": "MuAdamW", "lion": "MuAdam(impl=Lion)",
        "adafactor": "MuAdam(impl=Adafactor)", "muon": "MuAdamW/Muon"}
OPTIMIZERS = tuple(NAME)
#: the optimizers a weight decay is given to (a coupled/independent decay rule)
DECAYED = ("sgd", "adamw", "lion", "muon")
NO_EPSILON = ("sgd", "lion", "adafactor")


def invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def _flat(text: str) -> str:
    """The output with rich's line wrapping undone (one space between words)."""
    return " ".join(text.split())


def _check_yaml(tmp_path: Path, optimizer: str, *, lr: str, weight_decay: bool = False) -> Path:
    """A `check` config of a microsoft/mup run (the reviewer's /tmp/review_opt/chk_*.yaml)."""
    path = tmp_path / f"chk_{optimizer}.yaml"
    path.write_text(f"parameterization: mup\noptimizer: {optimizer}\nwidth: 1024\nbeta: 1.0e-3\n"
                    + ("weight_decay: 0.1\n" if weight_decay else "")
                    + f"mup: {{base_width: 256, lr: {lr}, init_std: {{embedding: 1.0, hidden: 0.0625, "
                      "readout: 0.00390625}}\n")
    return path


PER_GROUP_LR = "{embedding: 0.016, hidden: 0.001, readout: 6.25e-5, vector: 0.001}"


# --- the one source ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_one_function_names_every_optimizers_wrapper(optimizer):
    from abcscale.schemas.enums import Optimizer, mup_wrapper, mup_wrapper_call

    assert mup_wrapper(optimizer) == mup_wrapper(Optimizer(optimizer)) == NAME[optimizer]
    long = mup_wrapper(optimizer, long=True)
    if optimizer == "muon":  # no Muon wrapper: what runs each group, said
        assert long.startswith("MuAdamW on the non-hidden groups and plain Muon") and "no Muon wrapper" in long
        assert mup_wrapper_call(optimizer, "param_groups") == "MuAdamW(param_groups)"
    else:
        assert long == NAME[optimizer]
    impl = {"lion": ", impl=Lion", "adafactor": ", impl=Adafactor"}.get(optimizer, "")
    if optimizer != "muon":
        cls = NAME[optimizer].split("(")[0]
        assert mup_wrapper_call(optimizer, "param_groups", "eps=1e-08") == f"{cls}(param_groups{impl}, eps=1e-08)"


# --- 1. check: the one lr a mup table's groups are given ---------------------------------------------------------


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_check_says_the_wrapper_that_gives_every_group_beta(tmp_path, optimizer):
    res = invoke("check", str(_check_yaml(tmp_path, optimizer, lr=PER_GROUP_LR)))
    text = _flat(res.output)
    assert res.exit_code in (0, 1), res.output
    assert f"beta with a mup table is the one lr {NAME[optimizer]} gives every group" in text  # was MuAdam


@pytest.mark.parametrize("optimizer", ["adamw", "lion"])
def test_check_against_a_fit_says_the_wrapper_of_the_fitted_sweep(optimizer):
    from abcscale.fitting import fit_table
    from abcscale.fitting.synthetic import synthetic_sweep
    from abcscale.usecases.check import CheckConfig, compare, recommendation

    table = synthetic_sweep((128, 256, 512, 1024), exponent=0.0, lr_base=2e-3, base_width=128, seeds=2,
                            group={"parameterization": "mup", "optimizer": optimizer, "lr_mode": "per_layer"})
    fit = fit_table(table, n_boot=20)
    lrs = {"embedding": 4e-3, "hidden": 2e-3, "readout": 1e-3, "vector": 2e-3}  # per-group lrs: the note's case
    cfg = CheckConfig.model_validate({"optimizer": optimizer, "width": 8192,
                                      "mup": {"base_width": 128, "lr": lrs, "init_std": 0.02}})
    report = compare(cfg, recommendation(cfg, fit), config_name="c")
    assert any(f"read as the one lr {NAME[optimizer]} gave every group in the fitted sweep" in w
               for w in report.warnings), report.warnings  # was MuAdam


# --- 2. a weight decay's wrapper ---------------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", DECAYED)
def test_an_independent_decay_names_the_wrapper_that_would_decay(optimizer):
    rec = abcscale.recommend("mup", optimizer, width=1024, base_width=256, beta=1e-3, weight_decay=0.1,
                             weight_decay_mode="independent", form="mup")
    [said] = [w for w in rec.groups.warnings if w.startswith("weight_decay is independent")]
    if optimizer == "muon":  # its hidden groups run a plain Muon, no wrapper of mup's (a code review)
        assert "microsoft/mup's MuAdamW and a plain Muon decay by lr * weight_decay" in said
        assert "not through MuAdamW and Muon (the setup gives it none)" in said
        return
    assert f"microsoft/mup's {NAME[optimizer]} decays by lr * weight_decay" in said  # lion: was MuAdamW
    assert f"not through {NAME[optimizer]} (the setup gives it none)" in said


def test_an_independent_lion_decay_on_the_command_line():
    res = invoke("recommend", "-p", "mup", "-o", "lion", "-n", "1024", "--base-width", "256", "--base-lr", "1e-3",
                 "--weight-decay", "0.1", "--weight-decay-mode", "independent", "--form", "mup")
    assert res.exit_code == 0, res.output
    text = _flat(res.output)
    assert "not through MuAdam(impl=Lion)" in text and "MuAdamW" not in text


@pytest.mark.parametrize("optimizer", DECAYED)
def test_check_says_whose_weight_decay_a_mup_run_gives(tmp_path, optimizer):
    res = invoke("check", str(_check_yaml(tmp_path, optimizer, lr="1.0e-3", weight_decay=True)))
    assert res.exit_code in (0, 1), res.output
    assert f"give it as {NAME[optimizer]}'s" in _flat(res.output)  # lion: was MuAdamW's


# --- 3. adafactor is MuAdam(impl=Adafactor), with its param-scale floor ------------------------------------------


def test_mup_export_names_adafactors_wrapper_and_shows_its_floors():
    args = ["mup", "export", "-o", "adafactor", "-n", "1024", "--base-width", "256", "--base-lr", "1e-3"]
    res = invoke(*args)
    assert res.exit_code == 0, res.output
    text = _flat(res.output)
    assert "MuAdam(param_groups, impl=Adafactor)" in text and "MuAdam(impl=Adafactor) divides" in text
    assert "MuAdam(param_groups):" not in text  # plain MuAdam runs Adam
    # the floor each group's Adafactor takes (eps[1]), as `recommend --form mup` and --json give it
    roles = {r["role"]: r["param_scale_floor"] for r in json.loads(invoke(*args, "--json").stdout)["roles"]}
    assert roles["embedding"] == pytest.approx(0.032) and roles["readout"] == pytest.approx(0.000125)
    assert "param scale floor" in text
    rows = {line.split("│")[1].strip(): line for line in res.output.splitlines() if line.count("│") > 3}
    assert "0.032" in rows["embedding"] and "0.000125" in rows["readout"] and "0.001" in rows["hidden"]


def test_recommend_mup_form_and_torch_snippet_name_adafactors_wrapper():
    args = ["recommend", "-p", "mup", "-o", "adafactor", "-n", "1024", "--base-width", "256", "--base-lr", "1e-3",
            "--form", "mup"]
    table = invoke(*args)
    assert table.exit_code == 0, table.output
    text = _flat(table.output)
    assert "MuAdam(impl=Adafactor) with each group's lr" in text and "the MuAdam(impl=Adafactor) lrs" in text
    assert "MuAdam with" not in text and "the MuAdam lrs" not in text
    torch = invoke(*args, "--format", "torch")
    assert torch.exit_code == 0, torch.output
    assert "MuAdam(impl=Adafactor) with each role's mup_lr" in torch.output
    assert "MuAdam with" not in torch.output


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_the_mup_form_table_heads_its_lr_column_with_the_wrapper(optimizer):
    from abcscale.cli.recommend import _groups_table

    rec = abcscale.recommend("mup", optimizer, width=1024, base_width=256, beta=1e-3, form="mup")
    heads = [c.header for c in _groups_table(rec, rec.groups).columns]
    assert f"{NAME[optimizer]} lr" in heads


# --- 4. mup import's note on a sweep of the setup --------------------------------------------------------------


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_mup_import_names_the_wrapper_whose_one_lr_a_sweep_swept(optimizer):
    res = invoke("mup", "import", "-o", optimizer, "--base-width", "256", "--lr", "1e-3", "-n", "1024")
    assert res.exit_code == 0, res.output
    assert f"a fit of a sweep of this setup ({NAME[optimizer]}'s one lr swept" in _flat(res.output)


# --- 5. a parameterization other than muP ----------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_not_mup_says_the_wrapper_that_would_scale_it(optimizer):
    rec = abcscale.recommend("sp", optimizer, width=1024, base_width=256, beta=1e-3, form="mup")
    [said] = [w for w in rec.groups.warnings if w.startswith("standard is not muP")]
    assert f"{NAME[optimizer]}, MuReadout and mup.init would scale it like muP" in said  # adamw: was MuAdam


# --- 6. no epsilon claimed for an optimizer without one ----------------------------------------------------------


def _eps_warnings(ws: list[str]) -> list[str]:
    return [w for w in ws if w.startswith(("epsilon:", "epsilon_mode:"))]


@pytest.mark.parametrize("optimizer", NO_EPSILON)
def test_an_imported_file_gives_recommend_no_epsilon_to_warn_about(tmp_path, optimizer):
    wd = ["--weight-decay", "0.1"] if optimizer in DECAYED else []
    imp = invoke("mup", "import", "-o", optimizer, "--base-width", "256", "--lr", "3e-3", *wd, "--json")
    assert imp.exit_code == 0, imp.output
    path = tmp_path / "imp.json"
    path.write_text(imp.stdout)
    res = invoke("recommend", "--constants", str(path), "-n", "1024", "--json")
    assert res.exit_code == 0, res.output
    assert _eps_warnings(json.loads(res.stdout)["warnings"]) == []  # was epsilon 1e-08 and epsilon_mode constant


@pytest.mark.parametrize("optimizer", NO_EPSILON)
def test_a_file_written_before_the_fix_warns_of_no_epsilon_either(tmp_path, optimizer):
    """`mup import --json` wrote epsilon 1e-08 and epsilon_mode constant for every optimizer: such files are read
    without the epsilon they never had."""
    doc = json.loads(abcscale.from_mup(optimizer, base_width=256, lr=3e-3).model_dump_json())
    doc["constants"] |= {"epsilon": 1e-8, "epsilon_mode": "constant"}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc))
    res = invoke("recommend", "--constants", str(path), "-n", "1024", "--json")
    assert res.exit_code == 0, res.output
    assert _eps_warnings(json.loads(res.stdout)["warnings"]) == []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = abcscale.recommend(constants=str(path), width=1024)
    assert _eps_warnings(rec.warnings) == []


@pytest.mark.parametrize("optimizer", NO_EPSILON)
def test_from_mup_constants_give_python_recommend_no_epsilon_to_warn_about(optimizer):
    kw = {"weight_decay": 0.1} if optimizer in DECAYED else {}
    m = abcscale.from_mup(optimizer, base_width=256, lr=3e-3, init_std="1,0.0625,0.0625", **kw)
    assert not {"epsilon", "epsilon_mode"} & m.constants.model_fields_set
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = abcscale.recommend("mup", optimizer, width=1024, base_width=256, beta=3e-3, constants=m.constants,
                                 form="mup")
    assert _eps_warnings(rec.warnings) == []  # was epsilon_mode: ... constant changes nothing


@pytest.mark.parametrize("optimizer", ["lion", "sgd"])
def test_check_of_a_mup_table_warns_of_no_epsilon(tmp_path, optimizer):
    res = invoke("check", str(_check_yaml(tmp_path, optimizer, lr=PER_GROUP_LR)))
    assert res.exit_code in (0, 1), res.output
    assert "epsilon_mode:" not in res.output and "has no epsilon" not in res.output


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "muon"])
def test_an_optimizer_with_an_epsilon_keeps_its_imported_epsilon(optimizer):
    """Nothing moves where there is an epsilon: constant by default, as mup keeps one, and the given eps."""
    m = abcscale.from_mup(optimizer, base_width=256, lr=3e-3, epsilon=2e-8)
    assert m.constants.epsilon_mode.value == "constant" and m.constants.epsilon == pytest.approx(2e-8)
    rec = abcscale.recommend("mup", optimizer, width=1024, base_width=256, beta=3e-3, constants=m.constants)
    eps = {s.layer.value: s.epsilon for s in rec.layers}
    assert eps["embedding"] == pytest.approx(2e-8) and all(e is None or math.isclose(e, 2e-8) for e in eps.values())


# --- 7. the runner's variants and the printed wrapper names as input ---------------------------------------------


@pytest.mark.parametrize(("variant", "family"), [("adam_scaled", "adafactor"), ("adam_atan2", "adam"),
                                                 ("Adam-Atan2", "adam")])
def test_a_runner_variant_is_refused_with_the_optimizer_to_give(variant, family):
    res = invoke("recommend", "-p", "mup", "-o", variant, "-n", "1024", "--base-width", "256", "--base-lr", "1e-3")
    assert res.exit_code == 2
    assert f"{variant} is the runner's variant of {family}: give {family}" in _flat(res.output)


@pytest.mark.parametrize(("name", "optimizer"), [("MuAdam(impl=Lion)", "lion"),
                                                 ("MuAdam(impl=Adafactor)", "adafactor"),
                                                 ("muadam(impl=lion)", "lion")])
def test_the_printed_wrapper_names_read_as_their_optimizer(tmp_path, name, optimizer):
    from abcscale.schemas.enums import Optimizer
    from abcscale.usecases.check import CheckConfig

    assert Optimizer.parse(name).value == optimizer
    res = invoke("recommend", "-p", "mup", "-o", name, "-n", "1024", "--base-width", "256", "--base-lr", "1e-3",
                 "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["optimizer"] == optimizer
    cfg = CheckConfig.model_validate({"optimizer": name, "width": 1024, "beta": 1e-3,
                                      "mup": {"base_width": 256, "lr": 1e-3}})
    assert cfg.optimizer.value == optimizer
