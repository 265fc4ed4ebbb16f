#include "tpp/ops/activation.h"

#include <cmath>

#include "tpp/core/error.h"

namespace tpp {
namespace {

inline float gelu_erf(float x) { return 0.5f * x * (1.0f + std::erf(x * float(M_SQRT1_2))); }
inline float gelu_tanh(float x) {
  constexpr float kC = 0.7978845608028654f;  // sqrt(2/pi)
  return 0.5f * x * (1.0f + std::tanh(kC * (x + 0.044715f * x * x * x)));
}
inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

template <class F>
void apply(float* x, const float* up, int64_t n, F act) {
  if (up)
    for (int64_t i = 0; i < n; ++i) x[i] = act(x[i]) * up[i];
  else
    for (int64_t i = 0; i < n; ++i) x[i] = act(x[i]);
}

void dispatch(float* x, const float* up, int64_t n, Ffn kind, GeluApprox approx) {
  switch (kind) {
    case Ffn::relu:
    case Ffn::reglu:
      return apply(x, up, n, [](float v) { return v > 0 ? v : 0.0f; });
    case Ffn::gelu:
    case Ffn::geglu:
      if (approx == GeluApprox::tanh) return apply(x, up, n, gelu_tanh);
      return apply(x, up, n, gelu_erf);
    case Ffn::glu:
      return apply(x, up, n, sigmoid);
    case Ffn::bilinear:
      return apply(x, up, n, [](float v) { return v; });
    case Ffn::swiglu:
      return apply(x, up, n, [](float v) { return v * sigmoid(v); });
  }
}

}  // namespace

void activation_forward(float* x, int64_t n, Ffn kind, GeluApprox approx) {
  TPP_CHECK(!ffn_is_gated(kind), "activation_forward: {} is gated; use gated_activation_forward",
            enum_name(kind));
  dispatch(x, nullptr, n, kind, approx);
}

void gated_activation_forward(float* gate, const float* up, int64_t n, Ffn kind, GeluApprox approx) {
  TPP_CHECK(ffn_is_gated(kind), "gated_activation_forward: {} is not gated", enum_name(kind));
  dispatch(gate, up, n, kind, approx);
}

}  // namespace tpp
