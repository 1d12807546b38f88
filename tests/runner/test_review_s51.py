"""The fusion-emitters knob keys a cell only where it changes a run (session 49's "noticed and left"): jax >= 0.11's
XLA has no such option, so `ABCSCALE_XLA_FUSION_EMITTERS=off` trained the same runs under a new key, and a
folder swept without it was trained again."""

from __future__ import annotations

import abcscale.runner.train as train


def test_the_emitters_knob_keys_a_cell_only_where_it_takes_effect(tiny_spec, monkeypatch):
    monkeypatch.delenv("ABCSCALE_XLA_OPT_LEVEL", raising=False)
    monkeypatch.delenv("ABCSCALE_XLA_FUSION_EMITTERS", raising=False)
    cell = tiny_spec.cells()[0]
    plain = cell.key(tiny_spec, "h")
    monkeypatch.setenv("ABCSCALE_XLA_FUSION_EMITTERS", "off")
    monkeypatch.setattr(train, "OLDER_EMITTERS", {"xla_cpu_use_fusion_emitters": False})  # jax < 0.11
    assert cell.key(tiny_spec, "h") != plain  # other fusions: other runs
    monkeypatch.setattr(train, "OLDER_EMITTERS", {})  # jax >= 0.11: the option does not exist
    assert cell.key(tiny_spec, "h") == plain
    monkeypatch.setenv("ABCSCALE_XLA_OPT_LEVEL", "0")  # the other knob still keys
    assert cell.key(tiny_spec, "h") != plain
