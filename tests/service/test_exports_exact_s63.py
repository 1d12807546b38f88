"""Session 63, a second code review: the page's JSON downloads and ``mup_export`` computed the fixed and vector
roles' numbers from the target width's values, not from the base config at hand: 7.499999999999999e-10 beside
rec.groups' exact 7.5e-10 on the same page."""

from __future__ import annotations

from abcscale.schemas.api import AnalyticRecommend
from abcscale.schemas.groups import GroupSpec, Role
from abcscale.schemas.theory import BaseConfig
from abcscale.service.pages import exports
from abcscale.usecases.mup import mup_export
from abcscale.usecases.recommend import recommend

_REQ = AnalyticRecommend(parameterization="mup", optimizer="adam", width=5120, base=BaseConfig(width=384, beta=1e-3))


def test_the_pages_json_downloads_hold_the_answers_exact_numbers():
    rec = recommend(_REQ)
    assert rec.groups[Role.vector].epsilon == 7.5e-10 and rec.groups[Role.fixed].epsilon == 1e-8
    out = exports(_REQ, rec)
    for key in ("Multiplier-free groups (JSON)", "microsoft/mup groups (JSON)"):
        assert "7.499999999999999e-10" not in out[key] and "9.999999999999999e-09" not in out[key], key
    for key, form in (("Multiplier-free groups (JSON)", "multiplier_free"), ("microsoft/mup groups (JSON)", "mup")):
        spec = GroupSpec.model_validate_json(out[key])
        assert spec.form.value == form
        assert (spec[Role.vector].epsilon, spec[Role.fixed].epsilon) == (7.5e-10, 1e-8), key


def test_mup_export_holds_the_exact_base_numbers():
    dumped = mup_export(_REQ).model_dump_json()
    assert "7.499999999999999e-10" not in dumped and "9.999999999999999e-09" not in dumped
