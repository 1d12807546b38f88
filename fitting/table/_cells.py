"""A sweep table's cells: numbers read from text (``3e-4``, ``1k``), nested cells, the rows named in a message, derived
columns, and the hash and JSON rows of a table."""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import math
import re
from contextvars import ContextVar
from typing import Any

import numpy as np
import pandas as pd

from abcscale.fitting.table._names import (
    _FAILED_WORDS,
    _MISSING_WORDS,
    _WHOLE_STEP_NAMES,
    _key,
    _shown,
    is_measurement_name,
    is_step_name,
    option,
)


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


def records_frame(rows: Any) -> pd.DataFrame:
    """JSON rows (a list of dicts) as a table. Rows that are all empty objects keep their count (no columns, n
    rows), where ``from_records`` made them a table of no rows, said as "no rows" (``[{}]``, a review)."""
    if rows and not any(rows):
        return pd.DataFrame(index=range(len(rows)))
    return pd.DataFrame.from_records(rows)


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


#: a covariate's values within this share of one another are one setting: a budget logged per run as the tokens it
#: saw (0.1-0.2% apart from packing and the last batch) split the table into one curve per run, "fewer than 2 sizes
#: with an identified optimum" (a review); budgets and batch sizes set apart differ by far more
COVARIATE_MERGE_RTOL = 0.01


