"""Session 61, a CLI review: a model file that calls sys.exit (or parses its own command line at import) ended a
sweep or coord-check with its code, 0 being coord-check's PASS, with nothing said; an empty data path read the
working directory's files, as an empty ABCSCALE_DATA_DIR served ./abcscale.db."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from abcscale.cli import app

pytest.importorskip("jax")
runner = CliRunner()
SMALL = ["--widths", "16,32", "--steps", "1", "--batch", "2", "--seq-len", "8", "--depth", "1", "-q"]


@pytest.mark.parametrize(("text", "code"), [
    ("import sys\nsys.exit(0)\n", "0"),
    ("import argparse\np = argparse.ArgumentParser()\np.add_argument('--lr', required=True)\np.parse_args()\n", "2"),
])
def test_a_model_file_that_exits_is_exit_2_not_a_pass(tmp_path, text, code):
    (tmp_path / "m.py").write_text(text)
    ref = f"{tmp_path / 'm.py'}:factory"
    res = runner.invoke(app, ["coord-check", "-p", "mup", "-o", "adam", *SMALL, "--model", ref, "--json"])
    assert res.exit_code == 2, res.output
    (error,) = json.loads(res.stdout)["errors"]
    assert f"called sys.exit({code})" in error and "if __name__ == '__main__':" in error
    res = runner.invoke(app, ["sweep", *SMALL, "--log2-lr=-8", "--model", ref, "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "called sys.exit" in res.output


def test_a_factory_that_exits_is_exit_2(tmp_path):
    (tmp_path / "f.py").write_text("import sys\n\ndef factory(width, depth, *, vocab, seq_len):\n    sys.exit(0)\n")
    res = runner.invoke(app, ["coord-check", "-p", "mup", "-o", "adam", *SMALL, "--model",
                              f"{tmp_path / 'f.py'}:factory"])
    assert res.exit_code == 2 and "called sys.exit(0): a factory must return the model" in " ".join(res.output.split())


def test_an_empty_data_path_is_refused_not_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus.txt").write_text("hello world\n" * 2000)
    for cmd in (["sweep", *SMALL, "--log2-lr=-8", "--out", str(tmp_path / "o")],
                ["coord-check", "-p", "mup", "-o", "adam", *SMALL]):
        res = runner.invoke(app, [*cmd, "--data", ""])
        assert res.exit_code == 2 and "--data: an empty path (an unset variable?)" in res.output, res.output
    (tmp_path / "spec.toml").write_text('[sweep]\ndata = " "\nwidths = [16]\n')
    res = runner.invoke(app, ["sweep", str(tmp_path / "spec.toml"), "--out", str(tmp_path / "o2"), "-q"])
    assert res.exit_code == 2 and "spec.toml: data: an empty path" in res.output, res.output
    assert not (tmp_path / "o").exists() and not (tmp_path / "o2" / "results.parquet").exists()


def test_an_empty_data_dir_does_not_serve_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ABCSCALE_DATA_DIR", "")
    res = runner.invoke(app, ["serve", "--port", "0"])
    assert res.exit_code == 2 and "ABCSCALE_DATA_DIR: set but empty" in res.output, res.output
    assert not (tmp_path / "abcscale.db").exists()
