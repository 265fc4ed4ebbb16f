#include "tpp/kernels/scalar/kernels_scalar.h"

#include "tpp/core/dtype.h"

namespace tpp::kernels::scalar {
namespace {

template <class Widen, class W>
void matmul(float* y, const float* x, const W* w, int64_t N, int64_t K, int64_t m_begin, int64_t m_end,
            int64_t ldy, Widen widen) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = m_begin; m < m_end; ++m) {
      const float* xr = x + n * K;
      const W* wr = w + m * K;
      float acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += xr[k] * widen(wr[k]);
      y[n * ldy + m] = acc;
    }
}

}  // namespace

void matmul_f32(float* y, const float* x, const float* w, int64_t N, int64_t K, int64_t m_begin,
                int64_t m_end, int64_t ldy) {
  matmul(y, x, w, N, K, m_begin, m_end, ldy, [](float v) { return v; });
}
void matmul_bf16(float* y, const float* x, const uint16_t* w, int64_t N, int64_t K, int64_t m_begin,
                 int64_t m_end, int64_t ldy) {
  matmul(y, x, w, N, K, m_begin, m_end, ldy, [](uint16_t v) { return tpp::bf16_to_f32(v); });
}
void matmul_f16(float* y, const float* x, const uint16_t* w, int64_t N, int64_t K, int64_t m_begin,
                int64_t m_end, int64_t ldy) {
  matmul(y, x, w, N, K, m_begin, m_end, ldy, [](uint16_t v) { return tpp::f16_to_f32(v); });
}
float dot_f32(const float* a, const float* b, int64_t n) {
  float acc = 0;
  for (int64_t i = 0; i < n; ++i) acc += a[i] * b[i];
  return acc;
}
void axpy_f32(float* y, float alpha, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}
void scale_f32(float* y, float alpha, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] *= alpha;
}
void bf16_to_f32(float* dst, const uint16_t* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = tpp::bf16_to_f32(src[i]);
}
void f16_to_f32(float* dst, const uint16_t* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = tpp::f16_to_f32(src[i]);
}

}  // namespace tpp::kernels::scalar
