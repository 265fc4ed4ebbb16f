// Next-token cross-entropy, with and without the final soft-cap: the loss
// against torch.nn.functional.cross_entropy's formula written out here in
// double, the gradient (to the pre-cap logits) against finite differences in
// double, float on every ISA against the scalar ISA and double, and N threads
// against one.
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "ops/op_test_util.h"
#include "tpp/ops/cross_entropy.h"

namespace tpp::test {
namespace {

constexpr int64_t kV = 11;

std::vector<int32_t> make_targets(int64_t N) {
  std::vector<int32_t> t;
  for (int64_t n = 0; n < N; ++n) t.push_back(int32_t((n * 7 + 3) % kV));
  return t;
}

// z = c tanh(u / c) when c > 0 (Gemma 2's final_logit_softcapping), else u.
std::vector<double> capped(const std::vector<double>& u, double cap) {
  std::vector<double> z = u;
  if (cap > 0)
    for (auto& v : z) v = cap * std::tanh(v / cap);
  return z;
}

// mean_n [log sum_i exp(z_n,i) - z_n,target], in long double without the max shift.
double ce_reference(const std::vector<double>& z, const std::vector<int32_t>& targets) {
  const int64_t N = int64_t(targets.size());
  long double total = 0;
  for (int64_t n = 0; n < N; ++n) {
    long double sum = 0;
    for (int64_t i = 0; i < kV; ++i) sum += std::exp((long double)z[size_t(n * kV + i)]);
    total += std::log(sum) - z[size_t(n * kV + targets[size_t(n)])];
  }
  return double(total / N);
}

template <class R>
double run_forward(const std::vector<double>& z, const std::vector<int32_t>& targets, ThreadPool& pool) {
  const std::vector<R> zr(z.begin(), z.end());
  return cross_entropy_forward<R>(zr.data(), targets.data(), int64_t(targets.size()), kV, pool);
}

// The gradient of scale * loss w.r.t. the pre-cap logits u (z = cap(u)).
template <class R>
std::vector<R> run_backward(const std::vector<double>& u, const std::vector<int32_t>& targets, double scale,
                            double cap, ThreadPool& pool) {
  const auto z = capped(u, cap);
  std::vector<R> g(z.begin(), z.end());
  cross_entropy_backward<R>(g.data(), targets.data(), int64_t(targets.size()), kV, R(scale), R(cap), pool);
  return g;
}

TEST(CrossEntropyTest, ForwardMatchesFormula) {
  ThreadPool pool(1);
  const auto targets = make_targets(5);
  for (double cap : {0.0, 3.0}) {
    const auto z = capped(normals(size_t(5 * kV), 1, 2.0), cap);
    const double ref = ce_reference(z, targets);
    EXPECT_NEAR(run_forward<double>(z, targets, pool), ref, 1e-14 * std::fabs(ref)) << cap;
    // f32 logits: the loss accumulates in double, only the inputs round.
    const double ref32 = ce_reference(to_f64(to_f32(z)), targets);
    EXPECT_NEAR(run_forward<float>(z, targets, pool), ref32, 1e-6 * std::fabs(ref32)) << cap;
    // Not vacuous: another target gives another loss.
    auto other = targets;
    other[0] = (other[0] + 1) % int32_t(kV);
    EXPECT_GT(std::fabs(ce_reference(z, other) - ref), 1e-3);
  }
  // Shift invariance, far beyond exp's range: the max is subtracted first.
  auto z = normals(size_t(5 * kV), 2);
  const double ref = ce_reference(z, targets);
  for (auto& v : z) v += 1000;
  EXPECT_NEAR(run_forward<float>(z, targets, pool), ref, 1e-4);
  EXPECT_NEAR(run_forward<double>(z, targets, pool), ref, 1e-11);
}

TEST(CrossEntropyTest, BackwardMatchesFiniteDifferences) {
  ThreadPool pool(1);
  // Smooth (logsumexp, tanh): no kinks. scale != 1 as gradient accumulation
  // over micro-batches passes it.
  const auto targets = make_targets(4);
  const double scale = 0.7;
  for (double cap : {0.0, 3.0}) {
    auto u = normals(size_t(4 * kV), 3, 2.0);
    const auto analytic = run_backward<double>(u, targets, scale, cap, pool);
    const auto fd = fd_grad(u, [&] { return scale * run_forward<double>(capped(u, cap), targets, pool); });
    EXPECT_TRUE(all_close(analytic, fd, kFdTol)) << cap;
    EXPECT_TRUE(fails_when_perturbed(analytic, fd, kFdTol)) << cap;
  }
}

class CrossEntropyIsaTest : public ::testing::TestWithParam<kernels::Isa> {};

// Rows without a soft-cap take the table's vector max and exp-sum where the
// level has them (f32 lane sums), the others a double (loss) or f32
// (gradient) loop. Loss: rtol 1e-6. Gradient: softmax of f32 logits, an f32
// row sum of length V (f32 reduction bound, atol 1e-5 rtol 1e-4, against
// double; elementwise against the scalar ISA).
TEST_P(CrossEntropyIsaTest, FloatMatchesScalarIsaAndDouble) {
  ThreadPool pool(2);
  const auto targets = make_targets(21);
  for (double cap : {0.0, 3.0}) {
    const auto u = normals(size_t(21 * kV), 4, 2.0);
    const auto z = capped(u, cap);
    const auto loss = [&] { return run_forward<float>(z, targets, pool); };
    const auto grad = [&] { return run_backward<float>(u, targets, 1.0, cap, pool); };
    const double ref = run_forward<double>(to_f64(to_f32(z)), targets, pool);
    EXPECT_NEAR(with_isa(GetParam(), loss), with_isa(kernels::Isa::scalar, loss), 1e-6 * ref);
    EXPECT_NEAR(with_isa(GetParam(), loss), ref, 1e-6 * ref);
    EXPECT_TRUE(all_close(with_isa(GetParam(), grad), with_isa(kernels::Isa::scalar, grad), kF32Elementwise));
    EXPECT_TRUE(all_close(to_f64(with_isa(GetParam(), grad)), run_backward<double>(u, targets, 1.0, cap, pool),
                          kF32Reduction));
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, CrossEntropyIsaTest, ::testing::ValuesIn(kernels::supported_isas()),
                         isa_param_name);

TEST(CrossEntropyTest, Threads) {
  // 40 rows in ranges of 4. The gradient is per row: bitwise. The loss sums
  // per worker in double and combines in worker order: bitwise repeatable for
  // a fixed thread count, equal to one thread up to double rounding.
  ThreadPool one(1), three(3);
  const auto targets = make_targets(40);
  const auto u = normals(size_t(40 * kV), 5, 2.0);
  for (double cap : {0.0, 3.0}) {
    EXPECT_TRUE(bitwise_equal(run_backward<float>(u, targets, 1.0, cap, one),
                              run_backward<float>(u, targets, 1.0, cap, three)));
  }
  const double a = run_forward<float>(u, targets, three), b = run_forward<float>(u, targets, three);
  EXPECT_EQ(a, b);
  EXPECT_NEAR(a, run_forward<float>(u, targets, one), 1e-14 * a);
}

}  // namespace
}  // namespace tpp::test
