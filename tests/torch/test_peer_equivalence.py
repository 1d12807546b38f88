"""The peer benchmark's PyTorch + microsoft/mup transformer trains as the runner does (``make test-torch``).

The runner's side runs in the main venv (this one has no JAX): tests/benchmarks/peer/jax_reference.py trains
one run at width 64 (r = 2 over the base 32, so mup's width scaling is exercised) and writes its initial
parameters, its 100 training windows and its loss curve. The peer loads those parameters through its muP map,
trains on the same windows, and its per-step losses must agree. Float32 on both sides, different kernels and
summation orders: measured max |delta loss| 1e-5 to 3e-5 (a relative 1e-5; about 5 ulps of the loss), not
growing over the 100 steps, so the test allows a relative 2e-5 at any step and 1e-5 on average. The
same model under plain Adam (no mup scaling) misses by orders of magnitude more, so the check can fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mup")

from tests.benchmarks.peer import mup_sweep as peer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MAIN_PY = Path(os.environ.get("ABCSCALE_MAIN_PYTHON", ROOT / ".venv" / "bin" / "python"))
WIDTH, LOG2_LR = 64, -6.0


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, np.ndarray]:
    if not MAIN_PY.exists():
        pytest.skip(f"no main venv at {MAIN_PY} (make install, or set ABCSCALE_MAIN_PYTHON)")
    out = tmp_path_factory.mktemp("peer") / "ref.npz"
    env = os.environ | {"ABCSCALE_XLA_OPT_LEVEL": "0", "ABCSCALE_JAX_CACHE": str(out.parent / "jax")}
    subprocess.run([str(MAIN_PY), str(ROOT / "tests/benchmarks/peer/jax_reference.py"), "--width", str(WIDTH),
                    "--log2-lr", str(LOG2_LR), "--out", str(out)], check=True, env=env, cwd=ROOT)
    with np.load(out) as z:
        return {k: z[k] for k in z.files}


def test_the_peer_has_the_runners_parameters(reference):
    model = peer.build(peer.Config(width=WIDTH), seed=0)
    shapes = {k.removeprefix("param:"): v.shape for k, v in reference.items() if k.startswith("param:")}
    assert sum(p.numel() for p in model.parameters()) == int(reference["n_params"]) == sum(
        int(np.prod(s)) for s in shapes.values())
    assert len(list(model.parameters())) == len(shapes)


def _train(ref: dict[str, np.ndarray], plain_adam: bool = False) -> peer.RunResult:
    from abcscale.runner.data import load_corpus

    torch.set_num_threads(2)
    cfg = peer.Config(width=WIDTH)
    model = peer.build(cfg, seed=0)
    peer.load_runner_params(model, {k.removeprefix("param:"): v for k, v in ref.items() if k.startswith("param:")})
    windows = torch.from_numpy(ref["windows"].astype(np.int64))
    evals = peer.eval_windows(load_corpus("default", 2_000_000, 0.1, cfg.seq_len + 2).eval, cfg)
    # the control: the same start and data, torch.optim.Adam at beta on every layer
    plain = (lambda m, beta: torch.optim.Adam(m.parameters(), lr=beta, eps=peer.EPS)) if plain_adam else None
    return peer.train(model, 2.0**LOG2_LR, cfg, lambda s: windows[s], evals, make_optimizer=plain)


def test_the_peer_follows_the_runners_loss_curve_from_the_same_start(reference):
    res = _train(reference)
    ours, theirs = np.asarray(res.curve), reference["curve"]
    assert ours.shape == theirs.shape == (100,)
    gap = np.abs(ours - theirs)
    print(f"\npeer vs runner, width {WIDTH}, beta 2^{LOG2_LR:g}: max |delta loss| {gap.max():.2e} (step "
          f"{gap.argmax()}), mean {gap.mean():.2e}, relative max {(gap / theirs).max():.2e}; initial eval loss "
          f"{res.loss_at_init - reference['loss_at_init']:+.1e}, final {res.eval_loss - reference['eval_loss']:+.1e}")
    assert (gap / theirs).max() < 2e-5
    assert gap.mean() < 1e-5
    assert abs(res.loss_at_init - reference["loss_at_init"]) < 2e-5 * reference["loss_at_init"]
    assert abs(res.eval_loss - reference["eval_loss"]) < 2e-5 * reference["eval_loss"]
    assert theirs[-1] < theirs[0] - 1.0  # it learned: the agreement is not two flat curves


def test_plain_adam_from_the_same_start_does_not_match(reference):
    gap = np.abs(np.asarray(_train(reference, plain_adam=True).curve) - reference["curve"])
    assert gap.max() > 1e-3


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-s", "-q"]))
