"""Fits and service databases written by earlier abcscale versions, read by today's code (session 71 review).

"Nothing a user gave us is lost": a ``fit.json`` or a service database an older abcscale wrote must load, predict,
recommend and check with today's code and give the numbers that version gave, or be refused with a message that
says why and what to do. The fixtures in ``tests/data/old_fits_s71/`` were written by the old versions themselves
(``git archive COMMIT``, installed alone with ``pip install --no-deps --target``, run with that copy first on
PYTHONPATH); see that folder's README.md. The expected numbers below are what those versions answered (their own
``fit --target-width``, ``recommend --fit``, ``check --fit`` and REST ``/v1/recommend``), recorded as data with
the commit that produced them: they are not today's output copied back.

Commits: b64dbf6 (0.1.0, the last before 0.2.0's interval-key renames), 7bd72f6 (release 0.2.0: the last commit
before the CHANGELOG's "Unreleased" section opened), 2852c17, 7aeadb2, 7c88528 (development builds between).
The SQLite fixtures are named ``*.sqlite`` because the repository's .gitignore drops ``*.db``.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

import abcscale
from abcscale.cli import app
from abcscale.service.app import create_app
from abcscale.service.config import Settings
from abcscale.usecases.recommend import recommend_from_fit

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's note on its TestClient, as tests/service/conftest.py
    from fastapi.testclient import TestClient

DATA = Path(__file__).resolve().parent / "data" / "old_fits_s71"
#: relative tolerance: a 0.2.0 fit's band is recomputed today from its stored law with a different operation
#: order (3e-16 apart, one or two ulps); everything newer reproduces bit for bit
REL = 1e-12

# --- what the old versions answered -----------------------------------------------------------------------------
# (parameterization, lr_mode, width) -> (LR*, 95% band), from that commit's `abcscale fit
# examples/tour-sweep.parquet --target-width W` (W = 1024 is the fixture file's own target; 4096 a second run)
OLD_TOUR_PREDICTIONS: dict[str, dict[tuple[str, str, int], tuple[float, tuple[float, float]]]] = {
    "7bd72f6": {
        ("mup", "global", 1024): (0.010234112166693458, (0.0038805733720613414, 0.026990097029096292)),
        ("mup", "per_layer", 1024): (0.024780634401793972, (0.007051780267971463, 0.08708153374325474)),
        ("standard", "global", 1024): (0.0018404381535416679, (0.0006264608325245476, 0.005406902428938585)),
        ("standard", "per_layer", 1024): (0.08403790273318704, (0.03175138621863584, 0.22242711065154977)),
        ("mup", "global", 4096): (0.007604376159664082, (0.0018695893838797794, 0.030930073349938254)),
        ("mup", "per_layer", 4096): (0.025804542041109747, (0.003963095882778223, 0.16801874333774802)),
        ("standard", "global", 4096): (0.0006169641269271423, (0.00012513167524263078, 0.0030419534716281827)),
        ("standard", "per_layer", 4096): (0.13243240159333333, (0.031625659526637984, 0.5545604820353406)),
    },
    "7aeadb2": {
        ("mup", "global", 1024): (0.004248738203774591, (0.0017874119310916817, 0.010099393435954306)),
        ("mup", "per_layer", 1024): (0.022683767405652443, (0.011603861663909977, 0.04434328145380173)),
        ("standard", "global", 1024): (0.0018369342035330417, (0.0007599789974634332, 0.004440026999919728)),
        ("standard", "per_layer", 1024): (0.03976366588266985, (0.018541765215845, 0.08527500515848511)),
        ("mup", "global", 4096): (0.0019538512646791266, (0.0005447270548519137, 0.007008160748553297)),
        ("mup", "per_layer", 4096): (0.02234132744340235, (0.008275154502927654, 0.06031729217342527)),
        ("standard", "global", 4096): (0.0006166311880366164, (0.00016688376357789893, 0.0022784362834791967)),
        ("standard", "per_layer", 4096): (0.04314219667056246, (0.01418842011138665, 0.13118085868262244)),
    },
}

# that commit's `abcscale recommend --fit FIXTURE -n 1024 --group parameterization=P,lr_mode=M --json`: each
# layer's (lr, multiplier, init_std, epsilon)
_MUP_1024_SHAPE = {"embedding": (32.0, 0.03125, 1.767766952966369e-09), "hidden": (1.0, 0.03125, 3.125e-10),
                   "readout": (0.03125, 0.03125, 1.767766952966369e-09)}
_SP_1024_SHAPE = {"embedding": (1.0, 1.0, 1.767766952966369e-09), "hidden": (1.0, 0.03125, 1.767766952966369e-09),
                  "readout": (1.0, 0.03125, 1e-08)}
_OLD_LAYER_LRS = {("7bd72f6", "mup", "per_layer"): (0.0043806386569032905, 0.0007743948250560616),
                  ("7bd72f6", "standard", "global"): (0.0018404381535416679, 0.0018404381535416679),
                  ("7aeadb2", "mup", "per_layer"): (0.004009961438848806, 0.0007088677314266388),
                  ("7aeadb2", "standard", "global"): (0.0018369342035330417, 0.0018369342035330417)}
# (embedding and readout share one LR in both setups; the second number is the hidden layer's)
OLD_RECOMMEND_1024: dict[tuple[str, str, str], dict[str, tuple[float, float, float, float]]] = {
    key: {layer: (hidden if layer == "hidden" else outer,
                  *(_MUP_1024_SHAPE if key[1] == "mup" else _SP_1024_SHAPE)[layer])
          for layer in ("embedding", "hidden", "readout")}
    for key, (outer, hidden) in _OLD_LAYER_LRS.items()}

# 7c88528's `abcscale fit examples/axes.csv --size-col N --size-kind params --covariates D,batch_size
# --target-size S --at ...`: the joint law's LR* and 95% band (2e9 is the fixture's own target; 7e9 a second run)
OLD_AXES_PREDICTIONS = {
    (2e9, 4e10, 64.0): (0.00023382251892941857, (0.00018560992485060977, 0.00029455844240281045)),
    (7e9, 1e11, 256.0): (0.00013015848364170165, (9.505096253244815e-05, 0.00017823313317972747)),
}

# 7aeadb2's `abcscale check CONFIG --fit FIXTURE --json` on the config below with the hidden LR 7.1e-4 (exit 0) and
# 3e-3 (exit 1): each layer's LR ratio to the fit's recommendation
CHECK_CONFIG = """name: mup-adam-1024
parameterization: mup
optimizer: adam
alignment: full
lr_mode: per_layer
width: 1024
base_width: 32
beta: 0.0227
lr:
  embedding: 4.0e-3
  hidden: {hidden}
  readout: 4.0e-3
