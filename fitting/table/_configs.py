"""Runs fitted as one configuration that are not: a setting no role names differing between a cell's seeds, two
optimizers each on its own LR grid, a model family per size, copied seeds, columns pooled over."""

from __future__ import annotations

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
    _n_settings,
    _plain,
    _rows,
    _to_number,
)
from abcscale.fitting.table._history import _two_point_counters
from abcscale.fitting.table._names import (
    _AMBIGUOUS_STEP_NAMES,
    _FAMILY_NAMES,
    _LABEL_KEYS,
    _NAME_WORDS,
    _RUN_ID_KEYS,
    DECAY_COLUMN,
    EXTRA_GROUP_COLUMNS,
    PROGRESS_NAMES,
    THEORY_COLUMNS,
    _constant_like,
    _key,
    _name_words,
    _replicate_like,
    _shown,
    _suffix_named,
    is_measurement_name,
    is_tracker_column,
    option,
)
from abcscale.fitting.table._valid import _trained, _Valid, follows_covariates
from abcscale.schemas.fit import ColumnMapping
from abcscale.schemas.sweep import RUN_MEASUREMENTS


def _repeated_runs(df: pd.DataFrame, m: ColumnMapping, v: _Valid) -> tuple[np.ndarray, list[str]]:
    """Rows that repeat a run: equal in every column but the measurements (the loss, the diverged flag, the
    runner's per-run numbers, any column unique per row), the seed included. Those with its loss too (NaN equal to
    NaN: an export written twice, a deterministic rerun) are returned to drop, one kept: each copy counted as a
    seed of its own narrowed the intervals. Those with another loss (a rerun that came out otherwise) stay,
    warned. Rows that differ in any other column (a batch size) are not repeats: ``_pooled_columns`` speaks of
    those."""
    roles = {m.size_col, m.lr_col, m.seed_col, *v.group_cols, *v.constants}
    # a tracker's bookkeeping (Runtime in whole seconds repeats by chance) and another measurement (train/loss, NaN at
    # every divergence) are no settings: keyed on, they hid every rerun (a review); an id or a second loss unique
    # but in an exact copy of a row is one per run too (wandb's Name beside an export written twice)
    distinct = _distinct_rows(df)
    curve = [*v.group_cols, m.size_col, *v.constants, *([m.seed_col] if m.seed_col else [])]
    keys = [c for c in df.columns if c not in (m.loss_col, m.diverged_col) and c not in RUN_MEASUREMENTS
            and (c in roles or not (is_tracker_column(c) or _measured(df, c, distinct, curve, m.lr_col)
                                    or df[c][distinct].nunique(dropna=False) >= int(distinct.sum())))]
    if not keys:
        return np.zeros(len(df), bool), []
    frame = df[keys].assign(_loss=v.loss, _diverged=v.diverged)
    seedless = m.seed_col is None or m.seed_col not in df.columns
    # without a seed column a diverged run's NaN says nothing of which run it was: two seeds' divergences are no
    # copy (they were dropped as one, a code review); they stay, as reruns with another loss do
    copies = frame.duplicated(keep="first").to_numpy() & (np.isfinite(v.loss) | (not seedless))
    reruns = frame.duplicated(subset=keys, keep="first").to_numpy() & ~copies
    also = (f"; if they are runs with other seeds, the table needs its seed column ({option('seed_col')})"
            if seedless else "")
    notes = []
    if copies.any():
        notes.append(f"repeated runs (the same settings, seed and loss as an earlier row): {_rows(copies)}; "
                     f"dropped, one of each kept (fitted, each copy would count as a separate run and narrow the "
                     f"intervals){also}")
    if reruns.any():
        # without a seed column the rows count as a seed's runs would, so the fit is the seeded table's: "narrows"
        # holds only where they are reruns of one seed (a review read it as a change the seed column would undo)
        counted = ("each counts as a separate run, as another seed's would: if they are reruns of one seed, that "
                   "narrows the intervals (keep one run per seed)" if seedless else
                   "each counts as a separate run, which narrows the intervals: keep one run per seed")
        notes.append(f"repeated runs (the same settings and seed as an earlier row, another loss or a divergence): "
                     f"{_rows(reruns)}; {counted}{also}")
    return copies, notes


