// Scalar reference kernels (plain C++, always compiled): the readable
// definition of every entry of the kernel table and the reference in tests.
#pragma once

#include <cstdint>

namespace tpp::kernels::scalar {

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
float max_f32(const float* x, int64_t n);
float exp_sum_f32(float* dst, const float* x, float shift, int64_t n);
void bf16_to_f32(float* dst, const uint16_t* src, int64_t n);
void f16_to_f32(float* dst, const uint16_t* src, int64_t n);
void attn_step_f32(float* acc, float* m, float* l, const float* q, int G, int k, const void* K, const void* V,
                   int64_t stride, int64_t n, float scale, float softcap);
// The int8 kernels' definition (not in the scalar table: a level without
// 8-bit dot products keeps f32 activations; these are the tests' reference).
void quantize_q8(int8_t* q, float* d, float* s, const float* x, int64_t N, int64_t K);
void matmul_q8_0_packed(float* y, const int8_t* q, const float* d, const float* s, const void* w, int64_t N,
                        int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy);
void matmul_q4_0_packed(float* y, const int8_t* q, const float* d, const float* s, const void* w, int64_t N,
                        int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy);
// The K-quant int8 kernels' definition (api.h), integer sums per super-block.
void quantize_q8_k(int8_t* q, float* d, int16_t* bsum, const float* x, int64_t N, int64_t K);
void matmul_q4_k_q8k(float* y, const int8_t* q, const float* d, const int16_t* bsum, const void* w, int64_t N,
                     int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy);
void matmul_q5_k_q8k(float* y, const int8_t* q, const float* d, const int16_t* bsum, const void* w, int64_t N,
                     int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy);
void matmul_q6_k_q8k(float* y, const int8_t* q, const float* d, const int16_t* bsum, const void* w, int64_t N,
                     int64_t K, int64_t m_begin, int64_t m_end, int64_t ldy);
// The packed f32 kernel's definition (the tests' reference, as above).
void matmul_f32_packed(float* y, const float* x, const void* w, int64_t N, int64_t K, int64_t m_begin,
                       int64_t m_end, int64_t ldy, bool accumulate);
void matmul_f32_packed_xt(float* y, const float* x, int64_t ldx, const void* w, int64_t N, int64_t K,
                          int64_t m_begin, int64_t m_end, int64_t ldy, bool accumulate);
// The bf16 dot kernels' definition (the tests' reference, as above).
void to_bf16(uint16_t* dst, const float* src, int64_t n);
void matmul_bf16_packed(float* y, const uint16_t* xb, const void* w, int64_t N, int64_t K, int64_t m_begin,
                        int64_t m_end, int64_t ldy, bool accumulate);

// The instruction-set features this unit was compiled with (compiled_features.inc):
// data, not code, so reading it is safe on any CPU.
extern const char compiled_features[];

}  // namespace tpp::kernels::scalar
