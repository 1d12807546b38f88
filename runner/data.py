"""Offline byte-level language-modelling data: vocab 256, a train split and a held-out eval split.

Sources: ``default`` (this Python's own standard-library sources, read in sorted order, so any machine
with Python has it), ``synthetic`` (a deterministic order-2 Markov chain, for tests), a text file or a
directory of text files, or a pre-tokenised ``.npy`` array of ints in [0, 256).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import math
import os
import sysconfig
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from abcscale.runner import usercode

VOCAB = 256


@dataclass(frozen=True)
class Corpus:
    train: np.ndarray  # uint8 [N_train]
    eval: np.ndarray  # uint8 [N_eval]
    source: str
    sha256: str  # of the tokens used, so a results table names its data exactly


def _read_at_most(path: Path, n: int, block: int = 1 << 20) -> bytes:
    """At most ``n`` bytes of a file, read a block at a time: ``f.read(n)`` reserves all ``n`` at once, and a
    large ``--max-bytes`` over a small file was "out of memory" (a review, session 71)."""
    chunks, left = [], n
    with path.open("rb") as f:
        while left > 0 and (chunk := f.read(min(block, left))):
            chunks.append(chunk)
            left -= len(chunk)
    return b"".join(chunks)


def _read_files(paths: Iterable[Path], max_bytes: int) -> bytes:
    chunks, total = [], 0
    for p in paths:
        try:  # no more than is used: a large file is not read whole, and a device (/dev/zero) ends
            b = _read_at_most(p, max_bytes - total)
        except OSError:
            continue
        chunks.append(b)
        total += len(b)
        if total >= max_bytes:
            break
    return b"".join(chunks)[:max_bytes]


def _sorted_walk(root: Path, suffix: str | None = None):
    """Files under ``root`` in sorted depth-first order, lazily, so a capped read stops early."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in ("site-packages", "__pycache__"))
        for name in sorted(filenames):
            if suffix is None or name.endswith(suffix):
                yield Path(dirpath) / name


def stdlib_bytes(max_bytes: int) -> bytes:
    return _read_files(_sorted_walk(Path(sysconfig.get_paths()["stdlib"]), ".py"), max_bytes)


def synthetic_tokens(n: int, seed: int = 0) -> np.ndarray:
    """An order-2 Markov chain over 64 symbols with sparse, peaked transitions: learnable, not trivial."""
    rng = np.random.default_rng(seed)
    k = 64
    logits = rng.normal(size=(k, k, k)) * 3.0
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    cdf = np.cumsum(probs / probs.sum(-1, keepdims=True), -1)
    u = rng.random(n)
    out = np.empty(n, dtype=np.uint8)
    a, b = 0, 1
    for i in range(n):
        c = min(int(np.searchsorted(cdf[a, b], u[i])), k - 1)
        out[i] = c
        a, b = b, c
    return out


def _tokens(source: str, max_bytes: int) -> np.ndarray:
    if source == "default":
        return np.frombuffer(stdlib_bytes(max_bytes), dtype=np.uint8)
    if source == "synthetic":
        return synthetic_tokens(min(max_bytes, 100_000))
    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"data: no such file or directory: {source}")
    if path.suffix == ".npy" and not path.is_dir():
        try:
            arr = np.load(path)  # allow_pickle stays off: a pickled file is refused, never executed
        except (OSError, ValueError, EOFError) as exc:
            raise ValueError(f"data: {source} is not a readable .npy array ({type(exc).__name__})") from None
        if (arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer) or arr.size == 0 or arr.min() < 0
                or arr.max() >= VOCAB):
            raise ValueError(f"data: {source} must be a 1-D integer array with values in [0, {VOCAB})")
        return arr.astype(np.uint8)
    if path.is_dir():
        return np.frombuffer(_read_files(_sorted_walk(path), max_bytes),
                             dtype=np.uint8)
    return np.frombuffer(_read_files([path], max_bytes), dtype=np.uint8)


def load_corpus(source: str = "default", max_bytes: int = 4_000_000, eval_fraction: float = 0.1,
                min_tokens: int = 0) -> Corpus:
    """Tokens split into train (head) and eval (tail); cached per process and per the files' state: a file edited
    or replaced since (a notebook's second ``abcscale.sweep`` after regenerating its data), one added to or removed
    from a data folder (at any depth), or a relative path from another working directory, is read again (the cache
    on ``source`` alone returned the first read's tokens and hash). The arrays are read-only: every sweep of the
    process shares them."""
    key = (source, max_bytes, usercode.cwd())
    stamps = _HELD.get()
    if stamps is None:
        return _load_corpus(source, _stamp(source, max_bytes), max_bytes, eval_fraction, min_tokens)
    if key not in stamps:
        stamps[key] = _stamp(source, max_bytes)
    return _load_corpus(source, stamps[key], max_bytes, eval_fraction, min_tokens)


