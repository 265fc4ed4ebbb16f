#include "tpp/ops/linear.h"

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "tpp/core/error.h"
#include "tpp/kernels/api.h"
#include "tpp/kernels/packed.h"
#include "tpp/ops/gemm.h"

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
    case DType::q8_0:
      k.dequant_q8_0(out, row_data(r), cols);
      return;
    case DType::q4_0:
      k.dequant_q4_0(out, row_data(r), cols);
      return;
    case DType::q4_k:
      k.dequant_q4_k(out, row_data(r), cols);
      return;
    case DType::q5_k:
      k.dequant_q5_k(out, row_data(r), cols);
      return;
    case DType::q6_k:
      k.dequant_q6_k(out, row_data(r), cols);
      return;
    case DType::f64:
      for (int64_t c = 0; c < cols; ++c) out[c] = float(static_cast<const double*>(data)[r * cols + c]);
      return;
    default:
      fail("matrix row: unsupported dtype {}", dtype_name(dtype));
  }
}

namespace {

// Block-quantised W without a packed copy: for a few rows of x (decode) the
// q8_0 / q4_0 kernels widen each block in registers, and K-quants run on 8-bit
// activations where the level has those kernels (run_rows), else in registers
// (matmul_q4_k ...) or a row widened into a per-thread buffer; for more,
// kQuantRows rows of W at a time are widened into a per-thread f32 buffer
// once and multiplied by the f32 kernel, so the cost of widening is shared by
// all N rows of x.
constexpr int64_t kQuantRows = 16;

bool is_k_quant(DType t) { return t == DType::q4_k || t == DType::q5_k || t == DType::q6_k; }

void run_rows_quant(float* y, const float* x, int64_t N, const MatrixRef& W, int64_t m0, int64_t m1, int64_t ldy) {
  const auto& k = kernels::kernels();
  const int64_t K = W.cols;
  thread_local std::vector<float> buf;
  if (N < 4 && (W.dtype == DType::q8_0 || W.dtype == DType::q4_0)) {
    (W.dtype == DType::q8_0 ? k.matmul_q8_0 : k.matmul_q4_0)(y, x, W.data, N, K, m0, m1, ldy);
    return;
  }
  const kernels::MatmulQFn kq = W.dtype == DType::q4_k   ? k.matmul_q4_k
                                : W.dtype == DType::q5_k ? k.matmul_q5_k
                                : W.dtype == DType::q6_k ? k.matmul_q6_k
                                                         : nullptr;
  if (N < 4 && kq) {
    kq(y, x, W.data, N, K, m0, m1, ldy);
    return;
  }
  if (N < 4) {
    // K-quants, decode, on a level without their matmuls: each row widened
    // once, then its dot products.
    buf.resize(size_t(K));
    for (int64_t m = m0; m < m1; ++m) {
      W.row_f32(m, buf.data());
      for (int64_t n = 0; n < N; ++n) y[n * ldy + m] = k.dot_f32(x + n * K, buf.data(), K);
    }
    return;
  }
  buf.resize(size_t(kQuantRows * K));
  // K-quants, where the packed f32 kernel exists: the widened rows are
  // packed as one 16-row group for it (q8_0 / q4_0 keep the dot-form kernel,
  // whose results their tests pin).
  const bool packed = is_k_quant(W.dtype) && k.pack_f32_group && k.matmul_f32_packed;
  thread_local std::vector<float> group;
  if (packed) group.resize(size_t(16 * K));
  for (int64_t m = m0; m < m1; m += kQuantRows) {
    const int64_t rows = std::min(kQuantRows, m1 - m);
    for (int64_t r = 0; r < rows; ++r) W.row_f32(m + r, buf.data() + r * K);
    if (packed) {
      k.pack_f32_group(group.data(), buf.data(), rows, K);
      k.matmul_f32_packed(y + m, x, group.data(), N, K, 0, rows, ldy, false);
    } else {
      k.matmul_f32(y + m, x, buf.data(), N, K, 0, rows, ldy);
    }
  }
}

// x prepared for the packed kernels: quantised to 8 bits (int8 kernels)
// and/or rounded to bf16 (bf16 dot kernels), once per call and shared by all
// the outputs that read it.
struct PreparedX {
  std::vector<int8_t> q, qk;
  std::vector<float> d, s, dk;
  std::vector<int16_t> bsum;
  std::vector<uint16_t> b;
  bool q_ready = false, b_ready = false, k_ready = false;
};

// The table's K-quant matmul on Q8_K activations for W, or null.
kernels::MatmulKQ8Fn k_quant_int8(DType t, const kernels::Kernels& k) {
  if (!k.quantize_q8_k) return nullptr;
  switch (t) {
    case DType::q4_k: return k.matmul_q4_k_q8k;
    case DType::q5_k: return k.matmul_q5_k_q8k;
    case DType::q6_k: return k.matmul_q6_k_q8k;
    default: return nullptr;
  }
}

// The table's K-quant matmul over packed W (every N), or null.
kernels::MatmulKQ8Fn k_quant_packed(const MatrixRef& W, const kernels::Kernels& k) {
  if (!W.packed || !k.quantize_q8_k) return nullptr;
  switch (W.dtype) {
    case DType::q4_k: return k.matmul_q4_k_packed;
    case DType::q5_k: return k.matmul_q5_k_packed;
    case DType::q6_k: return k.matmul_q6_k_packed;
    default: return nullptr;
  }
}

// K-quants run on Q8_K activations where the level has 8-bit multiplies:
// packed W at every N, W as stored for decode (N < 4); else prefill widens
// rows to f32 (kQuantRows above).
bool uses_k_int8(const MatrixRef& W, int64_t N, const kernels::Kernels& k) {
  return k_quant_packed(W, k) != nullptr || (N < 4 && k_quant_int8(W.dtype, k) != nullptr);
}

// Whether W is multiplied by the int8 (bf16 dot) kernels of table k.
bool uses_int8(const MatrixRef& W, const kernels::Kernels& k) {
  return W.packed && k.quantize_q8 &&
         ((W.dtype == DType::q8_0 && k.matmul_q8_0_packed) || (W.dtype == DType::q4_0 && k.matmul_q4_0_packed));
}
bool uses_bf16_dot(const MatrixRef& W, const kernels::Kernels& k) {
  return W.packed && W.dtype == DType::bf16 && k.to_bf16 && k.matmul_bf16_packed;
}

// Rows [0, N) of x, in parallel when there are many.
template <class F>
void for_rows(int64_t N, ThreadPool& pool, const F& fn) {
  if (N < 16) fn(0, N);
  else pool.parallel_for(size_t(N), 4, [&](size_t n0, size_t n1, size_t) { fn(int64_t(n0), int64_t(n1)); });
}

void prepare_x(PreparedX& px, const float* x, int64_t N, const MatrixRef& W, ThreadPool& pool) {
  const auto& k = kernels::kernels();
  const int64_t K = W.cols;
  if (!px.q_ready && uses_int8(W, k)) {
    const int64_t nb = K / 32;
    px.q.resize(size_t(N * K));
    px.d.resize(size_t(N * nb));
    px.s.resize(size_t(N * nb));
    for_rows(N, pool, [&](int64_t n0, int64_t n1) {
      k.quantize_q8(px.q.data() + n0 * K, px.d.data() + n0 * nb, px.s.data() + n0 * nb, x + n0 * K, n1 - n0, K);
    });
    px.q_ready = true;
  }
  if (!px.k_ready && uses_k_int8(W, N, k)) {
    const int64_t nb = K / kernels::kQK;
    px.qk.resize(size_t(N * K));
    px.dk.resize(size_t(N * nb));
    px.bsum.resize(size_t(N * K / 16));
    for_rows(N, pool, [&](int64_t n0, int64_t n1) {
      k.quantize_q8_k(px.qk.data() + n0 * K, px.dk.data() + n0 * nb, px.bsum.data() + n0 * (K / 16), x + n0 * K,
                      n1 - n0, K);
    });
    px.k_ready = true;
  }
  if (!px.b_ready && uses_bf16_dot(W, k)) {
    px.b.resize(size_t(N * K));
    for_rows(N, pool, [&](int64_t n0, int64_t n1) { k.to_bf16(px.b.data() + n0 * K, x + n0 * K, (n1 - n0) * K); });
    px.b_ready = true;
  }
}

// y[:, m0:m1] of one matrix; px: x as prepare_x left it for W.
void run_rows(float* y, const float* x, const PreparedX& px, int64_t N, const MatrixRef& W,
              std::span<const float> bias, int64_t m0, int64_t m1, int64_t ldy) {
  const auto& k = kernels::kernels();
  const int64_t K = W.cols;
  if (px.q_ready && uses_int8(W, k)) {
    (W.dtype == DType::q8_0 ? k.matmul_q8_0_packed : k.matmul_q4_0_packed)(
        y, px.q.data(), px.d.data(), px.s.data(), W.packed, N, K, m0, m1, ldy);
  } else if (px.k_ready && uses_k_int8(W, N, k)) {
    if (const auto packed = k_quant_packed(W, k))
      packed(y, px.qk.data(), px.dk.data(), px.bsum.data(), W.packed, N, K, m0, m1, ldy);
    else
      k_quant_int8(W.dtype, k)(y, px.qk.data(), px.dk.data(), px.bsum.data(), W.data, N, K, m0, m1, ldy);
  } else if (px.b_ready && uses_bf16_dot(W, k)) {
    k.matmul_bf16_packed(y, px.b.data(), W.packed, N, K, m0, m1, ldy, false);
  } else {
    switch (W.dtype) {
      case DType::f32:
        if (W.packed && k.matmul_f32_packed) k.matmul_f32_packed(y, x, W.packed, N, K, m0, m1, ldy, false);
        else k.matmul_f32(y, x, static_cast<const float*>(W.data), N, K, m0, m1, ldy);
        break;
      case DType::bf16:
        k.matmul_bf16(y, x, static_cast<const uint16_t*>(W.data), N, K, m0, m1, ldy);
        break;
      case DType::f16:
        k.matmul_f16(y, x, static_cast<const uint16_t*>(W.data), N, K, m0, m1, ldy);
        break;
      case DType::q8_0:
      case DType::q4_0:
      case DType::q4_k:
      case DType::q5_k:
      case DType::q6_k:
        run_rows_quant(y, x, N, W, m0, m1, ldy);
        break;
      default:
        fail("linear: unsupported weight dtype {}", dtype_name(W.dtype));
    }
  }
  if (!bias.empty())
    for (int64_t n = 0; n < N; ++n)
      for (int64_t m = m0; m < m1; ++m) y[n * ldy + m] += bias[size_t(m)];
}

}  // namespace

