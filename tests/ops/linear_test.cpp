// Linear y = x W^T (+ b), W: [M, K] as HF stores it: forward (f32, bf16 and
// f16 weights; with and without bias; a row stride ldy > M; several
// projections in one linear_forward_multi) against the sum written out here in
// double, the backward against finite differences in double, and float on
// every ISA against the scalar ISA and double.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/test_util.h"
#include "ops/op_test_util.h"
#include "tpp/core/dtype.h"
#include "tpp/kernels/api.h"
#include "tpp/kernels/packed.h"
#include "tpp/kernels/scalar/kernels_scalar.h"
#include "tpp/ops/linear.h"

namespace tpp::test {
namespace {

struct Problem {
  int64_t N, K, M;
  std::vector<double> x, W, b, r;  // x: [N, K]   W: [M, K]   b: [M]   r: [N, M] loss projection
};

Problem make_problem(int64_t N, int64_t K, int64_t M, uint64_t stream) {
  return {N, K, M, normals(size_t(N * K), stream), normals(size_t(M * K), stream + 1, 0.5),
          normals(size_t(M), stream + 2), normals(size_t(N * M), stream + 3)};
}

// y[n, m] = sum_k x[n, k] W[m, k] + b[m]
std::vector<double> linear_reference(const Problem& p, bool bias) {
  std::vector<double> y(size_t(p.N * p.M));
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t m = 0; m < p.M; ++m) {
      long double acc = bias ? p.b[size_t(m)] : 0.0;
      for (int64_t k = 0; k < p.K; ++k) acc += (long double)p.x[size_t(n * p.K + k)] * p.W[size_t(m * p.K + k)];
      y[size_t(n * p.M + m)] = double(acc);
    }
  return y;
}

// W as stored in `dt`, and the same values widened back to double.
struct StoredW {
  std::vector<float> f32;
  std::vector<uint16_t> u16;
  std::vector<double> f64;
  MatrixRef ref;
};
StoredW store(const Problem& p, DType dt) {
  StoredW s;
  s.f64 = p.W;
  s.f32.assign(p.W.begin(), p.W.end());
  for (size_t i = 0; i < s.f32.size(); ++i) {
    if (dt == DType::bf16) s.u16.push_back(f32_to_bf16(s.f32[i]));
    if (dt == DType::f16) s.u16.push_back(f32_to_f16(s.f32[i]));
    if (dt != DType::f64)
      s.f64[i] = dt == DType::bf16 ? bf16_to_f32(s.u16[i]) : dt == DType::f16 ? f16_to_f32(s.u16[i]) : s.f32[i];
  }
  const void* data = dt == DType::f64 ? static_cast<const void*>(s.f64.data())
                     : dt == DType::f32 ? static_cast<const void*>(s.f32.data())
                                        : static_cast<const void*>(s.u16.data());
  s.ref = MatrixRef{dt, data, p.M, p.K};
  return s;
}

std::vector<float> run_forward_f32(const Problem& p, DType dt, bool bias, ThreadPool& pool) {
  const StoredW w = store(p, dt);
  const auto x = to_f32(p.x), b = to_f32(p.b);
  std::vector<float> y(size_t(p.N * p.M));
  linear_forward(y.data(), x.data(), p.N, w.ref, bias ? std::span<const float>(b) : std::span<const float>(), pool);
  return y;
}

std::vector<double> run_forward_f64(const Problem& p, bool bias, ThreadPool& pool) {
  std::vector<double> y(size_t(p.N * p.M));
  const MatrixRef w{DType::f64, p.W.data(), p.M, p.K};
  linear_forward(y.data(), p.x.data(), p.N, w, bias ? std::span<const double>(p.b) : std::span<const double>(), pool);
  return y;
}

template <class R>
struct LinearResult {
  std::vector<R> dx, dw, db;
};

// Backward with dy = r into zeroed dx, dw, db.
template <class R>
LinearResult<R> run_backward(const Problem& p, ThreadPool& pool) {
  const std::vector<R> x(p.x.begin(), p.x.end()), W(p.W.begin(), p.W.end()), dy(p.r.begin(), p.r.end());
  const MatrixRef w{std::is_same_v<R, double> ? DType::f64 : DType::f32, W.data(), p.M, p.K};
  LinearResult<R> res{std::vector<R>(x.size()), std::vector<R>(W.size(), R(0)), std::vector<R>(size_t(p.M), R(0))};
  linear_backward<R>(res.dx.data(), false, {res.dw.data(), res.db.data()}, dy.data(), x.data(), p.N, w, pool);
  return res;
}

TEST(LinearTest, ForwardMatchesFormula) {
  ThreadPool pool(2);
  // N = 2 takes decode's dynamic split, N = 9 the static one; odd K and M.
  for (int64_t N : {2, 9}) {
    const Problem p = make_problem(N, 13, 21, 1);
    for (bool bias : {false, true}) {
      const auto ref = linear_reference(p, bias);
      EXPECT_TRUE(all_close(run_forward_f64(p, bias, pool), ref, {1e-14, 1e-13})) << N << bias;
      for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
        // The reference over the weights as stored (widening is exact).
        Problem stored = p;
        stored.W = store(p, dt).f64;
        EXPECT_TRUE(all_close(to_f64(run_forward_f32(p, dt, bias, pool)), linear_reference(stored, bias),
                              kF32Reduction))
            << N << " bias " << bias << " " << dtype_name(dt);
      }
    }
    // Not vacuous: the bias changes y.
    EXPECT_FALSE(all_close(run_forward_f64(p, false, pool), linear_reference(p, true), {1e-6, 1e-6}));
  }
}

