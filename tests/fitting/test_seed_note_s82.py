"""The "one seed per learning rate" note counts a table's repeats by their runs, not their seed labels: a W&B export
whose seed column no role names has its two seeds averaged under one label (another warning says so), and their
spread is the noise estimate; the note told the user to run the seeds they had (a review, session 82)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import abcscale

ONE_SEED = "one seed per learning rate"


def _table(seeds: int, *, seed_column: str | None) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for w in (64, 128, 256, 512):
        opt = np.log2(4e-3 * (w / 64) ** -1.0)
        for x in np.arange(-17.0, -5.0):
            for s in range(seeds):
                row = {"width": w, "beta": 2.0 ** x, "final_loss": 3 + 0.03 * (x - opt) ** 2 + rng.normal(0, 0.003)}
                if seed_column:
                    row[seed_column] = s
                rows.append(row)
    return pd.DataFrame(rows)


def _notes(fit) -> list[str]:
    return [w for g in fit.groups for w in g.warnings] + list(fit.warnings)


@pytest.mark.parametrize("column", ["config.seed", None])
def test_two_runs_a_cell_under_one_label_are_not_one_seed(column):
    fit = abcscale.fit(_table(2, seed_column=column), n_boot=50)
    assert not [w for w in _notes(fit) if ONE_SEED in w], _notes(fit)


def test_one_run_a_cell_is_still_said():
    fit = abcscale.fit(_table(1, seed_column=None), n_boot=50)
    assert [w for w in _notes(fit) if ONE_SEED in w], _notes(fit)


def test_two_named_seeds_say_nothing_either():
    fit = abcscale.fit(_table(2, seed_column="seed"), n_boot=50)
    assert not [w for w in _notes(fit) if ONE_SEED in w], _notes(fit)
