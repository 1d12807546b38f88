"""Session 75: an edit of a user model's file saved during ``tune`` was neither refused nor said (a sweep says it):
the search tunes the code it started with, whose study name names it. Now said after the search, as a sweep says
it; an edit landing between the search's check and its study's name refuses to start."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

pytest.importorskip("optuna")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (ROOT / "examples" / "user_model.py").read_text()
LOGITS = 'return h_BxTxD @ params["lm_head.kernel"]'
EDITED = EXAMPLE.replace(LOGITS, f"return 2.0 * ({LOGITS.removeprefix('return ')})")
assert LOGITS in EXAMPLE


def _spec(model: Path):
    from abcscale.runner.spec import SweepSpec

    return SweepSpec(model=f"{model}:factory", widths=[16], depth=1, seq_len=8, batch=4, steps=3, log2_lr=[-6.0],
                     data="synthetic", eval_batches=1, coord_steps=[])


def test_an_edit_saved_during_the_search_is_said_after_it(tmp_path):
    from abcscale.runner.store import SweepWarning
    from abcscale.schemas.tune import TuneSettings
    from abcscale.usecases.tune import tune

    model = tmp_path / "model.py"
    model.write_text(EXAMPLE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tune(_spec(model), TuneSettings(trials=2, reeval_seeds=1, top=1),
             on_trial=lambda t: model.write_text(EDITED))  # saved after the first trial
    said = [str(w.message) for w in caught if issubclass(w.category, SweepWarning)]
    assert any(m.startswith(f"model: {model} changed during the search") for m in said), said


def test_an_edit_between_the_check_and_the_study_name_refuses_to_start(tmp_path, monkeypatch):
    import abcscale.usecases.tune as usecase
    from abcscale.schemas.tune import TuneSettings

    model = tmp_path / "model.py"
    model.write_text(EXAMPLE)
    named = usecase.study_name

    def edited_then_named(*args, **kwargs):
        model.write_text(EDITED)
        return named(*args, **kwargs)

    monkeypatch.setattr(usecase, "study_name", edited_then_named)
    trials = []
    with pytest.raises(ValueError, match=f"^model: {model} changed as the search started"):
        usecase.tune(_spec(model), TuneSettings(trials=2, reeval_seeds=1, top=1), on_trial=trials.append)
    assert not trials