TEST(LinearTest, RowStrideLeavesPaddingAlone) {
  ThreadPool pool(2);
  const Problem p = make_problem(5, 8, 6, 2);
  const int64_t ldy = 9;
  const auto w = store(p, DType::f32);
  const auto x = to_f32(p.x), b = to_f32(p.b);
  std::vector<float> y(size_t(p.N * ldy), -7.0f);
  linear_forward(y.data(), x.data(), p.N, w.ref, b, pool, ldy);
  const auto ref = linear_reference(p, true);
  std::vector<double> got;
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t c = 0; c < ldy; ++c)
      if (c < p.M) got.push_back(y[size_t(n * ldy + c)]);
      else EXPECT_EQ(y[size_t(n * ldy + c)], -7.0f) << n << " " << c;
  EXPECT_TRUE(all_close(got, ref, kF32Reduction));
  std::vector<double> y64(size_t(p.N * ldy), -7.0);
  linear_forward(y64.data(), p.x.data(), p.N, MatrixRef{DType::f64, p.W.data(), p.M, p.K}, p.b, pool, ldy);
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t c = p.M; c < ldy; ++c) EXPECT_EQ(y64[size_t(n * ldy + c)], -7.0) << n << " " << c;
}

TEST(LinearTest, MultiMatchesSeparateProjections) {
  // q/k/v-like outputs of different widths and storage, one with a bias,
  // against the formula; for decode (N = 1) and prefill (N = 6).
  ThreadPool pool(3);
  for (int64_t N : {1, 6}) {
    const Problem pq = make_problem(N, 16, 24, 10), pk = make_problem(N, 16, 8, 20), pv = make_problem(N, 16, 40, 30);
    Problem pk_x = pk, pv_x = pv;  // same x for all three
    pk_x.x = pq.x;
    pv_x.x = pq.x;
    const StoredW wq = store(pq, DType::f32), wk = store(pk_x, DType::bf16), wv = store(pv_x, DType::f32);
    const auto x = to_f32(pq.x), bk = to_f32(pk_x.b);
    std::vector<float> yq(size_t(N * 24)), yk(size_t(N * 8)), yv(size_t(N * 40));
    const LinearOut outs[] = {{yq.data(), &wq.ref, {}}, {yk.data(), &wk.ref, bk}, {yv.data(), &wv.ref, {}}};
    linear_forward_multi(x.data(), N, outs, pool);
    Problem pk_stored = pk_x;
    pk_stored.W = wk.f64;
    EXPECT_TRUE(all_close(to_f64(yq), linear_reference(pq, false), kF32Reduction)) << N;
    EXPECT_TRUE(all_close(to_f64(yk), linear_reference(pk_stored, true), kF32Reduction)) << N;
    EXPECT_TRUE(all_close(to_f64(yv), linear_reference(pv_x, false), kF32Reduction)) << N;

    // The double overload.
    std::vector<double> dq(yq.size()), dk(yk.size());
    const MatrixRef mq{DType::f64, pq.W.data(), 24, 16}, mk{DType::f64, pk_x.W.data(), 8, 16};
    const LinearOutT<double> douts[] = {{dq.data(), &mq, {}}, {dk.data(), &mk, pk_x.b}};
    linear_forward_multi(pq.x.data(), N, douts, pool);
    EXPECT_TRUE(all_close(dq, linear_reference(pq, false), {1e-14, 1e-13})) << N;
    EXPECT_TRUE(all_close(dk, linear_reference(pk_x, true), {1e-14, 1e-13})) << N;
  }
}

