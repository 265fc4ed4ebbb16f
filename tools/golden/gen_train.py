#!/usr/bin/python3
"""Training goldens from the independent float64 PyTorch reference.

For three whole models of the golden set (LLaMA-3-like, Gemma-2-like,
GPT-2-like; their weights are tests/golden/models/<case>/model.safetensors),
autograd through gen_models.forward gives the loss and every parameter's
gradient for one batch; then torch.optim.AdamW (decoupled weight decay on the
matrices except the embeddings, global-norm clipping with
torch.nn.utils.clip_grad_norm_) runs ten steps on ten batches, recording the
loss before each update. Written to tests/golden/train/<case>.safetensors.

Run after gen_models.py: /usr/bin/python3 tools/golden/gen_train.py
"""
import os
import struct
import sys
import json

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_models as gm  # noqa: E402

CASES = ["llama3_like", "gemma2_like", "gpt2_like"]
B, T, STEPS = 2, 9, 10
LR, BETAS, EPS, WD, CLIP = 3e-2, (0.9, 0.95), 1e-8, 0.1, 1.0
OUT = os.path.join(gm.ROOT, "tests", "golden", "train")


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", (path, name)
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:end]), dtype=torch.float32).reshape(e["shape"])
        out[name] = t.to(torch.float64)
    return out


def batch_loss(c, W, tokens):
    """Mean cross-entropy over B sequences (inputs tokens[:, :-1], targets tokens[:, 1:])."""
    total = 0.0
    for b in range(tokens.shape[0]):
        logits = gm.forward(c, W, tokens[b, :-1])
        total = total + torch.nn.functional.cross_entropy(logits, tokens[b, 1:], reduction="sum")
    return total / (tokens.shape[0] * (tokens.shape[1] - 1))


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    all_cases = gm.cases()
    for i, case in enumerate(CASES):
        c = all_cases[case]
        d = os.path.join(gm.OUT, case)
        W = {n: t.clone().requires_grad_(True) for n, t in read_safetensors(os.path.join(d, "model.safetensors")).items()}
        gen = torch.Generator().manual_seed(2000 + i)
        tokens = torch.randint(0, c.vocab_size, (STEPS, B, T + 1), generator=gen)
        # One batch: loss and every gradient.
        loss = batch_loss(c, W, tokens[0])
        loss.backward()
        out = {"tokens": tokens.to(torch.int32), "loss0": loss.detach().reshape(1).to(torch.float32)}
        for n, t in W.items():
            out["grad." + n] = t.grad.to(torch.float32)
            t.grad = None
        # Ten AdamW steps.
        decay = [t for n, t in W.items() if t.dim() == 2 and n not in ("tok_embd.weight", "pos_embd.weight")]
        no_decay = [t for n, t in W.items() if not (t.dim() == 2 and n not in ("tok_embd.weight", "pos_embd.weight"))]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": no_decay, "weight_decay": 0.0}],
                                lr=LR, betas=BETAS, eps=EPS)
        losses = []
        for s in range(STEPS):
            opt.zero_grad()
            loss = batch_loss(c, W, tokens[s])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(W.values()), CLIP)
            opt.step()
            losses.append(loss.item())
        out["losses"] = torch.tensor(losses, dtype=torch.float32)
        meta = {"generator": "tools/golden/gen_train.py", "torch_version": torch.__version__, "lr": str(LR),
                "beta1": str(BETAS[0]), "beta2": str(BETAS[1]), "eps": str(EPS), "weight_decay": str(WD),
                "clip": str(CLIP)}
        gm.write_safetensors(os.path.join(OUT, case + ".safetensors"), out, meta)
        print(f"{case:14s} loss0 {out['loss0'].item():.6f}  losses {losses[0]:.4f} .. {losses[-1]:.4f}")


if __name__ == "__main__":
    sys.exit(main())
