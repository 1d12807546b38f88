"""The runner's transformer in PyTorch + microsoft/mup: the sweep a team runs without abcscale.

One run at a time in a Python loop, eager, 2 threads, results to ``results.csv`` and the phase times to
``timings.json``. Run by ``make bench-peer`` (tests/benchmarks/peer_bench.py) in the torch venv::

    .venv-torch/bin/python tests/benchmarks/peer/mup_sweep.py --widths 32,64,128 --log2-lr=-8.5:-3.5:0.5 \
        --seeds 2 --out /tmp/peer

The model is runner/transformer.py's: pre-LayerNorm (scale only, eps 1e-6), learned positional embeddings,
tanh-GeLU MLP with F = 4D, no biases, untied readout, heads of 16, logits scaled by 1/head_dim (muP's
attention), byte-level data (abcscale's loader, so the same bytes), batch 8 x 32, Adam (0.9, 0.999) with
linear warmup over 10% of the steps then cosine to zero, divergence at 1.5 x the initial eval loss, final
loss the mean train loss of the last 10% of steps, eval loss over 4 fixed held-out batches.

muP is microsoft/mup's: ``set_base_shapes`` at base width 32 (the runner's base), ``MuReadout`` and
``MuAdam(lr=beta)``. The runner trains the same model in the abc form (runner/sweep.py ``layer_hyper``): at
width n, r = n / 32, embeddings start at std n^-1/2 times a multiplier n^1/2 and train at r^-1/2 beta, hidden
matrices at std fan_in^-1/2 and r^-1 beta, the readout at std n^-1/2 times n^-1/2 and r^-1/2 beta, LayerNorm
gains at beta, and every epsilon is 1e-8 times the layer's LR factor. Adam is invariant to rescaling a weight
by c when its LR and epsilon scale by c too, so with W_emb = r^1/2 W_runner (std 32^-1/2, a constant input
multiplier 32^1/2, LR beta, eps 1e-8) and W_readout = r^1/2 W_runner (std 32^-1/2, MuReadout's
output_mult / width_mult = 32^-1/2 / r, LR beta, eps 1e-8) mup's numbers are the runner's; MuAdam divides the
hidden LRs by r itself. Only the epsilon of the hidden matrices and gains (1e-8 / r: abcscale's per-layer
epsilon rule) is set by hand, as one param group. ``load_runner_params`` applies this map to the runner's
initial parameters; tests/torch/test_peer_equivalence.py checks the loss curves agree from the same start.

The data order: each run draws its windows from ``torch.Generator`` seeded with the run's seed (the runner
uses JAX's PRNG, which PyTorch does not have), uniform over the same train split; ``train`` takes the
windows from outside for the equivalence check.
"""

from __future__ import annotations

import time

T_START = time.time()  # before the heavy imports: start-up is measured from the driver's spawn time

import argparse  # noqa: E402
import csv  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import mup  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

T_IMPORTS = time.time()

BASE = 32  # the runner's base width (min of the demo widths)
EPS = 1e-8  # Adam epsilon at the base width


@dataclass(frozen=True)
class Config:
    width: int
    depth: int = 1
    seq_len: int = 32
    batch: int = 8
    steps: int = 100
    head_dim: int = 16
    vocab: int = 256
    warmup: float = 0.1
    divergence_factor: float = 1.5
    eval_batches: int = 4
    final_window: float = 0.1


