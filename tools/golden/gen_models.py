#!/usr/bin/python3
"""Independent float64 PyTorch reference of the Transformer++ (SPEC §1).

Builds small random-weight models for a matrix of configurations (each switch
at least once, and combinations shaped like LLaMA 3, Mistral, Qwen2, Qwen3,
Gemma 2/3, GPT-2, DeciLM, CLA, parallel blocks, plus-one softmax), writes each
as a model directory (tpp naming, or Hugging Face Llama naming for the hf_*
cases) and writes golden logits of the full causal forward computed in
float64 from the stored (possibly bf16/f16-rounded) weights.

The formulas follow the SPEC and the papers / Hugging Face modeling code
(LlamaRMSNorm, rotate_half, _compute_*_rope_parameters), written here
directly on tensors with a naive T x T masked softmax: it is the slow, plain
reference the C++ engine is compared with.

Run: /usr/bin/python3 tools/golden/gen_models.py   (writes tests/golden/models/)
"""
import json
import math
import os
import shutil
import struct
import sys

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OUT = os.path.join(ROOT, "tests", "golden", "models")
T_TOKENS = 11

# ---------------------------------------------------------------------------
# safetensors writer (the Python package is not available here)

DTYPES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16", torch.int32: "I32"}


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        b = tensor_bytes(t)
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":"))
    text += " " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text.encode())
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------------------
# Config with the tpp defaults

DEFAULTS = dict(
    d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=8, d_ff=48, vocab_size=67, max_seq_len=64,
    norm_eps=1e-5, embed_scale=1.0, tie_embeddings=False, final_softcap=0.0, pos_encoding="rope",
    rope_theta=10000.0, rotary_dim=-1, rope_layout="half", rope_scaling={"type": "none"}, rope_local_theta=0.0,
    norm="rmsnorm", norm_bias=True, norm_one_plus=False, norm_placement="pre", parallel_block=False, qkv_bias=False,
    o_bias=False, qk_norm=False, attn_scale=0.0, attn_softcap=0.0, softmax="standard", sliding_window=None,
    layer_types=[], cla_share=1, ffn="swiglu", gelu_approx="none", mlp_bias=False, param_match=False,
    multiple_of=1,
)
GATED = {"glu", "bilinear", "reglu", "geglu", "swiglu"}


class Cfg:
    def __init__(self, **kw):
        unknown = set(kw) - set(DEFAULTS)
        assert not unknown, unknown
        self.__dict__.update(DEFAULTS)
        self.__dict__.update(kw)

    def to_json(self):
        return {k: getattr(self, k) for k in DEFAULTS}

    def g(self, l):
        g = self.n_kv_heads
        g = g[l] if isinstance(g, list) else g
        return g or self.n_heads

    def local(self, l):
        if not self.layer_types:
            return self.sliding_window is not None
        return self.layer_types[l % len(self.layer_types)] == "local"

    def src(self, l):
        return l // self.cla_share * self.cla_share

    def width(self):
        if self.param_match and self.ffn in GATED:
            w = 2 * self.d_ff // 3
            return (w + self.multiple_of - 1) // self.multiple_of * self.multiple_of
        return self.d_ff

    def rot(self):
        if self.pos_encoding != "rope":
            return 0
        return self.head_dim if self.rotary_dim < 0 else self.rotary_dim


# ---------------------------------------------------------------------------
# Weights (tpp names)

