"""Session 83's review of `abcscale tune`: a constants file is checked on the model and data it was tuned on, and
is not replaced by another model's constants."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from abcscale.cli import main
from abcscale.usecases.tune import load_constants

pytest.importorskip("optuna")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "user_model.py"
TINY = ["-p", "mup", "-o", "adam", "--base-width", "16", "--steps", "3", "--batch", "4", "--seq-len", "16",
        "--depth", "1", "--trials", "2", "--reeval-seeds", "2", "--top", "1"]
VERIFY = ["--verify-widths", "2x", "--verify-lrs", "2", "--verify-seeds", "2", "--quiet"]


def _said(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code or 0, " ".join(capsys.readouterr().err.split())


@pytest.fixture
def tuned(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    shutil.copy(EXAMPLE, tmp_path / "um.py")
    (tmp_path / "data.txt").write_text("the quick brown fox jumps over the lazy dog. " * 600)
    code, err = _said(["tune", *TINY, "--model", "um.py:factory", "--data", "data.txt", "--out", "t.json",
                       "--quiet"], capsys)
    assert code == 0, err
    return tmp_path / "t.json"


@pytest.mark.e2e
def test_a_check_on_other_data_or_edited_code_is_refused_and_the_file_kept(tuned, capsys):
    before = tuned.read_bytes()
    assert load_constants(tuned).model_source  # the code it was tuned on, recorded
    data = tuned.parent / "data.txt"
    text = data.read_text()
    data.write_text(text.replace("fox", "cat"))
    code, err = _said(["tune", "--constants", str(tuned), *VERIFY], capsys)
    assert code == 2 and "data: data.txt is not the data the constants were tuned on" in err, err
    data.write_text(text)
    model = tuned.parent / "um.py"
    model.write_text(model.read_text() + "\n# an edit\n")
    code, err = _said(["tune", "--constants", str(tuned), *VERIFY], capsys)
    assert code == 2 and "changed since its constants were tuned" in err, err
    assert tuned.read_bytes() == before


@pytest.mark.e2e
def test_another_models_search_does_not_replace_the_file(tuned, capsys):
    before = tuned.read_bytes()
    code, err = _said(["tune", *TINY, "--model", "mlp", "--data", "data.txt", "--out", str(tuned), "--quiet"], capsys)
    assert code == 2 and "holds the constants tuned on another model" in err, err
    assert tuned.read_bytes() == before


@pytest.mark.e2e
def test_the_same_model_spelt_from_another_folder_is_the_same_tuning(tuned, capsys, monkeypatch):
    # compared by path, `um.py:factory` recorded in A/ and `A/um.py:factory` from its parent were two models
    folder = tuned.parent
    monkeypatch.chdir(folder.parent)
    args = [*TINY, "--model", f"{folder.name}/um.py:factory", "--data", f"{folder.name}/data.txt", "--quiet"]
    code, err = _said(["tune", *args, "--out", f"{folder.name}/t.json"], capsys)
    assert code == 0, err
    shutil.copy(tuned, folder / "checked.json")  # a check onto an existing copy, its paths rewritten beside the file
    code, err = _said(["tune", "--constants", f"{folder.name}/t.json", *VERIFY, "--out",
                       f"{folder.name}/checked.json"], capsys)
    assert code == 0, err
    assert load_constants(folder / "checked.json").transfer


@pytest.mark.e2e
def test_a_built_in_data_set_is_checked_by_name_not_by_its_bytes(tmp_path, monkeypatch, capsys):
    # `default` is this Python's standard library: another install's bytes refused every file tuned on it
    import json

    monkeypatch.chdir(tmp_path)
    code, err = _said(["tune", *TINY, "--model", "mlp", "--data", "synthetic", "--out", "s.json", "--quiet"], capsys)
    assert code == 0, err
    data = json.loads((tmp_path / "s.json").read_text())
    data["data_hash"] = "0" * 64  # as tuned where the set's bytes were other
    (tmp_path / "s.json").write_text(json.dumps(data))
    code, err = _said(["tune", "--constants", "s.json", *VERIFY], capsys)
    assert code == 0, err
