// GGML's K-quant block formats as llama.cpp stores them in GGUF files: rows
// cut into super-blocks of 256 weights, each with an f16 scale (and an f16
// minimum scale for Q4_K / Q5_K) and small integer scales per sub-block.
//
//   Q4_K (144 bytes): f16 d, f16 dmin, scales[12], qs[128]
//     8 sub-blocks of 32; sub-block j has a 6-bit scale sc_j and minimum m_j
//     packed into scales[12]: for j < 4, sc_j = s[j] & 63, m_j = s[j+4] & 63;
//     for j >= 4, sc_j = (s[j+4] & 15) | (s[j-4] >> 6) << 4 and
//     m_j = (s[j+4] >> 4) | (s[j] >> 6) << 4.
//     Weights come in 4 chunks of 64: qs[32c + l] holds weight 64c + l in its
//     low nibble and weight 64c + 32 + l in its high nibble.
//     w = (d * sc_j) * q - (dmin * m_j), q in 0..15.
//   Q5_K (176 bytes): f16 d, f16 dmin, scales[12], qh[32], qs[128]
//     as Q4_K with a fifth bit: weight 64c + l takes bit 2c of qh[l], weight
//     64c + 32 + l bit 2c + 1; q in 0..31.
//   Q6_K (210 bytes): ql[128], qh[64], int8 scales[16], f16 d
//     16 sub-blocks of 16 with signed 8-bit scales. Per half h (128 weights),
//     for l < 32: weights 128h + l, +32, +64, +96 take the low nibbles of
//     ql[64h + l], ql[64h + 32 + l], then their high nibbles, and 2-bit pairs
//     0-1, 2-3, 4-5, 6-7 of qh[32h + l]; w = (d * sc) * (q - 32), q in 0..63.
// Ref: the block structs and dequantize_row_q{4,5,6}_K of ggml's ggml-quants.c.
//
// These are the scalar reference decoders. They compute each weight with those float
// operations in that order, as the reference does (no fused multiply-add).
// The kernel table (tpp/kernels/api.h) holds each level's decoders, which give
// the same bits.
//
// The encoders write the bytes GGML's reference quantisers write. They fit
// codes per sub-block, then quantise the sub-block scales against the
// super-block's f16 scale, then round every weight again with the scales the
// block actually stores:
//   Q4_K / Q5_K (nmax = 15 / 31): each sub-block of 32 gets weights
//     w_i = sqrt(mean x^2) + |x_i| and an affine fit x ~ scale * q - min, with
//     min >= 0 (a sub-block of positive weights keeps min = 0). The first
//     guess spans [min(x, 0), max x] with nmax steps; then 21 (Q4_K: iscale
//     = (nmax - 1 + 0.1 t) / span, t = 0..20) or 16 (Q5_K: nmax - 0.5 + 0.1 t,
//     t = 0..15) candidate grids are rounded, each solved for its least
//     squares scale and min, and the one with the least weighted squared
//     error kept (later grids are measured from the latest kept min).
//     d = max scale / 63, dmin = max min / 63 (f16); sc_j = round(63 scale_j
//     / max scale), m_j likewise, capped at 63; then q = round((x + dmin
//     m_j) / (d sc_j)) clamped to 0..nmax. A sub-block whose d sc_j is 0
//     keeps the codes of its fit.
//   Q6_K: each sub-block of 16 is fitted symmetrically, x ~ scale * q with q
//     in -32..31, weighting each weight by x^2: the grid -32 / m (m the
//     weight of largest magnitude, sign included) and 18 neighbours
//     -(32 + 0.1 t) / m, t = +-1..+-9, keeping the one that maximises
//     (sum w x q)^2 / sum w q^2. With s the scale of largest magnitude,
//     d = -s / 128 (f16), sc = min(127, round(-128 scale / s)), and
//     q = round(x / (d sc)) clamped to -32..31. A super-block whose scales
//     are all below 1e-15 is all zeros.
// Rounding is to nearest, ties to even, exactly as GGML's nearest_int (it
// adds 1.5 * 2^23 and reads the low mantissa bits), and every sum is taken in
// f32 in index order. The unit is compiled without floating-point contraction
// (CMakeLists.txt), so no multiply-add is fused where the reference rounds twice.
// Ref: quantize_row_q{4,5,6}_K_ref, make_qkx2_quants and make_qx_quants
// (rmse_type 1) in ggml's ggml-quants.c; tests/golden/kquants/encode_* hold
// the bytes GGML writes (tools/golden/gen_kquant_encode.c).
#pragma once

#include <cstdint>

namespace tpp::kernels {

inline constexpr int kQK = 256;  // weights per K-quant super-block

// n weights (a multiple of 256) from their blocks at `in`.
void dequant_q4_k(float* out, const void* in, int64_t n);
void dequant_q5_k(float* out, const void* in, int64_t n);
void dequant_q6_k(float* out, const void* in, int64_t n);

// n weights (a multiple of 256, all finite) as n / 256 blocks at `out`.
void quantize_q4_k(void* out, const float* in, int64_t n);
void quantize_q5_k(void* out, const float* in, int64_t n);
void quantize_q6_k(void* out, const float* in, int64_t n);

// One super-block's integers as the formats define them: q[i] the code of
// weight i (Q4_K 0..15, Q5_K 0..31, Q6_K 0..63, Q6_K's offset of 32 not
// taken off), sc the sub-block scales (8 of 32 weights for Q4_K / Q5_K,
// 16 of 16 for Q6_K), mn the minimums (Q4_K / Q5_K), d and dmin the f16 bits
// (dmin 0 for Q6_K).
struct KBlockInts {
  uint8_t q[kQK];
  int8_t sc[16];
  uint8_t mn[8];
  uint16_t d, dmin;
};
// five: Q5_K rather than Q4_K.
void unpack_qk_block(KBlockInts& out, const void* block, bool five);
void unpack_q6_k_block(KBlockInts& out, const void* block);

}  // namespace tpp::kernels
