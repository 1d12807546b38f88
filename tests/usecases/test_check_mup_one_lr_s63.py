"""A mup table's one lr (what MuAdam gives every group) off by 10x was five failure lines, one per group it reaches
(session 62's note); it is one failure, as a global lr's is, and per-group lrs keep one line each (session 63)."""

from __future__ import annotations

import pytest

from abcscale.usecases.check import CheckConfig, compare, recommendation


def _report(lr):
    cfg = CheckConfig.model_validate({"optimizer": "MuAdam", "width": 4096, "beta": 0.003,
                                      "mup": {"base_width": 256, "lr": lr, "init_std": 0.02, "epsilon": 1e-8}})
    return compare(cfg, recommendation(cfg), config_name="run.yaml")


@pytest.mark.parametrize(("lr", "verdict"), [(0.03, "too high"), (0.0003, "too low")])
def test_one_lr_off_is_one_failure(lr, verdict):
    report = _report(lr)
    assert not report.ok
    assert sum(c.setting == "lr" and not c.ok for c in report.checks) == 5  # every group's row still says it
    assert report.failed == [f"lr (mup's one lr, 5 groups) {verdict} (10x)" if verdict == "too high"
                             else f"lr (mup's one lr, 5 groups) {verdict} (0.1x)"]


def test_per_group_lrs_keep_a_line_each():
    report = _report({"embedding": 0.03, "hidden": 0.03, "readout": 0.003, "vector": 0.003})
    assert report.failed == ["lr (embedding) too high", "lr (hidden) too high"]
    assert _report(0.003).ok
