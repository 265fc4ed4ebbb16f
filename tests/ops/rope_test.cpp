// RoPE in the half (rotate_half) and interleaved layouts, full and partial
// rotary_dim: inverse frequencies and the rotation against the formula of
// rope.h in double, the backward (the transposed rotation) against finite
// differences, float on every ISA, and N threads against one.
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "ops/op_test_util.h"
#include "tpp/ops/rope.h"

namespace tpp::test {
namespace {

struct RopeCase {
  std::string name;
  int head_dim, rotary_dim;
  RopeLayout layout;
  int64_t pos0;
};

const std::vector<RopeCase>& rope_cases() {
  static const std::vector<RopeCase> cases = {
      {"half_full", 8, 8, RopeLayout::half, 3},
      {"interleaved_full", 8, 8, RopeLayout::interleaved, 3},
      {"half_partial", 12, 4, RopeLayout::half, 0},
      {"interleaved_partial", 12, 6, RopeLayout::interleaved, 7},
      {"half_far_positions", 16, 16, RopeLayout::half, 100000},
      {"identity", 8, 0, RopeLayout::half, 2},
  };
  return cases;
}

constexpr double kBase = 10000.0;
constexpr int kHeads = 3;

// RoFormer's rotation with HF's pairings, from base alone (no RopeParams):
// pair i < r/2 of each head is (x[i], x[i + r/2]) in the half layout and
// (x[2i], x[2i+1]) interleaved, rotated by (pos0 + t) * base^(-2i/r).
std::vector<double> rope_reference(const RopeCase& c, std::vector<double> x, int64_t n) {
  const int r = c.rotary_dim, half = r / 2;
  for (int64_t t = 0; t < n; ++t)
    for (int h = 0; h < kHeads; ++h) {
      double* v = x.data() + (t * kHeads + h) * c.head_dim;
      for (int i = 0; i < half; ++i) {
        const double angle = double(c.pos0 + t) * std::pow(kBase, -2.0 * i / r);
        const int ia = c.layout == RopeLayout::half ? i : 2 * i;
        const int ib = c.layout == RopeLayout::half ? i + half : 2 * i + 1;
        const double a = v[ia], b = v[ib];
        v[ia] = a * std::cos(angle) - b * std::sin(angle);
        v[ib] = b * std::cos(angle) + a * std::sin(angle);
      }
    }
  return x;
}

template <class R>
std::vector<R> run_forward(const RopeCase& c, const std::vector<double>& x, int64_t n, ThreadPool& pool,
                           const RopeScaling& scaling = {}) {
  const RopeParams rope = make_rope(c.head_dim, c.rotary_dim, c.layout, kBase, scaling, 4096, int(n));
  RopeTable table;
  rope_table(table, rope, c.pos0, n);
  std::vector<R> y(x.begin(), x.end());
  rope_forward<R>(y.data(), n, kHeads, rope, table, pool);
  return y;
}

template <class R>
std::vector<R> run_backward(const RopeCase& c, const std::vector<double>& dy, int64_t n, ThreadPool& pool,
                            const RopeScaling& scaling = {}) {
  const RopeParams rope = make_rope(c.head_dim, c.rotary_dim, c.layout, kBase, scaling, 4096, int(n));
  RopeTable table;
  rope_table(table, rope, c.pos0, n);
  std::vector<R> dx(dy.begin(), dy.end());
  rope_backward<R>(dx.data(), n, kHeads, rope, table, pool);
  return dx;
}

TEST(RopeTest, InvFreqMatchesFormula) {
  const int r = 8;
  RopeScaling linear;
  linear.type = RopeScalingType::linear;
  linear.factor = 4.0;
  RopeScaling ntk;
  ntk.type = RopeScalingType::ntk;
  ntk.factor = 2.0;
  const auto none_p = make_rope(r, r, RopeLayout::half, kBase, {}, 4096, 16);
  const auto lin_p = make_rope(r, r, RopeLayout::half, kBase, linear, 4096, 16);
  const auto ntk_p = make_rope(r, r, RopeLayout::half, kBase, ntk, 4096, 16);
  std::vector<double> none_ref, lin_ref, ntk_ref;
  const double ntk_base = kBase * std::pow(2.0, double(r) / (r - 2));  // HF _compute_dynamic_ntk_parameters
  for (int i = 0; i < r / 2; ++i) {
    none_ref.push_back(std::pow(kBase, -2.0 * i / r));
    lin_ref.push_back(std::pow(kBase, -2.0 * i / r) / 4.0);
    ntk_ref.push_back(std::pow(ntk_base, -2.0 * i / r));
  }
  EXPECT_TRUE(all_close(none_p.inv_freq, none_ref, {0, 1e-14}));
  EXPECT_TRUE(all_close(lin_p.inv_freq, lin_ref, {0, 1e-14}));
  EXPECT_TRUE(all_close(ntk_p.inv_freq, ntk_ref, {0, 1e-14}));
  EXPECT_EQ(none_p.mscale, 1.0);
  EXPECT_FALSE(all_close(lin_p.inv_freq, none_ref, {0, 1e-6}));  // not vacuous
}

TEST(RopeTest, ForwardMatchesFormula) {
  ThreadPool pool(1);
  const int64_t n = 5;
  for (const auto& c : rope_cases()) {
    const auto x = normals(size_t(n * kHeads * c.head_dim), 1);
    const auto ref = rope_reference(c, x, n);
    // The cos/sin table is f32 for every R (one table per forward, shared by
    // double and float), so even the double op is off by up to
    // 2^-24 (|a| + |b|) ~ 6e-8 * 8 for these |x| < 4 inputs.
    EXPECT_TRUE(all_close(run_forward<double>(c, x, n, pool), ref, {5e-7, 0})) << c.name;
    EXPECT_TRUE(all_close(run_forward<float>(c, x, n, pool), to_f32(ref), kF32Elementwise)) << c.name;
    if (c.rotary_dim > 0) {
      // Not vacuous: the other layout is a different rotation.
      RopeCase other = c;
      other.layout = c.layout == RopeLayout::half ? RopeLayout::interleaved : RopeLayout::half;
      EXPECT_FALSE(all_close(run_forward<double>(other, x, n, pool), ref, {5e-7, 0})) << c.name;
    } else {
      EXPECT_TRUE(all_close(ref, x, {0, 0}));
    }
  }
}

TEST(RopeTest, BackwardMatchesFiniteDifferences) {
  ThreadPool pool(1);
  const int64_t n = 4;
  // Linear in x: no kinks. One case with yarn scaling, whose attention factor
  // multiplies cos and sin (mscale != 1), so the backward is a transpose, not
  // an inverse.
  RopeScaling yarn;
  yarn.type = RopeScalingType::yarn;
  yarn.factor = 4.0;
  yarn.original_max_position_embeddings = 64;
  std::vector<std::pair<RopeCase, RopeScaling>> cases;
  for (const auto& c : rope_cases()) cases.push_back({c, RopeScaling{}});
  cases.push_back({{"half_yarn", 8, 8, RopeLayout::half, 5}, yarn});
  cases.push_back({{"interleaved_yarn_partial", 12, 8, RopeLayout::interleaved, 9}, yarn});
  for (const auto& [c, scaling] : cases) {
    auto x = normals(size_t(n * kHeads * c.head_dim), 2);
    const auto r = normals(x.size(), 3);
    const auto analytic = run_backward<double>(c, r, n, pool, scaling);
    const auto fd = fd_grad(x, [&] { return dot(run_forward<double>(c, x, n, pool, scaling), r); });
    EXPECT_TRUE(all_close(analytic, fd, kFdTol)) << c.name;
    EXPECT_TRUE(fails_when_perturbed(analytic, fd, kFdTol)) << c.name;
  }
}

class RopeIsaTest : public ::testing::TestWithParam<kernels::Isa> {};

// RoPE runs no table kernel today; held to the f32 elementwise bound
// (atol 1e-6, rtol 1e-5) against the scalar ISA and against double.
TEST_P(RopeIsaTest, FloatMatchesScalarIsaAndDouble) {
  ThreadPool pool(2);
  const int64_t n = 33;
  for (const auto& c : rope_cases()) {
    const auto x = normals(size_t(n * kHeads * c.head_dim), 4);
    const auto fwd = [&] { return run_forward<float>(c, x, n, pool); };
    const auto bwd = [&] { return run_backward<float>(c, x, n, pool); };
    EXPECT_TRUE(all_close(with_isa(GetParam(), fwd), with_isa(kernels::Isa::scalar, fwd), kF32Elementwise))
        << c.name;
    EXPECT_TRUE(all_close(with_isa(GetParam(), bwd), with_isa(kernels::Isa::scalar, bwd), kF32Elementwise))
        << c.name;
    EXPECT_TRUE(all_close(to_f64(with_isa(GetParam(), fwd)), run_forward<double>(c, x, n, pool), kF32Elementwise))
        << c.name;
    EXPECT_TRUE(all_close(to_f64(with_isa(GetParam(), bwd)), run_backward<double>(c, x, n, pool), kF32Elementwise))
        << c.name;
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, RopeIsaTest, ::testing::ValuesIn(kernels::supported_isas()), isa_param_name);

TEST(RopeTest, ThreadsBitwise) {
  ThreadPool one(1), three(3);
  const int64_t n = 50;  // rows in ranges of 16: every worker gets some
  for (const auto& c : rope_cases()) {
    const auto x = normals(size_t(n * kHeads * c.head_dim), 5);
    EXPECT_TRUE(bitwise_equal(run_forward<float>(c, x, n, one), run_forward<float>(c, x, n, three))) << c.name;
    EXPECT_TRUE(bitwise_equal(run_backward<float>(c, x, n, one), run_backward<float>(c, x, n, three))) << c.name;
  }
}

}  // namespace
}  // namespace tpp::test
