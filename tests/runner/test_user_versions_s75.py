"""Session 75: a long-lived process (a notebook) kept every version of an edited model it had trained: the built
models and traced programs were ``functools.cache``\\ d by the code's stamp, so each edit added a model per width and
a traced program per shape (15 MiB an edit of a two-width sweep, measured). A new version's load now drops what the
version it replaces built (``runner.usercode.by_version`` / ``forget``); an edit undone builds again."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest

from abcscale.runner import train, user, usercode
from abcscale.runner.spec import SweepSpec

pytest.importorskip("jax")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (ROOT / "examples" / "user_model.py").read_text()
LOGITS = 'return h_BxTxD @ params["lm_head.kernel"]'
assert LOGITS in EXAMPLE


def _sweep(ref: str, out: Path) -> float:
    import abcscale

    spec = SweepSpec(model=ref, widths=[16, 32], depth=1, seq_len=8, batch=4, steps=3, log2_lr=[-6.0],
                     data="synthetic", eval_batches=1, coord_steps=[])
    return float(abcscale.sweep(spec, out, progress=False)["loss_at_init"].iloc[0])


def _held(stamp: usercode.Stamp) -> list[tuple]:
    return [k for table in usercode._TABLES for k in table if stamp in k]


def test_an_edit_drops_the_models_and_programs_of_the_version_it_replaces(tmp_path):
    model = tmp_path / "model.py"
    ref = f"{model}:factory"
    model.write_text(EXAMPLE)
    first = _sweep(ref, tmp_path / "a")
    old = usercode.stamp(ref)
    held = _held(old)
    # a model per width (and the other width's, read for the layout) and a traced program per width
    assert any(k[0] == ref for k in held) and any(isinstance(k[0], train.Program) for k in held), held
    gone = [weakref.ref(user._build(ref, old, 16, 1, 256, 8))]
    model.write_text(EXAMPLE.replace(LOGITS, f"return 2.0 * ({LOGITS.removeprefix('return ')})"))
    second = _sweep(ref, tmp_path / "b")
    new = usercode.stamp(ref)
    assert new != old and second != first
    assert not _held(old) and _held(new)
    gc.collect()
    assert gone[0]() is None, "the replaced version's model is still alive"
    # undone: the first version again, built again (and trained as before)
    model.write_text(EXAMPLE)
    assert _sweep(ref, tmp_path / "c") == first
    assert not _held(new) and _held(usercode.stamp(ref))


def test_two_references_to_one_file_each_build_their_own_factory(tmp_path):
    """A stamp names files, not the factory: two factories of one file share it, and each keeps its own models."""
    model = tmp_path / "model.py"
    model.write_text(EXAMPLE + "\n\ndef other(*args, **kwargs):\n    return factory(*args, **kwargs)\n")
    a, b = f"{model}:factory", f"{model}:other"
    usercode.refresh(a)
    usercode.refresh(b)
    ma, mb = user.build(a, 16, 1, 256, 8), user.build(b, 16, 1, 256, 8)
    assert ma is not mb and ma.shapes == mb.shapes
    assert user.build(a, 16, 1, 256, 8) is ma  # still kept: b's load of the same version forgot nothing


_SLOW = '''
import threading
import jax.numpy as jnp

VERSION = {v}
STARTED, GO = threading.Event(), threading.Event()


def make(width, depth, vocab, seq_len):
    if VERSION == 1:  # version 1's build held until the test has loaded version 2
        STARTED.set()
        GO.wait(30)
    shapes = {{"emb": (vocab, width), "w": (width, width), "out": (width, vocab)}}
    roles = {{"emb": "embedding", "out": "readout"}}

    def apply(params, tokens, record):
        return jnp.tanh(params["emb"][tokens] @ params["w"]) @ params["out"]

    return {{"shapes": shapes, "roles": roles, "apply": apply}}
'''


def test_a_build_of_the_replaced_version_finishing_after_the_load_keeps_its_answer_to_itself(tmp_path):
    """A sweep's thread (or a notebook's background sweep) still building version 1 when version 2 loads: stored
    after the load forgot version 1, its model stayed for the process (a review)."""
    import sys
    import threading

    model = tmp_path / "slow.py"
    model.write_text(_SLOW.format(v=1))
    ref = f"{model}:make"
    v1 = usercode.refresh(ref)
    first = user.load_factory(ref)
    state = sys.modules[first.__module__]
    built = []
    thread = threading.Thread(target=lambda: built.append(user._build(ref, v1, 16, 1, 256, 8)))
    thread.start()
    assert state.STARTED.wait(30)
    model.write_text(_SLOW.format(v=2))
    v2 = usercode.refresh(ref)
    user.build(ref, 16, 1, 256, 8)  # version 2 loads: version 1 forgotten
    state.GO.set()
    thread.join(30)
    assert built and built[0].shapes["w"] == (16, 16)  # the caller has its answer ...
    assert not _held(v1) and _held(v2)  # ... and nothing keeps it
    model.write_text(_SLOW.format(v=1).replace("if VERSION == 1:", "if False:"))  # version 1's bytes differ now
    usercode.refresh(ref)
    user.build(ref, 16, 1, 256, 8)
    assert not _held(v2)
