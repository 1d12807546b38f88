"""Session 78's review of reruns into a sweep folder: the note on the runs a rerun no longer lists named a changed
constant as `constants {"gamma": {"embedding": 1.0, ... -> {"gamma": {"embedding": 1.0, ...`, both sides cut to the
same first characters, so it never said which constant changed."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from abcscale.cli import app

TINY = ["sweep", "--model", "mlp", "--depth", "1", "--steps", "6", "--batch", "2", "--seq-len", "8", "--widths", "8",
        "--log2-lr=-6,-5"]


def test_the_note_on_runs_no_longer_listed_names_each_changed_constant(tmp_path):
    pytest.importorskip("jax")
    runner, out = CliRunner(), str(tmp_path / "o")
    assert runner.invoke(app, [*TINY, "--out", out]).exit_code == 0
    res = runner.invoke(app, [*TINY, "--epsilon", "1e-6", "--init-scale", "1,2,1", "--out", out])
    said = " ".join(res.stderr.split())
    assert res.exit_code == 0 and "held 2 runs; it now lists this sweep's 2, without 2 of those" in said, res.output
    assert said.endswith("the folder's previous spec differs in constants.epsilon 1e-08 -> 1e-06, "
                         "constants.init_scale.hidden 1.0 -> 2.0"), said


def test_an_epsilon_sgd_never_reads_reuses_the_runs_and_says_nothing_of_them(tmp_path):
    """The sweep itself says an epsilon given to SGD "changed nothing": it trained every run again, and the note
    then said the folder's runs were no longer listed."""
    pytest.importorskip("jax")
    runner, out = CliRunner(), tmp_path / "o"
    sgd = [*TINY, "-o", "sgd", "--out", str(out)]
    assert runner.invoke(app, sgd).exit_code == 0
    parts = sorted((out / "cells").glob("*.rows.parquet"))
    res = runner.invoke(app, [*sgd, "--epsilon", "1e-6"])
    said = " ".join(res.stderr.split())
    assert res.exit_code == 0 and "epsilon: sgd uses none; the 1e-06 given changed nothing" in said, res.output
    assert "note:" not in said and sorted((out / "cells").glob("*.rows.parquet")) == parts, said


def test_a_ctrl_c_during_tunes_transfer_check_says_what_the_file_holds(tmp_path, capsys, monkeypatch):
    """It said "interrupted" alone, the file already written with the tuned constants and no transfer check."""
    pytest.importorskip("optuna")
    import json

    import abcscale.usecases.tune_verify as tv
    from abcscale.cli import main
    from abcscale.usecases.tune import load_constants
    from tests.helpers import tune_file

    def stop(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(tv, "verify", stop)
    out = tmp_path / "tuned.json"
    search = ["tune", "--model", "mlp", "--base-width", "16", "--steps", "3", "--batch", "2", "--seq-len", "8",
              "--depth", "1", "--data", "synthetic", "--trials", "2", "--reeval-seeds", "2", "--top", "1", "--quiet",
              "--out", str(out), "--verify-widths", "2x"]
    with pytest.raises(SystemExit) as ended:
        main([*search, "--json"])
    said = " ".join(capsys.readouterr().err.split())
    assert ended.value.code == 130 and load_constants(out).transfer == []
    assert (f"interrupted during the transfer check; {out} holds the tuned constants without it: `abcscale tune "
            f"--constants {out} --verify-widths 2x` checks them") in said, said
    # checking a file: it stays as it was, or --out is not written
    _, kept = tune_file(tmp_path)
    before = kept.read_bytes()
    for extra, what in (([], f"{kept} unchanged"), (["--out", str(tmp_path / "new.json")],
                                                      f"{tmp_path / 'new.json'} not written")):
        with pytest.raises(SystemExit) as ended:
            main(["tune", "--constants", str(kept), "--verify-widths", "2x", "--quiet", "--json", *extra])
        captured = capsys.readouterr()
        assert ended.value.code == 130 and kept.read_bytes() == before
        assert json.loads(captured.out)["exit_code"] == 130
        assert f"interrupted during the transfer check; {what}; rerun the same command to check it" in " ".join(
            captured.err.split()), captured.err


def test_a_tune_group_named_twice_is_the_same_search():
    """`--tune gamma,gamma` was stored as given and named another study than `--tune gamma`, so `--resume` started
    fresh and ran every trial again."""
    from abcscale.runner.spec import SweepSpec
    from abcscale.schemas.tune import TuneSettings
    from abcscale.usecases.tune import study_name

    spec = SweepSpec(model="mlp", widths=[16])
    once, twice = TuneSettings(tune=["gamma"]), TuneSettings(tune=["gamma", "gamma"])
    assert twice.tune == ["gamma"] and study_name(spec, twice, "d") == study_name(spec, once, "d")
    assert TuneSettings(tune=["epsilon", "gamma", "epsilon"]).tune == ["epsilon", "gamma"]


def test_a_broken_study_file_under_resume_names_resume(tmp_path, capsys):
    """`--resume` keeps the study next to --out; a file there that is no database was blamed on `--storage`, which
    the user never typed."""
    pytest.importorskip("optuna")
    from abcscale.cli import main

    out = tmp_path / "t.json"
    (tmp_path / "t.json.study.db").write_text("not a database")
    with pytest.raises(SystemExit) as ended:
        main(["tune", "--model", "mlp", "--base-width", "16", "--steps", "3", "--batch", "2", "--seq-len", "8",
              "--depth", "1", "--data", "synthetic", "--trials", "2", "--out", str(out), "--resume", "--quiet"])
    err = capsys.readouterr().err
    assert ended.value.code == 2 and err.startswith("error: --resume: cannot open"), err


def test_group_values_print_as_written_on_one_line(tmp_path):
    """A group value with a newline broke `fit --summary`'s line in two, and one that reads as rich markup
    (`[bold]x[/bold]`) printed as `x`: in the tables, the compact lines and each group's per-width title."""
    import pandas as pd

    from abcscale.fitting.synthetic import synthetic_sweep

    table = tmp_path / "t.csv"
    pd.concat([synthetic_sweep(seed=1).assign(setup="[bold]x[/bold]"),
               synthetic_sweep(seed=2).assign(setup="two\nlines µP")]).to_csv(table, index=False)
    runner = CliRunner()
    for extra in (["--summary"], []):
        res = runner.invoke(app, ["fit", str(table), "--group-cols", "setup", "--n-boot", "20", *extra])
        assert res.exit_code == 0, res.output
        lines = res.stdout.splitlines()
        for value in ("[bold]x[/bold]", "two\\nlines µP"):
            assert any(value in line for line in lines), res.stdout
        assert not any(line.strip().startswith("lines") for line in lines), res.stdout
    assert "per width: setup=two\\nlines µP" in res.stdout and "per width: setup=[bold]x[/bold]" in res.stdout
