"""A sweep's output folder: one sweep at a time, committed cell files, and the merged tables.

Layout::

    results.parquet      one row per run (schemas.sweep.SweepRow contract, plus extra columns)
    coord.parquet        per-layer activation RMS, update RMS and alignment A_l at a few steps
    curves.parquet       per-step train loss (when ``spec.curves``)
    cells/<key>.*.parquet  committed parts: some runs (LR, seed) of one cell each; a rerun skips their runs
    spec.json            the spec that produced the tables
    .sweep.lock          held (flock) by the running sweep, with its pid: a second sweep into the folder refuses

Crash safety: a cell's files are written to a temporary name and renamed into place (atomic on POSIX),
rows last, so a killed sweep loses at most the cell in flight. ``results.parquet`` is rewritten the same way
as cells finish, so a killed first run still leaves the finished cells' rows. A committed cell file that no
longer reads (truncated, unreadable) is renamed ``*.damaged``, kept, and its runs recomputed. The temporary
files a killed writer left are deleted by the next sweep (:func:`remove_leftovers`).

Never redo finished work: a run's results depend on its cell (``runner.spec.Cell.base_key``: the config,
width, data and every spec field but the LR grid and seed count), its log2 LR and its seed. Each part's rows
file records its cell id in its parquet metadata, so a rerun with a wider or denser LR grid, more seeds or
more widths trains only the runs no part holds, and the merged tables pick every run from the part holding
it, in the spec's order: the same tables as one sweep of the larger spec. A cell computed whole keeps the
file name ``Cell.key`` (which hashes the grid too), as every part did before cell ids; such older parts are
recognised by that key under the current spec or the previous one (``spec.json``) and tagged on first use; so
are parts tagged when a factory reference or a data path entered the cell id as written (they are retagged).

Training lives in :mod:`abcscale.runner.sweep`; nothing here imports JAX, and pandas and pyarrow load on first
use.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

# pandas and pyarrow (0.3 s to import) load on first use: a sweep's first program then starts compiling
# before them, and they load while it compiles (runner.sweep)
if TYPE_CHECKING:
    import pandas as pd


class SweepBusy(ValueError):
    """Another running sweep holds the output folder (a ValueError: the CLI reports it as one line, exit 2)."""


class SweepWarning(UserWarning):
    """The output folder needed a repair: a damaged cell file moved aside, or a stale lock taken over."""


@dataclass
class CellResult:
    """One cell's tables: what :func:`abcscale.runner.sweep.run_cell` returns and :func:`commit_cell` writes."""

    rows: pd.DataFrame
    coord: pd.DataFrame
    curves: pd.DataFrame
    #: where its runs trained (``runner.train.environment``: JAX's release, the device); '' if not said
    environment: str = ""


# --- committing -------------------------------------------------------------------------------------


