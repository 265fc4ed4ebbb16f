#include "tpp/ops/activation.h"

#include <cmath>

namespace tpp {
namespace {

template <class R>
R sigmoid(R x) {
  return R(1) / (R(1) + std::exp(-x));
}

// act(x), and act'(x) when da is given.
template <class R>
R act(R x, const ActParams& p, R* da) {
  switch (p.kind) {
    case Ffn::relu:
    case Ffn::reglu:
      if (da) *da = x > 0 ? R(1) : R(0);
      return x > 0 ? x : R(0);
    case Ffn::gelu:
    case Ffn::geglu:
      if (p.approx == GeluApprox::tanh) {
        const R c = R(0.7978845608028654);  // sqrt(2/pi)
        const R t = std::tanh(c * (x + R(0.044715) * x * x * x));
        if (da) *da = R(0.5) * (R(1) + t) + R(0.5) * x * (R(1) - t * t) * c * (R(1) + R(3 * 0.044715) * x * x);
        return R(0.5) * x * (R(1) + t);
      } else {
        const R e = std::erf(x * R(M_SQRT1_2));
        if (da) *da = R(0.5) * (R(1) + e) + x * std::exp(R(-0.5) * x * x) * R(0.3989422804014327);
        return R(0.5) * x * (R(1) + e);
      }
    case Ffn::glu: {
      const R s = sigmoid(x);
      if (da) *da = s * (R(1) - s);
      return s;
    }
    case Ffn::bilinear:
      if (da) *da = R(1);
      return x;
    case Ffn::swiglu: {
      const R s = sigmoid(x);
      if (da) *da = s * (R(1) + x * (R(1) - s));
      return x * s;
    }
  }
  return x;
}

}  // namespace

template <class R>
void ffn_act_forward(R* h, const R* gate, const R* up, int64_t n, const ActParams& p) {
  if (ffn_is_gated(p.kind))
    for (int64_t i = 0; i < n; ++i) h[i] = act<R>(gate[i], p, nullptr) * up[i];
  else
    for (int64_t i = 0; i < n; ++i) h[i] = act<R>(up[i], p, nullptr);
}

template <class R>
void ffn_act_backward(R* dgate, R* dup, const R* dh, const R* gate, const R* up, int64_t n, const ActParams& p) {
  R da = 0;
  if (ffn_is_gated(p.kind)) {
    for (int64_t i = 0; i < n; ++i) {
      const R a = act(gate[i], p, &da), g = dh[i];
      dgate[i] = g * up[i] * da;
      dup[i] = g * a;
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      act(up[i], p, &da);
      dup[i] = dh[i] * da;
    }
  }
}

template void ffn_act_forward(float*, const float*, const float*, int64_t, const ActParams&);
template void ffn_act_forward(double*, const double*, const double*, int64_t, const ActParams&);
template void ffn_act_backward(float*, float*, const float*, const float*, const float*, int64_t, const ActParams&);
template void ffn_act_backward(double*, double*, const double*, const double*, const double*, int64_t,
                               const ActParams&);

}  // namespace tpp
