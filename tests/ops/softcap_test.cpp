// Soft-capping y = c tanh(x / c): forward against the formula in double,
// backward (from y alone) against finite differences in double, float on
// every ISA against the scalar ISA and double. Attention's per-tile soft-cap
// is tested in attention_test.cpp.
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "ops/op_test_util.h"
#include "tpp/ops/softcap.h"

namespace tpp::test {
namespace {

// Inputs up to 3c: from the linear region to deep saturation. (Gemma 2's
// attention cap is 50 and final-logit cap 30; a small cap reaches the same
// regime with small inputs.)
constexpr double kCaps[] = {0.7, 5.0, 30.0};

template <class R>
std::vector<R> run_forward(const std::vector<double>& x, double cap) {
  std::vector<R> y(x.begin(), x.end());
  softcap_forward<R>(y.data(), int64_t(y.size()), R(cap));
  return y;
}

template <class R>
std::vector<R> run_backward(const std::vector<double>& x, const std::vector<double>& dy, double cap) {
  const auto y = run_forward<R>(x, cap);
  std::vector<R> dx(dy.begin(), dy.end());
  softcap_backward<R>(dx.data(), y.data(), int64_t(dx.size()), R(cap));
  return dx;
}

TEST(SoftcapTest, ForwardMatchesFormula) {
  for (double cap : kCaps) {
    const auto x = uniforms(64, 1, -3 * cap, 3 * cap);
    std::vector<double> ref(x.size());
    for (size_t i = 0; i < x.size(); ++i) ref[i] = cap * std::tanh(x[i] / cap);
    EXPECT_TRUE(all_close(run_forward<double>(x, cap), ref, {1e-15, 1e-15})) << cap;
    EXPECT_TRUE(all_close(run_forward<float>(x, cap), to_f32(ref), kF32Elementwise)) << cap;
    // |y| <= c and the cap is not vacuous: y differs from x.
    for (double y : ref) EXPECT_LE(std::fabs(y), cap);
    EXPECT_FALSE(all_close(ref, x, {1e-6, 1e-6})) << cap;
  }
}

TEST(SoftcapTest, BackwardMatchesFiniteDifferences) {
  for (double cap : kCaps) {
    // tanh is smooth: no kinks. |x| <= 3c keeps 1 - (y/c)^2 >= 0.04 so the
    // derivative is not lost to rounding.
    auto x = uniforms(16, 2, -3 * cap, 3 * cap);
    const auto r = normals(x.size(), 3);
    const auto analytic = run_backward<double>(x, r, cap);
    const auto fd = fd_grad(x, [&] { return dot(run_forward<double>(x, cap), r); });
    EXPECT_TRUE(all_close(analytic, fd, kFdTol)) << cap;
    EXPECT_TRUE(fails_when_perturbed(analytic, fd, kFdTol)) << cap;
  }
}

class SoftcapIsaTest : public ::testing::TestWithParam<kernels::Isa> {};

// Softcap is an inline loop with no table kernel; held to the f32
// elementwise bound (atol 1e-6, rtol 1e-5) against the scalar ISA and double.
// (The backward from y: 1 - (y/c)^2 in f32 has an absolute error of a few
// eps, which near saturation is a large relative error of a small value; the
// atol of 1e-6 covers it.)
TEST_P(SoftcapIsaTest, FloatMatchesScalarIsaAndDouble) {
  for (double cap : kCaps) {
    const auto x = uniforms(100, 4, -3 * cap, 3 * cap), dy = normals(100, 5);
    const auto fwd = [&] { return run_forward<float>(x, cap); };
    const auto bwd = [&] { return run_backward<float>(x, dy, cap); };
    EXPECT_TRUE(all_close(with_isa(GetParam(), fwd), with_isa(kernels::Isa::scalar, fwd), kF32Elementwise));
    EXPECT_TRUE(all_close(with_isa(GetParam(), bwd), with_isa(kernels::Isa::scalar, bwd), kF32Elementwise));
    EXPECT_TRUE(all_close(to_f64(with_isa(GetParam(), fwd)), run_forward<double>(x, cap), kF32Elementwise));
    EXPECT_TRUE(all_close(to_f64(with_isa(GetParam(), bwd)), run_backward<double>(x, dy, cap), kF32Elementwise));
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, SoftcapIsaTest, ::testing::ValuesIn(kernels::supported_isas()), isa_param_name);

}  // namespace
}  // namespace tpp::test
