#!/usr/bin/env python3
"""Random-weight llama GGUF files for speed comparisons (bench/compare.sh).

    /usr/bin/python3 bench/random_gguf.py OUT.gguf TYPE SHAPE
    TYPE:  F32 | BF16 | Q8_0 | Q4_0 | Q4_K | Q5_K | Q6_K   (the matrices; norms stay F32)
    SHAPE: llama-1b (Llama-3.2-1B: d 2048, 16 layers, 32 / 8 heads, d_ff 8192, vocab 128,256)
           smollm2-135m (d 576, 30 layers, 9 / 3 heads, d_ff 1536, vocab 49,152)

Weights are N(0, 0.02) from a fixed seed, the output matrix untied; Q8_0 and
Q4_0 blocks follow GGML's reference quantisers (f16 scale per 32 weights:
Q8_0 d = amax / 127 with round-half-away; Q4_0 d = m / -8 for the element m of
largest magnitude, q = min(15, trunc(x / d + 8.5))). K-quant blocks (Q4_K, Q5_K,
Q6_K) are random bytes with f16 super-block scales that give weights of about
the same size: a file for timing, not for quality. tokenizer.ggml.model is
"no_vocab" (llama.cpp's marker for a file without a vocabulary), so both
llama-bench and tpp load the file. Needs numpy (Debian: python3-numpy).
"""
import os
import struct
import sys

import numpy as np

SHAPES = {  # d_model, layers, heads, kv heads, d_ff, vocab
    "llama-1b": (2048, 16, 32, 8, 8192, 128256),
    "smollm2-135m": (576, 30, 9, 3, 1536, 49152),
}
GGML_TYPE = {"F32": 0, "Q4_0": 2, "Q8_0": 8, "BF16": 30, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14}
K_BLOCK = {"Q4_K": (144, [0, 2], 3e-5), "Q5_K": (176, [0, 2], 1.5e-5), "Q6_K": (210, [208], 1e-5)}
U32, F32, STRING = 4, 6, 8


def q8_0(x):
    b = x.reshape(-1, 32)
    d = (np.abs(b).max(1) / np.float32(127)).astype(np.float32)
    inv = np.divide(np.float32(1), d, out=np.zeros_like(d), where=d != 0)
    v = (b * inv[:, None]).astype(np.float32)
    rec = np.zeros(len(b), dtype=[("d", "<f2"), ("q", "i1", 32)])
    rec["d"] = d.astype(np.float16)
    rec["q"] = (np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))).astype(np.int8)
    return rec.tobytes()


def q4_0(x):
    b = x.reshape(-1, 32)
    m = np.take_along_axis(b, np.abs(b).argmax(1)[:, None], 1)[:, 0]
    d = (m / np.float32(-8)).astype(np.float32)
    inv = np.divide(np.float32(1), d, out=np.zeros_like(d), where=d != 0)
    q = np.minimum(15, np.trunc((b * inv[:, None]).astype(np.float32) + np.float32(8.5))).astype(np.uint8)
    rec = np.zeros(len(b), dtype=[("d", "<f2"), ("q", "u1", 16)])
    rec["d"] = d.astype(np.float16)
    rec["q"] = q[:, :16] | (q[:, 16:] << 4)
    return rec.tobytes()


def k_blocks(n, typ, rng):
    size, scale_at, scale = K_BLOCK[typ]
    b = rng.integers(0, 256, size=(n // 256, size), dtype=np.uint8)
    for at in scale_at:
        d = (scale * rng.uniform(0.5, 1.5, size=len(b))).astype(np.float16)
        b[:, at:at + 2] = d.view(np.uint8).reshape(-1, 2)
    return b.tobytes()


def encode(a, typ):
    if typ in K_BLOCK:
        return k_blocks(a.size, typ, np.random.default_rng(a.size))
    if typ == "F32":
        return a.astype(np.float32).tobytes()
    if typ == "BF16":
        return (a.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16).tobytes()
    return q8_0(a) if typ == "Q8_0" else q4_0(a)


def nbytes(shape, typ):
    n = int(np.prod(shape))
    if typ in K_BLOCK:
        return n // 256 * K_BLOCK[typ][0]
    return {"F32": 4 * n, "BF16": 2 * n, "Q8_0": n // 32 * 34, "Q4_0": n // 32 * 18}[typ]


def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def main():
    if len(sys.argv) != 4 or sys.argv[2] not in GGML_TYPE or sys.argv[3] not in SHAPES:
        sys.exit(f"usage: {sys.argv[0]} OUT.gguf {'|'.join(GGML_TYPE)} {'|'.join(SHAPES)}")
    out, typ, shape = sys.argv[1:]
    d, n_layers, h, g, ff, vocab = SHAPES[shape]
    hd = d // h
    meta = [("general.architecture", STRING, gstr("llama")), ("llama.context_length", U32, struct.pack("<I", 4096)),
            ("llama.embedding_length", U32, struct.pack("<I", d)),
            ("llama.block_count", U32, struct.pack("<I", n_layers)),
            ("llama.feed_forward_length", U32, struct.pack("<I", ff)),
            ("llama.attention.head_count", U32, struct.pack("<I", h)),
            ("llama.attention.head_count_kv", U32, struct.pack("<I", g)),
            ("llama.attention.layer_norm_rms_epsilon", F32, struct.pack("<f", 1e-5)),
            ("llama.rope.freq_base", F32, struct.pack("<f", 500000.0)),
            ("llama.rope.dimension_count", U32, struct.pack("<I", hd)),
            ("llama.vocab_size", U32, struct.pack("<I", vocab)),
            ("tokenizer.ggml.model", STRING, gstr("no_vocab"))]
    tensors = [("token_embd.weight", (vocab, d), typ), ("output_norm.weight", (d,), "F32"),
               ("output.weight", (vocab, d), typ)]
    for i in range(n_layers):
        p = f"blk.{i}."
        tensors += [(p + "attn_norm.weight", (d,), "F32"), (p + "attn_q.weight", (h * hd, d), typ),
                    (p + "attn_k.weight", (g * hd, d), typ), (p + "attn_v.weight", (g * hd, d), typ),
                    (p + "attn_output.weight", (d, h * hd), typ), (p + "ffn_norm.weight", (d,), "F32"),
                    (p + "ffn_gate.weight", (ff, d), typ), (p + "ffn_up.weight", (ff, d), typ),
                    (p + "ffn_down.weight", (d, ff), typ)]
    head = struct.pack("<IIQQ", 0x46554747, 3, len(tensors), len(meta))
    for key, t, value in meta:
        head += gstr(key) + struct.pack("<I", t) + value
    offset = 0
    for name, dims, t in tensors:
        head += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", x) for x in reversed(dims))
        head += struct.pack("<IQ", GGML_TYPE[t], offset)
        offset += (nbytes(dims, t) + 31) // 32 * 32
    head += b"\0" * ((-len(head)) % 32)
    rng = np.random.default_rng(0)
    with open(out + ".tmp", "wb") as f:
        f.write(head)
        for name, dims, t in tensors:
            a = np.ones(dims, np.float32) if len(dims) == 1 else rng.standard_normal(dims, dtype=np.float32) * 0.02
            b = encode(a, t)
            f.write(b + b"\0" * ((-len(b)) % 32))
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main()
