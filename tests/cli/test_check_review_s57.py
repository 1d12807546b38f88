"""Session 57: `check --fit` with a config in the mup form needs its base_width (microsoft/mup's readout multiplier
is base/width), used it, and then warned that base_width was "not used with a fit"."""

from __future__ import annotations

from abcscale.fitting import fit_table
from abcscale.fitting.synthetic import synthetic_sweep
from tests.usecases.test_check_service import GROUP, config, run_check


def test_a_mup_form_base_width_is_not_said_unused(tmp_path):
    fit = fit_table(synthetic_sweep((64, 128, 256, 512), exponent=0.0, lr_base=3e-3, base_width=64, seeds=2,
                                    group=GROUP), n_boot=50)
    path = tmp_path / "fit.json"
    path.write_text(fit.model_dump_json())
    base = {k: v for k, v in config().items() if k != "beta"}

    def unused(cfg: dict) -> list[str]:
        code, report = run_check(tmp_path, cfg, "--fit", str(path))
        assert code in (0, 1), report
        return [w for w in report["warnings"] if "not used with a fit" in w]

    assert unused({**base, "form": "mup"}) == []
    # in the abc form the fit gives the LR at every width: base_width is unused there, and said
    assert unused({**base, "form": "abc"}) == ["base_width: not used with a fit, which gives the LR at every width "
                                               "(the fit's base width is 64)"]
