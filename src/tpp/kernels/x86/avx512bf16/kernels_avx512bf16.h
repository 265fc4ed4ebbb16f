// avx512bf16 kernels: declarations only (shared with the dispatcher, which is
// compiled without these flags). The level's table is avx512vnni's plus these.
#pragma once

#include <cstdint>

namespace tpp::kernels::avx512bf16 {

void to_bf16(uint16_t* dst, const float* src, int64_t n);
void pack_bf16_transposed_f32(void* dst, const float* src, int64_t M, int64_t K, int64_t ld, int64_t g_begin,
                              int64_t g_end);
void transpose_bf16_pairs(uint32_t* dst, int64_t ldd, const float* src, int64_t ld, int64_t N, int64_t m_begin,
                          int64_t m_end);
void matmul_bf16_packed(float* y, const uint16_t* xb, const void* w, int64_t N, int64_t K, int64_t m_begin,
                        int64_t m_end, int64_t ldy, bool accumulate);

// The instruction-set features this unit was compiled with (compiled_features.inc).
extern const char compiled_features[];

}  // namespace tpp::kernels::avx512bf16
