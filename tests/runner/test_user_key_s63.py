"""Session 63, a code review of the JAX user-model fixes. The runner's layout of a user model changed (a dense-kernel
embedding drawn at fan-in^-1/2, a vocab-long bias that grows made vector) but the cell key did not, so a folder
started before and resumed after held two inits in one cell: a user model's key now holds a digest of its layout
at the cell's width, and a built-in model's key is what it was. ``grown_model`` called the factory again at a
refused width on every ``param_specs`` call, and at twice the largest width of any sweep. A factory's ``fan_in``
(axes) on an embedding, given the export's spelling (a size), scaled its init with the width, unsaid."""

from __future__ import annotations

import pytest

pytest.importorskip("jax")

from abcscale.runner.spec import SweepSpec  # noqa: E402
from tests.runner.test_user_review_s63 import FLAX_MLP_WITH as FLAX_MLP  # noqa: E402

#: a factory that logs each width it is called at and refuses those outside [LO, HI]
LOGGED = '''
import jax

LOG, LO, HI = %r, %d, %d

def make(width, depth, *, vocab, seq_len):
    with open(LOG, "a") as fh:
        fh.write(f"{width}\\n")
    if not LO <= width <= HI:
        raise ValueError(f"width {width} outside [{LO}, {HI}]")
    shapes = {"wte": (vocab, width), "mix": (width, width), "gain": (width,), "head": (width, vocab)}
    def apply(p, tok, record):
        return (jax.nn.relu(p["wte"][tok] @ p["mix"]) * p["gain"]) @ p["head"]
    return {"shapes": shapes, "apply": apply, "roles": {"wte": "embedding", "head": "readout"}}
'''

#: keys computed at 8ac5442 and 9ace29d (both the same): a built-in model's folders stay valid
BUILTIN_KEYS = {
    ("transformer", "adam", "mup", 16): ("85168b4f37f5858d", "ae7811453ac295d5"),
    ("transformer", "adam", "mup", 32): ("b65ad8363b95a981", "c9bffec9eda2c941"),
    ("mlp", "sgd", "sp", 16): ("462d6f8c30c87439", "0a038f95cbe3e7c8"),
    ("mlp", "sgd", "sp", 32): ("f0ec6e6dab5b86ea", "9641557dac33176c"),
    ("transformer", "adamw", "ntk", 16): ("26e1e0d215e7f277", "013601a597e7ad07"),
    ("transformer", "adamw", "ntk", 32): ("266329601c32e01c", "f13806f2950fecdf"),
}
#: the same cells' keys since session 78, which leaves out what no run reads (the data's byte cap, an epsilon SGD
#: and its mode ignore): the keys above are their ``unread=True`` form, which a folder written before resumes by
KEYS_S78 = {
    ("transformer", "adam", "mup", 16): ("cf0d05638a20797f", "c89600330e2d71ea"),
    ("transformer", "adam", "mup", 32): ("2ea07e2d29997e4b", "f84542b8b7e356b9"),
    ("mlp", "sgd", "sp", 16): ("784b5a0e7a825b29", "57345e661a783957"),
    ("mlp", "sgd", "sp", 32): ("f1f97a5145e0f346", "9f9593d7dc7e3bc6"),
    ("transformer", "adamw", "ntk", 16): ("5d03969a76f81ab5", "0bad819980268e27"),
    ("transformer", "adamw", "ntk", 32): ("091f815ca533987e", "1ae22f4d836c8b0d"),
}


def _spec(model, parameterization="mup", optimizer="adam", widths=(16, 32)):
    return SweepSpec(model=model, parameterizations=[parameterization], optimizers=[optimizer], widths=list(widths),
                     depth=1, seq_len=8, batch=2, steps=3, data="synthetic", log2_lr=[-8, -6])


def _ref(tmp_path, source, name="m.py"):
    (tmp_path / name).write_text(source)
    return f"{tmp_path / name}:make"


def _logged(tmp_path, lo, hi, name="logged.py"):
    log = tmp_path / f"{name}.log"
    return _ref(tmp_path, LOGGED % (str(log), lo, hi), name), log


def _calls(log):
    return [int(w) for w in log.read_text().split()] if log.exists() else []


@pytest.mark.parametrize(("model", "optimizer", "parameterization"),
                         [("transformer", "adam", "mup"), ("mlp", "sgd", "sp"), ("transformer", "adamw", "ntk")])
def test_a_builtin_models_cell_keys_are_unchanged(model, optimizer, parameterization, monkeypatch):
    from abcscale.runner.spec import XLA_KNOBS

    for knob in XLA_KNOBS:  # conftest's opt level 0 is keyed (forced XLA settings are other runs)
        monkeypatch.delenv(knob, raising=False)
    spec = _spec(model, parameterization, optimizer)
    for cell in spec.cells():
        at = (model, optimizer, parameterization, cell.width)
        assert (cell.key(spec, "data"), cell.base_key(spec, "data")) == KEYS_S78[at]
        assert (cell.key(spec, "data", unread=True), cell.base_key(spec, "data", unread=True)) == BUILTIN_KEYS[at]


