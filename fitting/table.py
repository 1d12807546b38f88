"""Checking a sweep table against the column mapping, and splitting it into typed groups.

:func:`prepare` is the fitter's one entry for a table: ``_iv`` validates (a :class:`TableError` lists every
problem at once, each naming its column), then ``_canonical`` turns the valid table into
:class:`GroupData`: per group, per width, the runs as arrays in log2 units. The fit and the plots read
these typed groups; nothing downstream re-parses column names. Reading a table from a file or bytes, under
row and cell caps, is :mod:`abcscale.fitting.reading`'s.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import hashlib
import json
import math
import re
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from abcscale.schemas.api import MAX_WIDTH
from abcscale.schemas.fit import ColumnMapping, max_size
from abcscale.schemas.sweep import DEFAULT_LOSS, GROUP_COLUMNS, RUN_MEASUREMENTS
from abcscale.schemas.theory import SCALE_MAX, SCALE_MIN

#: swept per-layer constants recognised by name (each is a coordinate of its own, in log2).
CONSTANT_PREFIXES = ("gamma_", "init_scale_", "multiplier_")
#: the runner's column of the base width's weight decay (constants.weight_decay) its per-layer decays come from
DECAY_COLUMN = "base_weight_decay"

#: columns that split groups automatically when they take more than one value.
EXTRA_GROUP_COLUMNS = ("depth", "steps", "base_width")

#: the prefix of a warning that makes a prediction unreliable: fitting.predict's UNRELIABLE (not imported: it loads
#: scipy), printed in bold
UNRELIABLE = "unreliable: "

#: a finite loss above this multiple of its curve's best, at a larger LR than the best, is a blow-up (diverged).
BLOWUP_FACTOR = 1.5
#: a run above its curve's best LR that ends within this share of its loss at init learned nothing: it stalled (a
#: blow-up that collapsed to chance, uniform predictions, without a NaN), which the blow-up rule misses when the
#: best run is itself not far under chance (a short run: best 4.5 against chance 5.5)
STALL_FRACTION = 0.01
#: ... and that kept less than this share of what its curve's best run learned (init - best)
STALL_KEPT = 0.1


def option(field: str) -> str:
    """An option named in a message, by its FitOptions field between backticks: the use case says it as its
    caller knows it (``--group-cols`` on the CLI, ``group_cols`` in a REST request), so the fitter names no
    caller's spelling (:func:`abcscale.usecases.fits.fit_sweep`)."""
    return f"`{field}`"


