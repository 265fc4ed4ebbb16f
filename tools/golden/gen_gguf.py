"""GGUF test files, written independently of tpp from the GGUF description
(ggml's docs/gguf.md) and llama.cpp's conversion conventions.

Each case converts one of the Hugging Face golden checkpoints of
tests/golden/models/hf_* the way llama.cpp's converter does:
  - tensor names token_embd / blk.N.attn_q / ... / output_norm / output;
  - llama: q_proj and k_proj rows permuted so that RoPE rotates adjacent
    pairs (the converter's `permute`);
  - gemma2 / gemma3: every norm weight stored as 1 + w;
  - 1-D tensors in F32; matrices in the case's type. Q8_0 / Q4_0 follow
    ggml's reference quantisers (quantize_row_q8_0_ref / q4_0_ref); a matrix
    whose rows are not a multiple of 32 falls back to F16.
Metadata: general.architecture and the "<arch>.*" hyper-parameters, plus a
small byte-level BPE tokenizer (tokenizer.ggml.*, model "gpt2") and a chat
template. tokenizer_spm.gguf holds only a SentencePiece-style tokenizer
(model "llama": scores and byte tokens); tokenizer_cases.json lists texts and
the ids this script's own tokenizers give for them.

Golden logits: a case whose weights are those of its HF checkpoint reuses that
checkpoint's golden.safetensors; a quantised case gets golden logits computed
by gen_models.py's float64 reference from the dequantised weights
(tests/golden/gguf/<case>.golden.safetensors).

Run: /usr/bin/python3 tools/golden/gen_gguf.py   (writes tests/golden/gguf/)
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_models  # noqa: E402  (the float64 reference forward)

ROOT = os.path.join(HERE, "..", "..")
MODELS = os.path.join(ROOT, "tests", "golden", "models")
OUT = os.path.join(ROOT, "tests", "golden", "gguf")

# case: (HF checkpoint, architecture, matrix type)
CASES = {
    "llama_f32": ("hf_llama_f32", "llama", "F32"),
    "llama_f16": ("hf_llama_f16", "llama", "F16"),
    "llama_q8_0": ("hf_llama_f32", "llama", "Q8_0"),
    "llama_q4_0": ("hf_llama_f32", "llama", "Q4_0"),
    "llama3_tied_bf16": ("hf_llama_tied_bf16", "llama", "BF16"),
    "mistral_f32": ("hf_mistral_f32", "llama", "F32"),
    "qwen2_bf16": ("hf_qwen2_bf16", "qwen2", "BF16"),
    "qwen3_f32": ("hf_qwen3_f32", "qwen3", "F32"),
    "qwen3_q8_0": ("hf_qwen3_f32", "qwen3", "Q8_0"),
    "phi3_q8_0": ("hf_phi3_f32", "phi3", "Q8_0"),
    "gemma2_f32": ("hf_gemma2_f32", "gemma2", "F32"),
    "gemma3_bf16": ("hf_gemma3_bf16", "gemma3", "BF16"),
}

GGML = {"F32": 0, "F16": 1, "Q4_0": 2, "Q8_0": 8, "BF16": 30}
# GGUF value types
U32, I32, F32, BOOL, STRING, ARRAY = 4, 5, 6, 7, 8, 9

HF_TO_GGUF = {
    "model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}
LAYER = {
    "input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight", "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight", "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.bias": "attn_k.bias", "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.q_norm.weight": "attn_q_norm.weight", "self_attn.k_norm.weight": "attn_k_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
    "self_attn.qkv_proj.weight": "attn_qkv.weight", "mlp.gate_up_proj.weight": "ffn_up.weight",
}
LAYER_PRE = dict(LAYER, **{"post_attention_layernorm.weight": "ffn_norm.weight"})
LAYER_GEMMA = dict(LAYER, **{"post_attention_layernorm.weight": "post_attention_norm.weight",
                             "pre_feedforward_layernorm.weight": "ffn_norm.weight",
                             "post_feedforward_layernorm.weight": "post_ffw_norm.weight"})


# ---------------------------------------------------------------------------
# safetensors in

def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        raw = data[base + b:base + end]
        if e["dtype"] == "F32":
            a = np.frombuffer(raw, np.float32)
        elif e["dtype"] == "F16":
            a = np.frombuffer(raw, np.float16).astype(np.float32)
        elif e["dtype"] == "BF16":
            a = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif e["dtype"] == "I32":
            a = np.frombuffer(raw, np.int32)
        else:
            raise ValueError(e["dtype"])
        out[name] = (a.reshape(e["shape"]).copy(), e["dtype"])
    return out


# ---------------------------------------------------------------------------
# ggml's reference quantisers (all arithmetic in float32)

def round_half_away(v):
    return np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))


def quantize_q8_0(x):
    blocks = x.astype(np.float32).reshape(-1, 32)
    out = bytearray()
    deq = np.empty_like(blocks)
    for i, blk in enumerate(blocks):
        amax = np.float32(np.max(np.abs(blk)))
        d = np.float32(amax / np.float32(127))
        inv = np.float32(1) / d if d != 0 else np.float32(0)
        q = round_half_away((blk * inv).astype(np.float32)).astype(np.int8)
        dh = np.float16(d)
        out += dh.tobytes() + q.tobytes()
        deq[i] = np.float32(dh) * q.astype(np.float32)
    return bytes(out), deq.reshape(x.shape)


def quantize_q4_0(x):
    blocks = x.astype(np.float32).reshape(-1, 32)
    out = bytearray()
    deq = np.empty_like(blocks)
    for i, blk in enumerate(blocks):
        m = blk[np.argmax(np.abs(blk))]  # first element of largest magnitude, with its sign
        d = np.float32(m / np.float32(-8))
        inv = np.float32(1) / d if d != 0 else np.float32(0)
        q = np.minimum(15, np.trunc((blk * inv).astype(np.float32) + np.float32(8.5)).astype(np.int8))
        dh = np.float16(d)
        packed = (q[:16].astype(np.uint8) | (q[16:].astype(np.uint8) << 4)).astype(np.uint8)
        out += dh.tobytes() + packed.tobytes()
        deq[i] = np.float32(dh) * (q.astype(np.float32) - 8)
    return bytes(out), deq.reshape(x.shape)


def encode(a, typ):
    """Bytes of a tensor in a GGML type and the float values they hold."""
    if typ == "F32":
        a = a.astype(np.float32)
        return a.tobytes(), a
    if typ == "F16":
        h = a.astype(np.float16)
        return h.tobytes(), h.astype(np.float32)
    if typ == "BF16":
        bits = a.astype(np.float32).view(np.uint32)
        assert np.all(bits & 0xFFFF == 0), "BF16 cases start from bf16 values"
        return (bits >> 16).astype(np.uint16).tobytes(), a.astype(np.float32)
    if typ == "Q8_0":
        return quantize_q8_0(a)
    if typ == "Q4_0":
        return quantize_q4_0(a)
    raise ValueError(typ)


# ---------------------------------------------------------------------------
# GGUF out

def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gvalue(v):
    """(type, bytes) of a metadata value; ints are U32 unless given as ('i32', v)."""
    if isinstance(v, tuple) and v[0] == "i32":
        return I32, struct.pack("<i", v[1])
    if isinstance(v, bool):
        return BOOL, struct.pack("<B", int(v))
    if isinstance(v, int):
        return U32, struct.pack("<I", v)
    if isinstance(v, float):
        return F32, struct.pack("<f", v)
    if isinstance(v, str):
        return STRING, gstr(v)
    if isinstance(v, list):
        if all(isinstance(e, str) for e in v):
            return ARRAY, struct.pack("<IQ", STRING, len(v)) + b"".join(gstr(e) for e in v)
        if all(isinstance(e, float) for e in v):
            return ARRAY, struct.pack("<IQ", F32, len(v)) + b"".join(struct.pack("<f", e) for e in v)
        return ARRAY, struct.pack("<IQ", I32, len(v)) + b"".join(struct.pack("<i", e) for e in v)
    raise TypeError(v)


def write_gguf(path, metadata, tensors, alignment=32):
    head = struct.pack("<IIQQ", 0x46554747, 3, len(tensors), len(metadata))
    for k, v in metadata:
        t, b = gvalue(v)
        head += gstr(k) + struct.pack("<I", t) + b
    blobs, offset = [], 0
    for name, typ, shape, data in tensors:
        head += gstr(name) + struct.pack("<I", len(shape))
        for d in reversed(shape):  # ne[0] is the innermost dimension
            head += struct.pack("<Q", d)
        head += struct.pack("<IQ", GGML[typ], offset)
        pad = (-len(data)) % alignment
        blobs.append(data + b"\0" * pad)
        offset += len(data) + pad
    head += b"\0" * ((-len(head)) % alignment)
    with open(path, "wb") as f:
        f.write(head)
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------------------
# Conversion

def permute(w, n_head, n_head_kv):
    """llama.cpp's q/k row permutation: rotate_half pairs -> adjacent pairs."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w, n_head, n_head_kv):
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_name(hf, arch):
    if hf in HF_TO_GGUF:
        return HF_TO_GGUF[hf]
    parts = hf.split(".")
    layer, rest = parts[2], ".".join(parts[3:])
    table = LAYER_GEMMA if arch.startswith("gemma") else LAYER_PRE
    return f"blk.{layer}.{table[rest]}"