#: within :func:`held`: (source, max_bytes, working directory) -> its stamp, read once. A context variable, so each
#: thread's sweep holds its own: one dict for the whole process let a sweep started in a second thread read the
#: first one's stamps (and tokens) of a file edited in between, and lose its hold when the first sweep ended
_HELD: contextvars.ContextVar[dict[tuple[str, int, str], Any] | None] = contextvars.ContextVar("abcscale_data_held",
                                                                                               default=None)


@contextlib.contextmanager
def held() -> Iterator[None]:
    """A sweep's span: each source's stamp is read once, as it starts, not at every cell's ``spec.corpus()`` (a
    folder of 30,000 small files took 0.25 s a stamp, 5 of an 18-cell sweep's 8 s, a review). Per thread (a
    context variable); a hold inside a hold is the outer one."""
    if _HELD.get() is not None:
        yield
        return
    token = _HELD.set({})
    try:
        yield
    finally:
        _HELD.reset(token)


def _stamp(source: str, max_bytes: int) -> tuple[Any, ...] | None:
    """Where ``source`` resolves and the modification time and size of what a read of ``max_bytes`` takes from it:
    the file, or a folder's files in the order they are read, up to the one that reaches ``max_bytes`` (a folder's
    own time and size said nothing of a file edited in place or added below its top, a review); None for the
    built-in sources, or where it cannot be read (``_tokens`` says why)."""
    if source in ("default", "synthetic"):
        return None
    try:
        path = Path(source).expanduser().resolve()
        st = path.stat()
    except (OSError, RuntimeError):
        return None
    if not path.is_dir():
        return str(path), st.st_mtime_ns, st.st_size
    files: list[tuple[str, int | None, int | None]] = []
    total = 0
    for file in _sorted_walk(path):
        try:
            fst = file.stat()
        except OSError:
            files.append((str(file), None, None))
            continue
        files.append((str(file), fst.st_mtime_ns, fst.st_size))
        total += fst.st_size
        if total >= max_bytes:
            break
    return str(path), tuple(files)


def _fractions(n: int, least: int) -> tuple[float, float]:
    """The held-out fractions, in three digits, that leave both splits of ``n`` tokens at least ``least``
    (``_load_corpus`` holds out ``int(n * fraction)``): the low end rounded up, the high end down, each checked
    as the split computes it (0.00066 of 99,999 tokens holds out 65)."""
    def three_digits(x: float, up: bool) -> tuple[float, float]:
        q = 10.0 ** (math.floor(math.log10(x)) - 2)
        return float(f"{(math.ceil(x / q) if up else math.floor(x / q)) * q:.3g}"), q

    low, q = three_digits(least / n, up=True)
    while int(n * low) < least:
        low = float(f"{low + q:.3g}")
    high, q = three_digits((n - least + 1) / n, up=False)
    while n - int(n * high) < least or high >= 1:
        high = float(f"{high - q:.3g}")
    return low, high


@functools.lru_cache(maxsize=4)
def _load_corpus(source: str, stamp: tuple[Any, ...] | None, max_bytes: int, eval_fraction: float,
                 min_tokens: int) -> Corpus:
    del stamp  # the cache's key only
    tokens = _tokens(source, max_bytes)
    n_eval = int(len(tokens) * eval_fraction)
    if len(tokens) - n_eval < min_tokens or n_eval < min_tokens:
        if len(tokens) >= 2 * min_tokens:  # the data would do with another split: what leaves a side short (a
            # review: --eval-fraction 4e-324 was said as too few tokens in --data)
            side, n = ("held-out", n_eval) if n_eval < min_tokens else ("training", len(tokens) - n_eval)
            low, high = _fractions(len(tokens), min_tokens)
            raise ValueError(f"eval_fraction: {source} has {len(tokens)} tokens; holding out {eval_fraction!r} of "
                             f"them leaves the {side} split {n}, too few for a sequence of {min_tokens} (seq_len + "
                             f"2): give an eval fraction from {low:g} to {high:g}, or more data")
        raise ValueError(f"data: {source} has {len(tokens)} tokens, too few for sequences of {min_tokens} "
                         "tokens (seq_len + 2) in each split")
    digest = hashlib.sha256(tokens.tobytes()).hexdigest()[:16]
    tokens = tokens.view()
    tokens.setflags(write=False)  # the cache's: a caller writing into a sweep's tokens changed the next sweep's
    return Corpus(train=tokens[: len(tokens) - n_eval], eval=tokens[len(tokens) - n_eval:], source=source,
                  sha256=digest)
