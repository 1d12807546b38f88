"""Tables that hold more than one row per run (a tracker's history export) and runs cut short of their budget."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import pandas as pd

from abcscale.fitting.table._cells import (
    _CONTINUOUS,
    _count,
    _counts_steps,
    _distinct_rows,
    _measured,
    _mostly_numbers,
    _rows,
    _to_number,
    _usual,
)
from abcscale.fitting.table._names import (
    _AMBIGUOUS_STEP_NAMES,
    _RUN_ID_KEYS,
    _RUN_LABEL_KEYS,
    PROGRESS_NAMES,
    _key,
    _lr_named,
    _replicate_like,
    _role_lr,
    _shown,
    is_step_name,
    is_tracker_column,
    option,
)
from abcscale.fitting.table._valid import _trained, _Valid
from abcscale.schemas.fit import ColumnMapping, value_text
from abcscale.schemas.sweep import RUN_MEASUREMENTS


def _run_keys(df: pd.DataFrame, m: ColumnMapping, v: _Valid) -> list[str]:
    """The columns that tell one run from another: group, size, LR, swept constants, and the seed where it varies."""
    run = [*v.group_cols, m.size_col, m.lr_col, *v.constants]
    if v.seed is not None and m.seed_col is not None and m.seed_col in df.columns and len(np.unique(v.seed)) >= 2:
        run.append(m.seed_col)
    return run


def _two_point_counters(df: pd.DataFrame, m: ColumnMapping, v: _Valid, *, progress: bool = False) -> list[str]:
    """Columns under a step name a budget has too (``epoch``, ``update``, ``checkpoint``: :data:`_AMBIGUOUS_STEP_NAMES`)
    that hold 2 values at most runs, with nothing to say the two rows are one run logged twice (3 values or more at
    most runs, or a tracker's run id the same at both): a swept budget (epoch 1 and 3 at every width, LR and seed)
    reads so as well as a history, and was refused as one with advice to keep the rows where epoch is 3, throwing a
    configuration away (a code review). The loss falling with the count says nothing: a longer budget trains lower
    too. Read as settings (:func:`_unnamed_settings`), whose warning names both readings (:func:`_pooled_columns`).
    With ``progress``, also a count in tokens or samples (:data:`PROGRESS_NAMES`: ``num_tokens``), a setting already
    at 2 values (:func:`_history` wants 3), whose warning names both readings too."""
    roles = {m.size_col, m.lr_col, m.loss_col, m.seed_col, m.diverged_col, *v.group_cols, *v.constants,
             *(m.covariates or [])}
    cands = [c for c in df.columns if c not in roles and (
        (_key(c) in _AMBIGUOUS_STEP_NAMES and _counts_steps(df[c], c))
        or (progress and _key(c) in PROGRESS_NAMES and _mostly_numbers(df[c])))]
    if not cands:
        return []
    run = _run_keys(df, m, v)
    ids = [c for c in df.columns if c not in roles and _key(c) in _RUN_ID_KEYS]
    grouped = df[[*run, *ids]].assign(**{f"_{i}": _to_number(df[c]) for i, c in enumerate(cands)}).groupby(
        run, dropna=False, sort=False)
    per = grouped[[f"_{i}" for i in range(len(cands))]].nunique()
    out = []
    for i, c in enumerate(cands):
        n = per[f"_{i}"]
        if not len(n) or (n >= 3).mean() >= 0.5 or (n == 2).mean() < 0.5:
            continue
        # one run's id at both rows of most runs (and an id per run, not one for the table): one run logged twice
        twice = n == 2
        if any((grouped[o].nunique()[twice] == 1).mean() >= 0.9 and df[o].nunique() >= 0.5 * len(n) for o in ids):
            continue
        out.append(c)
    return out


def _cut_short(df: pd.DataFrame, m: ColumnMapping, v: _Valid) -> list[str]:
    """Runs that trained fewer steps than the rest of their curve (a step column no role names, below the curve's
    most common value among the runs that trained): cut short, their losses are higher for it, and an optimum
    fitted over them moves (two short runs next to the best moved one width's 2.2x)."""
    return _cut_short_rows(df, m, v)[1]


def _cut_short_rows(df: pd.DataFrame, m: ColumnMapping, v: _Valid) -> tuple[np.ndarray, list[str]]:
    """:func:`_cut_short`'s rows (a boolean mask over ``df``) and its notes."""
    mask = np.zeros(len(df), dtype=bool)
    keys = [*v.group_cols, m.size_col, *v.constants]
    ok = _trained(v)
    out = []
    for c in step_columns(df, m, v):
        steps = _to_number(df[c])
        if steps.isna().all():
            continue
        if (missing := ok & steps.isna().to_numpy(dtype=bool)).any():  # NaN < usual is False: never short
            out.append(f"{int(missing.sum())} run(s) have no {c} (empty or not a number) where the other runs count "
                       f"their steps: whether they trained to the end cannot be told: {_rows(missing)}")
        frame = df[keys].assign(_s=steps.where(ok))
        usual = frame.groupby(keys, dropna=False, sort=False)["_s"].transform(_usual)
        # two budgets swept at every size (iters 2000 and 8000 at each width): the lower is no run cut short, and
        # a size's "usual" count is the mode of a split (a review); rows at such a budget are not short
        # (a run between them is cut short of the next budget above its count)
        budget, above = _budget_rows(frame, v.lr, m, v)
        usual = usual.where(np.isnan(above), pd.Series(above, index=usual.index))
        short = ok & (steps < usual).to_numpy(dtype=bool) & ~budget
        mask |= short
        if short.any():
            first = int(np.flatnonzero(short)[0])
            out.append(f"{int(short.sum())} run(s) stopped at a lower {c} than the other runs of their curve (e.g. "
                       f"{_count(steps.iloc[first])} of {_count(usual.iloc[first])}): cut short, their losses are not "
                       f"comparable and move the optimum: {_rows(pd.Series(short, index=df.index))}. Drop them or "
                       f"rerun them; if {c} is a budget, name it a group column ({option('group_cols')}) or a "
                       f"covariate ({option('covariates')}); {option('drop_cut_short')} leaves them out")
        out += _short_sizes(frame[~_budget_groups(frame, budget, v)], c, m, v)
    return mask, out


#: a step count is one of a sweep's budgets where, at every size of its group, its runs that trained hold at least
#: this share of the size's trained runs, at BUDGET_LRS or more learning rates that runs at another count trained at
BUDGET_SHARE = 0.2
BUDGET_LRS = 3


def _budget_rows(frame: pd.DataFrame, lr: np.ndarray, m: ColumnMapping, v: _Valid) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose step count (``frame``'s ``_s``: NaN where a run did not train) is one of two or more budgets swept
    at every size of their group (each size's runs at each of them a whole curve: BUDGET_SHARE of its trained runs,
    on BUDGET_LRS learning rates or more that runs at another count trained at too): a table of iters 2000 and 8000
    at every width, whose 2000-step runs were named "cut short" and whose sizes' counts "differ" by the mode of a
    50/50 split (a review). Runs cut short (a timeout, a crash) stop at counts of their own, at a few runs or sizes.
    Two budgets fitted as one curve are averaged as seeds; :func:`_mixed_configs` says so where a setting differs
    with them (``max_iters``), and :func:`_history` refuses the table where none does. And, for each other row of
    such a group, the smallest budget above its count (NaN where none is, or the group has no budgets): the count
    it was cut short of."""
    out = np.zeros(len(frame), dtype=bool)
    above = np.full(len(frame), np.nan)
    outer = [*v.group_cols, *v.constants]
    size = _to_number(frame[m.size_col]).to_numpy(dtype=float)
    steps = frame["_s"].to_numpy(dtype=float)
    trained = np.isfinite(steps)
    if np.unique(steps[trained]).size < 2:
        return out, above
    group = (frame[outer].groupby(outer, dropna=False, sort=False).ngroup().to_numpy() if outer
             else np.zeros(len(frame), dtype=int))
    for g in np.unique(group[trained]):
        rows = (group == g) & trained
        levels: set[float] | None = None
        for w in np.unique(size[rows]):
            at = rows & (size == w)
            here = set()
            for value in np.unique(steps[at]):
                mine = at & (steps == value)
                if mine.sum() >= BUDGET_SHARE * at.sum() \
                        and np.intersect1d(lr[mine], lr[at & ~mine]).size >= BUDGET_LRS:
                    here.add(float(value))
            levels = here if levels is None else levels & here
            if len(levels) < 2:  # a size without two budgets: the group has none
                break
        if levels is not None and len(levels) >= 2:
            ladder = np.sort(np.array(list(levels)))
            at_level = rows & np.isin(steps, ladder)
            out |= at_level
            rest = rows & ~at_level & (steps < ladder[-1])
            above[rest] = ladder[np.searchsorted(ladder, steps[rest], side="right")]
    return out, above


def _budget_groups(frame: pd.DataFrame, budget: np.ndarray, v: _Valid) -> np.ndarray:
    """Rows of the groups (their group and swept-constant values) that have :func:`_budget_rows`: their sizes each
    hold every budget, so none trained to "another count" than the rest."""
    if not budget.any():
        return np.zeros(len(frame), dtype=bool)
    outer = [*v.group_cols, *v.constants]
    if not outer:
        return np.ones(len(frame), dtype=bool)
    group = frame[outer].groupby(outer, dropna=False, sort=False).ngroup().to_numpy()
    return np.isin(group, np.unique(group[budget]))


def _history(df: pd.DataFrame, m: ColumnMapping, v: _Valid) -> str | None:
    """A problem when the table holds each run at several steps (a tracker's history, one row per logged step): its
    rows would be averaged as seeds, early losses with final ones (a user review: 0.25 octave off, and
    ``--drop-cut-short`` kept three steps of five). Told where most runs (one group, size, LR and seed) were logged
    at one shared set of 2 steps or more: not runs on a time budget (each its own count), nor two configurations
    each with its own budget (2 values where a setting differs too, a batch size: ``_mixed_configs`` speaks of
    those). Two logged steps were averaged as seeds, unsaid (a review: 0.54 octave off). Told too where most runs
    hold 2 steps or more of their own, reaching back to half their last or less (wandb's ``run.history()`` samples
    each run at its own steps: fitted, every width's optimum came out 0.7-1.3 octaves low, a review); a time budget's
    counts, each run one, lie closer. Besides the step columns, a column of progress in tokens or samples
    (:data:`PROGRESS_NAMES`: a history's ``tokens_seen``) where it holds 3 values or more per run. Not a step name a
    budget has too (``epoch``, ``update``) at 2 values per run with no run id to say the two rows are one run
    (:func:`_two_point_counters`, via :func:`step_columns`): a swept budget reads so too."""
    run = _run_keys(df, m, v)
    if (said := _history_over(df, m, v, run)) is not None:
        return said
    for peak in _schedule_peaks(df, m, v, run):
        # the LR column a schedule's: each logged step holds its own LR, so each read as a run of its own and no run
        # held several steps (a review: OneCycleLR's lr beside its max_lr, fitted as 5 LRs a run, unsaid but for
        # "cut short"); by the swept peak the runs are found, and their steps
        if (said := _history_over(df, m, v, [peak if c == m.lr_col else c for c in run])) is not None:
            return (f"{said}. And {_shown(m.lr_col)} changes along each run's steps (the LR its schedule gave at the "
                    f"step): the LR the sweep varies is {_shown(peak)}'s, the schedule's peak; fit it with "
                    f"{option('lr_col')} {_shown(peak)}")
    return _history_by_id(df, m, v, run)


def _schedule_peaks(df: pd.DataFrame, m: ColumnMapping, v: _Valid, run: list[str]) -> list[str]:
    """Other LR columns (``max_lr``, ``config.lr``: named as an LR, not a layer's own, of two values or more) within
    whose runs the LR column takes several values at most runs: the LR column a schedule's, logged at each step."""
    roles = {*run, m.loss_col, m.seed_col, m.diverged_col, *(m.covariates or [])}
    out = []
    for c in df.columns:
        if c in roles or not _lr_named(c) or _role_lr(c) or not _mostly_numbers(df[c]):
            continue
        peak = _to_number(df[c])
        if peak.nunique() < 2 or not (peak > 0).any():
            continue
        keys = [c if k == m.lr_col else k for k in run]
        frame = df[[k for k in keys if k != c]].copy()
        frame[c], frame["_lr"] = peak, v.lr
        if (frame.groupby(keys, dropna=False, sort=False)["_lr"].nunique() > 1).mean() >= 0.5:
            out.append(c)
    return out


def _history_over(df: pd.DataFrame, m: ColumnMapping, v: _Valid, run: list[str]) -> str | None:
    """:func:`_history`'s problem where the runs are told apart by the ``run`` columns, from step or progress
    columns alone."""
    roles = {*run, m.loss_col, m.seed_col, m.diverged_col, *(m.covariates or [])}
    progress = [c for c in df.columns if c not in roles and _key(c) in PROGRESS_NAMES and not is_step_name(c)
                and _mostly_numbers(df[c])]
    for c in [*step_columns(df, m, v), *progress]:
        steps = _to_number(df[c])
        if steps.notna().sum() < 3:
            continue
        grouped = df[run].assign(_s=steps).groupby(run, dropna=False, sort=False)["_s"]
        sets = pd.Series([frozenset(x.dropna()) for _, x in grouped], dtype=object)
        if not len(sets):
            continue
        least = 3 if c in progress else 2
        common = sets.value_counts().index[0]
        if len(common) >= least and (sets == common).mean() >= 0.5 \
                and (len(common) >= 3 or not _a_setting_differs(df, run, c, m)):
            values = np.sort(np.array(list(common)))
            shown = ", ".join(_count(x) for x in values[:3])
            shown += f", ..., {_count(values[-1])}" if values.size > 3 else ""
            return (f"{c}: the table holds each run at several steps ({values.size} values: {shown}), a history export "
                    f"whose rows would be averaged as seeds: keep one row per run (its last: the rows where {c} is "
                    f"{_count(values[-1])}, or the loss at one step), or name {c} a covariate ({option('covariates')}) "
                    "to fit a law across steps")
        sizes = sets.map(len)
        reach = sets.map(lambda s: len(s) >= 2 and min(s) <= 0.5 * max(s))
        if (sizes >= least).mean() >= 0.5 and reach.mean() >= 0.5 \
                and (sizes.median() >= 3 or not _a_setting_differs(df, run, c, m)):
            n = int(sizes.median())
            return (f"{c}: the table holds each run at several steps of its own (a median of {n} per run, from "
                    f"{_count(float(steps.min()))} to {_count(float(steps.max()))}), a history export (wandb's "
                    f"run.history() samples each run at its own steps) whose rows would be averaged as seeds: keep "
                    f"one row per run (its last: the row with the largest {c} of each run, or the loss at one step), "
                    f"or name {c} a covariate ({option('covariates')}) to fit a law across steps")
    return None


def _history_by_id(df: pd.DataFrame, m: ColumnMapping, v: _Valid, run: list[str]) -> str | None:
    """A problem when a tracker's run id (:data:`_RUN_ID_KEYS`: ``run_id``, wandb's ``ID``, ``Name``) is the same at
    several rows of most runs (one group, size, LR and seed), each id in one run's rows alone: a history export whose
    step column was dropped (a review: each run at 3 logged steps, averaged as seeds, 0.62 octave off, said as
    "repeated runs" that narrow the intervals). Rows that copy another whole (an export written twice) are no
    history: ``_repeated_runs`` drops them. Not an id that names the table or many runs (a sweep's), nor one whose
    rows differ in a setting no role names (:func:`_id_rows_differ`: a seed under another name, ``random_seed``,
    ``data_seed``; an ``eval_set`` per row): a history's rows differ in their measurements alone (a review: a
    ``Name`` per configuration with its seeds in ``random_seed`` was refused as a history; the pooled columns' warning
    names such a column)."""
    roles = {*run, m.loss_col, m.seed_col, m.diverged_col, *(m.covariates or [])}
    ids = [c for c in df.columns if c not in roles and _key(c) in _RUN_ID_KEYS]
    # an id at one row each (wandb's Name and ID of a table of runs) names no history: said without the rows' copies
    ids = [c for c in ids if df[c].nunique(dropna=True) < int(df[c].notna().sum())]
    if not ids:
        return None
    distinct = _distinct_rows(df)
    cell = df[run].groupby(run, dropna=False, sort=False).ngroup().to_numpy()[distinct]
    settings: list[str] | None = None
    for c in ids:
        said = df[c].to_numpy(dtype=object)[distinct]
        frame = pd.DataFrame({"_cell": cell, "_id": pd.Series(said).astype(str).to_numpy(),
                              "_blank": pd.isna(said)})
        frame = frame[~frame["_blank"].to_numpy(dtype=bool)]
        if len(frame) < 3:
            continue
        per_id = frame.groupby("_id", sort=False).agg(rows=("_cell", "size"), cells=("_cell", "nunique"))
        if (per_id["cells"] == 1).mean() < 0.9:  # an id of many runs (a sweep's, a model's name): no run's id
            continue
        least = 3 if _key(c) in _RUN_LABEL_KEYS else 2
        if (per_id["rows"] >= least).mean() >= 0.5:
            settings = _id_settings(df, m, roles, ids) if settings is None else settings
            if _id_rows_differ(df, c, distinct, settings) or not _trend_along(df, c, distinct, v.loss):
                continue
            n = int(per_id["rows"].median())
            where = f"{m.size_col}, LR and seed" if m.seed_col is not None and m.seed_col in run \
                else f"{m.size_col} and LR"
            return (f"{_shown(c)}: the table holds each run at several rows (one {_shown(c)} at {n} rows of one "
                    f"{where}, a median), a history export without its step column, whose rows "
                    f"would be averaged as seeds: keep one row per run (its last logged, or the loss at one step); "
                    f"if they are runs of their own, give each its own {_shown(c)}")
    return None


#: ids (of 2 finite losses or more) it takes to tell a history's trend from seeds' scatter (:func:`_trend_along`)
TREND_IDS = 5
#: ... and the share of them whose loss moves one way from their first row to their last, for a history
TREND_SHARE = 0.8


def _trend_along(df: pd.DataFrame, c: str, distinct: np.ndarray, loss: np.ndarray) -> bool:
    """Whether the loss moves one way along the rows of an id (column ``c``), first to last, at most ids: a history's
    logged steps, in order (the loss falls as a run trains; a newest-first export, rises); seeds of one configuration
    under one name scatter both ways. A review: a ``Name`` per configuration over its seeds, no seed column, was
    refused as a history, where the same table without the names was fitted (said as repeated runs). Too few ids to
    tell: read as a history, as before."""
    keep = distinct & df[c].notna().to_numpy() & np.isfinite(loss)
    frame = pd.DataFrame({"_id": df[c].astype(str).to_numpy()[keep], "_loss": loss[keep]})
    ends = frame.groupby("_id", sort=False)["_loss"].agg(["first", "last", "size"])
    ends = ends[(ends["size"] >= 2) & (ends["first"] != ends["last"])]
    if len(ends) < TREND_IDS:
        return True
    down = float((ends["last"] < ends["first"]).mean())
    return down >= TREND_SHARE or down <= 1 - TREND_SHARE


def _id_settings(df: pd.DataFrame, m: ColumnMapping, roles: set[Any], ids: list[str]) -> list[str]:
    """The columns whose values differing between one run id's rows say they are runs of their own, not one run's
    logged steps: no role's, id's, tracker's, step count's or progress's, nor a measurement's; a replicate's label
    (``random_seed``, ``data_seed``, ``trial``: :func:`_replicate_like`) or a column of a few values
    (``_CONTINUOUS``: an ``eval_set``, a batch size), not a logged metric's many."""
    distinct = _distinct_rows(df)
    out = []
    for c in df.columns:
        if c in roles or c in ids or c in RUN_MEASUREMENTS or is_tracker_column(c) or _key(c) in PROGRESS_NAMES \
                or _counts_steps(df[c], c) or _measured(df, c, distinct):
            continue
        if _replicate_like(c) or df[c].nunique(dropna=False) <= _CONTINUOUS:
            out.append(c)
    return out


def _id_rows_differ(df: pd.DataFrame, c: str, distinct: np.ndarray, settings: list[str]) -> bool:
    """Whether the rows of one id (column ``c``) differ in one of ``settings`` at half the ids of 2 rows or more."""
    if not settings:
        return False
    rows = df.loc[distinct & df[c].notna().to_numpy(), [c, *settings]].reset_index(drop=True)
    key = rows[c].astype(str)
    repeated = key.map(key.value_counts()) >= 2
    if not repeated.any():
        return False
    varying = rows[repeated.to_numpy()].groupby(key[repeated].to_numpy(), sort=False)[settings].nunique(dropna=False)
    return bool(((varying > 1).mean() >= 0.5).any())


def _a_setting_differs(df: pd.DataFrame, run: list[str], step: str, m: ColumnMapping) -> bool:
    """Whether a few-valued column no role names (at most ``_CONTINUOUS`` values: a batch size, not a logged
    metric) differs between the rows of most runs: then their two step counts are two configurations' budgets,
    not one run's history."""
    skip = {*run, step, m.loss_col, m.diverged_col, *RUN_MEASUREMENTS}
    for col in df.columns:
        # a measurement and a step count are no settings; a measurement's name over a few values (:func:`_measured`)
        # or a step's over text (an update rule) is one
        if col in skip or is_tracker_column(col) or df[col].nunique() > _CONTINUOUS \
                or _measured(df, col, np.ones(len(df), bool), [r for r in run if r != m.lr_col], m.lr_col) \
                or _counts_steps(df[col], col):
            continue
        if (df.groupby(run, dropna=False, sort=False)[col].nunique(dropna=False) > 1).mean() >= 0.5:
            return True
    return False


def step_columns(df: pd.DataFrame, m: ColumnMapping, v: _Valid) -> list[str]:
    """The columns that count a run's steps (:func:`_counts_steps`: a step's name over numbers) and no role names;
    not a budget's 2 values under a step's name (:func:`_two_point_counters`), a setting."""
    roles = {m.size_col, m.lr_col, m.loss_col, m.seed_col, m.diverged_col, *v.group_cols, *v.constants,
             *(m.covariates or [])}
    out: list[str] = []
    settings = None
    for c in df.columns:
        # one count under two names (Ray Tune's training_iteration and iterations_since_restore) said once
        if c not in roles and _counts_steps(df[c], c) and not any(df[c].equals(df[o]) for o in out):
            if _key(c) in _AMBIGUOUS_STEP_NAMES:
                settings = _two_point_counters(df, m, v) if settings is None else settings
                if c in settings or _an_id(df, c, m):
                    continue
            out.append(c)
    return out


def _an_id(df: pd.DataFrame, c: str, m: ColumnMapping) -> bool:
    """Whether a numeric column under a step name a setting has too (``checkpoint``, ``ckpt``: an id as well as a
    count) names its rows rather than counting their steps: its values unique per row (a run's checkpoint id), or one
    per seed and the seed's alone (an init checkpoint per seed). Read as step counts, a review saw 59 of 78 runs said
    "stopped at a lower checkpoint ... cut short" (100040 of 100075)."""
    num = _to_number(df[c])
    valid = num.notna().to_numpy(dtype=bool)
    if valid.sum() < 3 or num[valid].nunique() < 2:
        return False
    if num[valid].nunique() == int(valid.sum()):
        return True
    if m.seed_col is None or m.seed_col not in df.columns or m.seed_col == c:
        return False
    pair = pd.DataFrame({"_s": df[m.seed_col].to_numpy()[valid], "_c": num[valid].to_numpy()})
    return bool(pair.groupby("_s", dropna=False)["_c"].nunique().max() == 1
                and pair.groupby("_c")["_s"].nunique(dropna=False).max() == 1)


def _short_sizes(frame: pd.DataFrame, c: str, m: ColumnMapping, v: _Valid) -> list[str]:
    """A note when whole sizes trained to another step count than the rest of their group: the check within a
    curve cannot see a width whose every run stopped early (a timeout at the widest model), and an exponent
    fitted over it is the optimum's path along the steps as well as the size."""
    frame = frame.assign(**{m.size_col: _to_number(frame[m.size_col])})  # "64" and 64 are one size
    per = frame.groupby([*v.group_cols, *v.constants, m.size_col], dropna=False, sort=False)["_s"].agg(_usual)
    per = per.dropna()
    outer = [k for k in per.index.names if k != m.size_col]
    named = outer and per.droplevel(m.size_col).index.unique().size > 1  # one group: no label to tell it apart
    found = []
    for key, sizes in (per.groupby(level=outer, dropna=False, sort=False) if outer else [((), per)]):
        by_size = sizes.droplevel(outer) if outer else sizes
        if by_size.size < 2 or by_size.nunique() < 2:
            continue
        with contextlib.suppress(TypeError):  # sizes in order where they compare (a mixed column may not)
            by_size = by_size.sort_index()
        top = by_size.max()
        values = key if isinstance(key, tuple) else (key,)
        label = ", ".join(f"{k}={value_text(x)}" for k, x in zip(outer, values, strict=True)) if named else ""
        shown = ", ".join(f"{size}: {_count(n)}" for size, n in list(by_size.items())[:8])
        found.append(f"{label + ': ' if label else ''}{m.size_col} {shown} "
                     f"({int((by_size < top).sum())} of {by_size.size} below {_count(top)})")
    if not found:
        return []
    more = f"; and {len(found) - 2} more group(s)" if len(found) > 2 else ""
    return [f"{c} differs between sizes ({'; '.join(found[:2])}{more}): if a size's runs were cut short (a timeout, "
            f"a crash), its optimum is not comparable and moves the exponent, and {option('drop_cut_short')}, which "
            f"compares runs within a curve, does not leave it out; if {c} is a budget that changes with the size, "
            f"the exponent is the optimum's path along both: sweep >= 2 values at some sizes and name {c} a "
            f"covariate ({option('covariates')})"]
