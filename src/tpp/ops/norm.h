// Normalisations over the last dimension, forward and backward.
//
// RMSNorm:   y = x / sqrt(mean(x^2) + eps) * w        (one_plus: * (1 + w), Gemma)
//   Ref: transformers LlamaRMSNorm; Gemma2RMSNorm for (1 + w).
// LayerNorm: y = (x - mean) / sqrt(var + eps) * w (+ b)  (biased variance; no b
//   when the model has no norm biases, PaLM)
//   Ref: torch.nn.functional.layer_norm.
// x, y, dx, dy: [N, d]   w, b, dw, db: [d]
// Statistics accumulate in double for every R, so the f32 result is the same
// wherever the op runs (inference or training). Rows are split across the
// pool; dw/db are summed per worker and combined in worker order, so results
// repeat bitwise for a fixed thread count.
#pragma once

#include <cstdint>

#include "tpp/core/switches.h"
#include "tpp/core/thread_pool.h"

namespace tpp {

struct NormParams {
  NormKind kind = NormKind::rmsnorm;
  bool one_plus = false;  // RMSNorm scales by (1 + w)
  double eps = 1e-5;
};

template <class R>
struct NormWeights {
  const R* w = nullptr;  // [d]
  const R* b = nullptr;  // [d] LayerNorm bias, or none
};

template <class R>
struct NormGrads {
  R* dw = nullptr;  // [d], accumulated
  R* db = nullptr;  // [d], accumulated (when the norm has a bias)
};

// y may alias x.
template <class R>
void norm_forward(R* y, const R* x, int64_t N, int64_t d, NormWeights<R> w, const NormParams& p, ThreadPool& pool);

// dx = (or +=, when accumulate) the gradient through the norm at input x.
template <class R>
void norm_backward(R* dx, bool accumulate, const R* dy, const R* x, int64_t N, int64_t d, NormWeights<R> w,
                   NormGrads<R> g, const NormParams& p, ThreadPool& pool);

}  // namespace tpp
