"""Session 64's review of the Python API from a notebook: ``from_mup(...)`` itself given as ``constants`` reads as
its ``--json`` document does (it was "parameterization: required ... beta: required", naming what it held)."""

from __future__ import annotations

import pytest

import abcscale


def test_from_mup_itself_is_the_constants_its_document_is(tmp_path):
    imported = abcscale.from_mup("adam", base_width=256, lr=3e-3, init_std=[1.0, 0.0625, 0.0625])
    path = tmp_path / "imported.json"
    path.write_text(imported.model_dump_json())
    given = abcscale.recommend(width=4096, constants=imported)
    assert given.model_dump() == abcscale.recommend(width=4096, constants=path).model_dump()
    # and the numbers are the import's: every microsoft/mup group's lr is the imported one at the base width
    spelled = abcscale.recommend("mup", "adam", width=4096, constants=imported.constants)
    assert [s.lr for s in given.layers] == [s.lr for s in spelled.layers]
    at_base = abcscale.recommend(width=256, constants=imported, form="mup")
    assert all(s.mup_lr == pytest.approx(3e-3) for s in at_base.groups.roles if s.role.value != "fixed")
    with pytest.raises(ValueError, match="^parameterization: the constants are microsoft/mup's adam setup"):
        abcscale.recommend("sp", "adam", width=4096, constants=imported)
