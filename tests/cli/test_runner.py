"""``abcscale sweep`` and ``abcscale coord-check``: exit codes 0 / 1 / 2, the files they write, their JSON."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest

from abcscale.cli import main

TINY = ["--model", "mlp", "--depth", "1", "--steps", "8", "--batch", "4", "--seq-len", "8", "--data", "synthetic",
        "--eval-batches", "2", "--batching", "vmap", "--chunk", "4"]
COORD = ["--model", "mlp", "--widths", "16,32,64", "--steps", "3", "--batch", "8", "--seq-len", "16"]
# both coordinate checks train 3 seeds a width: the second loads the first's compiled programs (the failing one
# took 1.9 CPU-s with its default 4 seeds, 0.4 with 3; 2026-12-07)


def _exit(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code


@pytest.mark.e2e
def test_sweep_from_flags_writes_results_and_its_summary_as_json(tmp_path, capsys):
    out = tmp_path / "o"
    argv = ["sweep", *TINY, "-p", "sp,mup", "--widths", "8,16", "--log2-lr", "-6:-2:2", "--out", str(out), "--json"]
    assert _exit(argv) == 0
    df = pd.read_parquet(out / "results.parquet")
    assert len(df) == 2 * 2 * 3
    assert set(df["parameterization"]) == {"standard", "mup"}
    summary = json.loads(capsys.readouterr().out)  # progress went to stderr: stdout is JSON only
    assert summary["runs"] == len(df) and summary["results"] == str(out / "results.parquet")
    assert {(b["parameterization"], b["width"]) for b in summary["best"]} == {
        (p, w) for p in ("standard", "mup") for w in (8, 16)}
    for b in summary["best"]:
        rows = df[(df["parameterization"] == b["parameterization"]) & (df["width"] == b["width"]) & ~df["diverged"]]
        assert b["log2_lr"] == rows.loc[rows["eval_loss"].idxmin(), "log2_lr"]  # one seed: the best run's LR


@pytest.mark.e2e
def test_sweep_from_toml_with_flag_override_and_quiet(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text('model = "mlp"\nwidths = [8]\nlog2_lr = [-5.0]\nsteps = 8\nbatch = 4\nseq_len = 8\n'
                    'data = "synthetic"\ndepth = 1\neval_batches = 2\n')
    assert _exit(["sweep", str(spec), "--seeds", "2", "--out", str(tmp_path / "o"), "--quiet"]) == 0
    assert sorted(pd.read_parquet(tmp_path / "o" / "results.parquet")["seed"]) == [0, 1]
    out = capsys.readouterr().out  # --quiet silences the progress, not the answer
    assert "best learning rate per width" in out and f"2 runs -> {tmp_path / 'o' / 'results.parquet'}" in out
    assert " already in " not in out  # nothing was there before
    # a third seed: one run trained, two reused, said (a rerun said neither: session 82's review)
    assert _exit(["sweep", str(spec), "--seeds", "3", "--out", str(tmp_path / "o"), "--quiet"]) == 0
    assert f"1 trained, 2 already in {tmp_path / 'o'}" in capsys.readouterr().out
    assert _exit(["sweep", str(spec), "--seeds", "3", "--out", str(tmp_path / "o"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["runs"], summary["trained"], summary["reused"]) == (3, 0, 3)


@pytest.mark.parametrize(("argv", "needle"), [
    (["sweep", "--steps", "0"], "--steps"),
    (["sweep", "--optimizer", "sophia"], "--optimizer"),
    (["sweep", "--log2-lr", "-4:-12:1"], "--log2-lr"),
    (["sweep", "--data", "/no/such/file.txt", "--model", "mlp"], "data"),
    (["sweep", "--executor", "slurm"], "--executor"),
    (["sweep", "missing.toml"], "missing.toml"),
    (["coord-check", "-p", "mup", "-o", "adam", "--widths", "32"], "--widths"),
    (["coord-check", "-p", "nope", "-o", "adam"], "--parameterization"),
    (["coord-check", "-p", "mup", "-o", "adam", "--lr-exponents", "1,2"], "--lr-exponents"),
    (["coord-check", "-p", "mup", "-o", "adam", "--log2-base-lr", "-8:-4:2"], "--log2-base-lr"),
    (["coord-check", "-p", "mup", "-o", "adam", "--max-slope", "0"], "--max-slope"),
])
def test_bad_input_exits_2_naming_the_field(argv, needle, capsys, tmp_path):
    assert _exit([*argv, "--out", str(tmp_path)] if argv[0] == "sweep" else argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


@pytest.mark.parametrize(("variable", "value"), [("ABCSCALE_XLA_FUSION_EMITTERS", "maybe"),
                                                  ("ABCSCALE_XLA_OPT_LEVEL", "fast"), ("ABCSCALE_XLA_OPT_LEVEL", "7"),
                                                  ("ABCSCALE_RUN_THREADS", "two"), ("ABCSCALE_RUN_THREADS", "0")])
def test_a_bad_runner_setting_exits_2_at_once_naming_it(tmp_path, capsys, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    argv = ["sweep", "--model", "mlp", "--widths", "8", "--log2-lr=-5", "--steps", "2", "--batch", "2",
            "--seq-len", "8", "--depth", "1", "--data", "synthetic", "--out", str(tmp_path), "-q"]
    t0 = time.perf_counter()
    assert _exit(argv) == 2
    # at once: the compile thread failed before tracing, and the sweep used to wait 60 s for its trace
    assert time.perf_counter() - t0 < 20
    err = capsys.readouterr().err
    assert variable in err and repr(value) in err and "Traceback" not in err


@pytest.mark.e2e
def test_coord_check_passes_mup_adam(tmp_path, capsys):
    assert _exit(["coord-check", "-p", "mup", "-o", "adam", *COORD, "--seeds", "3", "--plots", str(tmp_path / "p"),
                  "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # what was checked travels with the verdict (session 31): a CI log says which setup passed
    assert report["setup"] | {"model": None} == {"parameterization": "mup", "optimizer": "adam", "alignment": "full",
                                                 "lr_mode": "per_layer", "log2_base_lr": -6.0, "lr_exponents": None,
                                                 "steps": 3, "seeds": 3, "model": None}
    assert report["max_slope"] == 0.25 and all(v["worst_slope"] <= 0.25 for v in report["layers"])
    assert report["passed"] and {v["layer"] for v in report["layers"]} == {"embed", "hidden0", "hidden1", "readout"}
    assert report["ok"] is True and report["exit_code"] == 0  # check --json's names (session 32)
    assert report["plots"] == {"coord": str(tmp_path / "p" / "coord.png")}
    assert (tmp_path / "p" / "coord.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "p" / "coord.png").stat().st_size > 1000


@pytest.mark.e2e
def test_coord_check_fails_standard_with_a_large_shared_lr(capsys):
    assert _exit(["coord-check", "-p", "standard", "-o", "adam", "--lr-mode", "global", *COORD, "--seeds", "3",
                  "-q"]) == 1
    out = " ".join(capsys.readouterr().out.split())  # -q silences the progress, not the verdict table
    assert "FAIL" in out and "(max slope 0.25)" in out
    assert "FAIL: activations grow with width" in out  # the verdict on stdout, as check prints its own


def test_a_sweep_warning_is_one_styled_line(tmp_path, capsys):
    """A folder repair (here a killed sweep's stale lock) reads `warning: ...` on one stderr line, not Python's
    `file:line: SweepWarning:` with a source line from inside abcscale."""
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "o"
    out.mkdir()
    (out / ".sweep.lock").write_text(f"{dead.pid}\n")
    assert _exit(["sweep", *TINY, "--widths", "8", "--log2-lr", "-5", "--out", str(out), "--quiet"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines == [f"warning: {out / '.sweep.lock'}: taking over the lock of sweep pid {dead.pid}, which ended "
                     "without releasing it"]


def test_adamw_weight_decay_from_the_spec_file(tmp_path, capsys):
    """`[sweep.constants] weight_decay` trains adamw with the per-layer decay and is refused, naming the
    field, for a variant without decoupled decay (the default, adam)."""
    spec = tmp_path / "s.toml"
    spec.write_text('[sweep]\nmodel = "mlp"\nwidths = [8, 16]\n[sweep.constants]\nweight_decay = 0.5\n')
    assert _exit(["sweep", str(spec), *TINY, "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "constants.weight_decay: adam has no weight decay that abcscale transfers" in err
    # -o overriding the file's optimizer: the same field, not the sweep's --weight-decay (the top-level
    # independent decay, which the message then offered as the way out: a review, session 49)
    sgd = tmp_path / "sgd.toml"
    sgd.write_text(spec.read_text().replace("[sweep.constants]", 'optimizers = ["sgd"]\n[sweep.constants]'))
    assert _exit(["sweep", str(sgd), *TINY, "-o", "adam_atan2", "--out", str(tmp_path / "bad2")]) == 2
    err = capsys.readouterr().err
    # the weight decay is the SPEC file's, so its key is named there (session 57: each error where its value is)
    assert err.startswith(f"error: {sgd}: constants.weight_decay: adam_atan2 has no weight decay that abcscale "
                          "transfers") and "--weight-decay" not in err
    spec.write_text(spec.read_text().replace("[sweep.constants]", 'optimizers = ["adamw"]\n[sweep.constants]'))
    assert _exit(["sweep", str(spec), *TINY, "--log2-lr", "-5", "--out", str(tmp_path / "o"), "--quiet"]) == 0
    df = pd.read_parquet(tmp_path / "o" / "results.parquet").set_index("width")
    assert df.loc[8, "weight_decay_embedding"] == 0.5 and df.loc[16, "weight_decay_hidden"] == 1.0  # mup: c_h = 1