"""
OLD_CHECK = {"7.1e-4": (0, {"embedding": 0.997515826772722, "hidden": 1.001597291741694, "readout": 0.997515826772722}),
             "3.0e-3": (1, {"embedding": 0.997515826772722, "hidden": 4.232101232711384, "readout": 0.997515826772722})}

# the old services' databases, one fit each: the tour's mup/adam/per-layer rows posted as JSON rows (eval_loss)
# id, the stored exponent (estimate, 95% interval), and that service's POST /v1/recommend at width 8192: band
# (lr, ci95) and each layer's LR
OLD_DB = {
    "7bd72f6": {"id": "66f673a61cf34863b9e3780bc8d7fc94",
                "exponent": (0.07516290376210621, (-0.2976893981745006, 0.448015205698713)),
                "band": (0.0336402044348397, (0.00631278418730918, 0.17926533219571042)),
                "layers": {"embedding": 0.002102512777177481, "hidden": 0.00013140704857359257,
                           "readout": 0.002102512777177481}},
    "2852c17": {"id": "673bc36b2ba24409b445f5b55e55cea5",
                "exponent": (0.07586167569630309, (-0.3059534145287442, 0.45767676592135037)),
                "band": (0.029637093179031102, (0.01222812969103714, 0.07183087800797386)),
                "layers": {"embedding": 0.0018523183236894439, "hidden": 0.00011576989523059024,
                           "readout": 0.0018523183236894439}},
}


def _close(a: float, b: float) -> bool:
    return a == b or abs(a - b) <= REL * max(abs(a), abs(b))


def _fit_file(commit: str) -> Path:
    return DATA / f"fit-{commit}-tour.json"


@pytest.mark.parametrize("commit, key", [(c, k) for c, table in OLD_TOUR_PREDICTIONS.items() for k in table],
                         ids=lambda v: v if isinstance(v, str) else "-".join(map(str, v)))
def test_an_old_fit_predicts_what_its_version_did(commit, key):
    param, mode, width = key
    lr, (low, high) = OLD_TOUR_PREDICTIONS[commit][key]
    got = abcscale.predict(abcscale.load_fit(_fit_file(commit)), width,
                           group={"parameterization": param, "lr_mode": mode})
    assert _close(got.lr, lr), (got.lr, lr)
    assert _close(got.ci95[0], low) and _close(got.ci95[1], high), (got.ci95, (low, high))


@pytest.mark.parametrize("commit", sorted(OLD_TOUR_PREDICTIONS))
def test_the_cli_predicts_an_old_fit_as_its_version_did(commit):
    r = CliRunner().invoke(app, ["predict", str(_fit_file(commit)), "--size", "4096", "--group",
                                 "parameterization=mup,lr_mode=per_layer", "--json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)["prediction"]
    lr, (low, high) = OLD_TOUR_PREDICTIONS[commit][("mup", "per_layer", 4096)]
    assert _close(got["lr"], lr) and _close(got["ci95"][0], low) and _close(got["ci95"][1], high)


@pytest.mark.parametrize("commit, param, mode", sorted(OLD_RECOMMEND_1024))
def test_an_old_fit_recommends_what_its_version_did(commit, param, mode):
    rec = recommend_from_fit(abcscale.load_fit(_fit_file(commit)), 1024,
                             selector={"parameterization": param, "lr_mode": mode})
    want = OLD_RECOMMEND_1024[(commit, param, mode)]
    got = {str(s.layer.value if hasattr(s.layer, "value") else s.layer): s for s in rec.layers}
    assert set(got) == set(want)
    for layer, (lr, multiplier, init_std, epsilon) in want.items():
        s = got[layer]
        assert _close(s.lr, lr) and _close(s.multiplier, multiplier) and _close(s.init_std, init_std), (layer, s)
        assert s.epsilon is not None and _close(s.epsilon, epsilon), (layer, s)


@pytest.mark.parametrize("hidden", sorted(OLD_CHECK))
def test_check_gates_an_old_fit_as_its_version_did(tmp_path, hidden):
    config = tmp_path / "run.yaml"
    config.write_text(CHECK_CONFIG.format(hidden=hidden))
    r = CliRunner().invoke(app, ["check", str(config), "--fit", str(_fit_file("7aeadb2")), "--json"])
    exit_code, ratios = OLD_CHECK[hidden]
    assert r.exit_code == exit_code, r.output
    got = {c["layer"]: c["ratio"] for c in json.loads(r.stdout)["checks"] if c["setting"] == "lr"}
    assert got.keys() == ratios.keys() and all(_close(got[k], v) for k, v in ratios.items()), got


@pytest.mark.parametrize("point", sorted(OLD_AXES_PREDICTIONS))
def test_an_old_covariate_fit_predicts_what_its_version_did(point):
    size, tokens, batch = point
    lr, (low, high) = OLD_AXES_PREDICTIONS[point]
    got = abcscale.predict(abcscale.load_fit(DATA / "fit-7c88528-axes.json"), size,
                           at={"D": tokens, "batch_size": batch})
    assert _close(got.lr, lr) and _close(got.ci95[0], low) and _close(got.ci95[1], high), got


def test_a_0_1_0_fit_is_read_or_refused_saying_why_and_what_to_do(tmp_path):
    """0.2.0 renamed every interval key (CHANGELOG "## 0.2.0": ``ci95: [low, high]`` -> ``ci: {low, high,
    confidence_level}``; "at the default level every number is the same"). A 0.1.0 fit.json holds
    ``provenance.abcscale_version: "0.1.0"``, so today's code can convert it or say that it is a 0.1.0 fit and to
    refit the table. Seen failing at 7d36013 and after: "fit: ... is not a FitResult (groups.0.exponent.ci: Field
    required and 16 more)", which names neither the version nor the remedy."""
    path = tmp_path / "fit.json"  # a name of its own: the fixture's name says 0.1.0, which the message must say
    shutil.copyfile(DATA / "fit-b64dbf6-0.1.0-own.json", path)
    old = json.loads(path.read_text())
    assert old["provenance"]["abcscale_version"] == "0.1.0"
    try:
        fit = abcscale.load_fit(path)
    except ValueError as exc:
        message = str(exc)
        assert "0.1.0" in message and "abcscale fit" in message, message
        return
    stored = old["groups"][0]["prediction"]  # 0.1.0's own answer at its target width, 1024
    got = abcscale.predict(fit, 1024)
    assert _close(got.lr, stored["lr"]) and _close(got.ci95[0], stored["ci95"][0])


