"""A PyTorch model given to --model says that --model takes a JAX model (session 62, a review: it read "No module
named 'torch'", as if abcscale lacked a dependency)."""

from __future__ import annotations

import importlib.util

import pytest
from typer.testing import CliRunner

from abcscale.cli import app


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="needs an environment without torch, as "
                    "make test's")
@pytest.mark.parametrize("how", ["file", "module"])
def test_a_torch_model_is_said_to_need_jax(tmp_path, monkeypatch, how):
    (tmp_path / "torchmodel.py").write_text("import torch\n\ndef factory(**kw):\n    return torch.nn.Linear(2, 2)\n")
    monkeypatch.chdir(tmp_path)
    ref = "torchmodel.py:factory" if how == "file" else "torchmodel:factory"
    res = CliRunner().invoke(app, ["coord-check", "--model", ref, "-p", "mup", "-o", "adam", "--widths", "16,32"])
    text = " ".join(res.output.split())
    assert res.exit_code == 2, res.output
    assert "No module named 'torch'" in text and "--model takes a JAX model" in text


def test_another_missing_module_keeps_its_words(tmp_path, monkeypatch):
    (tmp_path / "m.py").write_text("import no_such_pkg_s62\n")
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["coord-check", "--model", "m.py:f", "-p", "mup", "-o", "adam", "--widths", "16,32"])
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "No module named 'no_such_pkg_s62'" in text and "JAX model" not in text
