#include "tpp/ops/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "tpp/kernels/api.h"

namespace tpp {

namespace {

// The vector softmax kernels, for float rows where the CPU has them.
template <class R>
const kernels::Kernels* softmax_kernels() {
  const auto& k = kernels::kernels();
  if constexpr (std::is_same_v<R, float>)
    if (k.max_f32 && k.exp_sum_f32) return &k;
  return nullptr;
}

}  // namespace

template <class R>
double cross_entropy_forward(const R* logits, const int32_t* targets, int64_t N, int64_t V, ThreadPool& pool) {
  std::vector<double> part(pool.size(), 0.0);
  const kernels::Kernels* vk = softmax_kernels<R>();
  pool.parallel_for(size_t(N), 4, [&](size_t n0, size_t n1, size_t worker) {
    double acc = 0;
    for (size_t n = n0; n < n1; ++n) {
      const R* z = logits + int64_t(n) * V;
      double sum = 0;
      R mx = 0;
      if constexpr (std::is_same_v<R, float>) {
        if (vk) {
          mx = vk->max_f32(z, V);
          sum = vk->exp_sum_f32(nullptr, z, mx, V);
        }
      }
      if (!vk) {
        mx = *std::max_element(z, z + V);
        for (int64_t i = 0; i < V; ++i) sum += std::exp(double(z[i] - mx));
      }
      acc += std::log(sum) + double(mx) - double(z[targets[n]]);
    }
    part[worker] = acc;
  });
  double loss = 0;
  for (double p : part) loss += p;
  return loss / double(N);
}

template <class R>
void cross_entropy_backward(R* logits, const int32_t* targets, int64_t N, int64_t V, R scale, R softcap,
                            ThreadPool& pool) {
  const R inv_n = scale / R(N);
  const kernels::Kernels* vk = softcap > 0 ? nullptr : softmax_kernels<R>();
  pool.parallel_for(size_t(N), 4, [&](size_t n0, size_t n1, size_t) {
    for (size_t n = n0; n < n1; ++n) {
      R* z = logits + int64_t(n) * V;
      if constexpr (std::is_same_v<R, float>) {
        if (vk) {
          // One exp per logit, in place: softmax * inv_n, minus inv_n at the target.
          const float sum = vk->exp_sum_f32(z, z, vk->max_f32(z, V), V);
          vk->scale_f32(z, inv_n / sum, V);
          z[targets[n]] -= inv_n;
          continue;
        }
      }
      const R mx = *std::max_element(z, z + V);
      R sum = 0;
      for (int64_t i = 0; i < V; ++i) sum += std::exp(z[i] - mx);
      const R inv = R(1) / sum;
      for (int64_t i = 0; i < V; ++i) {
        R g = std::exp(z[i] - mx) * inv;
        if (i == targets[n]) g -= R(1);
        g *= inv_n;
        if (softcap > 0) {
          const R t = z[i] / softcap;
          g *= R(1) - t * t;
        }
        z[i] = g;
      }
    }
  });
}

template double cross_entropy_forward(const float*, const int32_t*, int64_t, int64_t, ThreadPool&);
template double cross_entropy_forward(const double*, const int32_t*, int64_t, int64_t, ThreadPool&);
template void cross_entropy_backward(float*, const int32_t*, int64_t, int64_t, float, float, ThreadPool&);
template void cross_entropy_backward(double*, const int32_t*, int64_t, int64_t, double, double, ThreadPool&);

}  // namespace tpp