def _size_families(df: pd.DataFrame, m: ColumnMapping, v: _Valid) -> dict[str, tuple[np.ndarray, str]]:
    """Text columns no role names that hold one value per size, at least 2 values across a group's sizes, one of
    them at 2 sizes or more (not a size's own label, ``gpt2-small``): two setups swept on disjoint sizes and fitted
    as one law (a review: gpt2 at widths 128, 256 and llama at 512-2048, concatenated, gave llama's LR* an octave
    off with nothing said). Each with the rows of the groups where it does so and its values by size, as said. Not
    a tracker's bookkeeping (wandb's ``Group``, ``Tags``: :data:`_LABEL_KEYS`), a run's id, name or time, a
    measurement's or a replicate's column. The cheap tests come first (a review: on a 20k-row table of 52 columns
    the numbers' test over every column was most of its time): the dtype, the name, one value per size, then text."""
    roles = {m.size_col, m.lr_col, m.loss_col, m.seed_col, m.diverged_col, *v.group_cols, *v.constants,
             *(m.covariates or [])}
    noun = "width" if m.size_kind == "width" else "size"
    group = (df.groupby(v.group_cols, dropna=False, sort=False).ngroup().to_numpy() if v.group_cols
             else np.zeros(len(df), int))
    sizes = _to_number(df[m.size_col]).to_numpy(dtype=float)
    # the (group, size) cells, sorted once: a column's one value per cell is then two reductions over its codes
    cell = pd.DataFrame({"_g": group, "_z": sizes}).groupby(["_g", "_z"], sort=False, dropna=False).ngroup().to_numpy()
    order = np.argsort(cell, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(cell[order]) != 0])
    cell_group = group[order][starts]
    out: dict[str, tuple[np.ndarray, str]] = {}
    for c in df.columns:
        col = df[c]
        if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):  # numbers (or NaN): no family
            continue
        if c in roles or c in RUN_MEASUREMENTS or is_tracker_column(c) or _key(c) in _RUN_ID_KEYS \
                or _key(c) in _LABEL_KEYS \
                or (set(_name_words(c)) & _NAME_WORDS and not _suffix_named(c, _FAMILY_NAMES)) \
                or is_measurement_name(c) or _replicate_like(c) or _constant_like(c):
            continue
        if col.isna().any():
            continue
        codes, uniques = pd.factorize(col)
        if len(uniques) < 2:
            continue
        ranked = codes[order]
        single = np.minimum.reduceat(ranked, starts) == np.maximum.reduceat(ranked, starts)
        if not single.any() or not (single.all() or pd.Series(single).groupby(cell_group).all().any()):
            continue  # every group holds a size of several values
        text = pd.Series(uniques).astype(str)
        if text.str.fullmatch(r"\d{4}-\d{2}-\d{2}.*").all():  # a date, a time: when, not what, was run
            continue
        if _mostly_numbers(col):  # numbers as text ("1", "2"): a budget's or a setting's, said elsewhere
            continue
        shown_of = text.to_numpy()
        frame = pd.DataFrame({"_g": group, "_z": sizes, "_v": codes})
        hit = np.zeros(len(df), bool)
        said = ""
        for g, rows in frame.groupby("_g", sort=False):
            per_size = rows.groupby("_z")["_v"].agg(["nunique", "first"])
            if len(per_size) < 2 or per_size["nunique"].max() > 1 or per_size["first"].nunique() < 2:
                continue
            at: dict[str, list[float]] = {}
            for z, code in zip(per_size.index.to_numpy(dtype=float), per_size["first"], strict=True):  # sizes in order
                at.setdefault(str(shown_of[code]), []).append(float(z))
            if max(len(zs) for zs in at.values()) < 2:
                continue
            hit |= group == g
            if not said:
                said = "; ".join(f"{_shown(val)} at {f'{noun}s ' if i == 0 else ''}{', '.join(_count(z) for z in zs)}"
                                 for i, (val, zs) in enumerate(at.items()))
        if hit.any():
            out[c] = (hit, said)
    return out


def _size_families_note(df: pd.DataFrame, m: ColumnMapping, v: _Valid,
                        families: dict[str, tuple[np.ndarray, str]] | None = None) -> list[str]:
    """The warning on :func:`_size_families`' columns (``families``: its answer where the caller has it). Not
    ``unreliable:`` at the table's level, even where the column's name says it names the model (``model``,
    ``model_type``, ``arch``; :data:`_FAMILY_NAMES`): :func:`_mixed_configs` puts that column in the
    ``mixed_columns`` of the groups where it changes, which makes those groups' predictions unreliable, and not the
    others' (a review: a table-level ``unreliable:`` gated every group, and ``recommend --fit --group`` of a clean
    group exited 1 on another group's model change)."""
    out = []
    for c, (_, said) in (_size_families(df, m, v) if families is None else families).items():
        fix = f"name {_shown(c)} a group column ({option('group_cols')})"
        if _suffix_named(c, _FAMILY_NAMES):
            out.append(f"{_shown(c)}: {said}: one law is fitted across them, so its exponent is the change from one "
                       f"model to the other as much as along {m.size_col}, and the prediction is for neither; if "
                       f"they are different models, fit each apart: {fix}")
        else:
            out.append(f"{_shown(c)}: {said} (one value per {m.size_col}): one law is fitted across them; if they are "
                       f"different setups, its exponent holds the change between them too: to fit each apart, {fix}")
    return out


