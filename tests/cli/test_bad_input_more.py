"""CLI inputs a bad-input hunt found ending in a traceback, a poisoned output folder, a lost file or a flag
silently ignored (session 29). Each now exits 2 naming the flag, before any training where it can."""

from __future__ import annotations

import json

import pytest

from abcscale.cli import main
from abcscale.runner.spec import MAX_GRID, SweepSpec, parse_lr_grid

TINY = ["-q", "--steps", "2", "--batch", "2", "--seq-len", "4", "--head-dim", "4", "--depth", "1", "--data",
        "synthetic"]


def _exit(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code or 0


def _one_line_error(capsys, flag: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"error: {flag}") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(("grid", "needle"), [
    ("nan", "finite"), ("-6,nan", "finite"), ("1e400", "finite"), ("-4:inf:1", "finite"), ("nan:0:1", "finite"),
    ("-4:-2:0.00001", f"at most {MAX_GRID}"), ("2000", "within +-1000"),
])
def test_a_learning_rate_grid_that_is_not_finite_is_refused_before_anything_is_written(grid, needle, capsys,
                                                                                          tmp_path):
    # "nan" was a 0-run sweep whose spec.json held null, and every later sweep into the folder a traceback
    out = tmp_path / "sw"
    assert _exit(["sweep", *TINY, "--widths", "8,16", "--out", str(out), f"--log2-lr={grid}"]) == 2
    assert needle in _one_line_error(capsys, "--log2-lr")
    assert not out.exists()


def test_the_grid_parser_keeps_what_it_took():
    assert parse_lr_grid("-6:-4:1") == [-6.0, -5.0, -4.0]
    assert parse_lr_grid("-6,-4.5") == [-6.0, -4.5]
    assert parse_lr_grid(-3) == [-3.0]
    assert len(parse_lr_grid(f"0:{MAX_GRID - 1}:1")) == MAX_GRID
    with pytest.raises(ValueError, match="numbers"):
        parse_lr_grid([None])  # a spec.json written with a NaN (null) by an earlier version


@pytest.mark.parametrize(("argv", "flag"), [
    (["sweep", "--widths", "8,100000000000000000000"], "--widths"),
    (["sweep", "--widths", "8,16", "--weight-decay", "inf"], "--weight-decay"),
    (["sweep", "--widths", "8,16", "--divergence-factor", "inf"], "--divergence-factor"),
    (["sweep", "--widths", "8,16", "--coord-steps=-1,99"], "--coord-steps"),
    (["coord-check", "-p", "mup", "-o", "adam", "--widths", "8,100000000000000000000"], "--widths"),
])
def test_numbers_out_of_range_exit_2_naming_the_flag(argv, flag, capsys, tmp_path):
    extra = ["--out", str(tmp_path / "o"), "--log2-lr=-6"] if argv[0] == "sweep" else []
    assert _exit([argv[0], *TINY, *argv[1:], *extra]) == 2
    _one_line_error(capsys, flag)


def test_coord_steps_must_be_steps_of_the_run():
    with pytest.raises(ValueError, match="99 is not a step of a 10-step run"):
        SweepSpec(steps=10, coord_steps=[0, 99])
    assert SweepSpec(steps=10, coord_steps=[0, 9]).coord_steps == [0, 9]


def test_coord_check_plots_into_a_file_exits_2_before_training(capsys, tmp_path):
    # it trained, then crashed with FileExistsError and exit 1: the check's own "activations grow" status
    blocker = tmp_path / "existing.txt"
    blocker.write_text("mine")
    argv = ["coord-check", "-p", "mup", "-o", "adam", *TINY, "--widths", "8,16", "--plots", str(blocker / "sub")]
    assert _exit(argv) == 2
    assert "--plots: cannot write into" in _one_line_error(capsys, "--plots")
    assert blocker.read_text() == "mine"


@pytest.fixture
def constants_file(tmp_path):
    from abcscale.usecases.tune import save_constants
    from tests.usecases.test_tune import _tuned

    return save_constants(_tuned(), tmp_path / "t.json")


def test_recommend_honours_an_epsilon_mode_typed_beside_a_constants_file(constants_file, capsys):
    # the flag was silently ignored: the file's per-layer epsilons came back unchanged
    assert _exit(["recommend", "-n", "256", "--constants", str(constants_file), "--json"]) == 0
    own = json.loads(capsys.readouterr().out)
    assert _exit(["recommend", "-n", "256", "--constants", str(constants_file), "--epsilon-mode", "constant",
                  "--json"]) == 0
    constant = json.loads(capsys.readouterr().out)
    eps = {x["layer"]: x["epsilon"] for x in constant["layers"]}
    assert len(set(eps.values())) == 1  # one epsilon for every layer
    assert eps != {x["layer"]: x["epsilon"] for x in own["layers"]}


@pytest.mark.parametrize("case", ["not-constants", "other-setup", "no-folder", "bad-verify"])
def test_tune_refuses_its_out_and_verify_widths_before_the_search(case, constants_file, capsys, tmp_path):
    pytest.importorskip("optuna")
    argv = ["tune", *TINY, "--base-width", "16", "--trials", "1", "--reeval-seeds", "2", "--top", "1"]
    if case == "not-constants":
        out = tmp_path / "notes.txt"
        out.write_text("mine")
        argv += ["--out", str(out)]
    elif case == "other-setup":  # the file holds another setup's constants
        out = constants_file
        before = out.read_text()
        argv += ["--out", str(out), "-p", "sp", "--base-width", "8"]
    elif case == "no-folder":
        argv += ["--out", str(tmp_path / "missing" / "t.json")]
    else:
        argv += ["--out", str(tmp_path / "new.json"), "--verify-widths", "foo"]
    assert _exit(argv) == 2
    err = _one_line_error(capsys, "--verify-widths" if case == "bad-verify" else "--out")
    if case == "not-constants":
        assert (tmp_path / "notes.txt").read_text() == "mine" and "not a constants file" in err
    elif case == "other-setup":
        assert out.read_text() == before and "give another one" in err
    elif case == "bad-verify":
        assert not (tmp_path / "new.json").exists()  # refused before the search, not after it


@pytest.mark.parametrize("argv", [["serve", "--host", "999.1.1.1", "--port", "0"],
                                  ["demo", "--quick", "--host", "999.1.1.1", "--port", "0"]])
def test_a_host_that_does_not_resolve_exits_2_naming_host(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _exit(argv) == 2
    _one_line_error(capsys, "--host")
    assert not (tmp_path / "abcscale-demo").exists()  # the demo stopped before its sweep


def test_serve_does_not_print_the_database_password(capsys):
    assert _exit(["serve", "--db", "postgresql://u:sekrit-pw@127.0.0.1:1/db", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --db: cannot open") and "sekrit-pw" not in err and "***" in err


@pytest.mark.parametrize("content", [b"not numpy at all", b""])
def test_a_bad_npy_data_file_names_the_file_not_numpy(content, capsys, tmp_path):
    bad = tmp_path / "tokens.npy"
    bad.write_bytes(content)
    assert _exit(["sweep", *TINY, "--widths", "8,16", "--log2-lr=-6", "--out", str(tmp_path / "o"), "--data",
                  str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "pickle" not in err.lower()


def test_flags_can_make_a_spec_file_valid_and_an_invalid_file_is_still_named(capsys, tmp_path):
    # "flags override these keys": the file was checked alone first, so --head-dim could not fix its widths
    spec = tmp_path / "s.toml"
    # one width, not 8 and 16: the default head_dim 16 does not divide it either, and a transformer compiles once
    spec.write_text("[sweep]\nwidths = [8]\nepsilon = 1e-6\n")
    out = tmp_path / "o"
    assert _exit(["sweep", str(spec), *TINY, "--log2-lr=-6", "--epsilon", "1e-7", "--out", str(out)]) == 0
    saved = json.loads((out / "spec.json").read_text())
    assert saved["widths"] == [8] and saved["head_dim"] == 4 and saved["constants"]["epsilon"] == 1e-7
    capsys.readouterr()
    bad = tmp_path / "bad.toml"
    bad.write_text("[sweep]\nwidths = [8, 16]\nhead_dim = 16\n")
    no_head_dim = ["-q", "--steps", "2", "--batch", "2", "--seq-len", "4", "--depth", "1", "--data", "synthetic"]
    assert _exit(["sweep", str(bad), *no_head_dim, "--log2-lr=-6", "--out", str(tmp_path / "o2")]) == 2
    assert f"{bad}: head_dim: 16 must divide every width" in capsys.readouterr().err
    assert _exit(["sweep", str(tmp_path), *TINY]) == 2
    _one_line_error(capsys, "SPEC:")


@pytest.mark.parametrize(("argv", "flag"), [
    (["recommend", "-n", "256", "-p", "mup", "-o", "adam", "--base-width", "64", "--base-lr", "0.01", "--strict"],
     "--strict"),
    (["sweep", *TINY, "--widths", "8,16", "--log2-lr=-6", "--address", "ray://nowhere:1"], "--address"),
])
def test_a_flag_that_would_be_ignored_exits_2(argv, flag, capsys, tmp_path):
    if argv[0] == "sweep":
        argv = [*argv, "--out", str(tmp_path / "o")]
    assert _exit(argv) == 2
    _one_line_error(capsys, flag)


@pytest.mark.parametrize(("argv", "expected"), [
    (["recommend", "-n", "256", "-p", "mup", "-o", "adam", "--base-width", "64", "--base-lr", "nan"],
     "error: --base-lr: Input should be a finite number\n"),  # it said "less than or equal to 1e30"
    (["recommend", "-n", "256", "-p", "mup", "-o", "adam", "--base-width", "64", "--base-lr", "0.01", "--gamma",
      "nan,1,1"], "error: --gamma (embedding): Input should be a finite number\n"),
    (["mup", "import", "-o", "adam", "--base-width", "64", "--width", "1024", "--lr", "nan"],
     "error: --lr: Input should be a finite number\n"),  # and "--lr (dict[str-enum[Role],...]): ..." beside it
    (["mup", "import", "-o", "adam", "--base-width", "64", "--width", "1024", "--lr", "0.01", "--init-std", "0,1,1"],
     "error: --init-std (embedding): Input should be greater than or equal to 1e-10\n"),
])
def test_messages_give_the_reason_that_applies(argv, expected, capsys):
    assert _exit(argv) == 2
    assert capsys.readouterr().err == expected


def test_an_empty_spec_file_or_an_out_under_a_file_exits_2(capsys, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert _exit(["sweep", str(empty), *TINY]) == 2
    assert "sets no keys" in _one_line_error(capsys, "SPEC:")  # it started the default sweep into ./sweep-out
    blocker = tmp_path / "existing.txt"
    blocker.write_text("mine")
    assert _exit(["sweep", *TINY, "--widths", "8,16", "--log2-lr=-6", "--out", str(blocker / "sub")]) == 2
    _one_line_error(capsys, "--out")


@pytest.mark.parametrize(("argv", "flag"), [
    (["tune", "--seed", "-1"], "--seed"),  # it said Optuna's "Seed must be between 0 and 2**32 - 1"
    (["recommend", "-n", "256", "-p", "mup", "-o", "adam", "--base-width", "64", "--base-lr", "0.01",
      "--weight-decay", "0.1"], "--weight-decay"),  # it said "weight_decay: adam has ..."
])
def test_errors_from_deeper_layers_name_the_flag(argv, flag, capsys, tmp_path):
    if argv[0] == "tune":
        pytest.importorskip("optuna")
        argv = [*argv, *TINY, "--base-width", "8", "--trials", "1", "--out", str(tmp_path / "t.json")]
    assert _exit(argv) == 2
    _one_line_error(capsys, flag)


@pytest.mark.parametrize("extra, flag", [(["--base-width", "32"], "--base-width"), (["-p", "sp"], "-p"),
                                         (["-o", "sgd"], "-o"), (["-a", "none"], "-a")])
def test_recommend_refuses_a_setup_other_than_the_constants_files(constants_file, capsys, extra, flag):
    """The flag silently replaced the file's value (session 31): tuned at 64 and given --base-width 32, the hidden
    LR came out doubled. The constants belong to the setup and base width they were tuned at."""
    assert _exit(["recommend", "-n", "256", "--constants", str(constants_file), *extra]) == 2
    assert "were tuned for" in _one_line_error(capsys, flag)
    # the file's own values typed again are fine, and so is another base LR (a choice, not a mismatch)
    assert _exit(["recommend", "-n", "256", "--constants", str(constants_file), "-p", "mup", "-o", "adam",
                  "--base-width", "64", "-a", "full", "--base-lr", "1e-3", "--json"]) == 0
