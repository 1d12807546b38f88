"""Learning rates a hair apart are one grid point (a user review: one seed's LRs logged as float32, the others as
float64, split every LR into two "grid points" 5e-8 apart, and the fitter read the noise between them as the
basin's shape: three of four widths unidentified, the fourth's optimum 2x off, no prediction)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from abcscale.fitting import fit_table
from abcscale.fitting.synthetic import synthetic_sweep
from abcscale.fitting.table import LR_MERGE_RTOL, TableError, prepare
from abcscale.schemas.fit import ColumnMapping

GROUP = {"parameterization": "standard", "optimizer": "adam", "lr_mode": "global"}


def _sweep(seeds: int = 3) -> pd.DataFrame:
    # a 1-3-10 grid (half a decade apart), the truth an exponent of -1
    return synthetic_sweep((128, 256, 512, 1024), seeds=seeds, step=np.log2(10) / 2, half_range=3 * np.log2(10) / 2,
                           group=GROUP, seed=4)


def _float32(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    out = df.copy()
    hit = out["seed"] == seed
    out.loc[hit, "beta"] = out.loc[hit, "beta"].map(lambda x: float(np.float32(x)))
    return out


@pytest.mark.parametrize("seeds", [2, 3])
def test_one_seed_logged_in_float32_fits_as_the_clean_table(seeds):
    clean = _sweep(seeds)
    mixed = _float32(clean, seed=seeds - 1)
    assert mixed["beta"].nunique() == 2 * clean["beta"].nunique()  # every LR written two ways
    a, b = fit_table(clean, n_boot=100).groups[0], fit_table(mixed, n_boot=100).groups[0]
    assert all(w.identified for w in b.per_width) and len(b.per_width) == len(a.per_width)
    for wa, wb in zip(a.per_width, b.per_width, strict=True):
        assert wa.lr_opt and wb.lr_opt and abs(np.log2(wa.lr_opt / wb.lr_opt)) < 1e-3, (wa.width, wa.lr_opt, wb.lr_opt)
    assert b.exponent is not None and abs(b.exponent.estimate - a.exponent.estimate) < 1e-3
    notes = [w for w in prepare(mixed).warnings if "one grid point" in w]
    assert len(notes) == 1 and "beta:" in notes[0] and "float32" in notes[0]


def test_the_value_most_rows_give_is_kept_then_the_shortest():
    df = _sweep(3)
    df = _float32(df, seed=2)  # two seeds write 0.001, one 0.0010000000474974513
    prep = prepare(df)
    lrs = np.unique(np.concatenate([w.x for g in prep.groups for w in g.widths]))
    assert len(lrs) == df.loc[df["seed"] == 0, "beta"].nunique()
    assert set(np.round(2.0 ** lrs, 15)) <= set(np.round(df.loc[df["seed"] == 0, "beta"], 15))
    from abcscale.fitting.table._cells import _merge_close

    even = np.array([0.0010000000474974513, 0.001])  # one row each: the shorter written value
    merged, said = _merge_close(even, np.zeros(2, int))
    assert merged.tolist() == [0.001, 0.001] and said == {0.0010000000474974513: 0.001}
    other_curves, said = _merge_close(even, np.arange(2))  # two curves (widths): no grid point is split
    assert other_curves.tolist() == even.tolist() and not said


def test_rounded_copies_merge_and_a_fine_grid_does_not():
    from abcscale.fitting.table._cells import _merge_close

    one = np.zeros(16, int)
    grid = 1e-3 * 2.0 ** (np.arange(8) / 16)  # 2^(1/16) apart: 4.4%, a real (fine) grid
    same, said = _merge_close(grid, one[:8])
    assert not said and same.tolist() == grid.tolist()
    rounded = np.array([*grid, *[float(f"{x:.4g}") for x in grid]])  # a copy at 4 significant digits
    merged, said = _merge_close(rounded, one)
    assert len(np.unique(merged)) == len(grid) and said
    # no chaining: values each within the tolerance of the next, spanning more than it, are not one point
    chain = 1e-3 * (1 + 0.9 * LR_MERGE_RTOL) ** np.arange(4)
    assert len(np.unique(_merge_close(chain, one[:4])[0])) == 2


def test_text_cells_merge_and_bad_cells_are_still_refused():
    df = _sweep(2)
    text = _float32(df, seed=1).astype({"beta": str})  # as a CSV read as text
    assert all(w.identified for w in fit_table(text, n_boot=50).groups[0].per_width)
    bad = text.copy()
    bad.loc[0, "beta"] = "abc"
    with pytest.raises(TableError, match="beta: not a number"):
        prepare(bad)
    stored = text.copy()
    prepare(stored, ColumnMapping())
    assert stored.equals(text)  # the caller's table (what the service stores) is not rewritten
