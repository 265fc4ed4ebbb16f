#include "tpp/train/optim.h"

#include <cmath>

#include "tpp/core/error.h"

namespace tpp::train {

AdamW::AdamW(int64_t n, std::vector<uint8_t> decay, AdamWOptions options)
    : o_(options), decay_(std::move(decay)), m_(size_t(n), 0.0f), v_(size_t(n), 0.0f) {
  TPP_CHECK(int64_t(decay_.size()) == n, "adamw: decay mask has {} entries, expected {}", decay_.size(), n);
}

void AdamW::step(float* params, const float* grads, double lr, ThreadPool& pool) {
  ++t_;
  const double bc1 = 1.0 - std::pow(o_.beta1, double(t_));
  const double bc2 = 1.0 - std::pow(o_.beta2, double(t_));
  // torch.optim.AdamW: step = lr / bc1; denom = sqrt(v) / sqrt(bc2) + eps.
  const float step = float(lr / bc1), inv_sqrt_bc2 = float(1.0 / std::sqrt(bc2));
  const float decay = float(1.0 - lr * o_.weight_decay);
  const float b1 = float(o_.beta1), b2 = float(o_.beta2), eps = float(o_.eps);
  // Restrict-qualified and branch-free, so that the loop vectorises (the
  // same operations in the same order per element as the scalar form).
  float* __restrict p = params;
  const float* __restrict gr = grads;
  float* __restrict m = m_.data();
  float* __restrict v = v_.data();
  const uint8_t* __restrict dm = decay_.data();
  pool.parallel_for(m_.size(), 1024, [=](size_t i0, size_t i1, size_t) {
    for (size_t i = i0; i < i1; ++i) {
      const float g = gr[i];
      const float w = dm[i] ? p[i] * decay : p[i];
      const float mi = b1 * m[i] + (1 - b1) * g;
      const float vi = b2 * v[i] + (1 - b2) * g * g;
      m[i] = mi;
      v[i] = vi;
      p[i] = w - step * mi / (std::sqrt(vi) * inv_sqrt_bc2 + eps);
    }
  });
}

double lr_at(int64_t step, int64_t total, int64_t warmup, double lr_max, double lr_min) {
  if (warmup > 0 && step < warmup) return lr_max * double(step + 1) / double(warmup);
  const int64_t span = total - warmup;
  if (span <= 1) return lr_max;
  const double progress = std::min(1.0, double(step - warmup) / double(span - 1));
  return lr_min + 0.5 * (lr_max - lr_min) * (1.0 + std::cos(M_PI * progress));
}

double global_norm(std::span<const float> g, ThreadPool& pool) {
  std::vector<double> part(pool.size(), 0.0);
  pool.parallel_for(g.size(), 4096, [&](size_t i0, size_t i1, size_t w) {
    // Eight interleaved sums (element i into sum i mod 8, added in a fixed
    // order at the end): one chain of dependent double adds ran at a quarter
    // of the memory's pace.
    constexpr size_t kLanes = 8;
    double acc[kLanes] = {};
    size_t i = i0;
    for (; i + kLanes <= i1; i += kLanes)
      for (size_t j = 0; j < kLanes; ++j) acc[j] += double(g[i + j]) * double(g[i + j]);
    for (; i < i1; ++i) acc[0] += double(g[i]) * double(g[i]);
    double sum = 0;
    for (double a : acc) sum += a;
    part[w] = sum;
  });
  double total = 0;
  for (double p : part) total += p;
  return std::sqrt(total);
}

double clip_global_norm(std::span<float> g, double max_norm, ThreadPool& pool) {
  const double norm = global_norm(g, pool);
  if (max_norm > 0 && norm > max_norm && std::isfinite(norm)) {
    const float s = float(max_norm / (norm + 1e-6));
    pool.parallel_for(g.size(), 4096, [&](size_t i0, size_t i1, size_t) {
      for (size_t i = i0; i < i1; ++i) g[i] *= s;
    });
  }
  return norm;
}

}  // namespace tpp::train
