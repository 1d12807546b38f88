"""Session 62, a review by a team on microsoft/mup (the recommend / mup path): a MuAdam sweep's fitted lr was read
as abcscale's beta under the default constants, silently (embedding and readout MuAdam lrs off by sqrt(base
width)); the line under a mup-form table gave the abc form's per-layer LRs; and `recommend --constants` refused
`abcscale mup import --json`'s output and its `constants` object (width and beta beside the constants)."""

from __future__ import annotations

import json
import math
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app
from tests.helpers import TOUR_TABLE, tour_fit

runner = CliRunner()
TABLE = TOUR_TABLE
GROUP = ["-p", "mup", "--lr-mode", "per_layer"]  # the tour's muP per-layer group: base width 32
MATRICES = ("embedding", "hidden", "readout")


def invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "400"})  # one warning, one line


def _words(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def fit_json(tmp_path_factory):
    return tour_fit(tmp_path_factory.mktemp("fit"))


def _import(tmp_path: Path, *args: str, name: str = "imp.json") -> Path:
    res = invoke("mup", "import", *args, "--json")
    assert res.exit_code == 0, res.output
    path = tmp_path / name
    path.write_text(res.stdout)
    return path


def _json(*args: str) -> dict:
    res = invoke(*args, "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _mup_lrs(rec: dict) -> dict[str, float]:
    return {r["role"]: r["mup_lr"] for r in rec["groups"]["roles"]}


def _notes(rec: dict) -> list[str]:
    return [w for w in rec["warnings"] if w.startswith("mup form: the MuAdam lrs")]


# finding 1: whose beta a mup-form answer from the default constants read, said


def test_a_mup_form_answer_from_the_default_constants_says_whose_beta_it_read(fit_json):
    rec = _json("recommend", "--fit", fit_json, "-n", "1024", *GROUP, "--form", "mup")
    beta, lrs = rec["beta"], _mup_lrs(rec)
    # abcscale's muP beta: embedding x sqrt(32), readout / sqrt(32) given to MuAdam (what its sweep, exported, needs)
    assert lrs["embedding"] == pytest.approx(beta * math.sqrt(32)) and lrs["hidden"] == pytest.approx(beta)
    assert lrs["readout"] == pytest.approx(beta / math.sqrt(32))
    [note] = _notes(rec)  # was: none, and the numbers read a MuAdam sweep's lr as abcscale's beta in silence
    assert f"read the fitted beta {beta:.4g} as abcscale's base LR under its default muP constants" in note
    assert ", ".join(f"{r} {lrs[r]:.4g}" for r in MATRICES) in note
    assert f"`abcscale mup import -o adam --base-width 32 --lr {beta:.4g} --init-std E,H,R`" in note
    assert note.endswith(f"and every group's MuAdam lr is {beta:.4g}")
    text = invoke("recommend", "--fit", fit_json, "-n", "1024", *GROUP, "--form", "mup")
    assert text.exit_code == 0 and _words(f"warning: {note}") in _words(text.stdout)
    torch = invoke("recommend", "--fit", fit_json, "-n", "1024", *GROUP, "--form", "mup", "--format", "torch")
    assert torch.exit_code == 0 and f"# warning: {note}" in torch.stdout.splitlines()
    # no mup_lr to misread: the abc and plain forms, and a global LR's answer (no MuAdam sweep is one) say nothing
    for form in ("abc", "plain"):
        assert not _notes(_json("recommend", "--fit", fit_json, "-n", "1024", *GROUP, "--form", form))
    assert not _notes(_json("recommend", "--fit", fit_json, "-n", "1024", "-p", "mup", "--lr-mode", "global",
                            "--form", "mup"))


def test_the_analytic_mup_form_says_it_of_base_lr_and_the_api_and_service_agree():
    args = ["recommend", "-p", "mup", "-o", "adam", "-n", "4096", "--base-width", "256", "--base-lr", "3e-3",
            "--form", "mup"]
    rec = _json(*args)
    [note] = _notes(rec)
    assert "read beta 0.003 as abcscale's base LR" in note and "if it was tuned with microsoft/mup" in note
    api = abcscale.recommend("mup", "adam", width=4096, base_width=256, beta=3e-3, form="mup")
    assert api.model_dump(mode="json") == rec  # one use case: the CLI, the API and the service say it alike
    from abcscale.schemas.api import AnalyticRecommend
    from abcscale.usecases.recommend import recommend_analytic  # what POST /v1/recommend answers with a base

    body = {"parameterization": "mup", "optimizer": "adam", "width": 4096, "form": "mup",
            "base": {"width": 256, "beta": 3e-3}}
    assert recommend_analytic(AnalyticRecommend.model_validate(body)).model_dump(mode="json") == rec
    # constants that set the lrs (the import's multipliers, as its `equivalent:` command gives them): no note
    given = _json(*args, "--multiplier", "0.0625,1,16", "--init-scale", "16,1,1")
    assert not _notes(given) and list(_mup_lrs(given).values()) == pytest.approx([3e-3] * 5)
    assert _notes(_json(*args, "--epsilon", "1e-6"))  # epsilon alone leaves the lrs' reading open


def test_following_the_note_gives_every_group_the_swept_lr(fit_json, tmp_path):
    note = _notes(_json("recommend", "--fit", fit_json, "-n", "1024", *GROUP, "--form", "mup"))[0]
    cmd = shlex.split(re.search(r"`(abcscale mup import [^`]*)`", note).group(1).replace("E,H,R", "0.02,0.02,0.02"))
    imp = _import(tmp_path, *cmd[3:])
    rec = _json("recommend", "--fit", fit_json, "-n", "1024", *GROUP, "--form", "mup", "--constants", str(imp))
    assert not _notes(rec)  # was: exit 2, "not a constants file from `abcscale tune`" and 20 fields
    lrs = _mup_lrs(rec)
    roles = (*MATRICES, "vector")
    assert {r: lrs[r] for r in roles} == pytest.approx(dict.fromkeys(roles, rec["beta"]))
    assert rec["groups"]["mup"]["init_std"] == pytest.approx(dict.fromkeys(MATRICES, 0.02))
    assert f"--constants: the beta {json.loads(imp.read_text())['constants']['beta']:g} in {imp} is not used; the " \
           "LR is the fit's" in rec["warnings"]
    # its `constants` object alone (the constants with width and beta beside them) reads the same
    obj = tmp_path / "imp-constants.json"
    obj.write_text(json.dumps(json.loads(imp.read_text())["constants"]))
    again = _json("recommend", "--fit", fit_json, "-n", "1024", *GROUP, "--form", "mup", "--constants", str(obj))
    assert again["groups"] == rec["groups"] and again["layers"] == rec["layers"]


# finding 2: the line under the band, in the table's form


def test_the_line_under_a_fitted_band_is_in_the_table_s_form(fit_json):
    for form, head, field in (("mup", "per-group MuAdam lrs from that beta (mup form, the table's MuAdam lr): ",
                               "mup_lr"),
                              ("plain", "per-group LRs from that beta (multiplier_free form, the table's learning "
                                        "rate): ", "lr")):
        args = ["recommend", "--fit", fit_json, "-n", "1024", *GROUP, "--form", form]
        rec, res = _json(*args), invoke(*args)
        roles = {r["role"]: r[field] for r in rec["groups"]["roles"]}
        want = head + ", ".join(f"{r} {roles[r]:.4g}" for r in MATRICES) + " (--json's layers and band.layer_lrs " \
                                                                            "are the abc form's)"
        assert _words(want) in _words(res.stdout), res.stdout  # was: the abc form's, 32x off the mup table's embedding
        assert "per-layer LRs from that beta" not in res.stdout
        assert rec["band"]["layer_lrs"] == {s["layer"]: s["lr"] for s in rec["layers"]}  # JSON: the abc form's
    rec = _json("recommend", "--fit", fit_json, "-n", "1024", *GROUP)
    res = invoke("recommend", "--fit", fit_json, "-n", "1024", *GROUP)
    assert _words("per-layer LRs from that beta: " + ", ".join(f"{s['layer']} {s['lr']:.4g}" for s in rec["layers"])
                  + "\n95% band") in _words(res.stdout)


# finding 3: --constants takes `mup import --json`'s document, and a constants object with width and beta


def test_mup_import_json_gives_base_width_beta_and_setup_without_a_fit(tmp_path):
    imp = _import(tmp_path, "-o", "adam", "--base-width", "256", "--lr", "3e-3", "--init-std", "1,0.0625,0.0625")
    cmd = shlex.split(json.loads(imp.read_text())["command"])[1:]
    cmd[cmd.index("--width") + 1] = "4096"
    want = _json(*cmd, "--form", "mup")  # the import's own equivalent command, at 4096
    got = _json("recommend", "-n", "4096", "--constants", str(imp), "--form", "mup")  # was: exit 2
    assert (got["base_width"], got["beta"], got["parameterization"], got["optimizer"]) == (256, 3e-3, "mup", "adam")
    assert got["layers"] == want["layers"] and got["groups"] == want["groups"]
    assert got["warnings"] == want["warnings"] and not _notes(got)
    other = _json("recommend", "-n", "4096", "--constants", str(imp), "--base-lr", "6e-3")  # another beta: a choice
    assert other["beta"] == 6e-3 and other["base_width"] == 256
    for flags, said in ((["--base-width", "128"], "error: --base-width: the constants in {p} hold at base width 256 "
                                                  "(its width), not 128; drop --base-width (the file gives it) or "
                                                  "give constants for base width 128"),
                        (["-o", "sgd"], "error: -o: the constants in {p} are microsoft/mup's adam setup as mup "
                                        "(`abcscale mup import`), not sgd; drop -o (the file gives it) or import "
                                        "the setup you train"),
                        (["--epsilon", "1e-6"], "error: --epsilon: given by the flag and in --constants {p}; drop "
                                                "one (import again with the value you want, or edit it in the "
                                                "file's constants)")):  # session 63: the way out said
        res = invoke("recommend", "-n", "4096", "--constants", str(imp), *flags)
        assert res.exit_code == 2 and _words(res.output) == said.format(p=imp), res.output
    as_yaml = tmp_path / "imp.yaml"  # JSON is YAML: saved under that name it reads the same
    as_yaml.write_text(imp.read_text())
    assert _json("recommend", "-n", "4096", "--constants", str(as_yaml), "--form", "mup")["groups"] == got["groups"]


def test_a_constants_object_with_width_and_beta_is_a_base_and_needs_both(tmp_path):
    obj = tmp_path / "c.yaml"
    obj.write_text("multiplier: {embedding: 0.0625, hidden: 1, readout: 16}\nwidth: 256\nbeta: 3.0e-3\n")
    got = _json("recommend", "-p", "mup", "-o", "adam", "-n", "4096", "--constants", str(obj))  # was: "width: Extra"
    want = _json("recommend", "-p", "mup", "-o", "adam", "-n", "4096", "--base-width", "256", "--base-lr", "3e-3",
                 "--multiplier", "0.0625,1,16")
    assert got == want
    obj.write_text("multiplier: {embedding: 0.0625, hidden: 1, readout: 16}\nwidth: 256\n")
    res = invoke("recommend", "-p", "mup", "-o", "adam", "-n", "4096", "--base-lr", "3e-3", "--constants", str(obj))
    assert res.exit_code == 2 and _words(res.output) == (
        f"error: --constants: {obj}: width without beta: a constants object gives the base width and beta together "
        "beside the constants (width: the base width they hold at, beta: the LR tuned there; as `abcscale mup "
        "import --json` writes them), or neither")
    obj.write_text("constants: {multiplier: {embedding: 0.0625, hidden: 1, readout: 16}}\nwidth: 256\nbeta: 3.0e-3\n")
    res = invoke("recommend", "-p", "mup", "-o", "adam", "-n", "4096", "--constants", str(obj))
    assert res.exit_code == 2 and "width (the base width they hold at) beside the `constants` table: put it inside " \
                                  "it" in _words(res.output)


def test_with_a_fit_the_import_must_be_at_its_base_width_and_of_its_optimizer(fit_json, tmp_path):
    wide = _import(tmp_path, "-o", "adam", "--base-width", "64", "--lr", "1e-2", name="wide.json")
    res = invoke("recommend", "--fit", fit_json, "-n", "1024", *GROUP, "--constants", str(wide))
    assert res.exit_code == 2 and _words(res.output) == (
        f"error: --constants: {wide} holds constants for base width 64 (its width), the fit's base width is 32: "
        "give constants for 32, or drop --fit")
    sgd = _import(tmp_path, "-o", "sgd", "--base-width", "32", "--lr", "1e-2", name="sgd.json")
    res = invoke("recommend", "--fit", fit_json, "-n", "1024", *GROUP, "--constants", str(sgd))
    assert res.exit_code == 2 and _words(res.output) == (
        f"error: --constants: {sgd} holds microsoft/mup's sgd setup as mup constants (`abcscale mup import -o sgd`); "
        "the fit's group is mup + adam: import the setup the sweep ran, or select its group with -p and -o")


def test_read_constants_keeps_its_contract_and_the_document_reader_reads_the_base(tmp_path):
    from abcscale.usecases.recommend import read_constants, read_constants_document

    imp = _import(tmp_path, "-o", "adam", "--base-width", "32", "--lr", "1e-2")
    doc = read_constants_document(imp)
    assert doc is not None and doc.mup_import is not None and doc.base is not None
    assert (doc.base.width, doc.base.beta, doc.mup_import.setup.optimizer.value) == (32, 1e-2, "adam")
    with pytest.raises(ValueError, match=r"base width 32 and beta 0\.01 its constants hold at, which constants "
                                         r"alone would drop: give them as a BaseConfig"):
        read_constants(imp)  # the Python API's reader: it would have dropped them (the base width then unchecked)


def test_mup_import_says_how_a_fit_of_its_sweep_takes_it():
    res = invoke("mup", "import", "-o", "adam", "--base-width", "128", "--lr", "2e-3")
    assert res.exit_code == 0
    assert ("a fit of a sweep of this setup (MuAdam's one lr swept; fit it with --lr-mode per_layer): save this with "
            "--json and give it as `abcscale recommend --fit FIT --width N --constants FILE`") in _words(res.stdout)
    per_group = invoke("mup", "import", "-o", "adam", "--base-width", "128", "--lr", "1e-3,2e-3,3e-3,1e-3")
    assert per_group.exit_code == 0 and "a fit of a sweep" not in per_group.stdout  # no one lr was swept


def test_base_lr_over_an_imports_beta_is_taken_and_said(tmp_path):
    # a code review: taken silently (a tune file's override is said; the Python API refuses it)
    imp = _import(tmp_path, "-o", "adam", "--base-width", "256", "--lr", "3e-3")
    same = _json("recommend", "--constants", str(imp), "-n", "1024")
    other = _json("recommend", "--constants", str(imp), "-n", "1024", "--base-lr", "1e-3")
    assert other["beta"] == 1e-3 and same["beta"] == 3e-3
    said = [w for w in other["warnings"] if w.startswith("--base-lr: 0.001 replaces the beta 0.003")]
    assert len(said) == 1 and "0.333x the file's transfer" in said[0]
    assert not [w for w in same["warnings"] if "replaces the beta" in w]
    again = _json("recommend", "--constants", str(imp), "-n", "1024", "--base-lr", "3e-3")
    assert not [w for w in again["warnings"] if "replaces the beta" in w]