#: a seed is a copy of another only where at least this many of their shared cells hold finite losses, all alike
COPY_CELLS = 3
#: a cell where more seeds than this share one loss says the metric is coarse, not that they are copies
COPY_CANDIDATES = 20


def _identical_seeds(df: pd.DataFrame, m: ColumnMapping, v: _Valid, dropped: np.ndarray
                     ) -> tuple[np.ndarray, list[str]]:
    """Seeds whose losses are bit-identical to an earlier seed's at every cell both ran (NaN equal to NaN; one
    finite loss at least, or two diverged runs would make a pair): rows copied under new seed ids (a concatenated
    export), or a seed the training ignores. They carry one run's information, not several, so their rows at the
    cells they share are returned to drop (the first seed id kept) and named. Seed pair by seed pair within each
    group: a check that every seed of a cell agreed missed 2 real seeds plus 2 copies, whose intervals shrank as if
    4 seeds had run (a review). Of the rows left (not ``dropped``), a note too where the seeds' losses are
    identical at most cells run with several seeds, though not all (the fitter then takes a width's noise from its
    fit's residuals, as with one seed: optimum._noise)."""
    out = np.zeros(len(df), bool)
    if v.seed is None or m.seed_col not in df.columns:
        return out, []
    group = (df.groupby(v.group_cols, dropna=False, sort=False).ngroup().to_numpy() if v.group_cols
             else np.zeros(len(df), int))
    cell = pd.DataFrame({"_w": v.width, "_lr": v.lr, **v.constants}).groupby(
        ["_w", "_lr", *v.constants], sort=False).ngroup().to_numpy()
    loss = np.where(np.isnan(v.loss), np.nan, v.loss)  # one NaN's bits for every NaN
    bits = loss.view(np.int64)
    runs: dict[tuple[int, float], dict[int, list[int]]] = {}  # (group, seed) -> cell -> its losses' bits
    rows: dict[tuple[int, float, int], list[int]] = {}
    for i in np.flatnonzero(~dropped):
        key = (int(group[i]), float(v.seed[i]))
        runs.setdefault(key, {}).setdefault(int(cell[i]), []).append(int(bits[i]))
        rows.setdefault((*key, int(cell[i])), []).append(int(i))
    said = {key: {c: tuple(sorted(b)) for c, b in cells.items()} for key, cells in runs.items()}
    # candidate pairs: seeds with one finite loss alike at some cell (distinct runs rarely share one). A cell where
    # more than COPY_CANDIDATES seeds share a loss is a coarse metric (rounded, quantized), no copy evidence: its
    # pairs, quadratic in the seeds, took minutes on a table of 40k such rows (a code review)
    alike: dict[tuple[int, int, tuple[int, ...]], list[tuple[int, float]]] = {}
    for key, cells in said.items():
        for c, b in cells.items():
            if np.isfinite(np.array(b, dtype=np.int64).view(np.float64)).all():
                alike.setdefault((key[0], c, b), []).append(key)
    order = {key: i for i, key in enumerate(said)}  # first appearance in the table
    pairs = sorted({(a, b) for seeds in alike.values() if len(seeds) <= COPY_CANDIDATES
                    for i, a in enumerate(seeds) for b in seeds[i + 1:]}, key=lambda p: (order[p[1]], order[p[0]]))
    named: dict[tuple[object, object], None] = {}
    ids = df[m.seed_col].to_numpy()
    copies: set[tuple[int, float]] = set()
    for first, second in pairs:
        shared = said[first].keys() & said[second].keys()
        finite = sum(np.isfinite(np.array(said[first][c], dtype=np.int64).view(np.float64)).all() for c in shared)
        # a copy of a copy counts as a copy of the first; COPY_CELLS finite losses alike at least (one or two rounded
        # losses that coincide are no copy: a hand-typed table's seed rerun at two cells was dropped, a code review)
        if (first not in copies and finite >= COPY_CELLS
                and all(said[first][c] == said[second][c] for c in shared)):
            copies.add(second)
            copy = [i for c in shared for i in rows[(*second, c)]]
            out[copy] = True
            named[(ids[copy[0]], ids[rows[(*first, next(iter(shared)))][0]])] = None
    notes = []
    if named:
        shown = ", ".join(f"seed {_plain(b)} copies seed {_plain(a)}" for b, a in list(named)[:5])
        more = f" and {len(named) - 5} more" if len(named) > 5 else ""
        notes.append(f"{m.seed_col}: {shown}{more} (losses bit-identical at every learning rate both ran: copies "
                     f"under new seed ids, or a seed the training ignores); dropped, the first seed id kept "
                     f"({_rows(out)}): fitted, each copy would count as a run of its own and narrow the intervals")
    rest = ~dropped & ~out & np.isfinite(v.loss)
    if rest.any():  # per cell of a group (its rows left): how many seeds, how many distinct losses (numpy: a pandas
        # groupby's nunique twice was a fifth of a small table's checks)
        _, inverse = np.unique(np.column_stack([group[rest], cell[rest]]), axis=0, return_inverse=True)
        cell_ids = np.asarray(inverse).ravel()

        def distinct(values: np.ndarray) -> np.ndarray:
            pairs = np.unique(np.column_stack([cell_ids.astype(float), values]), axis=0)
            return np.bincount(pairs[:, 0].astype(int), minlength=int(cell_ids.max()) + 1)

        seeds_n, losses_n = distinct(v.seed[rest]), distinct(v.loss[rest])
        several, same = int((seeds_n >= 2).sum()), int(((seeds_n >= 2) & (losses_n == 1)).sum())
        if several and 2 * same >= several:
            notes.append(f"the seeds' losses are identical at {same} of {several} learning rates run with several "
                         "seeds: copies under new seed ids, or a seed the training ignores; they count as one run "
                         "each")
    return out, notes


