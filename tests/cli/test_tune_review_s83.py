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
