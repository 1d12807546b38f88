"""Session 71's code review of its own changes (a helper's; each test seen failing on the code before its fix):
the dropped-runs note quoted paths through rich markup (``d[/x]/c.txt`` was a MarkupError traceback after the
sweep had finished); ``sweep --max-bytes`` of 10^13 over a small file read ``f.read(10**13)``, which reserves it
all ("out of memory"); a piped table reserved the whole 1 GiB stream cap (a 2 KB table failed under a 1.5 GB
limit); a reused old part's columns came out in another order than a fresh sweep's; a plot worker marked its
folder with its own drawing-code hash, which the server could take for another version's."""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from abcscale.cli import app

pytest.importorskip("jax")

runner = CliRunner()
DATA = Path(__file__).resolve().parents[1] / "data" / "old_sweeps_s71"
TINY = ["--model", "mlp", "--depth", "1", "--widths", "16", "--steps", "3", "--batch", "2", "--seq-len", "8",
        "--eval-batches", "1", "--seeds", "1", "-q"]


def test_the_dropped_runs_note_prints_a_data_path_with_brackets_as_it_is(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(bytes(range(256)) * 64)
    odd = tmp_path / "d[" / "x]" / "c.txt"  # reads as rich's markup [/x] once printed
    odd.parent.mkdir(parents=True)
    shutil.copyfile(corpus, odd)
    out = tmp_path / "out"
    first = runner.invoke(app, ["sweep", *TINY, "--data", str(corpus), "--log2-lr=-6,-4", "--out", str(out)])
    assert first.exit_code == 0, first.output
    res = runner.invoke(app, ["sweep", *TINY, "--data", str(odd), "--log2-lr=-6", "--out", str(out)])
    assert res.exit_code == 0, (res.output, res.exception)
    said = "".join(res.output.split())
    assert "note:" in said and "d[/x]/c.txt" in said, res.output  # the path's end, brackets and all
    assert "log2_lr[-6.0,-4.0]->[-6.0]" in said, res.output  # and why the runs are no longer listed


def test_a_large_max_bytes_over_a_small_file_reads_the_file():
    from abcscale.runner.data import _read_files

    small = Path(__file__)
    assert _read_files([small], 10**13) == small.read_bytes()


def _limited() -> None:  # 1.5 GB of address space: the CLI runs in it, a 1 GiB read reserved up front does not
    resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))


def test_a_small_table_piped_in_under_a_memory_limit_is_read():
    rows = "width,lr,loss\n" + "".join(f"{w},{2.0 ** -k},{1 + (k - 4) ** 2 / 10}\n" for w in (32, 64, 128)
                                       for k in range(9))
    res = subprocess.run([sys.executable, "-m", "abcscale", "fit", "-", "-q", "--json"], input=rows,
                         capture_output=True, text=True, timeout=120, preexec_fn=_limited)
    assert "out of memory" not in res.stderr and res.stdout.lstrip().startswith("{"), res.stderr


def test_an_extended_old_folder_has_a_fresh_sweeps_columns_in_its_order(tmp_path, monkeypatch):
    monkeypatch.delenv("ABCSCALE_XLA_OPT_LEVEL", raising=False)  # as the old folder was swept
    old, fresh = tmp_path / "old", tmp_path / "fresh"
    shutil.copytree(DATA / "adamw_wd_init_scale_4eef01b", old)
    spec = str(DATA / "adamw_wd_init_scale.toml")
    for out in (old, fresh):
        res = runner.invoke(app, ["sweep", spec, "--seeds", "2", "--out", str(out), "-q"])
        assert res.exit_code == 0, res.output
    a, b = (pd.read_parquet(f / "results.parquet") for f in (old, fresh))
    assert list(a.columns) == list(b.columns)


def test_a_worker_marks_its_plots_with_the_servers_format(tmp_path, monkeypatch):
    from abcscale.service import plots

    monkeypatch.setattr(plots, "plot_format", lambda: "this-process")  # the worker's own, were it to differ
    folder = tmp_path / "fit1"
    bad = pd.DataFrame({"x": [1]}).to_parquet()  # no fit's table: the render says why, in its folder
    assert plots.render("{}", bad, str(folder), 1000, 10**6, "the-server") is None
    assert (folder / plots.FORMAT).read_text() == "the-server"


def test_a_spec_files_coord_steps_none_is_no_statistics_as_the_flags():
    from abcscale.runner.spec import SweepSpec

    assert SweepSpec(coord_steps="none").coord_steps == [] == SweepSpec(coord_steps=" None ").coord_steps


def test_a_stored_fit_nested_past_pythons_limit_is_the_unreadable_fits_409_not_a_500():
    from types import SimpleNamespace

    from abcscale.service import crud

    deep = "[" * 100_000 + "]" * 100_000  # a corrupted row: json.loads raises RecursionError on it
    with pytest.raises(crud.UnreadableFit):
        crud.fit_result(SimpleNamespace(id="f1", result_json=deep))


def test_the_older_table_note_speaks_only_where_the_init_scales_were_not_1():
    """The shipped tour table (an abcscale sweep's, written before init_scale_* existed, at init scales 1) got the
    note on every fit of the README's tour; its init stds say the scales were 1, so it says nothing there, and names
    the scales where they were not (4eef01b's 2, 1, 0.5)."""
    from abcscale.fitting.table._checks import _older_sweep_table

    tour = pd.read_parquet(Path(__file__).resolve().parents[2] / "examples" / "tour-sweep.parquet")
    assert not [n for n in _older_sweep_table(tour) if n.startswith("init_scale")]
    old = pd.read_parquet(DATA / "adamw_wd_init_scale_4eef01b" / "results.parquet")
    (note,) = [n for n in _older_sweep_table(old) if n.startswith("init_scale")]
    assert "(0.5, 1, 2 among them)" in note, note
