"""The tuner's search on a cheap synthetic objective (no runner), and the constants file's round trip through
``recommend`` (CLI and Python API)."""

from __future__ import annotations

import json
import math
import random

import pytest

import abcscale
from abcscale.cli import main
from abcscale.schemas.enums import LrMode
from abcscale.schemas.theory import Constants, PerLayer
from abcscale.schemas.tune import TunedConstants, TuneSettings
from abcscale.usecases.tune import REEVAL_SEED0, constants_from, load_constants, save_constants, search

pytest.importorskip("optuna")

OPTIMUM = {"beta": 1e-2, "gamma_embedding": 3.0, "gamma_readout": 0.1}


def noisy_bowl(noise: float, seen: list[int] | None = None):
    """A quadratic bowl in log10 of each parameter, minimum 0 at OPTIMUM, plus Gaussian noise per (point, seed)."""
    def evaluate(params: dict[str, float], seed: int) -> float:
        if seen is not None:
            seen.append(seed)
        # seeded by the text, not hash(): a string's hash differs per process (PYTHONHASHSEED), so each worker drew
        # other noise and a failure could not be replayed (session 80's review: 201 hash seeds, worst 0.28 of 0.4)
        rng = random.Random(repr((seed, *sorted(params.items()))))
        bowl = sum(math.log10(params[k] / v) ** 2 for k, v in OPTIMUM.items())
        return bowl + rng.gauss(0.0, noise)
    return evaluate


def test_search_finds_a_known_optimum_under_noise():
    settings = TuneSettings(trials=80, reeval_seeds=4, top=3, sampler_seed=1)
    seen: list[int] = []
    result = search(settings.space(), noisy_bowl(0.05, seen), settings)
    for k, v in OPTIMUM.items():  # within 0.4 decades of each optimum (a bowl value of 0.16 per parameter)
        assert abs(math.log10(result.best.params[k] / v)) < 0.4, (k, result.best.params[k])
    assert len(result.history) == 80 and len(result.candidates) == 3
    # the winner is chosen by the re-evaluation's mean over fresh seeds, not by its search loss
    assert result.best.mean == min(c.mean for c in result.candidates)
    assert sorted(set(s for s in seen if s >= REEVAL_SEED0)) == [REEVAL_SEED0 + i for i in range(4)]
    assert all(len(c.losses) == 4 and c.std > 0 for c in result.candidates)
    for k, (lo, hi) in result.near_best.items():
        assert lo <= result.best.params[k] <= hi


def test_the_same_seed_gives_the_same_search():
    settings = TuneSettings(trials=12, reeval_seeds=2, top=2)
    a, b = (search(settings.space(), noisy_bowl(0.05), settings) for _ in range(2))
    assert a.best.params == b.best.params


def test_median_pruning_stops_hopeless_trials_after_a_seed():
    settings = TuneSettings(trials=30, seeds=3, reeval_seeds=2, top=2)
    result = search(settings.space(), noisy_bowl(0.01), settings)
    pruned = [t for t in result.history if t.state == "PRUNED"]
    assert pruned and all(t.loss is None and t.seeds_run < 3 for t in pruned)


def test_constants_from_fills_the_searched_values_and_keeps_the_rest():
    base = Constants(init_scale=PerLayer(embedding=2.0, hidden=1.0, readout=0.5), epsilon=1e-6)
    c = constants_from({"beta": 0.1, "gamma_embedding": 4.0, "gamma_readout": 0.25, "multiplier_readout": 3.0}, base)
    assert c.gamma == PerLayer(embedding=4.0, hidden=1.0, readout=0.25)
    assert c.multiplier == PerLayer(embedding=1.0, hidden=1.0, readout=3.0)
    assert c.init_scale == base.init_scale and c.epsilon == 1e-6


def test_settings_space_covers_the_chosen_groups():
    space = TuneSettings(tune=["gamma", "epsilon"]).space()
    assert set(space) == {"beta", "gamma_embedding", "gamma_readout", "epsilon"}


