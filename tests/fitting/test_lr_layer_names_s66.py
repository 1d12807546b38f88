"""A team's own name for one layer's LR column (``hidden_lr``, ``lr/head``) is that layer's own LR as the runner's
``lr_hidden`` is (session 66: only the runner's three names were read, and a ``hidden_lr`` fit was spread as beta,
the other layers given the hidden layer's LR)."""

from __future__ import annotations

import pytest

import abcscale
from abcscale.fitting.synthetic import synthetic_sweep
from fitting.table import lr_layer_of


@pytest.mark.parametrize(("name", "layer"), [
    ("lr_hidden", "hidden"), ("hidden_lr", "hidden"), ("lr/hidden", "hidden"), ("Hidden LR", "hidden"),
    ("lrHidden", "hidden"), ("head_lr", "readout"), ("lm_head_lr", "readout"), ("output_lr", "readout"),
    ("lr_readout", "readout"), ("embedLearningRate", "embedding"), ("embed_learning_rate", "embedding"),
    ("wte_lr", "embedding"), ("lr", None), ("beta", None), ("config.lr", None), ("learning_rate", None),
    ("peak_lr", None), ("head_lr_mult", None), ("emb_lr_scale", None), ("hidden_to_output_lr", None),
    ("hidden_size", None), ("n_embd", None)])
def test_a_columns_layer_by_its_name(name, layer):
    assert lr_layer_of(name) == layer


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    # a per-layer muP + Adam sweep as theory has it, its layers' LRs logged under a team's own names
    from abcscale import theory

    df = synthetic_sweep(seed=0, exponent=0.0)
    df["parameterization"], df["optimizer"], df["lr_mode"] = "mup", "adam", "per_layer"
    c = theory.solve_exponents("mup", "adam", "full").c
    names = {"embedding": "embed_lr", "hidden": "hidden_lr", "readout": "lr/head"}
    for layer, c_l in c.items():
        if layer.value in names:
            df[names[layer.value]] = df["beta"] * (df["width"] / 64.0) ** -c_l
    path = tmp_path_factory.mktemp("lrnames") / "t.csv"
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(("col", "layer"), [("hidden_lr", "hidden"), ("lr/head", "readout"),
                                            ("embed_lr", "embedding")])
def test_a_fit_of_a_teams_layer_lr_column_is_that_layers_lr(table, col, layer):
    from abcscale import theory

    (g,) = abcscale.fit(table, mapping={"lr_col": col}, target_width=4096).groups
    assert g.lr_layer == layer and g.prediction is not None and g.prediction.layers is None
    c = theory.solve_exponents("mup", "adam", "full").c
    assert g.theory_exponent == pytest.approx(-c[next(k for k in c if k.value == layer)])
    assert g.consistent is True
    with pytest.raises(ValueError, match=f"this fit measured the {layer} layer's own LR"):
        abcscale.recommend(fit=abcscale.fit(table, mapping={"lr_col": col}), width=4096)
