"""Session 66: a review of the same question asked of the Python API and the CLI (the REST half is
tests/service/test_consistency_s66.py).

A weight decay beside a tune file was taken in silence by the CLI and refused by the Python API, and a decay mode
alone was taken by both, reading the tuned number as another decay (a coupled 0.1 read as independent: ~300x a
step), or refused by Python only where the file's value was not a default. The Python API had no `strict` gate for a
fitted answer (the CLI exits 1, REST answers 422); the CLI said "unable to parse string as an integer" for
`--width 4096.5`, where Python and REST say "expected an integer width, got 4096.5"; and its band-method line said
95% for a fit at any level."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app
from abcscale.fitting import fit_table
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.usecases.tune import save_constants
from tests.usecases.test_tune import _tuned

runner = CliRunner()
WIDE = {"COLUMNS": "300"}
MUP = {"parameterization": "mup", "optimizer": "adam", "alignment": "full", "lr_mode": "per_layer"}


def _cli(*args: str):
    return runner.invoke(app, list(args), env=WIDE)


def _json(*args: str) -> dict:
    res = _cli(*args, "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def tuned_file(tmp_path_factory):
    """Tune files of adamw with a tuned decay 0.05, coupled (the default mode) and independent."""
    folder = tmp_path_factory.mktemp("tuned")
    base = _tuned().model_dump(mode="json")

    def write(mode: str):
        data = {**base, "optimizer": "adamw", "optimizer_variant": "adamw",
                "constants": {**base["constants"], "weight_decay": 0.05, "weight_decay_mode": mode}}
        return str(save_constants(type(_tuned()).model_validate(data), folder / f"tuned_{mode}.json"))

    return {"coupled": write("coupled"), "independent": write("independent")}


def _decays(layers) -> list[float]:
    return [s["weight_decay"] if isinstance(s, dict) else s.weight_decay for s in layers]


def _decay_note(warnings: list[str]) -> str:
    (note,) = [w for w in warnings if "replaces the weight decay" in w]
    return note


# --- 2. a weight decay and its mode beside a tune file: the same rule in both faces ---------------------------


@pytest.mark.parametrize("mode", ["coupled", "independent"])
def test_a_weight_decay_beside_a_tune_file_replaces_it_with_a_note(tuned_file, mode):
    path = tuned_file[mode]
    cli = _json("recommend", "--constants", path, "-n", "1024", "--weight-decay", "0.2")
    python = abcscale.recommend(width=1024, constants=path, weight_decay=0.2)
    assert _decays(cli["layers"]) == _decays(python.layers)
    assert cli["weight_decay_mode"] == python.weight_decay_mode == mode  # the file's mode holds unless typed
    plain = _json("recommend", "--constants", path, "-n", "1024")
    assert _decays(cli["layers"]) == pytest.approx([4 * d for d in _decays(plain["layers"])])
    for note, name in ((_decay_note(cli["warnings"]), "--weight-decay"),
                       (_decay_note(python.warnings), "weight_decay")):
        assert note.startswith(f"{name}: 0.2 ({mode}) replaces the weight decay 0.05 ({mode}) tuned in {path} "
                               "jointly with its beta")
        assert f"drop {name} to use the file's" in note
    # the table prints it too
    assert "replaces the weight decay 0.05" in " ".join(_cli("recommend", "--constants", path, "-n", "1024",
                                                             "--weight-decay", "0.2").stdout.split())
    # the file's own value, given again: nothing replaced, nothing said
    same = abcscale.recommend(width=1024, constants=path, weight_decay=0.05, weight_decay_mode=mode)
    assert not [w for w in same.warnings if "replaces the weight decay" in w]
    assert not [w for w in _json("recommend", "--constants", path, "-n", "1024", "--weight-decay", "0.05")[
        "warnings"] if "replaces the weight decay" in w]


@pytest.mark.parametrize("mode", ["coupled", "independent"])
def test_a_decay_mode_alone_beside_a_tune_file_is_refused(tuned_file, mode):
    other = {"coupled": "independent", "independent": "coupled"}[mode]
    path = tuned_file[mode]
    res = _cli("recommend", "--constants", path, "-n", "1024", "--weight-decay-mode", other)
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith(f"error: --weight-decay-mode: the weight decay 0.05 in {path} was tuned {mode}")
    assert "give the decay for" in res.stderr and res.stderr.count("\n") == 1
    with pytest.raises(ValueError, match=rf"^weight_decay_mode: the weight decay 0.05 in {re.escape(path)} was tuned "
                                         rf"{mode}: .* give the decay for {other} with weight_decay too"):
        abcscale.recommend(width=1024, constants=path, weight_decay_mode=other)
    # the file's own mode said again is no change
    assert _json("recommend", "--constants", path, "-n", "1024", "--weight-decay-mode", mode)["layers"] == \
        json.loads(abcscale.recommend(width=1024, constants=path, weight_decay_mode=mode).model_dump_json())["layers"]
    # with a decay for the mode given, both are taken, and said
    cli = _json("recommend", "--constants", path, "-n", "1024", "--weight-decay", "1e-4", "--weight-decay-mode", other)
    python = abcscale.recommend(width=1024, constants=path, weight_decay=1e-4, weight_decay_mode=other)
    assert cli["weight_decay_mode"] == python.weight_decay_mode == other
    assert _decays(cli["layers"]) == _decays(python.layers)
    assert f"0.0001 ({other}) replaces the weight decay 0.05 ({mode})" in _decay_note(python.warnings)
    assert f"0.0001 ({other}) replaces the weight decay 0.05 ({mode})" in _decay_note(cli["warnings"])


def test_a_mup_import_s_decay_is_still_given_once(tmp_path):
    """A `mup import` document's decay is the user's own MuAdamW setting, not a tuned one: both faces keep refusing a
    second one beside it, naming how to change it (the decision of this review: unchanged)."""
    res = _cli("mup", "import", "-o", "adamw", "--base-width", "256", "--lr", "3e-3", "--weight-decay", "0.1",
               "--json")
    assert res.exit_code == 0, res.output
    path = tmp_path / "import.json"
    path.write_text(res.stdout)
    cli = _cli("recommend", "--constants", str(path), "-n", "1024", "--weight-decay", "0.2")
    assert cli.exit_code == 2 and "--weight-decay: given by the flag and in --constants" in cli.stderr
    with pytest.raises(ValueError, match="^weight_decay: give it as a keyword or in `constants`, not both"):
        abcscale.recommend(width=1024, constants=str(path), weight_decay=0.2)


# --- 7. strict for a fitted answer in the Python API ------------------------------------------------------------


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fits")
    out = {}
    for name, widths, level in (("two", (64, 128), 0.95), ("three", (32, 64, 128), 0.95),
                                ("eighty", (32, 64, 128), 0.8)):
        fit = fit_table(synthetic_sweep(widths=widths, group=MUP, exponent=0.0, seed=4), n_boot=50,
                        confidence_level=level)
        (folder / f"{name}.json").write_text(fit.model_dump_json())
        out[name] = str(folder / f"{name}.json")
    return out


def test_strict_refuses_an_unreliable_fitted_answer_as_the_cli_does(fits):
    reasons = _json("recommend", "--fit", fits["two"], "-n", "512")["band"]["unreliable"]
    assert reasons and any("from 2 widths" in r for r in reasons)
    assert _cli("recommend", "--fit", fits["two"], "-n", "512", "--strict").exit_code == 1
    for call in (lambda: abcscale.recommend(fit=fits["two"], width=512, strict=True),
                 lambda: abcscale.recommend_from_fit(fits["two"], 512, strict=True)):
        with pytest.raises(ValueError) as raised:
            call()
        assert str(raised.value) == "strict: unreliable prediction: " + "; ".join(reasons)
    # without strict the answer is given, its reasons in band.unreliable; a reliable band passes the gate
    assert abcscale.recommend(fit=fits["two"], width=512).band.unreliable == reasons
    assert abcscale.recommend(fit=fits["three"], width=512, strict=True).band.unreliable == []
    assert abcscale.recommend_from_fit(fits["three"], 512, strict=True).band.unreliable == []
    # an analytic answer has no band: a gate that always passed is refused, as --strict without --fit is
    with pytest.raises(ValueError, match="^strict: it checks a fitted prediction; give fit"):
        abcscale.recommend("mup", "adam", width=1024, base_width=256, beta=3e-3, strict=True)
    assert _cli("recommend", "-p", "mup", "-o", "adam", "-n", "1024", "--base-width", "256", "--base-lr", "3e-3",
                "--strict").exit_code == 2
    assert "strict" in abcscale.recommend.__doc__ and "strict" in abcscale.recommend_from_fit.__doc__


# --- 8. the CLI's words: a fractional width, the band's level ---------------------------------------------------


@pytest.mark.parametrize("command", [
    ["recommend", "-p", "mup", "-o", "adam", "--base-width", "256", "--base-lr", "3e-3"],
    ["mup", "export", "-o", "adam", "--base-width", "256", "--base-lr", "3e-3"],
])
def test_a_fractional_width_is_said_as_python_and_rest_say_it(command):
    res = _cli(*command, "-n", "4096.5")
    assert res.exit_code == 2
    assert "expected an integer width, got 4096.5" in res.stderr and "unable to parse" not in res.stderr
    with pytest.raises(ValueError, match="expected an integer width, got 4096.5"):
        abcscale.recommend("mup", "adam", width=4096.5, base_width=256, beta=3e-3)
    # a whole number written as a float is that number; text is still no number
    assert _cli(*command, "-n", "4096.0").exit_code == 0
    assert _cli(*command, "-n", "4e3").exit_code == 0
    wide = _cli(*command, "-n", "wide")
    assert wide.exit_code == 2 and "valid integer" in wide.stderr


def test_the_band_method_line_says_the_fit_s_level(fits):
    text = " ".join(_cli("recommend", "--fit", fits["eighty"], "-n", "512").stdout.split())
    assert "80% [" in text  # the band line
    assert "80% band (the fit's level; the 68% and 95% bands too) from theory prior on the exponent" in text
    assert "95% band from" not in text
    # at the default level the line is as before
    default = " ".join(_cli("recommend", "--fit", fits["three"], "-n", "512").stdout.split())
    assert "95% band from theory prior on the exponent" in default