# A byte-level BPE vocabulary small enough for the test models' 67 tokens
# (every model file carries it: GGUF's "gpt2" tokenizer model).
BPE_CHARS = ["Ġ", "t", "h", "e", "a", "c", "s", "!"]
BPE_MERGES = ["t h", "h e", "th e", "Ġ the", "a t", "c at", "Ġ cat", "Ġ s", "s at"]
BPE_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def bpe_vocab(vocab_size):
    tokens = BPE_CHARS + [m.replace(" ", "") for m in BPE_MERGES] + BPE_SPECIALS
    assert len(set(tokens)) == len(tokens)
    types = [1] * (len(tokens) - len(BPE_SPECIALS)) + [3] * len(BPE_SPECIALS)
    while len(tokens) < vocab_size:
        tokens.append(f"[PAD{len(tokens)}]")
        types.append(4)
    return tokens, types


def bpe_encode(text, tokens):
    """Byte-level BPE by merge rank over words (text of lowercase letters, spaces and '!')."""
    rank = {tuple(m.split(" ")): i for i, m in enumerate(BPE_MERGES)}
    ids = []
    for k, special in enumerate(text.split("<|im_end|>")):
        if k:
            ids.append(tokens.index("<|im_end|>"))
        words, cur = [], ""
        for ch in special:
            if (ch == " " or ch == "!") and cur:
                words.append(cur)
                cur = ""
            cur += ch
        if cur:
            words.append(cur)
        for w in words:
            sym = ["Ġ" if c == " " else c for c in w]
            while True:
                pairs = [(rank.get((sym[i], sym[i + 1]), 1 << 30), i) for i in range(len(sym) - 1)]
                if not pairs or min(pairs)[0] == 1 << 30:
                    break
                _, i = min(pairs)
                sym[i:i + 2] = [sym[i] + sym[i + 1]]
            ids += [tokens.index(t) for t in sym]
    return ids


