"""A user review of running one's own sweeps (session 43): huge steps or batch allocated hundreds of GiB and died
on a traceback; TOML booleans read as numbers (`widths = [true, 32]` trained a width-1 model); an impossible
width failed after the others trained; a larger sweep into another's folder dropped its runs from the table without
a word; a smaller width added retrained everything silently; a sweep's own spec.json and UTF-16 files gave TOML's
parser errors; and the Python API took no TOML text though the README says `sweep(spec_or_toml, ...)`."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from abcscale.cli import app

runner = CliRunner()
TINY = ["--model", "mlp", "-p", "mup", "-o", "adam", "--steps", "3", "--batch", "2", "--seq-len", "8", "--depth", "1",
        "--log2-lr", "-6:-5:1", "-q"]


def _said(res) -> str:
    return " ".join(res.stderr.split())


@pytest.mark.parametrize(("args", "said"), [
    (["--steps", "100000000000"], "--steps: 100000000000 is more than 10,000,000 updates a run"),
    (["--batch", "100000000"], "--batch: 100000000 x seq_len 8 is 800,000,000 tokens a step"),
    (["--widths", "16,1000000000"], "--widths: 1000000000 gives the mlp a matrix of"),
    (["--steps", "10000000", "--batch", "4096", "--seq-len", "2"], "--steps: 10000000 x batch 4096 is"),
])
def test_sizes_no_sweep_can_hold_are_refused_before_any_work(tmp_path, args, said):
    res = runner.invoke(app, ["sweep", *TINY, "--widths", "16", *args, "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and said in _said(res), res.output
    assert not (tmp_path / "o" / "results.parquet").exists()


@pytest.mark.parametrize(("toml", "said"), [
    ("widths = [true, 32]", "widths[0]: true/false is not a number"),
    ("steps = true", "steps: true/false is not a number"),
    ("log2_lr = [true, -4]", "log2_lr[0]: true/false is not a number"),
    ("[constants]\\ngamma = {hidden = true}", "gamma.hidden: true/false is not a number"),
])
def test_toml_booleans_are_no_numbers(tmp_path, toml, said):
    from abcscale.runner.spec import SweepSpec

    spec = tmp_path / "s.toml"
    spec.write_text('model = "mlp"\n' + toml.replace("\\n", "\n") + "\n")
    res = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "o"), "-q"])
    assert res.exit_code == 2 and said in _said(res), res.output
    with pytest.raises(ValueError, match="true/false is not a number"):
        SweepSpec(model="mlp", widths=[True, 32])
    assert SweepSpec(model="mlp", curves=True).curves  # the one true/false key


def test_a_sweeps_own_spec_json_runs_and_other_files_are_said(tmp_path):
    pytest.importorskip("jax")
    out = tmp_path / "a"
    assert runner.invoke(app, ["sweep", *TINY, "--widths", "16", "--out", str(out)]).exit_code == 0
    import pandas as pd

    trained = pd.read_parquet(out / "results.parquet")["run_s"].tolist()
    again = runner.invoke(app, ["sweep", str(out / "spec.json"), "--out", str(out), "-q"])
    assert again.exit_code == 0 and "warning" not in again.stderr, again.output
    assert pd.read_parquet(out / "results.parquet")["run_s"].tolist() == trained  # every run held: none trained
    (tmp_path / "u.toml").write_text('model = "mlp"\n', encoding="utf-16")
    res = runner.invoke(app, ["sweep", str(tmp_path / "u.toml"), "--out", str(tmp_path / "b")])
    assert res.exit_code == 2 and "UTF-16" in res.stderr and "save it as UTF-8" in res.stderr, res.output
    (tmp_path / "d.json").write_text('{"model": "mlp", "model": "transformer"}')
    res = runner.invoke(app, ["sweep", str(tmp_path / "d.json"), "--out", str(tmp_path / "b")])
    assert res.exit_code == 2 and "model: given twice" in res.stderr, res.output
    (tmp_path / "w.json").write_text('{"sweep": {"model": "mlp"}}')
    res = runner.invoke(app, ["sweep", str(tmp_path / "w.json"), "--out", str(tmp_path / "b")])
    assert res.exit_code == 2 and "sweep: a [sweep] table holds every key" in _said(res), res.output
    (tmp_path / "deep.json").write_text('{"widths": ' + "[" * 3000 + "]" * 3000 + "}")
    res = runner.invoke(app, ["sweep", str(tmp_path / "deep.json"), "--out", str(tmp_path / "b")])
    assert res.exit_code == 2 and "nested too deeply" in res.stderr, res.output


def test_another_sweep_into_a_folder_and_a_smaller_width_are_said(tmp_path):
    pytest.importorskip("jax")
    out = str(tmp_path / "o")
    # a transformer first, the rest MLPs: an MLP's program compiles in about half a transformer's time
    assert runner.invoke(app, ["sweep", *TINY[2:], "--model", "transformer", "--widths", "16", "--out", out]
                         ).exit_code == 0
    # a larger sweep of another model: the transformer runs leave the table (they were dropped in silence)
    res = runner.invoke(app, ["sweep", *TINY, "--widths", "16,32", "--out", out])
    assert res.exit_code == 0 and "held 2 runs; it now lists this sweep's 4, without 2 of those" in _said(res), \
        res.output
    # runs that differ in any setting, not only the model (a code review: schedule, epsilon, ... were not seen)
    res = runner.invoke(app, ["sweep", *TINY, "--widths", "16,32", "--schedule", "constant", "--out", out])
    assert res.exit_code == 0 and "held 4 runs; it now lists this sweep's 4, without 4 of those" in _said(res), \
        res.output
    # a smaller width moves the base width: every run is new, said before it trains
    res = runner.invoke(app, ["sweep", *TINY, "--widths", "8,16,32", "--out", out])
    assert "the base width is now 8" in _said(res) and "pin --base-width 16" in _said(res), res.output


def test_the_python_sweep_takes_toml_text(tmp_path):
    from abcscale._api import _spec

    assert _spec('[sweep]\nmodel = "mlp"\nwidths = [16]\n').widths == [16]
    assert _spec('model = "mlp"\nwidths = [8, 16]\n').widths == [8, 16]
    with pytest.raises(ValueError, match="is not TOML"):
        _spec("model = \n")


def test_a_misspelt_spec_key_names_the_key_it_means(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('model = "mlp"\nwidht = [16]\n')
    res = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "widht: not a key of a sweep spec; did you mean widths?" in _said(res), res.output


def test_a_width_that_cannot_fit_in_memory_is_refused_before_it_trains(tmp_path):
    """Widths past the init's limit but within 2^32 elements (8192 at depth 2: 1.6 billion parameters) ran until
    the kernel's out-of-memory killer stopped them."""
    jax = pytest.importorskip("jax")
    import os

    if jax.default_backend() != "cpu":
        pytest.skip("the estimate is a CPU's (an accelerator's memory is not this machine's)")
    from abcscale.runner.spec import SweepSpec
    from abcscale.runner.sweep import check_memory, memory_need

    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    wide = next((w for w in (4096, 8192, 16384, 32000) if memory_need(SweepSpec(widths=[w]), w, 1) > total), None)
    if wide is None:
        pytest.skip(f"{total / 2**30:.0f} GiB holds a run of every width a built-in model takes")
    res = runner.invoke(app, ["sweep", "--widths", f"16,{wide}", "--steps", "2", "--out", str(tmp_path / "o"),
                              "-q"])
    assert res.exit_code == 2 and f"--widths: {wide} needs about" in _said(res) and "GiB" in res.stderr, res.output
    assert not (tmp_path / "o" / "results.parquet").exists()
    check_memory(SweepSpec(widths=[32, 64, 128, 1024]))  # the sweeps the project runs fit
    # the estimate grows with what a cell holds at once
    spec = SweepSpec(widths=[256])
    assert memory_need(spec, 256, 2) == 2 * memory_need(spec, 256, 1) > 4 * 5 * 256 * 256 * 12 * 2