def _interleaved_columns(df: pd.DataFrame, m: ColumnMapping, v: _Valid) -> list[str]:
    """A column no role names that, at one size, takes several values each on its own learning rates (two batch
    sizes swept on grids that share no LR): never two values at one LR, so ``_pooled_columns`` does not see it,
    yet the curves of its values are fitted as one. Each value must span >= 3 LRs: a column that is a function
    of the LR (one value per LR) is not such an axis."""
    keys = [*v.group_cols, m.size_col, *v.constants]
    trained = df[_trained(v)]
    out = []
    for c in _unnamed_settings(df, m, v):
        if trained.groupby([*keys, m.lr_col], dropna=False)[c].nunique(dropna=False).max() > 1:
            continue  # it varies at one LR: _pooled_columns names it
        per_value = trained.groupby([*keys, c], dropna=False)[m.lr_col].nunique()
        per_size = per_value.groupby(level=list(range(len(keys))), dropna=False).agg(["size", "min"])
        if ((per_size["size"] >= 2) & (per_size["min"] >= 3)).any():
            out.append(c)
    if not out:
        return []
    return [f"at one {m.size_col}, {', '.join(out)} take(s) several values, each on its own learning rates: the "
            f"curves of those values are fitted as one. Name them as group columns ({option('group_cols')}) or as "
            f"covariates ({option('covariates')})"]


def _unnamed_settings(df: pd.DataFrame, m: ColumnMapping, v: _Valid) -> list[str]:
    """Columns no role names that may be settings of the runs, and vary where runs trained. Not: the runner's
    measurements, a tracker's bookkeeping (:func:`is_tracker_column`), a column named as a measurement
    (:func:`is_measurement_name`: ``train/loss``, ``summary/best_val_loss``, Hydra's ``metrics``, which a review saw
    called settings with advice to group by them, one group per run); a column unique per row (an index written out,
    a time), an exact copy of a row aside; a numeric column whose values never repeat but for NaN and inf (a foreign
    table's second loss, NaN where a run diverged); a column that does not vary among the runs that trained (a
    ``state`` that says finished, or crashed exactly where a run diverged)."""
    roles = {m.size_col, m.lr_col, m.loss_col, m.seed_col, m.diverged_col, *v.group_cols, *v.constants}
    trained = df[_trained(v)]
    distinct = _distinct_rows(df)
    curve = [*v.group_cols, m.size_col, *v.constants, *([m.seed_col] if m.seed_col else [])]
    # a step count is said by _cut_short; one by name over text (an update rule) or a budget's 2 values is a setting
    steps = {c for c in df.columns if _counts_steps(df[c], c)}
    if any(_key(c) in _AMBIGUOUS_STEP_NAMES for c in steps):
        steps -= set(_two_point_counters(df, m, v))
    out = []
    for c in df.columns:
        col = df[c]
        if c in roles or c in RUN_MEASUREMENTS or is_tracker_column(c) or c in steps \
                or _measured(df, c, distinct, curve, m.lr_col) \
                or col[distinct].nunique(dropna=False) >= int(distinct.sum()):
            continue  # a tracker's bookkeeping; a step count (said by _cut_short); a metric; a per-row index or time
        finite = col[distinct & np.isfinite(col)] if pd.api.types.is_float_dtype(col) else None
        if finite is not None and finite.nunique() == len(finite) > 1:
            continue
        # the base decay's column is missing (NaN) on a resumed sweep's rows from before it: not another setting; a
        # constant's or epsilon's empty cell, or its float32 copy, neither (the fit's constant notes say them: a
        # review saw "a column no role names" of gamma_hidden with one empty cell)
        if (_n_settings(trained[c], odd=False) if _constant_like(c)
                else trained[c].nunique(dropna=c == DECAY_COLUMN)) > 1:
            out.append(c)
    return out


