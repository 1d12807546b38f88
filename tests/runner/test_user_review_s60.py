"""Session 60: a user review of the runner's own-JAX-model path (``--model file.py:factory``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from abcscale.cli import app

pytest.importorskip("jax")
runner = CliRunner()
README = Path(__file__).resolve().parents[2] / "README.md"

# a lax.scan over stacked blocks; BODY_RECORD is what the scan body adds to its carry
SCAN = '''
import jax

def make(width, depth, *, vocab, seq_len):
    shapes = {"wte": (vocab, width), "blocks": {"w": (depth, width, width)}, "lm_head": (width, vocab)}
    def apply(p, tok, record):
        x = record("embed", p["wte"][tok])
        def body(x, w):
            h = jax.nn.relu(x @ w)
            return x + BODY, h
        x, hs = jax.lax.scan(body, x, p["blocks"]["w"])
        AFTER
        return x @ p["lm_head"]
    return {"shapes": shapes, "apply": apply}
'''


def _scan_model(tmp_path, name, body='record("blk", h)', after="pass"):
    (tmp_path / name).write_text(SCAN.replace("BODY", body).replace("AFTER", after))
    return f"{tmp_path / name}:make"


def _sweep(tmp_path, ref, *extra, out="out"):
    return runner.invoke(app, ["sweep", "--model", ref, "-p", "mup", "--widths", "16,32", "--depth", "2",
                               "--log2-lr=-6", "--steps", "2", "--batch", "2", "--seq-len", "8", "--seeds", "1",
                               "--out", str(tmp_path / out), "-q", *extra])


def _said(res):
    return " ".join(res.stderr.split())


def test_record_inside_a_scan_body_is_exit_2_naming_record_and_the_loop(tmp_path):
    """It crashed at the first step with a raw traceback ending "Computation compiled for 43 inputs but called with
    15", exit 1: for coord-check its FAIL code, so CI could not tell the crash from a failed check."""
    ref = _scan_model(tmp_path, "scanrec.py")
    res = _sweep(tmp_path, ref)
    said = _said(res)
    assert res.exit_code == 2, res.output
    assert "record('blk', x) was called inside a jax.lax.scan/while_loop/fori_loop/cond body" in said
    assert "record outside the loop, or on the loop's outputs" in said and "Traceback" not in res.output
    res = runner.invoke(app, ["coord-check", "--model", ref, "-p", "mup", "-o", "adam", "--widths", "16,32",
                              "--depth", "2", "--seeds", "1", "--steps", "2", "--batch", "2", "--seq-len", "8"])
    assert res.exit_code == 2, res.output
    assert "record('blk', x) was called inside" in _said(res)


@pytest.mark.parametrize("wrap", ["jax.vmap(lambda r: record('v', r))(x)",
                                  "jax.checkpoint(lambda r: record('c', r))(x)",
                                  "jax.lax.cond(True, lambda r: record('k', r), lambda r: r, x)",
                                  "jax.lax.fori_loop(0, 2, lambda i, r: record('f', r), x)"])
def test_record_inside_other_traced_functions_is_refused_before_training(tmp_path, wrap):
    from abcscale.runner.user import check

    ref = _scan_model(tmp_path, "inner.py", body="0", after=f"x = {wrap}")
    with pytest.raises(ValueError, match=r"x\) was called inside a jax.lax.scan"):
        check(ref, [16, 32], 2, 8)


def test_record_on_the_scan_outputs_or_of_an_outer_value_inside_the_body_is_fine(tmp_path):
    from abcscale.runner.user import check

    # the loop's outputs, a name per layer: what the message suggests
    check(_scan_model(tmp_path, "ys.py", body="0", after='[record(f"blk{i}", hs[i]) for i in range(hs.shape[0])]'),
          [16, 32], 2, 8)
    # a value of the outer trace recorded from inside the body is the outer trace's: it leaves the loop
    outer = SCAN.replace('x = record("embed", p["wte"][tok])', 'x = p["wte"][tok]; e = x')
    (tmp_path / "outer.py").write_text(outer.replace("BODY", '0 * record("embed", e)').replace("AFTER", "pass"))
    check(f"{tmp_path / 'outer.py'}:make", [16, 32], 2, 8)


SCALAR = '''
import jax

def make(width, depth, *, vocab, seq_len):
    shapes = {"wte": (vocab, width), "fc1": (width, width), "lm_head": (width, vocab), "logit_scale": SHAPE}
    def apply(p, tok, record):
        x = p["wte"][tok]
        x = x + record("mlp", jax.nn.relu(x @ p["fc1"]))
        return (x @ p["lm_head"]) * p["logit_scale"]
    return {"shapes": shapes, "apply": apply, "roles": ROLES}
'''


