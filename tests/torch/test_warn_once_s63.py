"""param_groups, init_ and multipliers read a model alike, so a snippet's configure() (all three) said each warning
of the model three times, the tied embedding's among them (session 62's note). Each is said once per model, at the
caller's line, and a filter that turns warnings into errors still raises."""

from __future__ import annotations

import warnings

import pytest
import torch

import abcscale
from abcscale import torch as abctorch
from tests.torch.models import GPT

WIDTH = 64


def _spec():
    return abcscale.recommend("mup", "adam", width=WIDTH, base_width=32, beta=3e-3, form="mup").groups


def _configure(model, spec):  # what the snippet's configure() calls
    abctorch.init_(model, spec, form="mup")
    torch.optim.Adam(abctorch.param_groups(model, spec, form="mup"))
    return abctorch.multipliers(model, spec, form="mup")


def test_a_tied_models_warning_is_said_once_per_model_at_the_callers_line():
    spec = _spec()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _configure(GPT(WIDTH, tie=True), spec)
    tied = [w for w in caught if "one tensor (tied)" in str(w.message)]
    assert len(tied) == 1, [str(w.message)[:80] for w in caught]
    assert tied[0].filename == __file__  # _configure's line: the caller's, not abcscale's
    with warnings.catch_warnings(record=True) as again:  # another model: said again
        warnings.simplefilter("always")
        _configure(GPT(WIDTH, tie=True), spec)
    assert sum("one tensor (tied)" in str(w.message) for w in again) == 1


def test_an_error_filter_still_raises():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match="one tensor"):
            abctorch.param_groups(GPT(WIDTH, tie=True), _spec(), form="mup")
