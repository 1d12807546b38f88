"""Small PyTorch models for the export tests: a nanoGPT-like transformer (GPT-2 names) and a one-block MLP LM
with microsoft/mup's readout."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    def __init__(self, d: int, heads: int = 2):
        super().__init__()
        self.heads = heads
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.ModuleDict({"c_attn": nn.Linear(d, 3 * d), "c_proj": nn.Linear(d, d)})
        self.mlp = nn.ModuleDict({"c_fc": nn.Linear(d, 4 * d), "c_proj": nn.Linear(4 * d, d)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.attn["c_attn"](self.ln_1(x)).split(d, dim=-1)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, d)
        x = x + self.attn["c_proj"](y)
        return x + self.mlp["c_proj"](F.gelu(self.mlp["c_fc"](self.ln_2(x))))


class GPT(nn.Module):
    """nanoGPT's layout and names: transformer.{wte, wpe, h.N, ln_f}, lm_head (tied to wte when ``tie``)."""

    def __init__(self, d: int, vocab: int = 64, seq_len: int = 16, depth: int = 2, tie: bool = False):
        super().__init__()
        self.transformer = nn.ModuleDict({"wte": nn.Embedding(vocab, d), "wpe": nn.Embedding(seq_len, d),
                                          "h": nn.ModuleList(Block(d) for _ in range(depth)),
                                          "ln_f": nn.LayerNorm(d)})
        self.lm_head = nn.Linear(d, vocab, bias=False)
        if tie:
            self.lm_head.weight = self.transformer["wte"].weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.transformer["wte"](idx) + self.transformer["wpe"](torch.arange(idx.shape[1]))
        for block in self.transformer["h"]:
            x = block(x)
        return self.lm_head(self.transformer["ln_f"](x))


class MupMLP(nn.Module):
    """Embedding, LayerNorm, a D -> 4D -> D MLP and a readout (``readout`` is nn.Linear or mup.MuReadout)."""

    def __init__(self, d: int, readout: type[nn.Linear] = nn.Linear, vocab: int = 64):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.ln = nn.LayerNorm(d)
        self.c_fc, self.c_proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.lm_head = readout(d, vocab)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.ln(self.wte(idx))
        return self.lm_head(x + self.c_proj(F.gelu(self.c_fc(x))))