def _scalar_model(tmp_path, name, shape="()", roles="{}"):
    (tmp_path / name).write_text(SCALAR.replace("SHAPE", shape).replace("ROLES", roles))
    return f"{tmp_path / name}:make"


def test_a_scalar_parameter_of_shape_empty_tuple_is_fixed_like_one_of_shape_1(tmp_path):
    """JAX writes one number (a logit scale) as shape (); it was refused ("must map to a tuple of positive ints,
    got ()") while (1,) was fixed, as the README's "a one-number parameter fixed" says."""
    ref = _scalar_model(tmp_path, "scalar.py")
    res = _sweep(tmp_path, ref, "--show-roles", "--json")
    assert res.exit_code == 0, res.output
    params = {p["name"]: p for p in json.loads(res.stdout)["configurations"][0]["parameters"]}
    assert params["logit_scale"]["role"] == "fixed" and params["logit_scale"]["init"] == "ones"
    assert [list(s) for s in params["logit_scale"]["shape"]] == [[], []]
    table = _sweep(tmp_path, ref, "--show-roles")
    row = next(line for line in table.stdout.splitlines() if "logit_scale" in line)
    assert "() / ()" in row and "fixed" in row, table.stdout
    # it trains: the same losses as the (1,) model, which is the same model
    res = _sweep(tmp_path, ref, "--json")
    one = _sweep(tmp_path, _scalar_model(tmp_path, "one.py", shape="(1,)"), "--json", out="one")
    assert res.exit_code == 0 and one.exit_code == 0, res.output + one.output
    got = [(b["width"], b["eval_loss"]) for b in json.loads(res.stdout)["best"]]
    want = [(b["width"], b["eval_loss"]) for b in json.loads(one.stdout)["best"]]
    assert [w for w, _ in got] == [w for w, _ in want] == [16, 32]
    assert [x for _, x in got] == pytest.approx([x for _, x in want], rel=1e-5)


def test_a_scalar_takes_fixed_or_vector_roles_only_and_bad_shapes_stay_refused(tmp_path):
    from abcscale.runner.user import _shapes

    ok = _scalar_model(tmp_path, "fixed.py", roles='{"logit_scale": "fixed"}')
    assert _sweep(tmp_path, ok, "--show-roles").exit_code == 0
    res = _sweep(tmp_path, _scalar_model(tmp_path, "hid.py", roles='{"logit_scale": "hidden"}'), "--show-roles")
    assert res.exit_code == 2 and "roles: 'logit_scale' [] has no axis: the hidden role is a matrix's" in _said(res)
    assert _shapes({"s": ()}) == {"s": ()}
    for bad in ("", 5, (0,), {}, None):
        with pytest.raises(ValueError, match="must map to a tuple of positive ints"):
            _shapes({"s": bad})


def test_readme_says_apply_is_traced_at_the_sweeps_batch(tmp_path):
    """The README said "a batch of 2" in one place and "the sweep's batch" in another; the runner traces at the
    sweep's --batch (runner.sweep.check_model)."""
    from abcscale.runner.user import check

    text = " ".join(README.read_text().split())
    assert "a batch of 2" not in text and "`jax.eval_shape`, at the sweep's `--batch`" in text
    assert "inside them the run fails" not in text
    model = SCALAR.replace("x = p[\"wte\"][tok]", "assert tok.shape[0] == 3, tok.shape; x = p[\"wte\"][tok]")
    (tmp_path / "b3.py").write_text(model.replace("SHAPE", "()").replace("ROLES", "{}"))
    check(f"{tmp_path / 'b3.py'}:make", [16], 1, 8, batch=3)
    with pytest.raises(ValueError, match="apply at width 16 failed: AssertionError"):
        check(f"{tmp_path / 'b3.py'}:make", [16], 1, 8, batch=2)


def test_an_unplaceable_parameter_is_told_the_factorys_roles_not_a_rule():
    """A review: a sweep's refusal said "add a rule (pattern, role) ... or, if the model is not 24 wide, recommend at
    its width", the exports' words, where the factory's 'roles' was the fix."""
    from abcscale.runner.user import _in_factory_words
    from abcscale.theory.groups import DEFAULT_RULES, assign

    name = "params/Dense_out/kernel"
    with pytest.raises(ValueError) as caught:
        assign(name, (24, 256), 24, DEFAULT_RULES, layout="jax")
    said = _in_factory_words(str(caught.value), name)
    assert "recommend at its width" not in said and "add a rule" not in said
    assert "factory's 'roles'" in said and "{'params/Dense_out/kernel': 'readout'}" in said
