"""Session 35's findings: a rule's unknown role is refused with the roles and their aliases (``output`` is
accepted, so the message says so) on every path: REST, the Python API and a rules file."""

from __future__ import annotations

import pytest

from abcscale.schemas.groups import GroupRule, Role
from abcscale.usecases.recommend import parse_rules, read_rules

EXAMPLE = {"parameterization": "mup", "optimizer": "adamw", "width": 4096,
           "base": {"width": 256, "beta": 0.003}}


def test_rest_names_the_rule_and_the_aliases(client):
    r = client.post("/v1/recommend", json={**EXAMPLE, "rules": [{"pattern": "lm_head", "role": "outptu"}]})
    assert r.status_code == 422, r.text
    text = r.text
    assert "rules" in text and "'outptu'" in text and "output=readout" in text and "bias=vector" in text
    assert "Value error" not in text
    ok = client.post("/v1/recommend", json={**EXAMPLE, "rules": [{"pattern": "lm_head", "role": "Output"}]})
    assert ok.status_code == 200, ok.text


def test_python_and_files_say_the_same(tmp_path):
    with pytest.raises(ValueError, match=r"rules\[0\]: role: unknown role 'outptu'.*output=readout"):
        parse_rules({"lm_head": "outptu"})
    path = tmp_path / "rules.yaml"
    path.write_text("- {pattern: lm_head, role: outptu}\n")
    with pytest.raises(ValueError, match=r"rules.yaml.*output=readout"):
        read_rules(path)
    assert parse_rules([("lm_head", "output")]) == (GroupRule(pattern="lm_head", role=Role.readout),)