def _data_dir(tmp_path: Path, commit: str) -> Path:
    """A copy of an old service's data folder (its database; its plot cache where the fixture has one)."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copyfile(DATA / f"db-{commit}.sqlite", data / "abcscale.db")
    if (plots := DATA / f"db-{commit}-plots").is_dir():
        shutil.copytree(plots, data / "plots")
    return data


def _client(data: Path) -> TestClient:
    # plot_wait_s: a first plot GET waits for its render rather than answering 202 (as tests/service/conftest.py)
    return TestClient(create_app(Settings(data_dir=data, database_url=None, api_token=None, plot_wait_s=120)))


@pytest.mark.parametrize("commit", sorted(OLD_DB))
def test_an_old_services_database_serves_its_fit_as_that_version_did(tmp_path, commit):
    old = OLD_DB[commit]
    data = _data_dir(tmp_path, commit)
    with _client(data) as c:
        listed = c.get("/v1/fits").json()
        assert [f["id"] for f in listed["data"]] == [old["id"]] and listed["count"] == 1
        r = c.get(f"/v1/fits/{old['id']}")
        assert r.status_code == 200, r.text
        exponent = r.json()["result"]["groups"][0]["exponent"]
        estimate, (low, high) = old["exponent"]
        assert exponent["estimate"] == estimate and (exponent["ci"]["low"], exponent["ci"]["high"]) == (low, high)
        r = c.post("/v1/recommend", json={"parameterization": "mup", "optimizer": "adam", "lr_mode": "per_layer",
                                          "width": 8192, "fit_id": old["id"]})
        assert r.status_code == 200, r.text
        rec = r.json()
        lr, (b_low, b_high) = old["band"]
        assert _close(rec["band"]["lr"], lr) and _close(rec["band"]["ci95"][0], b_low)
        assert _close(rec["band"]["ci95"][1], b_high)
        assert {s["layer"]: s["lr"] for s in rec["layers"]} == pytest.approx(old["layers"], rel=REL)
        r = c.post(f"/v1/fits/{old['id']}/predict", json={"size": 8192})
        assert r.status_code == 200 and _close(r.json()["prediction"]["lr"], lr), r.text
        rows = c.get(f"/v1/fits/{old['id']}/rows.csv")
        assert rows.status_code == 200 and len(rows.text.strip().splitlines()) == 1 + 110  # header + every row
    with sqlite3.connect(data / "abcscale.db") as db:  # upgraded in place: 0.2.0's file had no alembic_version
        tables = {t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"alembic_version", "idempotency_keys", "fits", "fit_inputs"} <= tables
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("0002",)]


def test_a_plot_an_older_version_could_not_draw_is_drawn_today(tmp_path):
    """2852c17's service could not draw a fit whose ``parameterization``/``optimizer``/``lr_mode`` came as request
    fields (fixed at 1a99694: "plots of a fit whose parameterization/optimizer/lr_mode came with the request were a
    404"), and cached why in ``plots/ID/unavailable.txt``. The cache has no version, so today's server, which draws
    that fit (a fresh cache: 200), serves the old failure for ever. Seen failing at 7d36013 and after: 404 "Plot not
    available for this fit: the table's groups are not the fit's"."""
    fid = OLD_DB["2852c17"]["id"]
    data = _data_dir(tmp_path, "2852c17")
    assert (data / "plots" / fid / "unavailable.txt").is_file()  # the old version's cached failure
    with _client(data) as c:
        r = c.get(f"/v1/fits/{fid}/plots/loss_vs_lr.png")
        assert r.status_code == 200 and r.content.startswith(b"\x89PNG"), r.text[:300]


def test_an_unreadable_stored_fit_plot_says_why_as_its_get_does(tmp_path):
    """A stored fit today's schema cannot read (0.1.0's result JSON in a database, as a 0.1.0 service stored it) is
    a 409 on GET naming the remedy (its rows.csv, fit them again). Its plot answered a 404 whose detail is pydantic's
    whole report: 15,784 bytes for the tour's 0.1.0 fit, 68 errors, each with its input and an errors.pydantic.dev
    URL. Seen failing at 7d36013 and after."""
    fid = OLD_DB["7bd72f6"]["id"]
    data = _data_dir(tmp_path, "7bd72f6")
    with sqlite3.connect(data / "abcscale.db") as db:
        db.execute("UPDATE fits SET result_json = ? WHERE id = ?",
                   ((DATA / "fit-b64dbf6-0.1.0-own.json").read_text(), fid))
    with _client(data) as c:
        got = c.get(f"/v1/fits/{fid}")
        assert got.status_code == 409 and "rows.csv" in got.json()["detail"], got.text
        assert "written by abcscale 0.1.0" in got.json()["detail"], got.text  # which version wrote it (session 71)
        plot = c.get(f"/v1/fits/{fid}/plots/loss_vs_lr.png")
        detail = plot.json()["detail"]
        assert plot.status_code in (404, 409) and "pydantic" not in detail and len(detail) < 1000, detail[:300]
