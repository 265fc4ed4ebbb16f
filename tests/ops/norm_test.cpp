// RMSNorm (w and 1 + w) and LayerNorm (with and without bias): forward against
// the formula written out here in double, backward against central finite
// differences in double, float on every ISA against the scalar ISA and the
// double result, and N threads against one.
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "ops/op_test_util.h"
#include "tpp/ops/norm.h"

namespace tpp::test {
namespace {

struct NormCase {
  std::string name;
  NormKind kind;
  bool one_plus;
  bool bias;
};

const std::vector<NormCase>& norm_cases() {
  static const std::vector<NormCase> cases = {
      {"rmsnorm_w", NormKind::rmsnorm, false, false},
      {"rmsnorm_one_plus_w", NormKind::rmsnorm, true, false},
      {"layernorm_bias", NormKind::layernorm, false, true},
      {"layernorm_no_bias", NormKind::layernorm, false, false},
  };
  return cases;
}

NormParams params_of(const NormCase& c) { return {c.kind, c.one_plus, 1e-5}; }

// The formula of norm.h in double (HF LlamaRMSNorm / Gemma2RMSNorm,
// torch.nn.functional.layer_norm with the biased variance).
std::vector<double> norm_reference(const NormCase& c, const std::vector<double>& x, const std::vector<double>& w,
                                   const std::vector<double>& b, int64_t N, int64_t d, double eps) {
  std::vector<double> y(x.size());
  for (int64_t n = 0; n < N; ++n) {
    const double* xr = x.data() + n * d;
    double mean = 0, var = 0;
    if (c.kind == NormKind::layernorm) {
      for (int64_t i = 0; i < d; ++i) mean += xr[i] / double(d);
      for (int64_t i = 0; i < d; ++i) var += (xr[i] - mean) * (xr[i] - mean) / double(d);
    } else {
      for (int64_t i = 0; i < d; ++i) var += xr[i] * xr[i] / double(d);  // mean(x^2)
    }
    for (int64_t i = 0; i < d; ++i) {
      const double scale = c.one_plus ? 1.0 + w[size_t(i)] : w[size_t(i)];
      y[size_t(n * d + i)] = (xr[i] - mean) / std::sqrt(var + eps) * scale + (c.bias ? b[size_t(i)] : 0.0);
    }
  }
  return y;
}

struct Inputs {
  int64_t N, d;
  std::vector<double> x, w, b, r;  // r: the random projection of the loss L = sum y * r (= dy)
};

Inputs make_inputs(int64_t N, int64_t d, uint64_t stream) {
  // x has a nonzero mean per row so LayerNorm's centring matters.
  Inputs in{N, d, normals(size_t(N * d), stream, 1.5), normals(size_t(d), stream + 1, 0.5),
            normals(size_t(d), stream + 2, 0.5), normals(size_t(N * d), stream + 3)};
  for (auto& v : in.x) v += 0.3;
  for (auto& v : in.w) v += 1.0;
  return in;
}

template <class R>
struct NormResult {
  std::vector<R> y, dx, dw, db;
};

// Forward, then backward with dy = r into zeroed gradients.
template <class R>
NormResult<R> run_norm(const NormCase& c, const Inputs& in, ThreadPool& pool) {
  const std::vector<R> x(in.x.begin(), in.x.end()), w(in.w.begin(), in.w.end()), b(in.b.begin(), in.b.end()),
      dy(in.r.begin(), in.r.end());
  NormResult<R> res;
  res.y.resize(x.size());
  res.dx.resize(x.size());
  res.dw.assign(w.size(), R(0));
  res.db.assign(b.size(), R(0));
  const NormWeights<R> nw{w.data(), c.bias ? b.data() : nullptr};
  norm_forward<R>(res.y.data(), x.data(), in.N, in.d, nw, params_of(c), pool);
  norm_backward<R>(res.dx.data(), false, dy.data(), x.data(), in.N, in.d, nw,
                   {res.dw.data(), c.bias ? res.db.data() : nullptr}, params_of(c), pool);
  return res;
}

TEST(NormTest, ForwardMatchesFormula) {
  ThreadPool pool(1);
  const Inputs in = make_inputs(5, 12, 10);
  for (const auto& c : norm_cases()) {
    const auto ref = norm_reference(c, in.x, in.w, in.b, in.N, in.d, 1e-5);
    const auto got = run_norm<double>(c, in, pool).y;
    // double: only the order of the row sums differs from the formula above.
    EXPECT_TRUE(all_close(got, ref, {1e-13, 1e-12})) << c.name;
    // float: the statistics are accumulated in double, then y rounds a few times.
    EXPECT_TRUE(all_close(run_norm<float>(c, in, pool).y, to_f32(ref), kF32Elementwise)) << c.name;
  }
  // Not vacuous: the variants differ from each other by far more than the bound.
  const auto rms = norm_reference(norm_cases()[0], in.x, in.w, in.b, in.N, in.d, 1e-5);
  EXPECT_FALSE(all_close(run_norm<double>(norm_cases()[1], in, pool).y, rms, {1e-6, 1e-6}));
  const auto ln = norm_reference(norm_cases()[2], in.x, in.w, in.b, in.N, in.d, 1e-5);
  EXPECT_FALSE(all_close(run_norm<double>(norm_cases()[3], in, pool).y, ln, {1e-6, 1e-6}));
}

TEST(NormTest, ForwardInPlace) {
  ThreadPool pool(1);
  const Inputs in = make_inputs(3, 16, 20);
  for (const auto& c : norm_cases()) {
    std::vector<float> x = to_f32(in.x);
    const auto w = to_f32(in.w), b = to_f32(in.b);
    const NormWeights<float> nw{w.data(), c.bias ? b.data() : nullptr};
    std::vector<float> y(x.size());
    norm_forward<float>(y.data(), x.data(), in.N, in.d, nw, params_of(c), pool);
    norm_forward<float>(x.data(), x.data(), in.N, in.d, nw, params_of(c), pool);  // y aliases x
    EXPECT_TRUE(bitwise_equal(x, y)) << c.name;
  }
}

TEST(NormTest, BackwardMatchesFiniteDifferences) {
  ThreadPool pool(1);
  // Smooth everywhere (eps > 0 keeps rstd finite): no kinks to avoid.
  for (const auto& c : norm_cases()) {
    Inputs in = make_inputs(3, 8, 30);
    const auto an = run_norm<double>(c, in, pool);
    auto loss = [&] { return dot(norm_reference(c, in.x, in.w, in.b, in.N, in.d, 1e-5), in.r); };
    const auto fd_x = fd_grad(in.x, loss), fd_w = fd_grad(in.w, loss);
    EXPECT_TRUE(all_close(an.dx, fd_x, kFdTol)) << c.name << " dx";
    EXPECT_TRUE(all_close(an.dw, fd_w, kFdTol)) << c.name << " dw";
    if (c.bias) {
      EXPECT_TRUE(all_close(an.db, fd_grad(in.b, loss), kFdTol)) << c.name << " db";
    }
    // Companion: a gradient off by 1e-4 fails the same comparison.
    EXPECT_TRUE(fails_when_perturbed(an.dx, fd_x, kFdTol)) << c.name;
    EXPECT_TRUE(fails_when_perturbed(an.dw, fd_w, kFdTol)) << c.name;
  }
}

TEST(NormTest, BackwardAccumulates) {
  // dx += with accumulate, and dw/db always +=: a second call on top of a
  // first doubles the weight gradients and adds the input gradient once more.
  ThreadPool pool(1);
  const Inputs in = make_inputs(4, 8, 40);
  for (const auto& c : norm_cases()) {
    const auto once = run_norm<double>(c, in, pool);
    auto dx = once.dx, dw = once.dw, db = once.db;
    const NormWeights<double> nw{in.w.data(), c.bias ? in.b.data() : nullptr};
    norm_backward<double>(dx.data(), true, in.r.data(), in.x.data(), in.N, in.d, nw,
                          {dw.data(), c.bias ? db.data() : nullptr}, params_of(c), pool);
    std::vector<double> twice_dx(dx.size()), twice_dw(dw.size()), twice_db(db.size());
    for (size_t i = 0; i < dx.size(); ++i) twice_dx[i] = 2 * once.dx[i];
    for (size_t i = 0; i < dw.size(); ++i) twice_dw[i] = 2 * once.dw[i];
    for (size_t i = 0; i < db.size(); ++i) twice_db[i] = 2 * once.db[i];
    EXPECT_TRUE(all_close(dx, twice_dx, {1e-14, 1e-14})) << c.name;
    EXPECT_TRUE(all_close(dw, twice_dw, {1e-14, 1e-14})) << c.name;
    if (c.bias) {
      EXPECT_TRUE(all_close(db, twice_db, {1e-14, 1e-14})) << c.name;
    } else {
      EXPECT_TRUE(all_close(db, once.db, {0, 0})) << c.name << ": db written without a bias";
    }
  }
}

class NormIsaTest : public ::testing::TestWithParam<kernels::Isa> {};

// Norm runs no table kernel today, so every ISA should agree exactly; the
// bounds are the per-dtype ones so a future SIMD path is held to them:
// y elementwise (atol 1e-6, rtol 1e-5), dx/dw reductions over d or N
// (atol 1e-5, rtol 1e-4), both against the scalar ISA and against double.
TEST_P(NormIsaTest, FloatMatchesScalarIsaAndDouble) {
  ThreadPool pool(2);
  const Inputs in = make_inputs(37, 16, 50);  // 37 rows: more than one worker's range
  for (const auto& c : norm_cases()) {
    const auto scalar = with_isa(kernels::Isa::scalar, [&] { return run_norm<float>(c, in, pool); });
    const auto simd = with_isa(GetParam(), [&] { return run_norm<float>(c, in, pool); });
    const auto ref = run_norm<double>(c, in, pool);
    EXPECT_TRUE(all_close(simd.y, scalar.y, kF32Elementwise)) << c.name;
    EXPECT_TRUE(all_close(simd.dx, scalar.dx, kF32Reduction)) << c.name;
    EXPECT_TRUE(all_close(simd.dw, scalar.dw, kF32Reduction)) << c.name;
    EXPECT_TRUE(all_close(simd.db, scalar.db, kF32Reduction)) << c.name;
    EXPECT_TRUE(all_close(to_f64(simd.y), ref.y, kF32Elementwise)) << c.name;
    EXPECT_TRUE(all_close(to_f64(simd.dx), ref.dx, kF32Reduction)) << c.name;
    EXPECT_TRUE(all_close(to_f64(simd.dw), ref.dw, kF32Reduction)) << c.name;
    EXPECT_TRUE(all_close(to_f64(simd.db), ref.db, kF32Reduction)) << c.name;
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, NormIsaTest, ::testing::ValuesIn(kernels::supported_isas()), isa_param_name);

TEST(NormTest, ThreadsBitwise) {
  // 100 rows in ranges of 16: three workers each get rows. y and dx are per
  // row, so they match one thread bitwise. dw/db are summed per worker and
  // combined in worker order: repeatable bitwise for a fixed thread count,
  // and equal to one thread up to the order of the float sums.
  ThreadPool one(1), three(3);
  const Inputs in = make_inputs(100, 16, 60);
  for (const auto& c : norm_cases()) {
    const auto a = run_norm<float>(c, in, one);
    const auto b = run_norm<float>(c, in, three);
    const auto b2 = run_norm<float>(c, in, three);
    EXPECT_TRUE(bitwise_equal(a.y, b.y)) << c.name;
    EXPECT_TRUE(bitwise_equal(a.dx, b.dx)) << c.name;
    EXPECT_TRUE(bitwise_equal(b.dw, b2.dw)) << c.name;
    EXPECT_TRUE(bitwise_equal(b.db, b2.db)) << c.name;
    EXPECT_TRUE(all_close(b.dw, a.dw, kF32Reduction)) << c.name;
    EXPECT_TRUE(all_close(b.db, a.db, kF32Reduction)) << c.name;
  }
  // Double gives the same dw through the per-worker sums, to rounding.
  const auto a = run_norm<double>(norm_cases()[2], in, one), b = run_norm<double>(norm_cases()[2], in, three);
  EXPECT_TRUE(all_close(b.dw, a.dw, {1e-13, 1e-13}));
}

}  // namespace
}  // namespace tpp::test
