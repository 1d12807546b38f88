"""`runner.data.held` per thread: a sweep started in a second thread while a first one runs reads the data as the files
are when it starts, and keeps its own hold when the first ends (one hold per process gave it the first sweep's
stamps, so the tokens of a file edited in between, and then no hold at all)."""

from __future__ import annotations

import threading

import numpy as np

from abcscale.runner import data


def _write(path, text: bytes) -> None:
    path.write_bytes(text * 400)


def test_a_second_threads_sweep_reads_the_file_as_it_is_when_it_starts(tmp_path, monkeypatch):
    src = tmp_path / "corpus.txt"
    _write(src, b"first version of the corpus. ")
    first_in, edited, first_done = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, np.ndarray] = {}

    def first() -> None:
        with data.held():
            seen["first"] = data.load_corpus(str(src)).train
            first_in.set()
            edited.wait(30)
            seen["first again"] = data.load_corpus(str(src)).train  # its own hold: the version it started with
        first_done.set()

    def second() -> None:
        with data.held():
            seen["second"] = data.load_corpus(str(src)).train
            first_done.wait(30)
            stamps = []
            real = data._stamp
            monkeypatch.setattr(data, "_stamp", lambda *a: stamps.append(a) or real(*a))
            seen["second again"] = data.load_corpus(str(src)).train
            seen["restamped"] = np.array(len(stamps))

    a = threading.Thread(target=first)
    a.start()
    assert first_in.wait(30)
    _write(src, b"the second, longer version of it. ")
    b = threading.Thread(target=second)
    b.start()
    edited.set()
    a.join(30)
    b.join(30)
    assert bytes(seen["first"][:5]) == b"first" and bytes(seen["first again"][:5]) == b"first"
    assert bytes(seen["second"][:10]) == b"the second"  # not the first sweep's tokens
    assert bytes(seen["second again"][:10]) == b"the second"
    assert int(seen["restamped"]) == 0  # still held after the first sweep's hold ended


def test_a_hold_inside_a_hold_is_the_outer_one(tmp_path):
    src = tmp_path / "corpus.txt"
    _write(src, b"one version. ")
    with data.held():
        with data.held():
            data.load_corpus(str(src))
        assert data._HELD.get()  # the inner hold's stamp is the outer one's, kept after the inner ends
        _write(src, b"another version, longer. ")
        assert bytes(data.load_corpus(str(src)).train[:3]) == b"one"
    assert data._HELD.get() is None
    assert bytes(data.load_corpus(str(src)).train[:3]) == b"ano"
