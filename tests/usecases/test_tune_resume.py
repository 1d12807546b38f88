"""A resumable search (Optuna RDB storage): a rerun continues the stored study, never reruns a finished trial."""

from __future__ import annotations

import math

import pytest

from abcscale.schemas.tune import TuneSettings
from abcscale.usecases.tune import REEVAL_SEED0, search

optuna = pytest.importorskip("optuna")


def bowl(calls: list[tuple[dict[str, float], int]]):
    def evaluate(params: dict[str, float], seed: int) -> float:
        calls.append((dict(params), seed))
        return sum(math.log10(v) ** 2 for v in params.values()) + 0.01 * seed
    return evaluate


def _search_calls(calls: list[tuple[dict[str, float], int]]) -> list[tuple[dict[str, float], int]]:
    return [c for c in calls if c[1] < REEVAL_SEED0]


def test_resuming_to_twice_the_trials_runs_only_the_new_ones(tmp_path):
    storage, n = f"sqlite:///{tmp_path / 'tune.db'}", 6
    first: list = []
    a = search(TuneSettings(trials=n, top=2, reeval_seeds=2).space(), bowl(first),
               TuneSettings(trials=n, top=2, reeval_seeds=2), storage=storage, study_name="s")
    assert len(_search_calls(first)) == n and len(a.history) == n
    again: list = []
    settings = TuneSettings(trials=2 * n, top=2, reeval_seeds=2)
    b = search(settings.space(), bowl(again), settings, storage=storage, study_name="s")
    assert len(_search_calls(again)) == n  # only the n new trials trained
    assert len(b.history) == 2 * n and [t.number for t in b.history] == list(range(2 * n))
    assert b.history[:n] == a.history  # the first n are the stored ones, unchanged
    # re-evaluations are stored too: only candidates new to the top are re-evaluated
    old = {c.trial for c in a.candidates}
    assert len(again) - n == 2 * len({c.trial for c in b.candidates} - old)
    # the same budget once more: nothing trains at all
    third: list = []
    c = search(settings.space(), bowl(third), settings, storage=storage, study_name="s")
    assert third == [] and c.best == b.best


def test_a_trial_left_running_by_a_killed_process_is_retried(tmp_path):
    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    settings = TuneSettings(trials=4, top=1, reeval_seeds=2)
    study = optuna.create_study(storage=storage, study_name="s")
    lost = study.ask({k: optuna.distributions.FloatDistribution(lo, hi, log=True)
                      for k, (lo, hi) in settings.space().items()})  # asked, never told: as after kill -9
    calls: list = []
    res = search(settings.space(), bowl(calls), settings, storage=storage, study_name="s")
    assert _search_calls(calls)[0][0] == lost.params  # retried first, with its parameters
    states = [t.state for t in res.history]
    assert states.count("COMPLETE") == 4 and states.count("FAIL") == 1


def test_without_storage_nothing_is_kept(tmp_path):
    settings = TuneSettings(trials=3, top=1, reeval_seeds=2)
    for _ in range(2):
        calls: list = []
        search(settings.space(), bowl(calls), settings)
        assert len(_search_calls(calls)) == 3


def stopped_at_the_third(settings: TuneSettings, storage: str) -> list[tuple[dict[str, float], int]]:
    """A stored search (study "s") stopped by Ctrl-C in its third evaluation; the calls it made."""
    calls: list = []
    inner = bowl(calls)

    def stops_at_the_third(params: dict[str, float], seed: int) -> float:
        if len(calls) == 2:
            calls.append((dict(params), seed))
            raise KeyboardInterrupt
        return inner(params, seed)

    with pytest.raises(KeyboardInterrupt):
        search(settings.space(), stops_at_the_third, settings, storage=storage, study_name="s")
    return calls


def test_a_trial_stopped_by_ctrl_c_is_retried_once_and_not_counted(tmp_path):
    """Ctrl-C in a trial: Optuna fails it, and a resumed `--trials 4` reported 5 trials run and never ran its
    parameters again. It is queued again on resuming (once), and only finished trials count."""
    from abcscale.usecases.tune import finished

    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    settings = TuneSettings(trials=4, top=1, reeval_seeds=2)
    stopped = stopped_at_the_third(settings, storage)[2][0]
    again: list = []
    res = search(settings.space(), bowl(again), settings, storage=storage, study_name="s")
    assert _search_calls(again)[0][0] == stopped  # retried first, with its parameters
    assert len(_search_calls(again)) == 2  # the two trials the budget lacked, the retried one among them
    states = [t.state for t in res.history]
    assert states.count("COMPLETE") == 4 and states.count("FAIL") == 1 and finished(res.history) == 4
    third: list = []
    search(settings.space(), bowl(third), settings, storage=storage, study_name="s")
    assert _search_calls(third) == []  # queued once: a third run finds the budget spent