def merge_close_covariates(df: pd.DataFrame, covariates: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """Each covariate's numbers within :data:`COVARIATE_MERGE_RTOL` of the smallest of their cluster read as one
    value (the one most rows give, else their median), said in a note; cells that are no positive number are left
    for validation to name."""
    notes = []
    for c in dict.fromkeys(covariates):
        if c not in df.columns:
            continue
        num = _to_number(df[c])
        ok = (num > 0) & np.isfinite(num)
        u, counts = np.unique(num[ok].to_numpy(dtype=float), return_counts=True)
        if u.size < 2 or not (np.diff(u) <= COVARIATE_MERGE_RTOL * u[:-1]).any():
            continue
        to, said, i = {}, [], 0
        while i < u.size:
            j = i + 1
            while j < u.size and u[j] - u[i] <= COVARIATE_MERGE_RTOL * u[i]:
                j += 1
            if j - i > 1:
                rows = num[ok & num.between(u[i], u[j - 1])].to_numpy(dtype=float)
                most = counts[i:j].max()
                rep = (float(u[i:j][counts[i:j].argmax()]) if most > 1 and (counts[i:j] == most).sum() == 1
                       else float(np.median(rows)))
                to.update({float(x): rep for x in u[i:j]})
                said.append(f"{u[i]:.6g}-{u[j - 1]:.6g} as {rep:.6g}")
            i = j
        hit = ok.to_numpy() & np.isin(num.to_numpy(dtype=float), list(to))
        merged = df[c].copy() if df[c].dtype == object else df[c].astype(float)
        merged[hit] = np.array([to[float(x)] for x in num.to_numpy(dtype=float)[hit]])
        df = df.assign(**{c: merged})
        notes.append(f"{c}: {len(to)} values within {COVARIATE_MERGE_RTOL:.0%} of one another read as "
                     f"{len(said)} ({'; '.join(said[:3])}{'; ...' if len(said) > 3 else ''}): one setting logged per "
                     "run (the tokens a run saw) differing by rounding; a law needs one value per setting")
    return df, notes


#: group values this close (relative) are one setting logged at two precisions: float32's rounding is 6e-8
GROUP_MERGE_RTOL = 1e-6


def merge_close_group_values(df: pd.DataFrame, group_cols: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """A float group column's values within :data:`GROUP_MERGE_RTOL` of each other read as one, the one most rows
    give (else the shortest written), said in a note: a weight decay logged as 0.1 by some runs and as float32's
    0.10000000149 by others split one setting into two groups printed alike, each with part of its seeds (a
    review)."""
    notes = []
    for c in dict.fromkeys(group_cols):
        if c not in df.columns or not pd.api.types.is_float_dtype(df[c]):
            continue
        values = df[c].to_numpy(dtype=float)
        u, counts = np.unique(values[np.isfinite(values)], return_counts=True)
        if u.size < 2 or not (np.diff(u) <= GROUP_MERGE_RTOL * np.abs(u[1:])).any():
            continue
        to: dict[float, float] = {}
        i = 0
        while i < u.size:
            j = i + 1
            while j < u.size and u[j] - u[i] <= GROUP_MERGE_RTOL * abs(u[j]):
                j += 1
            rep = float(u[max(range(i, j), key=lambda k: (counts[k], -len(repr(float(u[k])))))])
            to.update({float(x): rep for x in u[i:j] if float(x) != rep})
            i = j
        df = df.assign(**{c: [to.get(x, x) if isinstance(x, float) else x for x in df[c].tolist()]}).astype(
            {c: df[c].dtype})
        shown = "; ".join(f"{k!r} as {v!r}" for k, v in list(to.items())[:3])
        notes.append(f"{c}: {len(to)} value(s) read as the setting they round to ({shown}"
                     f"{'; ...' if len(to) > 3 else ''}): one setting logged at two precisions (float32 and float64)")
    return df, notes


def _merged_note(col: str, said: dict[float, float], rows: int) -> list[str]:
    if not said:
        return []
    first = next(iter(said.items()))
    return [f"{col}: {len(said)} learning rate value(s) within {LR_MERGE_RTOL:.1%} of another of their curve read "
            f"as one grid point ({rows} row(s); float32 and float64 logs of one grid, or rounded copies?), e.g. "
            f"{first[0]!r} as {first[1]!r}"]


def flat_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Two-level column names (pandas' ``groupby(...).agg({"loss": ["mean", "std"]})``) as one level: ``loss_mean``,
    ``loss_std``, ``width`` (they were a ``TypeError`` traceback)."""
    if not isinstance(df.columns, pd.MultiIndex):
        return df
    return df.set_axis(["_".join(str(p) for p in c if str(p) != "") for c in df.columns], axis=1)


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
#: a learning rate beyond this factor of the table's median, either way, is no LR a sweep tried (a grid spans a few
#: decades, a width range's LR* several more): a mis-logged value, which moved the fit and flattened its plot
LR_SPREAD = 1e30


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


def numbers_in_text(df: pd.DataFrame, numeric: tuple[str, ...] = ()) -> pd.DataFrame:
    """``df`` with a text column read as the numbers it holds where every value in it is a number: one that mixes
    numbers with numbers written as text (JSON rows' ``128`` and ``" 128 "``, the text stripped by then), and one of
    ``numeric``'s (``depth``, ``steps``, ``base_width``: numbers by the contract) that holds numbers as text only.
    As group values, 128 and "128" were two groups, refused as "a group column mixes numbers and text" where the
    same cell was read in the size column (a review), and "1024" sorted before "256". A column with a word, a
    true/false or a nested value among its cells stays as it is, said by its checks; a missing word (``nan``, ``""``)
    is a missing value either way."""
    out = {}
    for c in df.columns:
        s = df[c]
        if not (s.dtype == object or pd.api.types.is_string_dtype(s.dtype)):
            continue
        cells = [v for v in s if not (v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)))]
        numbers = [isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_)
                   for v in cells]
        words = [isinstance(v, str) and v.strip().lower() not in _MISSING_WORDS for v in cells]
        if not any(words) or not all(n or isinstance(v, str) for v, n in zip(cells, numbers, strict=True)):
            continue  # no text to read, or a cell neither a number nor text (true/false, a list)
        if not any(numbers) and c not in numeric:
            continue  # a text column of digits elsewhere is a label (a run's "001"), kept as written
        said = s.map(lambda v: isinstance(v, str) and v.strip().lower() not in _MISSING_WORDS)
        num = _to_number(s.where(said | ~s.map(lambda v: isinstance(v, str)), np.nan))
        if num[said].notna().all():
            out[c] = num
    return df.assign(**out) if out else df


def _mostly_numbers(s: pd.Series) -> bool:
    return bool(_to_number(s).notna().mean() >= 0.5) if len(s) else False


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


def _count(n: float) -> str:
    """A step count as written: whole numbers in full (2e+06 would hide 1,999,999 against 2,000,000)."""
    return f"{n:.0f}" if float(n).is_integer() else f"{n:g}"


def _usual(s: pd.Series) -> float:
    """A curve's step count: the most common among its runs that trained (the larger on a tie)."""
    return float(s.mode().max()) if s.notna().any() else np.nan


def _distinct_rows(df: pd.DataFrame) -> np.ndarray:
    """The rows that are no exact copy of an earlier row (an export written twice, dropped later): a run's id or a
    second loss repeats in such a copy, and was read as a setting for it (a review: wandb's Name)."""
    try:
        return ~df.duplicated().to_numpy()
    except TypeError:  # an unhashable cell scalar_cells left (none is known): every row counts
        return np.ones(len(df), bool)

#: a numeric grouping column with more distinct values than this, not all integers, is continuous.
_CONTINUOUS = 8




def _py(v: Any) -> Any:
    """Group values as plain JSON scalars (numpy scalars and NaN become Python values / None)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


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
