"""Session 66: an epsilon mode typed beside a tune file, and the words for a decay an optimizer lacks.

A review asked whether `recommend --constants tuned.json --epsilon-mode OTHER` reinterprets the tuned epsilon, as a
decay mode alone reinterprets the tuned decay (refused since; tests/cli/test_consistency_s66.py). It does not: the
two epsilon modes give the tuned number alike at the base width, the one width the search trained, so the number
means the same in both; the mode is the rule that carries it to other widths, as the LR mode is the LR's. So it is
taken, as before (tests/cli/test_bad_input_more.py), and now said: it moved each layer's epsilon by (n/b)^-e_l in
silence (64x on hidden at 64x the base width). The Python API has no epsilon keyword; its way to ask is a file with
the other mode, whose numbers are the CLI's.

And "adam has no decoupled weight decay" met an AdamW column headed "weight decay (coupled)": the error now says
"no weight decay that abcscale transfers, coupled or independent", the tool's own words (the mode names are kept).
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app
from abcscale.schemas.theory import Constants, PerLayer
from abcscale.schemas.tune import TunedConstants, TuneSettings
from abcscale.usecases.tune import save_constants

runner = CliRunner()
WIDE = {"COLUMNS": "300"}
NOTE = "--epsilon-mode: "


def _file(folder, name: str, **kw) -> str:
    data = {"parameterization": "mup", "optimizer": "adam", "optimizer_variant": "adam", "alignment": "full",
            "lr_mode": "per_layer", "base_width": 64, "beta": 3e-3,
            "constants": Constants(gamma=PerLayer(embedding=2.0, readout=0.25), epsilon=1e-6,
                                   epsilon_mode="constant"),
            "loss": 4.0, "loss_std": 0.05, "near_best": {}, "settings": TuneSettings(),
            "training": {"model": "transformer"}, "elapsed_s": 1.0, "trials_run": 0, "history": [],
            "candidates": [], "abcscale_version": "test", **kw}
    return str(save_constants(TunedConstants(**data), folder / name))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tuned")
    per = Constants(gamma=PerLayer(embedding=2.0, readout=0.25), epsilon=1e-6, epsilon_mode="per_layer")
    return {"constant": _file(folder, "constant.json"), "per_layer": _file(folder, "per_layer.json", constants=per),
            "sgd": _file(folder, "sgd.json", optimizer="sgd", optimizer_variant="sgd", constants=Constants()),
            "lion": _file(folder, "lion.json", optimizer="lion", optimizer_variant="lion", constants=Constants()),
            "atan2": _file(folder, "atan2.json", optimizer_variant="adam_atan2"),
            "muon": _file(folder, "muon.json", optimizer="muon", optimizer_variant="muon")}


def _json(*args: str) -> dict:
    res = runner.invoke(app, ["recommend", *args, "--json"], env=WIDE)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _eps(answer: dict) -> dict[str, float | None]:
    return {x["layer"]: x["epsilon"] for x in answer["layers"]}


def _notes(answer: dict) -> list[str]:
    return [w for w in answer["warnings"] if w.startswith(NOTE)]


def test_the_modes_give_the_tuned_epsilon_alike_at_the_base_width(files):
    # why a mode alone is taken, not refused as a decay mode alone is: at the width the search trained, the tuned
    # number is the same epsilon in either mode, on every role and in every form
    for form in ("abc", "multiplier_free", "mup"):
        own = _json("--constants", files["constant"], "-n", "64", "--form", form)
        other = _json("--constants", files["constant"], "-n", "64", "--form", form, "--epsilon-mode", "per_layer")
        assert _eps(own) == _eps(other) == dict.fromkeys(("embedding", "hidden", "readout"), 1e-6)
        assert [r["epsilon"] for r in own["groups"]["roles"]] == [r["epsilon"] for r in other["groups"]["roles"]]
        assert _notes(other) == []  # nothing moved, nothing said


@pytest.mark.parametrize(("file", "typed", "factors"), [
    ("constant", "per_layer", {"embedding": 1 / 8, "hidden": 1 / 64, "readout": 1 / 8}),
    ("per_layer", "constant", {"embedding": 8.0, "hidden": 64.0, "readout": 8.0}),
])
def test_another_epsilon_mode_is_taken_and_said_with_what_it_moves(files, file, typed, factors):
    own = _json("--constants", files[file], "-n", "4096")
    other = _json("--constants", files[file], "-n", "4096", "--epsilon-mode", typed)
    assert own["epsilon_mode"] == file and other["epsilon_mode"] == typed
    assert {k: other_eps / _eps(own)[k] for k, other_eps in _eps(other).items()} == pytest.approx(factors)
    (note,) = _notes(other)
    assert f"{typed} carries the epsilon 1e-06 of {files[file]}" in note and f"not the file's {file} one" in note
    assert "agree at its base width 64" in note and "(drop --epsilon-mode to use the file's)" in note
    said = ", ".join(f"{k} x{v:.3g}" for k, v in factors.items())
    assert f"at 4096 this rule's epsilons are the file's rule's {said}" in note
    # the answer is the hand-written question's, the same numbers as asked without a file
    explicit = abcscale.recommend("mup", "adam", width=4096, base_width=64, beta=3e-3, constants={
        "gamma": {"embedding": 2.0, "readout": 0.25}, "epsilon": 1e-6, "epsilon_mode": typed})
    assert _eps(other) == {s.layer.value: s.epsilon for s in explicit.layers}
    # the note is the answer's, after it, in the table too
    res = runner.invoke(app, ["recommend", "--constants", files[file], "-n", "4096", "--epsilon-mode", typed],
                        env=WIDE)
    assert res.exit_code == 0 and "warning: --epsilon-mode: " in res.output


def test_the_python_api_asks_it_with_a_file_of_the_other_mode_and_gets_the_same_numbers(files):
    from abcscale.usecases.tune import load_constants

    tuned = load_constants(files["constant"])
    other = tuned.model_copy(update={"constants": tuned.constants.model_copy(update={"epsilon_mode": "per_layer"})})
    rec = abcscale.recommend(width=4096, constants=other)
    cli = _json("--constants", files["constant"], "-n", "4096", "--epsilon-mode", "per_layer")
    assert {s.layer.value: s.epsilon for s in rec.layers} == _eps(cli)
    assert [r.epsilon for r in rec.groups.roles] == [r["epsilon"] for r in cli["groups"]["roles"]]


def test_no_note_for_the_files_own_mode_or_none_typed(files):
    for args in ([], ["--epsilon-mode", "constant"]):
        assert _notes(_json("--constants", files["constant"], "-n", "4096", *args)) == []


@pytest.mark.parametrize("kind", ["sgd", "lion", "atan2"])
def test_nothing_new_where_the_file_has_no_epsilon_of_the_rule(files, kind):
    # sgd and lion have none (their own "changes nothing" notes stand); adam_atan2 ignores it, which its variant
    # note says
    own = _json("--constants", files[kind], "-n", "4096")
    other = _json("--constants", files[kind], "-n", "4096", "--epsilon-mode", "constant")
    assert _notes(other) == []
    assert [w for w in other["warnings"] if w not in own["warnings"]] == (
        ["epsilon_mode: " + kind + " has no epsilon; constant changes nothing"] if kind != "atan2" else [])


def test_muon_says_the_layers_with_an_epsilon_only(files):
    (note,) = _notes(_json("--constants", files["muon"], "-n", "4096", "--epsilon-mode", "per_layer"))
    assert "embedding x0.125, readout x0.125 (" in note and "hidden" not in note


def test_with_a_fit_the_files_epsilon_is_carried_so_the_note_holds_too(files, tmp_path):
    from abcscale.fitting import fit_table
    from abcscale.fitting.synthetic import synthetic_sweep

    group = {"parameterization": "mup", "optimizer": "adam", "alignment": "full", "lr_mode": "per_layer"}
    fit = fit_table(synthetic_sweep(widths=(64, 128, 256), group=group, exponent=0.0, seed=4), n_boot=20)
    (tmp_path / "fit.json").write_text(fit.model_dump_json())
    args = ("--fit", str(tmp_path / "fit.json"), "--constants", files["constant"], "-n", "4096")
    assert _notes(_json(*args)) == []
    (note,) = _notes(_json(*args, "--epsilon-mode", "per_layer"))
    assert "hidden x0.0156" in note


def test_an_epsilon_beside_a_tune_file_is_still_one_source(files):
    # the constants' values come from the file (gamma, init_scale, multiplier, epsilon alike); unchanged
    res = runner.invoke(app, ["recommend", "--constants", files["constant"], "-n", "4096", "--epsilon", "1e-7"])
    assert res.exit_code == 2 and "--epsilon: the constants come from --constants" in res.output


# --- the words for a decay the optimizer lacks (finding 8c) ---

WORDS = "adam has no weight decay that abcscale transfers"


def test_the_cli_and_python_say_no_weight_decay_in_the_modes_words():
    res = runner.invoke(app, ["recommend", "-p", "mup", "-o", "adam", "-n", "1024", "--base-width", "256",
                              "--base-lr", "3e-3", "--weight-decay", "0.1"], env=WIDE)
    assert res.exit_code == 2 and f"error: --weight-decay: {WORDS}, coupled or independent" in res.output
    assert "decoupled" not in res.output
    with pytest.raises(ValueError, match=f"^weight_decay: {WORDS}, coupled or independent") as exc:
        abcscale.recommend("mup", "adam", width=1024, base_width=256, beta=3e-3, weight_decay=0.1)
    assert "decoupled" not in str(exc.value)
    rec = abcscale.recommend("mup", "adam", width=1024, base_width=256, beta=3e-3, weight_decay_mode="independent")
    assert f"weight_decay_mode: {WORDS}; independent changes nothing" in rec.warnings


def test_theory_and_a_sweep_spec_say_it_in_the_same_words():
    from abcscale.runner.spec import SweepSpec
    from abcscale.schemas.theory import BaseConfig
    from abcscale.theory.transfer import transfer

    with pytest.raises(ValueError, match=f"^weight_decay: {WORDS}, coupled or independent"):
        transfer("mup", "adam", BaseConfig(width=64, beta=1e-3, weight_decay=0.1), 256)
    with pytest.raises(ValueError, match=f"constants.weight_decay: {WORDS}; sweep only sgd \\(its L2 term\\), adamw"):
        SweepSpec.model_validate({"widths": [16], "optimizers": ["adam"], "constants": {"weight_decay": 0.1}})


def test_a_tune_files_constants_at_their_defaults_count_in_both_faces_beside_a_fit(tmp_path):
    # a file at Adam's default epsilon (1e-8, per_layer) beside a fit whose runs trained at 1e-6 constant: the CLI
    # took the file's, Python dropped it as a default and took the runs' (hidden 3200x apart; a review)
    from abcscale.fitting.synthetic import synthetic_sweep

    df = synthetic_sweep(seed=0, exponent=0.0)
    df["parameterization"], df["optimizer"], df["lr_mode"] = "mup", "adam", "per_layer"
    df["epsilon"], df["epsilon_mode"] = 1e-6, "constant"
    table = tmp_path / "t.csv"
    df.to_csv(table, index=False)
    fit = abcscale.fit(table, n_boot=50)
    fit_path = tmp_path / "fit.json"
    fit_path.write_text(fit.model_dump_json())
    path = _file(tmp_path, "default.json", constants=Constants())
    cli = _json("--fit", str(fit_path), "--constants", path, "-n", "4096")
    python = abcscale.recommend(fit=fit, width=4096, constants=path)
    assert [s["epsilon"] for s in cli["layers"]] == pytest.approx([s.epsilon for s in python.layers], rel=1e-9)
    assert cli["epsilon_mode"] == python.epsilon_mode.value == "per_layer"
    # an SGD file's default epsilon is not "given" to SGD: no face says it changes nothing
    sgd = _file(tmp_path, "sgd.json", optimizer="sgd", optimizer_variant="sgd", constants=Constants())
    said = _json("--constants", sgd, "-n", "4096")["warnings"]
    assert not [w for w in said if w.startswith("epsilon")], said
