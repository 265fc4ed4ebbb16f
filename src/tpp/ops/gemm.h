// Small GEMM helpers shared by the backward passes, templated on the scalar:
// float runs the kernel table's NN / TN kernels; double (gradient checks on
// tiny shapes) runs plain loops.
//   mm_nn: y[n*ldy + m] (+)= sum_k x[n*ldx + k] * w[k*ldw + m]
//   mm_tn: the same with x read transposed: x(n, k) = x[k*ldx + n]
// Single-threaded: callers split the work.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "tpp/kernels/api.h"

namespace tpp {

template <bool XT, class R>
void mm(R* y, const R* x, const R* w, int64_t N, int64_t K, int64_t M, int64_t ldx, int64_t ldw, int64_t ldy,
        bool accumulate) {
  if (N <= 0 || M <= 0) return;
  if constexpr (std::is_same_v<R, float>) {
    const auto& k = kernels::kernels();
    (XT ? k.gemm_tn_f32 : k.gemm_nn_f32)(y, x, w, N, K, 0, M, ldx, ldw, ldy, accumulate);
  } else {
    for (int64_t n = 0; n < N; ++n) {
      R* yr = y + n * ldy;
      if (!accumulate) std::fill(yr, yr + M, R(0));
      for (int64_t k = 0; k < K; ++k) {
        const R xv = XT ? x[k * ldx + n] : x[n * ldx + k];
        const R* wr = w + k * ldw;
        for (int64_t m = 0; m < M; ++m) yr[m] += xv * wr[m];
      }
    }
  }
}
template <class R>
void mm_nn(R* y, const R* x, const R* w, int64_t N, int64_t K, int64_t M, int64_t ldx, int64_t ldw, int64_t ldy,
           bool accumulate) {
  mm<false>(y, x, w, N, K, M, ldx, ldw, ldy, accumulate);
}
template <class R>
void mm_tn(R* y, const R* x, const R* w, int64_t N, int64_t K, int64_t M, int64_t ldx, int64_t ldw, int64_t ldy,
           bool accumulate) {
  mm<true>(y, x, w, N, K, M, ldx, ldw, ldy, accumulate);
}

// dst[c*ldd + r] = src[r*lds + c] for r < rows, c < cols (blocked).
template <class R>
void transpose(R* dst, const R* src, int64_t rows, int64_t cols, int64_t lds, int64_t ldd) {
  constexpr int64_t kB = 16;
  for (int64_t r0 = 0; r0 < rows; r0 += kB)
    for (int64_t c0 = 0; c0 < cols; c0 += kB) {
      const int64_t r1 = std::min(rows, r0 + kB), c1 = std::min(cols, c0 + kB);
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) dst[c * ldd + r] = src[r * lds + c];
    }
}

}  // namespace tpp
