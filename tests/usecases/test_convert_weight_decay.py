"""``theory convert`` with AdamW weight decay: the source setting carries the decay transferred from the base
width, the conversion keeps the symmetry's invariant (coupled: lr * wd per layer; independent: wd), and a
decay with an optimizer that has none is refused naming the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from abcscale import theory
from abcscale.schemas.api import ConvertRequest
from abcscale.schemas.enums import LAYERS
from abcscale.schemas.theory import BaseConfig
from abcscale.usecases.convert import convert_setting, source_setting


def _req(**kw) -> ConvertRequest:
    return ConvertRequest.model_validate({"optimizer": "adamw", "from": "mup", "to": "standard", "width": 1024,
                                          "base_width": 256, "base_lr": 1e-3, "weight_decay": 0.1, **kw})


@pytest.mark.parametrize("mode", ["coupled", "independent"])
def test_source_setting_carries_the_transferred_decay(mode):
    setting = source_setting(_req(weight_decay_mode=mode))
    base = BaseConfig(width=256, beta=1e-3, epsilon_mode="constant", weight_decay=0.1, weight_decay_mode=mode)
    want = theory.transfer("mup", "adamw", base, 1024)
    assert [s.weight_decay for s in setting.layers] == [s.weight_decay for s in want.layers]
    if mode == "independent":
        assert {s.weight_decay for s in setting.layers} == {0.1}


def test_without_a_base_width_the_decay_is_every_layers_at_the_width():
    setting = source_setting(_req(base_width=None))
    assert {s.weight_decay for s in setting.layers} == {0.1}


@pytest.mark.parametrize("mode", ["coupled", "independent"])
def test_conversion_keeps_the_decays_invariant(mode):
    conv = convert_setting(_req(weight_decay_mode=mode))
    assert conv.weight_decay_mode == mode
    for l in LAYERS:
        s, c = conv.source[l], conv.converted[l]
        if mode == "coupled":  # the per-step shrink lr * wd does not change
            assert c.lr * c.weight_decay == pytest.approx(s.lr * s.weight_decay, rel=1e-12)
        else:
            assert c.weight_decay == s.weight_decay
    # and it is theory.convert's, read in the same mode
    want = theory.convert(conv.source, "mup", "standard", "full", weight_decay_mode=mode)
    assert conv.converted == want.setting
    # mup -> standard moves embedding and readout (theta != 0), so a coupled decay really moved there
    if mode == "coupled":
        assert conv.converted["readout"].weight_decay != conv.source["readout"].weight_decay


def test_no_decay_given_is_zero_decay_for_adamw_and_none_for_adam():
    assert {s.weight_decay for s in convert_setting(_req(weight_decay=None)).converted.layers} == {0.0}
    conv = convert_setting(_req(optimizer="adam", weight_decay=None))
    assert conv.weight_decay_mode is None and {s.weight_decay for s in conv.converted.layers} == {None}


@pytest.mark.parametrize("optimizer", ["adam", "adafactor"])
def test_decay_with_another_optimizer_is_refused_naming_the_field(optimizer):
    with pytest.raises(ValidationError) as exc:
        _req(optimizer=optimizer)
    (err,) = exc.value.errors()
    assert err["loc"] == ("weight_decay",) and f"{optimizer} has no weight decay that abcscale transfers" in err["msg"]
    assert _req(optimizer=optimizer, weight_decay=0.0).weight_decay == 0.0  # zero decay is no decay


def test_bad_mode_is_refused_naming_the_field():
    with pytest.raises(ValidationError) as exc:
        _req(weight_decay_mode="sometimes")
    assert [e["loc"] for e in exc.value.errors()] == [("weight_decay_mode",)]