def _tuned() -> TunedConstants:
    settings = TuneSettings(trials=3, reeval_seeds=2, top=1)
    res = search(settings.space(), noisy_bowl(0.05), settings)
    return TunedConstants(
        parameterization="mup", optimizer="adam", optimizer_variant="adam", alignment="full", lr_mode="per_layer",
        base_width=64, beta=res.best.params["beta"], constants=constants_from(res.best.params), loss=res.best.mean,
        loss_std=res.best.std, near_best=res.near_best, settings=settings, training={"model": "transformer"},
        elapsed_s=res.elapsed_s, trials_run=len(res.history), history=res.history, candidates=res.candidates,
        abcscale_version="test")


def test_the_constants_file_round_trips_through_recommend(tmp_path, capsys):
    tuned = _tuned()
    path = save_constants(tuned, tmp_path / "tuned.json")
    assert load_constants(path) == tuned
    explicit = abcscale.recommend("mup", "adam", width=1024, base_width=64, beta=tuned.beta,
                                  constants=tuned.constants)
    assert tuned.constants.gamma != PerLayer()  # the file's constants, not the defaults, reach the answer
    assert abcscale.recommend(width=1024, constants=path) == explicit
    assert abcscale.recommend(width=1024, constants=tuned) == explicit
    with pytest.raises(SystemExit) as exc:
        main(["recommend", "--constants", str(path), "-n", "1024", "--json"])
    assert exc.value.code in (0, None)
    assert json.loads(capsys.readouterr().out) == json.loads(explicit.model_dump_json())


def test_a_given_flag_overrides_the_file_and_a_constant_flag_is_an_error(tmp_path, capsys):
    path = save_constants(_tuned(), tmp_path / "tuned.json")
    assert abcscale.recommend(width=1024, constants=path, beta=0.5).layers == abcscale.recommend(
        "mup", "adam", width=1024, base_width=64, beta=0.5, constants=load_constants(path).constants).layers
    for argv, needle in [(["--gamma", "1,1,1"], "--gamma"), ([], "--constants")]:
        target = str(path) if argv else str(tmp_path / "missing.json")
        with pytest.raises(SystemExit) as exc:
            main(["recommend", "--constants", target, "-n", "1024", *argv])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and err.startswith(f"error: {needle}") and "Traceback" not in err
    with pytest.raises(ValueError, match="^constants: "):
        abcscale.recommend(width=1024, constants=tmp_path / "missing.json")


def test_parse_widths_takes_multiples_and_plain_widths():
    from abcscale.usecases.tune_verify import parse_widths

    assert parse_widths("2x, 4x,96", 16) == [32, 64, 96]
    for bad in ("", "1x", "abc", "1.5x"):  # none, not above the base, not a number, not whole (16 * 1.5 = 24 is)
        if bad == "1.5x":
            assert parse_widths(bad, 16) == [24]
            continue
        with pytest.raises(ValueError, match="^verify_widths: "):
            parse_widths(bad, 16)


def test_transfer_grid_centres_on_the_transferred_beta():
    from abcscale.theory.solver import solve_exponents
    from abcscale.usecases.tune_verify import transfer_grid

    tuned = _tuned().model_copy(update={"beta": 2.0 ** -7, "training": {"model": "mlp", "parameterizations": ["mup"],
                                                                        "optimizers": ["adam"]}})
    assert transfer_grid(tuned, 256, 5, 1.0) == [-9.0, -8.0, -7.0, -6.0, -5.0]  # per layer: the same beta
    glob = tuned.model_copy(update={"lr_mode": LrMode.global_})
    c = solve_exponents("mup", "adam", "full").global_c
    assert c != 0
    assert transfer_grid(glob, 256, 3, 0.5) == pytest.approx([-7.5 - 2 * c, -7 - 2 * c, -6.5 - 2 * c])


