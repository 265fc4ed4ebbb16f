#include "tpp/ops/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "tpp/core/error.h"

namespace tpp {

RopeParams make_rope(int head_dim, int rotary_dim, RopeLayout layout, double base,
                     const RopeScaling& s, int orig_max, int seq_len) {
  TPP_CHECK(rotary_dim >= 0 && rotary_dim <= head_dim && rotary_dim % 2 == 0,
            "rope: rotary_dim {} must be even and in [0, head_dim = {}]", rotary_dim, head_dim);
  RopeParams p;
  p.head_dim = head_dim;
  p.rotary_dim = rotary_dim;
  p.layout = layout;
  const int half = rotary_dim / 2;
  const double r = rotary_dim;
  if (half == 0) return p;

  if (s.type == RopeScalingType::ntk) base *= std::pow(s.factor, r / (r - 2));
  if (s.type == RopeScalingType::dynamic_ntk && seq_len > orig_max)
    base *= std::pow(s.factor * seq_len / orig_max - (s.factor - 1), r / (r - 2));

  p.inv_freq.resize(size_t(half));
  for (int i = 0; i < half; ++i) p.inv_freq[size_t(i)] = std::pow(base, -2.0 * i / r);

  if (s.type == RopeScalingType::linear) {
    for (auto& f : p.inv_freq) f /= s.factor;
  } else if (s.type == RopeScalingType::llama3) {
    const double low_wavelen = orig_max / s.low_freq_factor;
    const double high_wavelen = orig_max / s.high_freq_factor;
    for (auto& f : p.inv_freq) {
      const double wavelen = 2 * std::numbers::pi / f;
      if (wavelen < high_wavelen) continue;
      if (wavelen > low_wavelen) {
        f /= s.factor;
      } else {
        const double smooth = (orig_max / wavelen - s.low_freq_factor) /
                              (s.high_freq_factor - s.low_freq_factor);
        f = (1 - smooth) * f / s.factor + smooth * f;
      }
    }
  } else if (s.type == RopeScalingType::yarn) {
    auto correction_dim = [&](double n_rot) {
      return r * std::log(orig_max / (n_rot * 2 * std::numbers::pi)) / (2 * std::log(base));
    };
    const double low = std::max(std::floor(correction_dim(s.beta_fast)), 0.0);
    double high = std::min(std::ceil(correction_dim(s.beta_slow)), r - 1);
    if (low == high) high += 0.001;
    for (int i = 0; i < half; ++i) {
      const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
      const double extrapolation_factor = 1 - ramp;
      const double extrapolated = p.inv_freq[size_t(i)];
      const double interpolated = extrapolated / s.factor;
      p.inv_freq[size_t(i)] =
          interpolated * (1 - extrapolation_factor) + extrapolated * extrapolation_factor;
    }
    p.mscale = s.attention_factor > 0 ? s.attention_factor
                                      : (s.factor > 1 ? 0.1 * std::log(s.factor) + 1.0 : 1.0);
  }
  return p;
}

void rope_table_resize(RopeTable& table, int64_t n, int half) {
  table.n = n;
  table.half = half;
  table.cos.resize(size_t(n * half));
  table.sin.resize(size_t(n * half));
}

void rope_table_fill(RopeTable& table, int64_t row0, const RopeParams& rope, int64_t pos0, int64_t n) {
  const int half = rope.rotary_dim / 2;
  TPP_CHECK(table.half == half && row0 + n <= table.n, "rope: table of {} pairs x {} rows, need {} x {}", table.half,
            table.n, half, row0 + n);
  for (int64_t t = 0; t < n; ++t)
    for (int i = 0; i < half; ++i) {
      const double angle = double(pos0 + t) * rope.inv_freq[size_t(i)];
      table.cos[size_t((row0 + t) * half + i)] = float(std::cos(angle) * rope.mscale);
      table.sin[size_t((row0 + t) * half + i)] = float(std::sin(angle) * rope.mscale);
    }
}

void rope_table(RopeTable& table, const RopeParams& rope, int64_t pos0, int64_t n) {
  rope_table_resize(table, n, rope.rotary_dim / 2);
  rope_table_fill(table, 0, rope, pos0, n);
}

namespace {

// sign +1 rotates by the angle, -1 by its negative (the transpose).
template <class R>
void rotate(R* x, int64_t n, int n_heads, const RopeParams& rope, const RopeTable& table, R sign, ThreadPool& pool) {
  const int half = rope.rotary_dim / 2;
  if (half == 0) return;
  TPP_CHECK(table.half == half && table.n >= n, "rope: table for {} pairs x {} rows, need {} x {}", table.half,
            table.n, half, n);
  const int k = rope.head_dim;
  const bool split = rope.layout == RopeLayout::half;
  pool.parallel_for(size_t(n), 16, [&](size_t t0, size_t t1, size_t) {
    for (size_t t = t0; t < t1; ++t) {
      const float* cs = table.cos.data() + int64_t(t) * half;
      const float* sn = table.sin.data() + int64_t(t) * half;
      for (int h = 0; h < n_heads; ++h) {
        R* v = x + (int64_t(t) * n_heads + h) * k;
        for (int i = 0; i < half; ++i) {
          const int ia = split ? i : 2 * i, ib = split ? i + half : 2 * i + 1;
          const R a = v[ia], b = v[ib], c = R(cs[i]), s = sign * R(sn[i]);
          v[ia] = a * c - b * s;
          v[ib] = b * c + a * s;
        }
      }
    }
  });
}

}  // namespace

template <class R>
void rope_forward(R* x, int64_t n, int n_heads, const RopeParams& rope, const RopeTable& table, ThreadPool& pool) {
  rotate(x, n, n_heads, rope, table, R(1), pool);
}
template <class R>
void rope_backward(R* dx, int64_t n, int n_heads, const RopeParams& rope, const RopeTable& table, ThreadPool& pool) {
  rotate(dx, n, n_heads, rope, table, R(-1), pool);
}

template void rope_forward(float*, int64_t, int, const RopeParams&, const RopeTable&, ThreadPool&);
template void rope_forward(double*, int64_t, int, const RopeParams&, const RopeTable&, ThreadPool&);
template void rope_backward(float*, int64_t, int, const RopeParams&, const RopeTable&, ThreadPool&);
template void rope_backward(double*, int64_t, int, const RopeParams&, const RopeTable&, ThreadPool&);

}  // namespace tpp
