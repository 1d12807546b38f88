"""Reading a sweep table from a file or raw bytes (CSV or parquet), under row and cell caps.

A small compressed upload can decode to millions of rows, so the caps are checked before the data is
decoded where the format allows it (parquet's footer) and bound how far a CSV is read; over a cap is a
:class:`TableTooLarge` naming it. Checking the table against the column mapping is
:mod:`abcscale.fitting.table`'s.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from abcscale.fitting.table import TableError, scalar_cells

_PARQUET_MAGIC = b"PAR1"
#: what a file of another format starts with, so that it is named, not parsed as CSV into nonsense
_NOT_TABLES = ((b"PK\x03\x04", "a zip archive (an .xlsx workbook?): export the sheet as CSV"),
               (b"\x1f\x8b", "a gzip-compressed file: decompress it first"),
               (b"\xff\xfe", "UTF-16 text"), (b"\xfe\xff", "UTF-16 text"))


def _utf16_without_bom(head: bytes) -> str | None:
    """"UTF-16LE" / "UTF-16BE" where ``head`` reads as ASCII-range text in UTF-16 with no byte-order mark: every
    other byte NUL, the rest not (a review: such a CSV, from PowerShell or a Windows tool, was "a binary file")."""
    head = head[: len(head) // 2 * 2]
    if len(head) < 8:
        return None
    for name, text, zeros in (("UTF-16LE", head[0::2], head[1::2]), ("UTF-16BE", head[1::2], head[0::2])):
        # and the other bytes text: printable ASCII with a line break (an int16 array dump has the NULs too)
        printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in text)
        if zeros.count(0) >= 0.95 * len(zeros) and text.count(0) == 0 and printable >= 0.95 * len(text) \
                and b"\n" in text:
            return name
    return None


def _json_lines(data: bytes) -> bool:
    """Whether ``data`` is JSON lines (one JSON object per line), not one JSON document: its first line is a whole
    object and another line follows it."""
    text = data.removeprefix(b"\xef\xbb\xbf")[:1 << 20].decode("utf-8", "replace")
    lines = [ln.strip() for ln in text.splitlines()[:3] if ln.strip()]
    if len(lines) < 2 or not lines[0].startswith("{"):
        return False
    try:
        return isinstance(json.loads(lines[0]), dict)
    except ValueError:
        return False


class TableTooLarge(TableError):
    """The decoded table is over a row or cell cap (a small compressed upload can decode to millions of rows);
    ``cap`` names the one exceeded: ``max_rows`` or ``max_cells``."""

    def __init__(self, problem: str, cap: str):
        self.cap = cap
        super().__init__([problem])


def check_size(n_rows: int, n_cells: int, max_rows: int | None, max_cells: int | None) -> None:
    """Raise TableTooLarge naming the cap when a table holds more than ``max_rows`` rows or ``max_cells`` cells."""
    if max_rows is not None and n_rows > max_rows:
        raise TableTooLarge(f"table: more than {max_rows} rows (the max_rows cap)", "max_rows")
    if max_cells is not None and n_cells > max_cells:
        raise TableTooLarge(f"table: more than {max_cells} cells (the max_cells cap)", "max_cells")


#: file suffix -> table format
_SUFFIX_FORMATS = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def table_format(name: str | Path) -> str | None:
    """The format a file name's suffix says (``csv`` or ``parquet``), or None (then the bytes are sniffed)."""
    return _SUFFIX_FORMATS.get(Path(name).suffix.lower())


#: what messages call a table read from standard input (``abcscale fit -``)
STDIN = "standard input"
#: most bytes a table is read from a stream (standard input, a pipe, a device): a regular file is read whole (its
#: size is known, and the user's), a stream's is not, and ``/dev/zero`` never ends (read whole, it ran the machine out
#: of memory, or the system killed the process without a word). A sweep table is far smaller: 1 GiB of CSV is
#: millions of runs
STREAM_MAX_BYTES = 2**30


