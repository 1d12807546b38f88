"""Batched search (``evaluate_many``, what ``abcscale tune --ray`` uses): trials proposed ``parallel`` at a time,
each seed of a batch evaluated together, the re-evaluation as one batch."""

from __future__ import annotations

import math

import pytest

from abcscale.schemas.tune import TuneSettings
from abcscale.usecases.tune import REEVAL_SEED0, search
from tests.usecases.test_tune import OPTIMUM, noisy_bowl

pytest.importorskip("optuna")


def test_batches_of_parallel_trials_find_the_optimum():
    one = noisy_bowl(0.05)
    batches: list[list[tuple[dict[str, float], int]]] = []

    def many(jobs):
        batches.append(jobs)
        return [one(p, s) for p, s in jobs]

    settings = TuneSettings(trials=80, seeds=2, reeval_seeds=3, top=3, sampler_seed=1)
    res = search(settings.space(), lambda p, s: pytest.fail("the batch path only"), settings, evaluate_many=many,
                 parallel=4)
    assert len(res.history) == 80 and [t.number for t in res.history] == list(range(80))
    search_batches = [b for b in batches if b[0][1] < REEVAL_SEED0]
    assert all(len(b) <= 4 for b in search_batches) and max(len(b) for b in search_batches) == 4
    assert {len({s for _, s in b}) for b in search_batches} == {1}  # one seed per batch: pruning between
    assert len(batches[-1]) == 3 * 3 and all(s >= REEVAL_SEED0 for _, s in batches[-1])  # re-evaluation: 1 batch
    pruned = [t for t in res.history if t.state == "PRUNED"]
    assert all(t.seeds_run == 1 and t.loss is None for t in pruned)
    for k, v in OPTIMUM.items():
        assert abs(math.log10(res.best.params[k] / v)) < 0.5, (k, res.best.params[k])


def test_on_trial_sees_every_batched_trial_once():
    seen = []
    settings = TuneSettings(trials=7, reeval_seeds=2, top=1)
    one = noisy_bowl(0.05)
    search(settings.space(), one, settings, evaluate_many=lambda jobs: [one(p, s) for p, s in jobs], parallel=3,
           on_trial=seen.append)
    assert [t.number for t in seen] == list(range(7)) and all(t.state == "COMPLETE" for t in seen)


def test_a_batch_pruned_whole_asks_evaluate_many_for_nothing_more():
    # after three good batches, every trial of a batch does badly on its first seed: the median pruner prunes the
    # whole batch there, and its second seed is not asked for (an empty batch reached evaluate_many before)
    batches: list[list[tuple[dict[str, float], int]]] = []

    def many(jobs):
        batches.append(jobs)
        bad = jobs[0][1] == 0 and sum(b[0][1] == 0 for b in batches if b) > 3  # the 4th first-seed batch on
        return [1e6 if bad else 1.0 + 0.01 * len(batches) for _ in jobs]

    settings = TuneSettings(trials=16, seeds=2, reeval_seeds=2, top=1, sampler_seed=0)
    res = search(settings.space(), lambda p, s: pytest.fail("the batch path only"), settings, evaluate_many=many,
                 parallel=4)
    assert all(batches), [len(b) for b in batches]
    pruned = [t for t in res.history if t.state == "PRUNED"]
    assert len(pruned) >= 4 and all(t.seeds_run == 1 for t in pruned)
