"""``abcscale tune`` end to end at tiny size (built-in model and the example user model), and its bad input."""

from __future__ import annotations

import json

import pytest

from abcscale.cli import main
from abcscale.usecases.tune import load_constants

pytest.importorskip("optuna")
# no --head-dim: only the transformer takes one (it is refused for the mlp and a user model)
TINY = ["--base-width", "16", "--steps", "5", "--batch", "4", "--seq-len", "16", "--depth", "1",
        "--data", "synthetic", "--trials", "4", "--reeval-seeds", "2", "--top", "2"]


def _exit(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code or 0


@pytest.mark.e2e
@pytest.mark.parametrize("model", ["transformer", "examples/user_model.py:factory"])
def test_tune_writes_a_constants_file_that_recommend_takes(model, tmp_path, capsys):
    out = tmp_path / "tuned.json"
    heads = ["--head-dim", "8"] if model == "transformer" else []
    # each searched group's range given (--scale-range and --epsilon-range since session 80; --gamma-range before)
    ranges = ["--tune", "gamma,init_scale", "--gamma-range", "0.25:4", "--scale-range", "0.5:2"]
    assert _exit(["tune", *TINY, *heads, *ranges, "--model", model, "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    tuned = load_constants(out)
    assert printed == json.loads(tuned.model_dump_json())
    assert (tuned.parameterization, tuned.optimizer_variant, tuned.base_width) == ("mup", "adam", 16)
    assert tuned.training["model"] == model and tuned.data_hash
    assert tuned.trials_run == len(tuned.history) == 4 and len(tuned.candidates) == 2
    best = min(tuned.candidates, key=lambda c: c.mean)
    assert tuned.beta == best.params["beta"] and tuned.constants.gamma.readout == best.params["gamma_readout"]
    assert tuned.loss == best.mean and len(best.losses) == 2 and tuned.constants.gamma.hidden == 1.0
    assert (tuned.settings.gamma_range, tuned.settings.scale_range) == ((0.25, 4.0), (0.5, 2.0))
    for t in tuned.history:
        assert all((0.25 if k.startswith("gamma") else 0.5) <= v <= (4 if k.startswith("gamma") else 2)
                   for k, v in t.params.items() if k != "beta"), t.params
        assert {k for k in t.params if k.startswith("init_scale")}, t.params
    assert _exit(["recommend", "--constants", str(out), "-n", "64", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["base_width"] == 16 and rec["parameterization"] == "mup"


@pytest.mark.parametrize(("argv", "needle"), [
    (["--trials", "0"], "--trials"),
    (["--beta-range", "1:0.1"], "--beta-range"),
    (["--tune", "gamma,foo"], "--tune"),
    (["-p", "nope"], "--parameterization"),
    (["--model", "examples/user_model.py:nope"], "--model"),
    (["--tune", "init_scale", "--scale-range", "2:1"], "--scale-range"),
    (["--tune", "epsilon", "--epsilon-range", "0:1e-8"], "--epsilon-range"),
    (["--scale-range", "0.5:2"], "--scale-range: no init_scale or multiplier is searched (--tune gamma)"),
    (["--tune", "none", "--epsilon-range", "1e-10:1e-8"], "--epsilon-range: no epsilon is searched (--tune none)"),
])
def test_bad_input_exits_2_naming_the_flag(argv, needle, capsys, tmp_path):
    assert _exit(["tune", *argv, "--out", str(tmp_path / "t.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {needle}") and err.count("\n") == 1


@pytest.mark.e2e
def test_verify_widths_adds_the_transfer_check_and_constants_reruns_it(tmp_path, capsys):
    out = tmp_path / "tuned.json"
    verify = ["--verify-widths", "2x", "--verify-lrs", "3", "--verify-seeds", "2"]
    assert _exit(["tune", *TINY, "--model", "mlp", "--out", str(out), *verify, "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "transfer check" in printed and "default - tuned" in printed
    (c,) = load_constants(out).transfer
    assert (c.width, c.seeds, len(c.log2_lr)) == (32, 2, 3)
    # on an existing file: no search, the check at a new width is added
    before = load_constants(out)
    assert _exit(["tune", "--constants", str(out), "--verify-widths", "48", "--verify-lrs", "2", "--verify-seeds",
                  "2", "--json", "--quiet"]) == 0
    after = load_constants(out)
    assert json.loads(capsys.readouterr().out) == json.loads(after.model_dump_json())
    assert [t.width for t in after.transfer] == [32, 48] and after.history == before.history


@pytest.mark.parametrize(("argv", "needle"), [
    (["--verify-widths", "0.5x"], "--verify-widths"),
    (["--verify-seeds", "1"], "--verify-seeds"),
    (["--verify-lrs", "1"], "--verify-lrs"),
    (["--constants", "missing.json", "--verify-widths", "2x"], "--constants"),
])
def test_bad_verify_input_exits_2_naming_the_flag(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tuned = tmp_path / "t.json"
    if needle == "--verify-widths":  # a valid file, so the widths are what is checked
        from abcscale.usecases.tune import save_constants
        from tests.usecases.test_tune import _tuned
        save_constants(_tuned(), tuned)
        argv = ["--constants", str(tuned), *argv]
    assert _exit(["tune", *argv, "--out", str(tuned)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {needle}") and err.count("\n") == 1