def test_compare_losses_pairs_seeds_and_gives_a_t_interval():
    from scipy import stats

    from abcscale.usecases.tune_verify import compare_losses

    grid = [-3.0, -2.0, -1.0]
    tuned = [[3.0, 3.1, 3.2], [2.0, 2.2, 2.1], [2.5, 2.6, 2.7]]  # best at -2 (mean 2.1)
    default = [[2.4, 2.5, 2.6], [2.3, 2.6, 2.4], [4.0, 4.0, 4.0]]  # best at -2 too (mean 2.433); -3 edge: 2.5
    res = compare_losses(tuned, default, grid, 64, 16)
    diff = [0.3, 0.4, 0.3]  # per seed, default minus tuned at each one's best
    half = stats.t.ppf(0.975, 2) * statistics_stdev(diff) / 3 ** 0.5
    assert res.difference == pytest.approx(sum(diff) / 3)
    assert res.interval == pytest.approx((res.difference - half, res.difference + half))
    assert res.tuned_wins is True and res.tuned_beta == res.default_beta == 0.25 and not res.tuned_at_edge
    assert res.ratio == 4 and res.tuned_loss == pytest.approx(2.1)
    # reversed: the defaults win; a noisy tie holds 0
    assert compare_losses(default, tuned, grid, 64, 16).tuned_wins is False
    tie = compare_losses([[1.0, 2.0, 1.5]], [[1.1, 1.8, 1.6]], [-2.0], 64, 16)
    assert tie.tuned_wins is None and tie.interval[0] < 0 < tie.interval[1] and tie.tuned_at_edge
    with pytest.raises(ValueError, match="^verify_seeds: "):
        compare_losses([[1.0]], [[1.1]], [-2.0], 64, 16)


def test_no_win_is_claimed_over_an_optimum_on_the_grids_edge():
    """A grid centred on the tuned beta left the defaults' optimum past its edge, and "tuned wins: yes" was
    printed while the defaults, at their own best LR, were better (session 31)."""
    from abcscale.usecases.tune_verify import compare_losses

    grid = [-3.0, -2.0, -1.0]
    tuned = [[3.0, 3.1, 3.2], [2.0, 2.2, 2.1], [2.5, 2.6, 2.7]]  # best inside, at -2
    default = [[2.4, 2.5, 2.6], [2.9, 2.8, 2.9], [4.0, 4.0, 4.0]]  # still falling at -3: its best is past the edge
    res = compare_losses(tuned, default, grid, 64, 16)
    assert res.interval[0] > 0 and res.default_at_edge and res.tuned_wins is None
    # the other way: the defaults beat a tuned optimum on the edge by the data, but not past it
    assert compare_losses(default, tuned, grid, 64, 16).tuned_wins is None
    # a loser inside the grid is beaten whatever the winner's place (past the edge it can only do better)
    edge_winner = [[1.0, 1.1, 1.2], [2.3, 2.4, 2.5], [3.0, 3.0, 3.0]]
    assert compare_losses(edge_winner, tuned, grid, 64, 16).tuned_wins is True
    assert compare_losses(tuned, edge_winner, grid, 64, 16).tuned_wins is False


def statistics_stdev(xs: list[float]) -> float:
    import statistics

    return statistics.stdev(xs)


def test_a_constants_file_with_a_transfer_check_round_trips(tmp_path):
    from abcscale.usecases.tune_verify import compare_losses

    check = compare_losses([[2.0, 2.1], [2.2, 2.3]], [[2.4, 2.45], [2.3, 2.5]], [-4.0, -3.0], 32, 16)
    tuned = _tuned().model_copy(update={"transfer": [check]})
    assert load_constants(save_constants(tuned, tmp_path / "t.json")).transfer == [check]


# --- abcscale check --constants FILE / constants_file ---------------------------------------------------------


def _check_run(tmp_path, tuned: TunedConstants, width: int = 1024) -> dict:
    """A planned run at ``width`` that follows the tuned constants' transfer (their recommendation's numbers)."""
    rec = abcscale.recommend(width=width, constants=tuned)
    return {"parameterization": "mup", "optimizer": "adam", "width": width,
            **{k: {s.layer.value: getattr(s, k) for s in rec.layers} for k in ("lr", "init_std", "multiplier",
                                                                               "epsilon")}}