class Block(nn.Module):
    def __init__(self, d: int, head_dim: int):
        super().__init__()
        self.head_dim = head_dim
        self.ln1, self.ln2 = nn.LayerNorm(d, eps=1e-6, bias=False), nn.LayerNorm(d, eps=1e-6, bias=False)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d, bias=False) for _ in range(4))
        self.mlp_in, self.mlp_out = nn.Linear(d, 4 * d, bias=False), nn.Linear(4 * d, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        h = self.ln1(x)
        q, k, v = (f(h).view(B, T, D // self.head_dim, self.head_dim).transpose(1, 2) for f in (self.q, self.k, self.v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1.0 / self.head_dim)  # muP: 1/head_dim
        x = x + self.o(y.transpose(1, 2).reshape(B, T, D))
        return x + self.mlp_out(F.gelu(self.mlp_in(self.ln2(x)), approximate="tanh"))


class Transformer(nn.Module):
    def __init__(self, cfg: Config, width: int | None = None):
        super().__init__()
        d = width or cfg.width
        self.input_mult = BASE**0.5  # constant: the runner's n^1/2 embedding multiplier at the base width
        self.tok_embed, self.pos_embed = nn.Embedding(cfg.vocab, d), nn.Embedding(cfg.seq_len, d)
        self.blocks = nn.ModuleList(Block(d, cfg.head_dim) for _ in range(cfg.depth))
        self.ln_f = nn.LayerNorm(d, eps=1e-6, bias=False)
        self.readout = mup.MuReadout(d, cfg.vocab, bias=False, output_mult=BASE**-0.5)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.input_mult * self.tok_embed(tokens) + self.input_mult * self.pos_embed.weight[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.readout(self.ln_f(x))


@functools.cache
def base_shapes(cfg: Config) -> Any:
    """mup's base shapes (width 32, delta 64), made once per process as mup's docs advise (or load a file).
    Built on the CPU: models on the meta device would cost a 3-6 s lazy import on first use."""
    return mup.make_base_shapes(mup.get_shapes(Transformer(cfg, BASE)), mup.get_shapes(Transformer(cfg, 2 * BASE)))


def build(cfg: Config, seed: int) -> Transformer:
    """The model with mup's base shapes and muP's init, drawn from ``seed``."""
    shapes = base_shapes(replace(cfg, width=BASE))
    torch.manual_seed(seed)
    model = Transformer(cfg)
    mup.set_base_shapes(model, shapes)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("embed.weight", "readout.weight")):
                p.normal_(0.0, BASE**-0.5)  # constant in width: mup's vector-like init
            elif p.ndim == 2:
                p.normal_(0.0, p.shape[1] ** -0.5)  # fan_in^-1/2 (nn.Linear is [out, in])
    return model


def optimizer(model: Transformer, beta: float) -> torch.optim.Optimizer:
    """MuAdam at lr beta; the hidden matrices and gains take abcscale's per-layer epsilon 1e-8 / r."""
    r = model.readout.width_mult()
    scaled = [p for n, p in model.named_parameters() if n.startswith("blocks.") or n.startswith("ln_f")]
    rest = [p for n, p in model.named_parameters() if not (n.startswith("blocks.") or n.startswith("ln_f"))]
    return mup.MuAdam([{"params": scaled, "eps": EPS / r}, {"params": rest}], lr=beta, eps=EPS, betas=(0.9, 0.999))


def lr_lambda(cfg: Config) -> Callable[[int], float]:
    """runner/optim.py ``schedule``: linear warmup from 1/(n_warm + 1), then cosine to zero."""
    n_warm = int(round(cfg.warmup * cfg.steps))
    decay = max(cfg.steps - n_warm, 1)

    def f(t: int) -> float:
        if t < n_warm:
            return 1.0 / (n_warm + 1) + (1.0 - 1.0 / (n_warm + 1)) * t / n_warm
        return 0.5 * (1.0 + math.cos(math.pi * min(t - n_warm, decay) / decay))

    return f


def eval_windows(eval_tok: np.ndarray, cfg: Config) -> torch.Tensor:
    """The runner's held-out windows: evenly spaced offsets, [eval_batches, B, T + 1]."""
    T, B = cfg.seq_len, cfg.batch
    starts = np.linspace(0, eval_tok.shape[0] - T - 2, cfg.eval_batches * B).astype(np.int32)
    win = eval_tok[starts[:, None] + np.arange(T + 1)].reshape(cfg.eval_batches, B, T + 1)
    return torch.from_numpy(win.astype(np.int64))


def loss_of(model: Transformer, win: torch.Tensor) -> torch.Tensor:
    logits = model(win[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), win[:, 1:].reshape(-1))


@torch.no_grad()
def eval_loss(model: Transformer, windows: torch.Tensor) -> float:
    return float(torch.stack([loss_of(model, w) for w in windows]).mean())


@dataclass(frozen=True)
class RunResult:
    loss_at_init: float
    final_loss: float
    eval_loss: float
    diverged: bool
    curve: list[float]
    setup_s: float
    train_s: float
    eval_s: float


def train(model: Transformer, beta: float, cfg: Config, batches: Callable[[int], torch.Tensor],
          evals: torch.Tensor, t_setup: float = 0.0,
          make_optimizer: Callable[[Transformer, float], torch.optim.Optimizer] | None = None) -> RunResult:
    """One run: ``batches(step)`` gives the step's [B, T + 1] window. Stops at divergence, as a loop would."""
    opt = (make_optimizer or optimizer)(model, beta)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))
    t0 = time.perf_counter()
    loss0 = eval_loss(model, evals)
    t1 = time.perf_counter()
    curve: list[float] = []
    diverged = False
    for step in range(cfg.steps):
        loss = loss_of(model, batches(step))
        value = loss.item()
        if not math.isfinite(value) or value >= cfg.divergence_factor * loss0:
            diverged = True
            break
        curve.append(value)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    t2 = time.perf_counter()
    window = max(1, int(round(cfg.final_window * cfg.steps)))
    final = float(np.mean(curve[-window:])) if not diverged else math.inf
    ev = eval_loss(model, evals) if not diverged else math.nan
    t3 = time.perf_counter()
    return RunResult(loss0, final, ev, diverged, curve, t_setup, t2 - t1, (t1 - t0) + (t3 - t2))


def sampler(train_tok: torch.Tensor, cfg: Config, seed: int) -> Callable[[int], torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    offsets = torch.arange(cfg.seq_len + 1)
    high = train_tok.shape[0] - cfg.seq_len - 1

    def batch(step: int) -> torch.Tensor:
        idx = torch.randint(0, high, (cfg.batch,), generator=gen)
        return train_tok[idx[:, None] + offsets]

    return batch


def load_runner_params(model: Transformer, params: dict[str, np.ndarray]) -> None:
    """Copy the runner's parameters (runner/transformer.py names, x @ W layout) into ``model`` through the
    module docstring's map: embeddings and readout times r^1/2, matrices transposed to nn.Linear's [out, in]."""
    r = model.readout.width_mult()
    own = dict(model.named_parameters())
    names = {"tok_embed": "tok_embed.weight", "pos_embed": "pos_embed.weight", "ln_f": "ln_f.weight",
             "readout": "readout.weight"}
    for i in range(len(model.blocks)):
        names |= {f"b{i}.{k}": f"blocks.{i}.{k}.weight" for k in ("ln1", "ln2", "q", "k", "v", "o", "mlp_in",
                                                                  "mlp_out")}
    with torch.no_grad():
        for theirs, ours in names.items():
            w = torch.from_numpy(np.asarray(params[theirs], np.float32))
            if theirs in ("tok_embed", "pos_embed", "readout"):
                w = w * r**0.5
            if w.ndim == 2 and theirs not in ("tok_embed", "pos_embed"):
                w = w.T
            own[ours].copy_(w.contiguous())


# --- the sweep ------------------------------------------------------------------------------------------


def grid(value: str) -> list[float]:
    """``START:STOP:STEP`` (STOP included) or a comma list, as ``abcscale sweep --log2-lr``."""
    if ":" not in value:
        return [float(v) for v in value.split(",") if v.strip()]
    start, stop, step = (float(p) for p in value.split(":"))
    return [round(start + i * step, 10) for i in range(int(math.floor((stop - start) / step + 1e-9)) + 1)]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", default="32,64,128")
    ap.add_argument("--log2-lr", default="-8.5:-3.5:0.5")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--t0", type=float, default=T_START, help="the driver's spawn time (time.time())")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from abcscale.runner.data import load_corpus  # the runner's loader: the same bytes (numpy only)

    t_data = time.time()
    seq_len = Config(width=BASE).seq_len
    corpus = load_corpus("default", 2_000_000, 0.1, seq_len + 2)
    train_tok = torch.from_numpy(corpus.train.astype(np.int64))
    rows, t_train = [], time.time()
    for width in (int(w) for w in args.widths.split(",")):
        cfg = Config(width=width, steps=args.steps)
        evals = eval_windows(corpus.eval, cfg)
        for g in grid(args.log2_lr):
            for seed in range(args.seeds):
                t0 = time.perf_counter()
                model = build(cfg, seed)
                res = train(model, 2.0**g, cfg, sampler(train_tok, cfg, seed), evals, time.perf_counter() - t0)
                rows.append({"width": width, "log2_lr": g, "beta": 2.0**g, "seed": seed, "steps": cfg.steps,
                             "loss_at_init": res.loss_at_init, "final_loss": res.final_loss,
                             "eval_loss": res.eval_loss, "diverged": res.diverged, "steps_run": len(res.curve),
                             "setup_s": res.setup_s, "train_s": res.train_s, "eval_s": res.eval_s})
    t_write = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    t_end = time.time()
    phases = {"startup_imports_s": T_IMPORTS - args.t0, "data_s": t_train - t_data,
              "setup_s": sum(r["setup_s"] for r in rows), "train_s": sum(r["train_s"] for r in rows),
              "eval_s": sum(r["eval_s"] for r in rows), "write_s": t_end - t_write,
              "train_by_width_s": {str(w): sum(r["train_s"] for r in rows if r["width"] == w)
                                   for w in sorted({r["width"] for r in rows})}}
    (out / "timings.json").write_text(json.dumps(phases, indent=1))


if __name__ == "__main__":
    main()
