"""Session 80: ``abcscale.from_mup(...)``'s answer is a spec the exports take, as its JSON file is."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import abcscale
from abcscale import optax as abcoptax
from abcscale.usecases.mup import export_spec

TREE = {"Embed_0": {"embedding": jnp.zeros((100, 256))}, "h": {"kernel": jnp.zeros((256, 256))},
        "lm_head": {"kernel": jnp.zeros((256, 100))}}


@pytest.fixture(scope="module")
def imported():
    return abcscale.from_mup("adam", base_width=64, lr=1e-3, init_std=0.02, output_mult=2.0)


def test_the_answer_object_is_read_as_its_file(imported, tmp_path):
    path = tmp_path / "mup.json"
    path.write_text(imported.model_dump_json())
    for form in (None, "mup", "abc"):
        assert export_spec(imported, width=256, form=form) == export_spec(path, width=256, form=form)
    assert abcoptax.labels(imported, TREE, width=256) == abcoptax.labels(path, TREE, width=256)
    assert abcoptax.init_std_tree(imported, TREE, width=256) == abcoptax.init_std_tree(path, TREE, width=256)
    grads = jax.tree_util.tree_map(jnp.ones_like, TREE)
    updates = [tx.update(grads, tx.init(TREE), TREE)[0]
               for tx in (abcoptax.transform(imported, TREE, width=256), abcoptax.transform(path, TREE, width=256))]
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(lambda a, b: bool((a == b).all()), *updates))
    # refused before (session 78's review): "expected recommend(...).groups (a GroupSpec), ..., got MupImport"


def test_the_answer_object_needs_the_target_width_as_its_file_does(imported):
    with pytest.raises(ValueError, match=r"^width: a constants file needs the target width"):
        abcoptax.transform(imported, TREE)


def test_the_torch_export_reads_the_answer_object_as_its_file(imported, tmp_path):
    # abcscale.torch imports without PyTorch (its functions take a model); its SpecLike named MupImport at import
    # time, which a review found unimported there (every torch-export test file failed to load)
    from abcscale import torch as abctorch

    path = tmp_path / "mup.json"
    path.write_text(imported.model_dump_json())
    assert abctorch._resolved(imported, 256, "mup") == abctorch._resolved(path, 256, "mup")
    assert abctorch._resolved(imported, 256, None)[1] == imported


@pytest.mark.parametrize("as_file", [False, True])
def test_the_python_api_says_a_specs_5000_digit_number_in_its_terms(as_file, tmp_path):
    text = "seeds = " + "9" * 5000 + "\n"
    spec: object = text
    if as_file:
        spec = tmp_path / "big.toml"
        spec.write_text(text)
    with pytest.raises(ValueError, match=r"^spec: .*a number of 5000 digits, more than any setting has") as caught:
        abcscale.sweep(spec, tmp_path / "o")
    assert "set_int_max_str_digits" not in str(caught.value)


def test_one_width_group_note_names_a_float_value_as_written():
    from types import SimpleNamespace

    from abcscale.fitting.predict import _refuse

    g = SimpleNamespace(group={"optimizer": "adam", "tokens": 1e8}, per_width=[SimpleNamespace(width=64)],
                        n_rows=10, n_diverged=0)
    assert "in this group (tokens=1e+08)" in _refuse(g)  # the fit's summary named it tokens=1e+08 beside it
