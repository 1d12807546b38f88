"""Session 60's review of applying the answer (no PyTorch): a `check` warning that advised dropping beta, the
check's decay note naming recommend's keys, spec.mup read by param_groups' group names, a rule typo carried in the
spec left silent by abcscale.optax, and the JAX snippet's PyTorch words. tests/torch/test_review_s60.py has the
PyTorch parts."""

from __future__ import annotations

import warnings

import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app
from abcscale.schemas.groups import Role
from abcscale.usecases.snippets import snippet

runner = CliRunner()
MUP = ("mup: {base_width: 256, lr: {embedding: 3e-3, hidden: %s, readout: 3e-3, vector: 3e-3}, "
       "init_std: {embedding: 1.0, hidden: 0.0625, readout: 0.0625}, epsilon: 1e-8}\n")


def _check(tmp_path, text: str) -> tuple[int, str]:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    res = runner.invoke(app, ["check", str(path)])
    return res.exit_code, " ".join(res.output.split())


def test_the_mup_trap_is_named_and_beta_is_not_advised_away(tmp_path):
    """README trap #1: abcscale's hidden LR (beta / 16 at 4096 over 256) given to MuAdam, with beta. It failed, and
    a warning advised leaving beta out, which then passed with the LRs unchecked."""
    code, text = _check(tmp_path, "optimizer: adam\nwidth: 4096\nbeta: 3.0e-3\n" + MUP % "1.875e-4")
    assert code == 1 and "FAIL: lr (hidden) too low" in text
    assert "leave beta out" not in text
    assert "mup.lr.hidden 0.0001875 is beta / width_mult (0.003 / 16)" in text
    assert "given to MuAdam, which divides it by width_mult again" in text
    code, text = _check(tmp_path, "optimizer: adamw\nwidth: 4096\nbeta: 3.0e-3\n" + MUP % "1.875e-4")
    assert code == 1 and "given to MuAdamW" in text


def test_per_group_mup_lrs_beside_beta_keep_beta(tmp_path):
    """Not the trap (the hidden lr is not beta / width_mult): the note on what beta means stays, its advice
    to drop beta does not."""
    code, text = _check(tmp_path, "optimizer: adam\nwidth: 4096\nbeta: 3.0e-3\n" + MUP % "1e-3")
    assert code == 1 and "beta with a mup table is the one lr MuAdam gives every group" in text
    assert "leave beta out" not in text and "beta / width_mult" not in text
    assert "without it the table's LRs are not checked" in text


def test_a_checks_decay_note_names_the_check_configs_key(tmp_path):
    """The run's `weight_decay: 0.1` with no constants.weight_decay: the transfer's note said "none given ...
    (weight_decay, --weight-decay)", recommend's keys, beside the check's own warning naming constants.weight_decay."""
    head = "parameterization: mup\noptimizer: adamw\nwidth: 1024\nbase_width: 256\nbeta: 3e-3\nlr: 0.00075\n" \
           "form: multiplier_free\n"
    _, text = _check(tmp_path, head + "weight_decay: 0.1\n")
    assert "none given, so 0 at every layer" not in text and "--weight-decay" not in text
    assert text.count("weight_decay:") == 1
    assert "give the decay tuned at the base width as constants.weight_decay" in text
    _, text = _check(tmp_path, head)  # no decay at all: said, with the check config's keys
    assert "none given, so 0 at every layer" in text and "--weight-decay" not in text
    assert "as constants.weight_decay (and weight_decay_mode) and the run's own as weight_decay to check it" in text


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_the_mup_view_reads_every_group_name(optimizer):
    """spec.mup.lr[name] for each group param_groups names: under SGD the fixed group shares the vector one in the
    setup (no `fixed` key), and `spec.mup.lr["fixed"]` was a KeyError; a group at another fan-in is its role's."""
    spec = abcscale.recommend("mup", optimizer, width=512, base_width=256, beta=3e-3, weight_decay=0.1,
                              form="mup").groups
    assert spec.mup is not None
    tables = [spec.mup.lr, *([spec.mup.weight_decay] if optimizer == "adamw" else [])]
    for table in tables:
        for name in ("embedding", "hidden", "readout", "vector", "fixed", "hidden (fan-in 4x width)"):
            assert table[name] == table[Role.parse(name.split(" ")[0])]
        assert table["fixed"] == table.get(Role.fixed, table[Role.vector])
    if optimizer == "sgd":  # what the setup holds is unchanged: one group for both (mup export's row says so)
        assert Role.fixed not in spec.mup.lr and spec.mup.lr["fixed"] == spec["fixed"].mup_lr
        assert set(spec.model_dump(mode="json")["mup"]["lr"]) == {"embedding", "hidden", "readout", "vector"}
    with pytest.raises(KeyError):
        spec.mup.lr["head"]
    with pytest.raises(KeyError):
        spec.mup.init_std["fixed"]  # keeps its init: no std, and none read from the vector role


def _jax_params():
    jnp = pytest.importorskip("jax.numpy")
    return {"emb": {"embedding": jnp.zeros((100, 512))}, "body": {"kernel": jnp.zeros((512, 512))},
            "lm_head": {"kernel": jnp.zeros((512, 100))}}


def test_optax_warns_of_a_recommend_rule_that_matches_no_leaf():
    """A typo given to recommend(rules=...) was silent in abcscale.optax; the same rule given to the call warned."""
    params = _jax_params()
    from abcscale import optax as abcoptax

    spec = abcscale.recommend("mup", "adam", width=512, base_width=256, beta=3e-3, form="multiplier_free",
                              rules=[(r"^bdoy/kernel$", "hidden")]).groups
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        abcoptax.labels(spec, params)
        abcoptax.lr_tree(spec, params, rules=[(r"^bdoy/kernel$", "hidden")])  # the same one: said once
    said = [str(w.message) for w in got if "matched no leaf" in str(w.message)]
    assert len(said) == 2 and all("'^bdoy/kernel$'" in s for s in said)
    default = abcscale.recommend("mup", "adam", width=512, base_width=256, beta=3e-3, form="multiplier_free").groups
    with warnings.catch_warnings(record=True) as got:  # the default rules match nothing here: not the user's
        warnings.simplefilter("always")
        abcoptax.labels(default, params)
    assert not [w for w in got if "matched no leaf" in str(w.message)]


def test_optax_error_for_an_unplaceable_leaf_names_the_unmatched_rule():
    jnp = pytest.importorskip("jax.numpy")
    from abcscale import optax as abcoptax

    params = _jax_params() | {"proj": {"kernel": jnp.zeros((512, 7))}}
    spec = abcscale.recommend("mup", "adam", width=512, base_width=256, beta=3e-3, form="multiplier_free",
                              rules=[(r"^proj/kernl$", "readout")]).groups
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="no rule names its role") as exc:
            abcoptax.labels(spec, params)
    assert "your rules '^proj/kernl$' matched no leaf" in str(exc.value)


def test_the_jax_snippet_speaks_jax():
    spec = abcscale.recommend("mup", "adam", width=512, base_width=256, beta=3e-3, form="multiplier_free").groups
    optax_text, torch_text = snippet(spec, "optax"), snippet(spec, "torch")
    assert "nn.Linear" not in optax_text and "(a Dense on pixels, a Conv stem)" in optax_text
    assert "(an nn.Linear on pixels, a conv stem)" in torch_text
