// avx2 kernels: declarations only (this header is shared with the
// dispatcher, which is compiled without avx2 flags, so it declares and
// never defines).
#pragma once

#include <cstdint>

namespace tpp::kernels::avx2 {

void matmul_f32(float* y, const float* x, const float* w, int64_t N, int64_t K, int64_t m_begin,
                int64_t m_end, int64_t ldy);
void matmul_bf16(float* y, const float* x, const uint16_t* w, int64_t N, int64_t K, int64_t m_begin,
                 int64_t m_end, int64_t ldy);
void matmul_f16(float* y, const float* x, const uint16_t* w, int64_t N, int64_t K, int64_t m_begin,
                int64_t m_end, int64_t ldy);
void matmul_q8_0(float* y, const float* x, const void* w, int64_t N, int64_t K, int64_t m_begin, int64_t m_end,
                 int64_t ldy);
void matmul_q4_0(float* y, const float* x, const void* w, int64_t N, int64_t K, int64_t m_begin, int64_t m_end,
                 int64_t ldy);
void dequant_q8_0(float* dst, const void* src, int64_t n);
void dequant_q4_0(float* dst, const void* src, int64_t n);
void gemm_nn_f32(float* y, const float* x, const float* w, int64_t N, int64_t K, int64_t m_begin,
                 int64_t m_end, int64_t ldx, int64_t ldw, int64_t ldy, bool accumulate);
void gemm_tn_f32(float* y, const float* x, const float* w, int64_t N, int64_t K, int64_t m_begin,
                 int64_t m_end, int64_t ldx, int64_t ldw, int64_t ldy, bool accumulate);
float dot_f32(const float* a, const float* b, int64_t n);
void axpy_f32(float* y, float alpha, const float* x, int64_t n);
void scale_f32(float* y, float alpha, int64_t n);
void bf16_to_f32(float* dst, const uint16_t* src, int64_t n);
void f16_to_f32(float* dst, const uint16_t* src, int64_t n);
void attn_step_f32(float* acc, float* m, float* l, const float* q, int G, int k, const void* K, const void* V,
                   int64_t stride, int64_t n, float scale, float softcap);
// K-quants on Q8_K activations (kquants_avx2.cpp; tpp/kernels/api.h).
void quantize_q8_k(int8_t* q, float* d, int16_t* bsum, const float* x, int64_t N, int64_t K);
void matmul_q4_k_q8k(float* y, const int8_t* q, const float* d, const int16_t* bsum, const void* w, int64_t N,
                     int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy);
void matmul_q5_k_q8k(float* y, const int8_t* q, const float* d, const int16_t* bsum, const void* w, int64_t N,
                     int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy);
void matmul_q6_k_q8k(float* y, const int8_t* q, const float* d, const int16_t* bsum, const void* w, int64_t N,
                     int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy);

// The instruction-set features this unit was compiled with (compiled_features.inc):
// data, not code, so reading it is safe on any CPU.
extern const char compiled_features[];

}  // namespace tpp::kernels::avx2