def tokenizer_meta(vocab_size):
    tokens, types = bpe_vocab(vocab_size)
    return [("tokenizer.ggml.model", "gpt2"), ("tokenizer.ggml.pre", "qwen2"), ("tokenizer.ggml.tokens", tokens),
            ("tokenizer.ggml.token_type", types), ("tokenizer.ggml.merges", BPE_MERGES),
            ("tokenizer.ggml.eos_token_id", tokens.index("<|im_end|>")),
            ("tokenizer.ggml.padding_token_id", tokens.index("<|endoftext|>")),
            ("tokenizer.ggml.bos_token_id", tokens.index("<|endoftext|>")),
            ("tokenizer.ggml.add_bos_token", False)]


# A SentencePiece-style vocabulary (GGUF's "llama" tokenizer model: scores,
# byte tokens for fallback), written to a tokenizer-only file.
SPM_PIECES = ["▁", "t", "h", "e", "a", "c", "s", "▁t", "he", "▁the", "▁c", "at", "▁cat", "▁s", "▁sat"]


def spm_vocab():
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + SPM_PIECES
    scores = [0.0, 0.0, 0.0] + [0.0] * 256 + [float(len(p)) - 0.01 * i for i, p in enumerate(SPM_PIECES)]
    types = [2, 3, 3] + [6] * 256 + [1] * len(SPM_PIECES)
    return tokens, scores, types


def spm_encode(text, tokens, scores):
    """llama.cpp's SentencePiece BPE: add "▁" in front, spaces to "▁", merge the
    best-scoring adjacent pair (leftmost on ties) while the merge is a token;
    symbols not in the vocabulary become their UTF-8 bytes."""
    index = {t: i for i, t in enumerate(tokens)}
    sym = list("▁" + text.replace(" ", "▁"))
    while True:
        best = None
        for i in range(len(sym) - 1):
            m = sym[i] + sym[i + 1]
            if m in index and (best is None or scores[index[m]] > best[0]):
                best = (scores[index[m]], i)
        if best is None:
            break
        i = best[1]
        sym[i:i + 2] = [sym[i] + sym[i + 1]]
    ids = [1]  # BOS
    for s_ in sym:
        if s_ in index:
            ids.append(index[s_])
        else:
            ids += [index[f"<0x{b:02X}>"] for b in s_.encode()]
    return ids


TOKENIZER_TEXTS = ["the cat sat", "cat!", "the  cat", " sat", "thé ☃ cat"]