void linear_forward(float* y, const float* x, int64_t N, const MatrixRef& W,
                    std::span<const float> bias, ThreadPool& pool, int64_t ldy) {
  const int64_t M = W.rows;
  if (ldy == 0) ldy = M;
  TPP_CHECK(bias.empty() || int64_t(bias.size()) == M, "linear: bias has {} elements, expected {}",
            bias.size(), M);
  // (The lambda must see this thread's buffer, not its worker's own.)
  thread_local PreparedX tls;
  PreparedX& px = tls;
  px.q_ready = px.b_ready = px.k_ready = false;
  prepare_x(px, x, N, W, pool);
  // Grain of 16 output rows keeps each worker's slice a multiple of the
  // kernels' row tile (and of the packed layouts' groups) and of a cache line of y.
  auto rows = [&](size_t m0, size_t m1, size_t) { run_rows(y, x, px, N, W, bias, int64_t(m0), int64_t(m1), ldy); };
  // Static contiguous ranges at every N: results are repeatable, and in
  // decode each worker streams one run of packed groups that its kernel
  // prefetches a tile ahead (handing out 64-row chunks dynamically cost
  // 20-25 % of a 135M-shape decode step: each chunk started its streams cold).
  pool.parallel_for(size_t(M), 16, rows);
}

