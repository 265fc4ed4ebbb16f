#include "tpp/ops/norm.h"

#include <cmath>

namespace tpp {

void rmsnorm_forward(float* y, const float* x, int64_t N, int64_t d, std::span<const float> w,
                     float eps, bool one_plus) {
  for (int64_t n = 0; n < N; ++n) {
    const float* xr = x + n * d;
    float* yr = y + n * d;
    double ss = 0;  // accumulate in double: d is small, and this keeps the norm exact to f32
    for (int64_t i = 0; i < d; ++i) ss += double(xr[i]) * xr[i];
    const float rstd = float(1.0 / std::sqrt(ss / double(d) + double(eps)));
    if (one_plus)
      for (int64_t i = 0; i < d; ++i) yr[i] = xr[i] * rstd * (1.0f + w[size_t(i)]);
    else
      for (int64_t i = 0; i < d; ++i) yr[i] = xr[i] * rstd * w[size_t(i)];
  }
}

void layernorm_forward(float* y, const float* x, int64_t N, int64_t d, std::span<const float> w,
                       std::span<const float> b, float eps) {
  for (int64_t n = 0; n < N; ++n) {
    const float* xr = x + n * d;
    float* yr = y + n * d;
    double sum = 0;
    for (int64_t i = 0; i < d; ++i) sum += xr[i];
    const double mean = sum / double(d);
    double var = 0;
    for (int64_t i = 0; i < d; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    const double rstd = 1.0 / std::sqrt(var / double(d) + double(eps));
    for (int64_t i = 0; i < d; ++i)
      yr[i] = float((xr[i] - mean) * rstd) * w[size_t(i)] + (b.empty() ? 0.0f : b[size_t(i)]);
  }
}

}  // namespace tpp