TEST(LinearTest, BackwardMatchesFiniteDifferences) {
  ThreadPool pool(2);
  // Bilinear in x and W: no kinks.
  Problem p = make_problem(3, 5, 4, 40);
  const auto an = run_backward<double>(p, pool);
  auto loss = [&] { return dot(run_forward_f64(p, true, pool), p.r); };
  const auto fd_x = fd_grad(p.x, loss), fd_w = fd_grad(p.W, loss), fd_b = fd_grad(p.b, loss);
  EXPECT_TRUE(all_close(an.dx, fd_x, kFdTol));
  EXPECT_TRUE(all_close(an.dw, fd_w, kFdTol));
  EXPECT_TRUE(all_close(an.db, fd_b, kFdTol));
  EXPECT_TRUE(fails_when_perturbed(an.dw, fd_w, kFdTol));
  EXPECT_TRUE(fails_when_perturbed(an.dx, fd_x, kFdTol));
}

TEST(LinearTest, BackwardAccumulatesAndOptionalOutputs) {
  // dx is written or added (dx_accumulate); dw and db always add; dx and db
  // may be null.
  ThreadPool pool(2);
  const Problem p = make_problem(6, 9, 7, 50);
  const auto once = run_backward<double>(p, pool);
  const MatrixRef w{DType::f64, p.W.data(), p.M, p.K};
  auto dx = once.dx, dw = once.dw, db = once.db;
  linear_backward<double>(dx.data(), true, {dw.data(), db.data()}, p.r.data(), p.x.data(), p.N, w, pool);
  auto doubled = [](std::vector<double> v) {
    for (auto& e : v) e *= 2;
    return v;
  };
  EXPECT_TRUE(all_close(dx, doubled(once.dx), {1e-14, 1e-14}));
  EXPECT_TRUE(all_close(dw, doubled(once.dw), {1e-14, 1e-14}));
  EXPECT_TRUE(all_close(db, doubled(once.db), {1e-14, 1e-14}));
  std::vector<double> dw2(dw.size(), 0.0);
  linear_backward<double>(nullptr, false, {dw2.data(), nullptr}, p.r.data(), p.x.data(), p.N, w, pool);
  EXPECT_TRUE(all_close(dw2, once.dw, {1e-14, 1e-14}));
}

// The packed f32 backward (N >= 16 on a level with the packed f32 kernel)
// adds into dx when asked, always adds into dw and db, and takes a null dx
// or db: a second call doubles, to within the rounding of one addition.
TEST(LinearTest, F32BackwardAccumulatesAndOptionalOutputs) {
  ThreadPool pool(2);
  const Problem p = make_problem(20, 40, 18, 90);
  const auto once = run_backward<float>(p, pool);
  const std::vector<float> x(p.x.begin(), p.x.end()), W(p.W.begin(), p.W.end()), dy(p.r.begin(), p.r.end());
  const MatrixRef w{DType::f32, W.data(), p.M, p.K};
  auto dx = once.dx, dw = once.dw, db = once.db;
  linear_backward<float>(dx.data(), true, {dw.data(), db.data()}, dy.data(), x.data(), p.N, w, pool);
  auto doubled = [](std::vector<float> v) {
    for (auto& e : v) e *= 2;
    return v;
  };
  EXPECT_TRUE(all_close(dx, doubled(once.dx), {1e-6, 1e-6}));
  EXPECT_TRUE(all_close(dw, doubled(once.dw), {1e-6, 1e-6}));
  EXPECT_TRUE(all_close(db, doubled(once.db), {1e-6, 1e-6}));
  std::vector<float> dw2(dw.size(), 0.0f);
  linear_backward<float>(nullptr, false, {dw2.data(), nullptr}, dy.data(), x.data(), p.N, w, pool);
  EXPECT_EQ(dw2, once.dw);
  const auto ref = run_backward<double>(p, pool);
  EXPECT_TRUE(all_close(to_f64(once.dx), ref.dx, kF32Reduction));
  EXPECT_TRUE(all_close(to_f64(once.dw), ref.dw, kF32Reduction));
}

