"""The table's warnings: each check reads the validated table and says what a fit of it would get wrong (mixed
configurations, copied seeds, a scheduled LR column, a model family per size, ...); ``unreliable:`` ones gate
``--strict``."""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from abcscale.fitting.table._cells import _count, _mostly_numbers, _rows, _to_number
from abcscale.fitting.table._names import (
    _BEST_WORDS,
    _DEPTH_NAMES,
    _FAILED_STATES,
    _MISSING_WORDS,
    _STATE_COLUMNS,
    _WAITING_STATES,
    _WIDTH_NAMES,
    DECAY_COLUMN,
    LR_LAYER_COLUMNS,
    THEORY_COLUMNS,
    UNRELIABLE,
    _best_so_far,
    _configured_lr_name,
    _decay_named,
    _held_out_like,
    _key,
    _logged_lr_name,
    _lr_named,
    _multiplier_named,
    _name_words,
    _role_lr,
    _shown,
    _suffix_named,
    _width_named,
    is_budget_name,
    is_measurement_name,
    lr_layer_of,
    option,
)
from abcscale.fitting.table._valid import (
    INIT_COL,
    SMALL_WIDTHS,
    STALL_FRACTION,
    STALL_KEPT,
    WIDTH_PLAUSIBLE,
    _complete,
    _curve_best,
    _curve_codes,
    _flagged,
    _inverted_rows,
    _isolated_nan,
    _roles,
    _trained,
    _Valid,
)
from abcscale.schemas.fit import ColumnMapping
from abcscale.schemas.sweep import DEFAULT_LOSS, GROUP_COLUMNS, RUN_MEASUREMENTS

if TYPE_CHECKING:
    from abcscale.fitting.table._canonical import Prepared


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


def _setting_of(kind: Any, text: str) -> str | None:
    """The theory setting (``kind``'s value) a cell names, or None: as theory reads it (any case, ``-`` for ``_``:
    ``Per-Layer``), or with its words apart (``per layer``, ``Mean Field``) or run together (``perlayer``), which
    theory does not read."""
    for key in (text, re.sub(r"[\s_\-]+", "_", text.strip())):
        with contextlib.suppress(ValueError):
            return str(kind(key).value)
    bare = re.sub(r"[\s_\-]+", "", text.strip().lower())
    return next((str(member.value) for member in kind if str(member.value).replace("_", "") == bare), None)