def _pooled_columns(df: pd.DataFrame, m: ColumnMapping, v: _Valid) -> list[str]:
    """Warnings naming the columns that differ between rows averaged as seeds of one cell (same group, size,
    LR and swept constants). A column that changes only together with the seed (each seed ran another batch
    size) gets its own warning: its effect would pass for seed noise. Roles, the runner's per-run
    measurements are not settings (:func:`_unnamed_settings`); only runs that trained are compared."""
    other = _unnamed_settings(df, m, v)
    if not other:
        return []
    keys = [*v.group_cols, m.size_col, m.lr_col, *v.constants]
    trained = df[_trained(v)]
    varying = trained.groupby(keys, dropna=False)[other].nunique(dropna=False).max()
    named = [c for c in other if varying[c] > 1]
    if not named:
        return []
    with_seed: list[str] = []
    if v.seed is not None and m.seed_col in df.columns:
        # one value per seed along each curve (every LR): it moves with the seed. Per (cell, seed) held for every
        # column of a table with one run per cell and seed, so a precision that differed in 2 of 72 runs "changed
        # only with the seed" (a review)
        curve = [k for k in keys if k != m.lr_col]
        per_seed = trained.groupby([*curve, m.seed_col], dropna=False)[named].nunique(dropna=False).max()
        with_seed = [c for c in named if per_seed[c] <= 1]
    fix = (f"Name them as group columns ({option('group_cols')}) to fit each value apart, or as covariates "
           f"({option('covariates')}) to fit one law across them")
    out = []
    if pooled := [c for c in named if c not in with_seed]:
        # a seed column under another name (wandb's config.seed) where the table has no seed column of its own
        seedlike = [c for c in pooled if "seed" in _key(c)] if v.seed is None else []
        also = (f"; if {seedlike[0]} is the runs' seed, name it the seed column ({option('seed_col')})"
                if seedlike else "")
        # a counter under a name no rule knows (a history's `progress`): the fix is one row per run, not a group
        run = [*keys, *([m.seed_col] if v.seed is not None and m.seed_col is not None and m.seed_col in df.columns
                        else [])]
        counters = [c for c in pooled if _counts_up(trained, run, c)]
        hist = (f"; if {counters[0]} counts each run's progress (the table holds each run at several steps: a "
                f"history export), keep one row per run, its last" if counters else "")
        # a budget's 2 values under a step's name (epoch 1 and 3): a history of 2 logged points reads alike
        if not counters and any(_key(c) in _AMBIGUOUS_STEP_NAMES | PROGRESS_NAMES for c in pooled) \
                and (two := [c for c in pooled if c in _two_point_counters(df, m, v, progress=True)]):
            values = ", ".join(_count(x) for x in np.unique(_to_number(trained[two[0]]).dropna())[:2])
            hist = (f"; {two[0]} holds 2 values ({values}) at each {m.size_col}, LR and seed: a budget setting "
                    f"swept at every point (name it with {option('group_cols')} or {option('covariates')}), or a "
                    "history export that logged each run at 2 steps (then keep one row per run, its last)")
        out.append(f"rows at the same {m.size_col} and learning rate differ in {', '.join(pooled)}, a column "
                   f"no role names: they are averaged as if they were seeds. {fix}{also}{hist}")
    if with_seed:
        out.append(f"{', '.join(with_seed)} changes only together with the seed column {m.seed_col}: each seed "
                   f"ran another value, so its effect is counted as seed noise. {fix}")
    return out


def _counts_up(df: pd.DataFrame, run: list[str], col: str) -> bool:
    """Whether ``col`` holds numbers that rise, row after row, within most runs (``run``'s keys) of 3 rows or more:
    a progress counter, the table a history."""
    num = _to_number(df[col])
    if num.isna().mean() > 0.5:
        return False
    grouped = df[run].assign(_v=num).groupby(run, dropna=False, sort=False)["_v"]
    many = grouped.size().to_numpy() >= 3
    if not many.any() or many.mean() < 0.5:
        return False
    rises = grouped.agg(lambda x: bool((np.diff(x.to_numpy(dtype=float)) > 0).all())).to_numpy(dtype=bool)
    return bool(rises[many].mean() >= 0.8)