def read_stream(stream: Any, name: str) -> bytes:
    """A binary stream's bytes, at most :data:`STREAM_MAX_BYTES` (more is a :class:`TableError` naming ``name``)."""
    chunks, size = [], 0
    while size <= STREAM_MAX_BYTES and (chunk := stream.read(min(1 << 20, STREAM_MAX_BYTES + 1 - size))):
        chunks.append(chunk)  # a block at a time: read(cap) reserved the whole cap for a 2 KB table (a review)
        size += len(chunk)
    data = b"".join(chunks)
    if len(data) > STREAM_MAX_BYTES:
        raise TableError([f"table: {name} holds more than {STREAM_MAX_BYTES / 2**20:g} MiB, more than a sweep table "
                          "read from a stream is; save the table to a file and give its path"])
    return bytes(data)


def read_table(source: str | Path | bytes, fmt: str | None = None, *, max_rows: int | None = None,
               max_cells: int | None = None, name: str | None = None) -> pd.DataFrame:
    """Read a CSV or parquet table from a path or raw bytes (format from ``fmt``, the suffix, or sniffed); a
    sweep's folder (``abcscale sweep --out DIR``) reads its ``results.parquet``.

    ``max_rows``/``max_cells`` bound what is decoded: parquet is checked from its metadata before any data is
    read, CSV is read no further than one row past the cap; over a cap is a :class:`TableTooLarge`. ``name``
    is what messages call raw bytes (an upload's file name).
    """
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
        name = STDIN if name == STDIN else f"the upload {name[:100]!r}" if name else "the upload"
    else:
        path = Path(source)
        if path.is_dir() and (path / "results.parquet").is_file():  # a sweep's --out folder: its table
            path = path / "results.parquet"
        elif path.is_dir():
            raise TableError([f"table: {path} is a folder; give a CSV or parquet file, or a sweep's folder "
                              "(one that holds results.parquet)"])
        name = str(path)
        try:
            if path.is_file() or not path.exists():
                data = path.read_bytes()
            else:  # a pipe, a device (/dev/stdin, /dev/zero, a process substitution): no size to trust
                with path.open("rb") as stream:
                    data = read_stream(stream, name)
        except FileNotFoundError:
            raise TableError([f"table: no such file {name}"]) from None
        except (IsADirectoryError, PermissionError) as exc:
            raise TableError([f"table: cannot read {name} ({exc.strerror or exc})"]) from None
        fmt = fmt or table_format(path)
    if not data.strip():
        raise TableError([f"table: {name} is empty"])
    for magic, what in _NOT_TABLES:
        if data.startswith(magic):
            raise TableError([f"table: {name} looks like {what}; give a CSV (UTF-8) or a parquet file"])
    if fmt != "parquet" and data.removeprefix(b"\xef\xbb\xbf").lstrip()[:1] in (b"[", b"{"):
        # read as CSV, a JSON file's first line became dozens of "duplicated column" errors; a JSON-lines file
        # (Hydra's multirun, Optuna's logs) needs lines=True, without which pandas fails on it (a review)
        lines = _json_lines(data)
        kind, how = ("JSON lines", "pd.read_json(path, lines=True)") if lines else ("JSON", "pd.read_json(path)")
        raise TableError([f"table: {name} looks like {kind}; give a CSV (UTF-8) or a parquet file (pandas: "
                          f"{how}.to_csv(...), pd.json_normalize for nested keys), or POST its rows to the "
                          "service's /v1/fits"])
    # parquet's magic decides over the name: a parquet file saved as .csv read as CSV gave a pandas message
    fmt = ("parquet" if data[:4] == _PARQUET_MAGIC else (fmt or "csv")).lower()
    if fmt not in ("csv", "parquet"):
        raise TableError([f"table: unknown format {fmt!r}; allowed: csv, parquet"])
    if fmt == "csv" and (utf16 := _utf16_without_bom(data[:4096])):
        raise TableError([f"table: {name} looks like {utf16} text without a byte-order mark; give a CSV (UTF-8) or "
                          f"a parquet file (save it as UTF-8: Excel's \"CSV UTF-8\", or `iconv -f {utf16} -t UTF-8`)"])
    if fmt == "csv" and b"\x00" in data[:65536]:
        # no text file holds a NUL byte: read as CSV, a binary file became one garbled column ("no rows" or a
        # parser's message about new lines, a review)
        raise TableError([f"table: {name} is a binary file, not CSV text; give a CSV (UTF-8) or a parquet file"])
    try:
        if fmt == "parquet":
            df = _read_parquet(data, max_rows, max_cells)
        else:
            df = _read_csv(data, max_rows, max_cells)
    except TableError:
        raise
    except UnicodeDecodeError as exc:  # a spreadsheet's own encoding (Excel's "CSV" is cp1252 on Windows)
        raise TableError([f"table: {name} is not UTF-8 text (it holds byte 0x{exc.object[exc.start]:02x}): save it "
                          "as UTF-8 (Excel: \"CSV UTF-8\")"]) from None
    except Exception as exc:  # noqa: BLE001 - any parser failure is the same user error
        # the parser's words without its class name (ArrowInvalid, ParserError) and on one line (thrift's ended in
        # a newline), cut where a C parser goes on
        why = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in " ".join(str(exc).split())[:300])
        why = why or "the parser gave no reason"
        raise TableError([f"table: {name} is not a readable {fmt} file ({why})"]) from None
    if df.empty:
        raise TableError([f"table: {name} has no rows"])
    check_size(len(df), df.size, max_rows, max_cells)
    return scalar_cells(df)


