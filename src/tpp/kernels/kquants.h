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
#pragma once

#include <cstdint>

namespace tpp::kernels {

inline constexpr int kQK = 256;  // weights per K-quant super-block

// n weights (a multiple of 256) from their blocks at `in`.
void dequant_q4_k(float* out, const void* in, int64_t n);
void dequant_q5_k(float* out, const void* in, int64_t n);
void dequant_q6_k(float* out, const void* in, int64_t n);

}  // namespace tpp::kernels