def make_weights(c, gen):
    d, k, h, F = c.d_model, c.head_dim, c.n_heads, c.width()
    ln = c.norm == "layernorm"
    one = 0.0 if (c.norm_one_plus and not ln) else 1.0
    bias = ln and c.norm_bias
    W = {}

    def mat(name, rows, cols):
        W[name] = torch.randn(rows, cols, generator=gen, dtype=torch.float64) * (1.5 / math.sqrt(cols))

    def vec(name, n, base=0.0):
        W[name] = base + 0.2 * torch.randn(n, generator=gen, dtype=torch.float64)

    def norm(prefix):
        vec(prefix + ".weight", d, one)
        if bias:
            vec(prefix + ".bias", d)

    W["tok_embd.weight"] = torch.randn(c.vocab_size, d, generator=gen, dtype=torch.float64)
    if c.pos_encoding == "learned":
        W["pos_embd.weight"] = torch.randn(c.max_seq_len, d, generator=gen, dtype=torch.float64)
    if c.norm_placement != "post":
        norm("output_norm")
    if not c.tie_embeddings:
        mat("output.weight", c.vocab_size, d)
    for l in range(c.n_layers):
        p = f"blk.{l}."
        g = c.g(l)
        owns = c.src(l) == l
        norm(p + "attn_norm")
        mat(p + "attn_q.weight", h * k, d)
        if c.qkv_bias:
            vec(p + "attn_q.bias", h * k)
        if owns:
            mat(p + "attn_k.weight", g * k, d)
            mat(p + "attn_v.weight", g * k, d)
            if c.qkv_bias:
                vec(p + "attn_k.bias", g * k)
                vec(p + "attn_v.bias", g * k)
        if c.qk_norm:
            vec(p + "attn_q_norm.weight", k, one)
            if owns:
                vec(p + "attn_k_norm.weight", k, one)
        mat(p + "attn_output.weight", d, h * k)
        if c.o_bias:
            vec(p + "attn_output.bias", d)
        if c.norm_placement == "sandwich":
            norm(p + "attn_post_norm")
            norm(p + "ffn_post_norm")
        if not c.parallel_block:
            norm(p + "ffn_norm")
        if c.ffn in GATED:
            mat(p + "ffn_gate.weight", F, d)
            if c.mlp_bias:
                vec(p + "ffn_gate.bias", F)
        mat(p + "ffn_up.weight", F, d)
        mat(p + "ffn_down.weight", d, F)
        if c.mlp_bias:
            vec(p + "ffn_up.bias", F)
            vec(p + "ffn_down.bias", d)
    return W


# ---------------------------------------------------------------------------
# The reference forward, float64

def rms_norm(x, w, c):
    y = x / torch.sqrt((x * x).mean(-1, keepdim=True) + c.norm_eps)
    return y * (1.0 + w) if c.norm_one_plus else y * w


def apply_norm(x, W, prefix, c):
    if c.norm == "layernorm":
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        y = (x - mu) / torch.sqrt(var + c.norm_eps) * W[prefix + ".weight"]
        return y + W[prefix + ".bias"] if c.norm_bias else y
    return rms_norm(x, W[prefix + ".weight"], c)