def test_the_sweep_summary_marks_a_best_lr_at_the_grids_edge(tmp_path):
    pytest.importorskip("jax")
    # 3 steps at LRs 2^-12..2^-10: the largest always wins, at the edge
    res = runner.invoke(app, ["sweep", *TINY[:-3], "--log2-lr", "-12:-10:1", "--widths", "16", "--out",
                              str(tmp_path / "o")], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "-10 *" in res.stdout and "* best at the grid's edge (log2 beta -12 or -10)" in res.stdout


def test_tune_with_one_fresh_seed_gives_no_spread(tmp_path, capsys):
    pytest.importorskip("optuna")
    from tests.cli.test_tune import TINY as TUNE
    from tests.cli.test_tune import _exit

    argv = [a if a != "2" else "1" for a in TUNE]  # --reeval-seeds 1 --top 1
    argv[argv.index("--trials") + 1] = "2"
    assert _exit(["tune", *argv, "--model", "mlp", "--out", str(tmp_path / "t.json")]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "(1 fresh seed: no spread to give" in said and "+- 0.0000" not in said, said


def test_tune_names_the_flag_of_a_setup_given_twice(tmp_path):
    res = runner.invoke(app, ["tune", "-p", "mup,standard", "-o", "adam", "--base-width", "16", "--out",
                              str(tmp_path / "t.json")])
    assert res.exit_code == 2 and "--parameterization: tune one at a time" in res.stderr, res.output


def test_back_to_a_base_the_folder_holds_is_not_said_as_nothing_reused(tmp_path):
    """--widths 16,32, then 32 alone (base 32: results.parquet lists base-32 runs), then 16,32 again: the note says
    the listed runs are not reused, not that none of the folder's are; the base-16 runs in its cells are, and
    nothing trains (a review, session 70: the note said "none of them is reused" there)."""
    pytest.importorskip("jax")
    import pandas as pd

    out = tmp_path / "o"
    base = ["sweep", *TINY, "--out", str(out)]
    assert runner.invoke(app, [*base, "--widths", "16,32"]).exit_code == 0
    first = pd.read_parquet(out / "results.parquet")
    assert runner.invoke(app, [*base, "--widths", "32"]).exit_code == 0
    res = runner.invoke(app, [*base, "--widths", "16,32"])
    said = _said(res)
    assert res.exit_code == 0 and "the base width is now 16" in said, res.output
    assert "none of them" not in said and "only runs the folder holds at base width 16 are" in said, said
    again = pd.read_parquet(out / "results.parquet")
    assert again.drop(columns=["compile_s", "run_s"]).equals(first.drop(columns=["compile_s", "run_s"]))
    assert (again["run_s"] == first["run_s"]).all()  # read back from the cells, not trained again