// bf16 W (training's bf16 compute): dy and x are rounded to bf16 and both
// products run on the bf16 dot kernels. Against double over the rounded
// operands (products of bf16 values are exact, sums f32: the f32 reduction
// bound); db is the colsum of the unrounded dy; dx_accumulate adds. Odd N
// (x^T padded with a zero), K off the 16-row groups, M even.
TEST(LinearTest, Bf16BackwardRunsOnRoundedOperands) {
  const auto& k = kernels::kernels();
  if (!k.to_bf16 || !k.matmul_bf16_packed) GTEST_SKIP() << "this CPU has no bf16 dot kernels";
  ThreadPool pool(2);
  for (int64_t N : {7, 64}) {
    Problem p = make_problem(N, 38, 22, 70);
    const StoredW w = store(p, DType::bf16);
    std::vector<std::byte> fwd(size_t(kernels::packed_bytes(DType::bf16, p.M, p.K)));
    std::vector<std::byte> bwd(size_t(kernels::packed_bytes(DType::bf16, p.K, p.M)));
    kernels::pack_rows(DType::bf16, fwd.data(), w.u16.data(), p.M, p.K);
    kernels::pack_bf16_transposed(bwd.data(), w.u16.data(), p.K, p.M, p.K, 0, (p.K + 15) / 16);
    MatrixRef W = w.ref;
    W.packed = fwd.data();
    W.packed_t = bwd.data();
    const auto x = to_f32(p.x), dy = to_f32(p.r);
    std::vector<float> dx(x.size(), 0.5f), dw(w.f32.size(), 0.25f), db(size_t(p.M), 0.0f);
    linear_backward<float>(dx.data(), true, {dw.data(), db.data()}, dy.data(), x.data(), N, W, pool);
    // The reference: the double backward over bf16-rounded W, x and dy.
    auto rounded = [](std::vector<double> v) {
      for (auto& e : v) e = bf16_to_f32(f32_to_bf16(float(e)));
      return v;
    };
    Problem r = p;
    r.W = w.f64;
    r.x = rounded(p.x);
    r.r = rounded(p.r);
    const auto ref = run_backward<double>(r, pool);
    std::vector<double> want_dx = ref.dx, want_dw = ref.dw;
    for (auto& v : want_dx) v += 0.5;
    for (auto& v : want_dw) v += 0.25;
    EXPECT_TRUE(all_close(to_f64(dx), want_dx, kF32Reduction)) << "dx, N " << N;
    EXPECT_TRUE(all_close(to_f64(dw), want_dw, kF32Reduction)) << "dw, N " << N;
    EXPECT_TRUE(all_close(to_f64(db), run_backward<double>(p, pool).db, kF32Reduction)) << "db, N " << N;
    // Not vacuous: the unrounded operands give a dw farther away than the bound.
    std::vector<double> exact = run_backward<double>(p, pool).dw;
    for (auto& v : exact) v += 0.25;
    EXPECT_FALSE(all_close(to_f64(dw), exact, kF32Reduction)) << "dw, N " << N;
    // Without dx_accumulate dx is written, not added to.
    std::vector<float> dx2(x.size(), 9.0f), dw2(w.f32.size(), 0.0f);
    linear_backward<float>(dx2.data(), false, {dw2.data(), nullptr}, dy.data(), x.data(), N, W, pool);
    EXPECT_TRUE(all_close(to_f64(dx2), ref.dx, kF32Reduction)) << "dx written, N " << N;
  }
}

