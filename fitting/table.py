"""Reading a sweep table and checking it against the column mapping, reporting every problem at once."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from abcscale.schemas.fit import ColumnMapping
from abcscale.schemas.sweep import GROUP_COLUMNS

#: swept per-layer constants recognised by name (each is a coordinate of its own, in log2).
CONSTANT_PREFIXES = ("gamma_", "init_scale_", "multiplier_")

#: columns that split groups automatically when they take more than one value.
EXTRA_GROUP_COLUMNS = ("depth", "steps", "base_width")

_PARQUET_MAGIC = b"PAR1"


class TableError(ValueError):
    """The table cannot be fitted; ``problems`` lists every reason, each naming its column."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def read_table(source: str | Path | bytes, fmt: str | None = None) -> pd.DataFrame:
    """Read a CSV or parquet table from a path or raw bytes (format from ``fmt``, the suffix, or sniffed)."""
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
        name = "<bytes>"
    else:
        path = Path(source)
        name = str(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise TableError([f"table: no such file {name}"]) from None
        except (IsADirectoryError, PermissionError) as exc:
            raise TableError([f"table: cannot read {name} ({exc.strerror or exc})"]) from None
        if fmt is None and path.suffix.lower() in (".csv", ".tsv", ".parquet", ".pq"):
            fmt = {".tsv": "csv", ".pq": "parquet"}.get(path.suffix.lower(), path.suffix.lower()[1:])
    if not data.strip():
        raise TableError([f"table: {name} is empty"])
    fmt = (fmt or ("parquet" if data[:4] == _PARQUET_MAGIC else "csv")).lower()
    if fmt not in ("csv", "parquet"):
        raise TableError([f"table: unknown format {fmt!r}; allowed: csv, parquet"])
    try:
        if fmt == "parquet":
            df = pd.read_parquet(io.BytesIO(data))
        else:
            df = pd.read_csv(io.BytesIO(data), sep=None, engine="python") if b"\t" in data[:4096] else (
                pd.read_csv(io.BytesIO(data)))
    except Exception as exc:  # noqa: BLE001 - any parser failure is the same user error
        raise TableError([f"table: {name} is not a readable {fmt} file ({type(exc).__name__}: {exc})"]) from None
    if df.empty:
        raise TableError([f"table: {name} has no rows"])
    return df


def table_hash(df: pd.DataFrame) -> str:
    """A content hash of the table (row order and values), for provenance."""
    h = pd.util.hash_pandas_object(df, index=False).to_numpy()
    digest = hashlib.sha256(h.tobytes())
    digest.update(",".join(map(str, df.columns)).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Prepared:
    """The validated table in canonical columns: group key, width, x = log2 LR, loss, seed, diverged."""

    frame: pd.DataFrame
    group_cols: list[str]
    constant_cols: list[str]
    n_rows: int
    n_diverged: int


def _rows(mask: np.ndarray | pd.Series, limit: int = 5) -> str:
    idx = np.flatnonzero(np.asarray(mask))
    shown = ", ".join(str(int(i)) for i in idx[:limit])
    return f"{idx.size} row(s), e.g. row {shown}" if idx.size > limit else f"row(s) {shown}"


def _numeric(df: pd.DataFrame, col: str, problems: list[str]) -> pd.Series | None:
    s = df[col]
    if s.dtype == bool:
        s = s.astype(float)
    num = pd.to_numeric(s, errors="coerce")
    bad = num.isna() & s.notna()
    if bad.any():
        problems.append(f"{col}: not a number in {_rows(bad)}")
        return None
    return num.astype(float)


def prepare(df: pd.DataFrame, mapping: ColumnMapping | None = None) -> Prepared:
    """Validate ``df`` under ``mapping`` and return the canonical frame; raise TableError listing all problems."""
    m = mapping or ColumnMapping()
    default = ColumnMapping()
    problems: list[str] = []
    if df is None or len(df) == 0:
        raise TableError(["table: no rows"])
    cols = set(map(str, df.columns))
    df = df.rename(columns=str)
    for role, col in (("--size-col", m.size_col), ("--lr-col", m.lr_col), ("--loss-col", m.loss_col)):
        if col not in cols:
            problems.append(f"{col}: missing column (the {role} column); columns are: {', '.join(sorted(cols))}")
    seed_col = m.seed_col if m.seed_col in cols else None
    if m.seed_col and seed_col is None and m.seed_col != default.seed_col:
        problems.append(f"{m.seed_col}: missing column (the --seed-col column)")
    div_col = m.diverged_col if m.diverged_col in cols else None
    if m.diverged_col and div_col is None and m.diverged_col != default.diverged_col:
        problems.append(f"{m.diverged_col}: missing column (the diverged column)")
    if m.group_cols is None:
        group_cols = [c for c in GROUP_COLUMNS if c in cols]
        group_cols += [c for c in EXTRA_GROUP_COLUMNS if c in cols and df[c].nunique(dropna=False) > 1]
    else:
        group_cols = list(dict.fromkeys(m.group_cols))
        for c in group_cols:
            if c not in cols:
                problems.append(f"{c}: missing column (named in --group-cols)")
    if m.constant_cols is None:
        constant_cols = [c for c in df.columns if c.startswith(CONSTANT_PREFIXES) and c not in group_cols
                         and pd.api.types.is_numeric_dtype(df[c]) and df[c].nunique() > 1]
    else:
        constant_cols = list(m.constant_cols)
        for c in constant_cols:
            if c not in cols:
                problems.append(f"{c}: missing column (named as a swept constant)")
    roles = [m.size_col, m.lr_col, m.loss_col]
    for c in group_cols:
        if c in roles:
            problems.append(f"{c}: cannot be both a group column and the size/LR/loss column")
    if problems and any("missing column" in p for p in problems):
        raise TableError(problems)

    width = _numeric(df, m.size_col, problems)
    lr = _numeric(df, m.lr_col, problems)
    loss = _numeric(df, m.loss_col, problems)
    if width is not None:
        if width.isna().any():
            problems.append(f"{m.size_col}: NaN width in {_rows(width.isna())}")
        w = width.fillna(1.0)
        if (w <= 0).any() or np.isinf(w).any():
            problems.append(f"{m.size_col}: non-positive or infinite width in {_rows((w <= 0) | np.isinf(w))}")
        elif (np.abs(w - np.round(w)) > 1e-9 * np.maximum(w, 1)).any():
            problems.append(f"{m.size_col}: widths must be integers, see {_rows(np.abs(w - np.round(w)) > 1e-9)}")
    if lr is not None:
        bad = lr.isna() | ~(lr > 0) | np.isinf(lr)
        if bad.any():
            problems.append(f"{m.lr_col}: learning rates must be positive finite numbers, not in {_rows(bad)}")
    consts: dict[str, pd.Series] = {}
    for c in constant_cols:
        if c in cols:
            v = _numeric(df, c, problems)
            if v is not None:
                bad = v.isna() | ~(v > 0) | np.isinf(v)
                if bad.any():
                    problems.append(f"{c}: swept constants must be positive finite numbers, not in {_rows(bad)}")
                consts[c] = v
    seed = None
    if seed_col is not None:
        seed = _numeric(df, seed_col, problems)
        if seed is not None and seed.isna().any():
            problems.append(f"{seed_col}: missing seed in {_rows(seed.isna())}")
    if problems:
        raise TableError(problems)

    assert width is not None and lr is not None and loss is not None
    diverged = ~np.isfinite(loss.to_numpy())
    if div_col is not None:
        flag = df[div_col]
        if flag.dtype != bool:
            flag = flag.astype(str).str.strip().str.lower().isin(("true", "1", "1.0", "yes", "t"))
        diverged |= flag.to_numpy(dtype=bool)
    if "loss_at_init" in cols and m.loss_col != "loss_at_init":
        init = pd.to_numeric(df["loss_at_init"], errors="coerce").to_numpy(dtype=float)
        # a run that ends above where it started has blown up even when its loss is finite
        diverged |= np.isfinite(init) & np.isfinite(loss.to_numpy()) & (loss.to_numpy() > init)
    if diverged.all():
        raise TableError([
            f"{m.loss_col}: all {len(df)} runs diverged (NaN/inf loss or diverged=True); "
            "nothing to fit: lower the learning-rate grid"
        ])
    out = pd.DataFrame({
        "width": np.round(width.to_numpy()).astype(np.int64),
        "x": np.log2(lr.to_numpy()),
        "loss": np.where(diverged, np.nan, loss.to_numpy()),
        "seed": seed.to_numpy() if seed is not None else np.zeros(len(df)),
        "diverged": diverged,
    })
    for c in group_cols:
        out[f"g:{c}"] = df[c].to_numpy()
    for c, v in consts.items():
        out[f"k:{c}"] = np.log2(v.to_numpy())
    return Prepared(out, group_cols, list(consts), len(df), int(diverged.sum()))
