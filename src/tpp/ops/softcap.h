// Soft-capping: y = c * tanh(x / c) (Gemma 2: attention logits c = 50, final
// logits c = 30). dy/dx = 1 - (y / c)^2, so the backward needs only y.
// Ref: transformers Gemma2 (attn_logit_softcapping, final_logit_softcapping).
// Attention applies the same formula per tile inside its kernels.
#pragma once

#include <cmath>
#include <cstdint>

namespace tpp {

// x: [n] in place.
template <class R>
void softcap_forward(R* x, int64_t n, R cap) {
  for (int64_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] / cap);
}

// dx: [n] in place (dy -> dx), y: the capped values.
template <class R>
void softcap_backward(R* dx, const R* y, int64_t n, R cap) {
  for (int64_t i = 0; i < n; ++i) {
    const R t = y[i] / cap;
    dx[i] *= R(1) - t * t;
  }
}

}  // namespace tpp
