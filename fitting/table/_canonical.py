"""The canonical form: a valid table as :class:`GroupData` per group, per width, its runs as arrays in log2 units,
with the epsilons, weight decays, per-layer LR ratios and swept constants each group was trained with."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from abcscale.fitting.table._cells import LR_MERGE_RTOL, _merge_close, _py, _to_number
from abcscale.fitting.table._checks import lr_layer_columns
from abcscale.fitting.table._configs import _mixed_configs
from abcscale.fitting.table._names import (
    CONSTANT_LAYERS,
    CONSTANT_PREFIXES,
    DECAY_COLUMN,
    _without_epsilon,
    lr_layer_of,
)
from abcscale.fitting.table._valid import _implausible_rows, _inverted_rows, _Valid
from abcscale.schemas.fit import ColumnMapping
from abcscale.schemas.theory import SCALE_MAX, SCALE_MIN


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
    implausible_lr: bool = False  # an adaptive optimizer's best LR of 1 or more at every size: not the LR itself
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
    implausible = _implausible_rows(df, m, v) if inverted is None else None
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
                         implausible_lr=implausible is not None and bool(implausible[0][idx].any()),
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
    # the input's hash is the table as given, before the checks dropped or merged anything: prepare() sets it (a hash
    # of this frame here was computed and replaced, 6 ms a fit)
    return Prepared(groups, tuple(v.group_cols), names, m, n, int(v.diverged.sum()), "",
                    covariates=tuple(m.covariates or ()))