def _atomic_parquet(df: pd.DataFrame, path: Path, meta: dict[bytes, bytes] | None = None) -> None:
    """Write ``df`` (as ``DataFrame.to_parquet(index=False)`` would, plus ``meta`` in the schema's key-value
    metadata) to a temporary name, fsync, rename into place."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    table = pa.Table.from_pandas(df, preserve_index=False)
    if meta:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
    pq.write_table(table, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


#: the rows file's schema metadata key naming its cell (``runner.spec.Cell.base_key``)
CELL_META = b"abcscale.cell"
#: ... and the one saying where its runs trained (:attr:`CellResult.environment`)
ENV_META = b"abcscale.environment"


def commit_cell(out_dir: Path, key: str, res: CellResult, cell_id: str | None = None) -> None:
    """Commit one part of a cell: the runs of ``res``, under file name ``key``. ``cell_id`` (recorded in the
    rows file) lets a later sweep with another LR grid or seed count find these runs."""
    cells = out_dir / "cells"
    for kind, df in (("coord", res.coord), ("curves", res.curves)):
        if len(df):
            _atomic_parquet(df, cells / f"{key}.{kind}.parquet")
    meta = {CELL_META: cell_id.encode()} if cell_id else {}
    if res.environment:
        meta[ENV_META] = res.environment.encode()
    _atomic_parquet(res.rows, cells / f"{key}.rows.parquet", meta)  # last: its presence marks the part done


#: an environment label's part naming the options XLA compiles with (``runner.executables.xla_options``, a digest)
OPTIONS_SAID = "XLA options"


def _options(label: str) -> tuple[str, str | None]:
    """(the label less its XLA options, the options' digest or None: a label written before session 75)."""
    base, sep, rest = label.partition(f"; {OPTIONS_SAID} ")
    return base, rest.split(" ", 1)[0] if sep else None


def options_said(label: str) -> str | None:
    """The XLA options' digest (its first 12 hex digits) an environment label says, None where it says none."""
    return _options(label)[1]


def same_environment(a: str, b: str) -> bool:
    """Whether two parts' environment labels (``runner.train.environment``) trained alike: the same JAX, jaxlib and
    device, and the same XLA options where both say them (a label written before session 75 says none, and is taken
    to match: its flags were not recorded)."""
    (base_a, opt_a), (base_b, opt_b) = _options(a), _options(b)
    return base_a == base_b and (opt_a is None or opt_b is None or opt_a == opt_b)


def part_environment(out_dir: Path, key: str) -> str:
    """Where a committed part's runs trained (:attr:`CellResult.environment`), '' where not recorded (a part
    written before session 74) or unreadable."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(out_dir / "cells" / f"{key}.rows.parquet").metadata or {}
    except (OSError, ValueError, pa.ArrowException):
        return ""
    return meta.get(ENV_META, b"").decode(errors="replace")


def part_cells(out_dir: Path) -> dict[str, str | None]:
    """Every committed part's key -> its cell id; None for a part written before cell ids were recorded
    (or whose footer no longer reads: :func:`committed_rows` deals with it when a cell claims it)."""
    out: dict[str, str | None] = {}
    if not (paths := sorted((out_dir / "cells").glob("*.rows.parquet"))):
        return out  # a fresh folder: no pyarrow to load yet
    import pyarrow as pa
    import pyarrow.parquet as pq

    for path in paths:
        try:
            meta = pq.read_schema(path).metadata or {}
        except (OSError, ValueError, pa.ArrowException):
            meta = {}
        out[path.name.removesuffix(".rows.parquet")] = meta.get(CELL_META, b"").decode() or None
    return out


def tag_part(out_dir: Path, key: str, cell_id: str, rows: pd.DataFrame) -> None:
    """Record the cell id in a part written before cell ids (a rewrite of its rows, atomic), so that sweeps
    after the one that recognised it still find it. Where its runs trained stays said."""
    meta = {CELL_META: cell_id.encode()}
    if env := part_environment(out_dir, key):
        meta[ENV_META] = env.encode()
    _atomic_parquet(rows, out_dir / "cells" / f"{key}.rows.parquet", meta)


Run = tuple[float, int]  # (log2 LR, seed), as runner.spec.Run


def pick(frames: dict[str, pd.DataFrame], source: dict[Run, str], runs: list[Run], by: str = "log2_lr"
         ) -> pd.DataFrame:
    """The rows of ``runs``, in that order, each run's taken from the part ``source`` names. ``by`` is the
    column holding the LR: ``log2_lr`` (rows) or ``beta`` = 2^log2_lr (coord, curves). A run's rows keep the
    order they have in their part, so a cell assembled from parts reads as one computed whole."""
    import pandas as pd

    index = {(2.0 ** g if by == "beta" else g, s): i for i, (g, s) in enumerate(runs)}
    chosen = []
    for key, df in frames.items():
        at = np.asarray([index.get((float(x), int(s)), -1) for x, s in zip(df[by], df["seed"], strict=True)],
                        dtype=np.int64)
        keep = np.asarray([i >= 0 and source.get(runs[i]) == key for i in at], dtype=bool)
        if keep.any():
            chosen.append(df[keep].assign(_run=at[keep]))
    if not chosen:
        return pd.DataFrame()
    out = pd.concat(chosen, ignore_index=True) if len(chosen) > 1 else chosen[0]
    if by == "log2_lr":  # one row per run: a part written by an older sweep may hold a repeated LR twice
        out = out.drop_duplicates("_run", keep="first")
    return out.sort_values("_run", kind="stable").drop(columns="_run").reset_index(drop=True)


KINDS = ("rows", "coord", "curves")
MERGED = {"rows": "results.parquet", "coord": "coord.parquet", "curves": "curves.parquet"}


def committed_rows(out_dir: Path, key: str) -> pd.DataFrame | None:
    """A committed cell's rows, or None when the cell has to run: not committed, or one of its files no
    longer reads. Such a file is renamed ``*.damaged`` (kept for inspection, never deleted) with a warning
    naming it; the cell's intact files are overwritten when it is recomputed."""
    import pandas as pd
    import pyarrow as pa

    if not (out_dir / "cells" / f"{key}.rows.parquet").exists():
        return None
    rows, damaged = None, False
    for kind in KINDS:
        path = out_dir / "cells" / f"{key}.{kind}.parquet"
        if not path.exists():
            continue
        try:
            frame = pd.read_parquet(path)  # a whole read: a truncated file fails at its footer, others later
        except (OSError, ValueError, pa.ArrowException) as exc:
            damaged, aside = True, _move_aside(path)
            reason = " ".join(str(exc).split())[:200]
            warnings.warn(f"{path}: damaged cell file ({type(exc).__name__}: {reason}); moved aside to "
                          f"{aside.name}, its cell is recomputed", SweepWarning, stacklevel=4)
            continue
        rows = frame if kind == "rows" else rows
    return None if damaged else rows


def _move_aside(path: Path) -> Path:
    """Rename ``path`` to ``path.damaged`` (``.damaged.1``, ... when taken): never over an earlier one."""
    aside, n = path.with_name(path.name + ".damaged"), 0
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.damaged.{n}")
    os.replace(path, aside)
    return aside


class Results:
    """``results.parquet`` rewritten atomically as cells finish: the rows of the committed cells in the spec's
    cell order, so a killed sweep leaves a readable partial table and the last one is the full table.

    A rewrite is the whole table, fsync included: 50 ms for 1,000 rows and 90 ms for 10,000 on 2 CPU cores,
    against seconds or more per cell. After a rewrite that took t, the next waits until 20 t has passed, which
    keeps rewriting under ~5% of the sweep's time on any size; the table then lags the committed cells by at
    most that wait (the cell files stay the record, and the end of the sweep writes the whole table)."""

    def __init__(self, out_dir: Path, keys: list[str], done: dict[str, pd.DataFrame]) -> None:
        self.path, self.keys, self.done = out_dir / MERGED["rows"], keys, done
        self.next_at = 0.0

    def add(self, key: str, rows: pd.DataFrame) -> None:
        self.done[key] = rows
        start = time.monotonic()
        if start >= self.next_at:
            _atomic_parquet(self.table(), self.path)
            self.next_at = start + 20 * (time.monotonic() - start)

    def table(self) -> pd.DataFrame:
        import pandas as pd

        parts = [self.done[k] for k in self.keys if k in self.done]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


@dataclass(frozen=True)
class CellParts:
    """Where one cell's runs come from: the runs the spec asks for, in row order, and the part holding each."""

    cell_id: str
    runs: list[Run]
    source: dict[Run, str]
    #: the cell's own columns for its coord and curves rows beside the run's (the optimizer variant and gamma,
    #: which parts do not hold): written at the merge, so parts of any age give the same tables
    ident: dict[str, Any] = field(default_factory=dict)


def merge(out_dir: Path, cells: list[CellParts], results: Results, kinds: tuple[str, ...] = ("coord", "curves")
          ) -> pd.DataFrame:
    """Write the merged tables: rows from ``results`` (what was read or committed), coord and curves from
    the part files, each in the spec's cell order and each cell's run order. A kind not in ``kinds`` (the spec
    records none: curves off, no coord steps) is no table of this sweep's, whatever older parts hold."""
    import pandas as pd

    for kind in ("coord", "curves"):
        if kind not in kinds:
            # a rerun with --curves off listed the curves of the runs done before beside none of the new ones (a
            # partial table, silently), where one sweep of the spec writes no curves.parquet; the parts keep them
            (out_dir / MERGED[kind]).unlink(missing_ok=True)
            continue
        parts = []
        for c in cells:
            paths = {k: out_dir / "cells" / f"{k}.{kind}.parquet" for k in dict.fromkeys(c.source.values())}
            frames = {k: pd.read_parquet(p) for k, p in paths.items() if p.exists()}
            if frames and len(df := pick(frames, c.source, c.runs, by="beta")):
                # after the run's own identity (seed): `-o adam,adam_atan2` or swept gammas gave rows no column
                # told apart (a review)
                df = df.drop(columns=[name for name in c.ident if name in df])
                at = list(df.columns).index("seed") + 1 if "seed" in df else len(df.columns)
                for i, (name, value) in enumerate(c.ident.items()):
                    df.insert(at + i, name, value)
                parts.append(df)
        if parts:
            _atomic_parquet(pd.concat(parts, ignore_index=True), out_dir / MERGED[kind])
        else:  # none of this spec's runs has one: a table left by another spec would sit beside its results
            (out_dir / MERGED[kind]).unlink(missing_ok=True)
    rows = results.table()
    if len(rows):
        _atomic_parquet(rows, results.path)
    return rows


# --- one sweep per folder -----------------------------------------------------------------------------


#: a temporary file of :func:`_atomic_parquet` or the spec's (``.NAME.PID.tmp``): what a killed writer leaves
_LEFTOVER = re.compile(r"\.(?:.+\.parquet|spec\.json)\.\d+\.tmp")


def remove_leftovers(out_dir: Path) -> None:
    """Delete the temporary files a killed sweep left half-written (``kill -9`` between a write and its rename):
    never read, they stayed in the folder for good (a review). Call it holding the folder's lock: the holder is
    the only writer, so every such file is a dead process's."""
    for folder in (out_dir, out_dir / "cells"):
        for path in folder.glob(".*.tmp"):
            if _LEFTOVER.fullmatch(path.name):
                path.unlink(missing_ok=True)


def refuse_foreign(out: Path, name: str = "out_dir") -> None:
    """A folder holding files by a sweep's names (results.parquet, ...) that no sweep wrote is refused: a sweep
    replaced or deleted them (a user's curves.parquet went, a review). A sweep's folder has its ``cells/`` or its
    lock file, or its spec.json (written before any table): one from an older abcscale that no longer validates
    still reads as a JSON object of a spec's keys. ``name`` is the argument or flag the message names."""
    import json

    names = [n for n in ("results.parquet", "coord.parquet", "curves.parquet", "spec.json") if (out / n).exists()]
    if not names or (out / "cells").is_dir() or (out / ".sweep.lock").exists():
        return
    try:
        ours = {"widths", "log2_lr", "model"} <= set(json.loads((out / "spec.json").read_text()))
    except (OSError, ValueError, TypeError):
        ours = False
    if not ours:
        raise ValueError(f"{name}: {out} holds {', '.join(names)} that no sweep wrote (no sweep's spec.json or "
                         "cells beside them), which a sweep would replace; give another folder, or an empty one")


@contextlib.contextmanager
def folder_lock(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir/.sweep.lock`` for the sweep: an flock, with the holder's pid written inside.

    The kernel drops an flock when its process dies, so a lock file that still names a pid nobody holds it
    for is stale (a killed sweep): it is taken over with a warning. The file is never removed (removing a
    locked file lets a third sweep lock a new one beside it); a clean exit empties it. Local file systems
    only: flock over NFS is not reliable.
    """
    path = out_dir / ".sweep.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise SweepBusy(f"sweep folder {out_dir} is in use by another sweep (pid {holder}); wait for it to "
                            f"finish or write to another folder") from None
        if stale := os.pread(fd, 32, 0).decode(errors="replace").strip():
            warnings.warn(f"{path}: taking over the lock of sweep pid {stale}, which ended without releasing it",
                          SweepWarning, stacklevel=4)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock


__all__ = ["CELL_META", "CellParts", "CellResult", "SweepBusy", "SweepWarning", "KINDS", "MERGED", "commit_cell",
           "committed_rows", "Results", "merge", "folder_lock", "part_cells", "pick", "remove_leftovers",
           "tag_part"]