def _grouping_notes(df: pd.DataFrame, m: ColumnMapping, v: _Valid) -> list[str]:
    """A grouping column that looks like an axis (continuous, or one value per size) splits the table into
    groups of one size each: say so, and suggest fitting one law across it as a covariate."""
    notes = []
    noun = "width" if m.size_kind == "width" else "size"
    for c in v.group_cols[: len(v.group_cols) - len(m.covariates or [])]:
        col = df[c]
        n = int(col.nunique(dropna=True))
        if n < 2:
            continue
        num = _to_number(col)
        continuous = (pd.api.types.is_numeric_dtype(col) and n > _CONTINUOUS
                      and bool((np.abs(num - np.round(num)) > 1e-9).any()))
        per_size = df[m.size_col].nunique() > 1 and int(df.groupby(c)[m.size_col].nunique().max()) == 1
        if continuous or per_size:
            why = f"takes {n} distinct values" if continuous else f"has one value per {noun}"
            notes.append(f"{c}: a grouping column that {why}, so its groups hold few {noun}s each; to fit one law "
                         f"across it, name it as a covariate ({option('covariates')})")
    for c in v.group_cols[: len(v.group_cols) - len(m.covariates or [])]:
        # a column of the user's with some cells empty: those rows are a group of their own, "nan", of whatever
        # setups they hold, and leave their own setups' groups, unsaid (a review: every 7th run's `opt` blank made a
        # third group of adam and sgd runs). Theory's and the sweep's own columns refuse it (validation); here a
        # whole untagged sweep is a group as any other, so it is said, not refused
        if c in THEORY_COLUMNS or c in EXTRA_GROUP_COLUMNS:
            continue
        blank = df[c].isna() | (df[c].astype(str).str.strip() == "")
        if blank.any() and not blank.all():
            notes.append(f"{c}: empty in {_rows(blank)}: those runs are fitted as a group of their own ({c}=nan), "
                         "apart from the rest of their setups; fill the cells in, or drop the rows, where they belong "
                         "to another group")
    if m.group_cols is None and m.covariates:
        for c in EXTRA_GROUP_COLUMNS:
            if c in df.columns and c not in v.group_cols and df[c].nunique(dropna=False) > 1 \
                    and follows_covariates(df, c, list(m.covariates)):
                notes.append(f"{c}: one value per combination of {', '.join(m.covariates)} (it follows them), so no "
                             "group column: the law across the covariates holds it")
    return notes


