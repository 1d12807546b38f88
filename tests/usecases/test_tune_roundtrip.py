"""One constants file, four readers: ``recommend`` (Python and CLI), ``POST /v1/recommend`` with ``tuned``, and the
exports (``abcscale.torch``, ``abcscale.optax``) all give the same answer at the same width."""

from __future__ import annotations

import json
import warnings

import pytest

import abcscale
from abcscale import torch as abctorch
from abcscale.cli import main
from abcscale.service.app import create_app
from abcscale.service.config import Settings
from abcscale.usecases.tune import load_constants, save_constants
from tests.test_exports import GPT, _flax_tree, _Model
from tests.usecases.test_tune import _tuned

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

WIDTH = 1024


@pytest.fixture
def file(tmp_path):
    path = save_constants(_tuned(), tmp_path / "tuned.json")
    assert load_constants(path).constants.gamma.readout != 1.0  # the file's constants, not the defaults
    return path


@pytest.fixture
def client(tmp_path):
    with TestClient(create_app(Settings(data_dir=tmp_path / "svc", database_url=None, api_token=None))) as c:
        yield c


@pytest.mark.parametrize("form", ["abc", "multiplier_free", "mup"])
def test_the_service_takes_the_file_as_it_is(file, client, capsys, form):
    rec = abcscale.recommend(width=WIDTH, constants=file, form=form)
    r = client.post("/v1/recommend", json={"tuned": json.loads(file.read_text()), "width": WIDTH, "form": form})
    assert r.status_code == 200, r.text
    assert r.json() == json.loads(rec.model_dump_json())
    with pytest.raises(SystemExit) as exc:
        main(["recommend", "--constants", str(file), "-n", str(WIDTH), "--form", form, "--json"])
    assert exc.value.code in (0, None) and json.loads(capsys.readouterr().out) == r.json()


def test_the_torch_export_takes_the_file(file):
    spec = abcscale.recommend(width=WIDTH, constants=file, form="multiplier_free").groups
    model = _Model({k: tuple(WIDTH if d == 256 else 4 * WIDTH if d == 1024 else d for d in s)
                    for k, s in GPT.items()})
    by_file, by_spec = abctorch.param_groups(model, file, width=WIDTH), abctorch.param_groups(model, spec)
    assert [(g["name"], g["lr"], g.get("eps")) for g in by_file] == [(g["name"], g["lr"], g.get("eps"))
                                                                      for g in by_spec]
    assert {g["name"]: g["lr"] for g in by_file}["readout"] == spec["readout"].lr
    assert abctorch.multipliers(model, file, width=WIDTH) == abctorch.multipliers(model, spec) == {}
    mup = abcscale.recommend(width=WIDTH, constants=file, form="mup").groups
    assert abctorch.multipliers(model, load_constants(file), width=WIDTH, form="mup") == abctorch.multipliers(
        model, mup)


def test_the_optax_export_takes_the_file(file):
    pytest.importorskip("jax")
    from abcscale import optax as abcoptax

    spec = abcscale.recommend(width=256, constants=file, form="multiplier_free").groups
    params = _flax_tree()
    assert abcoptax.lr_tree(file, params, width=256) == abcoptax.lr_tree(spec, params)
    assert abcoptax.init_std_tree(file, params, width=256) == abcoptax.init_std_tree(spec, params)
    assert abcoptax.labels(file, params, width=256) == abcoptax.labels(spec, params)
    tx = abcoptax.transform(file, params, width=256)
    assert tx.update is not None


def test_a_file_without_width_or_a_spec_with_another_is_a_value_error_naming_width(file):
    model = _Model(GPT)
    with pytest.raises(ValueError, match="^width: a constants file needs"):
        abctorch.param_groups(model, file)
    spec = abcscale.recommend(width=WIDTH, constants=file).groups
    with pytest.raises(ValueError, match="^width: the spec is for width 1024"):
        abctorch.init_(model, spec, width=2048)
    with pytest.raises(ValueError, match="missing.json"):
        abctorch.param_groups(model, file.with_name("missing.json"), width=WIDTH)


@pytest.mark.parametrize(("patch", "needle"), [
    ({"base": {"width": 64, "beta": 1e-3}}, "give exactly one of"),
    ({"tuned": {"parameterization": "mup"}}, "kind"),
    ({"tuned": "tuned.json"}, "tuned"),
])
def test_bad_tuned_bodies_are_422_naming_the_field(file, client, patch, needle):
    body = {"tuned": json.loads(file.read_text()), "width": WIDTH, **patch}
    r = client.post("/v1/recommend", json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert needle in detail["msg"] or needle in map(str, detail["loc"]), detail