def _read_parquet(data: bytes, max_rows: int | None, max_cells: int | None) -> pd.DataFrame:
    import pyarrow.parquet as pq

    file = pq.ParquetFile(io.BytesIO(data))
    meta = file.metadata
    _check_columns(meta.num_columns)
    # a name twice among the columns: said as a CSV's header is (Arrow's "Multiple matches for FieldRef" and its
    # schema were the message, a review)
    if dups := sorted(c for c, n in Counter(file.schema_arrow.names).items() if n > 1):
        raise TableError([f"{c}: duplicated column in the table" for c in dups])
    # Leaf values, so a list column that expands counts too; all from the footer, nothing decompressed yet.
    values = sum(meta.row_group(g).column(c).num_values
                 for g in range(meta.num_row_groups) for c in range(meta.num_columns))
    check_size(meta.num_rows, max(values, meta.num_rows * meta.num_columns), max_rows, max_cells)
    return index_columns(pd.read_parquet(io.BytesIO(data)))


def index_columns(df: pd.DataFrame) -> pd.DataFrame:
    """A parquet pandas wrote restores its index: the named levels (``groupby(["width", "beta"]).mean()``'s
    setup) are columns of the table, as its CSV writes them; a level named like a column (``set_index("width",
    drop=False)``) is that column once; an unnamed one (a filtered frame's row labels) no data. Row numbers in
    messages are positions either way. (A review: such a parquet was "width: missing column".)"""
    if df.index.equals(pd.RangeIndex(len(df))) and df.index.names == [None]:
        return df
    names = [str(n) if n is not None else None for n in df.index.names]
    keep = [i for i, n in enumerate(names) if n is not None and n not in {str(c) for c in df.columns}
            and names.index(n) == i]  # a name twice among the levels: its first
    out = df.reset_index(level=keep, drop=False) if keep else df
    # reset_index(level=...) keeps the other levels as the index: they are no data
    return out.reset_index(drop=True)


