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


# Session 80's review of the Python API with hostile arguments: each was a bare TypeError, IndexError, JAX's or
# optax's own error, a Ray start, an endless search or a value read silently as another.

SPEC64 = abcscale.recommend("mup", "adam", width=256, base_width=64, beta=1e-3, form="multiplier_free").groups


@pytest.mark.parametrize(("call", "said"), [
    (lambda: abcoptax.labels(SPEC64, {}, fan_in={"x": 4}), r"^fan_in: 'x' is no leaf of the tree \(it has none\)"),
    (lambda: abcoptax.labels(SPEC64, TREE, fan_in=[4]), r"^fan_in: expected a mapping \{leaf name: fan-in\}, got list"),
    (lambda: abcoptax.init(SPEC64, TREE, jnp.ones((2,))), r"^key: expected one JAX PRNG key .* array of float32"),
    (lambda: abcoptax.init(SPEC64, TREE, jax.random.split(jax.random.key(0), 3)), r"^key: expected one JAX PRNG key"),
    (lambda: abcoptax.schedule(10**12), r"^steps: at most 2\*\*31 - 1"),
])
def test_the_optax_export_names_a_bad_argument(call, said):
    with pytest.raises(ValueError, match=said):
        call()


def test_the_optax_export_takes_numpys_numbers_as_pythons():
    import numpy as np

    a = abcoptax.transform(SPEC64, TREE, b1=np.float32(0.9), fan_in={"h/kernel": np.int64(256)})
    b = abcoptax.transform(SPEC64, TREE, b1=float(np.float32(0.9)), fan_in={"h/kernel": 256})
    grads = jax.tree_util.tree_map(jnp.ones_like, TREE)
    ua, ub = (tx.update(grads, tx.init(TREE), TREE)[0] for tx in (a, b))
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(lambda x, y: bool((x == y).all()), ua, ub))
    key = jax.random.PRNGKey(0)  # the raw uint32 key of two words is still one key
    assert jax.tree_util.tree_structure(abcoptax.init(SPEC64, TREE, key)) == jax.tree_util.tree_structure(TREE)


@pytest.mark.parametrize(("kwargs", "said"), [
    ({"trials": 10**400}, r"^trials: Input should be less than or equal to 1000000"),
    ({"trials": True}, r"^trials: a number, not true/false"),
    ({"seeds": 2**63}, r"^seeds: Input should be less than or equal to 1000"),
    ({"seed": True}, r"^seed: a number, not true/false"),
    ({"ray_workers": -1}, r"^ray_workers: trials at a time on Ray actors, a whole number from 1, got -1"),
    ({"ray_workers": 1.5}, r"^ray_workers: "),
    ({"out": 3}, r"^out: expected the constants file's path, got 3"),
    ({"search": None}, r"^search: expected a group's name or a list of them"),
    ({"widths": [16, 32]}, r"^widths: tune\(\) sets it from its own argument base_width="),
    ({"storage": 3}, r"^storage: expected an Optuna database URL"),
])
def test_tune_names_a_bad_argument_before_anything_runs(kwargs, said):
    with pytest.raises(ValueError, match=said):
        abcscale.tune("mup", "adam", base_width=16, model="mlp", **{"trials": 1, **kwargs})
    with pytest.raises(ValueError, match=r"^parameterization: expected a name"):
        abcscale.tune(None, "adam", base_width=16)


def test_a_layer_named_twice_in_a_table_by_layer_is_refused():
    from abcscale.schemas.theory import PerLayer

    with pytest.raises(ValueError, match=r"embedding: given twice \('emb' and 'embedding'\)"):
        PerLayer.parse({"emb": 2, "embedding": 3})
    with pytest.raises(ValueError, match=r"^lr: embedding: given twice"):
        abcscale.convert("adam", "mup", "standard", width=1024, base_width=256, base_lr=1e-3,
                         lr={"embedding": 2, "emb": 1})
    assert PerLayer.parse({"emb": 2, "hidden": 3}) == PerLayer(embedding=2, hidden=3)


def test_a_constants_table_by_layer_takes_the_layers_aliases_as_convert_does():
    from abcscale.schemas.theory import Constants

    assert Constants.model_validate({"gamma": {"emb": 2}}).gamma == Constants(gamma={"embedding": 2}).gamma
    assert Constants.model_validate({"init_scale": {"Readout": 2}}).init_scale.readout == 2
    with pytest.raises(ValueError, match=r"gamma: embedding: given twice \('emb' and 'embedding'\)"):
        Constants.model_validate({"gamma": {"emb": 2, "embedding": 3}})
    with pytest.raises(ValueError, match=r"gamma\.foo"):  # no layer: the field's own check names it
        Constants.model_validate({"gamma": {"foo": 2}})
    a = abcscale.recommend("mup", "adam", width=256, base_width=64, beta=1e-3, constants={"gamma": {"emb": 2}})
    b = abcscale.recommend("mup", "adam", width=256, base_width=64, beta=1e-3, constants={"gamma": {"embedding": 2}})
    assert a == b


def test_convert_says_beta_as_beta_and_fit_says_mapping():
    with pytest.raises(ValueError, match=r"^beta: Input should be a finite number"):
        abcscale.convert("adam", "mup", "sp", width=1024, beta=float("nan"))
    with pytest.raises(ValueError, match=r"^base_lr: Input should be a finite number"):
        abcscale.convert("adam", "mup", "sp", width=1024, base_lr=float("nan"))
    from abcscale.fitting.synthetic import synthetic_sweep

    with pytest.raises(ValueError, match=r"^mapping: size_col: Input should be a valid string"):
        abcscale.fit(synthetic_sweep((64, 128), seeds=1), mapping={"size_col": 3}, n_boot=20)