def _mixed_configs(df: pd.DataFrame, m: ColumnMapping, v: _Valid,
                   families: dict[str, tuple[np.ndarray, str]] | None = None) -> dict[str, np.ndarray]:
    """Columns no role names in which runs fitted as seeds of one cell (one width and LR) differ, each with the
    rows of those cells: then two configurations (two model families, two optimizers) are fitted as one, and the
    prediction is for neither. Only where it is the table's pattern, at half of its cells or more (a rerun of one
    seed on another host is a repeat, not a configuration). Two ways to tell: runs under one seed id differ (seeds
    repeat a setting, not an id), with a seed column of several ids (a constant `seed` beside a `data_seed` of
    replicates says nothing); or a column of a few values (at most ``_CONTINUOUS``: an optimizer's name, a batch
    size), not a seed's, one of them at several sizes (not a run's id), differs among a cell's runs whatever their
    seed ids (each run its own random seed, or
    none: a user review's adamw + lion table passed `--strict` 1.4 octaves off). ``_pooled_columns`` words the
    warning; this decides which groups' predictions are unreliable. ``families``: :func:`_size_families`' answer
    where the caller has it (computed once per ``prepare``)."""
    other = _unnamed_settings(df, m, v)
    if not other:
        return {}
    cell = [*v.group_cols, m.size_col, m.lr_col, *v.constants]
    frame = df.reset_index(drop=True)  # positions: a user's index may repeat labels
    cells = frame.groupby(cell, dropna=False).ngroup().to_numpy()
    half = 0.5 * len(np.unique(cells))
    by_seed = None
    if v.seed is not None and m.seed_col is not None and m.seed_col in df.columns and len(np.unique(v.seed)) >= 2:
        by_seed = frame.groupby([*cell, m.seed_col], dropna=False)[other].transform("nunique", dropna=False) > 1
    # a setting recurs across sizes; a run's id, its curve's or one value per size (a budget, said apart) does not;
    # nor is a replicate's label one (a seed under another name: `trial`, `replicate`), nor a label that renames
    # seed ids repeating across cells one to one (seed 0 is always `a`); two seeds per value (adamw 0, 1; lion 2, 3)
    # are a configuration
    seed_ids = (frame[m.seed_col].to_numpy() if v.seed is not None and m.seed_col is not None
                and m.seed_col in frame.columns and len(np.unique(v.seed)) >= 2 else None)
    repeats = seed_ids is not None and bool((pd.Series(cells).groupby(seed_ids).nunique() > 1).all())

    def follows_seed(c: str) -> bool:  # a relabelling of the seed ids (seed 0 is `a`, seed 1 `b`), one to one
        if not repeats or seed_ids is None:
            return False
        return bool((frame[c].groupby(seed_ids).nunique(dropna=False) <= 1).all()) and bool(
            (pd.Series(seed_ids).groupby(frame[c].to_numpy()).nunique() <= 1).all())

    few = [c for c in other if not _replicate_like(c) and frame[c].nunique(dropna=True) <= _CONTINUOUS
           and int(frame.groupby(c, dropna=True)[m.size_col].nunique().max()) >= 2 and not follows_seed(c)]
    by_cell = frame.groupby(cell, dropna=False)[few].transform("nunique", dropna=False) > 1 if few else None
    out = {}
    for c in other:
        for varying in (by_seed, by_cell if c in few else None):
            if varying is None:
                continue
            hit = varying[c].to_numpy()
            if hit.any() and len(np.unique(cells[hit])) >= half:
                out[c] = hit
                break
        # a batch size or a budget too, each value on its own LR grid (a review: batch sizes 32 / 64 / 128 on grids
        # centred on their own optima were pooled as seeds and passed `--strict`, as text they were caught)
        if c not in out and c in few and (hit := _whole_curves(frame, m, v, c)).any():
            out[c] = hit
    # a model's name, one per size, changing across the sizes (two families swept on disjoint widths)
    out |= {c: hit for c, (hit, _) in (_size_families(frame, m, v) if families is None else families).items()
            if c not in out and _suffix_named(c, _FAMILY_NAMES)}
    return out


def _whole_curves(frame: pd.DataFrame, m: ColumnMapping, v: _Valid, c: str) -> np.ndarray:
    """The rows of the curves (one group, size and setting of the swept constants) where 2 or more of column ``c``'s
    values each span a curve of their own among the runs that trained (3 LRs or more, a third of the curve's LRs at
    least) and hold a basin of their own, in groups where half their curves or more hold such: two optimizers each on
    its own LR grid, overlapping in a few LRs (a review: adamw's and lion's grids shared 3 points of 29, fewer than
    half the cells pooled, and the mix passed `--strict` 0.7 octave off). A basin of its own: the value's best LR
    lies inside its own LR range, the loss falling to it and rising (or diverging) past it (:func:`_own_basins`). One
    setup's grid extended or refined under a second label (``stage`` coarse on the lower LRs, refine on those above)
    holds one basin between the two, its other value falling toward the seam: no mix (a review: "two
    configurations", unreliable, ``--strict`` exit 1); nor a refined grid nested in a coarse one, the two agreeing
    where they overlap (:func:`_one_setup`). Not a rerun of a few runs under another label."""
    curve = [*v.group_cols, m.size_col, *v.constants]
    curve_id = frame.groupby(curve, dropna=False, sort=False).ngroup().to_numpy()
    group_id = (frame.groupby(v.group_cols, dropna=False, sort=False).ngroup().to_numpy() if v.group_cols
                else np.zeros(len(frame), int))
    ok = _trained(v)
    values = frame[c].astype(str).to_numpy()
    t = pd.DataFrame({"_k": curve_id[ok], "_v": values[ok], "_lr": v.lr[ok]})
    total = t.groupby("_k")["_lr"].nunique()
    per_value = t.groupby(["_k", "_v"])["_lr"].nunique()
    whole = (per_value >= 3) & (3 * per_value >= total.reindex(per_value.index.get_level_values("_k")).to_numpy())
    per_lr = _per_lr_losses(curve_id, values, v)
    whole &= _own_basins(per_lr).reindex(whole.index, fill_value=False).to_numpy(dtype=bool)
    mixed = whole.groupby(level="_k").sum() >= 2
    for k in mixed.index[mixed.to_numpy(dtype=bool)]:
        here = whole.loc[k]
        if _one_setup(per_lr[per_lr["_k"] == k], list(here.index[here.to_numpy(dtype=bool)])):
            mixed[k] = False
    hit = np.zeros(len(frame), bool)
    for g in np.unique(group_id):
        ks = np.unique(curve_id[group_id == g])
        here = mixed.reindex(ks, fill_value=False).to_numpy(dtype=bool)
        if here.any() and here.mean() >= 0.5:
            hit |= np.isin(curve_id, ks[here])
    return hit