def _read_csv(data: bytes, max_rows: int | None, max_cells: int | None) -> pd.DataFrame:
    # a UTF-8 byte-order mark (Excel's "CSV UTF-8"): pandas' python engine, which reads ; and tab files, keeps
    # it in the first column's name, which then matches no column and its runs are pooled
    data = data.removeprefix(b"\xef\xbb\xbf")
    first = next((ln for ln in io.BytesIO(data[:65536]) if ln.strip()), b"")
    # tabs anywhere near the top: sniff the separator; otherwise `;` or `,`, by the top lines (_semicolons)
    tabbed = b"\t" in data[:4096]
    semi = not tabbed and _semicolons(data, first)
    header = _csv_header(data, tabbed, ";" if semi else ",")
    _check_columns(len(header))
    if dups := sorted(c for c, n in Counter(header).items() if n > 1 and c.strip()):
        # pandas would rename the second one (beta.1) and the fit would silently use the first
        raise TableError([f"{c}: duplicated column in the header" for c in dups])
    caps = [c for c in (max_rows, max_cells // max(len(header), 1) if max_cells is not None else None)
            if c is not None]
    nrows = min(caps) + 1 if caps else None  # one row past the cap is enough to know it is over
    args: dict[str, Any] = {"sep": None, "engine": "python"} if tabbed else {"sep": ";" if semi else ","}
    df = pd.read_csv(io.BytesIO(data), nrows=nrows, **args)
    if not df.index.equals(pd.RangeIndex(len(df))):  # (widths 128, 256 make a RangeIndex too, from 128 by 128)
        # rows with one field more than the header: pandas takes the first as the index and shifts the rest (the
        # LRs read as widths). A trailing separator on every row (`128,0.001,0,3.0,`) is read without it; a value
        # there is an error, not a column dropped
        if not df.iloc[:, -1].isna().all():
            raise TableError([_preamble(first, sep=";" if semi else ",") or
                              f"table: its rows have one field more than the header ({len(header)} names): name "
                              "every column in the header"])
        df = pd.read_csv(io.BytesIO(data), nrows=nrows, index_col=False, **args)
    df = _none_alignments(df, data, nrows, args)
    df = _labels_kept(df, data, nrows, args)
    # a spreadsheet's trailing separators (`width,lr,loss,,`): columns without a name or a value, not data
    empty = [c for c, name in zip(df.columns, header, strict=False) if not name.strip() and df[c].isna().all()]
    df = df.drop(columns=empty) if empty else df
    # and its trailing rows of separators only (`,,,`): the other rows keep their numbers
    filled = np.flatnonzero(df.notna().any(axis=1).to_numpy())
    return df.iloc[: filled[-1] + 1] if filled.size and filled[-1] + 1 < len(df) else df


#: a number written with a leading zero (007, -01): a label's text, which a number's reading would lose
_LEADING_ZERO = re.compile(r"[+-]?0\d")
#: a field of a CSV's bytes that starts so (the cheap test before any column is read again)
_LEADING_ZERO_FIELD = re.compile(rb"(?:^|[,;\t])[ \"]*[+-]?0\d", re.MULTILINE)


def _labels_kept(df: pd.DataFrame, data: bytes, nrows: int | None, args: dict[str, Any]) -> pd.DataFrame:
    """A number column whose cells are labels, kept as their text: pandas reads `007` and `7` (a tag, a run id) as
    one number, so two groups became one, its runs averaged as seeds, with no more than a note of repeated runs (a
    review: a fit's own `rows.csv` refitted). Only where a label is written with a leading zero and two different
    texts read as one number; an LR written `0.001` and `1e-3` stays a number."""
    numeric = [c for c in df.columns if isinstance(c, str) and pd.api.types.is_numeric_dtype(df[c])
               and not pd.api.types.is_bool_dtype(df[c])]
    if not numeric or not _LEADING_ZERO_FIELD.search(data):
        return df
    raw = pd.read_csv(io.BytesIO(data), nrows=nrows, usecols=numeric, dtype=str, keep_default_na=False,
                      index_col=False, **args)
    kept = {}
    for name in numeric:
        texts = raw[name].str.strip()
        if not texts.str.match(_LEADING_ZERO).any():
            continue
        given = texts[texts != ""]
        if given.nunique() > df[name].dropna().nunique():
            kept[name] = texts.where(texts != "", None).to_numpy(dtype=object)
    return df.assign(**kept) if kept else df


def _none_alignments(df: pd.DataFrame, data: bytes, nrows: int | None, args: dict[str, Any]) -> pd.DataFrame:
    """An ``alignment`` column's cells that say ``None`` (any case), read as the alignment "none": pandas reads the
    word as a missing value, which the fit takes as full alignment, the default, so a CSV's and a parquet's beta of
    the same runs differed 5.7x (a review). Only that column, whose values are words: elsewhere "None" stays missing."""
    names = [c for c in df.columns if isinstance(c, str) and c.strip().lower() == "alignment" and df[c].isna().any()]
    if not names:
        return df
    raw = pd.read_csv(io.BytesIO(data), nrows=nrows, usecols=names, dtype=str, keep_default_na=False,
                      index_col=False, **args)
    df = df.copy()
    for name in names:
        said = raw[name].str.strip().str.lower().eq("none").to_numpy() & df[name].isna().to_numpy()
        if said.any():
            df[name] = df[name].astype(object).where(~said, "none")
    return df


#: how many records at the top of a CSV tell its separator (:func:`_semicolons`)
_SNIFF_RECORDS = 50


def _semicolons(data: bytes, first: bytes) -> bool:
    """Whether a CSV (not tab-separated) is `;`-separated, a European export's. The separator that splits the top
    records into as many fields as the header's (a trailing separator allowed) decides: a header's commas may all sit
    inside its names (`loss (train, final, nats)`, a review: split on them, every column was missing) and a row's
    inside its decimal numbers (`0,001`). Where both or neither do, a header of more semicolons than commas outside
    brackets (`tags (a,b)`) is `;`-separated."""
    text = data[:65536].decode("utf-8", "replace")
    if len(data) > 65536:  # a record cut by the sample would count short
        text = text[: text.rfind("\n") + 1]
    lines = [ln for ln in text.splitlines() if ln.strip()][:_SNIFF_RECORDS]
    consistent = []
    for sep in (";", ","):
        try:
            counts = [len(r) for r in csv.reader(lines, delimiter=sep)]
        except csv.Error:
            continue
        if len(counts) >= 2 and counts[0] > 1 and all(n in (counts[0], counts[0] + 1) for n in counts[1:]):
            consistent.append(sep)
    if len(consistent) == 1:
        return consistent[0] == ";"
    header = first.decode("utf-8", "replace")
    outside = re.sub(r"\([^()]*\)|\[[^\[\]]*\]|\{[^{}]*\}|\"[^\"]*\"", "", header)  # bracketed or quoted
    return outside.count(";") > outside.count(",")


def _preamble(first: bytes, sep: str) -> str | None:
    """The problem of a first line that is no header: Excel's ``sep=,`` or a comment (``# exported from ...``),
    whose few names pandas took for the header (a review: "one field more than the header (2 names)")."""
    line = first.decode("utf-8", "replace").strip()
    if line.lower().startswith("sep=") or line.startswith(("#", "//")):
        return (f"table: its first line ({line[:60]!r}) is no header: delete it (or any lines before the header), "
                f"so the header's names come first, separated by {sep!r}")
    return None


#: The most columns a sweep table may have. Real ones have tens (settings, metrics); pandas parses a CSV of
#: 200,000 columns under the cell cap for minutes, so a header that wide is refused before any row is read.
MAX_COLUMNS = 10_000


def _check_columns(n: int) -> None:
    if n > MAX_COLUMNS:
        raise TableError([f"table: {n} columns; a sweep table may have at most {MAX_COLUMNS}"])


def _csv_header(data: bytes, tabbed: bool, sep: str = ",") -> list[str]:
    """The header's column names as written (pandas would mangle a repeated name into ``name.1``)."""
    line = next((ln for ln in io.BytesIO(data) if ln.strip()), b"").decode("utf-8", "replace").rstrip("\r\n")
    if tabbed:  # pandas sniffs the separator here (sep=None); so does this
        try:
            sep = csv.Sniffer().sniff(line).delimiter
        except csv.Error:
            sep = "\t" if "\t" in line else ","
    return next(csv.reader([line], delimiter=sep), [])


__all__ = ["read_table", "table_format", "TableTooLarge", "check_size", "index_columns"]