def write_tokenizer_goldens():
    cases = []
    tokens, types = bpe_vocab(67)
    for text in ["the cat sat", "cat!", "the  cat", "sat<|im_end|>the"]:
        cases.append({"file": "llama_f32.gguf", "text": text, "ids": bpe_encode(text, tokens)})
    tokens, scores, types = spm_vocab()
    meta = [("general.architecture", "llama"), ("general.name", "tpp test tokenizer"),
            ("tokenizer.ggml.model", "llama"), ("tokenizer.ggml.tokens", tokens),
            ("tokenizer.ggml.scores", scores), ("tokenizer.ggml.token_type", types),
            ("tokenizer.ggml.bos_token_id", 1), ("tokenizer.ggml.eos_token_id", 2),
            ("tokenizer.ggml.unknown_token_id", 0), ("tokenizer.ggml.add_bos_token", True),
            ("tokenizer.chat_template", CHAT_TEMPLATE)]
    write_gguf(os.path.join(OUT, "tokenizer_spm.gguf"), meta, [])
    for text in TOKENIZER_TEXTS:
        cases.append({"file": "tokenizer_spm.gguf", "text": text, "ids": spm_encode(text, tokens, scores)})
    with open(os.path.join(OUT, "tokenizer_cases.json"), "w") as f:
        json.dump({"generator": "tools/golden/gen_gguf.py", "cases": cases}, f, indent=1, ensure_ascii=False)


