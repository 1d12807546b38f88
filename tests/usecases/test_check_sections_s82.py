"""A config's own section named like one of the schema's keys (a team's `mup:` table of its base settings, Hydra's
`optimizer: {_target_: ...}`) that a map leaves unmapped is read as the schema's key, from the top level, as the
README says: its problems now say so and how to get out of it, where "mup.lr: missing" and "optimizer: Input should
be 'sgd', ..." said nothing of why (a review, session 82)."""

from __future__ import annotations

import yaml

from tests.usecases.test_check_local import invoke

HINT = "the config's own '{key}' section was read as abcscale's '{key}'"


def _run(tmp_path, config: dict, maps: list[str]) -> tuple[int, str]:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    res = invoke("check", path, *[a for m in maps for a in ("--map", m)])
    return res.exit_code, " ".join(res.output.split())


def test_a_teams_mup_section_is_said_as_read(tmp_path):
    config = {"model": {"D": 1024}, "opt": {"peak_lr": 7.5e-4}, "mup": {"base_D": 256, "base_lr": 3e-3}}
    code, out = _run(tmp_path, config, ["width=model.D,lr=opt.peak_lr,base_width=mup.base_D,beta=mup.base_lr"])
    assert code == 2 and HINT.format(key="mup") in out, out


def test_hydras_optimizer_section_is_said_as_read(tmp_path):
    config = {"model": {"d_model": 1024}, "optimizer": {"_target_": "torch.optim.AdamW", "lr": 7.5e-4},
              "parameterization": "mup", "base_width": 256, "beta": 3e-3, "lr_mode": "global"}
    code, out = _run(tmp_path, config, ["width=model.d_model,lr=optimizer.lr"])
    assert code == 2 and HINT.format(key="optimizer") in out, out


def test_a_section_mapped_away_or_a_good_config_has_no_hint(tmp_path):
    config = {"model": {"d_model": 1024}, "optimizer": {"name": "adam", "lr": 7.5e-4},
              "parameterization": "mup", "base_width": 256, "beta": 3e-3, "lr_mode": "global"}
    code, out = _run(tmp_path, config, ["width=model.d_model,lr=optimizer.lr,optimizer=optimizer.name"])
    assert code in (0, 1) and "section was read as" not in out, out
    bad = {**config, "beta": -1.0}  # a problem elsewhere: no hint for a section that was mapped away
    code, out = _run(tmp_path, bad, ["width=model.d_model,lr=optimizer.lr,optimizer=optimizer.name"])
    assert code == 2 and "section was read as" not in out, out


def test_the_schemas_own_table_with_a_bad_value_has_no_hint(tmp_path):
    # `lr: {hidden: ...}` is abcscale's per-layer table, read as meant: its bad value is said alone
    config = {"model": {"d_model": 1024}, "lr": {"embedding": 3e-3, "hidden": -1.0, "readout": 3e-3},
              "parameterization": "mup", "optimizer": "adam", "base_width": 256, "beta": 3e-3}
    code, out = _run(tmp_path, config, ["width=model.d_model"])
    assert code == 2 and "lr.hidden" in out and "section was read as" not in out, out