void linear_forward_multi(const float* x, int64_t N, std::span<const LinearOut> outs, ThreadPool& pool) {
  int64_t total = 0;
  for (const auto& o : outs) {
    TPP_CHECK(o.bias.empty() || int64_t(o.bias.size()) == o.w->rows,
              "linear: bias has {} elements, expected {}", o.bias.size(), o.w->rows);
    TPP_CHECK(o.w->cols == outs[0].w->cols, "linear: inputs of {} and {} columns", o.w->cols, outs[0].w->cols);
    total += o.w->rows;
  }
  thread_local PreparedX tls;
  PreparedX& px = tls;
  px.q_ready = px.b_ready = px.k_ready = false;
  for (const auto& o : outs) prepare_x(px, x, N, *o.w, pool);
  auto rows = [&](size_t b, size_t e, size_t) {
    int64_t base = 0;
    for (const auto& o : outs) {
      const int64_t lo = std::max<int64_t>(int64_t(b), base), hi = std::min<int64_t>(int64_t(e), base + o.w->rows);
      if (lo < hi) run_rows(o.y, x, px, N, *o.w, o.bias, lo - base, hi - base, o.w->rows);
      base += o.w->rows;
    }
  };
  pool.parallel_for(size_t(total), 16, rows);
}

void linear_forward(double* y, const double* x, int64_t N, const MatrixRef& W, std::span<const double> bias,
                    ThreadPool& pool, int64_t ldy) {
  TPP_CHECK(W.dtype == DType::f64, "linear: double activations need f64 weights, got {}", dtype_name(W.dtype));
  const int64_t M = W.rows, K = W.cols;
  if (ldy == 0) ldy = M;
  const double* w = static_cast<const double*>(W.data);
  pool.parallel_for(size_t(N), 1, [&](size_t n0, size_t n1, size_t) {
    for (size_t n = n0; n < n1; ++n)
      for (int64_t m = 0; m < M; ++m) {
        double acc = bias.empty() ? 0.0 : bias[size_t(m)];
        for (int64_t k = 0; k < K; ++k) acc += x[int64_t(n) * K + k] * w[m * K + k];
        y[int64_t(n) * ldy + m] = acc;
      }
  });
}

