#include "tpp/ops/cross_entropy.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace tpp {

template <class R>
double cross_entropy_forward(const R* logits, const int32_t* targets, int64_t N, int64_t V, ThreadPool& pool) {
  std::vector<double> part(pool.size(), 0.0);
  pool.parallel_for(size_t(N), 4, [&](size_t n0, size_t n1, size_t worker) {
    double acc = 0;
    for (size_t n = n0; n < n1; ++n) {
      const R* z = logits + int64_t(n) * V;
      const R mx = *std::max_element(z, z + V);
      double sum = 0;
      for (int64_t i = 0; i < V; ++i) sum += std::exp(double(z[i] - mx));
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
  pool.parallel_for(size_t(N), 4, [&](size_t n0, size_t n1, size_t) {
    for (size_t n = n0; n < n1; ++n) {
      R* z = logits + int64_t(n) * V;
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
