#include "tpp/ops/activation.h"

#include <cmath>
#include <type_traits>

#include "tpp/kernels/api.h"

namespace tpp {
namespace {

template <class R>
R sigmoid(R x) {
  return R(1) / (R(1) + std::exp(-x));
}

// act(x), and act'(x) when da is given; K is the kind, fixed per loop so the
// element loops carry no switch.
template <Ffn K, class R>
R act(R x, GeluApprox approx, R* da) {
  if constexpr (K == Ffn::relu || K == Ffn::reglu) {
    if (da) *da = x > 0 ? R(1) : R(0);
    return x > 0 ? x : R(0);
  } else if constexpr (K == Ffn::gelu || K == Ffn::geglu) {
    if (approx == GeluApprox::tanh) {
      const R c = R(0.7978845608028654);  // sqrt(2/pi)
      const R t = std::tanh(c * (x + R(0.044715) * x * x * x));
      if (da) *da = R(0.5) * (R(1) + t) + R(0.5) * x * (R(1) - t * t) * c * (R(1) + R(3 * 0.044715) * x * x);
      return R(0.5) * x * (R(1) + t);
    }
    const R e = std::erf(x * R(M_SQRT1_2));
    if (da) *da = R(0.5) * (R(1) + e) + x * std::exp(R(-0.5) * x * x) * R(0.3989422804014327);
    return R(0.5) * x * (R(1) + e);
  } else if constexpr (K == Ffn::glu) {
    const R s = sigmoid(x);
    if (da) *da = s * (R(1) - s);
    return s;
  } else if constexpr (K == Ffn::bilinear) {
    if (da) *da = R(1);
    return x;
  } else {
    static_assert(K == Ffn::swiglu);
    const R s = sigmoid(x);
    if (da) *da = s * (R(1) + x * (R(1) - s));
    return x * s;
  }
}

// Calls fn with the kind as a compile-time constant.
template <class Fn>
void with_kind(Ffn kind, Fn&& fn) {
  switch (kind) {
    case Ffn::relu: return fn(std::integral_constant<Ffn, Ffn::relu>{});
    case Ffn::gelu: return fn(std::integral_constant<Ffn, Ffn::gelu>{});
    case Ffn::glu: return fn(std::integral_constant<Ffn, Ffn::glu>{});
    case Ffn::bilinear: return fn(std::integral_constant<Ffn, Ffn::bilinear>{});
    case Ffn::reglu: return fn(std::integral_constant<Ffn, Ffn::reglu>{});
    case Ffn::geglu: return fn(std::integral_constant<Ffn, Ffn::geglu>{});
    case Ffn::swiglu: return fn(std::integral_constant<Ffn, Ffn::swiglu>{});
  }
}

}  // namespace

template <class R>
void ffn_act_forward(R* h, const R* gate, const R* up, int64_t n, const ActParams& p) {
  if constexpr (std::is_same_v<R, float>) {
    if (const auto fn = kernels::kernels().swiglu_f32; fn && p.kind == Ffn::swiglu) return fn(h, gate, up, n);
  }
  with_kind(p.kind, [&](auto kind) {
    constexpr Ffn K = decltype(kind)::value;
    if constexpr (ffn_is_gated(K))
      for (int64_t i = 0; i < n; ++i) h[i] = act<K, R>(gate[i], p.approx, nullptr) * up[i];
    else
      for (int64_t i = 0; i < n; ++i) h[i] = act<K, R>(up[i], p.approx, nullptr);
  });
}

template <class R>
void ffn_act_backward(R* dgate, R* dup, const R* dh, const R* gate, const R* up, int64_t n, const ActParams& p) {
  if constexpr (std::is_same_v<R, float>) {
    if (const auto fn = kernels::kernels().swiglu_backward_f32; fn && p.kind == Ffn::swiglu)
      return fn(dgate, dup, dh, gate, up, n);
  }
  with_kind(p.kind, [&](auto kind) {
    constexpr Ffn K = decltype(kind)::value;
    R da = 0;
    if constexpr (ffn_is_gated(K)) {
      for (int64_t i = 0; i < n; ++i) {
        const R a = act<K, R>(gate[i], p.approx, &da), g = dh[i];
        dgate[i] = g * up[i] * da;
        dup[i] = g * a;
      }
    } else {
      for (int64_t i = 0; i < n; ++i) {
        act<K, R>(up[i], p.approx, &da);
        dup[i] = dh[i] * da;
      }
    }
  });
}

template void ffn_act_forward(float*, const float*, const float*, int64_t, const ActParams&);
template void ffn_act_forward(double*, const double*, const double*, int64_t, const ActParams&);
template void ffn_act_backward(float*, float*, const float*, const float*, const float*, int64_t, const ActParams&);
template void ffn_act_backward(double*, double*, const double*, const double*, const double*, int64_t,
                               const ActParams&);

}  // namespace tpp
