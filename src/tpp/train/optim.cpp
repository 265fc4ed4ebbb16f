#include "tpp/train/optim.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "tpp/core/error.h"
#include "tpp/kernels/api.h"

namespace tpp::train {

AdamW::AdamW(int64_t n, std::vector<ParamRange> decayed, AdamWOptions options)
    : o_(options), m_(size_t(n), 0.0f), v_(size_t(n), 0.0f) {
  int64_t at = 0;
  for (const ParamRange& r : decayed) {
    TPP_CHECK(r.begin >= at && r.end >= r.begin && r.end <= n,
              "adamw: decayed range [{}, {}) is out of order or outside [{}, {})", r.begin, r.end, at, n);
    if (r.begin > at) runs_.push_back({at, r.begin, false});
    if (r.end > r.begin) runs_.push_back({r.begin, r.end, true});
    at = r.end;
  }
  if (at < n) runs_.push_back({at, n, false});
}

void AdamW::step(float* params, const float* grads, double lr, ThreadPool& pool) {
  ++t_;
  const double bc1 = 1.0 - std::pow(o_.beta1, double(t_));
  const double bc2 = 1.0 - std::pow(o_.beta2, double(t_));
  // torch.optim.AdamW: step = lr / bc1; denom = sqrt(v) / sqrt(bc2) + eps.
  const kernels::AdamWCoeffs base{float(o_.beta1), float(o_.beta2), float(lr / bc1),
                                  float(1.0 / std::sqrt(bc2)), float(o_.eps), 1.0f};
  const float decay = float(1.0 - lr * o_.weight_decay);
  const kernels::AdamWF32Fn vec = kernels::kernels().adamw_f32;
  float* p = params;
  float* m = m_.data();
  float* v = v_.data();
  // Elements [i0, i1) of one run, on the vector kernel when the CPU has one.
  auto update = [&](int64_t i0, int64_t i1, const kernels::AdamWCoeffs& c) {
    if (vec) return vec(p + i0, grads + i0, m + i0, v + i0, i1 - i0, c);
    // The scalar form, restrict-qualified so that it vectorises.
    float* __restrict pp = p;
    const float* __restrict gr = grads;
    float* __restrict mm = m;
    float* __restrict vv = v;
    for (int64_t i = i0; i < i1; ++i) {
      const float g = gr[i], w = pp[i] * c.decay;
      const float mi = c.b1 * mm[i] + (1 - c.b1) * g;
      const float vi = c.b2 * vv[i] + (1 - c.b2) * g * g;
      mm[i] = mi;
      vv[i] = vi;
      pp[i] = w - c.step * mi / (std::sqrt(vi) * c.inv_sqrt_bc2 + c.eps);
    }
  };
  const std::vector<Run>& runs = runs_;
  pool.parallel_for(m_.size(), 4096, [&](size_t i0, size_t i1, size_t) {
    // The runs that meet [i0, i1), from the first that ends after i0.
    auto r = std::upper_bound(runs.begin(), runs.end(), int64_t(i0),
                              [](int64_t i, const Run& run) { return i < run.end; });
    for (; r != runs.end() && r->begin < int64_t(i1); ++r) {
      kernels::AdamWCoeffs c = base;
      if (r->decayed) c.decay = decay;
      update(std::max(r->begin, int64_t(i0)), std::min(r->end, int64_t(i1)), c);
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

void zero(std::span<float> g, ThreadPool& pool) {
  pool.parallel_for(g.size(), size_t(1) << 16,
                    [&](size_t i0, size_t i1, size_t) { std::memset(g.data() + i0, 0, (i1 - i0) * sizeof(float)); });
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