class TableError(ValueError):
    """The table cannot be fitted; ``problems`` lists every reason, each naming its column."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def table_hash(df: pd.DataFrame) -> str:
    """A content hash of the table (its rows in order, its columns by name, their values), for provenance.

    Values are hashed as the table's JSON rows carry them, not as one reader typed them: a parquet file's
    nullable integers, timestamps or categories and the same table POSTed as rows (``fit --service``) hash alike,
    so a fit made locally and one made by the service from the same file say the same ``input_hash``.
    """
    order = sorted(range(df.shape[1]), key=lambda i: str(df.columns[i]))  # JSON rows may come with sorted keys
    canonical = pd.DataFrame({j: _json_typed(df.iloc[:, i]) for j, i in enumerate(order)})
    h = pd.util.hash_pandas_object(canonical, index=False).to_numpy()
    digest = hashlib.sha256(h.tobytes())
    digest.update(json.dumps([str(df.columns[i]) for i in order]).encode())
    return digest.hexdigest()


def scalar_cells(df: pd.DataFrame) -> pd.DataFrame:
    """A list or struct cell (a run's ``tags``, a config dict: a parquet list column, a JSON row's list, a
    DataFrame's) as its JSON text: cells stay values (hashable, groupable, written back as they came) instead of
    arrays that hashing and grouping fail on. A new frame where any cell changes; ``df`` itself is left as given."""
    out = {}
    for col in [c for c in df.columns if pd.api.types.is_object_dtype(df[c].dtype)]:
        nested = df[col].map(lambda v: isinstance(v, list | tuple | dict | set | np.ndarray))
        if nested.any():
            out[col] = [json.dumps(_plain(v), sort_keys=True, default=str) if n else v
                        for v, n in zip(df[col], nested, strict=True)]
    return df.assign(**out) if out else df


def _plain(v: object) -> object:
    if isinstance(v, np.ndarray):
        return [_plain(x) for x in v.tolist()]
    if isinstance(v, list | tuple | set):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return v.item() if isinstance(v, np.generic) else v


def json_rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    """The table as JSON rows (what ``POST /v1/fits`` takes): numpy scalars as Python values; NaN, NaT and an
    infinite number (a diverged run's loss) as null, which JSON cannot carry otherwise and the fitter reads as
    a missing or diverged cell; anything else that is not a JSON value as its text."""

    def plain(v: Any) -> Any:
        if v is None or (not isinstance(v, str) and pd.isna(v)):
            return None
        v = v.item() if isinstance(v, np.generic) else v
        if isinstance(v, float) and not math.isfinite(v):
            return None
        return v if isinstance(v, bool | int | float | str) else str(v)

    return [{str(k): plain(v) for k, v in row.items()} for row in df.to_dict(orient="records")]


def _json_typed(s: pd.Series) -> pd.Series:
    """``s`` as JSON would carry it: numbers and booleans as float64 (missing as NaN), anything else as text.
    Each column is classified once (``infer_dtype``), so a text column costs no Python call per cell."""
    if isinstance(s.dtype, pd.CategoricalDtype):  # JSON carries a category as its value: 64, not "64"
        s = pd.Series(np.asarray(s, dtype=object), index=s.index)
    if isinstance(s.dtype, np.dtype) and s.dtype.kind in "biuf":
        return _finite(s.astype("float64"))
    if (pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype)
            and not pd.api.types.is_complex_dtype(s.dtype)) or not s.notna().any():
        return _finite(pd.Series(s.to_numpy(dtype="float64", na_value=np.nan), index=s.index))
    kind = pd.api.types.infer_dtype(s, skipna=True)
    if kind in ("integer", "floating", "mixed-integer-float", "boolean"):
        try:
            return _finite(pd.Series(pd.to_numeric(s.astype(object).where(s.notna(), np.nan)).astype("float64"),
                                     index=s.index))
        except (OverflowError, TypeError, ValueError):  # an integer beyond any float: its text (refused anyway)
            pass
    if kind == "string" and not s.isna().any():  # already what JSON carries (str and object hash alike)
        return s
    out = s.astype(object).where(s.notna(), None)
    if kind == "string":
        return out
    return out.map(lambda v: None if v is None else str(v.item() if isinstance(v, np.generic) else v))


def _finite(s: pd.Series) -> pd.Series:
    return s.where(np.isfinite(s.to_numpy()))  # an infinite value travels as null


@dataclass(frozen=True, eq=False)
class WidthRows:
    """One width's runs in one group, in table order.

    ``x`` is log2 LR; ``loss`` is NaN where the run diverged; ``k`` (n, m) holds log2 of each swept
    constant, in the order of :attr:`GroupData.constant_cols`.
    """

    width: int
    x: np.ndarray
    loss: np.ndarray
    seed: np.ndarray
    diverged: np.ndarray
    k: np.ndarray

    def coords(self) -> np.ndarray:
        """(n, 1 + m): every swept coordinate, log2 LR first."""
        return np.column_stack([self.x, self.k])

    def take(self, mask: np.ndarray) -> WidthRows:
        return WidthRows(self.width, self.x[mask], self.loss[mask], self.seed[mask], self.diverged[mask],
                         self.k[mask])


@dataclass(frozen=True, eq=False)
class GroupData:
    """One group of the table (one exponent fit): its key and its runs by width (ascending).

    ``base_width`` is the table's ``base_width`` column when it holds one value in this group (else None).
    """

    key: dict[str, Any]
    widths: tuple[WidthRows, ...]
    constant_cols: tuple[str, ...]
    base_width: int | None
    mixed: tuple[str, ...] = ()  # columns in which runs fitted as seeds of one cell differ (_mixed_configs)
    inverted_lr: bool = False  # its diverged runs sit below the best LRs: the LR column may be inverted
    # the base width's weight decay its runs trained with (the runner's base_weight_decay, weight_decay_mode
    # columns) where the group holds one value of each, else None
    weight_decay: float | None = None
    weight_decay_mode: str | None = None
    # the base width's epsilon and its mode the runs trained with (the runner's epsilon and epsilon_mode columns)
    epsilon: float | None = None
    epsilon_mode: str | None = None
    # each layer's LR exponent c_l as the table's lr_embedding/lr_hidden/lr_readout columns show it (the slope of
    # log2(lr_l / lr) over log2 width), where they hold one ratio per width on a straight line, else None
    lr_exponents: dict[str, float] | None = None
    # the per-layer constants its runs trained with, {kind: {layer: value}}: a constant's column with one value
    # throughout the group (:func:`_trained_constants`)
    trained_constants: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    # what the constant columns hold that is not carried (:func:`_trained_constants`), said by the fit
    constant_notes: tuple[str, ...] = ()
    # the layer whose own LR column is the fitted LR (lr_col lr_hidden), else None
    lr_layer: str | None = None

    @property
    def n_rows(self) -> int:
        return sum(r.x.size for r in self.widths)

    @property
    def n_diverged(self) -> int:
        return sum(int(r.diverged.sum()) for r in self.widths)


@dataclass(frozen=True, eq=False)
class Prepared:
    """A validated table as typed groups (in the order of their sorted keys), with what provenance needs."""

    groups: tuple[GroupData, ...]
    group_cols: tuple[str, ...]
    constant_cols: tuple[str, ...]
    mapping: ColumnMapping
    n_rows: int
    n_diverged: int
    input_hash: str
    warnings: tuple[str, ...] = ()
    # rows not fitted: those a tracker's state says did not finish (_unfinished_runs), and copies of another row or
    # seed (_repeated_runs, _identical_seeds)
    n_left_out: int = 0
    covariates: tuple[str, ...] = ()  # the last len(covariates) group columns: curves of one joint law


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
    df = flat_columns(df).rename(columns=str)
    if dups := sorted(set(df.columns[df.columns.duplicated()])):
        raise TableError([f"{c}: duplicated column" for c in dups])
    df = scalar_cells(df)
    m = mapping or ColumnMapping()
    # " mup" and "mup" are one group (theory reads them alike; a concatenated export mixes them)
    text = [c for c in df.columns if df[c].dtype == object or pd.api.types.is_string_dtype(df[c])]
    if text:
        df = df.assign(**{c: df[c].map(lambda x: x.strip() if isinstance(x, str) else x) for c in text})
    df = derive_columns(df, m.derive or [])
    df, spelt = _one_spelling(df)
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
                 *_cut_short(df, m, v),
                 *_grouping_notes(df, m, v), *_pooled_columns(df, m, v), *_interleaved_columns(df, m, v),
                 *copy_notes, *seed_notes, *_broken_below_best(df, m, v),
                 *_plateau(df, m, v, blowup), *_budget_with_size(df, m, v),
                 *_counts_as_widths(df, m), *_setup_spelling(df, m), *_higher_is_better(m), *_held_out_note(df, m),
                 *_best_so_far_loss(df, m),
                 *_scheduled_lr(df, m), *_lr_columns_note(df, m, prep), *_size_families_note(df, m, v, families),
                 *_unread_decay(df, m)]
    finally:
        _GIVEN_ROWS.reset(token)
    return dataclasses.replace(prep, warnings=tuple(notes), covariates=tuple(m.covariates or ()))


#: learning rates of one curve closer than this (relative) are one grid point: float32 and float64 logs of one grid
#: differ by about 5e-8, copies rounded to 4 significant digits by up to 5e-4, and the finest grids in use step by
#: 2^(1/16) (4.4%)
LR_MERGE_RTOL = 1e-3


def _merge_close(values: np.ndarray, curve: np.ndarray) -> tuple[np.ndarray, dict[float, float]]:
    """Within each curve (rows of one ``curve`` code), values within ``LR_MERGE_RTOL`` of each other become one:
    the value most of the table's rows give, else the shortest written (0.001 over 0.0010000000474974513).
    Clusters do not chain: each holds the values within the tolerance of its smallest. Returns the new values and
    what was read as what."""
    out = values.copy()
    said: dict[float, float] = {}
    order = np.lexsort((values, curve))
    v, c = values[order], curve[order]
    close = (c[1:] == c[:-1]) & (v[1:] != v[:-1]) & (np.diff(v) <= LR_MERGE_RTOL * v[1:])
    if not close.any():
        return out, said
    everywhere, total = np.unique(values, return_counts=True)  # one choice for a value in every curve
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])  # each curve's segment of the sorted order
    ends = np.r_[starts[1:], len(c)]
    for a, b in zip(starts, ends, strict=True):
        if not close[a:b - 1].any():  # only the curves that hold close values (usually none)
            continue
        rows = order[a:b]
        u, inv = np.unique(values[rows], return_inverse=True)
        counts = total[np.searchsorted(everywhere, u)]
        to = np.arange(len(u))
        i = 0
        while i < len(u):
            j = i + 1
            while j < len(u) and u[j] - u[i] <= LR_MERGE_RTOL * u[i]:
                j += 1
            rep = max(range(i, j), key=lambda k: (counts[k], -len(repr(float(u[k])))))
            to[i:j] = rep
            said.update({float(u[k]): float(u[rep]) for k in range(i, j) if k != rep})
            i = j
        out[rows] = u[to][inv]
    return out, said


def _merged_note(col: str, said: dict[float, float], rows: int) -> list[str]:
    if not said:
        return []
    first = next(iter(said.items()))
    return [f"{col}: {len(said)} learning rate value(s) within {LR_MERGE_RTOL:.1%} of another of their curve read "
            f"as one grid point ({rows} row(s); float32 and float64 logs of one grid, or rounded copies?), e.g. "
            f"{first[0]!r} as {first[1]!r}"]


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
        notes.append(f"repeated runs (the same settings and seed as an earlier row, another loss or a divergence): "
                     f"{_rows(reruns)}; "
                     f"each counts as a separate run, which narrows the intervals: keep one run per seed{also}")
    return copies, notes


#: training-budget columns a table may carry unnamed: one of them moving with the size changes what the exponent is
BUDGET_COLUMNS = ("tokens", "train_tokens", "batch_size", "batch")
#: column names (lower case, separators dropped) that hold a training budget, besides any holding "token",
#: "batch", "sample", "datasize" or "steps": Chinchilla's D and the usual short names (not "B" or "C": abc's
#: exponents; not FLOPs, which grow with the width by construction)
BUDGET_NAMES = frozenset({"d", "bs", "bsz", "gbs", "datasetsize", "samples", "nsamples", "iters", "iterations",
                          "trainsteps", "numsteps", "totalsteps", "nsteps"})


#: the group columns theory reads: an empty cell among filled ones is an error, not a group of its own
THEORY_COLUMNS = ("parameterization", "optimizer", "optimizer_variant", "lr_mode", "alignment")


def is_budget_name(name: str) -> bool:
    """Whether a column's name says it holds a training budget (tokens, batch size, steps, compute)."""
    key = re.sub(r"[^a-z0-9]", "", str(name).lower())
    if any(w in key for w in ("persec", "persecond", "throughput", "micro")):  # a speed, or a memory-side split
        return False
    return key in BUDGET_NAMES or any(w in key for w in ("token", "batch", "sample", "datasize", "steps"))


#: column names (their last words, joined: ``n_layer``, ``config.num_hidden_layers``) that count a model's layers
_DEPTH_NAMES = frozenset({"nlayer", "nlayers", "numlayers", "numhiddenlayers", "depth", "layers", "nblocks",
                          "numblocks", "nblock"})
#: text column names (their last words, joined) that say which model the runs trained: two of them fitted as one law
#: are the prediction of neither
_FAMILY_NAMES = frozenset({"model", "models", "modelname", "modeltype", "modelfamily", "modelarch",
                           "modelarchitecture", "arch", "architecture", "family", "configname"})
#: words of a text column's name that say it names something per run or per file (an output folder, a path)
_NAME_WORDS = frozenset({"name", "id", "dir", "folder", "path", "file", "filename", "url", "uri", "uuid", "hash"})


def _suffix_named(name: object, names: frozenset[str]) -> bool:
    """Whether a column's name ends in one of ``names`` (its last words, joined: ``config.model_type``)."""
    words = [w for w in re.split(r"[^a-z0-9]+", str(name).lower()) if w]
    return any("".join(words[i:]) in names for i in range(len(words)))


def _budget_with_size(df: pd.DataFrame, m: ColumnMapping, v: _Valid) -> list[str]:
    """A note when a budget column no role names takes one value per size and changes across sizes (tokens
    grown with the width, as a compute-optimal plan does): the fitted exponent is then the optimum's path along
    both, not its change with the size at a fixed budget. So for a depth (``n_layer``, ``num_hidden_layers``) grown
    with the width, as GPT-2's family does: the exponent is the optimum's change along width and depth together
    (a review: a depth-scaled nanoGPT sweep, unsaid; ``depth`` itself groups, :data:`EXTRA_GROUP_COLUMNS`)."""
    keys = [*v.group_cols, *v.constants]
    out = []
    roles = {m.size_col, m.lr_col, m.loss_col, m.seed_col, m.diverged_col, *v.group_cols, *v.constants,
             *(m.covariates or [])}
    for c in df.columns:
        depth = _suffix_named(c, _DEPTH_NAMES) and _mostly_numbers(df[c])
        if not (is_budget_name(c) or depth) or c in roles or c in RUN_MEASUREMENTS:
            continue
        if df[c].astype(str).equals(df[m.size_col].astype(str)):  # "D" holding the model dim, as the contract names it
            continue
        grouped = df.groupby([*keys, m.size_col], dropna=False)[c].nunique(dropna=False)
        across = df.groupby(keys, dropna=False)[c].nunique(dropna=False) if keys else pd.Series(
            [df[c].nunique(dropna=False)])
        if grouped.max() == 1 and across.max() > 1:
            path = f" (the {m.size_col} and the depth together)" if depth and not is_budget_name(c) else ""
            out.append(f"{c} changes with {m.size_col} (one value per {m.size_col}): the exponent is the optimum's "
                       f"change along that path{path}, not with {m.size_col} at a fixed {c}; sweep >= 2 values of "
                       f"{c} at some values of {m.size_col} and name it a covariate ({option('covariates')}) to "
                       "separate the two")
    return out


#: a tracker's or a team's bookkeeping labels (lower case, separators dropped): wandb's ``Group``, ``Tags``,
#: ``Job Type``, ``Sweep``, ``Notes``. One value per size is a launch's batch ("small-sweep" at widths 128, 256), no
#: model family (:func:`_size_families`; a review saw "name Group a group column" advised for one sweep's two launches)
_LABEL_KEYS = frozenset({"group", "groups", "rungroup", "groupname", "tag", "tags", "runtags", "jobtype", "sweep",
                         "sweepid", "sweepname", "notes", "note"})


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


#: no width a sweep sweeps reaches this (the widest models are about 2^15 wide): a size column past it counts
#: parameters
WIDTH_PLAUSIBLE = 2**17
#: a size column read as widths whose every size is this or less, in a table without a base_width column, looks like
#: width multipliers (muP's width_mult 1, 2, 4, 8)
SMALL_WIDTHS = 16


def flat_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Two-level column names (pandas' ``groupby(...).agg({"loss": ["mean", "std"]})``) as one level: ``loss_mean``,
    ``loss_std``, ``width`` (they were a ``TypeError`` traceback)."""
    if not isinstance(df.columns, pd.MultiIndex):
        return df
    return df.set_axis(["_".join(str(p) for p in c if str(p) != "") for c in df.columns], axis=1)


#: loss-column names (lower case, separators dropped) of a measure where higher is better
_SCORE_WORDS = ("acc", "accuracy", "score", "bleu", "rouge", "f1", "auc", "reward", "winrate", "exactmatch")


def _higher_is_better(m: ColumnMapping) -> list[str]:
    """A note when the loss column is named as a score (accuracy, BLEU, reward): the fitter looks for the lowest
    value, and a score's optimum then reads as the grid's edge (a user review: 'widen the grid downward')."""
    key = _key(m.loss_col)
    if not any(key.endswith(w) for w in _SCORE_WORDS):  # acc, val_acc, eval_accuracy; not accum_loss
        return []
    return [f"{m.loss_col}: the fitter looks for the lowest value of the loss column; if {m.loss_col} is a score where "
            f"higher is better (accuracy, BLEU, reward), fit 1 - it, or its negative, instead"]


def _one_spelling(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """A theory setup column's spellings of one setting (``mup`` and ``muP``, ``adam`` and ``Adam``, ``sp`` and
    ``standard``) made one, the most frequent, with a note: theory reads them alike, and as group values they split
    one setup's runs into groups of part of its seeds or grid each, unsaid (a user review)."""
    from enum import Enum

    from abcscale.schemas.enums import LrMode, Optimizer, Parameterization

    kinds: dict[str, type[Enum]] = {"parameterization": Parameterization, "optimizer": Optimizer, "lr_mode": LrMode}
    notes = []
    for name, kind in kinds.items():
        if name not in df.columns or _mostly_numbers(df[name]):
            continue
        counts = df[name].dropna().astype(str).value_counts(sort=True)  # most frequent first
        spellings: dict[str, list[str]] = {}
        for text in counts.index:
            try:
                setting = str(kind(text.strip().lower()).value)
            except ValueError:
                continue
            spellings.setdefault(setting, []).append(text)
        merged = {other: ways[0] for ways in spellings.values() if len(ways) > 1 for other in ways[1:]}
        if merged:
            df = df.assign(**{name: df[name].map(lambda x, to=merged: to.get(x, x) if isinstance(x, str) else x)})
            notes += [f"{name}: {', '.join(repr(w) for w in ways[1:])} read as {ways[0]!r} (one setting spelt "
                      "several ways)" for ways in spellings.values() if len(ways) > 1]
    return df, notes


def _setup_spelling(df: pd.DataFrame, m: ColumnMapping) -> list[str]:
    """A note for a text column spelt like a theory setup column the table lacks (``parametrization``,
    ``lr-mode``, ``Optimiser``): read under its own name it is a column like any other, and theory's exponent,
    which needs the contract's name, is silently not there (``--expect-theory``: "no group holds
    parameterization"). Only a column whose values are that setup's (``mup``, ``adam``, ``global``): not a
    column a role names, nor ``optimizer.lr`` or ``lr_model``, one letter off but no setup."""
    import difflib
    from enum import Enum

    from abcscale.schemas.enums import LrMode, Optimizer, Parameterization

    def holds(col: pd.Series, kind: type[Enum]) -> bool:
        values = col.dropna().astype(str).unique()[:50]
        ok = 0
        for v in values:
            try:
                kind(v.strip().lower())
                ok += 1
            except ValueError:
                pass
        return bool(values.size) and ok == values.size

    taken = {m.size_col, m.lr_col, m.loss_col, m.seed_col, m.diverged_col, *(m.group_cols or ()),
             *(m.covariates or ()), *(m.constant_cols or ())}
    free = [c for c in df.columns if c not in taken and c not in GROUP_COLUMNS and not _mostly_numbers(df[c])]
    out = []
    kinds: dict[str, type[Enum]] = {"parameterization": Parameterization, "optimizer": Optimizer, "lr_mode": LrMode}
    for name, kind in kinds.items():  # what theory's exponent reads
        if name in df.columns:
            continue
        ratio = {str(c): 1.0 if _key(c) == _key(name) else difflib.SequenceMatcher(None, _key(c), _key(name)).ratio()
                 for c in free if holds(df[c], kind)}
        if ratio and max(ratio.values()) >= 0.85:
            like = max(ratio, key=lambda c: ratio[c])
            out.append(f"{like}: looks like the {name} column, which the table lacks: it is not read as that "
                       f"(theory's exponents need {name}); rename it {name!r}")
    return out


#: size columns named as a width (their key: lower case, letters and digits), not as a parameter count
_WIDTH_NAMES = frozenset({"width", "dmodel", "hiddensize", "hiddendim", "nembd", "embdim", "embeddim", "dim",
                          "modeldim", "dmodelsize", "nhidden"})


def _width_named(name: str) -> bool:
    """Whether a column's name ends in a width's (``params_width``, ``config.model.d_model``, ``hparams/hidden_size``):
    its last words, joined, are one of :data:`_WIDTH_NAMES`."""
    words = [w for w in re.split(r"[^a-z0-9]+", str(name).lower()) if w]
    return any("".join(words[i:]) in _WIDTH_NAMES for i in range(len(words)))


def _counts_as_widths(df: pd.DataFrame, m: ColumnMapping) -> list[str]:
    """A note when sizes read as widths look like parameter counts (a column ``n_params`` of 2e5-5e7): theory's
    exponents are per width, and a parameter count grows as width^2, so every verdict would be off by 2x; and the
    other way, a column named as a width (``width``, ``d_model``) of widths' sizes read as parameter counts."""
    sizes = pd.to_numeric(df[m.size_col], errors="coerce")
    if m.size_kind == "params":
        if re.sub(r"[^a-z0-9]", "", m.size_col.lower().rsplit(".", 1)[-1]) not in _WIDTH_NAMES or not (
                sizes.max() <= WIDTH_PLAUSIBLE):
            return []
        # theory's verdict was "INCONSISTENT" for a muP sweep by width, with nothing said (a review)
        return [f"{m.size_col} ({sizes.min():.3g} to {sizes.max():.3g}) looks like widths, read as parameter counts "
                f"({option('size_kind')} params): theory's exponents per parameter count are half those per width, "
                f"so its verdict would be off by 2x; leave {option('size_kind')} out if it counts the width"]
    if m.size_kind != "width":
        return []
    if sizes.max() <= SMALL_WIDTHS and "base_width" not in df.columns and not _multiplier_named(m.size_col):
        # muP's width_mult 1, 2, 4, 8 under a width's name: a prediction "at width 4096" was at 4096x the base width
        shown = _shown(m.size_col)
        name = next((n for n in ("width", "d_model", "n_embd", "hidden_size") if n not in df.columns), "model_width")
        return [f"{UNRELIABLE}{shown}: widths {_count(sizes.min())}..{_count(sizes.max())}: width multipliers (muP's "
                f"width_mult: the width over the base width)? Read as widths, every prediction's width is then a "
                f"multiplier too (width 4096 at 4096x the base width); if they are, give the widths, the multiplier "
                f"times the base width: {option('derive')} {name}={shown}*BASE (BASE the base width, e.g. 256) and "
                f"{option('size_col')} {name}"]
    key = re.sub(r"[^a-z0-9]", "", m.size_col.lower())
    # "N" counts parameters (Chinchilla's); "n" is the theory's own width
    named = m.size_col.strip() == "N" or key in ("nparams", "numparams", "params", "parameters") or any(
        k in m.size_col.lower() for k in ("param", "n_p", "numel"))
    # a name that ends as a width's (Optuna's params_width, hparams/d_model: "params" is a prefix there) of values a
    # width takes is a width (a review: params_width's 128-1024 "looks like parameter counts")
    if named and _width_named(m.size_col) and sizes.max() <= WIDTH_PLAUSIBLE:
        return []
    if not named and not sizes.max() > WIDTH_PLAUSIBLE:
        return []
    return [f"{m.size_col} ({sizes.min():.3g} to {sizes.max():.3g}) looks like parameter counts, read as widths: "
            f"give {option('size_kind')} params if it counts parameters (theory's exponents are per width; per "
            "parameter count, which grows as width^2, they halve)"]


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
    per_cell = (df[[*v.group_cols]].assign(_cell=cell, _seed=v.seed, _loss=v.loss)[rest]
                .groupby([*v.group_cols, "_cell"], dropna=False).agg(seeds=("_seed", "nunique"),
                                                                     losses=("_loss", "nunique")))
    several = per_cell[per_cell["seeds"] >= 2]
    same = int((several["losses"] == 1).sum())
    if not several.empty and 2 * same >= len(several):
        notes.append(f"the seeds' losses are identical at {same} of {len(several)} learning rates run with several "
                     "seeds: copies under new seed ids, or a seed the training ignores; they count as one run each")
    return out, notes


#: a seed this many times its cell's lowest loss, below the curve's best LR, is out of line with its siblings
BROKEN_SEED_FACTOR = 1.5


def _broken_below_best(df: pd.DataFrame, m: ColumnMapping, v: _Valid) -> list[str]:
    """A note naming runs at or below their curve's best LR whose finite loss is far above another seed's at
    the same LR: a run that broke (or a loss logged at another step). Small LRs train slowly but alike across
    seeds, and the blow-up rule looks only above the best; fitted as they are, one such run moved a curve's optimum
    by most of an octave and its fitted best loss below zero (a reviewer's simulation)."""
    ok = _trained(v)
    if v.seed is None or ok.sum() < 2:
        return []
    keys = df[[*v.group_cols, m.size_col, *v.constants]]
    _, lr_best = _curve_best(keys, v.lr, v.loss, ok, "min")
    cell_min = keys.assign(_lr=v.lr, _loss=np.where(ok, v.loss, np.inf)).groupby(
        [*keys.columns, "_lr"], dropna=False, sort=False)["_loss"].transform("min").to_numpy()
    # positive losses only: a ratio of log-likelihoods near 0 says nothing
    broken = ok & (v.lr <= lr_best) & np.isfinite(cell_min) & (cell_min > 0) & (v.loss > BROKEN_SEED_FACTOR * cell_min)
    if not broken.any():
        return []
    return [f"{int(broken.sum())} run(s) at or below their curve's best LR have a loss above "
            f"{BROKEN_SEED_FACTOR:g}x another seed's at the same LR ({_rows(broken)}): a run that broke, or a loss "
            "logged at another step? They are fitted as they are and can move the curve's optimum: drop or fix them"]


#: runs above their curves' best LR within this share of one loss, across sizes, form a plateau (_plateau)
PLATEAU_SPREAD = 0.002
#: ... at least this multiple of those curves' best (chance sits far above a trained optimum)
PLATEAU_ABOVE = 1.1


def _plateau(df: pd.DataFrame, m: ColumnMapping, v: _Valid, blowup: float | None) -> list[str]:
    """A note for runs that look collapsed to chance in a table without ``loss_at_init`` (the stall rule's column):
    above their curve's best LR, at two sizes or more, three runs or more ending at one loss (within
    PLATEAU_SPREAD), at least PLATEAU_ABOVE x every one of those curves' best, each curve's plateau its two or more
    largest trained LRs (a flat tail, not a loss some rising curves pass through, nor one cell's seeds). A real
    basin rises with the LR and its level falls with the size; chance does neither. Rows whose loss at init the
    stall rule reads (a finite value, the blow-up rules on) are its, not this note's. Counted as trained, they
    put "max stable" and the stability edge at the grid's top (a user review: the edge's exponent -0.65 for a
    truth of -0.5)."""
    if m.loss_col == "loss_at_init":
        return []
    ok = _trained(v)
    if blowup is not None and "loss_at_init" in df.columns:
        ok = ok & ~np.isfinite(_to_number(df["loss_at_init"]).to_numpy(dtype=float))
    keys = df[[*v.group_cols, m.size_col, *v.constants]]
    best, lr_best = _curve_best(keys, v.lr, v.loss, ok, "min")
    above = ok & (v.lr > lr_best) & (v.loss > 0)
    curve = keys.groupby(list(keys.columns), dropna=False, sort=False).ngroup().to_numpy()
    group = (df[v.group_cols].groupby(list(v.group_cols), dropna=False, sort=False).ngroup().to_numpy()
             if v.group_cols else np.zeros(len(df), int))
    out = []
    for gid in np.unique(group[above]):
        rows = np.flatnonzero(above & (group == gid))  # positions
        loss = v.loss[rows]
        level = float(np.median(loss[loss >= np.quantile(loss, 0.5)]))
        on = np.abs(loss - level) <= PLATEAU_SPREAD * level
        # each curve's plateau is its tail: no run off the level at a larger LR on that curve
        # each curve once (np.unique): the rows' own list rescanned all rows per row, 200 s at a 1M-row table's cap
        top_off = {c: float(np.max(v.lr[rows[(curve[rows] == c) & ~on]], initial=-np.inf))
                   for c in np.unique(curve[rows[on]])}
        near = np.array([r for r, o in zip(rows, on, strict=True) if o and v.lr[r] > top_off[curve[r]]], dtype=int)
        tails = {c: np.unique(v.lr[near[curve[near] == c]]).size for c in np.unique(curve[near])}
        near = near[np.array([tails[c] >= 2 for c in curve[near]], dtype=bool)] if near.size else near
        sizes = np.unique(v.width[near])
        if near.size >= 3 and sizes.size >= 2 and level >= PLATEAU_ABOVE * float(np.max(best[near])):
            mask = np.zeros(len(df), bool)
            mask[near] = True
            out.append(f"{near.size} run(s) above their curve's best LR, at {sizes.size} sizes, end at one loss "
                       f"({level:.4g}, within {100 * PLATEAU_SPREAD:g}%): collapsed to chance? They count as trained, "
                       f"so \"max stable\" and the stability edge may sit too high ({_rows(mask)}); "
                       + ("mark them diverged" if blowup is None else "give a `loss_at_init` column (such runs then "
                          "count as diverged) or mark them diverged"))
    return out


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


#: a derived column: NAME=A/B or NAME=A*B of two numeric columns (B may be a positive number, or A in a product), or
#: NAME=A (a copy of one column under another name: a tracker's config.param as parameterization), optionally :round
#: or :log2round.
_DERIVE = re.compile(
    r"^\s*([^=*/:\s]+)\s*=\s*([^=*/:]+?)\s*(?:([*/])\s*([^=*/:]+?))?\s*(?::\s*(round|log2round))?\s*$")


def derive_columns(df: pd.DataFrame, specs: list[str]) -> pd.DataFrame:
    """``df`` with each derived column added (``tpp=D/N:round``: tokens per parameter rounded to an integer;
    ``:log2round`` rounds to a power of two; ``parameterization=config.param``: a copy under the name a role
    reads): a grouping key or covariate computed without pandas code. No expression is evaluated: a spec is a
    ratio or product of two existing numeric columns, or of one and a positive number (``width=width_mult*256``;
    a product's number may come first, ``width=256*width_mult``), or one existing column. Its first operand (or a
    product's one) is a column: ``k=2*2`` names none, and a number at or below 0 (``width_mult*-256``) is refused
    as no factor, each with its own message (``k=2*2`` was a KeyError, REST 500: a review)."""
    problems: list[str] = []
    out = df.copy() if specs else df
    for spec in specs:
        m = _DERIVE.match(spec)
        if m is None:
            problems.append(f"{option('derive')}: {spec!r} is not NAME=A/B or NAME=A*B (B a column or a positive "
                            "number; optionally :round or :log2round), or NAME=A (a copy of column A)")
            continue
        name, a, op, b, how = m.groups()
        if name in out.columns:
            problems.append(f"{option('derive')}: {name} is already a column")
            continue
        if op is not None and f"{a}{op}{b}" in out.columns and (a not in out.columns or b not in out.columns):
            # train/lr: one column, not a ratio
            problems.append(f"{option('derive')} {spec.strip()!r}: {a}{op}{b} is one column, whose name a spec cannot "
                            "hold (/ * : are its operators): name it in its role's option, or rename it first")
            continue
        # a product's number may come first (width=256*width_mult): read as width_mult*256
        if op == "*" and a not in out.columns and b in out.columns and _derive_float(a) is not None:
            a, b = b, a
        # B may be a number (width=width_mult*256: a width multiplier times the base width) where no column is so named;
        # A is a column (k=2*2 named none: a KeyError, REST 500, a review)
        number = _derive_float(b) if op is not None and b not in out.columns else None
        said = []
        if a not in out.columns:
            said.append(f"{option('derive')} {spec.strip()!r}: {a} is a number, not a column: a spec needs a column "
                        "(NAME=A*N, NAME=N*A or NAME=A/N with A a column and N a positive number)"
                        if _derive_float(a) is not None
                        else f"{a}: missing column (named in {option('derive')} {spec.strip()!r})")
        if op is not None and b not in out.columns:
            if number is None:
                said.append(f"{b}: missing column (named in {option('derive')} {spec.strip()!r})")
            elif not (math.isfinite(number) and number > 0):
                said.append(f"{option('derive')} {spec.strip()!r}: {b} is not a positive finite number, which a "
                            "factor or divisor must be (width=width_mult*256)")
        if said:
            problems += said
            continue
        if op is None and how is None:  # a copy: any type, as the table holds it
            out[name] = out[a]
            continue
        va = _to_number(out[a]).astype(float)
        if op is None:  # one column, rounded
            if va.isna().any():
                problems.append(f"{option('derive')} {spec.strip()!r}: {a} must be numbers to {how} them")
                continue
            val = va
        else:
            vb = pd.Series(number, index=out.index) if number else _to_number(out[b]).astype(float)
            if va.isna().any() or vb.isna().any() or (op == "/" and (vb == 0).any()):
                problems.append(f"{option('derive')} {spec.strip()!r}: {a} and {b} must be numbers"
                                + (f" and {b} nonzero" if op == "/" else ""))
                continue
            val = va / vb if op == "/" else va * vb
        if how == "round":
            val = val.round()
        elif how == "log2round":
            val = pd.Series(2.0 ** np.round(np.log2(val.where(val > 0))), index=val.index)
        out[name] = val
    if problems:
        raise TableError(problems)
    return out


def _derive_float(text: str | None) -> float | None:
    """A derived column's operand as a number (``256`` in ``width=width_mult*256``; ``-256``, ``0`` and ``inf`` too,
    which :func:`derive_columns` refuses by name), else None (a column's name)."""
    try:
        return float(str(text).strip())
    except ValueError:
        return None


def _default_loss(df: pd.DataFrame, m: ColumnMapping) -> ColumnMapping:
    """The mapping with its loss column resolved: an unset one is the held-out DEFAULT_LOSS where every run
    with a training loss has one (a table whose eval column is empty or partial keeps ``final_loss``)."""
    if "loss_col" in m.model_fields_set or DEFAULT_LOSS not in df.columns:
        return m
    if m.loss_col not in df.columns:  # the only loss there is, however empty (said as such, not as a missing one)
        return ColumnMapping(**{**m.model_dump(exclude_unset=True), "loss_col": DEFAULT_LOSS})
    if not _complete(df, DEFAULT_LOSS, m.loss_col):
        return m
    return ColumnMapping(**{**m.model_dump(exclude_unset=True), "loss_col": DEFAULT_LOSS})


def _complete(df: pd.DataFrame, held: str, train: str) -> bool:
    """Whether column ``held`` has a finite loss somewhere and wherever ``train`` has one."""
    h = _to_number(df[held])
    t = _to_number(df[train]) if train in df.columns else h
    return bool(np.isfinite(h).any() and not (np.isfinite(t) & ~np.isfinite(h)).any())


#: words of a column's name that say it holds a held-out loss (val_loss, eval/loss, loss/valid, ValidationLoss)
_HELD_OUT_WORDS = frozenset({"val", "valid", "validation", "eval", "evaluation", "heldout", "test", "dev"})


def _held_out_like(name: object) -> bool:
    words = re.findall(r"[a-z]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", str(name)).lower())
    return ("loss" in words and any(w in _HELD_OUT_WORDS for w in words)) or any(
        w in {f"{h}loss" for h in _HELD_OUT_WORDS} | {f"loss{h}" for h in _HELD_OUT_WORDS} for w in words)


def _held_out_note(df: pd.DataFrame, m: ColumnMapping) -> list[str]:
    """A note where the default loss fell back to the training loss (no complete DEFAULT_LOSS column) though a
    column named like a held-out loss (``val_loss``, ``eval/loss``) is complete: a team's own name for the loss
    the default means to rank by, which the fit said nothing of (a review)."""
    if "loss_col" in m.model_fields_set or m.loss_col == DEFAULT_LOSS:
        return []
    if DEFAULT_LOSS in df.columns and m.loss_col in df.columns:
        # a partial eval column (one cell emptied, a second sweep appended without evals) moved every group of the
        # table to the training loss in silence, an octave off where the two losses' optima differ (a review)
        held, train = _to_number(df[DEFAULT_LOSS]), _to_number(df[m.loss_col])
        lacking = np.isfinite(train) & ~np.isfinite(held)
        if np.isfinite(held).any() and lacking.any():
            return [f"{m.loss_col} fitted, a training loss, for every run: {DEFAULT_LOSS} (the held-out loss, the "
                    f"default where every run has one) is missing or not finite in {int(lacking.sum())} of "
                    f"{int(np.isfinite(train).sum())} rows with a {m.loss_col} ({_rows(lacking.to_numpy())}); to "
                    f"fit the held-out loss, give {option('loss_col')} {DEFAULT_LOSS} (runs without one then count "
                    "as diverged), or fill it in"]
    found = [c for c in df.columns if c not in (m.loss_col, DEFAULT_LOSS) and _held_out_like(c)
             and _mostly_numbers(df[c]) and _complete(df, c, m.loss_col)]
    if not found:
        return []
    return [f"{m.loss_col} fitted, a training loss: the table has no complete {DEFAULT_LOSS} column, but "
            f"{', '.join(_shown(c) for c in found[:3])} {'holds' if len(found) == 1 else 'hold'} a held-out loss "
            f"for every run; to fit it, give {option('loss_col')} {_shown(found[0])}"]


def _best_so_far_loss(df: pd.DataFrame, m: ColumnMapping) -> list[str]:
    """A note where the loss column is named as a best-so-far value (:func:`_best_so_far`: ``best_val_loss``,
    ``summary.best_val_loss``, ``min_loss``): a run that diverged keeps the finite loss it had before it blew up, so
    it reads as trained, and "max stable" and the stability edge read diverged runs as stable (a review: "max stable"
    at the top of the grid at every width, unsaid). Names the table's final loss columns (measurements of a loss not
    named so, the same name without its "best" first) to fit instead. Not where the table's divergence column flags
    runs: those are diverged whatever their loss."""
    if m.loss_col not in df.columns or not _best_so_far(m.loss_col):
        return []
    div_col = m.diverged_col if m.diverged_col in df.columns else None
    if _flagged(df, div_col).any():
        return []
    roles = {m.size_col, m.lr_col, m.loss_col, m.seed_col, m.diverged_col, *(m.group_cols or ()),
             *(m.covariates or ())}
    stem = [w for w in _name_words(m.loss_col) if w not in _BEST_WORDS and not w.startswith(("best", "lowest"))
            and w not in ("so", "far", "sofar")]
    found = sorted((c for c in df.columns if c not in roles and "loss" in _key(c) and is_measurement_name(c)
                    and not _best_so_far(c) and _mostly_numbers(df[c])),
                   key=lambda c: (_name_words(c) != stem, not _held_out_like(c), str(c)))
    also = (f"; fit the runs' final loss instead ({option('loss_col')} {_shown(found[0])}"
            + (f"; or {', '.join(_shown(c) for c in found[1:3])}" if len(found) > 1 else "") + ")") if found else \
        "; fit the runs' final loss instead"
    return [f"{_shown(m.loss_col)}: a best-so-far loss, by its name: a run that diverged keeps the finite loss it had "
            f"before it blew up, so it reads as trained, and \"max stable\" and the stability edge read diverged runs "
            f"as stable (LR* itself moves little: it sits where the runs trained){also}, or flag the diverged runs "
            f"in a divergence column ({option('diverged_col')})"]


#: the runner's LR columns besides the three layers' own (:data:`LR_LAYER_COLUMNS`): its vector and fixed roles' own
#: LRs and log2 of beta
_RUNNER_LR_COLUMNS = ("log2_lr", "lr_vector", "lr_fixed")
#: the LR column within this share of one multiple of another LR column, in every row, is that column rescaled
LR_MULTIPLE_RTOL = 0.01


def _role_lr(name: object) -> bool:
    """Whether a column holds one layer's or role's own LR (the runner's ``lr_hidden`` and ``lr_vector``, a team's
    ``hidden_lr`` or ``lr/head``: :func:`lr_layer_of`) or the runner's ``log2_lr``: no candidate for the sweep's one
    LR, and in the runner's tables beta times a factor of the width and gamma."""
    return str(name) in _RUNNER_LR_COLUMNS or lr_layer_of(str(name)) is not None


def _lr_named(name: object) -> bool:
    """Whether a column's name says it holds a learning rate, as the missing-column hint reads it (``_LIKELY``):
    ``learning_rate`` anywhere in it, or a word of it that starts or ends with ``lr`` (``lr``, ``train/lr``,
    ``peak_lr``, ``maxLR``, ``lr0``). Not ``lr`` inside a word: Hugging Face's ``eval_runtime`` ("eva-lr-untime") was
    suggested as the LR (a review)."""
    return "learningrate" in _key(name) or any(w.startswith("lr") or w.endswith("lr") for w in _name_words(name))


#: words of an LR column's name, besides its LR words, that say it holds the LR a run was configured with (a config's
#: namespace: Hugging Face's ``config_learning_rate``, MLflow's ``params.lr``) or its schedule's peak or start
#: (``peak_lr``, ``max_lr``, ``initial_lr``, YOLO's ``lr0``); not ``base`` (``base_lr``, MAE's ``blr``: the LR a batch
#: scaling rule multiplies, no schedule's) nor ``scaled``
_CONFIGURED_LR_WORDS = frozenset({"config", "configs", "cfg", "configured", "args", "hparams", "hparam", "hp", "hps",
                                  "hyperparameters", "hyperparams", "params", "param", "peak", "max", "maximum", "init",
                                  "initial", "start", "starting", "lr0"})
#: words that may stand beside the LR's words in the name of the LR a trainer logs as it trains (``learning_rate``,
#: ``train/lr``, ``trainer/learning_rate``, Lightning's ``lr-AdamW``, ``current_lr``)
_LOGGED_LR_WORDS = frozenset({"lr", "learning", "rate", "learningrate", "train", "training", "trainer", "optim",
                              "optimizer", "optimiser", "current", "cur", "last", "final", "scheduled", "sched",
                              "logged", "actual", "step", "metrics", "metric", "charts", "adam", "adamw", "sgd", "lion",
                              "muon", "adafactor"})


def _logged_lr_name(name: object) -> bool:
    """Whether an LR column is named as the LR a trainer logs (``learning_rate``, ``lr``, ``train/lr``, ``lr-AdamW``,
    Lightning's param groups ``pg0``): the value at a log step, which a schedule moves."""
    plain = [w for w in re.split(r"[^a-z0-9]+", str(name).lower()) if w]  # lr-AdamW: lr, adamw
    return any(bool(words) and all(w in _LOGGED_LR_WORDS or re.fullmatch(r"pg\d*|\d+", w) for w in words)
               for words in (_name_words(name), plain))


def _configured_lr_name(name: object) -> bool:
    """Whether an LR column is named as the configured LR or its schedule's peak or start (``config_learning_rate``,
    ``config.lr``, ``peak_lr``, ``max_lr``, ``initial_lr``): :data:`_CONFIGURED_LR_WORDS`."""
    return bool(set(_name_words(name)) & _CONFIGURED_LR_WORDS)


def _scheduled_lr(df: pd.DataFrame, m: ColumnMapping) -> list[str]:
    """A note when the LR column is, in every row, one multiple below 1 (to ``LR_MULTIPLE_RTOL``) of another swept LR
    column no role names. Unreliable where the names say a schedule: the LR column named as the LR a trainer logs
    (:func:`_logged_lr_name`: ``learning_rate``, ``lr``, ``train/lr``) and the other as the configured LR or the
    schedule's peak or start (:func:`_configured_lr_name`: ``config_learning_rate``, ``peak_lr``, ``max_lr``,
    ``initial_lr``): a scheduled LR logged after its decay (Hugging Face's Trainer logs ``learning_rate`` at its last
    log step, 1/90 of the configured ``config_learning_rate`` under a linear decay: a review's LR* came out 86x low and
    every gate passed). Plain otherwise: a constant multiple is as often a batch-scaled LR (MAE's ``blr`` with ``lr =
    blr * batch / 256``, ``base_lr``, ``scaled_lr``), the exponent the same in either column's units (a review: an
    unreliable warning there failed ``--strict``, a team's CI). The fit is in the LR column's units. Not where the LR
    column is one layer's own LR, nor against one (:func:`_role_lr`: the runner's ``lr_embedding`` is beta times a
    constant at one width, by design)."""
    if m.lr_col not in df.columns or _role_lr(m.lr_col) or pd.api.types.is_bool_dtype(df[m.lr_col]):
        return []
    lr = _to_number(df[m.lr_col]).to_numpy(dtype=float)
    if not len(lr) or not (np.isfinite(lr) & (lr > 0)).all():
        return []
    roles = {m.size_col, m.loss_col, m.seed_col, m.diverged_col, *(m.group_cols or ()), *(m.covariates or ())}
    plain = []
    for c in df.columns:
        if c == m.lr_col or c in roles or c in RUN_MEASUREMENTS or _role_lr(c) or not _lr_named(c) \
                or pd.api.types.is_bool_dtype(df[c]):
            continue
        other = _to_number(df[c]).to_numpy(dtype=float)
        if not (np.isfinite(other) & (other > 0)).all() or np.unique(other).size < 2:
            continue
        ratio = lr / other
        mid = float(np.median(ratio))
        if not (mid < 1 - LR_MULTIPLE_RTOL and np.ptp(ratio) <= LR_MULTIPLE_RTOL * mid):
            continue
        lr_col, shown = _shown(m.lr_col), _shown(c)
        if _logged_lr_name(m.lr_col) and _configured_lr_name(c):
            return [f"{UNRELIABLE}{lr_col}: {shown} x {mid:.3g} in every row: a scheduled LR logged after its decay "
                    f"(a trainer's last logged LR)? The fit and its LR* are in {lr_col}'s units, {mid:.3g}x "
                    f"{shown}'s; if {shown} is the swept peak LR, fit it with {option('lr_col')} {shown}"]
        plain.append(f"{lr_col} is {shown} x {mid:.3g} in every row: the fit and its LR* are in {lr_col}'s units (the "
                     f"exponent is the same in either); to have LR* in {shown}'s, fit it with {option('lr_col')} "
                     f"{shown}")
    return plain[:1]


# --- validation ----------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Valid:
    """The checked columns, as floats, and the resolved column roles."""

    width: np.ndarray
    lr: np.ndarray
    loss: np.ndarray
    seed: np.ndarray | None
    diverged: np.ndarray
    constants: dict[str, np.ndarray]
    group_cols: list[str]
    blown_up: np.ndarray | None = None  # finite losses the blow-up rule counted as diverged
    missing: np.ndarray | None = None  # no loss (NaN) at an LR below its curve's best: counted as diverged
    unflagged: np.ndarray | None = None  # no loss (NaN), a few the divergence column says did not diverge
    merged: tuple[str, ...] = ()  # the note on learning rates of a curve read as one grid point (_merge_close)
    stalled: np.ndarray | None = None  # runs above the best LR that ended at their loss at init (STALL_FRACTION)


@dataclass(frozen=True)
class _Roles:
    group_cols: list[str]
    constant_cols: list[str]
    seed_col: str | None
    div_col: str | None


#: the table's row numbers as given, while prepare fits a table with some rows left out (_unfinished_runs): the
#: messages name rows as the user counts them
_GIVEN_ROWS: ContextVar[np.ndarray | None] = ContextVar("_GIVEN_ROWS", default=None)


def _rows(mask: np.ndarray | pd.Series, limit: int = 5) -> str:
    idx = np.flatnonzero(np.asarray(mask))
    if (given := _GIVEN_ROWS.get()) is not None:
        idx = given[idx]
    shown = ", ".join(str(int(i)) for i in idx[:limit])
    return f"{idx.size} row(s), e.g. row {shown}" if idx.size > limit else f"row(s) {shown}"


#: The magnitudes of a table's median loss the fitter takes (cross-entropies, perplexities, MSEs all lie well within).
LOSS_RANGE = (1e-30, 1e30)
#: a run's loss beyond this multiple of the runs' median is no loss a run reached (a garbage or overflowed value)
LOSS_SPREAD = 1e30


def _kind(v: object) -> str:
    return ("true/false" if isinstance(v, bool | np.bool_) else "numbers" if isinstance(v, int | float | np.number)
            else "text")


def _to_number(s: pd.Series) -> pd.Series:
    """``pd.to_numeric`` with unreadable cells NaN, as ``errors="coerce"`` gives, and integers too large for a
    float (a JSON 10**400, a 400-digit CSV cell, which pandas refuses with OverflowError) +-inf, which the
    columns' checks then refuse as not finite."""
    try:
        return pd.to_numeric(s, errors="coerce")
    except OverflowError:
        return pd.Series([_float_or_nan(v) for v in s], index=s.index, dtype=float)


def _float_or_nan(v: object) -> float:
    if isinstance(v, bool | np.bool_):
        return math.nan
    try:
        return float(v)  # type: ignore[arg-type]
    except OverflowError:  # an int or a digit string beyond the float range
        text = str(v).strip()
        return -math.inf if text.startswith("-") else math.inf
    except (TypeError, ValueError):
        return math.nan


#: a count written with a suffix (``124M``, ``1.3B``, ``8k``): its power of ten
_SUFFIXES = {"k": 3, "m": 6, "b": 9, "g": 9, "t": 12}
_SUFFIXED = re.compile(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*([kmbgt])", re.IGNORECASE)


def _suffix_hint(first: str, counted: str) -> str:
    """The hint for a cell such as ``124M`` (a parameter count as a model card writes it): the number to write."""
    found = _SUFFIXED.fullmatch(first.strip())
    if found is None:
        return ""
    number = f"{found.group(1)}e{_SUFFIXES[found.group(2).lower()]}"
    return f" ({counted} with a suffix? write it as a number: {number}, not {first.strip()})"


def _numeric(df: pd.DataFrame, col: str, problems: list[str], *, loss: bool = False,
             counted: str = "a count") -> pd.Series | None:
    s = df[col]
    # true/false is not a number here (pandas would read true as 1): a JSON row or a parquet bool column
    flags = (s.notna() if pd.api.types.is_bool_dtype(s) else
             s.map(lambda v: isinstance(v, bool | np.bool_)) if s.dtype == object else None)
    if flags is not None and flags.any():
        problems.append(f"{col}: true/false is not a number, in {_rows(flags)}")
        return None
    num = _to_number(s)
    # the words a CSV reader reads as missing ("nan", "", "null", ...), written as text in JSON rows or a text
    # column: missing here too, as in the same table read from a CSV
    missing = s.map(lambda v: isinstance(v, str) and v.strip().lower() in _MISSING_WORDS) \
        if not pd.api.types.is_numeric_dtype(s) else pd.Series(False, index=s.index)
    bad = num.isna() & s.notna() & ~missing
    if bad.any():
        first = str(s[bad].iloc[0])
        hint = (" (a thousands separator or a decimal comma? write 1024 or 1.024, not 1,024)"
                if re.fullmatch(r"[+-]?[1-9]\d{0,2}(,\d{3})+", first.strip()) else
                " (a decimal comma? write 0.001, not 0,001)" if "," in first else
                f" (a run that diverged: leave its cell empty or write NaN, or flag it in a column named by "
                f"{option('diverged_col')})" if loss and first.strip().lower() in _FAILED_WORDS else
                _suffix_hint(first, counted) if not loss else "")
        problems.append(f"{col}: not a number in {_rows(bad)} (the first: {first[:40]!r}){hint}")
        return None
    return num.astype(float)


#: the usual text a CSV reader (pandas' defaults among them) reads as a missing value
_MISSING_WORDS = frozenset({"", "nan", "-nan", "na", "n/a", "null", "none", "<na>", "#n/a", "#na"})
#: text that says a run failed, in place of its loss
_FAILED_WORDS = frozenset({"diverged", "divergence", "failed", "fail", "crashed", "crash", "killed", "error",
                           "oom", "-"})


def _iv(df: pd.DataFrame, m: ColumnMapping, blowup: float | None = BLOWUP_FACTOR) -> _Valid:
    """Check every column the mapping names; raise one TableError listing every problem."""
    problems: list[str] = []
    roles = _roles(df, m, problems)
    if any("missing column" in p for p in problems):
        raise TableError(problems)
    width = _check_width(df, m.size_col, problems, m.size_kind)
    lr = _check_positive(df, m.lr_col, "learning rates", problems)
    loss = _numeric(df, m.loss_col, problems, loss=True)
    consts = {c: v for c in roles.constant_cols
              if (v := _check_positive(df, c, "per-layer constants", problems)) is not None}
    for c in m.covariates or []:
        if c in df.columns:
            _check_positive(df, c, f"values of a covariate ({option('covariates')})", problems)
    # the loss before the first update decides divergences (a loss above it) and stalls: read as a number or not at
    # all (a text column was ignored in silence, a review)
    at_init = _numeric(df, INIT_COL, problems) if INIT_COL in df.columns and m.loss_col != INIT_COL else None
    seed = None
    if roles.seed_col is not None:
        seed = _seed_ids(df[roles.seed_col])
        seed = _numeric(df, roles.seed_col, problems) if seed is None else seed
        if seed is not None and seed.isna().any():
            problems.append(f"{roles.seed_col}: missing seed in {_rows(seed.isna())}")
        elif seed is not None and np.isinf(seed).any():
            problems.append(f"{roles.seed_col}: infinite seed in {_rows(np.isinf(seed))}")
    for c in roles.group_cols:  # JSON rows can mix them; a stored table (parquet) cannot hold the mix as sent
        if df[c].dtype == object and len(kinds := {_kind(v) for v in df[c] if v is not None and v == v}) > 1:
            problems.append(f"{c}: a group column mixes {' and '.join(sorted(kinds))}; give each column one type")
        blank = df[c].isna() | (df[c].astype(str).str.strip() == "")
        if c in THEORY_COLUMNS and blank.any() and not blank.all():
            # its rows would leave their group for a group of their own, and the group's exponent change in silence
            problems.append(f"{c}: empty in {_rows(blank)}; theory reads it for every run's group: fill it in "
                            "or drop the rows")
    if "base_width" in df.columns:  # a width too, whether it is a group key or C's reference width
        bw = _to_number(df["base_width"])
        if (bad := bw.isna() & df["base_width"].notna()).any():
            problems.append(f"base_width: not a number in {_rows(bad)}")
        elif (bad := bw.notna() & ~(bw.between(1, MAX_WIDTH) & (bw == np.round(bw)))).any():
            problems.append(f"base_width: must be between 1 and {MAX_WIDTH} (2**40), a whole number, not in "
                            f"{_rows(bad)}")
    if problems:
        raise TableError(problems)
    assert width is not None and lr is not None and loss is not None  # each failure above added a problem
    curve = df.groupby([*roles.group_cols, m.size_col, *roles.constant_cols], dropna=False, sort=False).ngroup()
    lr_merged, said = _merge_close(lr.to_numpy(float), curve.to_numpy())
    merged = _merged_note(m.lr_col, said, int((lr_merged != lr.to_numpy(float)).sum()))
    lr = pd.Series(lr_merged, index=lr.index)
    if at_init is not None and (bad_init := _init_problems(at_init, loss, _flagged(df, roles.div_col))):
        raise TableError(bad_init)  # before _diverged reads it (a 0 there: "all runs diverged")
    flagged = _diverged(df, m, loss.to_numpy(), roles.div_col)  # a diverged run's logged 0 or -1 is not a loss
    # -inf is no divergence (NaN and +inf are) but a loss unbounded below, as impossible as -1 unless the table's
    # divergence column flags its run: it counted as diverged in silence (a review)
    neg_inf = np.isneginf(loss) & ~_flagged(df, roles.div_col)
    if (bad := (np.isfinite(loss) & (loss <= 0) & ~flagged) | neg_inf).any():
        # a blow-up is a multiple of the curve's best and the loss bands a share of it: both need losses > 0
        raise TableError([f"{m.loss_col}: the fitter needs positive losses (a blow-up is {BLOWUP_FACTOR:g}x the "
                          "curve's best, the loss penalties are shares of it); zero or negative (-inf included) in "
                          f"{_rows(bad)}: add a constant that puts every loss well above zero, the best near "
                          "its usual size (a negative log-likelihood's offset; the optima do not change, and the "
                          "penalties are shares of the best loss, so one near 0 inflates them)"])
    diverged, blown = flagged, None
    keys = [*roles.group_cols, m.size_col, *roles.constant_cols]
    stalled = None
    if blowup is not None:
        blown = _blown_up(df[keys], lr.to_numpy(), loss.to_numpy(), diverged, blowup)
        diverged = diverged | blown
        if "loss_at_init" in df.columns and m.loss_col != "loss_at_init":
            init = _to_number(df["loss_at_init"]).to_numpy(dtype=float)
            stalled = _stalled(df[keys], lr.to_numpy(), loss.to_numpy(), init, diverged)
            diverged = diverged | stalled
    missing = _missing_below_best(df[keys], lr.to_numpy(), loss.to_numpy(), diverged) \
        & ~_flagged(df, roles.div_col)  # a run the table says diverged is one, wherever it sits
    # above the best, a NaN is what a divergence looks like, unless the table's own column, which flags most of its
    # NaN runs, says a few were not (a column computed as `loss > 10` flags no NaN: its false says nothing)
    nan = np.isnan(loss.to_numpy())
    unflagged = nan & _said_not_diverged(df, roles.div_col) & ~missing
    if unflagged.sum() >= (nan & _flagged(df, roles.div_col)).sum():
        unflagged = np.zeros_like(unflagged)
    kept = loss.to_numpy()[~diverged]
    kept = kept[np.isfinite(kept)]
    if kept.size and not LOSS_RANGE[0] <= abs(float(np.median(kept))) <= LOSS_RANGE[1]:
        # the fits square losses and their differences: at 1e154 they overflow, at 1e300 the optima drift
        raise TableError([f"{m.loss_col}: the runs' median loss is {float(np.median(kept)):.3g}; the fitter takes "
                          f"losses of magnitude {LOSS_RANGE[0]:g} to {LOSS_RANGE[1]:g}: divide the column by a "
                          "constant (the optimal learning rates do not change)"])
    if kept.size and (far := np.isfinite(loss.to_numpy()) & ~diverged
                      & (np.abs(loss.to_numpy()) > LOSS_SPREAD * abs(float(np.median(kept))))).any():
        # one such value squared overflows the noise estimates (a curve's noise came out 0 for a 1e308)
        raise TableError([f"{m.loss_col}: {_rows(far)} hold a loss more than {LOSS_SPREAD:g}x the runs' median "
                          f"({float(np.median(kept)):.4g}; e.g. {float(loss.to_numpy()[far][0]):.3g}), which no run "
                          f"that trained reaches: an overflowed or mis-logged value. Fix or drop those rows, or mark "
                          f"them diverged ({option('diverged_col')})"])
    return _Valid(width.to_numpy(), lr.to_numpy(), loss.to_numpy(), None if seed is None else seed.to_numpy(),
                  diverged, {c: v.to_numpy() for c, v in consts.items()}, roles.group_cols, blown, missing,
                  unflagged, tuple(merged), stalled=stalled)


#: what a tracker's export names each role's column, lower case with separators dropped (a hint, never a choice)
_LIKELY = {"size_col": ("width", "dmodel", "hiddensize", "hiddendim", "nembd", "embeddim", "modeldim", "nparams"),
           "lr_col": ("learningrate", "lr"), "loss_col": ("loss",)}


def _mostly_numbers(s: pd.Series) -> bool:
    return bool(_to_number(s).notna().mean() >= 0.5) if len(s) else False


def _shown(name: Any) -> str:
    """A column's name as a message shows it: quoted where a space at its ends or a comma would hide it."""
    text = str(name)
    return repr(text) if text != text.strip() or "," in text or not text else text


def _roles(df: pd.DataFrame, m: ColumnMapping, problems: list[str]) -> _Roles:
    """Which columns are the group key, the swept constants, the seed and the divergence flag."""
    default = ColumnMapping()
    cols = set(df.columns)
    missing = [(role, col) for role, col in (("size_col", m.size_col), ("lr_col", m.lr_col),
                                             ("loss_col", m.loss_col)) if col not in cols]
    nested, missing = _nested_problem(df, missing), list(missing)
    if nested is not None:  # one message for every column found in a column of dicts (wandb's export snippet)
        problems.append(nested[0] + ("" if len(nested[1]) < len(missing) else
                                     f"; columns are: {', '.join(_shown(c) for c in sorted(cols))}"))
        missing = [(role, col) for role, col in missing if col not in nested[1]]
    for i, (role, col) in enumerate(missing):  # the table's columns once, after the last
        listing = f"; columns are: {', '.join(_shown(c) for c in sorted(cols))}" if i == len(missing) - 1 else ""
        wanted = {_key(col), *([_key(DEFAULT_LOSS)] if role == "loss_col" else [])}
        alike = sorted(str(c) for c in cols if _key(c) in wanted)  # `Eval_Loss`, `Width`: the case or separators
        # else a tracker's names for it (wandb's config.d_model, config.learning_rate, val_loss)
        # (an LR's name on its words: not eval_runtime; a column of zeros no size, LR or loss: a tracker's train/lr
        # logged after its decay to 0, a review)
        alike = alike or sorted((str(c) for c in cols if (_lr_named(c) if role == "lr_col" else
                                                          any(w in _key(c) for w in _LIKELY[role]))
                                 and c not in (*THEORY_COLUMNS, *RUN_MEASUREMENTS, "base_width")
                                 and _mostly_numbers(df[c]) and bool((_to_number(df[c]) > 0).any())),
                                key=lambda c: (not any(_key(c).endswith(w) for w in _LIKELY[role]),
                                               not any(w in _key(c) for w in ("val", "eval", "test")), c))
        # a name with a stray space (` width`) quoted: unquoted, the advice read as the name that failed (a review)
        hint = (f"; {', '.join(_shown(c) for c in alike[:4])} {'looks' if len(alike) == 1 else 'look'} like it: "
                f"name it with {option(role)}" + (f" {alike[0]!r}" if _shown(alike[0]) != alike[0] else "")
                if alike else "")
        problems.append(f"{col}: missing column (the {option(role)} column){hint}{listing}")
    if m.lr_col == default.lr_col and m.lr_col in cols and df[m.lr_col].nunique() == 1:
        # an optimizer's beta (Adam's 0.9) beside the LR: read as the LR, no LR was swept, and the warnings spoke of
        # diverged grids and group columns (a review)
        # not a layer's or role's own LR (the runner's lr_hidden: beta times the width's factor; a team's hidden_lr,
        # named as the sweep's LR before session 66) nor the runner's log2_lr (beta's)
        alike = sorted(str(c) for c in cols if c != m.lr_col and _lr_named(c) and not _role_lr(c)
                       and _mostly_numbers(df[c]) and _to_number(df[c]).nunique() >= 3)
        if alike:
            problems.append(f"{m.lr_col}: one value ({df[m.lr_col].iloc[0]}) in every row, so no learning rate "
                            f"was swept in it; {', '.join(alike[:3])} {'looks' if len(alike) == 1 else 'look'} like "
                            f"the learning rate: name it with {option('lr_col')}")
    seed_col = m.seed_col if m.seed_col in cols else None
    if m.seed_col and seed_col is None and m.seed_col != default.seed_col:
        problems.append(f"{m.seed_col}: missing column (the {option('seed_col')} column)")
    div_col = m.diverged_col if m.diverged_col in cols else None
    if m.diverged_col and div_col is None and m.diverged_col != default.diverged_col:
        problems.append(f"{m.diverged_col}: missing column (the {option('diverged_col')} column)")
    for role, found, name in (("seed_col", seed_col, m.seed_col), ("diverged_col", div_col, m.diverged_col)):
        # "Diverged" or "SEED" is not the default's spelling: read as nothing, it would be silently ignored
        like = [c for c in cols if name and found is None and c != name and c.strip().lower() == name.lower()]
        if like:
            problems.append(f"{like[0]}: looks like the {name} column; name it with {option(role)} {like[0]!r} "
                            f"(or rename it {name!r})")
    covariates = list(dict.fromkeys(m.covariates or []))
    problems += [f"{c}: missing column (named in {option('covariates')})" for c in covariates if c not in cols]
    taken = {m.size_col: "size_col", m.lr_col: "lr_col", m.loss_col: "loss_col", m.seed_col: "seed_col"}
    problems += [f"{c}: cannot be both a covariate and the {option(taken[c])} column" for c in covariates
                 if c in taken]
    if m.group_cols is None:
        group_cols = [c for c in GROUP_COLUMNS if c in cols and c not in covariates]
        group_cols += [c for c in EXTRA_GROUP_COLUMNS if c in cols and c not in covariates
                       and df[c].nunique(dropna=False) > 1]
    else:
        group_cols = list(dict.fromkeys(m.group_cols))
        problems += [f"{c}: missing column (named in {option('group_cols')})" for c in group_cols if c not in cols]
        problems += [f"{c}: cannot be both a group column and a covariate" for c in group_cols if c in covariates]
    # the covariates split the table into curves too (last in the key), one law is fitted across them
    group_cols = [*[c for c in group_cols if c not in covariates], *[c for c in covariates if c in cols]]
    if m.constant_cols is None:
        # values within LR_MERGE_RTOL are one setting: a constant logged in float32 in some rows, or at 4 digits,
        # read as swept (or retuned), was dropped and the LR answered 10x off (a review)
        constant_cols = [c for c in df.columns if c.startswith(CONSTANT_PREFIXES) and c not in group_cols
                         and pd.api.types.is_numeric_dtype(df[c]) and _n_settings(df[c]) > 1]
        if m.size_col in cols and constant_cols:  # one value per size is derived from the size, not swept
            keys = [c for c in group_cols if c in cols] + [m.size_col]
            by_size = df.groupby(keys, dropna=False)[constant_cols].agg(_n_settings)
            constant_cols = [c for c in constant_cols if by_size[c].max() > 1]
    else:
        constant_cols = list(m.constant_cols)
        problems += [f"{c}: missing column (named in {option('constant_cols')})" for c in constant_cols
                     if c not in cols]
    problems += [f"{c}: cannot be both a group column and the size/LR/loss column" for c in group_cols
                 if c in (m.size_col, m.lr_col, m.loss_col) and c not in covariates]
    # one column, one role: a loss read as the LR, or a width as the divergence flag, is a meaningless fit
    named = [(r, c) for r, c in (("size_col", m.size_col), ("lr_col", m.lr_col), ("loss_col", m.loss_col),
                                 ("seed_col", seed_col), ("diverged_col", div_col)) if c is not None]
    for i, (r1, c1) in enumerate(named):
        problems += [f"{c1}: cannot be both the {option(r1)} and the {option(r2)} column" for r2, c2 in named[i + 1:]
                     if c2 == c1]
    if m.constant_cols is not None:
        problems += [f"{c}: cannot be both a swept constant ({option('constant_cols')}) and the {option(r)} column"
                     for c in dict.fromkeys(m.constant_cols) for r, c2 in named if c2 == c]
        problems += [f"{c}: cannot be both a swept constant ({option('constant_cols')}) and a group column"
                     for c in dict.fromkeys(m.constant_cols) if c in group_cols]
    return _Roles(group_cols, [c for c in constant_cols if c in cols], seed_col, div_col)


#: cells of a text column read to tell whether it holds nested values (a dict per run)
NESTED_SAMPLE = 20


class _NanNames(ast.NodeTransformer):
    """Python's repr of a float's ``nan`` and ``inf`` (names to ``ast``) as their values, for ``literal_eval``."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return ast.Constant(float(node.id)) if node.id in ("nan", "inf") else node


def _nested_cell(v: object) -> dict[str, Any] | None:
    """A cell as the dict it holds: a dict, or its text as JSON or as Python's repr writes it (``{'lr': 0.001}``,
    ``nan`` and ``inf`` among the values, as a CSV of a pandas frame of dicts holds them), else None."""
    if isinstance(v, dict):
        return v
    if not isinstance(v, str) or not v.lstrip().startswith("{"):
        return None
    with contextlib.suppress(ValueError):
        out = json.loads(v)
        return out if isinstance(out, dict) else None
    try:
        tree = ast.parse(v.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    try:  # repr's nan and inf are names: read as their values, literal_eval reads the rest
        out = ast.literal_eval(_NanNames().visit(tree))
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return None
    return out if isinstance(out, dict) else None


def _json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _holds(d: dict[str, Any], key: str) -> bool:
    """Whether ``d`` holds ``key``, as is or as a dotted path (``optimizer.lr``: ``{"optimizer": {"lr": ...}}``)."""
    if key in d:
        return True
    head, dot, rest = key.partition(".")
    return bool(dot) and isinstance(d.get(head), dict) and _holds(d[head], rest)


def _nested_problem(df: pd.DataFrame, missing: list[tuple[str, str]]) -> tuple[str, list[str]] | None:
    """One problem for the missing columns a column of nested values holds (``config.d_model`` in a ``config``
    column of dicts: wandb's export snippet, ``pd.DataFrame({"summary": ..., "config": ...}).to_csv()``, writes each
    cell as the dict's text; a parquet of it, as structs), with pandas' recipe to flatten them; and those columns.
    A requested ``PREFIX.KEY`` (or ``PREFIX/KEY``) is looked for as KEY in a column PREFIX, else as itself in any
    text column of dicts. Said only as "missing column ... columns are: config, name, summary" (a review)."""
    if not missing:
        return None
    dicts: dict[str, list[dict[str, Any]]] = {}
    for c in df.columns:
        if df[c].dtype != object and not pd.api.types.is_string_dtype(df[c]):
            continue
        cells = [d for v in df[c].dropna().iloc[:NESTED_SAMPLE] if (d := _nested_cell(v)) is not None]
        if cells and len(cells) * 2 >= min(NESTED_SAMPLE, int(df[c].notna().sum())):
            dicts[str(c)] = cells
    if not dicts:
        return None
    found: dict[str, tuple[str, str]] = {}  # requested name -> (holding column, key)
    for _, col in missing:
        for sep in (".", "/"):
            prefix, cut, key = col.partition(sep)
            if cut and prefix in dicts and any(_holds(d, key) for d in dicts[prefix]):
                found[col] = (prefix, key)
                break
        else:
            holder = next((c for c, cells in dicts.items() if any(_holds(d, col) for d in cells)), None)
            if holder is not None:
                found[col] = (holder, col)
    if not found:
        return None
    roles = [role for role, col in missing if col in found]
    holders = list(dict.fromkeys(h for h, _ in found.values()))
    # Python's repr of a dict (a CSV of a frame of dicts), not JSON (a parquet's structs, JSON rows: dicts when read)
    text = any(isinstance(v, str) and not _json_object(v) for h in holders for v in df[h].dropna().iloc[:NESTED_SAMPLE])
    flat = ", ".join(f'pd.json_normalize(df["{h}"].tolist()).add_prefix("{h}.")' for h in holders)
    dropped = ", ".join(f'"{h}"' for h in holders)
    names = " and ".join(_shown(h) for h in holders)
    where = "where the table is made, before to_csv writes each dict as its text" if text else "first"
    return (f"{', '.join(_shown(c) for c in found)}: missing column{'s' if len(found) > 1 else ''} (the "
            f"{', '.join(option(r) for r in roles)} column{'s' if len(roles) > 1 else ''}); the table's {names} "
            f"column{'s hold' if len(holders) > 1 else ' holds'} nested values, a dict per run (wandb's export "
            f"snippet, pd.DataFrame({{\"summary\": ..., \"config\": ...}})), with "
            f"{', '.join(_shown(k) for _, k in found.values())} among {'their' if len(holders) > 1 else 'its'} keys: "
            f"flatten them into columns of their own {where} (pandas: df = pd.concat([df.drop(columns=[{dropped}]), "
            f"{flat}], axis=1)) and name those columns",
            list(found))


def _check_width(df: pd.DataFrame, col: str, problems: list[str], size_kind: str = "width") -> pd.Series | None:
    """The size column: positive integers up to 2**40 (widths) or MAX_PARAMS (``size_kind`` params, said "size":
    a 2T-parameter model's 2e12 is past a width's bound)."""
    noun = "width" if size_kind == "width" else "size"
    bound, words = max_size(size_kind)
    width = _numeric(df, col, problems, counted="a parameter count")
    if width is None:  # a word among the numbers: its empty cells said too, not after it is fixed (a review)
        s = df[col]
        blank = s.isna() | s.map(lambda x: isinstance(x, str) and x.strip().lower() in _MISSING_WORDS)
        if blank.any() and not pd.api.types.is_bool_dtype(s):
            problems.append(f"{col}: NaN {noun} in {_rows(blank)} (empty)")
        return None
    if width.isna().any():
        problems.append(f"{col}: NaN {noun} in {_rows(width.isna())}")
    w = width.fillna(1.0)
    # each kind of bad size said at once, each row once (a fractional width was said only once the others were gone)
    bad = (w <= 0) | np.isinf(w)
    if bad.any():
        problems.append(f"{col}: non-positive or infinite {noun} in {_rows(bad)}")
    big = ~bad & (w > bound)
    if big.any():  # as on request fields; beyond it the integer widths would wrap around
        problems.append(f"{col}: {noun}s must be at most {bound} ({words}), not in {_rows(big)}")
    frac = ~bad & ~big & (np.abs(w - np.round(w)) > 1e-9 * np.maximum(w, 1))
    if size_kind == "width" and _multiplier_named(col):
        # 1, 2, 4, 8 read as widths: a prediction "at width 4096" was at 4096x the base width, 95x low (a review)
        shown = _shown(col)
        problems.append(f"{shown}: a width multiplier by its name (muP's width_mult: the width over the base width), "
                        f"not a width: read as widths, the law's widths and every prediction's are multipliers (a "
                        f"prediction at width 4096 would be at 4096x the base width); give the widths, the multiplier "
                        f"times the base width: {option('derive')} width={shown}*BASE (BASE the base width, e.g. "
                        f"256) and {option('size_col')} width")
    elif frac.any():
        problems.append(f"{col}: {noun}s must be integers, see {_rows(frac)}; a width "
                        "multiplier or a count in millions? The exponent does not depend on the unit: scale the column "
                        "to whole counts (muP's width_mult times the base width; millions times 1e6)")
    return width


def _multiplier_named(name: object) -> bool:
    """Whether a size column's name says it holds a width multiplier (``width_mult``, ``widthMultiplier``,
    ``width_multiplier``; not ``multihead_dim``)."""
    return any(w.endswith(("mult", "mults", "multiplier", "multipliers")) for w in _name_words(name))


def _seed_ids(col: pd.Series) -> pd.Series | None:
    """A seed column of names (``seed-0``, ``run-a``): seeds are ids, so each name is a number of its own (in the
    order of the sorted names). None where any cell holds a number (the column is numbers, one of them mistyped:
    read as such, with its error), is empty or a word for missing (``-``, ``nan``)."""
    if pd.api.types.is_numeric_dtype(col) or col.isna().any():
        return None
    text = col.astype(str).str.strip()
    # names only: a number among them (`0`, `1`, then `1O`) is a typo in a numeric column, and its error says so
    missing = text.str.lower().isin(_MISSING_WORDS | {"-", "--"})
    if pd.to_numeric(text, errors="coerce").notna().any() or missing.any():
        return None
    codes = {name: float(i) for i, name in enumerate(sorted(text.unique()))}
    return text.map(codes).astype(float)


def _check_positive(df: pd.DataFrame, col: str, what: str, problems: list[str]) -> pd.Series | None:
    v = _numeric(df, col, problems)
    if v is None:  # a word among the numbers: its empty cells said too, not after it is fixed (a review)
        s = df[col]
        blank = s.isna() | s.map(lambda x: isinstance(x, str) and x.strip().lower() in _MISSING_WORDS)
        if blank.any() and not pd.api.types.is_bool_dtype(s):
            problems.append(f"{col}: {what} must be positive finite numbers, not in {_rows(blank)} (empty)")
    else:
        bad = v.isna() | ~(v > 0) | np.isinf(v)
        if bad.any():
            finite = v[np.isfinite(v)]
            # negative, not 0: a tracker's last LR after a decay to 0 is no log
            logs = what == "learning rates" and len(finite) and bool((finite < 0).mean() >= 0.5)
            problems.append(f"{col}: {what} must be positive finite numbers, not in {_rows(bad)}" + (
                "; most are negative: if the column holds log10 or log2 of the LR, convert it (10**x, 2**x)"
                if logs else ""))
    return v


#: How a diverged flag may be written (lower-cased); an empty cell or NaN is "not flagged".
_TRUE = ("true", "1", "1.0", "yes", "t", "y")
_FALSE = ("false", "0", "0.0", "no", "f", "n", "", "nan", "none", "<na>")


#: the sweep-table contract's loss before the first update: a run whose loss ends above it diverged (_diverged), one
#: that ends near it learned nothing (_stalled)
INIT_COL = "loss_at_init"


def _init_problems(init: pd.Series, loss: pd.Series, flagged: np.ndarray) -> list[str]:
    """``loss_at_init`` where a rule reads it (a run with a finite loss the divergence column does not flag) must be
    a positive number, or empty where it is unknown (the runner writes NaN where the model's own loss at init was
    NaN). A 0 there made every run "diverged" (and advised a lower LR grid); 0 at one width dropped it. +inf flags
    nothing, as an empty cell (a CSV's 400-digit integer reads so: tests/service/test_hostile_input_more.py)."""
    v, lv = init.to_numpy(dtype=float), loss.to_numpy(dtype=float)
    bad = np.isfinite(lv) & ~flagged & ~np.isnan(v) & ~(v > 0)  # 0, negative, -inf
    if not bad.any():
        return []
    first = float(v[bad][0])
    return [f"{INIT_COL}: the loss before the first update must be a positive number (leave a cell empty where it "
            f"is unknown), not in {_rows(bad)} (the first: {first:g}); it decides which runs diverged (those that end "
            "above it) and which learned nothing: fix those rows or drop the column"]


def _flagged(df: pd.DataFrame, div_col: str | None) -> np.ndarray:
    """The runs the table's divergence column marks (none without one)."""
    if div_col is None:
        return np.zeros(len(df), bool)
    flag = df[div_col]
    if flag.dtype != bool:
        # an empty cell is "not flagged" (pandas 3 keeps NaN through astype(str), pandas 2 writes "nan")
        text = flag.astype(object).where(flag.notna(), "").astype(str).str.strip().str.lower()
        if (odd := ~text.isin(_TRUE + _FALSE)).any():  # "maybe" or 2 read as "not diverged" would be a guess
            raise TableError([f"{div_col}: expected true/false (or 1/0, yes/no) in {_rows(odd)}, got "
                              f"{flag[odd].iloc[0]!r}"])
        flag = text.isin(_TRUE)
    return flag.to_numpy(dtype=bool)


def _diverged(df: pd.DataFrame, m: ColumnMapping, loss: np.ndarray, div_col: str | None) -> np.ndarray:
    """NaN/inf loss, a true diverged flag, or a final loss above the loss at init; all diverged is an error."""
    diverged = ~np.isfinite(loss) | _flagged(df, div_col)
    if "loss_at_init" in df.columns and m.loss_col != "loss_at_init":
        init = _to_number(df["loss_at_init"]).to_numpy(dtype=float)
        # a run that ends above where it started has blown up even when its loss is finite
        diverged |= np.isfinite(init) & np.isfinite(loss) & (loss > init)
    if np.isnan(loss).all() and not _flagged(df, div_col).any():  # a column nobody filled in, not a grid that
        # diverged everywhere (the runner's diverged runs are NaN *and* flagged)
        raise TableError([f"{m.loss_col}: no run has a loss (every cell is empty or NaN); if the loss is in "
                          f"another column, name it with {option('loss_col')}"])
    if diverged.all():
        raise TableError([  # before any blow-up rule: the best run of a curve is never a blow-up
            f"{m.loss_col}: all {len(df)} runs diverged (NaN/inf loss or diverged=True); "
            "nothing to fit: lower the learning-rate grid"
        ])
    return diverged


def _said_not_diverged(df: pd.DataFrame, div_col: str | None) -> np.ndarray:
    """The runs the table's divergence column explicitly marks not diverged (false, 0, no; not an empty cell)."""
    if div_col is None:
        return np.zeros(len(df), bool)
    flag = df[div_col]
    if flag.dtype == bool:
        return ~flag.to_numpy(dtype=bool)
    text = flag.astype(object).where(flag.notna(), "").astype(str).str.strip().str.lower()
    return (text.isin(_FALSE) & ~text.isin(("", "nan", "none", "<na>"))).to_numpy(dtype=bool)


def _curve_best(keys: pd.DataFrame, lr: np.ndarray, loss: np.ndarray, ok: np.ndarray,
                tie: Literal["min", "max"]) -> tuple[np.ndarray, np.ndarray]:
    """Per row, its curve's best loss among the ``ok`` runs and the LR of that run (``tie``: "min" or "max" of
    the LRs at an equal best). A curve is one group, size and setting of the swept constants."""
    frame = keys.assign(_lr=lr, _loss=np.where(ok, loss, np.inf))
    best = frame.groupby(list(keys.columns), dropna=False, sort=False)["_loss"].transform("min").to_numpy()
    at_best = frame["_lr"].where(frame["_loss"].to_numpy() == best)
    lr_best = at_best.groupby([frame[c] for c in keys.columns], dropna=False, sort=False).transform(tie).to_numpy()
    return best, lr_best


def _blown_up(keys: pd.DataFrame, lr: np.ndarray, loss: np.ndarray, diverged: np.ndarray,
              factor: float) -> np.ndarray:
    """Finite losses above ``factor`` x their curve's best at a larger LR than the best (a run that blew up
    and stopped at a finite loss, as a foreign table records it). The slow end of the grid (small LRs) is never
    marked, it trains too little."""
    ok = ~diverged & np.isfinite(loss)
    best, lr_best = _curve_best(keys, lr, loss, ok, "min")
    # best + (factor - 1) |best|: factor x best for the usual positive losses, and still above the best for a
    # negative one (a log-likelihood), where factor x best would lie below it and flag every larger LR
    above = np.where(best > 0, factor * best, best + (factor - 1) * np.abs(best))
    return ok & np.isfinite(best) & (lr > lr_best) & (loss > above)


def _stalled(keys: pd.DataFrame, lr: np.ndarray, loss: np.ndarray, init: np.ndarray,
             diverged: np.ndarray) -> np.ndarray:
    """Runs at a larger LR than their curve's best that ended within STALL_FRACTION of their loss at init, keeping
    under STALL_KEPT of what the curve's best learned, on a curve whose best run learned (ended more than
    STALL_FRACTION under its own loss at init). The slow end of the grid is never marked: a tiny LR learns little
    too. (A review: where the best is only 3-6% under init, runs keeping a fifth of its gain were marked.)"""
    ok = ~diverged & np.isfinite(loss)
    best, lr_best = _curve_best(keys, lr, loss, ok, "min")
    frame = keys.assign(_init=np.where(ok & (loss == best), init, np.nan))
    init_best = frame.groupby(list(keys.columns), dropna=False, sort=False)["_init"].transform("max").to_numpy()
    with np.errstate(invalid="ignore"):  # a +inf loss at init (inf - inf) flags nothing, as an empty cell: no warning
        learned = np.isfinite(init_best) & (best < init_best - STALL_FRACTION * np.abs(init_best))
        kept_little = (init - loss) < STALL_KEPT * (init_best - best)
        return (ok & learned & np.isfinite(init) & (lr > lr_best) & kept_little
                & (loss >= init - STALL_FRACTION * np.abs(init)))


def _missing_below_best(keys: pd.DataFrame, lr: np.ndarray, loss: np.ndarray, diverged: np.ndarray) -> np.ndarray:
    """Runs without a loss (NaN: an empty cell, an unfinished run) at a smaller LR than their curve's best run:
    counted as diverged like any NaN, though runs diverge above the optimum, not below it."""
    best, lr_best = _curve_best(keys, lr, loss, ~diverged & np.isfinite(loss), "max")
    return np.isnan(loss) & np.isfinite(best) & (lr < lr_best)


def _missing_note(v: _Valid) -> list[str]:
    if v.missing is None or not v.missing.any():
        return []
    return [f"{int(v.missing.sum())} run(s) without a loss (an empty cell or NaN) at a smaller LR than their "
            f"curve's best run count as diverged: {_rows(v.missing)}. Runs diverge above the optimum, not below "
            "it: if they are unfinished or missing, drop them before fitting"]


def _inverted_lr(df: pd.DataFrame, m: ColumnMapping, v: _Valid) -> list[str]:
    """Most diverged runs below their curve's best LR and few above it: the LR column may run the other way
    (-log2 of the LR, 1/LR), which the fitter would read as LRs (an Adam LR of 13.9, a user review found). The
    groups holding those runs say so too, and their predictions are unreliable (:func:`_inverted_rows`)."""
    said = _inverted_rows(df, m, v)
    if said is None:
        return []
    below, above = said
    return [f"{m.lr_col}: {int(below.sum())} diverged run(s) sit below their curve's best LR and {above} above it, "
            "where runs diverge" + (f"; every value is {float(v.lr.min()):g} or more" if v.lr.min() >= 1 else "")
            + ": if the column holds -log2 of the LR, 1/LR or anything that falls as the LR grows, convert it to the "
            "LR itself (the fitter reads larger values as larger LRs)"]


def _inverted_rows(df: pd.DataFrame, m: ColumnMapping, v: _Valid) -> tuple[np.ndarray, int] | None:
    """The diverged runs below their curve's best LR and the count above it, where the LR column looks inverted
    (:func:`_inverted_lr`); None where it does not."""
    keys = df[[*v.group_cols, m.size_col, *v.constants]]
    best, lr_best = _curve_best(keys, v.lr, v.loss, _trained(v), "max")
    seen = v.diverged & np.isfinite(best)  # a curve whose every run diverged has no best to sit below
    missing = v.missing if v.missing is not None else np.zeros_like(seen)
    below = int((seen & (v.lr < lr_best)).sum())
    above = int((seen & (v.lr > lr_best)).sum())
    # runs without a loss below the best are as often unfinished (said by _missing_note); alone they point at the
    # column only where every value is 1 or more
    flagged_below = int((seen & ~missing & (v.lr < lr_best)).sum())
    if below < max(2, 2 * above) or (flagged_below < max(2, 2 * above) and v.lr.min() < 1):
        return None
    return seen & (v.lr < lr_best), above


def _unflagged_note(v: _Valid, div_col: str | None) -> list[str]:
    if v.unflagged is None or not v.unflagged.any():
        return []
    return [f"{int(v.unflagged.sum())} run(s) without a loss (an empty cell or NaN) that the {div_col} column marks "
            f"not diverged count as diverged: {_rows(v.unflagged)}. If they are unfinished or missing, drop them "
            "before fitting; if they diverged, mark them so"]


def _blown_up_note(v: _Valid, blowup: float | None) -> list[str]:
    """Say which finite losses the blow-up rule made diverged runs: on a shallow or low-loss basin (a
    fine-tune) a run two octaves above the optimum can sit at 1.5x the best and still be training, and the
    runs it marks lower "max stable" and the stability edge."""
    if v.blown_up is None or not v.blown_up.any():
        return []
    return [f"{int(v.blown_up.sum())} finite run(s) above {blowup:g}x their curve's best loss, at a larger LR, "
            f"count as diverged: {_rows(v.blown_up)}. If they were still training, raise the factor "
            f"({option('blowup')}) or turn the rule off (0)"]


def _stalled_note(v: _Valid) -> list[str]:
    """Say which runs the stall rule made diverged runs (they lower "max stable" and the stability edge)."""
    if v.stalled is None or not v.stalled.any():
        return []
    return [f"{int(v.stalled.sum())} run(s) at a larger LR than their curve's best ended within "
            f"{100 * STALL_FRACTION:g}% of their loss at init, with under {100 * STALL_KEPT:g}% of the best run's "
            f"gain (learned nothing: stalled, as a run that collapsed to "
            f"chance does) and count as diverged: {_rows(v.stalled)}. To keep them, turn the blow-up rules off "
            f"({option('blowup')} 0)"]


def _trained(v: _Valid) -> np.ndarray:
    """The runs that trained: not diverged, with a finite loss."""
    return ~v.diverged & np.isfinite(v.loss)


#: a tracker's per-run bookkeeping (wandb's Runtime, Created, Name, ID; MLflow's run_id, start_time), lower case with
#: separators dropped: measurements or labels of a run, never its settings, though they repeat by chance (Runtime in
#: whole seconds) or once a run is exported twice. Also the environment a tracker records beside each run (wandb's
#: wandb_version, Python Version, Job Type, GPU Type, Commit; MLflow's tags.mlflow.*; Ray Tune's done, pid, node_ip,
#: time_total_s; Optuna's datetime_start), whose values differ at random between the seeds of a cell: read as settings,
#: a version column made `--strict` fail on "two or more configurations" (a review). Not wandb's Group nor Tags (a
#: team's own label for its sweep's configurations, as often as a launch's), nor a GPU count (with a per-device batch it
#: sets the global batch): those stay settings, said where they differ within a cell
TRACKER_COLUMNS = frozenset({"state", "runstate", "status", "runstatus",  # said by _failed_runs
                             "runtime", "wandbruntime", "timestamp", "wandbtimestamp", "created", "createdat",
                             "updated", "updatedat", "heartbeat", "heartbeatat", "starttime", "endtime", "duration",
                             "name", "runname", "displayname", "id", "runid", "experimentid", "user", "host",
                             "hostname", "notes", "wandb", "artifacturi", "sweep", "sweepid", "node", "nodename",
                             "gpu", "gpuname", "device", "partition", "machine", "worker", "rank", "slurmjobid",
                             "jobid",
                             # wandb's environment columns
                             "wandbversion", "pythonversion", "jobtype", "gputype", "gpumodel", "commit", "gitcommit",
                             "githash", "gitsha", "gitremote", "gitbranch", "program", "codepath", "os", "platform",
                             "executable", "username", "email", "entity", "url", "cudaversion",
                             "torchversion", "jaxversion", "cpucount", "startedat", "finishedat",
                             # Ray Tune's per-trial columns (ResultGrid.get_dataframe)
                             "done", "trialid", "date", "pid", "nodeip", "logdir", "experimenttag", "timethisiters",
                             "timetotals", "timesincerestore", "timestepstotal", "timestepssincerestore",
                             "episodestotal", "checkpointdirname", "shouldcheckpoint",
                             # Optuna's trials_dataframe
                             "number", "datetimestart", "datetimecomplete", "trialstate",
                             # MLflow's run table
                             "lifecyclestage", "artifactlocation"})
#: name prefixes (lower case, separators dropped) of a tracker's own bookkeeping: MLflow's tags.mlflow.* (runName,
#: source.git.commit, user), wandb's system metrics (system/gpu.0.temp)
_TRACKER_PREFIXES = ("tagsmlflow", "mlflow", "system", "sysinfo")


def is_tracker_column(name: object) -> bool:
    """Whether a column is a tracker's bookkeeping (:data:`TRACKER_COLUMNS`, MLflow's ``tags.mlflow.*``): never a
    setting of the runs."""
    key = _key(name)
    return key in TRACKER_COLUMNS or key.startswith(_TRACKER_PREFIXES)


#: words of a column's name that name a measurement (a second loss, a metric) where a tracker's prefix comes before
#: them (``train/loss``, ``val_acc``, ``best_val_loss``): alone they also name settings of one (PaLM's ``z_loss``,
#: OLMo's ``softmax_auxiliary_loss``, ``reward_clip``), which read as measurements were pooled as seeds, their
#: diverged runs dropped as copies (a code review)
_MEASURE_WORDS = frozenset({"loss", "losses", "acc", "accuracy", "ppl", "perplexity", "metric", "metrics", "score",
                            "scores", "reward", "return", "bleu", "rouge", "f1", "auc", "nll", "mse", "mae", "rmse",
                            "bpb", "bpc", "wer", "cer", "error", "err"})
#: measurement words no setting's name ends in: a measurement wherever they come last (``word_ppl``, ``top1_accuracy``)
#: or stand alone; not ``acc`` (``grad_acc`` accumulates gradients) nor ``loss`` (``z_loss``)
_PLAIN_MEASURES = frozenset({"accuracy", "ppl", "perplexity", "bleu", "rouge", "f1", "auc", "nll", "mse", "mae",
                             "rmse", "bpb", "bpc", "wer", "cer"})
#: the words a tracker or a training loop puts before a measurement's name: its split (train, val, eval, test), its
#: summary of the run (best, final, min, mean) and the namespaces of wandb's summary and Hydra's metrics
_MEASURE_PREFIXES = frozenset({"train", "training", "val", "valid", "validation", "eval", "evaluation", "test", "dev",
                               "holdout", "heldout", "summary", "metric", "metrics", "best", "final", "last", "min",
                               "max", "mean", "avg", "average", "ema", "smoothed", "running", "episode", "top1",
                               "top5"})
#: ... unless it also holds one of these: a loss's settings (loss_type, loss_weight, aux_loss_alpha, use_z_loss)
_SETTING_WORDS = frozenset({"type", "weight", "scale", "fn", "func", "function", "coef", "coeff", "coefficient",
                            "name", "kind", "mode", "scaling", "alpha", "beta", "lambda", "multiplier", "mult",
                            "factor", "clip", "clipping", "use", "enable", "enabled", "disable", "no", "eps",
                            "epsilon", "temperature", "margin", "threshold", "target", "patience", "freq", "every",
                            "interval"})


def _name_words(name: object) -> list[str]:
    """A column's name in lower-case words (``evalLoss``: eval, loss; ``summary/best_val_loss``: summary, best, ...)."""
    return [w for w in re.split(r"[^a-z0-9]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", str(name)).lower()) if w]


def is_measurement_name(name: object) -> bool:
    """Whether a column's name says it holds a measurement of each run: a tracker's prefix before a measurement's
    word (``train/loss``, ``summary/best_val_loss``, ``val_acc``, ``evalLoss``, ``valloss``), wandb's ``summary/``
    or Hydra's ``metrics`` namespace, or a word only a measurement ends in (``word_ppl``). It differs between the
    seeds of a cell by nature, so it is no setting, and two runs of one setting and seed differ in it (a rerun). A
    loss's settings (``loss_type``, ``loss_scale``, ``z_loss``, ``use_z_loss``, ``aux_loss_alpha``) are not. Read
    with the values (:func:`_measured`): a column of a few values the same at every LR of a curve is a setting
    whatever its name."""
    words = _name_words(name)
    if not words or any(w in _SETTING_WORDS for w in words):
        return False
    if words[0] in ("summary", "metric", "metrics") or words[-1] in _PLAIN_MEASURES:
        return True
    if len(words) == 1 and words[0] in _MEASURE_WORDS:
        return True  # "loss", "reward", "score" alone name no setting
    for i, w in enumerate(words):
        if w in _MEASURE_WORDS and any(p in _MEASURE_PREFIXES for p in words[:i]):
            return True
        # fused: valloss, trainacc, bestloss (not zloss: "z" is no tracker's prefix)
        if any(w.endswith(x) and w[:-len(x)] in _MEASURE_PREFIXES for x in ("loss", "acc", "accuracy", "ppl")):
            return True
    return False


def _measured(df: pd.DataFrame, c: str, distinct: np.ndarray, curve: list[str] | None = None,
              lr: str | None = None) -> bool:
    """Whether column ``c`` holds a measurement: named as one (:func:`is_measurement_name`) and varying as one, with
    more than ``_CONTINUOUS`` distinct values or nearly one per row (``distinct``: rows that are no exact copy), or
    changing with the learning rate along most curves (``curve``: the columns of a curve, ``lr``: the LR's column;
    :func:`_varies_with_lr`). A few values the same at every LR of a curve are a setting's, whatever the name: dropped
    from ``_repeated_runs``' keys, two configurations sharing a seed were called reruns and their divergences dropped
    as copies (a code review). A coarse metric (an accuracy rounded to 0.1, a classifier at 100% or chance) changes
    with the LR: read as a setting by its count alone, it drew advice to group by it and hid a rerun (a review)."""
    if not is_measurement_name(c):
        return False
    col = df[c][distinct]
    n = int(col.nunique(dropna=True))
    if n > _CONTINUOUS or (n >= 3 and n >= 0.8 * int(col.notna().sum())):
        return True
    return curve is not None and lr is not None and n >= 2 and _varies_with_lr(df, c, curve, lr)


def _varies_with_lr(df: pd.DataFrame, c: str, curve: list[str], lr: str) -> bool:
    """Whether column ``c``'s values change with the learning rate along most curves (rows of one group, size and
    seed, ``curve``, at 2+ LRs): a metric's do. A setting's are the same at every LR of a curve (one value, or the
    same values at each LR where two configurations share the curve's keys)."""
    keys = [k for k in dict.fromkeys(curve) if k in df.columns and k != lr]
    if lr not in df.columns:
        return False
    frame = df[[*keys, lr]].assign(_v=df[c].map(repr))
    at_lr = frame.groupby([*keys, lr], dropna=False, sort=False)["_v"].agg(lambda s: "\x1f".join(sorted(set(s))))
    if not keys:
        return bool(at_lr.nunique() > 1)
    per = at_lr.groupby(level=list(range(len(keys))), dropna=False).agg(["nunique", "size"])
    per = per[per["size"] >= 2]
    return bool(len(per)) and bool((per["nunique"] > 1).mean() >= 0.5)


#: a tracker's run state that says the run did not end as it was meant to (wandb: crashed, failed, killed;
#: MLflow: FAILED, KILLED; Optuna: FAIL, and PRUNED, a trial its pruner stopped early, whose value is its last
#: intermediate one; Ray Tune: ERROR; Slurm: CANCELLED, TIMEOUT)
_FAILED_STATES = frozenset({"crashed", "failed", "fail", "killed", "preempted", "error", "errored", "pruned",
                            "cancelled", "canceled", "timeout", "aborted"})
#: a state that says the run has not ended: whatever loss it has (none yet, NaN) is no result, nor a divergence
#: (Optuna's WAITING, Ray Tune's PAUSED among them)
_WAITING_STATES = frozenset({"running", "pending", "scheduled", "queued", "waiting", "paused"})
#: the names (lower case, separators dropped) of a tracker's run-state column
_STATE_COLUMNS = ("state", "runstate", "status", "runstatus", "trialstate")


def _unfinished_runs(df: pd.DataFrame, m: ColumnMapping, v: _Valid) -> tuple[np.ndarray, list[str]]:
    """Runs that trained (a finite loss, not counted as diverged) which a tracker's state column (wandb's State,
    MLflow's status, Optuna's state) says crashed, failed, were killed or pruned, and runs it says still run or wait
    (any loss): a last logged loss is where a run stopped, not a result (a user review: three crashed reruns moved a
    width's optimum 1.5x; Optuna's pruned trials, 0.3 octave), and a waiting run's missing loss is no divergence. They
    are left out of the fit, said with their rows; to keep them, drop or rename the column. A run that diverged often
    crashes too (its NaN raised): it stays, a divergence, unless it failed below learning rates at which its curve's
    runs trained (:func:`_isolated_nan`), where no divergence sits (a node failure or an OOM, which moved a width's
    stability edge 2 octaves, unsaid: a review). A column a role names is the user's own and is not read so."""
    roles = {m.size_col, m.lr_col, m.loss_col, m.seed_col, m.diverged_col, *(m.group_cols or []),
             *(m.constant_cols or []), *(m.covariates or [])}
    trained = _trained(v)
    out = np.zeros(len(df), dtype=bool)
    notes = []
    isolated: np.ndarray | None = None
    for c in df.columns:
        if c in roles or _key(c) not in _STATE_COLUMNS or df[c].dtype.kind in "biufc":
            continue
        said = df[c].map(lambda x: x.strip().lower() if isinstance(x, str) else "")
        failed = said.isin(_FAILED_STATES).to_numpy()
        bad = (failed & trained) | said.isin(_WAITING_STATES).to_numpy()
        if bad.any():
            kinds = ", ".join(sorted(set(said[bad])))
            notes.append(f"{c}: {int(bad.sum())} run(s) {kinds} left out of the fit (a last logged loss is where a "
                         f"run stopped, not a finished run's result): {_rows(bad)}. To fit them as they are, drop or "
                         f"rename the {c} column")
            out |= bad
        if failed.any():
            isolated = _isolated_nan(df, m, v) if isolated is None else isolated
            if (lost := failed & isolated & ~out).any():
                kinds = ", ".join(sorted(set(said[lost])))
                notes.append(f"{c}: {int(lost.sum())} run(s) {kinds} without a loss, below learning rates at which "
                             f"their curve's runs trained, left out of the fit, not counted as diverged (a run "
                             f"diverges above the stable LRs, not between them: it failed otherwise): {_rows(lost)}. "
                             f"If they diverged, mark them so in a divergence column ({option('diverged_col')})")
                out |= lost
    return out, notes


def _failed_without_setup(df: pd.DataFrame, m: ColumnMapping) -> tuple[np.ndarray, list[str]]:
    """Runs a tracker's state column (:func:`_unfinished_runs`' columns) says failed, crashed, were killed or have
    not ended, whose setup cells the fit needs are empty: the size, the LR, the seed, a swept constant, a covariate,
    a theory column of the group key (a run that died before wandb.config was filled: wandb's export leaves its
    config columns empty). Left out of the fit with a note naming their rows, as other failed runs are; they made
    the whole table exit 2 as "NaN width ... missing seed ... empty" (a review). Empty setup cells at any other run
    stay the table's error. A failed run whose setup is filled in is :func:`_unfinished_runs`' (kept as a divergence
    where it has no loss)."""
    out = np.zeros(len(df), dtype=bool)
    cols = set(df.columns)
    states = [c for c in df.columns if _key(c) in _STATE_COLUMNS and df[c].dtype.kind not in "biufc"]
    if not states:
        return out, []
    roles = _roles(df, m, [])
    named = {m.size_col, m.lr_col, m.loss_col, m.seed_col, m.diverged_col, *roles.group_cols, *roles.constant_cols,
             *(m.covariates or [])}
    setup = [c for c in dict.fromkeys([m.size_col, m.lr_col, roles.seed_col, *roles.constant_cols,
                                       *(m.covariates or []), *[g for g in roles.group_cols if g in THEORY_COLUMNS]])
             if c is not None and c in cols]

    def blank(c: str) -> np.ndarray:
        s = df[c]
        return (s.isna() | s.map(lambda x: isinstance(x, str) and x.strip().lower() in _MISSING_WORDS)).to_numpy(
            dtype=bool)

    empty = {c: blank(c) for c in setup}
    # a theory column empty in every row is no setup the table gives (the caller's flags fill it)
    empty = {c: e for c, e in empty.items() if not (c in THEORY_COLUMNS and e.all())}
    if not empty:
        return out, []
    any_empty = np.logical_or.reduce(list(empty.values()))
    notes = []
    for c in states:
        if c in named:
            continue
        said = df[c].map(lambda x: x.strip().lower() if isinstance(x, str) else "")
        rows = said.isin(_FAILED_STATES | _WAITING_STATES).to_numpy() & any_empty & ~out
        if rows.any():
            kinds = ", ".join(sorted(set(said[rows])))
            which = ", ".join(_shown(k) for k, e in empty.items() if (e & rows).any())
            notes.append(f"{c}: {int(rows.sum())} run(s) {kinds} without their setup ({which} empty) left out of the "
                         f"fit (a run that ended before its config was logged): {_rows(rows)}. To fit them, fill "
                         "those cells in")
            out |= rows
    return out, notes


def _isolated_nan(df: pd.DataFrame, m: ColumnMapping, v: _Valid) -> np.ndarray:
    """Runs without a loss (NaN, not flagged by the table's divergence column) at a learning rate below two or more
    LRs at which runs of their curve trained, where three in four runs or more of those LRs trained: no divergence
    sits there (runs diverge above the stable LRs; one LR of
    mixed fates is a stability edge's noise), so the cell is missing for another reason (a failed job, an eval never
    logged), yet it counts as diverged and lowers "max stable" and the stability edge."""
    nan = np.isnan(v.loss) & ~_flagged(df, m.diverged_col if m.diverged_col in df.columns else None)
    out = np.zeros(len(df), bool)
    if not nan.any():
        return out
    ok = _trained(v)
    curve = df[[*v.group_cols, m.size_col, *v.constants]].groupby(
        [*v.group_cols, m.size_col, *v.constants], dropna=False, sort=False).ngroup().to_numpy()
    for c in np.unique(curve[nan]):
        rows = np.flatnonzero(curve == c)
        lrs = np.unique(v.lr[rows][ok[rows]])
        if not lrs.size:
            continue
        u, at = np.unique(v.lr[rows], return_inverse=True)
        total = np.cumsum(np.bincount(at, minlength=u.size))
        bad = np.cumsum(np.bincount(at, weights=~ok[rows], minlength=u.size))
        top = int(np.searchsorted(u, lrs[-1]))
        hole = nan[rows]
        i = at[hole]
        # and three in four of the runs between it and the curve's largest trained LR trained: two configurations
        # fitted as one curve (one diverging where the other trains, half the runs there) are no such case (a test)
        n_between = total[top] - total[i]
        share = np.divide(bad[top] - bad[i], n_between, out=np.ones(i.size), where=n_between > 0)
        out[rows[hole]] = (lrs.size - np.searchsorted(lrs, v.lr[rows][hole], side="right") >= 2) & (share <= 0.25)
    return out


def _unlogged_losses(df: pd.DataFrame, m: ColumnMapping, v: _Valid) -> tuple[np.ndarray, list[str]]:
    """Runs without a loss (NaN, not flagged by the table's divergence column) that another loss column says trained:
    finite there, where that column is NaN at most other runs without a loss (it goes NaN with a divergence, as a
    training loss does). The loss was never logged (an eval skipped, a key added mid-sweep), the run did not diverge:
    counted as diverged, two such runs moved a width's "max stable" 2 octaves and failed `--strict` (a review). They
    are left out of the fit, named, where they sit below learning rates at which their curve trained
    (:func:`_isolated_nan`), where no divergence sits. A column that stays finite where runs diverged (a best-so-far
    loss) says nothing; nor does one named so (``best_val_loss``, ``min_loss``), finite too where a run diverged after
    its first eval: read as "trained", such late divergences were left out and "max stable" moved up (a code review).
    Another column's finite value at the top of a curve (a training loss's last value before a crash) is only named:
    a divergence sits there."""
    div_col = m.diverged_col if m.diverged_col in df.columns else None
    nan = np.isnan(v.loss) & ~_flagged(df, div_col)
    out = np.zeros(len(df), bool)
    if nan.sum() < 3:
        return out, []
    roles = {m.size_col, m.lr_col, m.loss_col, m.seed_col, m.diverged_col, INIT_COL, *v.group_cols, *v.constants}
    said: list[str] = []
    kept, kept_by = np.zeros(len(df), bool), []
    isolated: np.ndarray | None = None
    for c in df.columns:
        if c in roles or not is_measurement_name(c) or _best_so_far(c) or not _mostly_numbers(df[c]):
            continue
        finite = np.isfinite(_to_number(df[c]).to_numpy(dtype=float))
        here, gone = nan & finite, nan & ~finite
        if here.any() and gone.sum() >= max(2, 2 * here.sum()) and finite[_trained(v)].mean() >= 0.9:
            isolated = _isolated_nan(df, m, v) if isolated is None else isolated
            if (lone := here & isolated & ~out).any():
                out |= lone
                said.append(c)
            if (top := here & ~isolated & ~kept).any():
                kept |= top
                kept_by.append(c)
    notes = []
    if out.any():
        notes.append(f"{m.loss_col}: {int(out.sum())} run(s) without a loss that {', '.join(said[:3])} says trained "
                     f"(a finite value, where it is empty at the runs that diverged), below learning rates at which "
                     f"their curve trained, left out of the fit, not counted as diverged (a loss never logged is no "
                     f"divergence): {_rows(out)}. Fill their {m.loss_col} in to fit them")
    if kept.any():
        notes.append(f"{m.loss_col}: {int(kept.sum())} run(s) without a loss that {', '.join(kept_by[:3])} holds a "
                     f"value for, at the top of their curve's learning rates, count as diverged (a run that diverged "
                     f"after its last log keeps a value there): {_rows(kept)}. If their {m.loss_col} was never logged, "
                     "fill it in or drop them")
    return out, notes


#: words of a column's name that say it holds a run's best value so far, not its last: finite for a run that
#: diverged after its first eval
_BEST_WORDS = frozenset({"best", "min", "minimum", "lowest", "max", "maximum", "highest", "peak", "top"})


def _best_so_far(name: object) -> bool:
    """Whether a column's name says it holds a best-so-far value (``best_val_loss``, ``min_loss``, ``loss_so_far``,
    ``bestLoss``)."""
    return any(w in _BEST_WORDS or w.startswith(("best", "lowest")) for w in _name_words(name)) \
        or "sofar" in _key(name)


def _isolated_note(df: pd.DataFrame, m: ColumnMapping, v: _Valid) -> list[str]:
    """Name the runs without a loss, above their curve's best LR, that sit below LRs at which their curve trained
    (:func:`_isolated_nan`): counted as diverged, they lower "max stable" and the stability edge, and no other rule
    said so (below the best LR, ``_missing_note`` does)."""
    lone = _isolated_nan(df, m, v) & v.diverged
    if v.missing is not None:
        lone &= ~v.missing
    if not lone.any():
        return []
    return [f"{int(lone.sum())} run(s) without a loss (an empty cell or NaN) sit below learning rates at which their "
            f"curve's runs trained, and count as diverged: {_rows(lone)}. Runs diverge above the stable LRs, not "
            "between them: if they failed otherwise or their loss was never logged, drop them (they lower \"max "
            "stable\" and the stability edge); if they diverged, mark them so in a divergence column "
            f"({option('diverged_col')})"]


def _key(name: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


#: progress counters, lower case with separators dropped (wandb's ``_step`` is ``step``); ``best_step``,
#: ``warmup_step`` or ``decay_step`` are not (a measurement or a setting), nor is ``steps`` (a budget). Also an
#: epoch, an update or a checkpoint's count, and Ray Tune's ``training_iteration`` / ``iterations_since_restore``
#: (a trial ASHA stopped at 10 of 100 iterations was fitted as finished, unsaid: a review)
STEP_NAMES = frozenset({"step", "iter", "iteration", "lastiteration", "laststep", "currentstep", "trainstep", "it",
                        "epoch", "update", "updates", "numupdates", "checkpoint", "ckpt", "trainingiteration",
                        "iterationssincerestore", "trainerepoch", "trainepoch"})
#: progress a history export logs in a budget's unit (tokens or samples seen so far): a history where each run holds
#: several of them (:func:`_history`), but not a step count elsewhere: as one value per run the same names hold a
#: budget (``num_tokens``), said by :func:`_budget_with_size`
PROGRESS_NAMES = frozenset({"tokensseen", "numtokens", "ntokens", "tokensprocessed", "tokenstrained", "consumedtokens",
                            "consumedsamples", "samples", "samplesseen", "numsamples", "examplesseen", "seentokens",
                            "totaltokens", "cumulativetokens", "trainertokens"})


def is_step_name(name: object) -> bool:
    """Whether a column counts the steps a run trained (``step``, ``global_step``, wandb's ``_step``,
    ``trainer/global_step``, ``iteration``, ``epoch``, Ray Tune's ``training_iteration``): its progress, not a
    setting."""
    key = _key(name)
    return key in STEP_NAMES or key.endswith("globalstep")


#: step names a setting has too: an update rule, an init checkpoint, an epoch budget (:func:`_counts_steps`,
#: :func:`_two_point_counters`)
_AMBIGUOUS_STEP_NAMES = frozenset({"it", "epoch", "trainepoch", "trainerepoch", "update", "updates", "numupdates",
                                   "checkpoint", "ckpt"})
#: ... of which a count is a whole number (an epoch may be fractional: Hugging Face's Trainer logs epoch 0.42)
_WHOLE_STEP_NAMES = _AMBIGUOUS_STEP_NAMES - {"epoch", "trainepoch", "trainerepoch"}


def _counts_steps(col: pd.Series, name: object) -> bool:
    """Whether a column counts a run's steps: a step's name (:func:`is_step_name`) over mostly numbers, whole and not
    negative under a name a setting has too (``update``, ``checkpoint``, ``it``). By its name alone, a text column
    ``update`` (adam, lion) or ``checkpoint`` (an init's) was skipped as a step count, and two configurations were
    averaged as seeds, unsaid (a code review)."""
    if not is_step_name(name) or pd.api.types.is_bool_dtype(col):
        return False
    num = _to_number(col)
    if not len(num) or num.notna().mean() < 0.5:
        return False
    if _key(name) in _WHOLE_STEP_NAMES:
        finite = num[np.isfinite(num)]
        return bool(((finite >= 0) & (finite == np.round(finite))).all())
    return True


def _run_keys(df: pd.DataFrame, m: ColumnMapping, v: _Valid) -> list[str]:
    """The columns that tell one run from another: group, size, LR, swept constants, and the seed where it varies."""
    run = [*v.group_cols, m.size_col, m.lr_col, *v.constants]
    if v.seed is not None and m.seed_col is not None and m.seed_col in df.columns and len(np.unique(v.seed)) >= 2:
        run.append(m.seed_col)
    return run


#: a tracker's columns that name one run (wandb's Name and ID, MLflow's run_id, its start time): the same at two
#: rows of a run's cell, they are one run logged twice
_RUN_ID_KEYS = frozenset({"name", "runname", "displayname", "id", "runid", "trialid", "created", "createdat",
                          "starttime", "startedat", "datetimestart", "experimenttag", "logdir"})


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
    return _history_by_id(df, m, v, run)


#: run-id columns that name a run by its label (wandb's Name, a log folder): a rerun may take an earlier run's, so
#: they tell a history only where most runs hold 3 rows or more (a run's ID or start time: 2)
_RUN_LABEL_KEYS = frozenset({"name", "runname", "displayname", "experimenttag", "logdir"})


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
            if _id_rows_differ(df, c, distinct, settings):
                continue
            n = int(per_id["rows"].median())
            where = f"{m.size_col}, LR and seed" if m.seed_col is not None and m.seed_col in run \
                else f"{m.size_col} and LR"
            return (f"{_shown(c)}: the table holds each run at several rows (one {_shown(c)} at {n} rows of one "
                    f"{where}, a median), a history export without its step column, whose rows "
                    f"would be averaged as seeds: keep one row per run (its last logged, or the loss at one step); "
                    f"if they are runs of their own, give each its own {_shown(c)}")
    return None


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


def _count(n: float) -> str:
    """A step count as written: whole numbers in full (2e+06 would hide 1,999,999 against 2,000,000)."""
    return f"{n:.0f}" if float(n).is_integer() else f"{n:g}"


def _usual(s: pd.Series) -> float:
    """A curve's step count: the most common among its runs that trained (the larger on a tie)."""
    return float(s.mode().max()) if s.notna().any() else np.nan


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
        label = ", ".join(f"{k}={x!s}" for k, x in zip(outer, values, strict=True)) if named else ""
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


def _distinct_rows(df: pd.DataFrame) -> np.ndarray:
    """The rows that are no exact copy of an earlier row (an export written twice, dropped later): a run's id or a
    second loss repeats in such a copy, and was read as a setting for it (a review: wandb's Name)."""
    try:
        return ~df.duplicated().to_numpy()
    except TypeError:  # an unhashable cell scalar_cells left (none is known): every row counts
        return np.ones(len(df), bool)


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


#: words of a column's name that say it holds a replicate's label, a seed by another name
_REPLICATE_WORDS = frozenset({"trial", "replicate", "replica", "repeat", "rep", "repetition", "run", "runidx"})


def _replicate_like(name: str) -> bool:
    """Whether a column's name says it labels replicates (``data_seed``, ``trial``, ``config.replicate``)."""
    words = [w for w in re.split(r"[^a-z0-9]+", str(name).lower()) if w]
    return "seed" in _key(name) or any(w in _REPLICATE_WORDS for w in words)

#: a numeric grouping column with more distinct values than this, not all integers, is continuous.
_CONTINUOUS = 8


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
    return notes


# --- canonical form ------------------------------------------------------------------------------------


def _py(v: Any) -> Any:
    """Group values as plain JSON scalars (numpy scalars and NaN become Python values / None)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


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
        if c not in out and c in few and not _mostly_numbers(frame[c]) \
                and (hit := _whole_curves(frame, m, v, c)).any():
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


#: words before a weight decay's own name that say where it was configured or logged (``config_weight_decay``,
#: ``optimizer.weight_decay``, MLflow's ``params.wd``), not which decay it is (``independent_``, ``base_``, ``final_``)
_DECAY_PREFIX_WORDS = frozenset({"config", "configs", "cfg", "args", "hparams", "hparam", "hp", "hps",
                                 "hyperparameters", "hyperparams", "params", "param", "parameters", "optimizer",
                                 "optimiser", "optim", "opt", "train", "training", "trainer", "solver", "settings",
                                 "run"})


def _decay_named(name: object) -> bool:
    """Whether a column's name is a weight decay's own (``weight_decay``, ``wd``, ``weight-decay``,
    ``config.weight_decay``, and flattened so, ``config_weight_decay``, ``config_wd``, ``optimizer.weight_decay``:
    its last words, after words of :data:`_DECAY_PREFIX_WORDS`): not a layer's (``weight_decay_hidden``), the
    runner's ``independent_weight_decay`` or ``base_weight_decay``."""
    if _key(re.split(r"[./]", str(name))[-1]) in ("weightdecay", "wd"):
        return True
    words = _name_words(name)
    for i in range(len(words)):
        if "".join(words[i:]) in ("weightdecay", "wd"):
            return i > 0 and all(w in _DECAY_PREFIX_WORDS for w in words[:i])
    return False


def _unread_decay(df: pd.DataFrame, m: ColumnMapping) -> list[str]:
    """A note on a weight-decay column of a table without the contract's ``base_weight_decay``: the fit does not read
    it, so a recommendation from the fit carries no decay (a review: a wandb export's weight_decay 0.1 at every run,
    and ``recommend --fit`` said "none given, so 0 at every layer"). Not where every run's is 0 (what the
    recommendation gives too)."""
    if DECAY_COLUMN in df.columns:
        return []
    roles = {m.size_col, m.lr_col, m.loss_col, m.seed_col, m.diverged_col}
    out = []
    for c in df.columns:
        if c in roles or not _decay_named(c) or pd.api.types.is_bool_dtype(df[c]):
            continue
        wd = _to_number(df[c]).to_numpy(dtype=float)
        wd = wd[np.isfinite(wd)]
        if not wd.size or not (wd > 0).any():
            continue
        lo, hi = float(wd.min()), float(wd.max())
        vals = f"{lo:g}" if lo == hi else f"{lo:g} to {hi:g}"
        out.append(f"{_shown(c)}: not read as the runs' weight decay (the contract's {DECAY_COLUMN}, the decay at the "
                   f"base width, with weight_decay_mode, is): the runs trained with {vals}, but a recommendation from "
                   "this fit carries no decay and gives 0 at every layer unless one is given to it (recommend's "
                   "weight_decay, --weight-decay: the decay tuned at the base width)")
    return out


def _decays(df: pd.DataFrame) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The runner's base decay and its mode per row (NaN / None where missing or unreadable: a negative, infinite
    or non-numeric decay, a mode other than coupled or independent), or (None, None) without both columns."""
    from abcscale.schemas.enums import WeightDecayMode

    if DECAY_COLUMN not in df.columns or "weight_decay_mode" not in df.columns:
        return None, None
    col = df[DECAY_COLUMN]
    wd = _to_number(col).to_numpy(dtype=float) if not pd.api.types.is_bool_dtype(col) else np.full(len(df), np.nan)
    wd = np.where(np.isfinite(wd) & (wd >= 0), wd, np.nan)

    def mode(v: Any) -> str | None:
        try:
            return WeightDecayMode.parse(str(v)).value if isinstance(v, str) else None
        except ValueError:
            return None

    return wd, np.array([mode(v) for v in df["weight_decay_mode"]], dtype=object)


def _epsilons(df: pd.DataFrame) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The runner's base epsilon and its mode per row (NaN / None where missing or unreadable), or (None, None)
    without both columns: the epsilon a sweep trained with, which a recommendation from its fit carries."""
    from abcscale.schemas.enums import EpsilonMode

    if "epsilon" not in df.columns or "epsilon_mode" not in df.columns:
        return None, None
    col = df["epsilon"]
    eps = _to_number(col).to_numpy(dtype=float) if not pd.api.types.is_bool_dtype(col) else np.full(len(df), np.nan)
    # 0 is an epsilon (Constants takes it); an unreadable cell is a value of its own (UNREADABLE); a group carries
    # one only where every row holds it (_canonical), so neither an unreadable nor a missing cell carries any
    eps = np.where(col.isna().to_numpy(), np.nan, np.where(np.isfinite(eps) & (eps >= 0) & (eps <= SCALE_MAX), eps,
                                                            UNREADABLE))

    def mode(v: Any) -> str | None:
        if not isinstance(v, str):
            return None if pd.isna(v) else "?"
        try:
            return EpsilonMode.parse(v).value
        except ValueError:
            return "?"

    modes = np.array([mode(v) for v in df["epsilon_mode"]], dtype=object)
    # adam_atan2 runs take no epsilon, whatever the column says they had
    return np.where(_no_epsilon_variant(df), np.nan, eps), modes


def _no_epsilon_variant(df: pd.DataFrame) -> np.ndarray:
    """The rows whose ``optimizer_variant`` takes no epsilon (adam_atan2), or whose ``optimizer`` has none (sgd,
    lion, adafactor: an epsilon column there says nothing a recommendation could carry)."""
    from abcscale.schemas.tune import VARIANT_EPSILON

    none = np.zeros(len(df), dtype=bool)
    if "optimizer_variant" in df.columns:
        none |= df["optimizer_variant"].map(
            lambda v: VARIANT_EPSILON.get(str(v).strip().lower()) == "none").to_numpy(dtype=bool)
    if "optimizer" in df.columns:
        none |= df["optimizer"].map(_without_epsilon).to_numpy(dtype=bool)
    return none


def _without_epsilon(optimizer: Any) -> bool:
    """Whether theory's rules for ``optimizer`` (a table's cell) have no epsilon; an unknown name: not known to."""
    from abcscale import theory

    try:
        return not theory.layer_rules(str(optimizer).strip().lower()).has_epsilon
    except (ValueError, KeyError):
        return False


#: an unreadable epsilon cell: a value no real epsilon has, so a group holding one has no one epsilon
UNREADABLE = -1.0


def _trained_epsilon(eps: np.ndarray | None, modes: np.ndarray | None, idx: np.ndarray, sizes: np.ndarray,
                     by_width: bool, lone: np.ndarray | None) -> tuple[float | None, str | None, list[str]]:
    """The epsilon and its mode a group's runs trained with (:func:`_epsilons`' columns), where every row holds the
    same (to ``LR_MERGE_RTOL``) and a mode: 3 rows of 136 holding one (a tracker logging it where it changed) carried
    it for the whole group (a review). Else none, and notes saying why, as :func:`_trained_constants` says its
    columns' (session 65: an epsilon without its mode column, retuned per width, or with an empty cell, was
    silently not carried). A group whose rows hold no epsilon at all (adam_atan2's, another runner's) says nothing.
    ``lone``: the table's epsilon column as numbers where it has no epsilon_mode column (else None)."""
    what = "so recommend takes it from the constants it is given (default 1e-08)"
    if eps is None or modes is None:
        return None, None, ([f"epsilon: the runs' epsilon is not carried without an epsilon_mode column (constant: "
                             f"one epsilon at every width; per_layer: the theory's rule from the base width), {what}"]
                            if lone is not None and np.isfinite(lone[idx]).any() else [])
    vals, said = eps[idx], modes[idx]
    if np.isnan(vals).all():
        return None, None, []
    bad = np.isnan(vals) | (vals == UNREADABLE)
    if bad.any():
        return None, None, [f"epsilon: {int(bad.sum())} of {vals.size} rows "
                            f"{'holds' if bad.sum() == 1 else 'hold'} no epsilon (empty or not a number >= 0): not "
                            f"carried, {what}"]
    no_mode = np.array([v is None or v == "?" for v in said], dtype=bool)
    if no_mode.any():
        return None, None, [f"epsilon_mode: {int(no_mode.sum())} of {vals.size} rows "
                            f"{'holds' if no_mode.sum() == 1 else 'hold'} no mode (constant or per_layer): the "
                            f"epsilon is not carried, {what}"]
    if len(set(said)) > 1:
        return None, None, [f"epsilon_mode: the runs trained with {' and '.join(sorted(set(said)))}: the epsilon is "
                            f"not carried, {what}"]

    def one(v: np.ndarray) -> bool:
        return bool(np.ptp(v) == 0 or (np.min(v) > 0 and _one_value(v)))

    if one(vals):
        return _the_value(vals), str(said[0]), []
    where = "width" if by_width else "size"
    s = sizes[idx]
    per_size = {int(z): vals[s == z] for z in np.unique(s)}
    if not all(one(v) for v in per_size.values()):
        return None, None, [f"epsilon: differs between runs of one {where}: the optima mix its settings, and it is "
                            f"not carried, {what}"]
    words = _per_size_words(per_size, where)
    return None, None, [f"epsilon: the runs trained with {words} (one value per {where}, retuned): each {where}'s "
                        f"optimum is at its own setting, and it is not carried, {what}"]


#: the per-layer LR columns the runner writes (lr_l = beta gamma_l (n / b)^-c_l in the abc form); the vector-like
#: and fixed roles follow the embedding's and say nothing more
LR_LAYER_COLUMNS = {"embedding": "lr_embedding", "hidden": "lr_hidden", "readout": "lr_readout"}

#: words that name a layer in a team's own per-layer LR column (``hidden_lr``, ``lr/head``, ``embedLR``); a name
#: with words of two layers, or a multiplier's word (``head_lr_mult``: a ratio, not an LR), names none
_LAYER_WORDS = {"embedding": {"embedding", "embeddings", "embed", "emb", "wte", "input"},
                "hidden": {"hidden", "hid", "matrix", "matrices", "body"},
                "readout": {"readout", "head", "lmhead", "output", "out", "unembed", "unembedding", "logits",
                            "classifier"}}
_RATIO_WORDS = {"mult", "mults", "multiplier", "multipliers", "ratio", "scale", "factor", "frac", "fraction"}
#: words that, beside ``out`` / ``output`` / ``o``, name a transformer block's output projection (``out_proj``,
#: ``o_proj``, ``attn_out``): a hidden matrix, not the readout
_BLOCK_WORDS = {"proj", "projection", "attn", "attention", "selfattn", "mlp", "ffn"}


def lr_layer_of(column: str) -> str | None:
    """The layer whose own LR a column holds, by its name: the runner's ``lr_hidden`` and a team's ``hidden_lr``,
    ``lr/readout``, ``head_lr`` or ``embedLearningRate`` alike; None for the sweep's one LR (``lr``, ``beta``,
    ``config.learning_rate``). A review: a team's ``hidden_lr`` fitted as the LR was spread as beta, every layer
    then off by the hidden layer's gamma and width factor. ``out`` / ``output`` beside a block's word
    (:data:`_BLOCK_WORDS`: ``out_proj_lr``, ``o_proj_lr``, ``attn_out_lr``) is an attention or MLP output
    projection, a hidden matrix: read as the readout's until a review."""
    words = [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+", str(column))]
    if {"out", "output", "o"} & set(words) and _BLOCK_WORDS & set(words):  # out_proj_lr: a block's, hidden
        words = ["hidden" if w in ("out", "output", "o") else w for w in words]
    joined = [a + b for a, b in zip(words, words[1:], strict=False)]
    if not ({"lr", "learningrate"} & {*words, *joined}) or _RATIO_WORDS & set(words):
        return None
    layers = {layer for layer, names in _LAYER_WORDS.items() if names & {*words, *joined}}
    return layers.pop() if len(layers) == 1 else None


def lr_layer_columns(df: pd.DataFrame) -> dict[str, str] | None:
    """Each layer's own LR column, by layer: the runner's name (:data:`LR_LAYER_COLUMNS`) where the table has it,
    else the one column of numbers whose name says that layer's LR (:func:`lr_layer_of`: ``hidden_lr``, ``lr/head``,
    ``embedLR``); None unless each of the three layers has one (two columns naming one layer say nothing of it).
    Until session 66 only the runner's three names were read, and a team's per-layer sweep was never checked
    against the alignment its answers apply (a review: plain-form LRs 11x off at the swept width, `--strict`
    passed)."""
    out = {}
    for layer, runner in LR_LAYER_COLUMNS.items():
        named = [runner] if runner in df.columns else [
            c for c in df.columns if isinstance(c, str) and lr_layer_of(c) == layer and _mostly_numbers(df[c])]
        if len(named) != 1:
            return None
        out[layer] = named[0]
    return out


def _lr_ratios(df: pd.DataFrame, x: np.ndarray) -> dict[str, np.ndarray] | None:
    """log2(lr_l / (lr gamma_l)) per row and layer (gamma_l from a gamma_<layer> column, 1 without one; NaN where
    unreadable or not in the abc form), or None without a column of each layer's own LR (:func:`lr_layer_columns`).
    Another form (the runner's mup or multiplier_free) moves LR into multipliers: its slopes are not c."""
    if (columns := lr_layer_columns(df)) is None:
        return None
    abc = (df["form"].astype(str).str.strip().str.lower() == "abc").to_numpy() if "form" in df.columns else True
    out = {}
    for layer, col in columns.items():
        lr = _to_number(df[col]).to_numpy(dtype=float)
        # a swept gamma (the runner's gamma sweeps, tune's) scales a layer's LR at one width: divided out
        gamma = _to_number(df[f"gamma_{layer}"]).to_numpy(dtype=float) if f"gamma_{layer}" in df.columns else 1.0
        ok = abc & np.isfinite(lr) & (lr > 0) & np.isfinite(gamma) & (gamma > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[layer] = np.where(ok, np.log2(np.where(ok, lr / gamma, 1.0)) - x, np.nan)
    return out


def _lr_columns_note(df: pd.DataFrame, m: ColumnMapping, prep: Prepared | None = None) -> list[str]:
    """A note where a team's own per-layer LR columns (not the runner's names) stand for the contract's: the fit's
    check of the per-layer exponents (``lr_exponents``) then reads them, and its messages say the contract's names.
    Only where they give some group's exponents (``prep``: the prepared groups): columns that hold constant
    multipliers (``emb_lr`` 10 at every width) or ratios no line fits give none, and nothing is checked against
    them (a review: the note said so all the same)."""
    columns = lr_layer_columns(df)
    if columns is None or lr_layer_of(m.lr_col) is not None or m.size_kind != "width" \
            or all(LR_LAYER_COLUMNS[layer] == c for layer, c in columns.items()):
        return []
    if prep is not None and all(g.lr_exponents is None for g in prep.groups):
        return []
    theirs = " / ".join(_shown(c) for c in columns.values())
    return [f"{theirs}: read as each layer's own LR (the contract's {' / '.join(LR_LAYER_COLUMNS.values())}): their "
            f"ratios to {_shown(m.lr_col)} give the per-layer exponents the sweep ran with, which a recommendation "
            "from the fit is checked against"]


#: the layers a per-layer constant's column names (gamma_<layer>, ...): a Constants' PerLayer's
CONSTANT_LAYERS = ("embedding", "hidden", "readout")


def _constant_columns(df: pd.DataFrame) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """Each gamma_* / init_scale_* / multiplier_* column of a layer, by (kind, layer): its numbers (NaN where not a
    positive finite one) and its cells as given (None where the column says nothing by design). Not the
    multipliers of a table in a form other than abc: the runner's multiplier_free form folds every multiplier into
    the LR and init and writes 1 (its rows' ``form``), which is no M_l."""
    out = {}
    abc = (df["form"].astype(str).str.strip().str.lower() == "abc").to_numpy() if "form" in df.columns else None
    for c in df.columns:
        if not isinstance(c, str) or not c.startswith(CONSTANT_PREFIXES) or pd.api.types.is_bool_dtype(df[c]):
            continue
        kind, layer = next((p[:-1], c[len(p):]) for p in CONSTANT_PREFIXES if c.startswith(p))
        if layer not in CONSTANT_LAYERS:
            continue
        v = _to_number(df[c]).to_numpy(dtype=float)
        v = np.where(np.isfinite(v) & (v > 0), v, np.nan)
        raw = df[c].to_numpy(dtype=object)
        if kind == "multiplier" and abc is not None:
            v = np.where(abc, v, np.nan)
            raw = raw.copy()
            raw[~abc] = None
        out[kind, layer] = (v, raw)
    return out


def _trained_constants(columns: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]], idx: np.ndarray,
                       sizes: np.ndarray, by_width: bool, parameterization: Any, swept: tuple[str, ...],
                       ) -> tuple[dict[str, dict[str, float]], list[str]]:
    """The per-layer constants a group's runs trained with, and notes on the columns that are none.

    A constant's column that holds one value in every row of the group is carried. One that varies within a size
    is swept (a coordinate of the fit, ``GroupFit.constants``), or is the runner's effective multiplier
    m_l = M_l n^-a_l, whose M_l is m_l n^a_l with the group's ``parameterization``'s a_l (``by_width``: ``sizes``
    are widths; not for a fit by parameter count). Anything else is no constant the runs shared, and is said: a
    constant retuned per size (each size's optimum at its own setting, unsaid before session 65), cells without a
    positive number (-2, "two", an empty cell beside filled ones), one varying within a size that is not swept. A
    column empty throughout the group says nothing of it."""
    a = _multiplier_exponents(parameterization) if by_width else None
    out: dict[str, dict[str, float]] = {}
    notes: list[str] = []
    where = "width" if by_width else "size"
    for (kind, layer), (v, raw) in columns.items():
        name = f"{kind}_{layer}"
        vals, cells = v[idx], raw[idx]
        told = np.array([c is not None for c in cells], dtype=bool)  # another form's multiplier: says nothing
        if not told.any() or name in swept:
            continue
        bad = told & np.isnan(vals)
        if bad.all() and all(pd.isna(c) for c in cells[told]):
            continue  # empty throughout: the group's runs do not say
        if bad.any():
            shown = list(dict.fromkeys("empty" if pd.isna(c) else repr(c) for c in cells[bad]))
            notes.append(f"{name}: {int(bad.sum())} of {int(told.sum())} rows "
                         f"{'holds' if bad.sum() == 1 else 'hold'} no positive number "
                         f"({', '.join(shown[:3])}{', ...' if len(shown) > 3 else ''}): not carried, so recommend "
                         "takes it from the constants it is given (default 1)")
            continue
        if not told.all():
            continue  # a multiplier in abc form in some rows only: no M_l the group shares
        s = sizes[idx]
        if kind == "multiplier" and a is not None and not _one_value(vals):
            # the runner's M_l n^-a_l at each width; n^a_l n^-a_l rounds (1.0000000000000002): 12 digits kept
            vals = np.asarray([float(f"{x:.12g}") for x in vals * s.astype(float) ** a[layer]])
        if _one_value(vals):
            # within the constants' bounds (schemas.theory.SCALE_MIN..MAX): a 1e300 was stored, and every answer
            # from the fit was a 422 (a service review)
            if SCALE_MIN <= (value := _the_value(vals)) <= SCALE_MAX:
                out.setdefault(kind, {})[layer] = value
            continue
        per_size = {int(z): np.unique(vals[s == z]) for z in np.unique(s)}
        if any(not _one_value(u) for u in per_size.values()):
            notes.append(f"{name}: differs between runs of one {where} but is not a swept constant of the fit "
                         "(constant_cols): the optima mix its settings, and it is not carried")
        elif kind != "multiplier" or a is not None:  # an unknown parameterization's multipliers may be M_l n^-a_l
            said = _per_size_words(per_size, where)
            # the runner's effective multiplier m_l is M_l n^-a_l: the settings said are the M_l
            what = f" M_{layer} = {name} x n^{a[layer]:g}" if kind == "multiplier" and a is not None else ""
            notes.append(f"{name}: the runs trained with{what} {said} (one value per {where}, retuned): each {where}'s "
                         "optimum is at its own setting, so the fitted exponent holds the change, and it is not "
                         "carried (recommend takes it from the constants it is given, default 1)")
    return out, notes


def _one_value(vals: np.ndarray) -> bool:
    """Whether positive ``vals`` are one setting: within ``LR_MERGE_RTOL`` (float rounding, M n^-a n^a; a column
    logged in float32 or at 4 digits)."""
    return bool(np.ptp(vals) <= LR_MERGE_RTOL * np.min(vals))


def _the_value(vals: np.ndarray) -> float:
    """The one setting ``vals`` hold (:func:`_one_value`): itself where they agree to the bit, else their median to 6
    digits (float32's 0.10000000149 is 0.1)."""
    return float(vals[0]) if np.ptp(vals) == 0 else float(f"{np.median(vals):.6g}")


def _per_size_words(per_size: dict[int, np.ndarray], where: str) -> str:
    """``1 at widths 64, 128; 0.5 at widths 256, 512``: each size's one setting, sizes of one setting together."""
    at: dict[float, list[int]] = {}
    for z, v in per_size.items():
        at.setdefault(_the_value(v), []).append(z)
    return "; ".join(f"{val:g} at {where}{'s' if len(zs) > 1 else ''} {', '.join(map(str, zs))}"
                     for val, zs in at.items())


def _constant_like(c: Any) -> bool:
    """A per-layer constant's column (gamma_hidden, ...) or the runs' epsilon: what :func:`_trained_constants` and
    :func:`_trained_epsilon` read and say."""
    return c == "epsilon" or (isinstance(c, str) and c.startswith(CONSTANT_PREFIXES)
                              and any(c == f"{p}{layer}" for p in CONSTANT_PREFIXES for layer in CONSTANT_LAYERS))


def _n_settings(col: pd.Series, odd: bool = True) -> int:
    """How many settings a constant's column holds: its numbers within ``LR_MERGE_RTOL`` of a cluster's smallest one
    (as :func:`_merge_close` merges LRs and swept constants; clusters do not chain, as :func:`_one_value` does not),
    empty cells none, any other cell (-2, 0, a word) one each, so that the column's check names them (``odd``; else
    none: the fit's constant notes say them)."""
    v = _to_number(col).to_numpy(dtype=float)
    ok = np.unique(v[np.isfinite(v) & (v > 0)])
    bad = col[~(np.isfinite(v) & (v > 0)) & col.notna().to_numpy()]
    clusters, i = 0, 0
    while i < ok.size:
        i = int(np.searchsorted(ok, ok[i] * (1 + LR_MERGE_RTOL), side="right"))
        clusters += 1
    return clusters + (int(bad.nunique()) if odd else 0)


def _multiplier_exponents(parameterization: Any) -> dict[str, float] | None:
    """Each layer's a_l under a named ``parameterization`` (the group's column), else None."""
    if not isinstance(parameterization, str):
        return None
    from abcscale.theory.tables import ab_table

    try:
        ab = ab_table(parameterization)
    except ValueError:  # a custom table's name: its exponents are not known here
        return None
    return {layer: ab[layer].a for layer in CONSTANT_LAYERS}


def _lr_exponents(ratios: dict[str, np.ndarray] | None, width: np.ndarray, idx: np.ndarray) -> dict[str, float] | None:
    """Each layer's c_l from a group's rows: one ratio per width (to 0.02 octave: a CSV's three digits; cells
    without one left out), on a line over log2 width (to 0.02 octave), at 2+ widths; else None (mixed forms, one
    width, per-layer LRs the constants do not explain). All 0 in a global sweep."""
    widths = np.unique(width)
    if ratios is None or widths.size < 2:
        return None
    z = np.log2(widths.astype(float))
    out = {}
    for layer, r in ratios.items():
        per = []
        for w in widths:
            vals = r[idx][width == w]
            vals = vals[np.isfinite(vals)]
            if not vals.size or np.ptp(vals) > 0.02:
                return None
            per.append(float(np.median(vals)))
        slope, icpt = np.polyfit(z, per, 1)
        if np.max(np.abs(slope * z + icpt - np.array(per))) > 0.02:
            return None
        out[layer] = round(-float(slope), 4) + 0.0  # + 0.0: no -0
    return out


def _canonical(df: pd.DataFrame, v: _Valid, m: ColumnMapping,
               families: dict[str, tuple[np.ndarray, str]] | None = None) -> Prepared:
    """Log2 units, NaN loss for diverged runs, one GroupData per distinct group key (sorted). ``families``:
    :func:`_size_families`' answer where the caller has it."""
    n = len(df)
    width = np.round(v.width).astype(np.int64)
    x = np.log2(v.lr)
    loss = np.where(v.diverged, np.nan, v.loss)
    seed = v.seed if v.seed is not None else np.zeros(n)
    names = tuple(v.constants)
    # a swept constant's grid points within LR_MERGE_RTOL are one (one seed's gamma logged 3e-4 high moved the
    # swept optimum from 1 to 1.49: a code review), as an LR's are
    k = (np.column_stack([np.log2(_merge_close(np.asarray(c, dtype=float), np.zeros(n))[0])
                          for c in v.constants.values()]) if names else np.zeros((n, 0)))
    bw = None
    if "base_width" in df.columns and "base_width" not in v.group_cols:
        bw = _to_number(df["base_width"]).to_numpy()

    mixed = _mixed_configs(df, m, v, families)
    inverted = _inverted_rows(df, m, v)
    param = df["parameterization"].to_numpy() if "parameterization" in df.columns else None
    decay, decay_mode = _decays(df)
    eps_col, eps_mode_col = _epsilons(df)
    lone_eps = (np.where(_no_epsilon_variant(df), np.nan, _to_number(df["epsilon"]).to_numpy(dtype=float))
                if "epsilon" in df.columns and "epsilon_mode" not in df.columns
                and not pd.api.types.is_bool_dtype(df["epsilon"]) else None)
    # an LR column that is one layer's own LR (--lr-col lr_hidden) is not beta: the ratios say nothing of c; nor
    # do their slopes over a parameter count (c / 2: a per-layer table fitted by n_params read as off its alignment)
    lr_layer = lr_layer_of(m.lr_col)
    ratios = None if lr_layer is not None or m.size_kind != "width" else _lr_ratios(df, x)
    # a layer's own LR column fitted as the LR (--lr-col lr_readout) already holds that layer's gamma: not carried
    trained = {key: col for key, col in _constant_columns(df).items() if not (key[0] == "gamma" and lr_layer)}

    def one(values: np.ndarray | None, idx: np.ndarray) -> Any:
        """The group's one value of a column, missing ones left out (a resumed sweep's cells from a runner before
        the column: the cell key holds the decay, so they trained with it), else None (none, or several)."""
        if values is None:
            return None
        seen = pd.unique(values[idx][pd.notna(values[idx])])
        return _py(seen[0]) if len(seen) == 1 else None

    def group(key: dict[str, Any], idx: np.ndarray) -> GroupData:
        rows = []
        for w in np.unique(width[idx]):
            i = idx[width[idx] == w]
            rows.append(WidthRows(int(w), x[i], loss[i], seed[i], v.diverged[i], k[i]))
        base = pd.unique(bw[idx][~np.isnan(bw[idx])]) if bw is not None else np.array([])
        # both or neither: a decay whose mode is unknown, or mixed, is not one the fit can say it trained with
        wd, wd_mode = one(decay, idx), one(decay_mode, idx)
        wd = None if wd_mode is None else wd
        eps, eps_mode, eps_notes = _trained_epsilon(eps_col, eps_mode_col, idx, width, m.size_kind == "width",
                                                    lone_eps)
        carried, notes = _trained_constants(trained, idx, width, m.size_kind == "width",
                                            key.get("parameterization", one(param, idx)), names)
        notes += eps_notes
        return GroupData(key, tuple(rows), names, int(base[0]) if base.size == 1 else None,
                         tuple(c for c, rows_in in mixed.items() if rows_in[idx].any()),
                         inverted_lr=inverted is not None and bool(inverted[0][idx].any()),
                         weight_decay=None if wd is None else float(wd),
                         weight_decay_mode=None if wd is None or wd_mode is None else str(wd_mode),
                         epsilon=None if eps is None else float(eps),
                         epsilon_mode=None if eps is None else str(eps_mode),
                         lr_exponents=_lr_exponents(ratios, width[idx], idx),
                         trained_constants=carried, constant_notes=tuple(notes), lr_layer=lr_layer)

    if v.group_cols:
        keys = pd.DataFrame({c: df[c].to_numpy() for c in v.group_cols})
        parts = [(values if isinstance(values, tuple) else (values,), sub.index.to_numpy())
                 for values, sub in keys.groupby(v.group_cols, sort=True, dropna=False)]
    else:
        parts = [((), np.arange(n))]
    groups = tuple(group({c: _py(val) for c, val in zip(v.group_cols, values, strict=True)}, idx)
                   for values, idx in parts)
    return Prepared(groups, tuple(v.group_cols), names, m, n, int(v.diverged.sum()), table_hash(df),
                    covariates=tuple(m.covariates or ()))
