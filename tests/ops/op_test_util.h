// Helpers shared by the op tests (tests/ops/*_test.cpp): inputs from tpp's
// counter RNG, central finite differences in double, the gradient-check
// tolerance, a negative check that a comparison can fail, and ISA switching.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "tpp/core/rng.h"
#include "tpp/kernels/api.h"

namespace tpp::test {

// Standard normals * scale, value i of stream `stream` (CounterRng: never std
// distributions, so inputs are the same with every standard library).
inline std::vector<double> normals(size_t n, uint64_t stream, double scale = 1.0, uint64_t seed = 2024) {
  const CounterRng rng(seed, stream);
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = scale * rng.normal(i);
  return out;
}

// Uniform in [lo, hi).
inline std::vector<double> uniforms(size_t n, uint64_t stream, double lo, double hi, uint64_t seed = 2024) {
  const CounterRng rng(seed, stream);
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = lo + (hi - lo) * rng.uniform(i);
  return out;
}

// |x| in [lo, hi) with a random sign: inputs kept away from a kink at 0 (ReLU).
inline std::vector<double> away_from_zero(size_t n, uint64_t stream, double lo, double hi) {
  const CounterRng rng(2024, stream);
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i) {
    const double mag = lo + (hi - lo) * rng.uniform(2 * i);
    out[i] = rng.uniform(2 * i + 1) < 0.5 ? -mag : mag;
  }
  return out;
}

inline std::vector<float> to_f32(const std::vector<double>& v) { return {v.begin(), v.end()}; }
inline std::vector<double> to_f64(const std::vector<float>& v) { return {v.begin(), v.end()}; }

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) s += a[i] * b[i];
  return s;
}

// Central differences of loss() with respect to every element of x, which
// loss() reads: h = 1e-6 * max(1, |x_i|). x is restored afterwards.
template <class Loss>
std::vector<double> fd_grad(std::vector<double>& x, Loss&& loss) {
  std::vector<double> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i], h = 1e-6 * std::max(1.0, std::fabs(x0));
    x[i] = x0 + h;
    const double lp = loss();
    x[i] = x0 - h;
    const double lm = loss();
    x[i] = x0;
    g[i] = (lp - lm) / (2 * h);
  }
  return g;
}

// Analytic vs finite-difference gradients in double: |a - n| <= 1e-6 (1 + |n|).
// Central differences with h = 1e-6 err by O(h^2 f''') ~ 1e-12 plus rounding
// ~ eps |L| / h ~ 1e-10 |L|; the losses here are O(10), so 1e-6 leaves a wide
// margin while a wrong term (a missing factor, a dropped branch) is O(1e-2+).
inline constexpr Tolerance kFdTol{1e-6, 1e-6};

// The companion negative check (STYLE §15): the same comparison with one
// element of `actual` moved by rel * max(1, |actual_i|) must fail.
inline ::testing::AssertionResult fails_when_perturbed(std::vector<double> actual,
                                                       const std::vector<double>& expected, Tolerance tol,
                                                       double rel = 1e-4) {
  if (actual.empty()) return ::testing::AssertionFailure() << "nothing to perturb";
  const size_t i = actual.size() / 2;
  actual[i] += rel * std::max(1.0, std::fabs(actual[i]));
  if (all_close(actual, expected, tol)) {
    return ::testing::AssertionFailure() << "a perturbation of " << rel << " at [" << i
                                         << "] went unnoticed: the comparison cannot fail";
  }
  return ::testing::AssertionSuccess();
}
inline ::testing::AssertionResult fails_when_perturbed(std::vector<float> actual,
                                                       const std::vector<float>& expected, Tolerance tol,
                                                       double rel = 1e-3) {
  if (actual.empty()) return ::testing::AssertionFailure() << "nothing to perturb";
  const size_t i = actual.size() / 2;
  actual[i] += float(rel * std::max(1.0, std::fabs(double(actual[i]))));
  if (all_close(actual, expected, tol)) {
    return ::testing::AssertionFailure() << "a perturbation of " << rel << " at [" << i
                                         << "] went unnoticed: the comparison cannot fail";
  }
  return ::testing::AssertionSuccess();
}

// Selects an ISA for the kernel table and restores the previous one on exit.
class ScopedIsa {
 public:
  explicit ScopedIsa(kernels::Isa isa) : saved_(kernels::kernels().isa) { kernels::set_isa(isa); }
  ~ScopedIsa() { kernels::set_isa(saved_); }
  ScopedIsa(const ScopedIsa&) = delete;
  ScopedIsa& operator=(const ScopedIsa&) = delete;

 private:
  kernels::Isa saved_;
};

// Runs fn() with the kernel table switched to `isa` and returns its result.
template <class Fn>
auto with_isa(kernels::Isa isa, Fn&& fn) {
  ScopedIsa scoped(isa);
  return fn();
}

inline std::string isa_param_name(const ::testing::TestParamInfo<kernels::Isa>& info) {
  return std::string(kernels::isa_name(info.param));
}

// Bitwise equality of two float or double buffers (for thread-count checks).
template <class R>
::testing::AssertionResult bitwise_equal(const std::vector<R>& a, const std::vector<R>& b) {
  if (a.size() != b.size()) return ::testing::AssertionFailure() << "sizes " << a.size() << " vs " << b.size();
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(R)) != 0)
      return ::testing::AssertionFailure() << "first difference at [" << i << "]: " << a[i] << " vs " << b[i];
  return ::testing::AssertionSuccess();
}

}  // namespace tpp::test
