"""Checking a sweep table against the column mapping, and splitting it into typed groups.

:func:`prepare` is the fitter's one entry for a table: ``_iv`` validates (a :class:`TableError` lists every
problem at once, each naming its column), then ``_canonical`` turns the valid table into
:class:`GroupData`: per group, per width, the runs as arrays in log2 units. The fit and the plots read
these typed groups; nothing downstream re-parses column names. Reading a table from a file or bytes, under
row and cell caps, is :mod:`abcscale.fitting.reading`'s.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from abcscale.fitting.table._canonical import UNREADABLE, GroupData, Prepared, WidthRows, _canonical
from abcscale.fitting.table._cells import (
    _GIVEN_ROWS,
    LOSS_RANGE,
    LOSS_SPREAD,
    LR_MERGE_RTOL,
    LR_SPREAD,
    NESTED_SAMPLE,
    TableError,
    _rows,
    _to_number,
    derive_columns,
    flat_columns,
    json_rows,
    merge_close_covariates,
    merge_close_group_values,
    numbers_in_text,
    records_frame,
    scalar_cells,
    table_hash,
)
from abcscale.fitting.table._checks import (
    BROKEN_SEED_FACTOR,
    LR_MULTIPLE_RTOL,
    PLATEAU_ABOVE,
    PLATEAU_SPREAD,
    _best_so_far_loss,
    _blown_up_note,
    _broken_below_best,
    _budget_with_size,
    _counts_as_widths,
    _diverged_covariates,
    _failed_without_setup,
    _held_out_note,
    _implausible_lr,
    _inverted_lr,
    _isolated_note,
    _lr_columns_note,
    _missing_note,
    _older_sweep_table,
    _one_spelling,
    _plateau,
    _scheduled_lr,
    _setup_spelling,
    _stalled_note,
    _unfinished_runs,
    _unflagged_note,
    _unlogged_losses,
    _unread_decay,
    _unread_divergence_flag,
    lr_layer_columns,
)
from abcscale.fitting.table._configs import (
    COPY_CANDIDATES,
    COPY_CELLS,
    SAME_CURVE_RTOL,
    _grouping_notes,
    _identical_seeds,
    _interleaved_columns,
    _pooled_columns,
    _repeated_runs,
    _size_families,
    _size_families_note,
)
from abcscale.fitting.table._history import (
    BUDGET_LRS,
    BUDGET_SHARE,
    _cut_short,
    _cut_short_rows,
    _history,
    step_columns,
)
from abcscale.fitting.table._names import (
    BUDGET_COLUMNS,
    BUDGET_NAMES,
    CONSTANT_LAYERS,
    CONSTANT_PREFIXES,
    DECAY_COLUMN,
    EXTRA_GROUP_COLUMNS,
    LR_LAYER_COLUMNS,
    PROGRESS_NAMES,
    STEP_NAMES,
    THEORY_COLUMNS,
    TRACKER_COLUMNS,
    UNRELIABLE,
    _higher_is_better,
    is_budget_name,
    is_measurement_name,
    is_step_name,
    is_tracker_column,
    lr_layer_of,
    option,
)
from abcscale.fitting.table._names import _shown as shown_column
from abcscale.fitting.table._valid import (
    BLOWUP_FACTOR,
    INIT_COL,
    SMALL_WIDTHS,
    STALL_FRACTION,
    STALL_KEPT,
    WIDTH_PLAUSIBLE,
    _default_loss,
    _iv,
    _trained,
)
from abcscale.schemas.fit import ColumnMapping

#: the table's public names; the checks themselves are private to their modules
__all__ = [
    "BLOWUP_FACTOR", "BROKEN_SEED_FACTOR", "BUDGET_COLUMNS", "BUDGET_LRS", "BUDGET_NAMES", "BUDGET_SHARE",
    "CONSTANT_LAYERS", "CONSTANT_PREFIXES", "COPY_CANDIDATES", "COPY_CELLS", "DECAY_COLUMN", "EXTRA_GROUP_COLUMNS",
    "GroupData", "INIT_COL", "LOSS_RANGE", "LOSS_SPREAD", "LR_LAYER_COLUMNS", "LR_MERGE_RTOL", "LR_MULTIPLE_RTOL",
    "LR_SPREAD", "NESTED_SAMPLE", "PLATEAU_ABOVE", "PLATEAU_SPREAD", "PROGRESS_NAMES", "Prepared", "SAME_CURVE_RTOL",
    "SMALL_WIDTHS", "STALL_FRACTION", "STALL_KEPT", "STEP_NAMES", "THEORY_COLUMNS", "TRACKER_COLUMNS", "TableError",
    "UNREADABLE", "UNRELIABLE", "WIDTH_PLAUSIBLE", "WidthRows", "derive_columns", "flat_columns", "is_budget_name",
    "is_measurement_name", "is_step_name", "is_tracker_column", "json_rows", "lr_layer_columns", "lr_layer_of",
    "option", "prepare", "records_frame", "scalar_cells", "shown_column", "step_columns", "table_hash",
]


def prepare(df: pd.DataFrame, mapping: ColumnMapping | None = None, *,
            blowup: float | None = BLOWUP_FACTOR, drop_cut_short: bool = False) -> Prepared:
    """Validate ``df`` under ``mapping`` and split it into typed groups; raise TableError listing all problems.

    ``mapping.loss_col`` left unset means the held-out ``eval_loss`` where the table has it (the resolved
    mapping is ``Prepared.mapping``). ``blowup``: a finite loss above ``blowup`` times its curve's best, at a
    larger LR, counts as diverged (None: never). ``drop_cut_short``: runs that stopped at a lower step count than
    the rest of their curve (:func:`_cut_short`, otherwise named in a warning) are left out, named in a warning.
    """
    if blowup is not None and not (math.isfinite(blowup) and blowup > 1):
        raise ValueError(f"blowup: must be a number above 1, got {blowup!r}")
    if df is None or len(df) == 0:
        raise TableError(["table: no rows"])
    if len(df.columns) == 0:  # rows of empty objects ([{}]): they are rows, and have no column to read
        raise TableError([f"table: no columns ({len(df)} row(s), each empty)"])
    df = flat_columns(df).rename(columns=str)
    if dups := sorted(set(df.columns[df.columns.duplicated()])):
        raise TableError([f"{c}: duplicated column" for c in dups])
    df = scalar_cells(df)
    m = mapping or ColumnMapping()
    # " mup" and "mup" are one group (theory reads them alike; a concatenated export mixes them)
    text = [c for c in df.columns if df[c].dtype == object or pd.api.types.is_string_dtype(df[c])]
    if text:
        df = df.assign(**{c: df[c].map(lambda x: x.strip() if isinstance(x, str) else x) for c in text})
        # 128 and " 128 " one number in every column, as the size column reads them (a group column refused the mix)
        df = numbers_in_text(df, EXTRA_GROUP_COLUMNS)
    df = derive_columns(df, m.derive or [])
    df, spelt = _one_spelling(df)
    df, covariate_notes = merge_close_covariates(df, list(m.covariates or []))
    df, group_notes = merge_close_group_values(df, list(m.group_cols or []))
    spelt = [*spelt, *covariate_notes, *group_notes]
    m = _default_loss(df, m)
    digest, given = table_hash(df), len(df)  # the table as given ("any cell's value changes it")
    # failed runs without their setup (wandb's export of a run that died before its config was logged): left out
    # first, as other failed runs are, where their empty cells would refuse the table (a review)
    unset, unset_note = _failed_without_setup(df, m)
    if unset.all():
        raise TableError([*unset_note, "no finished run is left to fit"])
    base = np.flatnonzero(~unset) if unset.any() else None  # the given rows' numbers, for the messages
    if base is not None:
        df = df[~unset].reset_index(drop=True)
    token = _GIVEN_ROWS.set(base)
    try:
        v = _iv(df, m, blowup)
        if history := _history(df, m, v):
            raise TableError([history])
        unfinished, left_out = _unfinished_runs(df, m, v)
        unlogged, unlogged_note = _unlogged_losses(df, m, v)
        unfinished, left_out = unfinished | unlogged, [*unset_note, *left_out, *unlogged_note]
        if drop_cut_short and not any(_to_number(df[c]).notna().any() for c in step_columns(df, m, v)):
            left_out.append(f"{option('drop_cut_short')}: the table has no step column with numbers (step, _step, "
                            "global_step, iteration; one no role names), so no run could be told cut short and none "
                            "was left out")
        elif drop_cut_short and (short := _cut_short_rows(df, m, v)[0] & ~unfinished).any():
            unfinished = unfinished | short
            left_out.append(f"{int(short.sum())} run(s) cut short (a lower step count than the rest of their curve) "
                            f"left out of the fit, as {option('drop_cut_short')} asks: {_rows(short)}")
        if unfinished.any() and not (_trained(v) & ~unfinished).any():
            raise TableError([*left_out, "no finished run is left to fit"])
        if unfinished.any():  # fitted without them: their curves' best, blow-ups and notes are the others'
            _GIVEN_ROWS.set((np.arange(len(df)) if base is None else base)[~unfinished])  # reset with `token`
            df = df[~unfinished].reset_index(drop=True)
            v = _iv(df, m, blowup)
        dup, copy_notes = _repeated_runs(df.assign(**{m.lr_col: v.lr}), m, v)
        copied, seed_notes = _identical_seeds(df, m, v, dup)
        if (drop := dup | copied).any():  # each run once: a copy fitted as a run of its own narrows every interval
            shown = _GIVEN_ROWS.get()
            _GIVEN_ROWS.set((np.arange(len(df)) if shown is None else shown)[~drop])  # reset with `token` below
            df = df[~drop].reset_index(drop=True)
            v = _iv(df, m, blowup)
        df = df.assign(**{m.lr_col: v.lr})  # checked numbers, close ones merged (_iv): what the notes group by
        # covariates as the numbers _iv checked them to be: JSON or CSV text ("1e+09") kept them strings, whose
        # curves then sorted as words ('1e+09' before '2.5e+08', a review)
        df = df.assign(**{c: _to_number(df[c]) for c in dict.fromkeys(m.covariates or []) if c in df.columns})
        families = _size_families(df, m, v)  # once: _canonical's groups and the note read it (a review: twice, slow)
        prep = dataclasses.replace(_canonical(df, v, m, families), input_hash=digest, n_rows=given,
                                   n_left_out=given - len(df))
        notes = [*spelt, *left_out, *v.merged, *_blown_up_note(v, blowup), *_stalled_note(v), *_missing_note(v),
                 *_unflagged_note(v, m.diverged_col), *_isolated_note(df, m, v), *_inverted_lr(df, m, v),
                 *_implausible_lr(df, m, v), *_unread_divergence_flag(df, m, v),
                 *_cut_short(df, m, v),
                 *_grouping_notes(df, m, v), *_pooled_columns(df, m, v), *_interleaved_columns(df, m, v),
                 *copy_notes, *seed_notes, *_broken_below_best(df, m, v),
                 *_plateau(df, m, v, blowup), *_budget_with_size(df, m, v),
                 *_counts_as_widths(df, m), *_setup_spelling(df, m), *_higher_is_better(m), *_held_out_note(df, m),
                 *_best_so_far_loss(df, m),
                 *_scheduled_lr(df, m), *_lr_columns_note(df, m, prep), *_size_families_note(df, m, v, families),
                 *_unread_decay(df, m), *_older_sweep_table(df), *_diverged_covariates(df, m, v)]
    finally:
        _GIVEN_ROWS.reset(token)
    return dataclasses.replace(prep, warnings=tuple(notes), covariates=tuple(m.covariates or ()))