def _one_spelling(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """A theory setup column's spellings of one setting (``mup`` and ``muP``, ``adam`` and ``Adam``, ``sp`` and
    ``standard``) made one, the most frequent, with a note: theory reads them alike, and as group values they split
    one setup's runs into groups of part of its seeds or grid each, unsaid (a user review). A spelling theory does
    not read (``per layer``, ``perlayer``: :func:`_setting_of`) becomes one it does, the setting's own where no other
    spelling is: a table's ``per layer`` was fitted without theory, "unknown lr_mode" (a review)."""
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
            if (setting := _setting_of(kind, text)) is not None:
                spellings.setdefault(setting, []).append(text)
        merged: dict[str, str] = {}
        for setting, ways in spellings.items():
            read = [w for w in ways if _setting_of(kind, w) == _read_as(kind, w)]  # theory reads these as written
            to = read[0] if read else setting
            if others := [w for w in ways if w != to]:
                merged.update(dict.fromkeys(others, to))
                why = "one setting spelt several ways" if read else "the spelling theory reads"
                notes.append(f"{name}: {', '.join(repr(w) for w in others)} read as {to!r} ({why})")
        if merged:
            df = df.assign(**{name: df[name].map(lambda x, to=merged: to.get(x, x) if isinstance(x, str) else x)})
    # the alignment (``full`` and ``Full``, ``0.75,0.5,0.75`` and ``0.75, 0.5, 0.75``) and the optimizer's variant
    # (``adam`` and ``Adam``) as theory and the runner read them alike: they split a group too, unsaid (a review)
    for name, same in (("alignment", _alignment_key), ("optimizer_variant", lambda t: " ".join(t.split()).lower())):
        if name not in df.columns or _mostly_numbers(df[name]):
            continue
        counts = df[name].dropna().astype(str).value_counts(sort=True)
        by_key: dict[str, list[str]] = {}
        for text in counts.index:
            if (key := same(text)) is not None:
                by_key.setdefault(key, []).append(text)
        merged = {w: spelt[0] for spelt in by_key.values() for w in spelt[1:]}  # the most frequent spelling stays
        for spelt in by_key.values():
            if len(spelt) > 1:
                notes.append(f"{name}: {', '.join(repr(w) for w in spelt[1:])} read as {spelt[0]!r} (one setting "
                             "spelt several ways)")
        if merged:
            df = df.assign(**{name: df[name].map(lambda x, to=merged: to.get(x, x) if isinstance(x, str) else x)})
    return df, notes


def _alignment_key(text: str) -> str | None:
    """The alignment a cell names (``full``, ``none`` or its three exponents), or None where it names none."""
    from abcscale.schemas.theory import Alignment

    try:
        a = Alignment.parse(text)
    except ValueError:
        return None
    return repr((a.alpha, a.omega, a.u))


def _read_as(kind: Any, text: str) -> str | None:
    """The setting theory reads ``text`` as (``kind(text)``, as a fit's group reads its key), or None."""
    try:
        return str(kind(text).value)
    except ValueError:
        return None


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
        # a tracker's namespace before the name (wandb's config.lr_mode, MLflow's params.optimizer) read as its
        # last part: whole, config.parameterization was 0.84 alike and said nothing (a review)
        ratio = {str(c): 1.0 if _key(name) in (_key(c), _key(re.split(r"[./]", str(c))[-1]))
                 else difflib.SequenceMatcher(None, _key(c), _key(name)).ratio()
                 for c in free if holds(df[c], kind)}
        if ratio and max(ratio.values()) >= 0.85:
            like = max(ratio, key=lambda c: ratio[c])
            out.append(f"{like}: looks like the {name} column, which the table lacks: it is not read as that "
                       f"(theory's exponents need {name}); rename it {name!r}, or copy it so with "
                       f"{option('derive')} {name}={like}")
    return out


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
    curve = _curve_codes(df[[*v.group_cols, m.size_col, *v.constants]] if v.curves is None else v.curves)
    _, lr_best = _curve_best(curve, v.lr, v.loss, ok, "min")
    # each cell (a curve's LR, checked finite and positive by _iv) its lowest loss, NaN skipped as pandas' min skips it
    _, cell = np.unique(np.column_stack([curve.astype(float), v.lr]), axis=0, return_inverse=True)
    cell_min, _ = _curve_best(cell.ravel(), v.lr, v.loss, ok, "min")
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
    curve = _curve_codes(df[[*v.group_cols, m.size_col, *v.constants]] if v.curves is None else v.curves)
    best, lr_best = _curve_best(curve, v.lr, v.loss, ok, "min")
    above = ok & (v.lr > lr_best) & (v.loss > 0)
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
#: the LR column within this share of one multiple of another LR column, in every row, is that column rescaled
LR_MULTIPLE_RTOL = 0.01


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


def _implausible_lr(df: pd.DataFrame, m: ColumnMapping, v: _Valid) -> list[str]:
    """Say each group of an adaptive optimizer whose best LR is 1 or more at every size (:func:`_implausible_rows`);
    its prediction is unreliable too (``GroupData.implausible_lr``)."""
    from abcscale.fitting.table._valid import _implausible_rows

    if (said := _implausible_rows(df, m, v)) is None:
        return []
    rows, groups, best_lr = said
    out = []
    for g in pd.unique(groups[rows]):
        these = rows & (groups == g)
        out.append(f"{m.lr_col}: the best learning rate is {float(np.nanmin(best_lr[these])):g} or more at every "
                   f"{m.size_kind if m.size_kind == 'width' else 'size'} of the "
                   f"{df.loc[these, 'optimizer'].iloc[0]} runs in {_rows(these)}, no learning rate of an adaptive "
                   "optimizer (about 1e-4 to 1e-2): if the column holds -log2 of the LR, 1/LR or the LR in other "
                   "units, convert it to the LR itself; their group's prediction is unreliable")
    return out


def _unread_divergence_flag(df: pd.DataFrame, m: ColumnMapping, v: _Valid) -> list[str]:
    """A true/false column named for divergence (``is_diverged``, ``has_diverged``) that flags runs, where the table
    has no column the divergence role reads: its runs are fitted with the losses they logged last, and the warning
    on settings that differ named it a group column (a review: the stability edge 2.8x too high). Said, with the
    flag's option; not refused, as a narrower flag (``diverged_before_warmup``) is no divergence column."""
    from abcscale.fitting.table._names import _FALSE, _TRUE

    if m.diverged_col in df.columns:
        return []
    out = []
    for c in df.columns:
        if "diverg" not in str(c).lower() or c in (m.size_col, m.lr_col, m.loss_col):
            continue
        text = df[c].dropna().astype(str).str.strip().str.lower()
        if len(text) and text.isin(_TRUE + _FALSE).all() and text.isin(_TRUE).any():
            out.append(f"{c}: a true/false column named for divergence that no role reads (it flags "
                       f"{int(text.isin(_TRUE).sum())} run(s), fitted with the losses they logged): if it marks the "
                       f"diverged runs, name it with {option('diverged_col')} {str(c)!r}")
    return out


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


#: the runner's per-layer init columns: a table that holds them is an ``abcscale sweep``'s
_RUNNER_INIT_COLUMNS = ("init_std_embedding", "init_std_hidden", "init_std_readout")
_RUNNER_DECAY_COLUMNS = tuple(f"weight_decay_{r}" for r in ("embedding", "hidden", "readout", "vector"))
_RERUN = ("rerun its sweep into its folder (abcscale sweep DIR/spec.json --out DIR: it trains nothing, and lists "
          "them) and fit that")


def _init_scales(df: pd.DataFrame) -> set[float] | None:
    """The init scales a runner's rows trained with, read back from their init stds (``init_std_l`` is the scale
    times width^-b_l, the parameterization's b: absolute, docs/theory.md section 1), rounded; None where a row's
    parameterization has no named table (a custom one) or the columns are not numbers: not known."""
    from abcscale.theory import ab_table

    if "parameterization" not in df.columns or "width" not in df.columns:
        return None
    width = _to_number(df["width"]).to_numpy(dtype=float)
    scales: set[float] = set()
    for name, rows in df.groupby("parameterization", sort=False).indices.items():
        try:
            ab = ab_table(str(name))
        except ValueError:
            return None
        for layer in ("embedding", "hidden", "readout"):
            got = _to_number(df[f"init_std_{layer}"]).to_numpy(dtype=float)[rows] * width[rows] ** ab[layer].b
            scales |= {round(float(x), 6) for x in got[np.isfinite(got)]}
    return scales or None


def _older_sweep_table(df: pd.DataFrame) -> list[str]:
    """A note on an ``abcscale sweep`` table written before its rows recorded the init scales (``init_scale_*``) or
    the base width's decay (``base_weight_decay``): the fit cannot carry what its runs trained with, and a
    recommendation from it silently assumed init scales 1 and no decay (a review of older versions' folders,
    session 71: an init std 2x off, "weight_decay: none given"). A rerun of its sweep lists them, training
    nothing."""
    if not all(c in df.columns for c in _RUNNER_INIT_COLUMNS):
        return []
    out = []
    if not any(c.startswith("init_scale_") for c in df.columns) and (scales := _init_scales(df)) != {1.0}:
        said = "" if scales is None else f" ({', '.join(f'{x:g}' for x in sorted(scales))} among them)"
        out.append(f"init_scale: this abcscale sweep's table has no init_scale_* columns (an older version's, or "
                   f"cut), so the init scales its runs trained with{said} are not read (a recommendation from this "
                   "fit assumes 1 at every layer): " + _RERUN)
    decays = [c for c in _RUNNER_DECAY_COLUMNS if c in df.columns]
    if decays and DECAY_COLUMN not in df.columns:
        wd = np.concatenate([_to_number(df[c]).to_numpy(dtype=float) for c in decays])
        if (wd[np.isfinite(wd)] > 0).any():
            out.append(f"weight_decay: this abcscale sweep's table has no {DECAY_COLUMN} column (an older version's, "
                       "or cut), so the decay its runs trained with is not read (a recommendation from this fit gives "
                       "0 at every layer): " + _RERUN)
    return out


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


def _diverged_covariates(df: pd.DataFrame, m: ColumnMapping, v: _Valid) -> list[str]:
    """Runs that diverged whose covariate value no finished run has: a tracker logs the tokens a run saw before it
    stopped, so each became a curve of its own, every run in it diverged ("lower the learning-rate grid", a review),
    and its own curve lost the divergence that caps it. Said, with the way out: the planned value."""
    notes = []
    for c in dict.fromkeys(m.covariates or []):
        if c not in df.columns:
            continue
        num = _to_number(df[c]).to_numpy(dtype=float)
        kept = np.unique(num[~v.diverged & np.isfinite(num)])
        odd = v.diverged & np.isfinite(num) & ~np.isin(num, kept)
        if odd.sum() < 2:  # one run's own budget is a choice; several are a logging habit
            continue
        shown = ", ".join(f"{x:.3g}" for x in np.unique(num[odd])[:4])
        notes.append(f"{c}: {int(odd.sum())} run(s) that diverged hold values no finished run has ({shown}, ...: the "
                     f"{c} a run reached before it stopped?), so each is a curve of its own where every run "
                     f"diverged, and the curve it belongs to does not see its divergence: give each run its planned "
                     f"value (its budget), {_rows(odd)}")
    return notes