# Spelled with the small vocabulary's own tokens.
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['content'] }}<|im_end|>{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>{% endif %}")


def convert(case, src, arch, typ):
    d = os.path.join(MODELS, src)
    cfg = json.load(open(os.path.join(d, "config.json")))
    st = read_safetensors(os.path.join(d, "model.safetensors"))
    h, g = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // h
    gemma = arch.startswith("gemma")
    tensors, values = [], {}
    for hf in sorted(st):
        a, stored = st[hf]
        name = gguf_name(hf, arch)
        if gemma and hf.endswith("norm.weight"):
            a = (a + np.float32(1)).astype(np.float32)
        if arch == "llama" and hf.endswith("q_proj.weight"):
            a = permute(a, h, h)
        if arch == "llama" and hf.endswith("k_proj.weight"):
            a = permute(a, h, g)
        t = "F32" if a.ndim == 1 else typ
        if t in ("Q8_0", "Q4_0") and a.shape[-1] % 32 != 0:
            t = "F16"
        if t == "BF16" and stored != "BF16":
            t = "F32"
        data, val = encode(a, t)
        tensors.append((name, t, list(a.shape), data))
        # float values in HF layout, for the reference
        if arch == "llama" and hf.endswith("q_proj.weight"):
            val = unpermute(val, h, h)
        if arch == "llama" and hf.endswith("k_proj.weight"):
            val = unpermute(val, h, g)
        if gemma and hf.endswith("norm.weight"):
            val = val - np.float32(1)  # back to w: the reference applies 1 + w itself
        values[hf] = val
    p = arch
    meta = [("general.architecture", arch), ("general.name", f"tpp test {case}"),
            ("general.file_type", {"F32": 0, "F16": 1, "Q4_0": 2, "Q8_0": 7, "BF16": 32}[typ]),
            (f"{p}.context_length", cfg["max_position_embeddings"]), (f"{p}.embedding_length", cfg["hidden_size"]),
            (f"{p}.block_count", cfg["num_hidden_layers"]), (f"{p}.feed_forward_length", cfg["intermediate_size"]),
            (f"{p}.attention.head_count", h), (f"{p}.attention.head_count_kv", g),
            (f"{p}.attention.layer_norm_rms_epsilon", float(cfg["rms_norm_eps"])),
            (f"{p}.rope.freq_base", float(cfg["rope_theta"]))]
    if arch == "llama":
        meta += [(f"{p}.rope.dimension_count", head_dim), (f"{p}.vocab_size", cfg["vocab_size"])]
        if cfg.get("sliding_window"):
            # Mistral: llama.cpp's converter writes it as llama; the window key
            # is what a file must carry for the window to be honoured.
            meta += [(f"{p}.attention.sliding_window", cfg["sliding_window"])]
    rs = cfg.get("rope_scaling") or {}
    if rs.get("rope_type") == "llama3":
        # The converter's rope_freqs: the divisor of each pair's inverse frequency.
        factors = []
        low_wavelen = rs["original_max_position_embeddings"] / rs["low_freq_factor"]
        high_wavelen = rs["original_max_position_embeddings"] / rs["high_freq_factor"]
        for i in range(0, head_dim, 2):
            wavelen = 2 * math.pi / (cfg["rope_theta"] ** (-i / head_dim))
            if wavelen < high_wavelen:
                factors.append(1.0)
            elif wavelen > low_wavelen:
                factors.append(rs["factor"])
            else:
                smooth = ((rs["original_max_position_embeddings"] / wavelen - rs["low_freq_factor"])
                          / (rs["high_freq_factor"] - rs["low_freq_factor"]))
                factors.append(1 / ((1 - smooth) / rs["factor"] + smooth))
        a = np.array(factors, np.float32)
        tensors.append(("rope_freqs.weight", "F32", [len(factors)], a.tobytes()))
    if arch == "phi3":
        meta += [(f"{p}.rope.dimension_count", head_dim), (f"{p}.attention.sliding_window", cfg["sliding_window"]),
                 (f"{p}.rope.scaling.original_context_length", cfg["original_max_position_embeddings"])]
    if arch in ("qwen3", "gemma2", "gemma3"):
        meta += [(f"{p}.attention.key_length", head_dim), (f"{p}.attention.value_length", head_dim)]
    if gemma:
        meta += [(f"{p}.attention.sliding_window", cfg["sliding_window"]),
                 (f"{p}.attention.scale", float(cfg["query_pre_attn_scalar"] ** -0.5))]
    if arch == "gemma2":
        meta += [(f"{p}.attn_logit_softcapping", float(cfg["attn_logit_softcapping"])),
                 (f"{p}.final_logit_softcapping", float(cfg["final_logit_softcapping"]))]
    if arch == "gemma3":
        meta += [(f"{p}.attention.sliding_window_pattern", cfg["sliding_window_pattern"]),
                 (f"{p}.rope.scaling.type", cfg["rope_scaling"]["rope_type"]),
                 (f"{p}.rope.scaling.factor", float(cfg["rope_scaling"]["factor"]))]
    meta += tokenizer_meta(cfg["vocab_size"]) + [("tokenizer.chat_template", CHAT_TEMPLATE)]
    write_gguf(os.path.join(OUT, case + ".gguf"), meta, tensors)
    return tensors, values


def golden_quantised(case, src, values):
    """Float64 reference logits from the dequantised weights."""
    c, _, family = gen_models.HF_CASES[src]
    names = {}  # HF name -> tpp name, as gen_models writes them
    for tpp in ("tok_embd.weight", "output_norm.weight", "output.weight"):
        names[gen_models.hf_name(tpp)] = tpp
    for l in range(c.n_layers):
        for rest in [r for r, _ in gen_models.HF_NAMES if "." in r] + list(gen_models.GEMMA_NORMS):
            try:
                names[gen_models.hf_name(f"blk.{l}.{rest}", family)] = f"blk.{l}.{rest}"
            except KeyError:
                pass
    values = dict(values)
    for hf in [n for n in values if n.endswith("qkv_proj.weight") or n.endswith("gate_up_proj.weight")]:
        v, base = values.pop(hf), hf.rsplit(".", 2)[0]
        if hf.endswith("qkv_proj.weight"):
            q, g = c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim
            values[base + ".q_proj.weight"], values[base + ".k_proj.weight"], values[base + ".v_proj.weight"] = (
                v[:q], v[q:q + g], v[q + g:])
        else:
            F = v.shape[0] // 2
            values[base + ".gate_proj.weight"], values[base + ".up_proj.weight"] = v[:F], v[F:]
    weights = {names[hf]: torch.from_numpy(v.astype(np.float64)) for hf, v in values.items()}
    tokens = torch.from_numpy(read_safetensors(os.path.join(MODELS, src, "golden.safetensors"))["tokens"][0]
                              .astype(np.int64))
    logits = gen_models.forward(c, weights, tokens)
    gen_models.write_safetensors(os.path.join(OUT, case + ".golden.safetensors"),
                                 {"tokens": tokens.to(torch.int32), "logits": logits.to(torch.float32)},
                                 {"generator": "tools/golden/gen_gguf.py", "source": src})
    return logits


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    for case, (src, arch, typ) in CASES.items():
        tensors, values = convert(case, src, arch, typ)
        size = os.path.getsize(os.path.join(OUT, case + ".gguf"))
        note = ""
        if typ in ("Q8_0", "Q4_0"):
            logits = golden_quantised(case, src, values)
            ref = torch.from_numpy(read_safetensors(os.path.join(MODELS, src, "golden.safetensors"))["logits"][0])
            note = f"  max |logit - unquantised| {float((logits.float() - ref).abs().max()):.4f}"
        print(f"{case:14s} {size / 1024:6.1f} KB  from {src}{note}")
    write_tokenizer_goldens()


if __name__ == "__main__":
    sys.exit(main())
