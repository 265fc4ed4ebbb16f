// Linear layer: y[N, M] = x[N, K] . W^T (+ b), W: [M, K] as HF stores it.
//
// W stays in its storage dtype (f32, bf16 or f16, usually memory-mapped) and
// is widened in registers by the kernel; the M output columns are split
// across the pool's workers so each streams its own rows of W once.
// W with a packed copy, on a CPU with the kernels for it, takes x prepared
// once per call (shared by every output): q8_0 / q4_0 W, x quantised to 8-bit
// Q8_0 blocks and integer dot products; bf16 W, x rounded to bf16 and bf16
// dot products (f32 sums); f32 W, a broadcast-form kernel over its columns
// (the same products and sums in k order).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "tpp/core/dtype.h"
#include "tpp/core/thread_pool.h"

namespace tpp {

// A borrowed matrix in its storage dtype: [rows, cols], row-major.
struct MatrixRef {
  DType dtype = DType::f32;
  const void* data = nullptr;
  int64_t rows = 0, cols = 0;
  // The same matrix packed for the int8, bf16 dot or packed f32 kernels
  // (tpp/kernels/packed.h), or nullptr; owned with the model. linear_forward
  // uses it when the kernel table has those kernels, and `data` otherwise.
  const void* packed = nullptr;
  // bf16 training: W^T packed the same way ([cols, rows]), which the input
  // gradient dx = dy W multiplies by; nullptr elsewhere.
  const void* packed_t = nullptr;
  int64_t bytes() const { return rows * dtype_bytes(dtype, cols); }
  const std::byte* row_data(int64_t r) const { return static_cast<const std::byte*>(data) + r * dtype_bytes(dtype, cols); }
  // Row r widened to f32 into out[cols] (embedding lookup).
  void row_f32(int64_t r, float* out) const;
};

// y: [N, W.rows] (row stride ldy, 0 = W.rows)   x: [N, W.cols]   bias: [W.rows] or empty
void linear_forward(float* y, const float* x, int64_t N, const MatrixRef& W,
                    std::span<const float> bias, ThreadPool& pool, int64_t ldy = 0);
// The double instantiation the gradient checks run: W must be f64.
void linear_forward(double* y, const double* x, int64_t N, const MatrixRef& W,
                    std::span<const double> bias, ThreadPool& pool, int64_t ldy = 0);

// Several projections of the same x in one parallel pass (q/k/v, gate/up):
// one dispatch instead of one per matrix, and the split balances their rows
// together. Each output has row stride equal to its W.rows.
template <class R>
struct LinearOutT {
  R* y;
  const MatrixRef* w;
  std::span<const R> bias;
};
using LinearOut = LinearOutT<float>;
void linear_forward_multi(const float* x, int64_t N, std::span<const LinearOut> outs, ThreadPool& pool);
void linear_forward_multi(const double* x, int64_t N, std::span<const LinearOutT<double>> outs, ThreadPool& pool);

// Backward of y = x W^T + b (W in f32 for float, f64 for double):
//   dx = (or +=, dx_accumulate) dy W;  dw += dy^T x;  db += colsum(dy).
// dx may be null (no input gradient wanted); db may be null (no bias).
// bf16 W (float only) needs both packed forms and the bf16 dot kernels: dy
// and x are rounded to bf16 and both products run on bf16 dot instructions
// with f32 sums (dw stays f32), as a bf16 forward runs.
template <class R>
struct LinearGrads {
  R* dw = nullptr;  // [M, K]
  R* db = nullptr;  // [M]
};
template <class R>
void linear_backward(R* dx, bool dx_accumulate, LinearGrads<R> g, const R* dy, const R* x, int64_t N,
                     const MatrixRef& W, ThreadPool& pool);

}  // namespace tpp