def inv_freq(c, base, scaling, seq_len):
    """Per-pair inverse frequencies and the cos/sin multiplier (HF _compute_*_parameters)."""
    r = c.rot()
    typ = scaling.get("type", "none")
    factor = scaling.get("factor", 1.0)
    orig = scaling.get("original_max_position_embeddings") or c.max_seq_len
    if typ == "ntk":
        base = base * factor ** (r / (r - 2))
    if typ == "dynamic_ntk" and seq_len > orig:
        base = base * ((factor * seq_len / orig) - (factor - 1)) ** (r / (r - 2))
    idx = torch.arange(0, r, 2, dtype=torch.float64)
    f = 1.0 / base ** (idx / r)
    mscale = 1.0
    if typ == "linear":
        f = f / factor
    elif typ == "llama3":
        lo, hi = scaling.get("low_freq_factor", 1.0), scaling.get("high_freq_factor", 4.0)
        low_wavelen, high_wavelen = orig / lo, orig / hi
        wavelen = 2 * math.pi / f
        smooth = (orig / wavelen - lo) / (hi - lo)
        blended = (1 - smooth) * f / factor + smooth * f
        f = torch.where(wavelen < high_wavelen, f, torch.where(wavelen > low_wavelen, f / factor, blended))
    elif typ == "yarn":
        beta_fast, beta_slow = scaling.get("beta_fast", 32.0), scaling.get("beta_slow", 1.0)

        def corr(n_rot):
            return r * math.log(orig / (n_rot * 2 * math.pi)) / (2 * math.log(base))

        low = max(math.floor(corr(beta_fast)), 0)
        high = min(math.ceil(corr(beta_slow)), r - 1)
        if low == high:
            high += 0.001
        ramp = ((torch.arange(r // 2, dtype=torch.float64) - low) / (high - low)).clamp(0, 1)
        extrap_factor = 1 - ramp
        f = (f / factor) * (1 - extrap_factor) + f * extrap_factor
        mscale = scaling.get("attention_factor") or (0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0)
    return f, mscale


def rope(x, c, freqs, mscale):
    """x: [T, heads, k]; rotates the first rotary_dim dims of every head."""
    r = c.rot()
    if r == 0:
        return x
    T = x.shape[0]
    ang = torch.arange(T, dtype=torch.float64)[:, None] * freqs[None, :]  # [T, r/2]
    cos, sin = (torch.cos(ang) * mscale)[:, None, :], (torch.sin(ang) * mscale)[:, None, :]
    out = x.clone()
    if c.rope_layout == "half":
        a, b = x[..., : r // 2], x[..., r // 2: r]
        out[..., : r // 2] = a * cos - b * sin
        out[..., r // 2: r] = b * cos + a * sin
    else:
        a, b = x[..., 0:r:2], x[..., 1:r:2]
        out[..., 0:r:2] = a * cos - b * sin
        out[..., 1:r:2] = b * cos + a * sin
    return out


def act(x, c):
    kind = c.ffn
    if kind in ("relu", "reglu"):
        return torch.relu(x)
    if kind in ("gelu", "geglu"):
        if c.gelu_approx == "tanh":
            return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
        return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
    if kind == "glu":
        return torch.sigmoid(x)
    if kind == "bilinear":
        return x
    if kind == "swiglu":
        return x * torch.sigmoid(x)
    raise ValueError(kind)


def linear(x, W, name):
    y = x @ W[name + ".weight"].T
    if name + ".bias" in W:
        y = y + W[name + ".bias"]
    return y


def ffn(x, W, p, c):
    if c.ffn in GATED:
        hdn = act(linear(x, W, p + "ffn_gate"), c) * linear(x, W, p + "ffn_up")
    else:
        hdn = act(linear(x, W, p + "ffn_up"), c)
    return linear(hdn, W, p + "ffn_down")


def attention(x, W, l, c, kv_store, seq_len):
    T, h, k = x.shape[0], c.n_heads, c.head_dim
    p = f"blk.{l}."
    local = c.local(l)
    if local and c.rope_local_theta > 0:
        freqs, mscale = inv_freq(c, c.rope_local_theta, {"type": "none"}, seq_len)
    else:
        freqs, mscale = inv_freq(c, c.rope_theta, c.rope_scaling, seq_len)
    q = linear(x, W, p + "attn_q").view(T, h, k)
    if c.qk_norm:
        q = rms_norm(q, W[p + "attn_q_norm.weight"], c)
    q = rope(q, c, freqs, mscale)
    src = c.src(l)
    if src == l:
        g = c.g(l)
        kk = linear(x, W, p + "attn_k").view(T, g, k)
        vv = linear(x, W, p + "attn_v").view(T, g, k)
        if c.qk_norm:
            kk = rms_norm(kk, W[p + "attn_k_norm.weight"], c)
        kk = rope(kk, c, freqs, mscale)
        kv_store[l] = (kk, vv)
    kk, vv = kv_store[src]
    g = kk.shape[1]
    head_map = [i * g // h for i in range(h)]
    kk, vv = kk[:, head_map, :], vv[:, head_map, :]  # [T, h, k]
    scale = c.attn_scale if c.attn_scale > 0 else 1 / math.sqrt(k)
    s = torch.einsum("thd,shd->hts", q, kk) * scale  # [h, Tq, Tk]
    if c.pos_encoding == "alibi":
        dist = (torch.arange(T)[:, None] - torch.arange(T)[None, :]).to(torch.float64)  # i - j
        s = s - alibi_slopes(h)[:, None, None] * dist[None]
    if c.attn_softcap > 0:
        s = c.attn_softcap * torch.tanh(s / c.attn_softcap)
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    allowed = j <= i
    if local:
        allowed = allowed & (j > i - c.sliding_window)
    s = s.masked_fill(~allowed[None], float("-inf"))
    if c.softmax == "plus_one":
        m = torch.clamp(s.max(-1, keepdim=True).values, min=0.0)
        e = torch.exp(s - m)
        prob = e / (torch.exp(-m) + e.sum(-1, keepdim=True))
    else:
        prob = torch.softmax(s, -1)
    o = torch.einsum("hts,shd->thd", prob, vv).reshape(T, h * k)
    return linear(o, W, p + "attn_output")


def alibi_slopes(h):
    """Press et al. 2022: m_i = 2^(-8 i / n) for n = h a power of two; otherwise the
    slopes of the largest power of two below h, then every other slope of twice
    that (as BLOOM's build_alibi_tensor does). Stored as f32, as tpp keeps them."""
    n = 2 ** int(math.floor(math.log2(h)))
    slopes = [2.0 ** (-8.0 * i / n) for i in range(1, n + 1)]
    slopes += [2.0 ** (-4.0 * i / n) for i in range(1, 2 * (h - n), 2)]
    return torch.tensor(slopes, dtype=torch.float32).to(torch.float64)


def forward(c, W, tokens):
    T = len(tokens)
    x = W["tok_embd.weight"][tokens] * c.embed_scale
    if c.pos_encoding == "learned":
        x = x + W["pos_embd.weight"][:T]
    elif c.pos_encoding == "sinusoidal":
        pos = torch.arange(T, dtype=torch.float64)[:, None]
        i2 = torch.arange(0, c.d_model, 2, dtype=torch.float64)[None, :]
        ang = pos / 10000.0 ** (i2 / c.d_model)
        pe = torch.zeros(T, c.d_model, dtype=torch.float64)
        pe[:, 0::2] = torch.sin(ang)
        pe[:, 1::2] = torch.cos(ang)[:, : pe[:, 1::2].shape[1]]
        x = x + pe
    kv_store = {}
    for l in range(c.n_layers):
        p = f"blk.{l}."
        post, sandwich = c.norm_placement == "post", c.norm_placement == "sandwich"
        a = x if post else apply_norm(x, W, p + "attn_norm", c)
        o = attention(a, W, l, c, kv_store, T)
        if c.parallel_block:
            f = ffn(a, W, p, c)
            if sandwich:
                o = apply_norm(o, W, p + "attn_post_norm", c)
                f = apply_norm(f, W, p + "ffn_post_norm", c)
            x = x + o + f
            if post:
                x = apply_norm(x, W, p + "attn_norm", c)
            continue
        if sandwich:
            o = apply_norm(o, W, p + "attn_post_norm", c)
        x = x + o
        if post:
            x = apply_norm(x, W, p + "attn_norm", c)
            b = x
        else:
            b = apply_norm(x, W, p + "ffn_norm", c)
        f = ffn(b, W, p, c)
        if sandwich:
            f = apply_norm(f, W, p + "ffn_post_norm", c)
        x = x + f
        if post:
            x = apply_norm(x, W, p + "ffn_norm", c)
    if c.norm_placement != "post":
        x = apply_norm(x, W, "output_norm", c)
    out = W["tok_embd.weight"] if c.tie_embeddings else W["output.weight"]
    logits = x @ out.T
    if c.final_softcap > 0:
        logits = c.final_softcap * torch.tanh(logits / c.final_softcap)
    return logits


# ---------------------------------------------------------------------------
# Cases

def cases():
    L3 = {"type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 64}
    return {
        "base": Cfg(),
        "mha_tied_interleaved": Cfg(n_kv_heads=4, tie_embeddings=True, rope_layout="interleaved"),
        "mqa": Cfg(n_kv_heads=1),
        # theta 500000, k = 8: wavelengths 6.3, 168, 4467, 118000 -> one below high_wavelen 16,
        # one inside [16, 64], two above 64: all three llama3 regimes.
        "llama3_like": Cfg(tie_embeddings=True, rope_theta=500000.0, rope_scaling=L3),
        "mistral_like": Cfg(sliding_window=4),
        "qwen2_like": Cfg(qkv_bias=True, tie_embeddings=True),
        "qwen3_like": Cfg(qk_norm=True),
        "gemma2_like": Cfg(n_layers=3, norm_placement="sandwich", attn_softcap=2.0, final_softcap=3.0,
                           layer_types=["local", "global"], sliding_window=3, ffn="geglu", gelu_approx="tanh",
                           norm_one_plus=True, embed_scale=math.sqrt(32), attn_scale=24 ** -0.5,
                           tie_embeddings=True),
        "gemma3_like": Cfg(n_layers=3, qk_norm=True, norm_one_plus=True, norm_placement="sandwich",
                           rope_theta=1e6, rope_local_theta=1e4, layer_types=["local", "local", "global"],
                           sliding_window=4, rope_scaling={"type": "linear", "factor": 4.0}, ffn="geglu",
                           gelu_approx="tanh"),
        "gpt2_like": Cfg(pos_encoding="learned", max_seq_len=16, norm="layernorm", ffn="gelu", qkv_bias=True,
                         o_bias=True, mlp_bias=True, n_kv_heads=4, tie_embeddings=True),
        "decilm_like": Cfg(n_layers=3, n_kv_heads=[4, 2, 1]),
        "cla": Cfg(n_layers=3, cla_share=2),
        "parallel": Cfg(parallel_block=True),
        "plus_one": Cfg(softmax="plus_one"),
        "ffn_relu": Cfg(ffn="relu"),
        "ffn_glu": Cfg(ffn="glu"),
        "ffn_bilinear": Cfg(ffn="bilinear"),
        "ffn_reglu": Cfg(ffn="reglu", mlp_bias=True, param_match=True, multiple_of=8, d_ff=64),
        "post_norm": Cfg(norm_placement="post"),
        "post_parallel": Cfg(norm_placement="post", parallel_block=True),
        "sinusoidal": Cfg(pos_encoding="sinusoidal"),
        "nope": Cfg(pos_encoding="none"),
        "partial_rotary_half": Cfg(rotary_dim=4),
        "partial_rotary_interleaved": Cfg(rotary_dim=4, rope_layout="interleaved"),
        "rope_linear": Cfg(rope_scaling={"type": "linear", "factor": 2.0}),
        "rope_ntk": Cfg(rope_scaling={"type": "ntk", "factor": 4.0}),
        "rope_dynamic_ntk": Cfg(rope_scaling={"type": "dynamic_ntk", "factor": 2.0,
                                              "original_max_position_embeddings": 6}),
        "rope_yarn": Cfg(rope_scaling={"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 8,
                                       "beta_fast": 32.0, "beta_slow": 1.0}),
        "sandwich_layernorm": Cfg(norm_placement="sandwich", norm="layernorm"),
        "softcap_window_mix": Cfg(n_layers=4, attn_softcap=1.5, sliding_window=5, softmax="plus_one",
                                  qk_norm=True, cla_share=2, n_kv_heads=[2, 2, 1, 1],
                                  layer_types=["local", "local", "global", "global"]),
    }


def later_cases():
    """Switches added after the first cases (appended so earlier seeds stay)."""
    return {
        # PaLM: LayerNorm without biases.
        "layernorm_no_bias": Cfg(norm="layernorm", norm_bias=False, ffn="gelu", norm_placement="sandwich"),
        # ALiBi (Press et al.): h = 4 (a power of two) and h = 6 (BLOOM's interleaved slopes), with GQA,
        # a window and the plus-one softmax.
        "alibi": Cfg(pos_encoding="alibi"),
        "alibi_h6_window": Cfg(pos_encoding="alibi", n_heads=6, n_kv_heads=3, d_model=48, sliding_window=5,
                               softmax="plus_one", attn_softcap=2.5),
    }


HF_CASES = {
    "hf_llama_f32": (Cfg(rope_theta=10000.0), torch.float32, None),
    "hf_llama_tied_bf16": (Cfg(tie_embeddings=True, rope_theta=500000.0,
                               rope_scaling={"type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                             "high_freq_factor": 4.0, "original_max_position_embeddings": 64}),
                           torch.bfloat16, "llama3"),
    "hf_llama_f16": (Cfg(rope_theta=10000.0), torch.float16, None),
    # Other families in their own config keys; the math is the matching switch set.
    "hf_mistral_f32": (Cfg(rope_theta=1000000.0, sliding_window=4), torch.float32, "mistral"),
    "hf_qwen2_bf16": (Cfg(qkv_bias=True, tie_embeddings=True, rope_theta=1000000.0, norm_eps=1e-6),
                      torch.bfloat16, "qwen2"),
    "hf_qwen3_f32": (Cfg(qk_norm=True, head_dim=16, rope_theta=1000000.0, norm_eps=1e-6), torch.float32,
                     "qwen3"),
    "hf_gemma2_f32": (Cfg(n_layers=3, norm_placement="sandwich", attn_softcap=2.0, final_softcap=3.0,
                          layer_types=["local", "global"], sliding_window=3, ffn="geglu", gelu_approx="tanh",
                          norm_one_plus=True, embed_scale=math.sqrt(32), attn_scale=24 ** -0.5,
                          tie_embeddings=True, norm_eps=1e-6), torch.float32, "gemma2"),
    "hf_gemma3_bf16": (Cfg(n_layers=3, qk_norm=True, norm_one_plus=True, norm_placement="sandwich",
                           rope_theta=1e6, rope_local_theta=1e4, layer_types=["local", "local", "global"],
                           sliding_window=4, rope_scaling={"type": "linear", "factor": 4.0}, ffn="geglu",
                           gelu_approx="tanh", embed_scale=math.sqrt(32), attn_scale=24 ** -0.5,
                           tie_embeddings=True, norm_eps=1e-6), torch.bfloat16, "gemma3"),
    # Phi-3: Llama math, q/k/v fused into qkv_proj and gate/up into gate_up_proj.
    "hf_phi3_f32": (Cfg(rope_theta=10000.0, sliding_window=5), torch.float32, "phi3"),
}

# Gemma's names for the sandwich norms of a block.
GEMMA_NORMS = {"attn_post_norm.weight": "post_attention_layernorm.weight",
               "ffn_norm.weight": "pre_feedforward_layernorm.weight",
               "ffn_post_norm.weight": "post_feedforward_layernorm.weight"}

HF_NAMES = [
    ("tok_embd.weight", "model.embed_tokens.weight"), ("output_norm.weight", "model.norm.weight"),
    ("output.weight", "lm_head.weight"), ("attn_norm.weight", "input_layernorm.weight"),
    ("attn_q.weight", "self_attn.q_proj.weight"), ("attn_k.weight", "self_attn.k_proj.weight"),
    ("attn_v.weight", "self_attn.v_proj.weight"), ("attn_output.weight", "self_attn.o_proj.weight"),
    ("ffn_norm.weight", "post_attention_layernorm.weight"), ("ffn_gate.weight", "mlp.gate_proj.weight"),
    ("ffn_up.weight", "mlp.up_proj.weight"), ("ffn_down.weight", "mlp.down_proj.weight"),
    ("attn_q.bias", "self_attn.q_proj.bias"), ("attn_k.bias", "self_attn.k_proj.bias"),
    ("attn_v.bias", "self_attn.v_proj.bias"), ("attn_q_norm.weight", "self_attn.q_norm.weight"),
    ("attn_k_norm.weight", "self_attn.k_norm.weight"),
]


def hf_name(name, family=None):
    if name.startswith("blk."):
        _, l, rest = name.split(".", 2)
        if family in ("gemma2", "gemma3") and rest in GEMMA_NORMS:
            return f"model.layers.{l}." + GEMMA_NORMS[rest]
        return f"model.layers.{l}." + dict(HF_NAMES)[rest]
    return dict(HF_NAMES)[name]


def stored(W, dtype):
    """The weights as written (matrices in `dtype`, vectors f32) and their float64 values."""
    files, values = {}, {}
    for name, t in W.items():
        dt = dtype if t.dim() == 2 else torch.float32
        s = t.to(dt)
        files[name] = s
        values[name] = s.to(torch.float64)
    return files, values


def self_checks():
    gen = torch.Generator().manual_seed(99)
    tokens = torch.randint(0, 67, (T_TOKENS,), generator=gen)
    # GQA equals MHA whose KV heads are repeated.
    c = Cfg()
    W = make_weights(c, gen)
    m = Cfg(n_kv_heads=4)
    Wm = dict(W)
    for l in range(c.n_layers):
        for part in ("attn_k", "attn_v"):
            w = W[f"blk.{l}.{part}.weight"].view(2, 8, 32)
            Wm[f"blk.{l}.{part}.weight"] = w[[0, 0, 1, 1]].reshape(32, 32)
    assert torch.allclose(forward(c, W, tokens), forward(m, Wm, tokens), atol=1e-12)
    # A window covering the sequence equals global attention.
    assert torch.allclose(forward(Cfg(sliding_window=T_TOKENS), W, tokens), forward(c, W, tokens), atol=1e-12)
    # plus_one differs from standard softmax (the switch is live).
    assert not torch.allclose(forward(Cfg(softmax="plus_one"), W, tokens), forward(c, W, tokens), atol=1e-6)
    # Logits of position t do not depend on later tokens (causality).
    assert torch.allclose(forward(c, W, tokens[:5]), forward(c, W, tokens)[:5], atol=1e-12)
    # ALiBi slopes for 8 heads are the paper's 1/2, 1/4, ..., 1/256.
    assert torch.equal(alibi_slopes(8), torch.tensor([2.0 ** -i for i in range(1, 9)], dtype=torch.float64))
    print("self-checks passed (GQA = repeated MHA, window >= T = global, plus_one live, causal, ALiBi slopes)")


def main():
    torch.manual_seed(0)
    self_checks()
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    all_cases = [(n, c, torch.float32, None) for n, c in cases().items()]
    all_cases += [(n, c, dt, rs) for n, (c, dt, rs) in HF_CASES.items()]
    all_cases += [(n, c, torch.float32, None) for n, c in later_cases().items()]
    total = 0
    for i, (name, c, dtype, hf_rope) in enumerate(all_cases):
        seed = 1000 + i
        gen = torch.Generator().manual_seed(seed)
        W = make_weights(c, gen)
        files, values = stored(W, dtype)
        tokens = torch.randint(0, c.vocab_size, (T_TOKENS,), generator=gen)
        logits = forward(c, values, tokens)
        d = os.path.join(OUT, name)
        os.makedirs(d)
        meta = {"generator": "tools/golden/gen_models.py", "seed": str(seed), "torch_version": torch.__version__}
        if name.startswith("hf_"):
            cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": c.d_model,
                   "intermediate_size": c.d_ff, "num_hidden_layers": c.n_layers,
                   "num_attention_heads": c.n_heads, "num_key_value_heads": c.n_kv_heads,
                   "head_dim": c.head_dim, "vocab_size": c.vocab_size,
                   "max_position_embeddings": c.max_seq_len, "rms_norm_eps": c.norm_eps,
                   "rope_theta": c.rope_theta, "tie_word_embeddings": c.tie_embeddings,
                   "attention_bias": False, "mlp_bias": False, "hidden_act": "silu",
                   "torch_dtype": {torch.float32: "float32", torch.bfloat16: "bfloat16",
                                   torch.float16: "float16"}[dtype],
                   "rope_scaling": None, "bos_token_id": 1, "eos_token_id": 2}
            if hf_rope == "llama3":
                rs = dict(c.rope_scaling)
                rs.pop("type")
                cfg["rope_scaling"] = {"rope_type": "llama3", **rs}
            elif hf_rope == "mistral":
                cfg.update(architectures=["MistralForCausalLM"], model_type="mistral",
                           sliding_window=c.sliding_window)
                del cfg["attention_bias"], cfg["mlp_bias"]
            elif hf_rope == "qwen2":
                cfg.update(architectures=["Qwen2ForCausalLM"], model_type="qwen2", use_sliding_window=False,
                           sliding_window=4096, max_window_layers=c.n_layers)
                del cfg["attention_bias"], cfg["mlp_bias"], cfg["head_dim"]
            elif hf_rope == "gemma2":
                for key in ("attention_bias", "mlp_bias", "hidden_act"):
                    del cfg[key]
                cfg.update(architectures=["Gemma2ForCausalLM"], model_type="gemma2",
                           hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=24,
                           sliding_window=c.sliding_window, attn_logit_softcapping=c.attn_softcap,
                           final_logit_softcapping=c.final_softcap, cache_implementation="hybrid",
                           attention_bias=False)
            elif hf_rope == "gemma3":
                for key in ("attention_bias", "mlp_bias", "hidden_act"):
                    del cfg[key]
                cfg.update(architectures=["Gemma3ForCausalLM"], model_type="gemma3_text",
                           hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=24,
                           sliding_window=c.sliding_window, sliding_window_pattern=3, rope_local_base_freq=1e4,
                           rope_scaling={"rope_type": "linear", "factor": 4.0}, attn_logit_softcapping=None,
                           final_logit_softcapping=None, attention_bias=False)
            elif hf_rope == "phi3":
                for key in ("head_dim", "mlp_bias"):
                    del cfg[key]
                cfg.update(architectures=["Phi3ForCausalLM"], model_type="phi3", sliding_window=c.sliding_window,
                           original_max_position_embeddings=c.max_seq_len, resid_pdrop=0.0, embd_pdrop=0.0,
                           attention_dropout=0.0, pad_token_id=0)
            elif hf_rope == "qwen3":
                cfg.update(architectures=["Qwen3ForCausalLM"], model_type="qwen3", use_sliding_window=False,
                           sliding_window=None, max_window_layers=c.n_layers)
                del cfg["mlp_bias"]
            files = {hf_name(n, hf_rope): t for n, t in files.items()}
            if hf_rope == "phi3":
                for l in range(c.n_layers):
                    a = f"model.layers.{l}."
                    files[a + "self_attn.qkv_proj.weight"] = torch.cat(
                        [files.pop(a + f"self_attn.{x}_proj.weight") for x in "qkv"])
                    files[a + "mlp.gate_up_proj.weight"] = torch.cat(
                        [files.pop(a + "mlp.gate_proj.weight"), files.pop(a + "mlp.up_proj.weight")])
        else:
            cfg = c.to_json()
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=1)
        write_safetensors(os.path.join(d, "model.safetensors"), files, meta)
        golden = {"tokens": tokens.to(torch.int32), "logits": logits.to(torch.float32)}
        if c.rope_scaling.get("type") == "dynamic_ntk":
            n = c.rope_scaling["original_max_position_embeddings"]
            golden["logits_prefix"] = forward(c, values, tokens[:n]).to(torch.float32)
        write_safetensors(os.path.join(d, "golden.safetensors"), golden, meta)
        size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        total += size
        print(f"{name:28s} {size / 1024:6.1f} KB  logits std {logits.std().item():.2f}")
    print(f"{len(all_cases)} cases, {total / 1024:.0f} KB in {OUT}")


if __name__ == "__main__":
    sys.exit(main())
