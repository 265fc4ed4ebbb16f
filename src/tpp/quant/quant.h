// GGML's block quantisation formats q8_0 and q4_0, as llama.cpp stores them in
// GGUF files: rows of K elements (K a multiple of 32) cut into blocks of 32,
// each block an f16 scale d followed by its integers (layouts in
// tpp/kernels/api.h). Quantising follows GGML's reference rounding, so a row
// quantised here is byte-identical to the same row quantised by llama.cpp:
//   q8_0: d = max|x| / 127, q = round(x / d) (halves away from zero);
//   q4_0: m = the element of largest magnitude (with its sign), d = m / -8,
//         q = min(15, trunc(x / d + 8.5)).
// Matmul and dequantisation kernels live in tpp/kernels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "tpp/core/dtype.h"

namespace tpp::quant {

inline constexpr int kBlock = 32;

// Quantises n finite floats into dtype_bytes(t, n) bytes at out: t is q8_0 or
// q4_0 (n a multiple of 32), or one of the K-quants q4_k, q5_k and q6_k (n a
// multiple of 256; GGML's reference rounding too, see tpp/kernels/kquants.h).
void quantize_row(DType t, const float* x, int64_t n, std::byte* out);
// The inverse (the kernel table's dequantiser).
void dequantize_row(DType t, const std::byte* in, int64_t n, float* out);

}  // namespace tpp::quant
