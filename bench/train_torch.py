#!/usr/bin/env python3
"""PyTorch reference trainer: the baseline that `tpp train` throughput is compared against.

It builds the same LLaMA-style decoder-only transformer that tpp trains, from scratch (no
`transformers` library), and times full training steps on the same batch with the same number of
threads, so the two tokens/s figures can be put side by side.

Model
  token embedding E [vocab, d_model]
  n_layers x block:
    h = x + attn(rmsnorm(x))          GQA: n_heads query heads, n_kv_heads KV heads,
                                      head_dim = d_model / n_heads, RoPE (theta 10000, HF
                                      rotate_half layout), causal, scale 1/sqrt(head_dim)
    x = h + down(silu(gate h') * up h')   SwiGLU FFN on h' = rmsnorm(h), no biases
  final rmsnorm, tied output: logits = x @ E^T
  rmsnorm(x) = x / sqrt(mean(x^2) + 1e-5) * w
  loss: cross-entropy averaged over all B*T tokens (target = next token)
  init: every matrix N(0, 0.02), norm weights 1; all f32

--bf16 runs the forward under torch.autocast("cpu", dtype=torch.bfloat16): matmuls in bf16,
master weights and optimizer state in f32, as tpp train --bf16.

Training step: forward, loss, backward, clip_grad_norm_(1.0), AdamW(lr 1e-3, betas (0.9, 0.95),
weight_decay 0.1, applied to every parameter), zero_grad(set_to_none=True).
Input: one fixed batch of random token ids (torch.randint with --seed), reused every step.

Output: one JSON line on stdout, e.g.
  {"framework": "pytorch", "torch": "1.13.0a0", "params": ..., "batch": 16, "seq": 256,
   "threads": 2, "step_s_median": ..., "step_s_min": ..., "tokens_per_s": ...,
   "loss_first": ..., "loss_last": ..., "peak_rss_mb": ..., "train_flops_per_token": ...,
   "gflops": ...}

Example (small model, 2 threads):
  python3 bench/train_torch.py --d-model 256 --n-layers 6 --n-heads 8 --n-kv-heads 4 \
      --d-ff 768 --vocab 260 --batch 16 --seq 256 --threads 2
"""

