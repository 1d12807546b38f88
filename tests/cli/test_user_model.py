"""``abcscale sweep --model FILE:factory`` and ``coord-check --model ...`` on the example user model
(examples/user_model.py), at tiny size; a bad reference is exit 2 with one line naming ``--model``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from abcscale.cli import main

ROOT = Path(__file__).resolve().parents[2]
MODEL = "examples/user_model.py:factory"  # as a user types it, from the repository root
TINY = ["--depth", "1", "--steps", "6", "--batch", "4", "--seq-len", "8", "--data", "synthetic",
        "--eval-batches", "1", "--batching", "vmap", "--chunk", "4"]
COORD = ["--model", MODEL, "--depth", "1", "--widths", "16,32,64", "--steps", "3", "--batch", "8", "--seq-len", "16",
         "--json"]
#: the sweep's runs in coord-check's program (its 3 steps + 1, batch, data, 4 runs a call, constant LR, every step
#: recorded): the coordinate check below loads the sweep's compiled widths 16 and 32 and compiles only 64 (the file
#: went from 17.7 to 13.9 CPU-s cold, 2026-12-07)
AS_COORD = ["--depth", "1", "--steps", "4", "--batch", "8", "--seq-len", "16", "--eval-batches", "4",
            "--schedule", "constant", "--warmup", "0", "--coord-steps", "0,1,2,3", "--no-curves", "--batching", "vmap",
            "--chunk", "4"]


def _exit(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code


@pytest.fixture(autouse=True)
def _at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


@pytest.mark.e2e
def test_sweep_trains_the_example_user_model(tmp_path, capsys):
    out = tmp_path / "o"
    argv = ["sweep", "--model", MODEL, *AS_COORD, "-p", "mup", "--widths", "16,32", "--log2-lr", "-7:-4:1",
            "--out", str(out), "--json"]
    assert _exit(argv) == 0
    df = pd.read_parquet(out / "results.parquet")
    assert len(df) == 2 * 4 and (df["model"] == MODEL).all() and (df["form"] == "multiplier_free").all()
    assert not df["diverged"].any() and {"lr_vector", "epsilon_vector"} <= set(df.columns)
    assert json.loads(capsys.readouterr().out)["runs"] == len(df)
    coord = pd.read_parquet(out / "coord.parquet")
    assert {"tok_embed", "blocks.0.attn", "blocks.0.mlp", "logits"} == set(coord["layer"])


@pytest.mark.e2e
def test_coord_check_passes_the_user_model_under_mup_and_fails_it_under_sp_global(capsys):
    assert _exit(["coord-check", "-p", "mup", "-o", "adam", *COORD]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {v["layer"] for v in report["layers"]} == {"tok_embed", "blocks.0.attn", "blocks.0.mlp", "logits"}
    assert _exit(["coord-check", "-p", "standard", "-o", "adam", "--lr-mode", "global", *COORD]) == 1
    failed = {v["layer"] for v in json.loads(capsys.readouterr().out)["layers"] if not v["passed"]}
    assert {"blocks.0.attn", "blocks.0.mlp"} <= failed


@pytest.mark.parametrize(("model", "needle"), [
    ("no_such_pkg_xyz.models:factory", "cannot import 'no_such_pkg_xyz.models'"),
    ("examples/user_model.py:nope", "has no attribute 'nope'"),
    ("examples/missing.py:factory", "no such file: examples/missing.py"),
    ("examples/user_model.py", "factory reference"),
])
@pytest.mark.parametrize("command", ["sweep", "coord-check"])
def test_a_bad_model_reference_is_one_line_naming_model(command, model, needle, capsys, tmp_path):
    argv = (["sweep", "--out", str(tmp_path)] if command == "sweep" else ["coord-check", "-p", "mup", "-o", "adam"])
    assert _exit([*argv, "--model", model]) == 2
    err = capsys.readouterr().err
    assert "--model" in err and needle in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_factory_that_raises_or_returns_a_bad_result_is_exit_2(tmp_path, capsys):
    # the example refuses widths its head dim does not divide
    assert _exit(["sweep", "--out", str(tmp_path / "o"), "--model", MODEL, "--widths", "12"]) == 2
    err = capsys.readouterr().err
    assert "raised ValueError: width 12 is not a multiple" in err and len(err.strip().splitlines()) == 1
    bad = tmp_path / "bad.py"
    bad.write_text("def factory(width, depth, *, vocab, seq_len):\n    return {'shapes': {'w': (width, -1)}, "
                   "'apply': None}\n")
    assert _exit(["coord-check", "-p", "mup", "-o", "adam", "--model", f"{bad}:factory"]) == 2
    err = capsys.readouterr().err
    assert "--model" in err and "shapes: 'w'" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("attr", ["factory", "smile"])
def test_a_reference_is_printed_as_typed_not_as_an_emoji(tmp_path, capsys, attr):
    """rich turned ':factory:' in 'nosuch.py:factory: model: ...' into a factory emoji (session 31)."""
    ref = f"nosuch.py:{attr}"
    assert _exit(["sweep", "--model", ref, *TINY, "--widths", "16", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"--model {ref}: model: no such file" in err and err.isascii()