void linear_forward_multi(const double* x, int64_t N, std::span<const LinearOutT<double>> outs, ThreadPool& pool) {
  for (const auto& o : outs) linear_forward(o.y, x, N, *o.w, o.bias, pool);
}

namespace {

// Rows per chunk of the backward's bf16 products: three groups of 16, the
// kernel's widest tile. (64-row chunks left a fourth group to the one-group
// tile, which keeps half the accumulator chains in flight: a quarter of
// every product at about half speed.)
constexpr int64_t kBf16Rows = 48;

// linear_backward for bf16 W (see linear.h).
void linear_backward_bf16(float* dx, bool dx_accumulate, LinearGrads<float> g, const float* dy, const float* x,
                          int64_t N, const MatrixRef& W, ThreadPool& pool) {
  const auto& k = kernels::kernels();
  const int64_t M = W.rows, K = W.cols;
  TPP_CHECK(W.packed && W.packed_t && M % 2 == 0 && k.to_bf16 && k.matmul_bf16_packed && k.transpose_bf16_pairs &&
                k.pack_bf16_transposed_f32,
            "linear backward: bf16 weights need an even row count, both packed forms and a CPU with bf16 dot kernels");
  // The products below hand out row chunks dynamically (a worker slowed by
  // the host does fewer): each output is one chain of sums in k order
  // whichever tile computes it, so the bits do not depend on the split.
  // This thread's buffers, bound here: a thread_local named inside a lambda
  // would be the worker's own.
  thread_local std::vector<uint16_t> dyb_tls, dyt_tls;
  thread_local std::vector<std::byte> xt_tls;
  auto &dyb = dyb_tls, &dyt = dyt_tls;
  auto& xt = xt_tls;
  if (dx) {
    // dx[n, k] (+)= sum_m dy[n, m] W[m, k]: the packed W^T has K rows of M.
    dyb.resize(size_t(N * M));
    for_rows(N, pool, [&](int64_t n0, int64_t n1) { k.to_bf16(dyb.data() + n0 * M, dy + n0 * M, (n1 - n0) * M); });
    pool.parallel_for_dynamic(size_t(K), kBf16Rows, [&](size_t k0, size_t k1, size_t) {
      k.matmul_bf16_packed(dx, dyb.data(), W.packed_t, N, M, int64_t(k0), int64_t(k1), K, dx_accumulate);
    });
  }
  // dw[m, k] += sum_n dy[n, m] x[n, k]: dy^T (M rows of N) against the packed
  // x^T (K rows of N), N padded to even with a zero; each rounded and laid
  // out in one pass over the f32 operand.
  const int64_t Np = N + (N & 1), groups = (K + kernels::kPackRows - 1) / kernels::kPackRows;
  xt.resize(size_t(kernels::packed_bytes(DType::bf16, K, Np)));
  pool.parallel_for(size_t(groups), 1, [&](size_t g0, size_t g1, size_t) {
    k.pack_bf16_transposed_f32(xt.data(), x, K, N, K, int64_t(g0), int64_t(g1));
  });
  dyt.resize(size_t(M * Np));
  pool.parallel_for(size_t(M), 16, [&](size_t m0, size_t m1, size_t) {
    k.transpose_bf16_pairs(reinterpret_cast<uint32_t*>(dyt.data() + m0 * Np), Np / 2, dy, M, N, int64_t(m0),
                           int64_t(m1));
  });
  // Rows of dw per kernel call, summed straight into dw: their dy^T rows
  // stay in L2 while the packed x^T passes.
  pool.parallel_for_dynamic(size_t(M), kBf16Rows, [&](size_t m0, size_t m1, size_t) {
    for (auto m = int64_t(m0); m < int64_t(m1); m += kBf16Rows)
      k.matmul_bf16_packed(g.dw + m * K, dyt.data() + m * Np, xt.data(), std::min(kBf16Rows, int64_t(m1) - m), Np, 0, K,
                           K, true);
    if (g.db)
      for (int64_t n = 0; n < N; ++n) {
        const float* row = dy + n * M;
        for (size_t m = m0; m < m1; ++m) g.db[m] += row[m];
      }
  });
}

// linear_backward for f32 W on a CPU with the packed f32 kernel: both
// products run on it, over W^T and x^T packed for the call (strided copies),
// adding straight into dx (when asked) and dw; chunks handed out dynamically
// as in linear_backward_bf16.
void linear_backward_f32_packed(float* dx, bool dx_accumulate, LinearGrads<float> g, const float* dy,
                                const float* x, int64_t N, const MatrixRef& W, ThreadPool& pool) {
  const auto& k = kernels::kernels();
  const int64_t M = W.rows, K = W.cols, groups = (K + kernels::kPackRows - 1) / kernels::kPackRows;
  const float* w = static_cast<const float*>(W.data);
  // This thread's buffers, bound here (see linear_backward_bf16).
  thread_local std::vector<std::byte> wt_tls, xt_tls;
  auto &wt = wt_tls, &xt = xt_tls;
  if (dx) {
    // dx[n, k] (+)= sum_m dy[n, m] W[m, k]: the packed W^T has K rows of M.
    wt.resize(size_t(kernels::packed_bytes(DType::f32, K, M)));
    pool.parallel_for(size_t(groups), 1, [&](size_t g0, size_t g1, size_t) {
      kernels::pack_f32_transposed(wt.data(), w, K, M, K, int64_t(g0), int64_t(g1));
    });
    pool.parallel_for_dynamic(size_t(K), 64, [&](size_t k0, size_t k1, size_t) {
      k.matmul_f32_packed(dx, dy, wt.data(), N, M, int64_t(k0), int64_t(k1), K, dx_accumulate);
    });
  }
  // dw[m, k] += sum_n dy[n, m] x[n, k]: dy^T (M rows of N, read in place)
  // against the packed x^T (K rows of N).
  xt.resize(size_t(kernels::packed_bytes(DType::f32, K, N)));
  pool.parallel_for(size_t(groups), 1, [&](size_t g0, size_t g1, size_t) {
    kernels::pack_f32_transposed(xt.data(), x, K, N, K, int64_t(g0), int64_t(g1));
  });
  // Rows of dw per kernel call: their columns of dy stay in L2 while the
  // packed x^T passes.
  constexpr int64_t kRows = 64;
  pool.parallel_for_dynamic(size_t(M), kRows, [&](size_t m0, size_t m1, size_t) {
    for (auto m = int64_t(m0); m < int64_t(m1); m += kRows)
      k.matmul_f32_packed_xt(g.dw + m * K, dy + m, M, xt.data(), std::min(kRows, int64_t(m1) - m), N, 0, K, K, true);
    if (g.db)
      for (int64_t n = 0; n < N; ++n) {
        const float* row = dy + n * M;
        for (size_t m = m0; m < m1; ++m) g.db[m] += row[m];
      }
  });
}

}  // namespace

