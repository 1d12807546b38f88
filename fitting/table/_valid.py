"""Validation: ``_iv`` checks a table against its column mapping (a :class:`TableError` lists every problem at once,
each naming its column) and types its runs as a ``_Valid``; ``_roles`` guesses the columns' roles; divergence,
blow-ups and stalls are read here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from abcscale.fitting.table._cells import (
    LOSS_RANGE,
    LOSS_SPREAD,
    LR_SPREAD,
    TableError,
    _kind,
    _merge_close,
    _merged_note,
    _mostly_numbers,
    _n_settings,
    _nested_problem,
    _numeric,
    _rows,
    _to_number,
)
from abcscale.fitting.table._names import (
    _FALSE,
    _LIKELY,
    _MISSING_WORDS,
    _TRUE,
    CONSTANT_PREFIXES,
    EXTRA_GROUP_COLUMNS,
    THEORY_COLUMNS,
    _configured_lr_name,
    _key,
    _lr_named,
    _multiplier_named,
    _role_lr,
    _shown,
    option,
)
from abcscale.schemas.api import MAX_WIDTH
from abcscale.schemas.fit import ColumnMapping, max_size
from abcscale.schemas.sweep import DEFAULT_LOSS, GROUP_COLUMNS, RUN_MEASUREMENTS

#: a finite loss above this multiple of its curve's best, at a larger LR than the best, is a blow-up (diverged).
BLOWUP_FACTOR = 1.5
#: a run above its curve's best LR that ends within this share of its loss at init learned nothing: it stalled (a
#: blow-up that collapsed to chance, uniform predictions, without a NaN), which the blow-up rule misses when the
#: best run is itself not far under chance (a short run: best 4.5 against chance 5.5)
STALL_FRACTION = 0.01
#: ... and that kept less than this share of what its curve's best run learned (init - best)
STALL_KEPT = 0.1


#: no width a sweep sweeps reaches this (the widest models are about 2^15 wide): a size column past it counts
#: parameters
WIDTH_PLAUSIBLE = 2**17
#: a size column read as widths whose every size is this or less, in a table without a base_width column, looks like
#: width multipliers (muP's width_mult 1, 2, 4, 8)
SMALL_WIDTHS = 16


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
    curves: np.ndarray | None = None  # each row's curve (_curve_codes of its group, size and constants), for the checks


@dataclass(frozen=True)
class _Roles:
    group_cols: list[str]
    constant_cols: list[str]
    seed_col: str | None
    div_col: str | None


def _iv(df: pd.DataFrame, m: ColumnMapping, blowup: float | None = BLOWUP_FACTOR) -> _Valid:
    """Check every column the mapping names; raise one TableError listing every problem."""
    problems: list[str] = []
    roles = _roles(df, m, problems)
    if any("missing column" in p for p in problems):
        raise TableError(problems)
    width = _check_width(df, m.size_col, problems, m.size_kind)
    lr = _check_positive(df, m.lr_col, "learning rates", problems)
    if lr is not None and (ok := np.isfinite(lr.to_numpy()) & (lr.to_numpy() > 0)).any():
        median = float(np.median(lr.to_numpy()[ok]))
        if (far := ok & ((lr.to_numpy() > median * LR_SPREAD) | (lr.to_numpy() < median / LR_SPREAD))).any():
            # a loss of 1e308 was refused, an LR of 1e300 fitted in silence (a review of the pages)
            problems.append(f"{m.lr_col}: {_rows(far)} hold a learning rate more than {LR_SPREAD:g}x from the runs' "
                            f"median ({median:.4g}; e.g. {float(lr.to_numpy()[far][0]):.3g}), which no sweep "
                            "tries: a mis-logged value; fix or drop those rows")
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
        if df[c].dtype == object and len(kinds := {_kind(v) for v in df[c] if _present(v)}) > 1:
            problems.append(f"{c}: a group column mixes {' and '.join(sorted(kinds))}; give each column one type")
        blank = df[c].isna() | (df[c].astype(str).str.strip() == "")
        if c in THEORY_COLUMNS and blank.any() and not blank.all():
            # its rows would leave their group for a group of their own, and the group's exponent change in silence
            problems.append(f"{c}: empty in {_rows(blank)}; theory reads it for every run's group: fill it in "
                            "or drop the rows")
        elif c in EXTRA_GROUP_COLUMNS and blank.any() and not blank.all():
            # a base width, step count or depth left empty at some widths split them off as a group of their own:
            # the main group lost those widths, its prediction moved, unsaid (a review: 5 widths fitted as 3)
            problems.append(f"{c}: empty in {_rows(blank)}; its rows would be fitted as a group of their own, apart "
                            "from their widths' others: fill it in or drop the rows")
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
    codes = curve.to_numpy()  # the curves of [*group_cols, size, *constants], grouped once for the checks below
    stalled = None
    if blowup is not None:
        blown = _blown_up(codes, lr.to_numpy(), loss.to_numpy(), diverged, blowup)
        diverged = diverged | blown
        if "loss_at_init" in df.columns and m.loss_col != "loss_at_init":
            init = _to_number(df["loss_at_init"]).to_numpy(dtype=float)
            stalled = _stalled(codes, lr.to_numpy(), loss.to_numpy(), init, diverged)
            diverged = diverged | stalled
    missing = _missing_below_best(codes, lr.to_numpy(), loss.to_numpy(), diverged) \
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
                  unflagged, tuple(merged), stalled=stalled, curves=codes)


def _swept_peak(col: pd.Series, name: object) -> bool:
    """Whether an LR column is named as a configured LR or a schedule's peak (``max_lr``, ``peak_lr``,
    ``config.lr``: :func:`_configured_lr_name`) and holds two values or more: the LR a sweep varies."""
    return _configured_lr_name(name) and _to_number(col).nunique() >= 2


def _roles(df: pd.DataFrame, m: ColumnMapping, problems: list[str]) -> _Roles:
    """Which columns are the group key, the swept constants, the seed and the divergence flag."""
    default = ColumnMapping()
    cols = set(df.columns)
    # the table's own columns, as the messages list them: not those the mapping derives (`derive`), which the
    # user's table does not hold (a review: "columns are: ..." named a derived column among the table's)
    derived = {str(d).split("=", 1)[0].strip() for d in m.derive or []}
    # ... nor the theory settings `-p/-o/--lr-mode` added (abcscale.usecases.fits.with_setup names them in attrs;
    # the key is spelt here, as the fitting layer does not import the use cases)
    derived |= set(df.attrs.get("abcscale_setup_columns", ()))
    given = sorted(c for c in cols if c not in derived)
    missing = [(role, col) for role, col in (("size_col", m.size_col), ("lr_col", m.lr_col),
                                             ("loss_col", m.loss_col)) if col not in cols]
    nested, missing = _nested_problem(df, missing), list(missing)
    if nested is not None:  # one message for every column found in a column of dicts (wandb's export snippet)
        problems.append(nested[0] + ("" if len(nested[1]) < len(missing) else
                                     f"; columns are: {', '.join(_shown(c) for c in given)}"))
        missing = [(role, col) for role, col in missing if col not in nested[1]]
    for i, (role, col) in enumerate(missing):  # the table's columns once, after the last
        listing = f"; columns are: {', '.join(_shown(c) for c in given)}" if i == len(missing) - 1 else ""
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
                                               not any(w in _key(c) for w in ("val", "eval", "test")),
                                               # a schedule's peak (max_lr) before the LR a trainer logs (lr: the
                                               # step's, OneCycleLR's at its end 1e-4 of it): a sweep varies the peak
                                               role == "lr_col" and not _swept_peak(pd.Series(df[c]), c), c))
        # a name with a stray space (` width`) quoted: unquoted, the advice read as the name that failed (a review)
        hint = (f"; {', '.join(_shown(c) for c in alike[:4])} {'looks' if len(alike) == 1 else 'look'} like it: "
                f"name it with {option(role)}" + (f" {alike[0]!r}" if _shown(alike[0]) != alike[0] else "")
                if alike else "")
        problems.append(f"{_shown(col)}: missing column (the {option(role)} column){hint}{listing}")
    if m.lr_col == default.lr_col and m.lr_col in cols and (df[m.lr_col].nunique() == 1 or _adam_betas(df, m.lr_col)):
        # an optimizer's beta (Adam's 0.9) beside the LR: read as the LR, no LR was swept, and the warnings spoke of
        # diverged grids and group columns (a review)
        # not a layer's or role's own LR (the runner's lr_hidden: beta times the width's factor; a team's hidden_lr,
        # named as the sweep's LR before session 66) nor the runner's log2_lr (beta's)
        alike = sorted(str(c) for c in cols if c != m.lr_col and _lr_named(c) and not _role_lr(c)
                       and _mostly_numbers(df[c]) and _to_number(df[c]).nunique() >= 3)
        betas = sorted(_to_number(df[m.lr_col]).unique())
        said = (f"one value ({df[m.lr_col].iloc[0]}) in every row, so no learning rate was swept in it"
                if len(betas) == 1 else  # Adam's beta2 swept beside the LR (0.95, 0.999; a review)
                f"{len(betas)} values ({', '.join(f'{x:g}' for x in betas)}) between 0.5 and 1, an optimizer's "
                "betas, not a learning rate swept")
        if alike and (df[m.lr_col].nunique() == 1 or _to_number(df[alike[0]]).nunique() > df[m.lr_col].nunique()):
            problems.append(f"{m.lr_col}: {said}; {', '.join(alike[:3])} {'looks' if len(alike) == 1 else 'look'} "
                            f"like the learning rate: name it with {option('lr_col')}")
    seed_col = m.seed_col if m.seed_col in cols else None
    if m.seed_col and seed_col is None and m.seed_col != default.seed_col:
        problems.append(f"{_shown(m.seed_col)}: missing column (the {option('seed_col')} column)")
    div_col = m.diverged_col if m.diverged_col in cols else None
    if m.diverged_col and div_col is None and m.diverged_col != default.diverged_col:
        problems.append(f"{_shown(m.diverged_col)}: missing column (the {option('diverged_col')} column)")
    for role, found, name in (("seed_col", seed_col, m.seed_col), ("diverged_col", div_col, m.diverged_col)):
        # "Diverged" or "SEED" is not the default's spelling: read as nothing, it would be silently ignored
        like = [c for c in cols if name and found is None and c != name
                and c.strip().lower() == name.strip().lower()]
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
                       and df[c].nunique(dropna=False) > 1 and not follows_covariates(df, c, covariates)]
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
    # a size under 1/2 rounds to 0 within the integer check's tolerance (1e-10 was fitted as width 0, a review)
    tiny = ~bad & (w < 0.5)
    if tiny.any():
        problems.append(f"{col}: {noun}s must be whole counts of at least 1, not in {_rows(tiny)} (below 1/2, they "
                        "would round to 0); a unit slip? The exponent does not depend on the unit: scale the column "
                        "to whole counts")
    bad |= tiny
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


def follows_covariates(df: pd.DataFrame, c: str, covariates: list[str]) -> bool:
    """Whether column ``c`` takes one value per combination of the covariates (``steps`` = tokens / (batch x
    sequence)): then it is no setting of its own but the covariates' consequence, and grouping by it left each group
    one combination, "no joint law ... collinear" (a review; ``--group-cols ""`` gave the law)."""
    present = [k for k in covariates if k in df.columns]
    return bool(present) and int(df.groupby(present, dropna=False)[c].nunique(dropna=False).max()) <= 1


def _present(v: Any) -> bool:
    """Whether a cell holds a value: not None, NaN, NaT nor pandas' NA (whose ``v == v`` is NA, which has no truth
    value: a TypeError, a review); a list or an array is a value."""
    try:
        return not bool(pd.isna(v))
    except (TypeError, ValueError):  # an array's isna is an array
        return True


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


def _optimizer_in(col: pd.Series, names: tuple[str, ...]) -> np.ndarray:
    """Per row, whether its optimizer cell names one of ``names`` (any alias or case theory reads)."""
    from abcscale.schemas.enums import Optimizer

    def named(x: Any) -> bool:
        try:
            return Optimizer(str(x).strip().lower()).value in names
        except ValueError:
            return False

    return col.map(named).to_numpy(dtype=bool)


def _adam_betas(df: pd.DataFrame, col: str) -> bool:
    """Whether ``col`` holds a few numbers in [0.5, 1), as an optimizer's beta1 / beta2 swept (0.9, 0.95, 0.999), in
    a table of Adam-family runs (an SGD sweep's LRs of 0.5-0.875 are LRs: a review)."""
    num = _to_number(df[col])
    return ("optimizer" in df.columns and bool(_optimizer_in(df["optimizer"], ("adam", "adamw", "adafactor")).all())
            and bool(num.notna().all())
            and 2 <= num.nunique() <= 4 and bool(num.between(0.5, 1, inclusive="left").all()))


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


def _curve_codes(keys: pd.DataFrame | np.ndarray) -> np.ndarray:
    """Each row's curve (one group, size and setting of the swept constants) as an integer, NaN keys a curve of
    their own; ``keys`` already codes passes through (:func:`_iv` groups the table once for all its checks)."""
    if isinstance(keys, np.ndarray):
        return keys
    return keys.groupby(list(keys.columns), dropna=False, sort=False).ngroup().to_numpy()


def _curve_best(keys: pd.DataFrame | np.ndarray, lr: np.ndarray, loss: np.ndarray, ok: np.ndarray,
                tie: Literal["min", "max"]) -> tuple[np.ndarray, np.ndarray]:
    """Per row, its curve's best loss among the ``ok`` runs and the LR of that run (``tie``: "min" or "max" of
    the LRs at an equal best). A curve is one group, size and setting of the swept constants (``keys``: their
    columns, or :func:`_curve_codes`).

    NaN is skipped as pandas' groupby min skips it (``np.fmin``), a curve with none NaN: the same numbers as the two
    groupby transforms this replaced, which a table's checks ran six times a fit (a tenth of a small fit's time)."""
    codes = _curve_codes(keys)
    n = int(codes.max()) + 1 if codes.size else 0
    masked = np.where(ok, loss, np.inf)
    per = np.full(n, np.nan)
    np.fmin.at(per, codes, masked)
    best = per[codes]
    at_best = np.where(masked == best, np.asarray(lr, dtype=float), np.nan)
    per_lr = np.full(n, np.nan)
    (np.fmin if tie == "min" else np.fmax).at(per_lr, codes, at_best)
    return best, per_lr[codes]


def _blown_up(keys: pd.DataFrame | np.ndarray, lr: np.ndarray, loss: np.ndarray, diverged: np.ndarray,
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


def _stalled(keys: pd.DataFrame | np.ndarray, lr: np.ndarray, loss: np.ndarray, init: np.ndarray,
             diverged: np.ndarray) -> np.ndarray:
    """Runs at a larger LR than their curve's best that ended within STALL_FRACTION of their loss at init, keeping
    under STALL_KEPT of what the curve's best learned, on a curve whose best run learned (ended more than
    STALL_FRACTION under its own loss at init). The slow end of the grid is never marked: a tiny LR learns little
    too. (A review: where the best is only 3-6% under init, runs keeping a fifth of its gain were marked.)"""
    ok = ~diverged & np.isfinite(loss)
    best, lr_best = _curve_best(keys, lr, loss, ok, "min")
    codes = _curve_codes(keys)
    per = np.full(int(codes.max()) + 1 if codes.size else 0, np.nan)
    np.fmax.at(per, codes, np.where(ok & (loss == best), init, np.nan))
    init_best = per[codes]
    with np.errstate(invalid="ignore"):  # a +inf loss at init (inf - inf) flags nothing, as an empty cell: no warning
        learned = np.isfinite(init_best) & (best < init_best - STALL_FRACTION * np.abs(init_best))
        kept_little = (init - loss) < STALL_KEPT * (init_best - best)
        return (ok & learned & np.isfinite(init) & (lr > lr_best) & kept_little
                & (loss >= init - STALL_FRACTION * np.abs(init)))


def _missing_below_best(keys: pd.DataFrame | np.ndarray, lr: np.ndarray, loss: np.ndarray,
                        diverged: np.ndarray) -> np.ndarray:
    """Runs without a loss (NaN: an empty cell, an unfinished run) at a smaller LR than their curve's best run:
    counted as diverged like any NaN, though runs diverge above the optimum, not below it."""
    best, lr_best = _curve_best(keys, lr, loss, ~diverged & np.isfinite(loss), "max")
    return np.isnan(loss) & np.isfinite(best) & (lr < lr_best)


def _inverted_rows(df: pd.DataFrame, m: ColumnMapping, v: _Valid) -> tuple[np.ndarray, int] | None:
    """The diverged runs below their curve's best LR and the count above it, where the LR column looks inverted
    (:func:`_inverted_lr`); None where it does not."""
    keys = v.curves if v.curves is not None else df[[*v.group_cols, m.size_col, *v.constants]]
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


#: optimizers whose step is the LR itself, unit by unit: a best LR of 1 or more is no LR of theirs (Adam's are
#: about 1e-4 to 1e-2; Muon's hidden about 0.02). Not Adafactor: a relative step's base LR is about 1 (t5x)
_SIGN_LIKE = ("adam", "adamw", "lion", "muon")


def _implausible_rows(df: pd.DataFrame, m: ColumnMapping, v: _Valid
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The rows of each group of an adaptive optimizer whose best LR is 1 or more at every size (its trained runs'
    curves), with each row's group code and curve's best LR; None where no group is. The LR column holds something
    else there (-log2 of the LR, 1/LR, the LR in units of 1e-3): with diverged runs :func:`_inverted_rows` tells
    it from where they sit, and this is not asked; a table without them (a tracker's export filtered to finished
    runs) passed `--strict` with an Adam LR* of 12.4 (a review)."""
    if "optimizer" not in df.columns or v.curves is None or _inverted_rows(df, m, v) is not None:
        return None
    ok = _trained(v) & _optimizer_in(df["optimizer"], _SIGN_LIKE)
    if not ok.any():
        return None
    _, best_lr = _curve_best(v.curves, v.lr, v.loss, ok, "min")
    groups = (df.groupby(v.group_cols, dropna=False, sort=False).ngroup().to_numpy() if v.group_cols
              else np.zeros(len(df), int))
    rows = np.zeros(len(df), bool)
    for g in pd.unique(groups[ok]):
        if np.all(best_lr[ok & (groups == g)] >= 1):
            rows |= groups == g
    return (rows, groups, best_lr) if rows.any() else None


def _trained(v: _Valid) -> np.ndarray:
    """The runs that trained: not diverged, with a finite loss."""
    return ~v.diverged & np.isfinite(v.loss)


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
