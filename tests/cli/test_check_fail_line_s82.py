"""`abcscale check`'s FAIL line says each failure's ratio to the rule, as the global LR's did (``lr (global, 3
layers) too high (4x)``): ``lr (hidden) too high`` said by how much only in the table above it (a review, session
82). The JSON's ``failed`` is unchanged."""

from __future__ import annotations

import json

from tests.usecases.test_check_local import invoke, matching_config, write


def _fail_line(output: str) -> str:
    """The FAIL line, whatever the terminal's width folded it into: from "FAIL" to the end, spaces collapsed."""
    text = " ".join(output.split())
    return text[text.index("FAIL"):]


def test_the_fail_line_says_each_ratio(tmp_path):
    cfg = matching_config()
    cfg["lr"]["hidden"] *= 4
    cfg["epsilon"]["embedding"] *= 64
    res = invoke("check", write(tmp_path, cfg))
    assert res.exit_code == 1
    assert _fail_line(res.output) == \
        "FAIL: lr (hidden) too high (4x), epsilon (embedding) too high (64x)", res.output
    report = json.loads(invoke("check", write(tmp_path, cfg), "--json").stdout)
    assert report["failed"] == ["lr (hidden) too high", "epsilon (embedding) too high"]


def test_a_global_lrs_line_keeps_its_one_ratio(tmp_path):
    cfg = matching_config()
    cfg.update(lr=3e-3 * 4, lr_mode="global")
    for k in ("init_std", "multiplier", "epsilon"):
        cfg.pop(k)
    res = invoke("check", write(tmp_path, cfg))
    assert res.exit_code == 1, res.output
    line = _fail_line(res.output)
    assert line.startswith("FAIL: lr (global, 3 layers) too high (") and line.count("x)") == 1, res.output
