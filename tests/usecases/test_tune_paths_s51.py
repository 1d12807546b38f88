"""`tune --constants FILE --verify-widths ...` reruns the file's training, whose model file and data path the file
records as `abcscale tune` was given them, relative to the folder tune ran in; from another folder the runner said
"model: no such file" naming neither place (session 45's "noticed and left", done in session 51)."""

from __future__ import annotations

import pytest

from abcscale.usecases.tune import save_constants, with_local_paths
from tests.usecases.test_tune import _tuned


def test_a_relative_model_file_is_found_beside_the_constants_file(tmp_path, monkeypatch):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "mymodel.py").write_text("def make(width):\n    return None\n")
    (tmp_path / "proj" / "corpus.txt").write_text("abc")
    tuned = _tuned().model_copy(update={"training": {"model": "mymodel.py:make", "data": "corpus.txt"}})
    monkeypatch.chdir(tmp_path)  # elsewhere: neither file is here
    found, notes = with_local_paths(tuned, tmp_path / "proj")
    assert found.training["model"] == f"{tmp_path / 'proj' / 'mymodel.py'}:make"
    assert found.training["data"] == str(tmp_path / "proj" / "corpus.txt")
    assert len(notes) == 2 and "beside the constants file" in notes[0]
    monkeypatch.chdir(tmp_path / "proj")  # where tune ran: as recorded, nothing said
    assert with_local_paths(tuned, tmp_path / "elsewhere") == (tuned, [])


def test_a_model_file_found_nowhere_names_both_places(tmp_path, monkeypatch):
    tuned = _tuned().model_copy(update={"training": {"model": "gone.py:make", "data": "synthetic"}})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"training.model: gone.py, .* neither in the working directory"):
        with_local_paths(tuned, tmp_path / "proj")
    builtin = _tuned()  # training {"model": "transformer"}: nothing to find
    assert with_local_paths(builtin, tmp_path) == (builtin, [])


def test_the_cli_says_it_before_any_training(tmp_path, monkeypatch, capsys):
    from abcscale.cli import main

    tuned = _tuned().model_copy(update={"training": {"model": "gone.py:make", "data": "synthetic"}})
    path = save_constants(tuned, tmp_path / "tuned.json")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["tune", "--constants", str(path), "--verify-widths", "2x"])
    assert exc.value.code == 2
    assert "--constants" in capsys.readouterr().err
