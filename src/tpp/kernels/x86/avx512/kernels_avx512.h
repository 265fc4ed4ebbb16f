// avx512 kernels: declarations only (this header is shared with the
// dispatcher, which is compiled without avx512 flags, so it declares and
// never defines).
#pragma once

#include <cstdint>

#include "tpp/kernels/optim.h"

namespace tpp::kernels::avx512 {

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
void matmul_f32_packed(float* y, const float* x, const void* w, int64_t N, int64_t K, int64_t m_begin,
                       int64_t m_end, int64_t ldy, bool accumulate);
void matmul_f32_packed_xt(float* y, const float* x, int64_t ldx, const void* w, int64_t N, int64_t K,
                          int64_t m_begin, int64_t m_end, int64_t ldy, bool accumulate);
void dequant_q8_0(float* dst, const void* src, int64_t n);
void dequant_q4_0(float* dst, const void* src, int64_t n);
void dequant_q4_k(float* dst, const void* src, int64_t n);
void dequant_q5_k(float* dst, const void* src, int64_t n);
void dequant_q6_k(float* dst, const void* src, int64_t n);
void matmul_q4_k(float* y, const float* x, const void* w, int64_t N, int64_t K, int64_t m_begin, int64_t m_end,
                 int64_t ldy);
void matmul_q5_k(float* y, const float* x, const void* w, int64_t N, int64_t K, int64_t m_begin, int64_t m_end,
                 int64_t ldy);
void matmul_q6_k(float* y, const float* x, const void* w, int64_t N, int64_t K, int64_t m_begin, int64_t m_end,
                 int64_t ldy);
void gemm_nn_f32(float* y, const float* x, const float* w, int64_t N, int64_t K, int64_t m_begin,
                 int64_t m_end, int64_t ldx, int64_t ldw, int64_t ldy, bool accumulate);
void gemm_tn_f32(float* y, const float* x, const float* w, int64_t N, int64_t K, int64_t m_begin,
                 int64_t m_end, int64_t ldx, int64_t ldw, int64_t ldy, bool accumulate);
float dot_f32(const float* a, const float* b, int64_t n);
void axpy_f32(float* y, float alpha, const float* x, int64_t n);
void scale_f32(float* y, float alpha, int64_t n);
void pack_f32_group(float* dst, const float* src, int64_t rows, int64_t K);
float max_f32(const float* x, int64_t n);
float exp_sum_f32(float* dst, const float* x, float shift, int64_t n);
void swiglu_f32(float* h, const float* gate, const float* up, int64_t n);
void swiglu_backward_f32(float* dgate, float* dup, const float* dh, const float* gate, const float* up, int64_t n);
void adamw_f32(float* p, const float* grad, float* m, float* v, int64_t n, const AdamWCoeffs& c);
void bf16_to_f32(float* dst, const uint16_t* src, int64_t n);
void f16_to_f32(float* dst, const uint16_t* src, int64_t n);
void attn_step_f32(float* acc, float* m, float* l, const float* q, int G, int k, const void* K, const void* V,
                   int64_t stride, int64_t n, float scale, float softcap);
void attn_step_f16(float* acc, float* m, float* l, const float* q, int G, int k, const void* K, const void* V,
                   int64_t stride, int64_t n, float scale, float softcap);
void attn_step_bf16(float* acc, float* m, float* l, const float* q, int G, int k, const void* K, const void* V,
                    int64_t stride, int64_t n, float scale, float softcap);
void attn_step_q8_0(float* acc, float* m, float* l, const float* q, int G, int k, const void* K, const void* V,
                    int64_t stride, int64_t n, float scale, float softcap);

// The instruction-set features this unit was compiled with (compiled_features.inc):
// data, not code, so reading it is safe on any CPU.
extern const char compiled_features[];

}  // namespace tpp::kernels::avx512