template <class R>
void linear_backward(R* dx, bool dx_accumulate, LinearGrads<R> g, const R* dy, const R* x, int64_t N,
                     const MatrixRef& W, ThreadPool& pool) {
  if constexpr (std::is_same_v<R, float>) {
    if (W.dtype == DType::bf16) return linear_backward_bf16(dx, dx_accumulate, g, dy, x, N, W, pool);
    // (Small batches keep the kernels below: packing would cost more than it saves.)
    if (W.dtype == DType::f32 && kernels::kernels().matmul_f32_packed_xt && N >= 16)
      return linear_backward_f32_packed(dx, dx_accumulate, g, dy, x, N, W, pool);
  }
  constexpr DType dt = std::is_same_v<R, double> ? DType::f64 : DType::f32;
  TPP_CHECK(W.dtype == dt, "linear backward: weights stored as {}, expected {}", dtype_name(W.dtype),
            dtype_name(dt));
  const int64_t M = W.rows, K = W.cols;
  const R* w = static_cast<const R*>(W.data);
  if (dx)
    pool.parallel_for(size_t(N), 8, [&](size_t n0, size_t n1, size_t) {
      mm_nn(dx + int64_t(n0) * K, dy + int64_t(n0) * M, w, int64_t(n1 - n0), M, K, M, K, K, dx_accumulate);
    });
  pool.parallel_for(size_t(M), 16, [&](size_t m0, size_t m1, size_t) {
    mm_tn(g.dw + int64_t(m0) * K, dy + m0, x, int64_t(m1 - m0), N, K, M, K, K, true);
    if (g.db)
      for (int64_t n = 0; n < N; ++n) {
        const R* row = dy + n * M;
        for (size_t m = m0; m < m1; ++m) g.db[m] += row[m];
      }
  });
}

template void linear_backward(float*, bool, LinearGrads<float>, const float*, const float*, int64_t,
                              const MatrixRef&, ThreadPool&);
template void linear_backward(double*, bool, LinearGrads<double>, const double*, const double*, int64_t,
                              const MatrixRef&, ThreadPool&);

}  // namespace tpp