// f32 W with a packed copy runs the packed f32 kernel where the table has
// it (with the bias, into a row stride past M): the scalar definition's bits,
// and a row alone gives the bits it gets in a batch (decode equals prefill).
TEST(LinearTest, PackedF32CopyGivesTheKernelsBitsForAnyBatch) {
  const auto& k = kernels::kernels();
  if (!k.matmul_f32_packed) GTEST_SKIP() << "this CPU has no packed f32 kernel";
  ThreadPool pool(2);
  const int64_t N = 21, K = 75, M = 50, ldy = 53;
  const Problem p = make_problem(N, K, M, 80);
  const std::vector<float> x(p.x.begin(), p.x.end()), w(p.W.begin(), p.W.end()), b(p.b.begin(), p.b.end());
  std::vector<std::byte> packed(size_t(kernels::packed_bytes(DType::f32, M, K)));
  kernels::pack_rows(DType::f32, packed.data(), w.data(), M, K);
  MatrixRef W{DType::f32, w.data(), M, K};
  W.packed = packed.data();
  std::vector<float> want(size_t(N * ldy), -3.0f);
  kernels::scalar::matmul_f32_packed(want.data(), x.data(), packed.data(), N, K, 0, M, ldy, false);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m) want[size_t(n * ldy + m)] += b[size_t(m)];
  std::vector<float> y(want.size(), -3.0f);
  linear_forward(y.data(), x.data(), N, W, b, pool, ldy);
  EXPECT_EQ(y, want);
  for (int64_t n : {0, 9, 20}) {
    std::vector<float> one(size_t(ldy), -3.0f);
    linear_forward(one.data(), x.data() + n * K, 1, W, b, pool, ldy);
    EXPECT_TRUE(std::equal(one.begin(), one.end(), y.begin() + n * ldy)) << "row " << n;
  }
  // Not vacuous: the packed copy is what is read.
  std::fill(packed.begin(), packed.end(), std::byte{0});
  linear_forward(y.data(), x.data(), N, W, b, pool, ldy);
  EXPECT_EQ(y[0], b[0]);
}

class LinearIsaTest : public ::testing::TestWithParam<kernels::Isa> {};

// f32 reductions of length K (forward) or N (dw) or M (dx): the f32
// reduction bound (atol 1e-5, rtol 1e-4) against the scalar ISA, whose
// summation order differs, and against double over the stored weights.
// Shapes with tails: K = 37, M = 19, N = 2 (decode kernel), 7 and 19 (the
// packed f32 backward, where the level has it).
TEST_P(LinearIsaTest, FloatMatchesScalarIsaAndDouble) {
  ThreadPool pool(2);
  for (int64_t N : {2, 7, 19}) {
    const Problem p = make_problem(N, 37, 19, 60);
    for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
      const auto fwd = [&] { return run_forward_f32(p, dt, true, pool); };
      const auto simd = with_isa(GetParam(), fwd);
      EXPECT_TRUE(all_close(simd, with_isa(kernels::Isa::scalar, fwd), kF32Reduction)) << dtype_name(dt);
      Problem stored = p;
      stored.W = store(p, dt).f64;
      EXPECT_TRUE(all_close(to_f64(simd), linear_reference(stored, true), kF32Reduction)) << dtype_name(dt);
    }
    const auto bwd = [&] { return run_backward<float>(p, pool); };
    const auto simd = with_isa(GetParam(), bwd), scalar = with_isa(kernels::Isa::scalar, bwd);
    const auto ref = run_backward<double>(p, pool);
    EXPECT_TRUE(all_close(simd.dx, scalar.dx, kF32Reduction));
    EXPECT_TRUE(all_close(simd.dw, scalar.dw, kF32Reduction));
    EXPECT_TRUE(all_close(simd.db, scalar.db, kF32Reduction));
    EXPECT_TRUE(all_close(to_f64(simd.dx), ref.dx, kF32Reduction));
    EXPECT_TRUE(all_close(to_f64(simd.dw), ref.dw, kF32Reduction));
    EXPECT_TRUE(all_close(to_f64(simd.db), ref.db, kF32Reduction));
    EXPECT_TRUE(fails_when_perturbed(simd.dw, scalar.dw, kF32Reduction));
  }
}

INSTANTIATE_TEST_SUITE_P(AllIsas, LinearIsaTest, ::testing::ValuesIn(kernels::supported_isas()), isa_param_name);

}  // namespace
}  // namespace tpp::test