def _per_lr_losses(curve_id: np.ndarray, values: np.ndarray, v: _Valid) -> pd.DataFrame:
    """By curve (``_k``), value (``_v``) and LR (``_lr``), sorted: the mean loss (``_loss``) of the runs that trained
    there, ``inf`` where every run there diverged."""
    ok = _trained(v)
    finite = np.isfinite(v.lr)
    t = pd.DataFrame({"_k": curve_id[finite], "_v": values[finite], "_lr": v.lr[finite],
                      "_loss": np.where(ok, v.loss, np.nan)[finite]})
    per_lr = t.groupby(["_k", "_v", "_lr"], sort=True)["_loss"].mean().reset_index()
    per_lr["_loss"] = per_lr["_loss"].fillna(np.inf)  # every run there diverged: above any loss
    return per_lr


def _own_basins(per_lr: pd.DataFrame) -> pd.Series:
    """By (curve, value): whether the value's runs hold a basin of their own within their own LRs: the best LR (the
    lowest mean loss of the runs that trained there) has an LR of the value below it and one above it, where the loss
    is higher or the runs diverged. A grid cut in two has its best at the seam of one part, the other part's loss
    still falling toward it at its edge."""
    by = per_lr.groupby(["_k", "_v"], sort=False)
    best = by["_loss"].transform("min")
    at_best = per_lr["_loss"].to_numpy() == best.to_numpy()
    lo = by["_lr"].transform("min").to_numpy()
    hi = by["_lr"].transform("max").to_numpy()
    finite_best = np.isfinite(best.to_numpy())
    # the lowest and highest LR at the best loss (ties): inside the range at both
    inside = at_best & finite_best & (per_lr["_lr"].to_numpy() > lo) & (per_lr["_lr"].to_numpy() < hi)
    flags = pd.DataFrame({"_k": per_lr["_k"], "_v": per_lr["_v"], "_inside": inside, "_edge": at_best & ~inside})
    flags = flags.groupby(["_k", "_v"], sort=False)[["_inside", "_edge"]].any()
    return flags["_inside"] & ~flags["_edge"]


#: two labels' curves agree where their LRs overlap within this median relative difference of their mean losses
#: (seed noise is 0.1-0.5%; two optimizers at one LR, or one basin an octave off another, differ by several %)
SAME_CURVE_RTOL = 0.01


def _one_setup(per_lr: pd.DataFrame, labels: list[Any]) -> bool:
    """Whether one curve's values ``labels``, each on its own LRs with a basin of its own (:func:`_own_basins`), are
    one setup's runs: a coarse grid and a refined one nested in it (``stage`` coarse and refine; a review saw them
    called two configurations, unreliable). So where every value's best LR lies within half an octave, or a step of
    the coarser grid there, of the first's, and its mean losses agree with the first's where their LRs overlap (at
    2 LRs or more, the other's loss read between its LRs in log LR) to :data:`SAME_CURVE_RTOL` (the median of the
    relative differences): two optimizers' basins differ in both."""
    curves = []
    for label in labels:
        c = per_lr[(per_lr["_v"] == label).to_numpy() & np.isfinite(per_lr["_loss"].to_numpy())]
        if len(c) < 3:
            return False
        x, y = np.log2(c["_lr"].to_numpy(dtype=float)), c["_loss"].to_numpy(dtype=float)
        order = np.argsort(x)
        curves.append((x[order], y[order]))
    x0, y0 = curves[0]
    for x1, y1 in curves[1:]:
        best0, best1 = x0[np.argmin(y0)], x1[np.argmin(y1)]
        step = max(float(np.max(np.diff(x0), initial=0.0)), float(np.max(np.diff(x1), initial=0.0)))
        if abs(best0 - best1) > max(0.5, min(step, 1.0)) + 1e-9:
            return False
        gaps = []
        for (xa, ya), (xb, yb) in (((x0, y0), (x1, y1)), ((x1, y1), (x0, y0))):
            within = (xb >= xa[0] - 1e-9) & (xb <= xa[-1] + 1e-9)
            read = np.interp(xb[within], xa, ya)
            gaps.extend(np.abs(read - yb[within]) / np.minimum(read, yb[within]))
        if len(gaps) < 2 or not np.median(gaps) <= SAME_CURVE_RTOL:
            return False
    return True