def _far_tuned() -> TunedConstants:
    """A constants file whose LR constants are far from the defaults (so the reference visibly changes)."""
    gamma = PerLayer(embedding=8.0, hidden=1.0, readout=0.1)
    return _tuned().model_copy(update={"beta": 0.01, "constants": Constants(gamma=gamma)})


def _check(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(["check", *argv])
    out = capsys.readouterr()
    return exc.value.code or 0, out.out, out.err


def test_check_takes_the_constants_file_as_its_reference(tmp_path, capsys):
    path = save_constants(_far_tuned(), tmp_path / "tuned.json")
    cfg = tmp_path / "run.json"
    cfg.write_text(json.dumps(_check_run(tmp_path, _far_tuned())))  # no base_width, beta, constants: the file's
    code, out, _ = _check([str(cfg), "--constants", str(path), "--json"], capsys)
    assert code == 0 and json.loads(out)["ok"] is True
    # the same run against default constants (base width and beta given) fails on the embedding and readout LRs
    cfg.write_text(json.dumps(_check_run(tmp_path, _far_tuned()) | {"base_width": 64, "beta": 0.01}))
    code, out, _ = _check([str(cfg), "--json"], capsys)
    failed = json.loads(out)["failed"]
    assert code == 1 and {f.split(")")[0] + ")" for f in failed} == {"lr (embedding)", "lr (readout)"}, failed
    # the config's own key, relative to the config
    cfg.write_text(json.dumps(_check_run(tmp_path, _far_tuned()) | {"constants_file": "tuned.json"}))
    assert _check([str(cfg), "--json"], capsys)[0] == 0


def test_check_takes_the_setup_from_the_constants_file(tmp_path, capsys):
    """The file says what it was tuned for: a config without a parameterization, optimizer or alignment is read
    as the file's (until session 32 it was exit 2, "parameterization: missing")."""
    path = save_constants(_far_tuned(), tmp_path / "tuned.json")
    cfg = tmp_path / "run.json"
    run = {k: v for k, v in _check_run(tmp_path, _far_tuned()).items() if k not in ("parameterization", "optimizer")}
    cfg.write_text(json.dumps(run))
    code, out, _ = _check([str(cfg), "--constants", str(path), "--json"], capsys)
    assert code == 0 and json.loads(out)["ok"] is True
    cfg.write_text(json.dumps(run | {"constants_file": "tuned.json"}))
    assert _check([str(cfg), "--json"], capsys)[0] == 0
    # without a file, the setup is still required, by name
    cfg.write_text(json.dumps(run))
    code, _, err = _check([str(cfg)], capsys)
    assert code == 2 and "parameterization" in err and "Traceback" not in err
    # a file that does not read is named, not the keys it would have given
    cfg.write_text(json.dumps(run | {"constants_file": "nowhere.json"}))
    code, _, err = _check([str(cfg)], capsys)
    assert code == 2 and "constants_file: " in err and "nowhere.json" in err and "parameterization" not in err


@pytest.mark.parametrize(("extra", "needle"), [
    ({"alignment": "none"}, "alignment: the constants file was tuned for full"),
    ({"optimizer": "sgd"}, "optimizer: the constants file was tuned for adam"),
    ({"base_width": 32}, "base_width: the constants file was tuned for 64"),
    ({"gamma": "1,1,1"}, "constants: given in the config and by --constants"),
])
def test_check_with_a_clashing_constants_file_exits_2(extra, needle, tmp_path, capsys):
    path = save_constants(_far_tuned(), tmp_path / "tuned.json")
    cfg = tmp_path / "run.json"
    cfg.write_text(json.dumps(_check_run(tmp_path, _far_tuned()) | extra))
    code, _, err = _check([str(cfg), "--constants", str(path)], capsys)
    assert code == 2 and f"error: {needle}" in err and "Traceback" not in err
    code, _, err = _check([str(cfg), "--constants", str(tmp_path / "missing.json")], capsys)
    assert code == 2 and "--constants: " in err
