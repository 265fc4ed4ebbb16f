#include "tpp/ops/linear.h"

#include <cstring>

#include "tpp/core/error.h"
#include "tpp/kernels/api.h"

namespace tpp {

void MatrixRef::row_f32(int64_t r, float* out) const {
  const auto& k = kernels::kernels();
  switch (dtype) {
    case DType::f32:
      std::memcpy(out, static_cast<const float*>(data) + r * cols, size_t(cols) * sizeof(float));
      return;
    case DType::bf16:
      k.bf16_to_f32(out, static_cast<const uint16_t*>(data) + r * cols, cols);
      return;
    case DType::f16:
      k.f16_to_f32(out, static_cast<const uint16_t*>(data) + r * cols, cols);
      return;
    default:
      fail("matrix row: unsupported dtype {}", dtype_name(dtype));
  }
}

void linear_forward(float* y, const float* x, int64_t N, const MatrixRef& W,
                    std::span<const float> bias, ThreadPool& pool, int64_t ldy) {
  const int64_t M = W.rows, K = W.cols;
  if (ldy == 0) ldy = M;
  TPP_CHECK(bias.empty() || int64_t(bias.size()) == M, "linear: bias has {} elements, expected {}",
            bias.size(), M);
  const auto& k = kernels::kernels();
  // Grain of 16 output rows keeps each worker's slice a multiple of the
  // kernels' row tile and of a cache line of y.
  pool.parallel_for(size_t(M), 16, [&](size_t m0, size_t m1, size_t) {
    switch (W.dtype) {
      case DType::f32:
        k.matmul_f32(y, x, static_cast<const float*>(W.data), N, K, int64_t(m0), int64_t(m1), ldy);
        break;
      case DType::bf16:
        k.matmul_bf16(y, x, static_cast<const uint16_t*>(W.data), N, K, int64_t(m0), int64_t(m1), ldy);
        break;
      case DType::f16:
        k.matmul_f16(y, x, static_cast<const uint16_t*>(W.data), N, K, int64_t(m0), int64_t(m1), ldy);
        break;
      default:
        fail("linear: unsupported weight dtype {}", dtype_name(W.dtype));
    }
    if (!bias.empty())
      for (int64_t n = 0; n < N; ++n)
        for (size_t m = m0; m < m1; ++m) y[n * ldy + int64_t(m)] += bias[m];
  });
}

}  // namespace tpp