def test_a_user_models_key_follows_its_layout(tmp_path, monkeypatch):
    """The same factory file, laid out by other rules (the lookup's std on a dense-kernel embedding, as before
    session 63), is another cell: a resumed folder's old runs are not read as this layout's."""
    import abcscale.theory.groups as groups

    ref = _ref(tmp_path, FLAX_MLP % "")
    spec = _spec(ref)
    cell = spec.cells()[0]
    key, base = cell.key(spec, "data"), cell.base_key(spec, "data")
    assert (cell.key(spec, "data"), cell.base_key(spec, "data")) == (key, base)  # stable
    monkeypatch.setattr(groups, "dense_input_std", lambda std, *a, **k: std)  # the old draw: std 1
    assert cell.key(spec, "data") != key and cell.base_key(spec, "data") != base
    monkeypatch.undo()
    assert (cell.key(spec, "data"), cell.base_key(spec, "data")) == (key, base)


def test_the_layout_digest_reads_what_trains(tmp_path):
    """Each parameter's role, init and std constant enter: the [256, 16] kernel's 1/16 among them."""
    from abcscale.runner.sweep import _program
    from abcscale.runner.user import layout_digest

    ref = _ref(tmp_path, FLAX_MLP % "")
    spec = _spec(ref)
    progs = [_program(spec, c, (), False) for c in spec.cells()]
    assert progs[0].specs()["Dense_0/kernel"].std_const == 1 / 16
    digests = [layout_digest(p.model) for p in progs]
    assert len(set(digests)) == 2  # each width its own
    assert spec.cells()[0].key(spec, "data") != spec.cells()[1].key(spec, "data")


def test_a_refused_width_is_not_asked_again(tmp_path):
    """A factory that takes one width alone: the model at another width is None, remembered as None."""
    from abcscale.runner.user import grown_model

    ref, log = _logged(tmp_path, 16, 16)
    for _ in range(4):
        assert grown_model(ref, 16, 1, 256, 8) is None
    assert sorted(_calls(log)) == [8, 32]


def test_a_sweep_of_several_widths_builds_only_its_own(tmp_path):
    """The sweep's other widths show what grows; twice the largest (outside the sweep, refused here) is not asked,
    however often the cell's parameters are laid out (show-roles, the programs, the keys)."""
    from abcscale.runner.roles import parameter_roles

    ref, log = _logged(tmp_path, 8, 32)
    spec = _spec(ref, widths=(16, 32))
    parameter_roles(spec)
    for cell in spec.cells():
        cell.key(spec, "data")
    assert sorted(set(_calls(log))) == [16, 32]


def test_a_sweep_of_one_width_builds_twice_it_once(tmp_path):
    from abcscale.runner.roles import parameter_roles

    ref, log = _logged(tmp_path, 8, 64)
    spec = _spec(ref, widths=(16,))
    parameter_roles(spec)
    spec.cells()[0].key(spec, "data")
    assert sorted(_calls(log)) == [16, 32]


@pytest.mark.parametrize("fan_in", ['{"Dense_0": {"kernel": 1}}', '{"Dense_2": {"kernel": 1}}'])
def test_a_fan_in_that_grows_on_an_embedding_or_stays_on_a_readout_is_refused(tmp_path, fan_in):
    """The export's fan_in={"Dense_0/kernel": 1} is a size; the factory's is axes, and axis 1 is the width: the
    embedding was drawn at width^-1/2 (another parameterization), unsaid. A readout's axis 1 is the vocabulary's, which
    does not grow: (V / width)^-b, a std that changes with the width (session 69; its axis 0 is taken)."""
    from abcscale.runner.user import check

    ref = _ref(tmp_path, FLAX_MLP % f', "fan_in": {fan_in}')
    name = "Dense_0/kernel" if "Dense_0" in fan_in else "Dense_2/kernel"
    with pytest.raises(ValueError, match=rf"fan_in: '{name}'.*axes, not a size"):
        check(ref, [16, 32], 1, 8)


def test_a_fixed_fan_in_on_an_embedding_is_taken(tmp_path):
    """Axis 0 of a [vocab, D] kernel, the data's: the std of the export's draw, at every width."""
    from abcscale.runner.sweep import _program
    from abcscale.runner.user import check

    ref = _ref(tmp_path, FLAX_MLP % ', "fan_in": {"Dense_0": {"kernel": 0}}')
    check(ref, [16, 32], 1, 8)
    spec = _spec(ref)
    assert [_program(spec, c, (), False).specs()["Dense_0/kernel"].std_const for c in spec.cells()] == [1 / 16] * 2
