// avx512vnni kernels: declarations only (shared with the dispatcher, which is
// compiled without these flags). The level's table is avx512's plus these.
#pragma once

#include <cstdint>

namespace tpp::kernels::avx512vnni {

void quantize_q8(int8_t* q, float* d, float* s, const float* x, int64_t N, int64_t K);
void matmul_q8_0_packed(float* y, const int8_t* q, const float* d, const float* s, const void* w, int64_t N,
                        int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy);
void matmul_q4_0_packed(float* y, const int8_t* q, const float* d, const float* s, const void* w, int64_t N,
                        int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy);
// K-quants on Q8_K activations (kquants_avx512vnni.cpp).
void quantize_q8_k(int8_t* q, float* d, int16_t* bsum, const float* x, int64_t N, int64_t K);
void matmul_q4_k_q8k(float* y, const int8_t* q, const float* d, const int16_t* bsum, const void* w, int64_t N,
                     int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy);
void matmul_q5_k_q8k(float* y, const int8_t* q, const float* d, const int16_t* bsum, const void* w, int64_t N,
                     int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy);
void matmul_q6_k_q8k(float* y, const int8_t* q, const float* d, const int16_t* bsum, const void* w, int64_t N,
                     int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy);
// K-quants packed (tpp/kernels/packed.h) on Q8_K activations (kernels_avx512vnni.cpp).
void matmul_q4_k_packed(float* y, const int8_t* q, const float* d, const int16_t* bsum, const void* w, int64_t N,
                        int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy);
void matmul_q5_k_packed(float* y, const int8_t* q, const float* d, const int16_t* bsum, const void* w, int64_t N,
                        int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy);
void matmul_q6_k_packed(float* y, const int8_t* q, const float* d, const int16_t* bsum, const void* w, int64_t N,
                        int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy);

// The instruction-set features this unit was compiled with (compiled_features.inc).
extern const char compiled_features[];

}  // namespace tpp::kernels::avx512vnni