import argparse
import json
import math
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(seq, head_dim, theta=10000.0):
    """cos/sin tables [seq, head_dim] in the HF layout (frequencies repeated for both halves)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    freqs = torch.outer(torch.arange(seq, dtype=torch.float32), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x, cos, sin):
    return x * cos + rotate_half(x) * sin


def causal_attention(q, k, v, mask):
    """softmax(q k^T / sqrt(hd) + causal mask) v.  q, k, v: [B, H, T, hd]; mask: [T, T] bool.

    torch 1.13 has no F.scaled_dot_product_attention; use it when present."""
    sdpa = getattr(F, "scaled_dot_product_attention", None)
    if sdpa is not None:
        return sdpa(q, k, v, is_causal=True)
    q = q * (1.0 / math.sqrt(q.shape[-1]))  # scale q rather than the T x T scores: cheaper
    scores = torch.matmul(q, k.transpose(-2, -1))
    scores = scores.masked_fill(mask, float("-inf"))
    return torch.matmul(torch.softmax(scores, dim=-1), v)


class Attention(nn.Module):
    def __init__(self, d_model, n_heads, n_kv_heads):
        super().__init__()
        assert d_model % n_heads == 0 and n_heads % n_kv_heads == 0
        self.n_heads, self.n_kv_heads = n_heads, n_kv_heads
        self.head_dim = d_model // n_heads
        kv_dim = n_kv_heads * self.head_dim
        self.q_proj = nn.Linear(d_model, d_model, bias=False)
        self.k_proj = nn.Linear(d_model, kv_dim, bias=False)
        self.v_proj = nn.Linear(d_model, kv_dim, bias=False)
        self.o_proj = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        hd = self.head_dim
        q = self.q_proj(x).view(B, T, self.n_heads, hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.n_kv_heads, hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.n_kv_heads, hd).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        group = self.n_heads // self.n_kv_heads
        if group > 1:  # HF repeat_kv: KV head j serves query heads j*group .. (j+1)*group-1
            shape = (B, self.n_kv_heads, group, T, hd)
            k = k[:, :, None].expand(shape).reshape(B, self.n_heads, T, hd)
            v = v[:, :, None].expand(shape).reshape(B, self.n_heads, T, hd)
        y = causal_attention(q, k, v, mask)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, self.n_heads * hd))


class SwiGLU(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.gate_proj = nn.Linear(d_model, d_ff, bias=False)
        self.up_proj = nn.Linear(d_model, d_ff, bias=False)
        self.down_proj = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, d_model, n_heads, n_kv_heads, d_ff):
        super().__init__()
        self.attn_norm = RMSNorm(d_model)
        self.attn = Attention(d_model, n_heads, n_kv_heads)
        self.ffn_norm = RMSNorm(d_model)
        self.ffn = SwiGLU(d_model, d_ff)

    def forward(self, x, cos, sin, mask):
        x = x + self.attn(self.attn_norm(x), cos, sin, mask)
        return x + self.ffn(self.ffn_norm(x))


class Transformer(nn.Module):
    def __init__(self, vocab, d_model, n_layers, n_heads, n_kv_heads, d_ff, max_seq):
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.blocks = nn.ModuleList(
            [Block(d_model, n_heads, n_kv_heads, d_ff) for _ in range(n_layers)])
        self.norm = RMSNorm(d_model)
        cos, sin = rope_tables(max_seq, d_model // n_heads)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        mask = torch.triu(torch.ones(max_seq, max_seq, dtype=torch.bool), diagonal=1)
        self.register_buffer("mask", mask, persistent=False)  # True = masked (future key)
        for p in self.parameters():
            if p.dim() == 2:  # embedding and all projections; RMSNorm weights stay 1
                nn.init.normal_(p, mean=0.0, std=0.02)

    def forward(self, tokens):
        T = tokens.shape[1]
        cos, sin, mask = self.cos[:T], self.sin[:T], self.mask[:T, :T]
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x, cos, sin, mask)
        return F.linear(self.norm(x), self.embed.weight)  # tied output: x @ E^T


def train_flops_per_token(a, n_matmul):
    """Training FLOPs per token (forward + backward = 3 x forward).

      6 * N_matmul + 6 * n_layers * seq * d_attn

    N_matmul: weights used in matmuls = per layer (q, k, v, o, gate, up, down) plus the tied output
    head d_model*vocab (the embedding lookup itself is a gather and costs nothing; RMSNorm weights
    are excluded).  Each weight costs 2 FLOPs per token forward, 6 for training.
    Attention (Kaplan et al. 2020): q k^T and a v each cost 2 * ctx * d_attn per token forward with
    d_attn = n_heads * head_dim = d_model; with a causal mask the mean ctx is ~seq/2, so forward is
    2 * n_layers * seq * d_attn and training 6 * n_layers * seq * d_attn.  (PaLM's 12*L*T*d counts
    the full, unmasked T x T score matrix.)
    """
    return 6 * n_matmul + 6 * a.n_layers * a.seq * a.d_model


def matmul_params(a):
    hd = a.d_model // a.n_heads
    kv = a.n_kv_heads * hd
    per_layer = 2 * a.d_model * a.d_model + 2 * a.d_model * kv + 3 * a.d_model * a.d_ff
    return a.n_layers * per_layer + a.vocab * a.d_model


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--n-layers", type=int, default=6)
    p.add_argument("--n-heads", type=int, default=8)
    p.add_argument("--n-kv-heads", type=int, default=4)
    p.add_argument("--d-ff", type=int, default=768)
    p.add_argument("--vocab", type=int, default=260)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--warmup-steps", type=int, default=2, help="untimed steps before timing")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bf16", action="store_true",
                   help="bf16 autocast (matmuls in bf16, f32 master weights), as tpp train --bf16")
    a = p.parse_args(argv)
    if a.steps < 1:
        p.error("--steps must be >= 1")
    return a


def main(argv=None):
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(a.seed)

    model = Transformer(a.vocab, a.d_model, a.n_layers, a.n_heads, a.n_kv_heads, a.d_ff, a.seq)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)

    gen = torch.Generator().manual_seed(a.seed)
    data = torch.randint(0, a.vocab, (a.batch, a.seq + 1), generator=gen)
    inputs, targets = data[:, :-1].contiguous(), data[:, 1:].contiguous()

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            logits = model(inputs)
        loss = F.cross_entropy(logits.float().view(-1, a.vocab), targets.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    losses, times = [], []
    for i in range(a.warmup_steps + a.steps):
        t0 = time.perf_counter()
        losses.append(step())
        dt = time.perf_counter() - t0
        if i >= a.warmup_steps:
            times.append(dt)

    median = statistics.median(times)
    tokens_per_s = a.batch * a.seq / median
    flops_tok = train_flops_per_token(a, matmul_params(a))
    result = {
        "framework": "pytorch",
        "torch": torch.__version__,
        "dtype": "bf16" if a.bf16 else "f32",
        "params": n_params,
        "batch": a.batch,
        "seq": a.seq,
        "threads": a.threads,
        "step_s_median": round(median, 6),
        "step_s_min": round(min(times), 6),  # the least-disturbed step, for noisy machines
        "tokens_per_s": round(tokens_per_s, 2),
        "loss_first": round(losses[0], 6),
        "loss_last": round(losses[-1], 6),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "train_flops_per_token": flops_tok,
        "gflops": round(flops_tok * tokens_per_s / 1e9, 3),
    }
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
